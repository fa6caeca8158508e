// SPDX-License-Identifier: MIT
// Tests of wait(), wait_for() and as_completed() (asyncio test_tasks: test_wait*,
// clang-format off
#include <coring/wait.hpp> // first: it must compile on its own
// clang-format on

// test_as_completed*; test_waitfor.py).
#include <coring/future.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
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
using coring::TimeoutError;
using coring::test::elapsed_ms;
using coring::test::fail_after;
using coring::test::LogCapture;
using coring::test::run_virtual;
using coring::test::value_after;

namespace {

std::vector<TaskHandle<int>>
spawn(std::initializer_list<std::pair<std::chrono::milliseconds, int>> specs) {
    std::vector<TaskHandle<int>> out;
    for (auto [d, v] : specs) {
        out.push_back(coring::create_task(value_after(d, v)));
    }
    return out;
}

/// Sleeps for d, refusing every cancellation; returns v.
Task<int> stubborn(std::chrono::milliseconds d, int v) {
    EventLoop& loop = coring::get_running_loop();
    auto until = loop.time() + d;
    while (loop.time() < until) {
        try {
            co_await coring::sleep_until(until);
        } catch (const CancelledError&) {
        }
    }
    co_return v;
}

} // namespace

// ---- wait ----

TEST_CASE("wait: ALL_COMPLETED returns when every task is done", "[combinators][wait]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto start = loop.time();
        auto tasks = spawn({{10ms, 1}, {30ms, 2}, {20ms, 3}});
        auto [done, pending] = co_await coring::wait(tasks);
        CHECK(done.size() == 3);
        CHECK(pending.empty());
        CHECK_ELAPSED(loop, start, 30);
        CHECK(done == tasks); // input order
    });
}

TEST_CASE("wait: FIRST_COMPLETED returns after the first task", "[combinators][wait]") {
    run_virtual([]() -> Task<> {
        auto tasks = spawn({{30ms, 1}, {10ms, 2}, {20ms, 3}});
        auto [done, pending] = co_await coring::wait(tasks, coring::FIRST_COMPLETED);
        REQUIRE(done.size() == 1);
        CHECK(done[0].result() == 2);
        CHECK(pending.size() == 2);
        CHECK(pending[0] == tasks[0]);
        CHECK_FALSE(pending[0].cancelled()); // wait never cancels
        co_await coring::wait(pending);
    });
}

TEST_CASE("wait: FIRST_EXCEPTION returns at the first failure, not at a cancellation",
          "[combinators][wait]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto start = loop.time();
        auto cancelled = coring::create_task(value_after(1h, 0));
        loop.call_later(5ms, [cancelled] { cancelled.cancel(); });
        std::vector<TaskHandle<int>> tasks{cancelled,
                                           coring::create_task(fail_after(20ms, "boom")),
                                           coring::create_task(value_after(1h, 1))};
        auto [done, pending] = co_await coring::wait(tasks, coring::FIRST_EXCEPTION);
        CHECK_ELAPSED(loop, start, 20);
        CHECK(done.size() == 2);
        CHECK(pending.size() == 1);
        CHECK_THROWS_AS(done[1].result(), std::runtime_error);
        pending[0].cancel();
        co_await coring::wait(pending);
    });
}

TEST_CASE("wait: FIRST_EXCEPTION without failures waits for all", "[combinators][wait]") {
    run_virtual([]() -> Task<> {
        auto tasks = spawn({{10ms, 1}, {20ms, 2}});
        auto [done, pending] = co_await coring::wait(tasks, coring::FIRST_EXCEPTION);
        CHECK(done.size() == 2);
        CHECK(pending.empty());
    });
}

TEST_CASE("wait: a timeout returns what is done and cancels nothing", "[combinators][wait]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto start = loop.time();
        auto tasks = spawn({{10ms, 1}, {1h, 2}});
        auto [done, pending] = co_await coring::wait(tasks, 100ms);
        CHECK_ELAPSED(loop, start, 100);
        REQUIRE(done.size() == 1);
        REQUIRE(pending.size() == 1);
        CHECK_FALSE(pending[0].done());
        CHECK(loop.timer_count() == 1); // only the pending task's sleep: the wait's timer is gone
        pending[0].cancel();
        auto [d2, p2] = co_await coring::wait(pending);
        CHECK(p2.empty());
        CHECK(d2[0].cancelled());
    });
}

