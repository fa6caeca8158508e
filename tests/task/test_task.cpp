// SPDX-License-Identifier: MIT
// Tests of Task<T>, TaskHandle<T>, create_task, current_task, all_tasks (asyncio test_tasks).
// clang-format off
#include <coring/task.hpp> // first: it must compile on its own
// clang-format on

#include <coring/future.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/testing.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::EventLoop;
using coring::Task;
using coring::TaskHandle;
using coring::test::run_test;

namespace {

Task<int> answer() {
    co_await coring::sleep(1ms);
    co_return 42;
}

Task<int> immediate(int v) {
    co_return v;
}

Task<> fail_with(std::string what) {
    co_await coring::sleep(0s);
    throw std::runtime_error(what);
}

Task<int> level3() {
    co_await coring::sleep(0s);
    throw std::invalid_argument("deep failure");
    co_return 0;
}

Task<int> level2() {
    co_return co_await level3() + 1;
}

Task<int> level1() {
    co_return co_await level2() + 1;
}

Task<long> nested(int depth) {
    if (depth == 0) {
        co_return 0;
    }
    co_return 1 + co_await nested(depth - 1);
}

} // namespace

TEST_CASE("Task: run returns the main coroutine's value", "[task]") {
    CHECK(coring::run(answer()) == 42);
}

TEST_CASE("Task: a Task is lazy: nothing runs until it is awaited", "[task]") {
    bool started = false;
    auto make = [&]() -> Task<int> {
        started = true;
        co_return 1;
    };
    run_test([&]() -> Task<> {
        Task<int> t = make();
        CHECK_FALSE(started);
        int v = co_await std::move(t);
        CHECK(started);
        CHECK(v == 1);
    });
}

CORING_TEST_CASE("Task: exceptions propagate through three levels of co_await", "[task]") {
    try {
        co_await level1();
        FAIL("no exception");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()) == "deep failure");
    }
}

