// SPDX-License-Identifier: MIT
// Tests of coring/testing.hpp and coring/testing/catch2.hpp: CORING_TEST_CASE on virtual and real
// time, the CORING_CO_* assertions, what run_checked finds, advance_to_next_timer.
// clang-format off
#include <coring/testing/catch2.hpp> // first: it must compile on its own
// clang-format on

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing.hpp>

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coring::EventLoop;
using coring::Task;

namespace {

int awaited_times = 0;

Task<int> answer() {
    ++awaited_times;
    co_await coring::sleep(1s);
    co_return 42;
}

Task<bool> yes() {
    ++awaited_times;
    co_return true;
}

Task<> fail_with(std::string what) {
    co_await coring::sleep(0s);
    throw std::runtime_error(what);
}

Task<> sleep_for(std::chrono::seconds d, std::vector<int>* log, int id) {
    co_await coring::sleep(d);
    log->push_back(id);
}

bool contains(const std::vector<std::string>& lines, const std::string& text) {
    for (const auto& l : lines) {
        if (l.find(text) != std::string::npos) {
            return true;
        }
    }
    return false;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) {
        out += l + "\n";
    }
    return out;
}

} // namespace

// ---- CORING_TEST_CASE ----

CORING_TEST_CASE("CORING_TEST_CASE: the body runs on virtual time", "[testing]") {
    EventLoop& loop = coring::get_running_loop();
    CHECK(loop.virtual_time());
    CHECK(loop.get_debug());
    const auto real_start = std::chrono::steady_clock::now();
    const auto start = loop.time();
    co_await coring::sleep(10min);
    CHECK(loop.time() - start >= 10min);
    CHECK(std::chrono::steady_clock::now() - real_start < 30s); // generous: no real wait
}

CORING_TEST_CASE_REAL_TIME("CORING_TEST_CASE_REAL_TIME: the body runs on the real clock",
                           "[testing]") {
    EventLoop& loop = coring::get_running_loop();
    CHECK_FALSE(loop.virtual_time());
    const auto real_start = std::chrono::steady_clock::now();
    co_await coring::sleep(20ms);
    CHECK(std::chrono::steady_clock::now() - real_start >= 20ms);
}

CORING_TEST_CASE("CORING_TEST_CASE: tasks awaited before the end leave nothing behind",
                 "[testing]") {
    std::vector<int> log;
    auto a = coring::create_task(sleep_for(2s, &log, 2));
    auto b = coring::create_task(sleep_for(1s, &log, 1));
    co_await a;
    co_await b;
    CHECK(log == std::vector<int>{1, 2});
}

constexpr coring::testing::CheckedRunOptions no_debug{.debug = false};

CORING_TEST_CASE_WITH(no_debug, "CORING_TEST_CASE_WITH: the options given are used", "[testing]") {
    EventLoop& loop = coring::get_running_loop();
    CHECK(loop.virtual_time());
    CHECK_FALSE(loop.get_debug());
    co_return;
}

CORING_TEST_CASE("CORING_CO_* assertions await their operand exactly once", "[testing]") {
    awaited_times = 0;
    CORING_CO_CHECK(yes());
    CORING_CO_REQUIRE(yes());
    CORING_CO_CHECK_EQ(answer(), 42);
    CORING_CO_REQUIRE_EQ(answer(), 42);
    CHECK(awaited_times == 4);
    CORING_CO_CHECK_THROWS_AS(fail_with("boom"), std::runtime_error);
    CORING_CO_REQUIRE_THROWS_AS(fail_with("boom"), std::runtime_error);
    CORING_CO_CHECK_THROWS_WITH(fail_with("bang"), "bang");
    CORING_CO_CHECK_NOTHROW(answer());
    CHECK(awaited_times == 5);
}

// ---- run_checked: what it finds ----

TEST_CASE("run_checked: a clean run reports nothing", "[testing]") {
    auto result = coring::testing::run_checked([]() -> Task<> { co_await coring::sleep(1h); });
    CHECK(result.problems.empty());
    CHECK_FALSE(result.error);
}