CORING_TEST_CASE("wait: an empty set is a ValueError", "[combinators][wait]") {
    std::vector<TaskHandle<int>> none;
    CO_CHECK_THROWS_WITH(coring::wait(none), "Set of Tasks/Futures is empty.");
    CO_CHECK_THROWS_AS(coring::wait(none), coring::ValueError);
}

TEST_CASE("wait: duplicates count once", "[combinators][wait]") {
    run_virtual([]() -> Task<> {
        auto t = coring::create_task(value_after(1ms, 1));
        std::vector<TaskHandle<int>> twice{t, t};
        auto [done, pending] = co_await coring::wait(twice);
        CHECK(done.size() == 1);
    });
}

CORING_TEST_CASE("wait: already finished tasks still take the usual hops", "[combinators][wait]") {
    auto tasks = spawn({{0ms, 1}, {0ms, 2}});
    co_await coring::wait(tasks);
    EventLoop& loop = coring::get_running_loop();
    auto before = loop.iteration_count();
    auto [done, pending] = co_await coring::wait(tasks, coring::FIRST_COMPLETED);
    CHECK(done.size() == 2);
    // asyncio: the done callbacks run on the next iteration, the waiter wakes on the one
    // after.
    CHECK(loop.iteration_count() - before == 2);
}

TEST_CASE("wait: futures can be waited on", "[combinators][wait]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        std::vector<coring::Future<int>> fs{coring::Future<int>(), coring::Future<int>()};
        loop.call_later(10ms, [f = fs[1]] { f.set_result(5); });
        auto [done, pending] = co_await coring::wait(fs, coring::FIRST_COMPLETED);
        REQUIRE(done.size() == 1);
        CHECK(done[0].result() == 5);
        pending[0].cancel();
    });
}

TEST_CASE("wait: cancelling the waiter leaves the tasks running", "[combinators][wait]") {
    run_virtual([]() -> Task<> {
        auto tasks = spawn({{1h, 1}});
        auto waiter = coring::create_task([](std::vector<TaskHandle<int>> ts) -> Task<> {
            co_await coring::wait(ts);
        }(tasks));
        co_await coring::sleep(1s);
        std::string stack = waiter.get_stack();
        INFO(stack);
        CHECK(stack.find("wait ALL_COMPLETED: 0 of 1 done") != std::string::npos);
        waiter.cancel();
        CO_CHECK_THROWS_AS(waiter, CancelledError);
        CHECK_FALSE(tasks[0].done());
        tasks[0].cancel();
        co_await coring::wait(tasks);
    });
}

TEST_CASE("wait: does not retrieve exceptions except with FIRST_EXCEPTION", "[combinators][wait]") {
    LogCapture logs;
    run_virtual([]() -> Task<> {
        std::vector<TaskHandle<int>> tasks{coring::create_task(fail_after(1ms, "seen later"))};
        auto [done, pending] = co_await coring::wait(tasks);
        CHECK(done.size() == 1);
    });
    CHECK(logs.contains("Task exception was never retrieved"));
}

// ---- wait_for ----

TEST_CASE("wait_for: returns the result when it comes in time", "[combinators][wait_for]") {
    run_virtual([]() -> Task<> {
        int v = co_await coring::wait_for(value_after(10ms, 4), 1s);
        CHECK(v == 4);
        EventLoop& loop = coring::get_running_loop();
        CHECK(loop.timer_count() == 0);
        auto no_timeout = co_await coring::wait_for(value_after(10ms, 5), std::nullopt);
        CHECK(no_timeout == 5);
    });
}