CORING_TEST_CASE("Task: a chain of 100,000 nested awaits does not overflow the stack",
                 "[task][deep]") {
    long depth = co_await nested(100'000);
    CHECK(depth == 100'000);
}

CORING_TEST_CASE("Task: 1,000,000 sequential awaits of ready tasks do not grow the stack",
                 "[task][deep]") {
    long sum = 0;
    for (int i = 0; i < 1'000'000; ++i) {
        sum += co_await immediate(1);
    }
    CHECK(sum == 1'000'000);
}

TEST_CASE("Task: T may be void, a reference or move-only", "[task]") {
    static int storage = 5;
    auto ref = []() -> Task<int&> {
        co_return storage;
    };
    auto move_only = []() -> Task<std::unique_ptr<int>> {
        co_return std::make_unique<int>(9);
    };
    auto nothing = []() -> Task<> {
        co_return;
    };
    run_test([&]() -> Task<> {
        int& r = co_await ref();
        CHECK(&r == &storage);
        std::unique_ptr<int> p = co_await move_only();
        REQUIRE(p);
        CHECK(*p == 9);
        co_await nothing();

        auto h = coring::create_task(move_only());
        std::unique_ptr<int> moved = co_await std::move(h);
        REQUIRE(moved);
        CHECK(*moved == 9);

        auto hr = coring::create_task(ref());
        int& awaited_ref = co_await hr;
        CHECK(&awaited_ref == &storage);
    });
}

CORING_TEST_CASE("Task: awaiting a Task twice is an InvalidStateError", "[task]") {
    Task<int> t = immediate(3);
    {
        auto awaited = co_await t;
        CHECK(awaited == 3);
    }
    CO_CHECK_THROWS_AS(t, coring::InvalidStateError);
    Task<int> empty;
    CO_CHECK_THROWS_AS(empty, coring::InvalidStateError);
}

CORING_TEST_CASE("Task: create_task starts the task on a later iteration, not inline", "[task]") {
    std::vector<std::string> order;
    auto child = [&]() -> Task<> {
        order.push_back("child");
        co_return;
    };
    auto h = coring::create_task(child());
    order.push_back("after create_task");
    co_await coring::sleep(0s);
    order.push_back("after yield");
    CHECK(order == std::vector<std::string>{"after create_task", "child", "after yield"});
    CHECK(h.done());
}

CORING_TEST_CASE("Task: tasks start in the order they were created", "[task]") {
    std::vector<int> order;
    auto child = [&](int i) -> Task<> {
        order.push_back(i);
        co_return;
    };
    std::vector<TaskHandle<>> hs;
    for (int i = 0; i < 10; ++i) {
        hs.push_back(coring::create_task(child(i)));
    }
    for (auto& h : hs) {
        co_await h;
    }
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

CORING_TEST_CASE("Task: a task runs to the end when its handle is dropped", "[task]") {
    bool finished = false;
    auto child = [&]() -> Task<> {
        co_await coring::sleep(2ms);
        finished = true;
    };
    static_cast<void>(coring::create_task(child()));
    co_await coring::sleep(10ms);
    CHECK(finished);
}

CORING_TEST_CASE("Task: the handle reports done, result, exception and name", "[task]") {
    auto ok = coring::create_task(answer(), "the-answer");
    CHECK_FALSE(ok.done());
    CHECK_THROWS_WITH(ok.result(), "Result is not set.");
    CHECK_THROWS_WITH(ok.exception(), "Exception is not set.");
    CHECK(ok.get_name() == "the-answer");
    co_await ok;
    CHECK(ok.done());
    CHECK_FALSE(ok.cancelled());
    CHECK(ok.result() == 42);
    CHECK(ok.exception() == nullptr);

    auto bad = coring::create_task(fail_with("nope"));
    CHECK(bad.get_name().rfind("Task-", 0) == 0);
    bad.set_name("renamed");
    CHECK(bad.get_name() == "renamed");
    try {
        co_await bad;
    } catch (const std::runtime_error&) {
    }
    CHECK(bad.done());
    REQUIRE(bad.exception() != nullptr);
    CHECK_THROWS_WITH(bad.result(), "nope");
    CHECK(&bad.get_loop() == &coring::get_running_loop());
}

CORING_TEST_CASE("Task: any number of coroutines may await the same task", "[task]") {
    auto shared = coring::create_task(answer());
    int total = 0;
    auto waiter = [&]() -> Task<> {
        total += co_await shared;
    };
    std::vector<TaskHandle<>> ws;
    for (int i = 0; i < 5; ++i) {
        ws.push_back(coring::create_task(waiter()));
    }
    for (auto& w : ws) {
        co_await w;
    }
    CHECK(total == 5 * 42);
}

CORING_TEST_CASE("Task: done callbacks run on a later iteration in registration order", "[task]") {
    std::vector<int> order;
    auto h = coring::create_task(immediate(1));
    h.add_done_callback([&](const TaskHandle<int>& t) { order.push_back(t.result()); });
    auto id = h.add_done_callback([&](const TaskHandle<int>&) { order.push_back(2); });
    h.add_done_callback([&](const TaskHandle<int>&) { order.push_back(3); });
    CHECK(h.remove_done_callback(id) == 1);
    CHECK(h.remove_done_callback(id) == 0);
    co_await h;
    co_await coring::sleep(0s);
    CHECK(order == std::vector<int>{1, 3});
    // Added after the task is done: scheduled at once, runs on a later iteration.
    h.add_done_callback([&](const TaskHandle<int>&) { order.push_back(4); });
    CHECK(order.size() == 2);
    co_await coring::sleep(0s);
    CHECK(order == std::vector<int>{1, 3, 4});
}

TEST_CASE("Task: an exception from a done callback goes to the exception handler", "[task]") {
    std::vector<std::string> messages;
    run_test(
            []() -> Task<> {
                auto h = coring::create_task(immediate(1));
                h.add_done_callback([](const TaskHandle<int>&) { throw std::runtime_error("cb"); });
                co_await h;
                co_await coring::sleep(0s);
            },
            [&](EventLoop& loop) {
                loop.set_exception_handler([&](EventLoop&, const coring::ExceptionContext& c) {
                    messages.push_back(c.message);
                });
            });
    REQUIRE(messages.size() == 1);
    CHECK(messages[0].find("Exception in callback") == 0);
}

TEST_CASE("Task: current_task and all_tasks", "[task]") {
    CHECK_THROWS_AS(coring::current_task(), coring::RuntimeError);
    run_test([]() -> Task<> {
        TaskHandle<> me = coring::current_task();
        REQUIRE(me);
        CHECK(me.get_name() == "test-main");
        TaskHandle<> inner_seen;
        auto child = [&]() -> Task<> {
            inner_seen = coring::current_task();
            co_await coring::sleep(1ms);
        };
        auto c = coring::create_task(child(), "child");
        auto tasks = coring::all_tasks();
        CHECK(tasks.size() == 2);
        co_await c;
        CHECK(inner_seen == TaskHandle<>(c));
        CHECK(coring::all_tasks().size() == 1);
    });
    EventLoop loop;
    int outside_task = -1;
    loop.call_soon([&] {
        outside_task = coring::current_task() ? 1 : 0;
        loop.stop();
    });
    loop.run_forever();
    CHECK(outside_task == 0);
}

CORING_TEST_CASE("Task: a task cannot await itself", "[task]") {
    auto self = std::make_shared<TaskHandle<>>();
    auto body = [self]() -> Task<> {
        co_await coring::sleep(0s);
        co_await *self;
    };
    auto h = coring::create_task(body());
    *self = h;
    try {
        co_await h;
        FAIL("no exception");
    } catch (const coring::RuntimeError& e) {
        CHECK(std::string(e.what()).find("Task cannot await on itself") == 0);
    }
    *self = TaskHandle<>();
}

TEST_CASE("Task: create_task on a closed loop or without a running loop is an error", "[task]") {
    CHECK_THROWS_WITH(coring::create_task(immediate(1)), "no running event loop");
    EventLoop loop;
    loop.close();
    CHECK_THROWS_WITH(loop.create_task(immediate(1)), "Event loop is closed");
}

TEST_CASE("Task: run_until_complete with a task, a future and an awaitable", "[task]") {
    EventLoop loop;
    CHECK(loop.run_until_complete(answer()) == 42);
    auto h = loop.create_task(immediate(7));
    CHECK(loop.run_until_complete(h) == 7);
    coring::Future<int> f(loop);
    loop.call_soon([f] { f.set_result(11); });
    CHECK(loop.run_until_complete(f) == 11);
    CHECK_THROWS_WITH(loop.run_until_complete(fail_with("from run_until_complete")),
                      "from run_until_complete");
}

TEST_CASE("Task: run_until_complete reports a loop stopped before the task finished", "[task]") {
    EventLoop loop;
    auto h = loop.create_task(answer());
    loop.call_soon([&] { loop.stop(); });
    CHECK_THROWS_WITH(loop.run_until_complete(h), "Event loop stopped before Future completed.");
    CHECK(loop.run_until_complete(h) == 42);
}

TEST_CASE("Task: a failed task whose exception is never retrieved is reported", "[task]") {
    std::vector<coring::ExceptionContext> reports;
    run_test(
            []() -> Task<> {
                static_cast<void>(coring::create_task(fail_with("lost error"), "careless"));
                co_await coring::sleep(1ms);
            },
            [&](EventLoop& loop) {
                loop.set_exception_handler([&](EventLoop&, const coring::ExceptionContext& c) {
                    reports.push_back(c);
                });
            });
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].message == "Task exception was never retrieved");
    CHECK(reports[0].task == "careless");
    CHECK(coring::describe_exception(reports[0].exception).find("lost error") != std::string::npos);
}

TEST_CASE("Task: an exception that was retrieved is not reported", "[task]") {
    std::vector<std::string> reports;
    run_test(
            []() -> Task<> {
                auto h = coring::create_task(fail_with("seen"));
                co_await coring::sleep(1ms);
                CHECK(h.exception() != nullptr);
            },
            [&](EventLoop& loop) {
                loop.set_exception_handler([&](EventLoop&, const coring::ExceptionContext& c) {
                    reports.push_back(c.message);
                });
            });
    CHECK(reports.empty());
}

TEST_CASE("Task: debug mode reports a coroutine that was never awaited", "[task][debug]") {
    coring::test::LogCapture logs;
    EventLoop loop(coring::EventLoopOptions{1024, true});
    loop.run_until_complete([]() -> Task<> {
        Task<int> forgotten = answer();
        co_return;
    }());
    CHECK(logs.contains("coroutine 'answer' was never awaited"));
    CHECK(logs.contains("test_task.cpp"));
}

TEST_CASE("Task: without debug mode an unawaited coroutine is destroyed silently",
          "[task][debug]") {
    coring::test::LogCapture logs;
    EventLoop loop(coring::EventLoopOptions{1024, false});
    loop.run_until_complete([]() -> Task<> {
        Task<int> forgotten = answer();
        co_return;
    }());
    CHECK_FALSE(logs.contains("never awaited"));
}

TEST_CASE("Task: debug mode reports a slow task step with the task's name", "[task][debug]") {
    coring::test::LogCapture logs;
    EventLoop loop(coring::EventLoopOptions{1024, true});
    loop.set_slow_callback_duration(5ms);
    auto slow = []() -> Task<> {
        std::this_thread::sleep_for(20ms); // blocks the loop: exactly what debug mode flags
        co_return;
    };
    loop.run_until_complete(loop.create_task(slow(), "sluggish"));
    CHECK(logs.contains("WARNING: Executing <Task 'sluggish'"));
    CHECK(logs.contains("took 0.0"));
}

TEST_CASE("Task: frames and their locals are destroyed when a task ends", "[task]") {
    coring::test::Counted::reset();
    run_test([]() -> Task<> {
        auto child = []() -> Task<int> {
            coring::test::Counted c(3);
            co_await coring::sleep(0s);
            co_return c.value;
        };
        auto h = coring::create_task(child());
        co_await coring::sleep(0s);
        CHECK(coring::test::Counted::alive == 1);
        {
            auto awaited = co_await h;
            CHECK(awaited == 3);
        }
        CHECK(coring::test::Counted::alive == 0);
    });
}

CORING_TEST_CASE("Task: get_stack shows the chain of awaits and what the task waits on",
                 "[task][debug]") {
    auto inner = []() -> Task<> {
        co_await coring::sleep(1h);
    };
    auto outer = [&]() -> Task<> {
        co_await inner();
    };
    auto h = coring::create_task(outer(), "stuck");
    co_await coring::sleep(0s);
    std::string stack = h.get_stack();
    INFO(stack);
    CHECK(stack.find("Task 'stuck' (pending)") == 0);
    CHECK(stack.find("waiting on sleep 3600.000 s") != std::string::npos);
    CHECK(stack.find("test_task.cpp") != std::string::npos);
    h.cancel();
    CO_CHECK_THROWS_AS(h, coring::CancelledError);
}
