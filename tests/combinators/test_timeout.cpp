// SPDX-License-Identifier: MIT
// Tests of Timeout, timeout() and timeout_at() (asyncio test_timeouts.py).
// clang-format off
#include <coring/timeout.hpp> // first: it must compile on its own
// clang-format on

#include <coring/future.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "combinators/helpers.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::CancelledError;
using coring::EventLoop;
using coring::Task;
using coring::TaskHandle;
using coring::Timeout;
using coring::TimeoutError;
using coring::test::elapsed_ms;
using coring::test::run_test;
using coring::test::run_virtual;
using coring::test::value_after;

TEST_CASE("timeout: the deadline turns the body's cancellation into TimeoutError",
          "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto start = loop.time();
        bool cancelled_inside = false;
        Timeout cm = coring::timeout(10ms);
        try {
            co_await cm.run([&]() -> Task<> {
                try {
                    co_await coring::sleep(10s);
                } catch (const CancelledError&) {
                    cancelled_inside = true;
                    throw;
                }
            });
            FAIL("no exception");
        } catch (const TimeoutError&) {
        }
        CHECK(cancelled_inside);
        CHECK(cm.expired());
        CHECK(cm.describe() == "<Timeout [expired]>");
        CHECK_ELAPSED(loop, start, 10);
        CHECK(coring::current_task().cancelling() == 0); // the scope took its cancel back
    });
}

TEST_CASE("timeout: a body that finishes in time returns its value", "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        Timeout cm = coring::timeout(10s);
        int v = co_await cm.run(value_after(10ms, 3));
        CHECK(v == 3);
        CHECK_FALSE(cm.expired());
        REQUIRE(cm.when());
        CHECK(*cm.when() > loop.time());
        CHECK(cm.describe() == "<Timeout [finished]>");
        CHECK(loop.timer_count() == 0); // the deadline's timer is gone
        int w = co_await coring::timeout(1s, [](Timeout& t) -> Task<int> {
            CHECK(t.describe().find("<Timeout [active] when=") == 0);
            co_return 4;
        });
        CHECK(w == 4);
    });
}

TEST_CASE("timeout: timeout_at uses an absolute deadline", "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto deadline = loop.time() + 10ms;
        Timeout cm = coring::timeout_at(deadline);
        CO_CHECK_THROWS_AS(cm.run(coring::sleep(10s)), TimeoutError);
        CHECK(cm.expired());
        CHECK(cm.when() == deadline);
        CO_CHECK_THROWS_AS(coring::timeout_at(loop.time() + 1ms, coring::sleep(1s)), TimeoutError);
    });
}

TEST_CASE("timeout: no deadline never expires", "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        Timeout a = coring::timeout(std::nullopt);
        co_await a.run(coring::sleep(10ms));
        CHECK_FALSE(a.expired());
        CHECK_FALSE(a.when());
        Timeout b = coring::timeout_at(std::nullopt);
        co_await b.run([&]() -> Task<> {
            CHECK(b.describe() == "<Timeout [active] when=None>");
            co_await coring::sleep(10ms);
        });
        CHECK_FALSE(b.expired());
    });
}

TEST_CASE("timeout: a deadline of zero or in the past expires on the next iteration",
          "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        for (auto delay : {0ms, -11ms}) {
            Timeout cm = coring::timeout(delay);
            CO_CHECK_THROWS_AS(cm.run(coring::sleep(0s)), TimeoutError);
            CHECK(cm.expired());
        }
    });
}

TEST_CASE("timeout: another exception passes through, expired or not", "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        Timeout cm = coring::timeout(10ms);
        CO_CHECK_THROWS_WITH(cm.run([]() -> Task<> {
            throw std::out_of_range("key");
            co_return;
        }),
                             "key");
        CHECK_FALSE(cm.expired());
        auto crash = []() -> Task<> {
            try {
                co_await coring::sleep(1s);
            } catch (const CancelledError&) {
                throw std::domain_error("cleanup");
            }
        };
        CO_CHECK_THROWS_WITH(coring::timeout(10ms, crash), "cleanup");
    });
}

