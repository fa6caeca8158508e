// SPDX-License-Identifier: MIT
// Tests of sleep() (asyncio test_tasks: test_sleep*).
// clang-format off
#include <coring/sleep.hpp> // first: it must compile on its own
// clang-format on

#include <coring/run.hpp>
#include <coring/task.hpp>
#include <coring/testing.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::EventLoop;
using coring::Task;
using coring::test::run_test;

CORING_TEST_CASE("sleep: sleeps at least the given time", "[sleep]") {
    EventLoop& loop = coring::get_running_loop();
    auto t0 = loop.time();
    co_await coring::sleep(15ms);
    CHECK(loop.time() - t0 >= 15ms);
}

CORING_TEST_CASE("sleep: sleep(0s) yields exactly one iteration", "[sleep]") {
    std::vector<std::string> order;
    auto other = [&]() -> Task<> {
        order.push_back("other 1");
        co_await coring::sleep(0s);
        order.push_back("other 2");
    };
    auto h = coring::create_task(other());
    order.push_back("main 1");
    co_await coring::sleep(0s); // other's first step runs in this iteration
    order.push_back("main 2");
    co_await coring::sleep(0s);
    order.push_back("main 3");
    co_await h;
    CHECK(order == std::vector<std::string>{"main 1", "other 1", "main 2", "other 2", "main 3"});
}

CORING_TEST_CASE("sleep: a negative delay behaves as sleep(0s)", "[sleep]") {
    EventLoop& loop = coring::get_running_loop();
    auto iterations = loop.iteration_count();
    co_await coring::sleep(-5s);
    CHECK(loop.iteration_count() == iterations + 1);
}

CORING_TEST_CASE("sleep: sleepers wake in deadline order", "[sleep]") {
    std::vector<int> order;
    auto sleeper = [&](int ms) -> Task<> {
        co_await coring::sleep(std::chrono::milliseconds(ms));
        order.push_back(ms);
    };
    std::vector<coring::TaskHandle<>> hs;
    for (int ms : {9, 3, 6, 1, 12}) {
        hs.push_back(coring::create_task(sleeper(ms)));
    }
    for (auto& h : hs) {
        co_await h;
    }
    CHECK(order == std::vector<int>{1, 3, 6, 9, 12});
}

CORING_TEST_CASE("sleep: sleep_until waits for a point on the loop clock", "[sleep]") {
    EventLoop& loop = coring::get_running_loop();
    auto target = loop.time() + 5ms;
    co_await coring::sleep_until(target);
    CHECK(loop.time() >= target);
}

CORING_TEST_CASE("sleep: 100,000 concurrent sleepers all wake, none early", "[sleep][slow]") {
    constexpr int n = 100'000;
    EventLoop& loop = coring::get_running_loop();
    int woken = 0;
    int early = 0;
    auto sleeper = [&](int i) -> Task<> {
        auto delay = std::chrono::microseconds(10 + (i % 1000) * 10);
        auto deadline = loop.time() + delay;
        co_await coring::sleep(delay);
        early += loop.time() < deadline ? 1 : 0;
        ++woken;
    };
    std::vector<coring::TaskHandle<>> hs;
    hs.reserve(n);
    for (int i = 0; i < n; ++i) {
        hs.push_back(coring::create_task(sleeper(i)));
    }
    for (auto& h : hs) {
        co_await h;
    }
    CHECK(woken == n);
    CHECK(early == 0);
    CHECK(loop.timer_count() == 0);
}

TEST_CASE("sleep: virtual time runs long sleeps instantly and in order", "[sleep][testing]") {
    EventLoop loop;
    coring::testing::VirtualClock clock(loop);
    std::vector<int> order;
    auto sleeper = [&](int minutes) -> Task<> {
        co_await coring::sleep(std::chrono::minutes(minutes));
        order.push_back(minutes);
    };
    auto real_start = std::chrono::steady_clock::now();
    auto virtual_start = loop.time();
    loop.run_until_complete([&]() -> Task<> {
        auto a = coring::create_task(sleeper(30));
        auto b = coring::create_task(sleeper(10));
        auto c = coring::create_task(sleeper(20));
        co_await a;
        co_await b;
        co_await c;
    }());
    CHECK(order == std::vector<int>{10, 20, 30});
    CHECK(loop.time() - virtual_start >= 30min);
    CHECK(std::chrono::steady_clock::now() - real_start < 10s);
}

