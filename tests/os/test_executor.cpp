// SPDX-License-Identifier: MIT
// Tests of executors and thread hand-offs (asyncio test_base_events run_in_executor,
// test_threads, test_tasks run_coroutine_threadsafe).
// clang-format off
#include <coring/executor.hpp> // first: it must compile on its own
// clang-format on

#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::EventLoop;
using coring::Task;
using coring::test::run_test;

namespace {

// A latch other threads can wait on; the loop thread opens it.
class Gate {
public:
    void open() {
        {
            std::lock_guard lock(m_);
            open_ = true;
        }
        cv_.notify_all();
    }

    void wait() {
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return open_; });
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    bool open_ = false;
};

// An Executor that runs each piece of work on a fresh detached-then-joined thread and counts.
class CountingExecutor final : public coring::Executor {
public:
    ~CountingExecutor() override { shutdown(true); }

    void submit(coring::Work work) override {
        std::lock_guard lock(m_);
        if (shut_) {
            throw coring::RuntimeError("shut down");
        }
        ++submitted;
        threads_.emplace_back([w = std::move(work)]() mutable { w(); });
    }

    void shutdown(bool) override {
        std::vector<std::thread> ts;
        {
            std::lock_guard lock(m_);
            shut_ = true;
            ++shutdowns;
            ts.swap(threads_);
        }
        for (auto& t : ts) {
            t.join();
        }
    }

    std::atomic<int> submitted{0};
    std::atomic<int> shutdowns{0};

private:
    std::mutex m_;
    std::vector<std::thread> threads_;
    bool shut_ = false;
};

} // namespace

CORING_TEST_CASE("Executor: to_thread runs the function on another thread and returns its value",
                 "[os][executor][threads]") {
    auto loop_thread = std::this_thread::get_id();
    std::thread::id worker;
    int v = co_await coring::to_thread(
            [&worker](int a, int b) {
                worker = std::this_thread::get_id();
                return a * b;
            },
            6,
            7);
    CHECK(v == 42);
    CHECK(worker != loop_thread);
}

CORING_TEST_CASE("Executor: an exception thrown by the function reaches the awaiter",
                 "[os][executor][threads]") {
    CO_CHECK_THROWS_WITH(coring::to_thread([]() -> int { throw std::runtime_error("in pool"); }),
                         "in pool");
    co_await coring::to_thread([] {}); // void functions work too
}

CORING_TEST_CASE("Executor: the loop keeps running while the pool works",
                 "[os][executor][threads]") {
    Gate gate;
    int ticks = 0;
    auto work = coring::to_thread([&gate] {
        gate.wait();
        return 1;
    });
    // The worker blocks until the loop, which is free meanwhile, opens the gate.
    for (int i = 0; i < 3; ++i) {
        co_await coring::sleep(1ms);
        ++ticks;
    }
    gate.open();
    int r = co_await work;
    CHECK(r == 1);
    CHECK(ticks == 3);
}

TEST_CASE("Executor: run_in_executor uses a user-provided executor", "[os][executor][threads]") {
    CountingExecutor pool;
    run_test([&]() -> Task<> {
        std::string s = co_await coring::run_in_executor(&pool, [] { return std::string("mine"); });
        CHECK(s == "mine");
        CHECK(pool.submitted == 1);
    });
}

TEST_CASE("Executor: cancelling before the work starts means it never runs",
          "[os][executor][threads]") {
    coring::ThreadPoolExecutor pool(1);
    run_test([&]() -> Task<> {
        Gate gate;
        std::atomic<bool> second_ran{false};
        auto blocker = coring::run_in_executor(&pool, [&gate] { gate.wait(); });
        auto second = coring::run_in_executor(&pool, [&] { second_ran = true; });
        CHECK(second.cancel());
        // As in asyncio (_chain_future), the cancel reaches the pool through a done callback,
        // which runs on the next iteration.
        co_await coring::sleep(0s);
        gate.open();
        co_await blocker;
        // Give the single worker a chance to reach the cancelled item.
        co_await coring::run_in_executor(&pool, [] {});
        CHECK_FALSE(second_ran.load());
        CHECK(second.cancelled());
    });
}

CORING_TEST_CASE("Executor: cancelling the awaiting task while the work runs drops the result",
                 "[os][executor][threads]") {
    Gate started;
    Gate release;
    Gate finished;
    auto waiter = [&]() -> Task<int> {
        co_return co_await coring::to_thread([&] {
            started.open();
            release.wait();
            finished.open();
            return 5;
        });
    };
    auto h = coring::create_task(waiter());
    co_await coring::to_thread([&] { started.wait(); });
    h.cancel();
    CO_CHECK_THROWS_AS(h, coring::CancelledError);
    release.open();
    // The work runs to its end although nobody waits for its result any more.
    co_await coring::to_thread([&] { finished.wait(); });
}

