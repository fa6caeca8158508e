// SPDX-License-Identifier: MIT
// Tests of task cancellation (asyncio test_tasks: test_cancel_*): before start, while sleeping,
// while awaiting another task or a future, in the kernel, after completion, suppressed.
// clang-format off
#include <coring/task.hpp> // first: it must compile on its own
// clang-format on

#include <coring/future.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/testing/catch2.hpp>

#include <coring/detail/io_operation.hpp>

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::CancelledError;
using coring::EventLoop;
using coring::Task;
using coring::TaskHandle;

namespace {

Task<int> sleeper(std::chrono::milliseconds d, int v) {
    co_await coring::sleep(d);
    co_return v;
}

struct Pipe {
    int r = -1;
    int w = -1;

    Pipe() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        r = fds[0];
        w = fds[1];
    }

    ~Pipe() {
        ::close(r);
        ::close(w);
    }
};

Task<int> read_pipe(int fd, char* buf, unsigned n) {
    int res = co_await coring::detail::io_op(
            "read", [=](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, buf, n, 0); });
    co_return res;
}

} // namespace

TEST_CASE("Cancel: CancelledError is not a std::exception", "[task][cancel]") {
    bool caught_as_std = false;
    bool caught_by_name = false;
    try {
        try {
            throw CancelledError("stop");
        } catch (const std::exception&) {
            caught_as_std = true;
        }
    } catch (const CancelledError& e) {
        caught_by_name = true;
        CHECK(std::string(e.what()) == "stop");
    }
    CHECK_FALSE(caught_as_std);
    CHECK(caught_by_name);
    CHECK(std::string(CancelledError().what()) == "cancelled");
}

CORING_TEST_CASE("Cancel: a task cancelled before it starts never runs", "[task][cancel]") {
    bool ran = false;
    auto body = [&]() -> Task<> {
        ran = true;
        co_return;
    };
    auto h = coring::create_task(body());
    CHECK(h.cancel());
    CHECK_FALSE(h.cancelled()); // cancel() asks; the task is cancelled when it next runs
    CHECK(h.cancelling() == 1);
    CO_CHECK_THROWS_AS(h, CancelledError);
    CHECK_FALSE(ran);
    CHECK(h.cancelled());
    CHECK_THROWS_AS(h.result(), CancelledError);
    CHECK_THROWS_AS(h.exception(), CancelledError);
}

CORING_TEST_CASE("Cancel: a sleeping task is woken with CancelledError at once", "[task][cancel]") {
    EventLoop& loop = coring::get_running_loop();
    auto h = coring::create_task(sleeper(1h, 1));
    co_await coring::sleep(0s);
    CHECK(loop.timer_count() == 1);
    auto before = loop.time();
    CHECK(h.cancel("enough"));
    CHECK(loop.timer_count() == 0); // the timer left the heap
    try {
        co_await h;
        FAIL("no exception");
    } catch (const CancelledError& e) {
        CHECK(std::string(e.what()) == "enough");
    }
    CHECK(loop.time() - before < 1s);
}

CORING_TEST_CASE("Cancel: cancel() on a finished task returns false", "[task][cancel]") {
    auto h = coring::create_task(sleeper(0ms, 5));
    {
        auto awaited = co_await h;
        CHECK(awaited == 5);
    }
    CHECK_FALSE(h.cancel());
    CHECK_FALSE(h.cancelled());
    CHECK(h.result() == 5);
}

CORING_TEST_CASE("Cancel: a task may catch CancelledError and go on", "[task][cancel]") {
    auto stubborn = []() -> Task<int> {
        try {
            co_await coring::sleep(1h);
        } catch (const CancelledError&) {
            // refuse the cancellation
        }
        co_await coring::sleep(1ms);
        co_return 7;
    };
    auto h = coring::create_task(stubborn());
    co_await coring::sleep(0s);
    CHECK(h.cancel());
    {
        auto awaited = co_await h;
        CHECK(awaited == 7);
    }
    CHECK_FALSE(h.cancelled());
    CHECK(h.cancelling() == 1);
    CHECK(h.uncancel() == 0);
    CHECK(h.uncancel() == 0);
}

CORING_TEST_CASE("Cancel: cancelling a task that awaits another task cancels that one too",
                 "[task][cancel]") {
    auto inner = coring::create_task(sleeper(1h, 1), "inner");
    auto outer_body = [&]() -> Task<int> {
        co_return co_await inner;
    };
    auto outer = coring::create_task(outer_body(), "outer");
    co_await coring::sleep(0s);
    CHECK(outer.cancel("from test"));
    try {
        co_await outer;
        FAIL("no exception");
    } catch (const CancelledError& e) {
        CHECK(std::string(e.what()) == "from test");
    }
    CHECK(inner.cancelled());
    CHECK(outer.cancelled());
}

