// SPDX-License-Identifier: MIT
// Tests of EventLoop (asyncio test_base_events / test_events): run/stop/close, call_soon,
// call_later/call_at ordering, handles, the exception handler, debug mode.
// clang-format off
#include <coring/event_loop.hpp> // first: it must compile on its own
// clang-format on

#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::EventLoop;

TEST_CASE("EventLoop: call_soon callbacks run in FIFO order", "[loop]") {
    EventLoop loop;
    std::vector<int> order;
    for (int i = 0; i < 5; ++i) {
        loop.call_soon([&order, i] { order.push_back(i); });
    }
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
}

TEST_CASE("EventLoop: call_soon passes extra arguments", "[loop]") {
    EventLoop loop;
    int sum = 0;
    loop.call_soon([&sum](int a, int b) { sum = a + b; }, 2, 3);
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    CHECK(sum == 5);
}

TEST_CASE("EventLoop: callbacks scheduled while an iteration runs wait for the next one",
          "[loop]") {
    EventLoop loop;
    std::vector<std::string> log;
    loop.call_soon([&] {
        log.push_back("a");
        loop.call_soon([&] { log.push_back("c"); });
    });
    loop.call_soon([&] { log.push_back("b"); });
    // One iteration runs exactly what was ready when it began: a and b, not c.
    coring::testing::run_until_idle(loop, 1);
    CHECK(log == std::vector<std::string>{"a", "b"});
    coring::testing::run_until_idle(loop, 1);
    CHECK(log == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("EventLoop: stop() inside a callback ends run_forever after the current iteration",
          "[loop]") {
    EventLoop loop;
    std::vector<int> ran;
    loop.call_soon([&] {
        ran.push_back(1);
        loop.stop();
        loop.call_soon([&] { ran.push_back(3); });
    });
    loop.call_soon([&] { ran.push_back(2); });
    loop.run_forever();
    CHECK(ran == std::vector<int>{1, 2});
    CHECK_FALSE(loop.is_running());
    // The callback scheduled after stop() runs on the next run.
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    CHECK(ran == std::vector<int>{1, 2, 3});
}

TEST_CASE("EventLoop: stop() before run_forever runs one iteration and returns", "[loop]") {
    EventLoop loop;
    int ran = 0;
    loop.call_soon([&] { ++ran; });
    loop.stop();
    loop.run_forever();
    CHECK(ran == 1);
    CHECK_FALSE(loop.is_running());
}

TEST_CASE("EventLoop: is_running is true only inside run_forever", "[loop]") {
    EventLoop loop;
    CHECK_FALSE(loop.is_running());
    bool inside = false;
    EventLoop* running = nullptr;
    loop.call_soon([&] {
        inside = loop.is_running();
        running = EventLoop::running();
        loop.stop();
    });
    loop.run_forever();
    CHECK(inside);
    CHECK(running == &loop);
    CHECK(EventLoop::running() == nullptr);
}

TEST_CASE("EventLoop: get_running_loop throws outside a running loop", "[loop]") {
    CHECK_THROWS_WITH(coring::get_running_loop(), "no running event loop");
    EventLoop loop;
    EventLoop* seen = nullptr;
    loop.call_soon([&] {
        seen = &coring::get_running_loop();
        loop.stop();
    });
    loop.run_forever();
    CHECK(seen == &loop);
}

TEST_CASE("EventLoop: running a loop that is already running is an error", "[loop]") {
    EventLoop loop;
    std::string error;
    loop.call_soon([&] {
        try {
            loop.run_forever();
        } catch (const coring::RuntimeError& e) {
            error = e.what();
        }
        loop.stop();
    });
    loop.run_forever();
    CHECK(error == "This event loop is already running");
}

TEST_CASE("EventLoop: running a second loop inside a running one is an error", "[loop]") {
    EventLoop outer;
    EventLoop inner;
    std::string error;
    outer.call_soon([&] {
        try {
            inner.run_forever();
        } catch (const coring::RuntimeError& e) {
            error = e.what();
        }
        outer.stop();
    });
    outer.run_forever();
    CHECK(error == "Cannot run the event loop while another loop is running");
}

TEST_CASE("EventLoop: close() is idempotent and a closed loop refuses work", "[loop]") {
    EventLoop loop;
    CHECK_FALSE(loop.is_closed());
    loop.close();
    loop.close();
    CHECK(loop.is_closed());
    CHECK_THROWS_AS(loop.call_soon([] {}), coring::RuntimeError);
    CHECK_THROWS_AS(loop.call_later(1s, [] {}), coring::RuntimeError);
    CHECK_THROWS_AS(loop.call_soon_threadsafe([] {}), coring::RuntimeError);
    CHECK_THROWS_WITH(loop.run_forever(), "Event loop is closed");
}

TEST_CASE("EventLoop: close() while running is an error", "[loop]") {
    EventLoop loop;
    std::string error;
    loop.call_soon([&] {
        try {
            loop.close();
        } catch (const coring::RuntimeError& e) {
            error = e.what();
        }
        loop.stop();
    });
    loop.run_forever();
    CHECK(error == "Cannot close a running event loop");
    CHECK_FALSE(loop.is_closed());
}

TEST_CASE("EventLoop: close() drops pending callbacks and timers without running them", "[loop]") {
    coring::test::Counted::reset();
    int ran = 0;
    {
        EventLoop loop;
        loop.call_soon([&ran, c = coring::test::Counted(1)] { ++ran; });
        loop.call_later(1h, [&ran, c = coring::test::Counted(2)] { ++ran; });
        CHECK(coring::test::Counted::alive == 2);
        loop.close();
        // The callbacks (and what they captured) are released, not run.
        CHECK(coring::test::Counted::alive == 0);
    }
    CHECK(ran == 0);
}

TEST_CASE("EventLoop: time() is monotonic", "[loop]") {
    EventLoop loop;
    auto a = loop.time();
    std::this_thread::sleep_for(2ms);
    auto b = loop.time();
    CHECK(b - a >= 2ms);
}

TEST_CASE("EventLoop: call_later timers fire in deadline order", "[loop][timer]") {
    EventLoop loop;
    coring::testing::VirtualClock clock(loop);
    std::vector<int> order;
    loop.call_later(30ms, [&] { order.push_back(30); });
    loop.call_later(10ms, [&] { order.push_back(10); });
    loop.call_later(20ms, [&] { order.push_back(20); });
    loop.call_later(40ms, [&] { loop.stop(); });
    loop.run_forever();
    CHECK(order == std::vector<int>{10, 20, 30});
}

TEST_CASE("EventLoop: timers with equal deadlines fire in the order they were scheduled",
          "[loop][timer]") {
    EventLoop loop;
    std::vector<int> order;
    auto when = loop.time() + 5ms;
    for (int i = 0; i < 20; ++i) {
        loop.call_at(when, [&order, i] { order.push_back(i); });
    }
    loop.call_at(when + 1ms, [&] { loop.stop(); });
    loop.run_forever();
    std::vector<int> expected;
    for (int i = 0; i < 20; ++i) {
        expected.push_back(i);
    }
    CHECK(order == expected);
}

TEST_CASE("EventLoop: a timer never fires before its deadline", "[loop][timer]") {
    EventLoop loop;
    auto start = loop.time();
    EventLoop::time_point fired{};
    loop.call_later(20ms, [&] {
        fired = loop.time();
        loop.stop();
    });
    loop.run_forever();
    CHECK(fired - start >= 20ms);
}

TEST_CASE("EventLoop: ready callbacks run before timers that fall due in the same iteration",
          "[loop][timer]") {
    EventLoop loop;
    std::vector<std::string> order;
    loop.call_later(0ms, [&] { order.push_back("timer"); });
    loop.call_soon([&] { order.push_back("soon"); });
    loop.call_later(1ms, [&] { loop.stop(); });
    loop.run_forever();
    // asyncio's _run_once appends due timers after what is already in _ready.
    REQUIRE(order.size() == 2);
    CHECK(order[0] == "soon");
    CHECK(order[1] == "timer");
}

TEST_CASE("EventLoop: a cancelled handle does not run", "[loop]") {
    EventLoop loop;
    int ran = 0;
    coring::Handle h = loop.call_soon([&] { ++ran; });
    coring::TimerHandle t = loop.call_later(1ms, [&] { ++ran; });
    CHECK_FALSE(h.cancelled());
    h.cancel();
    t.cancel();
    t.cancel(); // twice is harmless
    CHECK(h.cancelled());
    CHECK(t.cancelled());
    CHECK(loop.timer_count() == 0); // a cancelled timer leaves the heap at once
    loop.call_later(5ms, [&] { loop.stop(); });
    loop.run_forever();
    CHECK(ran == 0);
}

TEST_CASE("EventLoop: TimerHandle::when() reports the deadline", "[loop][timer]") {
    EventLoop loop;
    auto when = loop.time() + 1h;
    coring::TimerHandle t = loop.call_at(when, [] {});
    CHECK(t.when() == when);
    t.cancel();
}

TEST_CASE("EventLoop: cancelling a timer from another callback in the same iteration works",
          "[loop][timer]") {
    EventLoop loop;
    coring::testing::VirtualClock clock(loop);
    int ran = 0;
    coring::TimerHandle victim;
    loop.call_later(10ms, [&] { victim.cancel(); });
    victim = loop.call_later(10ms, [&] { ++ran; });
    loop.call_later(20ms, [&] { loop.stop(); });
    loop.run_forever();
    // Both were due in the same iteration; the first cancelled the second before it ran.
    CHECK(ran == 0);
}

TEST_CASE("EventLoop: an exception from a callback goes to the exception handler", "[loop]") {
    EventLoop loop;
    std::vector<coring::ExceptionContext> seen;
    loop.set_exception_handler(
            [&](EventLoop&, const coring::ExceptionContext& ctx) { seen.push_back(ctx); });
    loop.call_soon([] { throw std::runtime_error("boom"); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].message.find("Exception in callback") == 0);
    CHECK(coring::describe_exception(seen[0].exception).find("boom") != std::string::npos);
}

TEST_CASE("EventLoop: the default exception handler logs the context", "[loop]") {
    coring::test::LogCapture logs;
    EventLoop loop;
    loop.call_exception_handler({"something broke",
                                 std::make_exception_ptr(std::runtime_error("detail")),
                                 "Task-7",
                                 {}});
    REQUIRE(logs.records().size() == 1);
    const std::string& r = logs.records()[0];
    CHECK(r.find("ERROR: something broke") == 0);
    CHECK(r.find("task: Task-7") != std::string::npos);
    CHECK(r.find("std::runtime_error: detail") != std::string::npos);
}

TEST_CASE("EventLoop: a throwing exception handler is reported by the default handler", "[loop]") {
    coring::test::LogCapture logs;
    EventLoop loop;
    loop.set_exception_handler([](EventLoop&, const coring::ExceptionContext&) {
        throw std::logic_error("handler bug");
    });
    loop.call_exception_handler({"original", nullptr, {}, {}});
    CHECK(logs.contains("Unhandled error in exception handler"));
    CHECK(logs.contains("handler bug"));
    CHECK(logs.contains("original"));
}

TEST_CASE("EventLoop: an exception handler can be removed again", "[loop]") {
    coring::test::LogCapture logs;
    EventLoop loop;
    int custom = 0;
    loop.set_exception_handler([&](EventLoop&, const coring::ExceptionContext&) { ++custom; });
    CHECK(static_cast<bool>(loop.get_exception_handler()));
    loop.call_exception_handler({"one", nullptr, {}, {}});
    loop.set_exception_handler(nullptr);
    loop.call_exception_handler({"two", nullptr, {}, {}});
    CHECK(custom == 1);
    CHECK(logs.contains("two"));
}

TEST_CASE("EventLoop: debug mode is off by default and can be switched", "[loop][debug]") {
    EventLoop loop(coring::EventLoopOptions{1024, false});
    CHECK_FALSE(loop.get_debug());
    loop.set_debug(true);
    CHECK(loop.get_debug());
    CHECK(loop.slow_callback_duration() == 100ms);
    EventLoop debug_loop(coring::EventLoopOptions{1024, true});
    CHECK(debug_loop.get_debug());
}

TEST_CASE("EventLoop: debug mode reports a slow callback", "[loop][debug]") {
    coring::test::LogCapture logs;
    EventLoop loop;
    loop.set_debug(true);
    loop.set_slow_callback_duration(5ms);
    loop.call_soon([] { std::this_thread::sleep_for(20ms); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    REQUIRE(logs.records().size() == 1);
    CHECK(logs.records()[0].find("WARNING: Executing <Handle") == 0);
    CHECK(logs.records()[0].find("seconds") != std::string::npos);
}

TEST_CASE("EventLoop: without debug mode slow callbacks are not reported", "[loop][debug]") {
    coring::test::LogCapture logs;
    EventLoop loop(coring::EventLoopOptions{1024, false});
    loop.set_slow_callback_duration(1ms);
    loop.call_soon([] { std::this_thread::sleep_for(5ms); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    CHECK(logs.records().empty());
}

TEST_CASE("EventLoop: call_soon_threadsafe wakes a loop blocked in io_uring_enter",
          "[loop][threads]") {
    EventLoop loop;
    bool ran = false;
    std::thread other;
    loop.call_soon([&] {
        // The loop has nothing to do now and blocks in the ring until the other thread wakes it.
        other = std::thread([&] {
            std::this_thread::sleep_for(20ms);
            loop.call_soon_threadsafe([&] {
                ran = true;
                loop.stop();
            });
        });
    });
    loop.run_forever();
    other.join();
    CHECK(ran);
}

TEST_CASE("EventLoop: 10,000 call_soon_threadsafe calls from 4 threads each run exactly once",
          "[loop][threads]") {
    EventLoop loop;
    constexpr int threads = 4;
    constexpr int per_thread = 2500;
    std::vector<int> counts(threads * per_thread, 0);
    int total = 0;
    std::vector<std::thread> workers;
    loop.call_soon([&] {
        for (int t = 0; t < threads; ++t) {
            workers.emplace_back([&, t] {
                for (int i = 0; i < per_thread; ++i) {
                    int id = t * per_thread + i;
                    loop.call_soon_threadsafe([&, id] {
                        ++counts[id];
                        if (++total == threads * per_thread) {
                            loop.stop();
                        }
                    });
                }
            });
        }
    });
    loop.run_forever();
    for (auto& w : workers) {
        w.join();
    }
    CHECK(total == threads * per_thread);
    bool all_once = true;
    for (int c : counts) {
        all_once = all_once && c == 1;
    }
    CHECK(all_once);
}

TEST_CASE("EventLoop: a loop created on one thread can run on another", "[loop][threads]") {
    EventLoop loop;
    int ran = 0;
    loop.call_soon([&] {
        ++ran;
        loop.stop();
    });
    std::thread t([&] { loop.run_forever(); });
    t.join();
    CHECK(ran == 1);
}

TEST_CASE("EventLoop: a steady-state iteration makes at most one io_uring_enter", "[loop]") {
    EventLoop loop;
    // Ping-pong through timers and tasks: every iteration has something to submit or wait for.
    auto pinger = [](int n) -> coring::Task<> {
        for (int i = 0; i < n; ++i) {
            co_await coring::sleep(100us);
        }
    };
    auto t = loop.create_task(pinger(200));
    std::uint64_t enters_before = coring::detail::LoopAccess::ring(loop).enter_count();
    std::uint64_t iterations_before = loop.iteration_count();
    loop.run_until_complete(t);
    std::uint64_t enters = coring::detail::LoopAccess::ring(loop).enter_count() - enters_before;
    std::uint64_t iterations = loop.iteration_count() - iterations_before;
    INFO("enters " << enters << " iterations " << iterations);
    CHECK(enters <= iterations);
}

TEST_CASE("EventLoop: iterations with only ready work make no system call", "[loop]") {
    EventLoop loop;
    if (loop.backend() == coring::Backend::epoll) {
        CORING_SKIP("io_uring only: the epoll backend looks at epoll (timeout 0) on every "
                    "iteration with ready work, as asyncio's selector loop does");
    }
    auto yielder = [](int n) -> coring::Task<> {
        for (int i = 0; i < n; ++i) {
            co_await coring::sleep(0s);
        }
    };
    auto t = loop.create_task(yielder(1000));
    loop.run_until_complete(t);
    // Only the first iteration (which arms the wake-up read) and the final one may enter.
    CHECK(coring::detail::LoopAccess::ring(loop).enter_count() <= 3);
}

TEST_CASE("EventLoop: call_soon_threadsafe on the loop thread keeps FIFO order with call_soon",
          "[loop]") {
    // asyncio: both append to the same ready queue, so a runs before b (issue 10, defect 7).
    EventLoop loop;
    std::vector<std::string> order;
    loop.call_soon([&] {
        loop.call_soon_threadsafe([&] { order.push_back("a"); });
        loop.call_soon([&] { order.push_back("b"); });
        loop.call_soon_threadsafe([&] { order.push_back("c"); });
        loop.call_soon([&] {
            order.push_back("d");
            loop.stop();
        });
    });
    loop.run_forever();
    CHECK(order == std::vector<std::string>{"a", "b", "c", "d"});
}

TEST_CASE("EventLoop: call_later with a huge delay never fires and holds back no other timer",
          "[loop][timer]") {
    coring::test::for_each_huge_delay([](const char* name, auto delay) {
        INFO(name);
        EventLoop loop;
        coring::test::Watchdog watchdog(loop, 3s);
        bool huge = false;
        bool soon = false;
        coring::TimerHandle h = loop.call_later(delay, [&] { huge = true; });
        loop.call_later(2ms, [&] {
            soon = true;
            loop.stop();
        });
        loop.run_forever();
        CHECK(soon);
        CHECK_FALSE(huge);
        CHECK_FALSE(watchdog.fired());
        CHECK(h.when() > loop.time() + 24h * 365 * 100);
        h.cancel();
    });
}

TEST_CASE("EventLoop: call_later with a huge negative delay runs at once, in deadline order",
          "[loop][timer]") {
    coring::test::for_each_huge_negative_delay([](const char* name, auto delay) {
        INFO(name);
        EventLoop loop;
        coring::test::Watchdog watchdog(loop, 3s);
        std::vector<std::string> order;
        loop.call_later(0s, [&] { order.push_back("0s"); });
        loop.call_later(-1s, [&] { order.push_back("-1s"); });
        loop.call_later(delay, [&] { order.push_back("huge"); });
        loop.call_later(1ms, [&] {
            order.push_back("1ms");
            loop.stop();
        });
        loop.run_forever();
        CHECK(order == std::vector<std::string>{"huge", "-1s", "0s", "1ms"});
        CHECK_FALSE(watchdog.fired());
    });
}

TEST_CASE("EventLoop: call_at saturates time points of any unit", "[loop][timer]") {
    using hours_point = std::chrono::time_point<EventLoop::clock, std::chrono::hours>;
    EventLoop loop;
    coring::test::Watchdog watchdog(loop, 3s);
    std::vector<std::string> order;
    auto never1 = loop.call_at(EventLoop::time_point::max(), [&] { order.push_back("max"); });
    auto never2 = loop.call_at(hours_point::max(), [&] { order.push_back("hours max"); });
    loop.call_at(hours_point::min(), [&] { order.push_back("hours min"); });
    loop.call_at(EventLoop::time_point::min(), [&] { order.push_back("min"); });
    loop.call_later(2ms, [&] {
        order.push_back("2ms");
        loop.stop();
    });
    loop.run_forever();
    CHECK(order == std::vector<std::string>{"hours min", "min", "2ms"});
    CHECK_FALSE(watchdog.fired());
    CHECK(never2.when() == EventLoop::time_point::max());
    never1.cancel();
    never2.cancel();
}

TEST_CASE("EventLoop: a loop waiting only for a never-due timer still runs threadsafe callbacks",
          "[loop][timer][threads]") {
    EventLoop loop;
    coring::test::Watchdog watchdog(loop, 3s);
    bool ran = false;
    auto never = loop.call_later(std::chrono::nanoseconds::max(), [] {});
    std::thread other([&] {
        std::this_thread::sleep_for(20ms);
        loop.call_soon_threadsafe([&] {
            ran = true;
            loop.stop();
        });
    });
    loop.run_forever();
    other.join();
    CHECK(ran);
    CHECK_FALSE(watchdog.fired());
    never.cancel();
}

TEST_CASE("EventLoop: VirtualClock::advance saturates: huge reaches every finite deadline, never "
          "a 'never' one, negative does nothing",
          "[loop][timer][testing]") {
    EventLoop loop;
    coring::testing::VirtualClock clock(loop);
    int far = 0;
    int never = 0;
    loop.call_later(24h * 365 * 200, [&] { ++far; }); // 200 years: finite on this clock
    auto h = loop.call_later(std::chrono::hours::max(), [&] { ++never; });
    auto t0 = loop.time();
    clock.advance(std::chrono::hours::min());
    clock.advance(-24h);
    CHECK(loop.time() >= t0);
    loop.call_soon([] {});
    coring::testing::run_until_idle(loop);
    CHECK(far == 0);
    clock.advance(std::chrono::hours::max());
    clock.advance(std::chrono::hours::max()); // and again: the clock stays saturated
    CHECK(loop.time() > t0 + 24h * 365 * 200);
    loop.call_soon([] {});
    coring::testing::run_until_idle(loop);
    CHECK(far == 1);
    CHECK(never == 0);
    CHECK(loop.timer_count() == 1);
    h.cancel();
}

TEST_CASE("EventLoop: virtual time does not jump to a never-due timer", "[loop][timer][testing]") {
    coring::test::for_each_huge_delay([](const char* name, auto delay) {
        INFO(name);
        EventLoop loop;
        coring::testing::VirtualClock clock(loop);
        bool huge = false;
        auto h = loop.call_later(delay, [&] { huge = true; });
        loop.call_later(1h, [&] { loop.stop(); });
        loop.run_forever();
        CHECK_FALSE(huge);
        CHECK(loop.timer_count() == 1);
        h.cancel();
    });
}
