// SPDX-License-Identifier: MIT
// Tests of gather() (asyncio test_tasks: test_gather*, test_cancel_gather_*, GatherTestsBase).
// clang-format off
#include <coring/gather.hpp> // first: it must compile on its own
// clang-format on

#include <coring/future.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

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

namespace {

Task<> nothing_after(std::chrono::milliseconds d) {
    co_await coring::sleep(d);
}

Task<std::string> text_after(std::chrono::milliseconds d, std::string s) {
    co_await coring::sleep(d);
    co_return s;
}

} // namespace

TEST_CASE("gather: results come back in argument order, not completion order",
          "[combinators][gather]") {
    run_virtual([]() -> Task<> {
        auto [a, b, c] = co_await coring::gather(
                value_after(30ms, 1), text_after(10ms, "two"), nothing_after(20ms));
        CHECK(a == 1);
        CHECK(b == "two");
        static_assert(std::is_same_v<decltype(c), std::monostate>);
    });
}

TEST_CASE("gather: the children run concurrently", "[combinators][gather]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto start = loop.time();
        auto [a, b] = co_await coring::gather(value_after(1s, 1), value_after(2s, 2));
        CHECK(a + b == 3);
        CHECK_ELAPSED(loop, start, 2000);
    });
}

TEST_CASE("gather: a range gives a vector in range order", "[combinators][gather]") {
    run_virtual([]() -> Task<> {
        std::vector<Task<int>> jobs;
        for (int i = 0; i < 5; ++i) {
            jobs.push_back(value_after(std::chrono::milliseconds(50 - 10 * i), i));
        }
        std::vector<int> results = co_await coring::gather(std::move(jobs));
        CHECK(results == std::vector<int>{0, 1, 2, 3, 4});
    });
}

CORING_TEST_CASE("gather: nothing to gather yields at once", "[combinators][gather]") {
    EventLoop& loop = coring::get_running_loop();
    auto before = loop.iteration_count();
    std::tuple<> none = co_await coring::gather();
    static_cast<void>(none);
    std::vector<Task<int>> empty;
    std::vector<int> results = co_await coring::gather(std::move(empty));
    CHECK(results.empty());
    CHECK(loop.iteration_count() == before);
}

CORING_TEST_CASE("gather: coroutines become tasks when gather is called", "[combinators][gather]") {
    std::vector<std::string> order;
    auto child = [&](std::string name) -> Task<> {
        order.push_back(name);
        co_return;
    };
    auto g = coring::gather(child("a"), child("b"));
    order.push_back("created");
    co_await coring::sleep(0s); // the children's first steps run in this iteration
    order.push_back("yielded");
    co_await std::move(g);
    CHECK(order == std::vector<std::string>{"created", "a", "b", "yielded"});
}

TEST_CASE("gather: TaskHandles and Futures are used as they are", "[combinators][gather]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto task = coring::create_task(text_after(10ms, "kept"));
        coring::Future<int> fut;
        loop.call_later(20ms, [fut] { fut.set_result(7); });
        auto [s, v, w] = co_await coring::gather(task, fut, coring::sleep(5ms));
        CHECK(s == "kept");
        CHECK(v == 7);
        static_assert(std::is_same_v<decltype(w), std::monostate>);
        // Results of lvalue handles are copied: the task still has its own.
        CHECK(task.result() == "kept");
        CHECK(fut.result() == 7);
    });
}

CORING_TEST_CASE("gather: move-only results are moved out of the tasks", "[combinators][gather]") {
    auto make = [](int v) -> Task<std::unique_ptr<int>> {
        co_return std::make_unique<int>(v);
    };
    auto [a, b] = co_await coring::gather(make(1), make(2));
    REQUIRE(a);
    REQUIRE(b);
    CHECK(*a + *b == 3);
    auto h = coring::create_task(make(3));
    auto [c] = co_await coring::gather(std::move(h));
    REQUIRE(c);
    CHECK(*c == 3);
}

CORING_TEST_CASE("gather: reference results stay references", "[combinators][gather]") {
    static int storage = 5;
    auto ref = []() -> Task<int&> {
        co_return storage;
    };
    auto [r] = co_await coring::gather(ref());
    CHECK(&r == &storage);
    std::vector<Task<int&>> refs;
    refs.push_back(ref());
    auto v = co_await coring::gather(std::move(refs));
    CHECK(&v[0].get() == &storage);
}