CORING_TEST_CASE("Cancel: a task awaiting a task that refuses cancellation gets its result",
                 "[task][cancel]") {
    auto refuse = []() -> Task<int> {
        try {
            co_await coring::sleep(1h);
        } catch (const CancelledError&) {
        }
        co_return 3;
    };
    auto inner = coring::create_task(refuse());
    auto outer_body = [&]() -> Task<int> {
        co_return co_await inner;
    };
    auto outer = coring::create_task(outer_body());
    co_await coring::sleep(0s);
    CHECK(outer.cancel());
    // As in asyncio: the inner task's cancel() succeeded, so the outer one was not marked;
    // the inner task then returned normally and the outer gets its value.
    {
        auto awaited = co_await outer;
        CHECK(awaited == 3);
    }
}

CORING_TEST_CASE("Cancel: cancelling a task that awaits a future cancels the future",
                 "[task][cancel]") {
    coring::Future<int> fut;
    auto waiter = [&]() -> Task<int> {
        co_return co_await fut;
    };
    auto h = coring::create_task(waiter());
    co_await coring::sleep(0s);
    CHECK(h.cancel());
    CO_CHECK_THROWS_AS(h, CancelledError);
    CHECK(fut.cancelled());
}

CORING_TEST_CASE(
        "Cancel: a cancellation that arrives after the wake-up is thrown at the resumption",
        "[task][cancel]") {
    coring::Future<int> fut;
    bool resumed_normally = false;
    auto waiter = [&]() -> Task<> {
        co_await fut;
        resumed_normally = true;
    };
    auto h = coring::create_task(waiter());
    co_await coring::sleep(0s);
    fut.set_result(1); // the waiter is now scheduled
    CHECK(h.cancel()); // ... and cancelled before it runs: asyncio's _must_cancel path
    CO_CHECK_THROWS_AS(h, CancelledError);
    CHECK_FALSE(resumed_normally);
    CHECK_FALSE(fut.cancelled());
}

CORING_TEST_CASE("Cancel: a task cancelled while running is cancelled at its next suspension point",
                 "[task][cancel]") {
    int steps = 0;
    auto self_cancel = [&]() -> Task<> {
        ++steps;
        coring::current_task().cancel();
        ++steps; // still running: cancel() only asked
        co_await coring::sleep(1h);
        ++steps;
    };
    auto h = coring::create_task(self_cancel());
    CO_CHECK_THROWS_AS(h, CancelledError);
    CHECK(steps == 2);
}

CORING_TEST_CASE("Cancel: a task that returns with a cancellation pending ends cancelled",
                 "[task][cancel]") {
    auto body = []() -> Task<int> {
        coring::current_task().cancel();
        co_return 1;
    };
    auto h = coring::create_task(body());
    CO_CHECK_THROWS_AS(h, CancelledError);
    CHECK(h.cancelled());
}

CORING_TEST_CASE("Cancel: uncancel withdraws a pending cancellation", "[task][cancel]") {
    auto body = []() -> Task<int> {
        auto me = coring::current_task();
        me.cancel();
        CHECK(me.cancelling() == 1);
        CHECK(me.uncancel() == 0);
        co_await coring::sleep(1ms); // no CancelledError: the request was withdrawn
        co_return 1;
    };
    {
        auto awaited = co_await coring::create_task(body());
        CHECK(awaited == 1);
    }
}

CORING_TEST_CASE(
        "Cancel: an I/O operation is cancelled in the kernel and the task resumes after it",
        "[task][cancel][io]") {
    EventLoop& loop = coring::get_running_loop();
    Pipe p;
    char buf[16];
    auto h = coring::create_task(read_pipe(p.r, buf, sizeof buf));
    co_await coring::sleep(1ms);
    CHECK(loop.io_in_flight() == 1); // the read is in the kernel, blocked on the empty pipe
    CHECK(h.cancel());
    CHECK_FALSE(h.done());
    CO_CHECK_THROWS_AS(h, CancelledError);
    // The task resumed only once the kernel gave the read back.
    CHECK(loop.io_in_flight() == 0);
    // Nothing was consumed: data written now is still there for the next reader.
    REQUIRE(::write(p.w, "x", 1) == 1);
    int n = co_await read_pipe(p.r, buf, sizeof buf);
    CHECK(n == 1);
}

CORING_TEST_CASE("Cancel: a completed I/O result wins the race and the cancellation waits",
                 "[task][cancel][io]") {
    Pipe p;
    char buf[16];
    int got = -1;
    bool cancelled_later = false;
    auto reader = [&]() -> Task<> {
        got = co_await read_pipe(p.r, buf, sizeof buf);
        try {
            co_await coring::sleep(1h);
        } catch (const CancelledError&) {
            cancelled_later = true;
            throw;
        }
    };
    REQUIRE(::write(p.w, "abc", 3) == 3); // the read completes as soon as it is submitted
    auto h = coring::create_task(reader());
    co_await coring::sleep(0s); // reader submits its read
    co_await coring::sleep(0s); // the completion arrives; reader is scheduled
    h.cancel();
    CO_CHECK_THROWS_AS(h, CancelledError);
    CHECK(got == 3); // the data was not lost
    CHECK(cancelled_later);
}