TEST_CASE("timeout: a foreign cancel stays CancelledError when the deadline has not passed",
          "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        Timeout cm = coring::timeout(10s);
        CO_CHECK_THROWS_AS(cm.run([]() -> Task<> {
            coring::current_task().cancel();
            co_await coring::sleep(10s);
        }),
                           CancelledError);
        CHECK_FALSE(cm.expired());
        CHECK(coring::current_task().uncancel() == 0);
    });
}

TEST_CASE("timeout: a foreign cancel stays CancelledError even after the deadline passed",
          "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        Timeout cm = coring::timeout(10ms);
        auto waiter = coring::create_task(
                [](Timeout& t) -> Task<> {
                    co_await t.run(coring::sleep(1h));
                }(cm),
                "waiter");
        co_await coring::sleep(5ms);
        coring::get_running_loop().call_at(*cm.when(), [waiter] { waiter.cancel("foreign"); });
        // Deadline and foreign cancel in the same iteration: two requests, one taken back.
        CO_CHECK_THROWS_WITH(waiter, "foreign");
        CHECK(cm.expired());
        CHECK(waiter.cancelled());
    });
}

TEST_CASE("timeout: the task running the scope is not left cancelled", "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        auto outer = coring::create_task([]() -> Task<> {
            CO_CHECK_THROWS_AS(coring::timeout(1ms, coring::sleep(10s)), TimeoutError);
        }());
        co_await outer;
        CHECK(outer.done());
        CHECK_FALSE(outer.cancelled());
    });
}

TEST_CASE("timeout: nested scopes, the inner one expires first", "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto start = loop.time();
        Timeout outer = coring::timeout(1s);
        Timeout inner = coring::timeout(10ms);
        co_await outer.run([&]() -> Task<> {
            CO_CHECK_THROWS_AS(inner.run(coring::sleep(10s)), TimeoutError);
            CHECK_ELAPSED(loop, start, 10);
            co_await coring::sleep(10ms); // the outer scope still works afterwards
        });
        CHECK(inner.expired());
        CHECK_FALSE(outer.expired());
    });
}

TEST_CASE("timeout: nested scopes, the outer one expires first", "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        bool inner_saw_cancel = false;
        Timeout outer = coring::timeout(10ms);
        Timeout inner = coring::timeout(10s);
        CO_CHECK_THROWS_AS(outer.run([&]() -> Task<> {
            try {
                co_await inner.run(coring::sleep(1h));
            } catch (const CancelledError&) {
                inner_saw_cancel = true; // only the outermost expired scope raises TimeoutError
                throw;
            }
        }),
                           TimeoutError);
        CHECK(inner_saw_cancel);
        CHECK(outer.expired());
        CHECK_FALSE(inner.expired());
    });
}

TEST_CASE("timeout: nested scopes with the same deadline: the outer one raises",
          "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto deadline = loop.time() + 10ms;
        bool inner_saw_cancel = false;
        Timeout cm1 = coring::timeout_at(deadline);
        Timeout cm2 = coring::timeout_at(deadline);
        CO_CHECK_THROWS_AS(cm1.run([&]() -> Task<> {
            try {
                co_await cm2.run(coring::sleep(10s));
            } catch (const CancelledError&) {
                inner_saw_cancel = true;
                throw;
            }
        }),
                           TimeoutError);
        CHECK(inner_saw_cancel);
        CHECK(cm1.expired());
        CHECK(cm2.expired());
        CHECK(coring::current_task().cancelling() == 0);
    });
}