TEST_CASE("gather: the first exception reaches the awaiter at once, the others keep running",
          "[combinators][gather]") {
    LogCapture logs;
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto start = loop.time();
        auto slow = coring::create_task(value_after(10s, 2));
        auto late_failure = coring::create_task(fail_after(5s, "late"));
        try {
            co_await coring::gather(fail_after(1s, "first"), slow, late_failure);
            FAIL("no exception");
        } catch (const std::runtime_error& e) {
            CHECK(std::string(e.what()) == "first");
        }
        CHECK_ELAPSED(loop, start, 1000);
        CHECK_FALSE(slow.done());
        CHECK_FALSE(slow.cancelled());
        int v = co_await slow;
        CHECK(v == 2);
        CHECK(late_failure.done());
    });
    // gather marked the later exception retrieved, as asyncio does.
    CHECK_FALSE(logs.contains("never retrieved"));
}

TEST_CASE("gather: a cancelled child makes gather raise CancelledError", "[combinators][gather]") {
    run_virtual([]() -> Task<> {
        auto victim = coring::create_task(value_after(1h, 1));
        auto other = coring::create_task(value_after(2s, 2));
        coring::get_running_loop().call_later(1s, [victim] { victim.cancel("victim"); });
        try {
            co_await coring::gather(victim, other);
            FAIL("no exception");
        } catch (const CancelledError& e) {
            CHECK(std::string(e.what()) == "victim");
        }
        CHECK_FALSE(other.done()); // it keeps running
        co_await other;
    });
}

TEST_CASE("gather: cancelling the awaiting task cancels every child still running",
          "[combinators][gather]") {
    run_virtual([]() -> Task<> {
        auto done_child = coring::create_task(value_after(1s, 1));
        std::vector<TaskHandle<int>> children{done_child,
                                              coring::create_task(value_after(1h, 2)),
                                              coring::create_task(value_after(2h, 3))};
        auto outer = coring::create_task([](std::vector<TaskHandle<int>> cs) -> Task<> {
            co_await coring::gather(cs);
        }(children));
        co_await coring::sleep(2s);
        CHECK(done_child.done());
        CHECK(outer.cancel("stop"));
        CO_CHECK_THROWS_WITH(outer, "stop");
        CHECK(outer.cancelled());
        CHECK_FALSE(children[0].cancelled());
        CHECK(children[1].cancelled());
        CHECK(children[2].cancelled());
    });
}

TEST_CASE("gather: a cancelled gather raises CancelledError even if the children refuse",
          "[combinators][gather]") {
    run_virtual([]() -> Task<> {
        auto stubborn = [](int v) -> Task<int> {
            try {
                co_await coring::sleep(1h);
            } catch (const CancelledError&) {
            }
            co_return v;
        };
        for (bool exceptions : {false, true}) {
            auto a = coring::create_task(stubborn(1));
            auto b = coring::create_task(stubborn(2));
            auto outer = coring::create_task(
                    [](TaskHandle<int> x, TaskHandle<int> y, bool ret) -> Task<> {
                        if (ret) {
                            co_await coring::gather(coring::return_exceptions, x, y);
                        } else {
                            co_await coring::gather(x, y);
                        }
                    }(a, b, exceptions));
            co_await coring::sleep(1s);
            outer.cancel();
            CO_CHECK_THROWS_AS(outer, CancelledError); // bpo-32684
            CHECK(a.result() == 1);
            CHECK(b.result() == 2);
        }
    });
}

TEST_CASE("gather: return_exceptions puts every outcome in place", "[combinators][gather]") {
    run_virtual([]() -> Task<> {
        auto victim = coring::create_task(value_after(1h, 0));
        coring::get_running_loop().call_later(1s, [victim] { victim.cancel("gone"); });
        auto [ok, bad, cancelled, empty] = co_await coring::gather(coring::return_exceptions,
                                                                   value_after(2s, 4),
                                                                   fail_after(1s, "broken"),
                                                                   victim,
                                                                   nothing_after(1ms));
        REQUIRE(ok.has_value());
        CHECK(*ok == 4);
        CHECK(ok.value() == 4);
        CHECK_FALSE(bad);
        CHECK(bad.holds<std::runtime_error>());
        CHECK_FALSE(bad.cancelled());
        CHECK(coring::describe_exception(bad.exception()) == "std::runtime_error: broken");
        CHECK_THROWS_AS(bad.value(), std::runtime_error);
        CHECK(cancelled.cancelled());
        CHECK(cancelled.has_exception());
        CHECK(empty.has_value());
        static_assert(std::is_same_v<decltype(empty), coring::Outcome<void>>);
    });
}

