// SPDX-License-Identifier: MIT
// Tests of Future<T> (asyncio test_futures).
// clang-format off
#include <coring/future.hpp> // first: it must compile on its own
// clang-format on

#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::EventLoop;
using coring::Future;
using coring::Task;
using coring::test::run_test;

TEST_CASE("Future: a new future is pending, result and exception say so", "[future]") {
    EventLoop loop;
    Future<int> f(loop);
    CHECK_FALSE(f.done());
    CHECK_FALSE(f.cancelled());
    CHECK_THROWS_AS(f.result(), coring::InvalidStateError);
    CHECK_THROWS_WITH(f.result(), "Result is not set.");
    CHECK_THROWS_WITH(f.exception(), "Exception is not set.");
    CHECK(&f.get_loop() == &loop);
}

TEST_CASE("Future: Future() without a running loop is an error", "[future]") {
    CHECK_THROWS_WITH(Future<int>(), "no running event loop");
}

TEST_CASE("Future: set_result makes it done, a second set is an InvalidStateError", "[future]") {
    EventLoop loop;
    Future<std::string> f(loop);
    f.set_result("hello");
    CHECK(f.done());
    CHECK(f.result() == "hello");
    CHECK(f.exception() == nullptr);
    CHECK_THROWS_AS(f.set_result("again"), coring::InvalidStateError);
    CHECK_THROWS_WITH(f.set_result("again"), "FINISHED: Future");
    CHECK_THROWS_AS(f.set_exception(std::make_exception_ptr(std::runtime_error("x"))),
                    coring::InvalidStateError);
    CHECK_FALSE(f.cancel());
}

TEST_CASE("Future: set_exception makes result rethrow", "[future]") {
    EventLoop loop;
    Future<int> f(loop);
    f.set_exception(std::make_exception_ptr(std::runtime_error("bad")));
    CHECK(f.done());
    CHECK_THROWS_WITH(f.result(), "bad");
    CHECK(f.exception() != nullptr);
}

TEST_CASE("Future: cancel makes result throw CancelledError with the message", "[future]") {
    EventLoop loop;
    Future<int> f(loop);
    CHECK(f.cancel("why"));
    CHECK(f.cancelled());
    CHECK(f.done());
    CHECK_FALSE(f.cancel());
    try {
        f.result();
        FAIL("no exception");
    } catch (const coring::CancelledError& e) {
        CHECK(std::string(e.what()) == "why");
    }
    CHECK_THROWS_AS(f.set_result(1), coring::InvalidStateError);
    CHECK_THROWS_WITH(f.set_result(1), "CANCELLED: Future");
}

CORING_TEST_CASE("Future: awaiting yields the value, several coroutines may await it", "[future]") {
    Future<int> f;
    int sum = 0;
    auto waiter = [&]() -> Task<> {
        sum += co_await f;
    };
    auto a = coring::create_task(waiter());
    auto b = coring::create_task(waiter());
    coring::get_running_loop().call_later(1ms, [f] { f.set_result(21); });
    co_await a;
    co_await b;
    CHECK(sum == 42);
    {
        auto awaited = co_await f;
        CHECK(awaited == 21); // done already: no suspension
    }
}

CORING_TEST_CASE("Future: awaiting a failed future rethrows, a cancelled one raises CancelledError",
                 "[future]") {
    Future<> failed;
    failed.set_exception(std::make_exception_ptr(std::logic_error("nope")));
    CO_CHECK_THROWS_AS(failed, std::logic_error);
    Future<> cancelled;
    coring::get_running_loop().call_soon([cancelled] { cancelled.cancel(); });
    CO_CHECK_THROWS_AS(cancelled, coring::CancelledError);
}

CORING_TEST_CASE("Future: an rvalue future yields its value moved out", "[future]") {
    Future<std::unique_ptr<int>> f;
    f.set_result(std::make_unique<int>(4));
    std::unique_ptr<int> p = co_await Future<std::unique_ptr<int>>(f);
    REQUIRE(p);
    CHECK(*p == 4);
}

TEST_CASE("Future: done callbacks run later, in order, and can be removed", "[future]") {
    EventLoop loop;
    Future<int> f(loop);
    std::vector<int> order;
    f.add_done_callback([&](const Future<int>& x) { order.push_back(x.result()); });
    auto id = f.add_done_callback([&](const Future<int>&) { order.push_back(-1); });
    f.add_done_callback([&](const Future<int>& x) { order.push_back(x.result() * 10); });
    CHECK(f.remove_done_callback(id) == 1);
    f.set_result(2);
    CHECK(order.empty()); // scheduled, not run inline
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    CHECK(order == std::vector<int>{2, 20});
}

TEST_CASE("Future: an exception nobody retrieved is reported when the future dies", "[future]") {
    std::vector<std::string> reports;
    EventLoop loop;
    loop.set_exception_handler(
            [&](EventLoop&, const coring::ExceptionContext& c) { reports.push_back(c.message); });
    {
        Future<int> f(loop);
        f.set_exception(std::make_exception_ptr(std::runtime_error("forgotten")));
    }
    {
        Future<int> g(loop);
        g.set_exception(std::make_exception_ptr(std::runtime_error("looked at")));
        CHECK(g.exception() != nullptr);
    }
    REQUIRE(reports.size() == 1);
    CHECK(reports[0] == "Future exception was never retrieved");
}

TEST_CASE("Future: a future outlives its closed loop but cannot be set", "[future]") {
    std::optional<Future<int>> f;
    {
        EventLoop loop;
        f.emplace(loop);
    }
    CHECK_FALSE(f->done());
    CHECK_THROWS_WITH(f->set_result(1), "Event loop is closed");
    CHECK_THROWS_AS(f->get_loop(), coring::RuntimeError);
}

TEST_CASE("Future: awaiting a future of another loop is an error", "[future]") {
    EventLoop other;
    other.set_name("other");
    Future<int> foreign(other);
    run_test([&]() -> Task<> {
        coring::get_running_loop().set_name("main");
        CO_CHECK_THROWS_WITH(foreign,
                             "Future is attached to a different loop (it belongs to loop "
                             "'other', awaited on loop 'main')");
        co_return;
    });
}