TEST_CASE("timeout: nested scopes whose deadlines pass in the same iteration (loop busy)",
          "[combinators][timeout]") {
    EventLoop loop;
    coring::testing::VirtualClock clock(loop);
    loop.run_until_complete([&]() -> Task<> {
        auto start = loop.time();
        bool inner_timed_out = false;
        auto outer_body = [&]() -> Task<> {
            try {
                co_await coring::timeout(10ms, [&]() -> Task<> {
                    clock.advance(100ms); // the loop is "busy" past both deadlines
                    co_await coring::sleep(1s);
                });
            } catch (const TimeoutError&) {
                inner_timed_out = true;
            }
            co_await coring::sleep(10s); // interrupted by the outer scope
        };
        CO_CHECK_THROWS_AS(coring::timeout(100ms, outer_body), TimeoutError);
        // Both deadlines fired in the same iteration: the inner scope sees a cancellation
        // request besides its own and lets CancelledError through; the outer one converts it
        // (asyncio behaves the same in test_nested_timeouts_loop_busy).
        CHECK_FALSE(inner_timed_out);
        CHECK(loop.time() - start < 1s);
        CHECK(coring::current_task().cancelling() == 0);
    }());
}

TEST_CASE("timeout: reschedule moves the deadline", "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto deadline1 = loop.time() + 10s;
        auto deadline2 = deadline1 + 20s;
        Timeout cm = coring::timeout_at(deadline1);
        coring::Future<> entered;
        auto task = coring::create_task([](Timeout& t, coring::Future<> e) -> Task<> {
            co_await t.run([&]() -> Task<> {
                e.set_result();
                co_await coring::sleep(50s);
            });
        }(cm, entered));
        co_await entered;
        CHECK(cm.when() == deadline1);
        cm.reschedule(deadline2);
        CHECK(cm.when() == deadline2);
        cm.reschedule(std::nullopt);
        CHECK_FALSE(cm.when());
        task.cancel();
        CO_CHECK_THROWS_AS(task, CancelledError);
        CHECK_FALSE(cm.expired());
    });
}

TEST_CASE("timeout: reschedule extends a running deadline", "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto start = loop.time();
        co_await coring::timeout(10ms, [&](Timeout& t) -> Task<> {
            co_await coring::sleep(5ms);
            t.reschedule(loop.time() + 100ms);
            co_await coring::sleep(50ms);
        });
        CHECK_ELAPSED(loop, start, 55);
        CO_CHECK_THROWS_AS(
                coring::timeout(1h,
                                [&](Timeout& t) -> Task<> {
                                    t.reschedule(loop.time() -
                                                 1s); // in the past: expires on the next iteration
                                    co_await coring::sleep(1s);
                                }),
                TimeoutError);
    });
}

TEST_CASE("timeout: misuse raises RuntimeError as in asyncio", "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        Timeout fresh = coring::timeout(10ms);
        CHECK_THROWS_WITH(fresh.reschedule(std::nullopt), "Timeout has not been entered");

        Timeout finished = coring::timeout(10ms);
        co_await finished.run(coring::sleep(0s));
        CHECK_THROWS_WITH(finished.reschedule(std::nullopt),
                          "Cannot change state of finished Timeout");
        CO_CHECK_THROWS_WITH(finished.run(coring::sleep(0s)), "Timeout has already been entered");

        Timeout expired = coring::timeout(1ms);
        CO_CHECK_THROWS_AS(expired.run(coring::sleep(1s)), TimeoutError);
        CHECK_THROWS_WITH(expired.reschedule(std::nullopt),
                          "Cannot change state of expired Timeout");

        Timeout expiring = coring::timeout(1ms);
        co_await expiring.run([&]() -> Task<> {
            CO_CHECK_THROWS_AS(coring::sleep(1s), CancelledError);
            CHECK_THROWS_WITH(expiring.reschedule(std::nullopt),
                              "Cannot change state of expiring Timeout");
        });
        CHECK(expiring.expired()); // the body swallowed the cancellation: no TimeoutError

        Timeout active = coring::timeout(1s);
        co_await active.run([&]() -> Task<> {
            CO_CHECK_THROWS_WITH(active.run(coring::sleep(0s)), "Timeout has already been entered");
            co_return;
        });
    });
}

TEST_CASE("timeout: timeout(delay) needs a running loop", "[combinators][timeout]") {
    // The deadline is computed from the running loop's clock when timeout() is called; run()
    // is a coroutine, so it always runs inside a task.
    CHECK_THROWS_WITH(coring::timeout(1s), "no running event loop");
    Timeout never = coring::timeout_at(std::nullopt);
    CHECK_FALSE(never.when());
}