TEST_CASE("gather: return_exceptions over a range", "[combinators][gather]") {
    run_virtual([]() -> Task<> {
        std::vector<Task<int>> jobs;
        jobs.push_back(value_after(3ms, 1));
        jobs.push_back(fail_after(1ms, "x"));
        jobs.push_back(value_after(2ms, 3));
        auto outcomes = co_await coring::gather(coring::return_exceptions, std::move(jobs));
        REQUIRE(outcomes.size() == 3);
        CHECK(*outcomes[0] == 1);
        CHECK(outcomes[1].holds<std::runtime_error>());
        CHECK(*outcomes[2] == 3);
    });
}

TEST_CASE("gather: an lvalue range of handles leaves their results in place",
          "[combinators][gather]") {
    run_virtual([]() -> Task<> {
        std::vector<TaskHandle<std::string>> hs{coring::create_task(text_after(2ms, "a")),
                                                coring::create_task(text_after(1ms, "b"))};
        std::vector<std::string> copies = co_await coring::gather(hs);
        CHECK(copies == std::vector<std::string>{"a", "b"});
        CHECK(hs[0].result() == "a");
        std::vector<std::string> moved = co_await coring::gather(std::move(hs));
        CHECK(moved == std::vector<std::string>{"a", "b"});
    });
}

CORING_TEST_CASE("gather: a duplicate handle yields its result in both places",
                 "[combinators][gather]") {
    auto h = coring::create_task(value_after(1ms, 9));
    auto [a, b] = co_await coring::gather(h, h);
    CHECK(a == 9);
    CHECK(b == 9);
}

CORING_TEST_CASE("gather: awaiting a gather twice is an InvalidStateError",
                 "[combinators][gather]") {
    auto g = coring::gather(value_after(0ms, 1));
    auto [v] = co_await g;
    CHECK(v == 1);
    CO_CHECK_THROWS_AS(g, coring::InvalidStateError);
}

TEST_CASE("gather: a gather that is never awaited lets its children finish",
          "[combinators][gather]") {
    LogCapture logs;
    run_virtual([]() -> Task<> {
        bool finished = false;
        auto child = [&]() -> Task<> {
            co_await coring::sleep(1s);
            finished = true;
        };
        { auto g = coring::gather(child()); }
        co_await coring::sleep(2s);
        CHECK(finished);
    });
    CHECK_FALSE(logs.contains("destroyed"));
}

TEST_CASE("gather: an exception of a gather nobody awaits is still reported",
          "[combinators][gather]") {
    LogCapture logs;
    run_virtual([]() -> Task<> {
        { auto g = coring::gather(fail_after(1s, "unseen")); }
        co_await coring::sleep(2s);
    });
    CHECK(logs.contains("Task exception was never retrieved"));
    CHECK(logs.contains("unseen"));
}

CORING_TEST_CASE(
        "gather: a cancel arriving after the children finished still raises CancelledError",
        "[combinators][gather]") {
    EventLoop& loop = coring::get_running_loop();
    auto a = coring::create_task(value_after(0ms, 1));
    auto outer = coring::create_task([](TaskHandle<int> x) -> Task<int> {
        auto [v] = co_await coring::gather(x);
        co_return v;
    }(a));
    // Wait until the child is done and the gather's node has run (outer is scheduled to
    // wake), then cancel: asyncio's must_cancel wins over the finished outcome.
    while (!a.done()) {
        co_await coring::sleep(0s);
    }
    loop.call_soon([outer] { outer.cancel("late"); });
    CO_CHECK_THROWS_WITH(outer, "late");
}

TEST_CASE("gather: the awaiting task's stack shows the gather", "[combinators][gather][debug]") {
    run_virtual([]() -> Task<> {
        auto outer = coring::create_task(
                []() -> Task<> {
                    co_await coring::gather(
                            value_after(1s, 1), value_after(1h, 2), value_after(2h, 3));
                }(),
                "gatherer");
        co_await coring::sleep(2s);
        std::string stack = outer.get_stack();
        INFO(stack);
        CHECK(stack.find("waiting on gather of 3 (1 done)") != std::string::npos);
        outer.cancel();
        CO_CHECK_THROWS_AS(outer, CancelledError);
    });
}

TEST_CASE("gather: closing the loop under a pending gather leaks nothing",
          "[combinators][gather]") {
    LogCapture logs;
    {
        EventLoop loop;
        auto outer = loop.create_task([]() -> Task<> {
            co_await coring::gather(value_after(1h, 1), value_after(1h, 2));
        }());
        coring::testing::run_until_idle(loop);
        loop.close();
        CHECK_FALSE(outer.done());
    }
    CHECK(logs.contains("Task was destroyed but it is pending!"));
}