CORING_TEST_CASE("Cancel: an I/O operation awaited with a cancellation pending is never submitted",
                 "[task][cancel][io]") {
    EventLoop& loop = coring::get_running_loop();
    Pipe p;
    char buf[4];
    auto body = [&]() -> Task<int> {
        coring::current_task().cancel();
        co_return co_await read_pipe(p.r, buf, sizeof buf);
    };
    auto h = coring::create_task(body());
    CO_CHECK_THROWS_AS(h, CancelledError);
    CHECK(loop.io_in_flight() == 0);
}

CORING_TEST_CASE("Cancel: catch (const std::exception&) does not swallow a cancellation",
                 "[task][cancel]") {
    bool swallowed = false;
    auto body = [&]() -> Task<> {
        try {
            co_await coring::sleep(1h);
        } catch (const std::exception&) {
            swallowed = true;
        }
    };
    auto h = coring::create_task(body());
    co_await coring::sleep(0s);
    h.cancel();
    CO_CHECK_THROWS_AS(h, CancelledError);
    CHECK_FALSE(swallowed);
}

TEST_CASE("Cancel: run() cancels and awaits the tasks main leaves behind", "[task][cancel][run]") {
    static int cleaned_up = 0;
    cleaned_up = 0;
    auto background = []() -> Task<> {
        try {
            co_await coring::sleep(1h);
        } catch (const CancelledError&) {
            ++cleaned_up;
            throw;
        }
    };
    auto main_task = [&]() -> Task<int> {
        for (int i = 0; i < 3; ++i) {
            static_cast<void>(coring::create_task(background()));
        }
        co_await coring::sleep(1ms);
        co_return 5;
    };
    CHECK(coring::run(main_task()) == 5);
    CHECK(cleaned_up == 3);
}

TEST_CASE("Cancel: run() reports a leftover task that fails while being cancelled",
          "[task][cancel][run]") {
    coring::test::LogCapture logs;
    auto background = []() -> Task<> {
        try {
            co_await coring::sleep(1h);
        } catch (const CancelledError&) {
            throw std::runtime_error("cleanup failed");
        }
    };
    auto main_task = [&]() -> Task<> {
        static_cast<void>(coring::create_task(background(), "messy"));
        co_await coring::sleep(1ms);
    };
    coring::run(main_task());
    CHECK(logs.contains("unhandled exception during coring::run() shutdown"));
    CHECK(logs.contains("messy"));
    CHECK(logs.contains("cleanup failed"));
}

TEST_CASE("Cancel: run() rethrows the main task's exception", "[task][run]") {
    auto main_task = []() -> Task<int> {
        co_await coring::sleep(0s);
        throw std::out_of_range("main failed");
    };
    CHECK_THROWS_AS(coring::run(main_task()), std::out_of_range);
}

CORING_TEST_CASE("Cancel: run() inside a running loop is an error", "[task][run]") {
    CHECK_THROWS_WITH(coring::run(sleeper(0ms, 1)),
                      "coring::run() cannot be called from a running event loop");
    co_return;
}

TEST_CASE("Cancel: closing a loop destroys its pending tasks and reports them", "[task][cancel]") {
    coring::test::Counted::reset();
    std::vector<std::string> reports;
    {
        EventLoop loop;
        loop.set_exception_handler([&](EventLoop&, const coring::ExceptionContext& c) {
            reports.push_back(c.message + " " + c.task);
        });
        auto body = []() -> Task<> {
            coring::test::Counted guard;
            co_await coring::sleep(1h);
        };
        static_cast<void>(loop.create_task(body(), "abandoned"));
        loop.run_until_complete(sleeper(1ms, 0));
        CHECK(coring::test::Counted::alive == 1);
        loop.close();
        CHECK(coring::test::Counted::alive == 0);
    }
    REQUIRE(reports.size() == 1);
    CHECK(reports[0] == "Task was destroyed but it is pending! Task 'abandoned'");
}

TEST_CASE("Cancel: closing a loop with an I/O operation in the kernel drains it first",
          "[task][cancel][io]") {
    coring::test::LogCapture logs;
    Pipe p;
    char buf[8];
    {
        EventLoop loop;
        static_cast<void>(loop.create_task(read_pipe(p.r, buf, sizeof buf)));
        loop.run_until_complete(sleeper(1ms, 0));
        CHECK(loop.io_in_flight() == 1);
        loop.close();
        CHECK(loop.io_in_flight() == 0);
    }
    CHECK(logs.contains("Task was destroyed but it is pending!"));
}

TEST_CASE("Cancel: a handle that outlives its loop stays usable", "[task][cancel]") {
    TaskHandle<int> pending;
    TaskHandle<int> finished;
    {
        coring::test::LogCapture logs;
        EventLoop loop;
        pending = loop.create_task(sleeper(1h, 1));
        finished = loop.create_task(sleeper(0ms, 2));
        loop.run_until_complete(finished);
        loop.close();
    }
    CHECK_FALSE(pending.done());
    CHECK_FALSE(pending.cancel()); // its loop is gone
    CHECK(finished.result() == 2);
    CHECK_THROWS_AS(finished.get_loop(), coring::RuntimeError);
    coring::test::LogCapture logs;
    pending = TaskHandle<int>(); // the last reference: the frame goes now, and says so
    CHECK(logs.contains("Task was destroyed but it is pending!"));
}