TEST_CASE("wait_for: on timeout the inner task is cancelled, awaited, then TimeoutError",
          "[combinators][wait_for]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        bool cleaned_up = false;
        auto slow = [&]() -> Task<int> {
            std::exception_ptr cancelled;
            try {
                co_await coring::sleep(10s);
            } catch (const CancelledError&) {
                cancelled = std::current_exception();
            }
            co_await coring::sleep(50ms); // cleanup takes time: wait_for must wait for it
            cleaned_up = true;
            if (cancelled) {
                std::rethrow_exception(cancelled);
            }
            co_return 1;
        };
        auto start = loop.time();
        auto inner = coring::create_task(slow());
        CO_CHECK_THROWS_AS(coring::wait_for(inner, 100ms), TimeoutError);
        CHECK(cleaned_up);
        CHECK(inner.cancelled());
        CHECK_ELAPSED(loop, start, 150);
    });
}

TEST_CASE("wait_for: a result that arrives in spite of the cancellation wins",
          "[combinators][wait_for]") {
    run_virtual([]() -> Task<> {
        // asyncio 3.12 test_wait_for_cancellation_race_condition / _cancel_suppressed.
        auto inner = []() -> Task<int> {
            try {
                co_await coring::sleep(1s);
            } catch (const CancelledError&) {
                co_return 42;
            }
            co_return 0;
        };
        int v = co_await coring::wait_for(inner(), 10ms);
        CHECK(v == 42);
    });
}

TEST_CASE("wait_for: an exception raised during the cancellation wins", "[combinators][wait_for]") {
    run_virtual([]() -> Task<> {
        auto inner = []() -> Task<int> {
            try {
                co_await coring::sleep(1s);
            } catch (const CancelledError&) {
                throw std::logic_error("cleanup failed");
            }
            co_return 0;
        };
        CO_CHECK_THROWS_WITH(coring::wait_for(inner(), 10ms), "cleanup failed");
    });
}

TEST_CASE("wait_for: a timeout of zero or less cancels at once unless already done",
          "[combinators][wait_for]") {
    run_virtual([]() -> Task<> {
        bool started = false;
        auto body = [&]() -> Task<int> {
            started = true;
            co_return 1;
        };
        CO_CHECK_THROWS_AS(coring::wait_for(body(), 0s), TimeoutError);
        CHECK_FALSE(started); // cancelled before its first step
        CO_CHECK_THROWS_AS(coring::wait_for(value_after(1s, 1), -1s), TimeoutError);

        coring::Future<std::string> done;
        done.set_result("ready");
        std::string& r = co_await coring::wait_for(done, 0s);
        CHECK(r == "ready");
    });
}

TEST_CASE("wait_for: cancelling the awaiting task cancels the inner one",
          "[combinators][wait_for]") {
    run_virtual([]() -> Task<> {
        for (std::optional<EventLoop::duration> timeout :
             {std::optional<EventLoop::duration>(60s), std::optional<EventLoop::duration>()}) {
            coring::Future<int> never;
            auto inner = coring::create_task([](coring::Future<int> f) -> Task<int> {
                co_return co_await f;
            }(never));
            auto outer = coring::create_task(
                    [](TaskHandle<int> i, std::optional<EventLoop::duration> t) -> Task<int> {
                        co_return co_await coring::wait_for(i, t);
                    }(inner, timeout));
            co_await coring::sleep(0s);
            co_await coring::sleep(0s);
            outer.cancel();
            CO_CHECK_THROWS_AS(outer, CancelledError); // Python issue #23219
            CHECK(inner.cancelled());
        }
    });
}

CORING_TEST_CASE("wait_for: a cancel after the inner task finished is not lost (gh-86296)",
                 "[combinators][wait_for]") {
    bool reached_end = false;
    auto body = [&]() -> Task<> {
        co_await coring::wait_for(
                []() -> Task<> {
                    co_return;
                }(),
                100s);
        co_await coring::sleep(1s);
        reached_end = true;
    };
    auto task = coring::create_task(body());
    co_await coring::sleep(0s);
    CHECK_FALSE(task.done());
    task.cancel();
    CO_CHECK_THROWS_AS(task, CancelledError);
    CHECK_FALSE(reached_end);
}