TEST_CASE("run_checked: the body's exception is returned, not reported", "[testing]") {
    auto result = coring::testing::run_checked([] { return fail_with("the body failed"); });
    CHECK(result.problems.empty());
    REQUIRE(result.error);
    CHECK(coring::describe_exception(result.error).find("the body failed") != std::string::npos);
}

TEST_CASE("run_checked: a task left pending is reported and cancelled", "[testing]") {
    static bool cancelled = false;
    cancelled = false;
    auto result = coring::testing::run_checked([]() -> Task<> {
        coring::create_task(
                []() -> Task<> {
                    try {
                        co_await coring::sleep(1h);
                    } catch (const coring::CancelledError&) {
                        cancelled = true;
                        throw;
                    }
                }(),
                "leaky-sleeper");
        co_await coring::sleep(1s);
    });
    INFO(joined(result.problems));
    CHECK(result.problems.size() == 1);
    CHECK(contains(result.problems, "task \"leaky-sleeper\" was still pending"));
    CHECK(cancelled);
}

TEST_CASE("run_checked: an exception never retrieved is reported", "[testing]") {
    auto result = coring::testing::run_checked([]() -> Task<> {
        coring::create_task(fail_with("nobody looks at me"), "forgotten");
        co_await coring::sleep(1s);
    });
    INFO(joined(result.problems));
    CHECK(result.problems.size() == 1);
    CHECK(contains(result.problems, "Task exception was never retrieved"));
    CHECK(contains(result.problems, "nobody looks at me"));
}

TEST_CASE("run_checked: a descriptor left open is reported", "[testing]") {
    static int fds[2] = {-1, -1};
    auto result = coring::testing::run_checked([]() -> Task<> {
        REQUIRE(::pipe(fds) == 0);
        co_return;
    });
    ::close(fds[0]);
    ::close(fds[1]);
    INFO(joined(result.problems));
    CHECK(result.problems.size() == 2);
    CHECK(contains(result.problems, "descriptor " + std::to_string(fds[0]) + " (pipe:"));
}

TEST_CASE("run_checked: a child left running or unreaped is reported", "[testing]") {
    static pid_t pid = -1;
    auto result = coring::testing::run_checked([]() -> Task<> {
        pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::pause();
            std::_Exit(0);
        }
        co_return;
    });
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    INFO(joined(result.problems));
    CHECK(contains(result.problems, "a child process is still running"));

    auto zombie = coring::testing::run_checked([]() -> Task<> {
        pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            std::_Exit(0);
        }
        siginfo_t info{};
        while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) != 0) {
        }
        co_return;
    });
    INFO(joined(zombie.problems));
    CHECK(contains(zombie.problems,
                   "child " + std::to_string(pid) + " exited but was never reaped"));
}

TEST_CASE("run_checked: each check can be turned off", "[testing]") {
    coring::testing::CheckedRunOptions off;
    off.check_tasks = false;
    off.check_exception_handler = false;
    auto result = coring::testing::run_checked(
            []() -> Task<> {
                coring::create_task(coring::sleep(1h));
                coring::create_task(fail_with("ignored"));
                co_await coring::sleep(1s);
            },
            off);
    INFO(joined(result.problems));
    CHECK(result.problems.empty());
}

TEST_CASE("run_checked: debug = nullopt keeps the loop's own default", "[testing]") {
    static bool debug = false;
    coring::testing::CheckedRunOptions options;
    options.debug = std::nullopt;
    auto result = coring::testing::run_checked(
            []() -> Task<> {
                debug = coring::get_running_loop().get_debug();
                co_return;
            },
            options);
    CHECK(result.problems.empty());
    const char* env = std::getenv("CORING_DEBUG");
    CHECK(debug == (env != nullptr && std::string(env) == "1"));
}

// ---- advance_to_next_timer, VirtualClock ----