CORING_TEST_CASE("Executor: after shutdown_default_executor the default executor refuses work",
                 "[os][executor][threads]") {
    int v = co_await coring::to_thread([] { return 1; });
    CHECK(v == 1);
    co_await coring::shutdown_default_executor(coring::get_running_loop());
    CHECK_THROWS_WITH(coring::to_thread([] { return 2; }), "Executor shutdown has been called");
}

TEST_CASE("Executor: run() shuts the default executor down", "[os][executor][threads]") {
    auto pool = std::make_shared<CountingExecutor>();
    auto main_task = [](std::shared_ptr<CountingExecutor> p) -> Task<int> {
        coring::set_default_executor(coring::get_running_loop(), p);
        co_return co_await coring::to_thread([] { return 3; });
    };
    CHECK(coring::run(main_task(pool)) == 3);
    CHECK(pool->submitted == 1);
    CHECK(pool->shutdowns >= 1);
}

TEST_CASE("Executor: a thread pool grows on demand up to max_workers", "[os][executor][threads]") {
    coring::ThreadPoolExecutor pool(3);
    CHECK(pool.max_workers() == 3);
    CHECK(pool.thread_count() == 0);
    run_test([&]() -> Task<> {
        Gate gate;
        std::vector<coring::Future<>> fs;
        for (int i = 0; i < 5; ++i) {
            fs.push_back(coring::run_in_executor(&pool, [&gate] { gate.wait(); }));
        }
        gate.open();
        for (auto& f : fs) {
            co_await f;
        }
        CHECK(pool.thread_count() == 3);
    });
    coring::ThreadPoolExecutor defaults;
    CHECK(defaults.max_workers() ==
          std::min<std::size_t>(32, std::thread::hardware_concurrency() + 4));
}

TEST_CASE("Executor: work that outlives its loop finishes without touching it",
          "[os][executor][threads]") {
    CountingExecutor pool;
    Gate release;
    std::atomic<bool> done{false};
    {
        EventLoop loop;
        loop.run_until_complete([&]() -> Task<> {
            auto f = coring::run_in_executor(&pool, [&] {
                release.wait();
                done = true;
            });
            static_cast<void>(f);
            co_return;
        }());
        loop.close();
    }
    release.open();
    pool.shutdown(true); // the work finishes and finds the loop gone
    CHECK(done.load());
}

TEST_CASE("run_coroutine_threadsafe: another thread gets the coroutine's result",
          "[os][executor][threads]") {
    EventLoop loop;
    int result = 0;
    std::thread client;
    auto compute = [](int x) -> Task<int> {
        co_await coring::sleep(1ms);
        co_return x * 2;
    };
    loop.run_until_complete([&]() -> Task<> {
        client = std::thread([&] {
            auto f = coring::run_coroutine_threadsafe(compute(21), loop);
            result = f.get();
        });
        co_await coring::to_thread([&] { client.join(); });
    }());
    CHECK(result == 42);
}

TEST_CASE("run_coroutine_threadsafe: exceptions and timeouts reach the caller",
          "[os][executor][threads]") {
    EventLoop loop;
    std::string error;
    bool timed_out = false;
    auto failing = []() -> Task<int> {
        co_await coring::sleep(1ms);
        throw std::runtime_error("remote failure");
    };
    auto slow = []() -> Task<int> {
        co_await coring::sleep(1h);
        co_return 0;
    };
    loop.run_until_complete([&]() -> Task<> {
        co_await coring::to_thread([&] {
            auto f = coring::run_coroutine_threadsafe(failing(), loop);
            try {
                f.get();
            } catch (const std::runtime_error& e) {
                error = e.what();
            }
            auto g = coring::run_coroutine_threadsafe(slow(), loop);
            try {
                g.result(5ms);
            } catch (const coring::TimeoutError&) {
                timed_out = true;
            }
            g.cancel();
        });
    }());
    CHECK(error == "remote failure");
    CHECK(timed_out);
}