TEST_CASE("wait_for: a task cancelled while inside wait_for whose inner task refuses",
          "[combinators][wait_for]") {
    run_virtual([]() -> Task<> {
        // asyncio test_wait_for_self_cancellation, with the cancel after the timeout.
        auto inner = coring::create_task(stubborn(900ms, 42));
        auto outer = coring::create_task([](TaskHandle<int> i) -> Task<int> {
            co_return co_await coring::wait_for(i, 100ms);
        }(inner));
        co_await coring::sleep(200ms); // the timeout has cancelled inner, which ignored it
        CHECK_FALSE(inner.done());
        outer.cancel();
        // The inner task returns 42 in the end: its result wins, as for any awaited task that
        // refuses a cancellation; it is neither TimeoutError nor lost.
        int v = co_await outer;
        CHECK(v == 42);
        CHECK(outer.cancelling() == 1);
        int w = co_await inner;
        CHECK(w == 42);
    });
}

TEST_CASE("wait_for: timeout and completion in the same iteration: completion first wins",
          "[combinators][wait_for]") {
    EventLoop loop;
    coring::testing::VirtualClock clock(loop);
    auto result = loop.run_until_complete([&]() -> Task<std::string> {
        coring::Future<std::string> fut;
        // Both deadlines fall due in one iteration; the future's callback was scheduled first.
        loop.call_later(10ms, [fut] { fut.set_result("in time"); });
        auto waiter = coring::create_task([](coring::Future<std::string> f) -> Task<std::string> {
            co_return co_await coring::wait_for(std::move(f), 10ms);
        }(fut));
        co_await coring::sleep(0s);
        clock.advance(1s);
        co_return co_await waiter;
    }());
    CHECK(result == "in time");
}

TEST_CASE("wait_for: timeout and completion in the same iteration: timeout first wins",
          "[combinators][wait_for]") {
    EventLoop loop;
    coring::testing::VirtualClock clock(loop);
    bool timed_out = false;
    loop.run_until_complete([&]() -> Task<> {
        coring::Future<std::string> fut;
        auto waiter = coring::create_task([](coring::Future<std::string> f) -> Task<std::string> {
            co_return co_await coring::wait_for(f, 10ms);
        }(fut));
        co_await coring::sleep(0s); // the wait_for timer is registered now
        loop.call_later(10ms, [fut] {
            if (!fut.done()) {
                fut.set_result("too late");
            }
        });
        clock.advance(1s);
        try {
            co_await waiter;
        } catch (const TimeoutError&) {
            timed_out = true;
        }
        CHECK(fut.cancelled()); // the timeout cancelled the future before its setter ran
    }());
    CHECK(timed_out);
}

TEST_CASE("wait_for: shows up in the task's stack", "[combinators][wait_for][debug]") {
    run_virtual([]() -> Task<> {
        auto inner = coring::create_task(value_after(1h, 1), "inner");
        auto outer = coring::create_task([](TaskHandle<int> i) -> Task<> {
            co_await coring::wait_for(i, 2s);
        }(inner));
        co_await coring::sleep(1s);
        std::string stack = outer.get_stack();
        INFO(stack);
        CHECK(stack.find("wait_for 2.000 s on Task 'inner'") != std::string::npos);
        outer.cancel();
        CO_CHECK_THROWS_AS(outer, CancelledError);
    });
}

TEST_CASE("wait_for: move-only results and awaitables", "[combinators][wait_for]") {
    run_virtual([]() -> Task<> {
        auto make = []() -> Task<std::unique_ptr<int>> {
            co_return std::make_unique<int>(3);
        };
        std::unique_ptr<int> p = co_await coring::wait_for(make(), 1s);
        REQUIRE(p);
        CHECK(*p == 3);
        co_await coring::wait_for(coring::sleep(1ms), 1s);
        CO_CHECK_THROWS_AS(coring::wait_for(coring::sleep(1h), 1ms), TimeoutError);
    });
}