TEST_CASE("advance_to_next_timer steps from timer to timer", "[testing]") {
    EventLoop loop;
    coring::testing::VirtualClock clock(loop);
    const auto start = clock.now();
    std::vector<int> log;
    auto late = loop.create_task(sleep_for(7s, &log, 7));
    auto early = loop.create_task(sleep_for(5s, &log, 5));
    coring::testing::run_until_idle(loop); // both tasks are asleep now

    auto t = clock.advance_to_next_timer();
    REQUIRE(t);
    // The clock keeps running in real time under the virtual offset: a deadline is "5 s after
    // the task went to sleep", a few microseconds after start.
    CHECK(*t - start >= 5s);
    CHECK(*t - start < 6s);
    clock.run_until_idle();
    CHECK(log == std::vector<int>{5});
    CHECK(early.done());

    t = coring::testing::advance_to_next_timer(loop);
    REQUIRE(t);
    CHECK(*t - start >= 7s);
    CHECK(*t - start < 8s);
    clock.run_until_idle();
    CHECK(log == std::vector<int>{5, 7});
    CHECK(late.done());

    const auto before = clock.now();
    CHECK_FALSE(clock.advance_to_next_timer()); // no timer left: the clock does not jump
    CHECK(clock.now() - before < 1s);
    loop.close();
}

TEST_CASE("advance_to_next_timer runs the timer's callback and what was ready first", "[testing]") {
    EventLoop loop;
    coring::testing::VirtualClock clock(loop);
    const auto start = clock.now();
    std::vector<std::string> log;
    loop.call_at(start + 3s, [&log] { log.push_back("timer 3s"); });
    loop.call_at(start + 3s, [&log] { log.push_back("timer 3s, second"); });
    loop.call_at(start + 4s, [&log] { log.push_back("timer 4s"); });
    loop.call_soon([&log] { log.push_back("soon"); });
    auto t = clock.advance_to_next_timer();
    REQUIRE(t);
    CHECK(*t - start >= 3s); // the deadline, plus the real time the iteration took
    CHECK(*t - start < 4s);
    CHECK(log == std::vector<std::string>{"soon", "timer 3s", "timer 3s, second"});
    CHECK(loop.timer_count() == 1);
    loop.close();
}

TEST_CASE("advance_to_next_timer ignores timers that never come due", "[testing]") {
    EventLoop loop;
    coring::testing::VirtualClock clock(loop);
    bool ran = false;
    auto never = loop.call_later(std::chrono::hours::max(), [&ran] { ran = true; });
    CHECK_FALSE(clock.advance_to_next_timer()); // returns instead of waiting forever
    CHECK_FALSE(ran);
    never.cancel();
    loop.close();
}

TEST_CASE("advance_to_next_timer on the real clock waits for the timer", "[testing]") {
    EventLoop loop;
    bool ran = false;
    const auto real_start = std::chrono::steady_clock::now();
    loop.call_later(20ms, [&ran] { ran = true; });
    auto t = coring::testing::advance_to_next_timer(loop);
    CHECK(t);
    CHECK(ran);
    CHECK(std::chrono::steady_clock::now() - real_start >= 20ms);
    loop.close();
}

TEST_CASE("advance_to_next_timer: a task may await inside the timer's wake-up", "[testing]") {
    EventLoop loop;
    coring::testing::VirtualClock clock(loop);
    std::vector<int> log;
    auto chain = loop.create_task([](std::vector<int>* out) -> Task<> {
        co_await coring::sleep(1s);
        out->push_back(1);
        co_await coring::sleep(1s); // needs the running loop: it schedules a timer
        out->push_back(2);
    }(&log));
    while (clock.advance_to_next_timer()) {
    }
    CHECK(log == std::vector<int>{1, 2});
    CHECK(chain.done());
    loop.close();
}

TEST_CASE("VirtualClock::advance_and_run runs what came due", "[testing]") {
    EventLoop loop;
    coring::testing::VirtualClock clock(loop);
    std::vector<int> log;
    auto task = loop.create_task(sleep_for(10s, &log, 10));
    clock.run_until_idle();
    clock.advance_and_run(9s);
    CHECK(log.empty());
    clock.advance_and_run(1s);
    CHECK(log == std::vector<int>{10});
    CHECK(task.done());
    CHECK(clock.since_epoch() >= 10s);
    loop.close();
}

TEST_CASE("advance_to_next_timer: a closed or running loop is refused", "[testing]") {
    EventLoop loop;
    loop.close();
    CHECK_THROWS_AS(coring::testing::advance_to_next_timer(loop), coring::RuntimeError);
}