TEST_CASE("sleep: VirtualClock::advance makes timers due", "[sleep][testing]") {
    EventLoop loop;
    coring::testing::VirtualClock clock(loop);
    int fired = 0;
    loop.call_later(1h, [&] { ++fired; });
    coring::testing::run_until_idle(loop);
    CHECK(fired == 0);
    clock.advance(1h);
    loop.call_soon([] {}); // make one iteration happen without waiting
    coring::testing::run_until_idle(loop);
    CHECK(fired == 1);
}

TEST_CASE("sleep: a huge delay of any unit never fires and holds back no other timer", "[sleep]") {
    coring::test::for_each_huge_delay([](const char* name, auto delay) {
        INFO(name);
        EventLoop loop;
        coring::test::Watchdog watchdog(loop, 3s);
        bool woke = false;
        bool was_done = true;
        auto sleeper = [&]() -> Task<> {
            co_await coring::sleep(delay);
            woke = true;
        };
        auto main = [&]() -> Task<> {
            auto h = coring::create_task(sleeper());
            co_await coring::sleep(2ms); // must fire although the huge timer is earlier in time
            was_done = h.done();
            h.cancel();
            CO_CHECK_THROWS_AS(h, coring::CancelledError);
        };
        CHECK_NOTHROW(loop.run_until_complete(main()));
        CHECK_FALSE(was_done);
        CHECK_FALSE(woke);
        CHECK_FALSE(watchdog.fired());
    });
}

TEST_CASE("sleep: a huge negative delay of any unit yields once", "[sleep]") {
    coring::test::for_each_huge_negative_delay([](const char* name, auto delay) {
        INFO(name);
        EventLoop loop;
        coring::test::Watchdog watchdog(loop, 3s);
        std::uint64_t took = 0;
        auto main = [&]() -> Task<> {
            auto before = loop.iteration_count();
            co_await coring::sleep(delay);
            took = loop.iteration_count() - before;
        };
        CHECK_NOTHROW(loop.run_until_complete(main()));
        CHECK(took == 1);
        CHECK_FALSE(watchdog.fired());
    });
}

TEST_CASE("sleep: in virtual time a huge sleep does not fire while other timers do",
          "[sleep][testing]") {
    coring::test::for_each_huge_delay([](const char* name, auto delay) {
        INFO(name);
        EventLoop loop;
        coring::testing::VirtualClock clock(loop);
        bool woke = false;
        bool was_done = true;
        auto sleeper = [&]() -> Task<> {
            co_await coring::sleep(delay);
            woke = true;
        };
        auto main = [&]() -> Task<> {
            auto h = coring::create_task(sleeper());
            co_await coring::sleep(24h * 365);
            was_done = h.done();
            h.cancel();
            CO_CHECK_THROWS_AS(h, coring::CancelledError);
        };
        loop.run_until_complete(main());
        CHECK_FALSE(was_done);
        CHECK_FALSE(woke);
    });
}

TEST_CASE("sleep: sleep_until saturates time points of any unit", "[sleep]") {
    using hours_point = std::chrono::time_point<EventLoop::clock, std::chrono::hours>;
    run_test([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto before = loop.iteration_count();
        co_await coring::sleep_until(EventLoop::time_point::min());
        co_await coring::sleep_until(hours_point::min());
        CHECK(loop.iteration_count() == before + 2);
        auto forever = [](auto when) -> Task<> {
            co_await coring::sleep_until(when);
        };
        auto a = coring::create_task(forever(EventLoop::time_point::max()));
        auto b = coring::create_task(forever(hours_point::max()));
        co_await coring::sleep(2ms);
        CHECK_FALSE(a.done());
        CHECK_FALSE(b.done());
        a.cancel();
        b.cancel();
        CO_CHECK_THROWS_AS(a, coring::CancelledError);
        CO_CHECK_THROWS_AS(b, coring::CancelledError);
    });
}

CORING_TEST_CASE("sleep: sleep(delay, result) returns result, as asyncio.sleep(delay, result)",
                 "[sleep]") {
    int v = co_await coring::sleep(1ms, 42);
    CHECK(v == 42);
    std::string s = co_await coring::sleep(0s, std::string("done"));
    CHECK(s == "done");
    std::unique_ptr<int> p = co_await coring::sleep(-1s, std::make_unique<int>(7));
    REQUIRE(p);
    CHECK(*p == 7);
}

CORING_TEST_CASE("sleep: sleep(delay, result) is cancellable like sleep(delay)", "[sleep]") {
    auto sleeper = []() -> Task<int> {
        co_return co_await coring::sleep(1h, 5);
    };
    auto h = coring::create_task(sleeper());
    co_await coring::sleep(0s);
    h.cancel();
    CO_CHECK_THROWS_AS(h, coring::CancelledError);
}