// ---- as_completed ----

TEST_CASE("as_completed: yields results in completion order", "[combinators][as_completed]") {
    run_virtual([]() -> Task<> {
        std::vector<Task<int>> jobs;
        jobs.push_back(value_after(30ms, 3));
        jobs.push_back(value_after(10ms, 1));
        jobs.push_back(value_after(20ms, 2));
        std::vector<int> order;
        auto ac = coring::as_completed(std::move(jobs));
        CHECK(ac.size() == 3);
        for (auto next : ac) {
            int v = co_await next;
            order.push_back(v);
        }
        CHECK(order == std::vector<int>{1, 2, 3});
        CO_CHECK_THROWS_AS(ac.next(), coring::InvalidStateError);
    });
}

TEST_CASE("as_completed: a failure is raised by its own await", "[combinators][as_completed]") {
    run_virtual([]() -> Task<> {
        std::vector<TaskHandle<int>> tasks{coring::create_task(value_after(20ms, 2)),
                                           coring::create_task(fail_after(10ms, "first to end"))};
        auto ac = coring::as_completed(tasks);
        CO_CHECK_THROWS_WITH(ac.next(), "first to end");
        int v = co_await ac.next();
        CHECK(v == 2);
        CHECK(tasks[0].result() == 2); // copied from an lvalue handle
    });
}

TEST_CASE("as_completed: TimeoutError for what is missing when the timeout hits",
          "[combinators][as_completed]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto start = loop.time();
        auto tasks = spawn({{10ms, 1}, {1h, 2}, {2h, 3}});
        auto ac = coring::as_completed(tasks, 100ms);
        int first = co_await ac.next();
        CHECK(first == 1);
        CO_CHECK_THROWS_AS(ac.next(), TimeoutError);
        CHECK_ELAPSED(loop, start, 100);
        CO_CHECK_THROWS_AS(ac.next(), TimeoutError); // at once
        CHECK_ELAPSED(loop, start, 100);
        CHECK_FALSE(tasks[1].done()); // not cancelled
        for (auto& t : tasks) {
            t.cancel();
        }
        co_await coring::wait(tasks);
    });
}

TEST_CASE("as_completed: results that finished before the timeout come first",
          "[combinators][as_completed]") {
    run_virtual([]() -> Task<> {
        auto tasks = spawn({{10ms, 1}, {20ms, 2}, {1h, 3}});
        auto ac = coring::as_completed(tasks, 50ms);
        co_await coring::sleep(1s); // nobody awaited in the meantime
        int a = co_await ac.next();
        int b = co_await ac.next();
        CHECK(a == 1);
        CHECK(b == 2);
        CO_CHECK_THROWS_AS(ac.next(), TimeoutError);
        tasks[2].cancel();
        co_await coring::wait(tasks);
    });
}

TEST_CASE("as_completed: concurrent awaiters get one result each", "[combinators][as_completed]") {
    run_virtual([]() -> Task<> {
        auto tasks = spawn({{20ms, 2}, {10ms, 1}});
        auto ac = coring::as_completed(tasks);
        auto getter = [](coring::AsCompleted<int, false> a) -> Task<int> {
            co_return co_await a.next();
        };
        auto g1 = coring::create_task(getter(ac));
        auto g2 = coring::create_task(getter(ac));
        int v1 = co_await g1;
        int v2 = co_await g2;
        CHECK(v1 == 1);
        CHECK(v2 == 2);
    });
}

CORING_TEST_CASE("as_completed: a cancelled getter passes its result on",
                 "[combinators][as_completed]") {
    coring::Future<int> f1;
    coring::Future<int> f2;
    std::vector<coring::Future<int>> fs{f1, f2};
    auto ac = coring::as_completed(fs);
    auto getter = [](coring::AsCompleted<int, false> a) -> Task<int> {
        co_return co_await a.next();
    };
    auto g1 = coring::create_task(getter(ac));
    auto g2 = coring::create_task(getter(ac));
    co_await coring::sleep(0s); // both getters are queued
    f1.set_result(8);
    co_await coring::sleep(0s); // the slot ran in this iteration, before us: g1 was woken
    g1.cancel();                // too late to dequeue it: it passes the result to g2
    CO_CHECK_THROWS_AS(g1, CancelledError);
    int v = co_await g2;
    CHECK(v == 8);
    f2.cancel();
}