TEST_CASE("run_coroutine_threadsafe: cancelling the future cancels the task",
          "[os][executor][threads]") {
    EventLoop loop;
    bool task_saw_cancel = false;
    bool future_cancelled = false;
    auto slow = [&]() -> Task<int> {
        try {
            co_await coring::sleep(1h);
        } catch (const coring::CancelledError&) {
            task_saw_cancel = true;
            throw;
        }
        co_return 0;
    };
    loop.run_until_complete([&]() -> Task<> {
        std::optional<coring::ConcurrentFuture<int>> f;
        co_await coring::to_thread(
                [&] { f.emplace(coring::run_coroutine_threadsafe(slow(), loop)); });
        co_await coring::sleep(1ms); // the task starts and sleeps
        co_await coring::to_thread([&] {
            f->cancel();
            future_cancelled = f->cancelled();
        });
        co_await coring::sleep(1ms); // the cancel runs on the loop
    }());
    CHECK(future_cancelled);
    CHECK(task_saw_cancel);
}

TEST_CASE("run_coroutine_threadsafe: a loop closing first leaves the future cancelled",
          "[os][executor][threads]") {
    std::optional<coring::ConcurrentFuture<int>> f;
    auto slow = []() -> Task<int> {
        co_await coring::sleep(1h);
        co_return 0;
    };
    {
        coring::test::LogCapture logs; // the pending task is reported when the loop closes
        EventLoop loop;
        f.emplace(coring::run_coroutine_threadsafe(slow(), loop));
        loop.run_until_complete([]() -> Task<> {
            co_await coring::sleep(1ms);
        }());
        loop.close();
    }
    CHECK(f->done());
    CHECK(f->cancelled());
    CHECK_THROWS_AS(f->get(), coring::CancelledError);
}

TEST_CASE("Executor: a result posted but not yet delivered when the loop closes leaks nothing",
          "[os][executor][threads]") {
    Gate release;
    coring::test::Counted::reset();
    {
        EventLoop loop;
        loop.run_until_complete([&]() -> Task<> {
            // Started and left behind: the loop is closed before the result arrives.
            auto f = coring::to_thread([&] {
                release.wait();
                return coring::test::Counted(7);
            });
            static_cast<void>(f);
            co_return;
        }());
        release.open();
        // close() joins the default pool (the work finishes and posts its result), then drops the
        // posted result without running it: the Future and the value must both be freed.
        loop.close();
        CHECK(coring::test::Counted::alive == 0);
    }
}

TEST_CASE("run_coroutine_threadsafe: a huge or negative timeout on the caller's side saturates",
          "[os][executor][threads]") {
    // issue 10, defect 3: std::condition_variable::wait_for overflows on duration::max().
    EventLoop loop;
    std::vector<int> results;
    bool ready_at_once = true;
    auto compute = [](int x) -> Task<int> {
        co_await coring::sleep(5ms);
        co_return x;
    };
    loop.run_until_complete([&]() -> Task<> {
        co_await coring::to_thread([&] {
            auto f = coring::run_coroutine_threadsafe(compute(1), loop);
            results.push_back(f.result(std::chrono::hours::max()));
            auto g = coring::run_coroutine_threadsafe(compute(2), loop);
            results.push_back(g.result(std::chrono::nanoseconds::max()));
            auto h = coring::run_coroutine_threadsafe(compute(3), loop);
            ready_at_once = h.wait_for(std::chrono::hours::min());
            results.push_back(h.result(std::chrono::duration<double>(1e300)));
        });
    }());
    CHECK(results == std::vector<int>{1, 2, 3});
    CHECK_FALSE(ready_at_once);
}

TEST_CASE("EventLoop::run_in_executor runs on the given loop, as loop.run_in_executor",
          "[os][executor][threads]") {
    CountingExecutor pool;
    EventLoop loop;
    // Called before the loop runs, as asyncio allows: the future belongs to this loop.
    coring::Future<int> early = loop.run_in_executor(
            &pool, [](int a, int b) { return a + b; }, 2, 3);
    int r = loop.run_until_complete(early);
    CHECK(r == 5);
    CHECK(pool.submitted == 1);
    std::string s = loop.run_until_complete([&]() -> Task<std::string> {
        co_return co_await loop.run_in_executor(nullptr, [] { return std::string("default"); });
    }());
    CHECK(s == "default");
}

TEST_CASE("EventLoop::run_in_executor on a closed loop raises RuntimeError",
          "[os][executor][threads]") {
    CountingExecutor pool;
    EventLoop loop;
    loop.close();
    std::string what = "no exception";
    try {
        static_cast<void>(loop.run_in_executor(&pool, [] { return 1; }));
    } catch (const coring::RuntimeError& e) {
        what = e.what();
    }
    CHECK(what == "Event loop is closed");
    CHECK(pool.submitted == 0);
}
