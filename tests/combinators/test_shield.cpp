// SPDX-License-Identifier: MIT
// Tests of shield() (asyncio test_tasks: test_shield*).
// clang-format off
#include <coring/shield.hpp> // first: it must compile on its own
// clang-format on

#include <coring/future.hpp>
#include <coring/gather.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

#include "combinators/helpers.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::CancelledError;
using coring::EventLoop;
using coring::Task;
using coring::TaskHandle;
using coring::test::fail_after;
using coring::test::LogCapture;
using coring::test::run_virtual;
using coring::test::value_after;

TEST_CASE("shield: passes the result and the exception through", "[combinators][shield]") {
    run_virtual([]() -> Task<> {
        int v = co_await coring::shield(value_after(1ms, 3));
        CHECK(v == 3);
        CO_CHECK_THROWS_WITH(coring::shield(fail_after(1ms, "inner failed")), "inner failed");
    });
}

CORING_TEST_CASE("shield: a finished task is returned without suspending",
                 "[combinators][shield]") {
    auto t = coring::create_task(value_after(0ms, 5));
    co_await t;
    EventLoop& loop = coring::get_running_loop();
    auto before = loop.iteration_count();
    int& v = co_await coring::shield(t);
    CHECK(v == 5);
    CHECK(&v == &t.result());
    CHECK(loop.iteration_count() == before);
}

TEST_CASE("shield: cancelling the outer task does not cancel the inner one",
          "[combinators][shield]") {
    run_virtual([]() -> Task<> {
        auto inner = coring::create_task(value_after(1s, 7), "precious");
        auto outer = coring::create_task([](TaskHandle<int> i) -> Task<int> {
            co_return co_await coring::shield(i);
        }(inner));
        co_await coring::sleep(10ms);
        std::string stack = outer.get_stack();
        INFO(stack);
        CHECK(stack.find("shield of Task 'precious'") != std::string::npos);
        CHECK(outer.cancel("outer only"));
        CO_CHECK_THROWS_WITH(outer, "outer only");
        CHECK(outer.cancelled());
        CHECK_FALSE(inner.done());
        int v = co_await inner;
        CHECK(v == 7);
    });
}

TEST_CASE("shield: cancelling the inner task cancels the shield", "[combinators][shield]") {
    run_virtual([]() -> Task<> {
        auto inner = coring::create_task(value_after(1h, 7));
        auto outer = coring::create_task([](TaskHandle<int> i) -> Task<int> {
            co_return co_await coring::shield(i);
        }(inner));
        co_await coring::sleep(10ms);
        inner.cancel();
        CO_CHECK_THROWS_AS(outer, CancelledError);
        CHECK(outer.cancelled());
    });
}

TEST_CASE("shield: a coroutine is wrapped in a task that survives the cancel",
          "[combinators][shield]") {
    run_virtual([]() -> Task<> {
        bool finished = false;
        auto work = [&]() -> Task<> {
            co_await coring::sleep(1s);
            finished = true;
        };
        // Named: the closure holds the captures and must outlive the task (docs/pitfalls.md).
        auto shielded = [&]() -> Task<> {
            co_await coring::shield(work());
        };
        auto outer = coring::create_task(shielded());
        co_await coring::sleep(10ms);
        outer.cancel();
        CO_CHECK_THROWS_AS(outer, CancelledError);
        CHECK_FALSE(finished);
        co_await coring::sleep(2s);
        CHECK(finished);
    });
}

CORING_TEST_CASE("shield: a cancel that arrives after the inner task finished is raised later",
                 "[combinators][shield]") {
    auto inner = coring::create_task(value_after(0ms, 1));
    bool got_value = false;
    auto shielded = [&](TaskHandle<int> i) -> Task<> {
        co_await coring::shield(i);
        got_value = true;
    };
    auto outer = coring::create_task(shielded(inner));
    while (!inner.done()) {
        co_await coring::sleep(0s);
    }
    // inner has finished and the shield's wake-up is queued: cancel() cannot detach any more.
    outer.cancel();
    CO_CHECK_THROWS_AS(outer, CancelledError);
    CHECK_FALSE(got_value);
}

TEST_CASE("shield: gather of shielded tasks keeps them when the gather is cancelled",
          "[combinators][shield]") {
    run_virtual([]() -> Task<> {
        auto a = coring::create_task(value_after(1s, 1));
        auto b = coring::create_task(value_after(1s, 2));
        auto outer = coring::create_task([](TaskHandle<int> x, TaskHandle<int> y) -> Task<> {
            co_await coring::gather(coring::shield(x), coring::shield(y));
        }(a, b));
        co_await coring::sleep(10ms);
        outer.cancel();
        CO_CHECK_THROWS_AS(outer, CancelledError);
        int va = co_await a;
        int vb = co_await b;
        CHECK(va + vb == 3);
    });
}