TEST_CASE("as_completed: coroutines and duplicates", "[combinators][as_completed]") {
    run_virtual([]() -> Task<> {
        auto t = coring::create_task(value_after(5ms, 5));
        std::vector<TaskHandle<int>> twice{t, t};
        auto ac = coring::as_completed(twice);
        CHECK(ac.size() == 1);
        int v = co_await ac.next();
        CHECK(v == 5);
    });
}

// ---- extreme timeouts (issue 10, defect 3) ----

TEST_CASE("wait_for: a huge timeout of any unit never expires", "[combinators][wait_for]") {
    coring::test::for_each_huge_delay([](const char* name, auto timeout) {
        INFO(name);
        run_virtual([timeout]() -> Task<> {
            int v = co_await coring::wait_for(value_after(5ms, 4), timeout);
            CHECK(v == 4);
        });
    });
}

TEST_CASE("wait_for: a huge negative timeout of any unit expires at once",
          "[combinators][wait_for]") {
    coring::test::for_each_huge_negative_delay([](const char* name, auto timeout) {
        INFO(name);
        run_virtual([timeout]() -> Task<> {
            EventLoop& loop = coring::get_running_loop();
            auto start = loop.time();
            CO_CHECK_THROWS_AS(coring::wait_for(value_after(1h, 4), timeout), TimeoutError);
            CHECK(loop.time() - start < 1s);
        });
    });
}

TEST_CASE("wait: a huge timeout of any unit never expires", "[combinators][wait]") {
    coring::test::for_each_huge_delay([](const char* name, auto timeout) {
        INFO(name);
        run_virtual([timeout]() -> Task<> {
            auto tasks = spawn({{10ms, 1}, {5ms, 2}});
            auto [done, pending] = co_await coring::wait(tasks, timeout);
            CHECK(done.size() == 2);
            CHECK(pending.empty());
        });
    });
}

TEST_CASE("wait: a huge negative timeout of any unit returns at once", "[combinators][wait]") {
    coring::test::for_each_huge_negative_delay([](const char* name, auto timeout) {
        INFO(name);
        run_virtual([timeout]() -> Task<> {
            auto tasks = spawn({{1h, 1}});
            auto [done, pending] = co_await coring::wait(tasks, timeout);
            CHECK(done.empty());
            CHECK(pending.size() == 1);
            tasks[0].cancel();
            CO_CHECK_THROWS_AS(tasks[0], CancelledError);
        });
    });
}

TEST_CASE("as_completed: a huge timeout of any unit never expires", "[combinators][as_completed]") {
    coring::test::for_each_huge_delay([](const char* name, auto timeout) {
        INFO(name);
        run_virtual([timeout]() -> Task<> {
            std::vector<Task<int>> jobs;
            jobs.push_back(value_after(20ms, 2));
            jobs.push_back(value_after(10ms, 1));
            std::vector<int> order;
            for (auto next : coring::as_completed(std::move(jobs), timeout)) {
                int v = co_await next;
                order.push_back(v);
            }
            CHECK(order == std::vector<int>{1, 2});
        });
    });
}

TEST_CASE("as_completed: a huge negative timeout of any unit expires at once",
          "[combinators][as_completed]") {
    coring::test::for_each_huge_negative_delay([](const char* name, auto timeout) {
        INFO(name);
        run_virtual([timeout]() -> Task<> {
            std::vector<TaskHandle<int>> tasks{coring::create_task(value_after(1h, 1))};
            auto ac = coring::as_completed(tasks, timeout);
            CO_CHECK_THROWS_AS(ac.next(), TimeoutError);
            tasks[0].cancel();
            CO_CHECK_THROWS_AS(tasks[0], CancelledError);
        });
    });
}