TEST_CASE("timeout: a timeout after a swallowed cancellation still works",
          "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        // asyncio test_timeout_after_cancellation.
        try {
            coring::current_task().cancel();
            co_await coring::sleep(1s);
        } catch (const CancelledError&) {
        }
        CO_CHECK_THROWS_AS(coring::timeout(0s, coring::sleep(1s)), TimeoutError);
        // test_cancel_in_timeout_after_cancellation: a new cancel inside stays a cancel.
        CO_CHECK_THROWS_AS(coring::timeout(1s,
                                           []() -> Task<> {
                                               coring::current_task().cancel();
                                               co_await coring::sleep(2s);
                                           }),
                           CancelledError);
        coring::current_task().uncancel();
        coring::current_task().uncancel();
    });
}

TEST_CASE("timeout: the deadline cancels whatever the body awaits, a task included",
          "[combinators][timeout]") {
    run_virtual([]() -> Task<> {
        auto inner = coring::create_task(value_after(1h, 1));
        CO_CHECK_THROWS_AS(coring::timeout(10ms, inner), TimeoutError);
        CHECK(inner.cancelled());
    });
}

// ---- extreme deadlines (issue 10, defect 3) ----

TEST_CASE("timeout: a huge delay of any unit never expires", "[combinators][timeout]") {
    coring::test::for_each_huge_delay([](const char* name, auto delay) {
        INFO(name);
        run_virtual([delay]() -> Task<> {
            EventLoop& loop = coring::get_running_loop();
            Timeout cm = coring::timeout(delay);
            int v = co_await cm.run([]() -> Task<int> { co_return co_await value_after(5ms, 3); });
            CHECK(v == 3);
            CHECK_FALSE(cm.expired());
            int w = co_await coring::timeout(
                    delay, []() -> Task<int> { co_return co_await value_after(5ms, 4); });
            CHECK(w == 4);
            REQUIRE(cm.when());
            CHECK(*cm.when() > loop.time() + 24h * 365 * 100);
        });
    });
}

TEST_CASE("timeout: a huge negative delay of any unit expires at once", "[combinators][timeout]") {
    coring::test::for_each_huge_negative_delay([](const char* name, auto delay) {
        INFO(name);
        run_virtual([delay]() -> Task<> {
            EventLoop& loop = coring::get_running_loop();
            auto start = loop.time();
            CO_CHECK_THROWS_AS(
                    coring::timeout(delay, []() -> Task<> { co_await coring::sleep(1h); }),
                    TimeoutError);
            CHECK(loop.time() - start < 1s);
        });
    });
}

TEST_CASE("timeout: timeout_at and reschedule saturate time points of any unit",
          "[combinators][timeout]") {
    using hours_point = std::chrono::time_point<EventLoop::clock, std::chrono::hours>;
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto start = loop.time();
        int v = co_await coring::timeout_at(
                hours_point::max(), []() -> Task<int> { co_return co_await value_after(5ms, 1); });
        CHECK(v == 1);
        CO_CHECK_THROWS_AS(coring::timeout_at(hours_point::min(),
                                              []() -> Task<> { co_await coring::sleep(1h); }),
                           TimeoutError);
        CHECK(loop.time() - start < 1s);
        Timeout cm = coring::timeout_at(hours_point::max());
        CHECK(cm.when() == EventLoop::time_point::max());
        co_await cm.run([&](Timeout& t) -> Task<> {
            t.reschedule(hours_point::max());
            CHECK(t.when() == EventLoop::time_point::max());
            co_await coring::sleep(5ms);
            co_await coring::sleep(5ms);
        });
        CHECK_FALSE(cm.expired());
        Timeout late = coring::timeout_at(std::nullopt);
        CO_CHECK_THROWS_AS(late.run([&](Timeout& t) -> Task<> {
            t.reschedule(hours_point::min());
            co_await coring::sleep(1h);
        }),
                           TimeoutError);
        CHECK(loop.time() - start < 1s);
    });
}
