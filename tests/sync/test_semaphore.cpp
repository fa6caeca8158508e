// SPDX-License-Identifier: MIT
// Tests of Semaphore, BoundedSemaphore and SemaphoreGuard (asyncio test_locks.SemaphoreTests,
// including the 3.11.x fairness fixes, plus many waiters and a randomized stress test).
// clang-format off
#include <coring/semaphore.hpp> // first: it must compile on its own
// clang-format on

#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::BoundedSemaphore;
using coring::CancelledError;
using coring::Semaphore;
using coring::Task;
using coring::TaskHandle;
using coring::test::run_test;

namespace {

Task<bool> acquire_and_record(Semaphore& sem, std::vector<int>& out, int id) {
    bool r = co_await sem.acquire();
    out.push_back(id);
    co_return r;
}

Task<> acquire_only(Semaphore& sem) {
    co_await sem.acquire();
}

} // namespace

TEST_CASE("Semaphore: the initial value must not be negative", "[sync][semaphore]") {
    // asyncio test_semaphore_value, test_initial_value_zero
    CHECK_THROWS_WITH(Semaphore(-1), "Semaphore initial value must be >= 0");
    CHECK_THROWS_AS(BoundedSemaphore(-1), coring::ValueError);
    Semaphore zero(0);
    CHECK(zero.locked());
    Semaphore one;
    CHECK(one.value() == 1);
    CHECK_FALSE(one.locked());
}

CORING_TEST_CASE("Semaphore: acquire() takes free slots without suspending, then queues",
                 "[sync][semaphore]") {
    // asyncio test_acquire
    Semaphore sem(3);
    std::vector<int> result;
    auto iterations = coring::get_running_loop().iteration_count();
    bool a = co_await sem.acquire();
    bool b = co_await sem.acquire();
    CHECK((a && b));
    CHECK(coring::get_running_loop().iteration_count() == iterations);
    CHECK_FALSE(sem.locked());

    auto t1 = coring::create_task(acquire_and_record(sem, result, 1));
    auto t2 = coring::create_task(acquire_and_record(sem, result, 2));
    auto t3 = coring::create_task(acquire_and_record(sem, result, 3));
    co_await coring::sleep(0s);
    CHECK(result == std::vector<int>{1});
    CHECK(sem.locked());
    CHECK(sem.value() == 0);

    auto t4 = coring::create_task(acquire_and_record(sem, result, 4));
    sem.release();
    sem.release();
    CHECK(sem.value() == 0); // both slots are reserved for the woken t2 and t3

    co_await coring::sleep(0s);
    CHECK(sem.value() == 0);
    CHECK(result == std::vector<int>{1, 2, 3}); // t4 ran first but had to queue
    CHECK(sem.locked());
    CHECK_FALSE(t4.done());

    sem.release();
    co_await t4;
    CHECK(result == std::vector<int>{1, 2, 3, 4});
    co_await t1;
    co_await t2;
    co_await t3;
}

CORING_TEST_CASE("Semaphore: a waiter cancelled while waiting leaves the queue",
                 "[sync][semaphore]") {
    // asyncio test_acquire_cancel
    Semaphore sem;
    co_await sem.acquire();
    auto acquire = coring::create_task(acquire_only(sem));
    coring::get_running_loop().call_soon([acquire] { acquire.cancel(); });
    CO_CHECK_THROWS_AS(acquire, CancelledError);
    sem.release();
    CHECK_FALSE(sem.locked());
    CHECK(sem.value() == 1);
}

CORING_TEST_CASE("Semaphore: release() skips waiters cancelled before it", "[sync][semaphore]") {
    // asyncio test_acquire_cancel_before_awoken
    Semaphore sem(0);
    auto t1 = coring::create_task(acquire_only(sem));
    auto t2 = coring::create_task(acquire_only(sem));
    auto t3 = coring::create_task(acquire_only(sem));
    auto t4 = coring::create_task(acquire_only(sem));
    co_await coring::sleep(0s);
    t1.cancel();
    t2.cancel();
    sem.release();
    co_await coring::sleep(0s);
    co_await coring::sleep(0s);
    CHECK(t1.cancelled());
    CHECK(t2.cancelled());
    CHECK(t3.done());
    CHECK_FALSE(t4.done());
    t4.cancel();
    co_await coring::sleep(0s);
    CHECK(t4.cancelled());
}

CORING_TEST_CASE("Semaphore: a cancelled first waiter does not hang the next",
                 "[sync][semaphore]") {
    // asyncio test_acquire_hang
    Semaphore sem(0);
    auto t1 = coring::create_task(acquire_only(sem));
    auto t2 = coring::create_task(acquire_only(sem));
    co_await coring::sleep(0s);
    t1.cancel();
    sem.release();
    co_await coring::sleep(0s);
    co_await coring::sleep(0s);
    CHECK(sem.locked());
    CHECK(t2.done());
}

CORING_TEST_CASE("Semaphore: a waiter cancelled after it was chosen gives its slot back",
                 "[sync][semaphore]") {
    // asyncio test_acquire_no_hang
    Semaphore sem(1);
    TaskHandle<> t2;
    bool c2_ran = false;
    auto c1 = [&]() -> Task<> {
        {
            auto slot = co_await sem.scoped_acquire();
            co_await coring::sleep(0s);
        }
        t2.cancel(); // release() just chose t2
    };
    auto c2 = [&]() -> Task<> {
        auto slot = co_await sem.scoped_acquire();
        c2_ran = true;
    };
    auto t1 = coring::create_task(c1());
    t2 = coring::create_task(c2());
    co_await t1;
    CO_CHECK_THROWS_AS(t2, CancelledError);
    CHECK_FALSE(c2_ran);
    CHECK(sem.value() == 1);
    auto iterations = coring::get_running_loop().iteration_count();
    co_await sem.acquire(); // free: taken without waiting
    CHECK(coring::get_running_loop().iteration_count() == iterations);
}

TEST_CASE("Semaphore: release() of a BoundedSemaphore above its value throws ValueError",
          "[sync][semaphore]") {
    // asyncio test_release_not_acquired
    BoundedSemaphore sem;
    CHECK_THROWS_WITH(sem.release(), "BoundedSemaphore released too many times");
    run_test([&]() -> Task<> {
        co_await sem.acquire();
        sem.release();
        CHECK_THROWS_AS(sem.release(), coring::ValueError);
        CHECK(sem.value() == 1);
    });
    Semaphore unbounded(1);
    unbounded.release(); // a plain Semaphore may go above its initial value
    CHECK(unbounded.value() == 2);
}

CORING_TEST_CASE("Semaphore: release() with nobody waiting unlocks it", "[sync][semaphore]") {
    // asyncio test_release_no_waiters
    Semaphore sem;
    co_await sem.acquire();
    CHECK(sem.locked());
    sem.release();
    CHECK_FALSE(sem.locked());
}

TEST_CASE("Semaphore: tasks that release and re-acquire take turns in FIFO order",
          "[sync][semaphore]") {
    // asyncio test_acquire_fifo_order (sleep(0.01) on a virtual clock)
    run_test(
            []() -> Task<> {
                Semaphore sem(1);
                std::vector<std::string> result;
                auto coro = [&](std::string tag) -> Task<> {
                    co_await sem.acquire();
                    result.push_back(tag + "_1");
                    co_await coring::sleep(10ms);
                    sem.release();
                    co_await sem.acquire();
                    result.push_back(tag + "_2");
                    co_await coring::sleep(10ms);
                    sem.release();
                };
                auto a = coring::create_task(coro("c1"));
                auto b = coring::create_task(coro("c2"));
                auto c = coring::create_task(coro("c3"));
                co_await a;
                co_await b;
                co_await c;
                CHECK(result ==
                      std::vector<std::string>{"c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"});
            },
            [](coring::EventLoop& loop) { loop.set_virtual_time(true); });
}

CORING_TEST_CASE("Semaphore: a release-and-reacquire goes behind the woken waiters",
                 "[sync][semaphore]") {
    // asyncio test_acquire_fifo_order_2
    Semaphore sem(1);
    std::vector<int> result;
    auto c1 = [&]() -> Task<> {
        co_await sem.acquire();
        result.push_back(1);
    };
    auto c2 = [&]() -> Task<> {
        co_await sem.acquire();
        result.push_back(2);
        sem.release();
        co_await sem.acquire();
        result.push_back(4);
    };
    auto c3 = [&]() -> Task<> {
        co_await sem.acquire();
        result.push_back(3);
    };
    auto t1 = coring::create_task(c1());
    auto t2 = coring::create_task(c2());
    auto t3 = coring::create_task(c3());
    co_await coring::sleep(0s);
    sem.release();
    sem.release();
    co_await t1;
    co_await t2;
    co_await t3;
    CHECK(result == std::vector<int>{1, 2, 3, 4});
}

CORING_TEST_CASE("Semaphore: a waiter cancelled before release() gets nothing",
                 "[sync][semaphore]") {
    // asyncio test_acquire_fifo_order_3
    Semaphore sem(0);
    std::vector<int> result;
    auto t1 = coring::create_task(acquire_and_record(sem, result, 1));
    auto t2 = coring::create_task(acquire_and_record(sem, result, 2));
    auto t3 = coring::create_task(acquire_and_record(sem, result, 3));
    co_await coring::sleep(0s);
    t1.cancel();
    co_await coring::sleep(0s);
    sem.release();
    sem.release();
    CO_CHECK_THROWS_AS(t1, CancelledError);
    co_await t2;
    co_await t3;
    CHECK(result == std::vector<int>{2, 3});
}

CORING_TEST_CASE("Semaphore: scoped_acquire yields a guard that releases at scope exit",
                 "[sync][semaphore]") {
    Semaphore sem(2);
    {
        auto a = co_await sem.scoped_acquire();
        auto b = co_await sem.scoped_acquire();
        CHECK(sem.locked());
        CHECK(a.owns_lock());
        b.unlock();
        CHECK_FALSE(b.owns_lock());
        CHECK(sem.value() == 1);
    }
    CHECK(sem.value() == 2);
}

TEST_CASE("Semaphore: a guard over-releasing a BoundedSemaphore logs instead of throwing",
          "[sync][semaphore]") {
    coring::test::LogCapture logs;
    run_test([]() -> Task<> {
        BoundedSemaphore sem(1);
        {
            auto slot = co_await sem.scoped_acquire();
            sem.release();
        }
        CHECK(sem.value() == 1);
    });
    CHECK(logs.contains("SemaphoreGuard: BoundedSemaphore released too many times"));
}

CORING_TEST_CASE("Semaphore: a thousand waiters are served in arrival order, none starves",
                 "[sync][semaphore]") {
    Semaphore sem(0);
    std::vector<int> order;
    std::vector<TaskHandle<bool>> tasks;
    for (int i = 0; i < 1000; ++i) {
        tasks.push_back(coring::create_task(acquire_and_record(sem, order, i)));
    }
    co_await coring::sleep(0s);
    for (int i = 0; i < 1000; i += 3) {
        sem.release(); // wake a few at a time, while newcomers keep arriving
        sem.release();
        sem.release();
        auto late = coring::create_task(acquire_and_record(sem, order, 1000 + i));
        tasks.push_back(late);
        co_await coring::sleep(0s);
    }
    for (std::size_t i = 0; i < 400; ++i) {
        sem.release();
    }
    for (auto& t : tasks) {
        co_await t;
    }
    REQUIRE(order.size() == 1000 + 334);
    for (int i = 0; i < 1000; ++i) {
        CHECK(order[static_cast<std::size_t>(i)] == i); // the early ones first, in order
    }
    CHECK(std::is_sorted(order.begin() + 1000, order.end()));
}

CORING_TEST_CASE("Semaphore: randomized tasks and cancellations never exceed the slots",
                 "[sync][semaphore][stress]") {
    constexpr int slots = 5;
    BoundedSemaphore sem(slots);
    std::mt19937 rng(7);
    int inside = 0;
    int max_inside = 0;
    int completed = 0;
    int cancelled = 0;
    auto worker = [&](int rounds, int hold) -> Task<> {
        for (int r = 0; r < rounds; ++r) {
            auto slot = co_await sem.scoped_acquire();
            ++inside;
            max_inside = std::max(max_inside, inside);
            try {
                for (int i = 0; i < hold; ++i) {
                    co_await coring::sleep(0s);
                }
            } catch (...) {
                --inside;
                throw;
            }
            --inside;
        }
        ++completed;
    };
    std::vector<TaskHandle<>> tasks;
    for (int i = 0; i < 300; ++i) {
        tasks.push_back(coring::create_task(
                worker(1 + static_cast<int>(rng() % 3), static_cast<int>(rng() % 4))));
    }
    for (int step = 0; step < 300; ++step) {
        co_await coring::sleep(0s);
        auto& victim = tasks[rng() % tasks.size()];
        if (rng() % 3 == 0 && !victim.done()) {
            victim.cancel();
        }
    }
    for (auto& t : tasks) {
        try {
            co_await t;
        } catch (const CancelledError&) {
            ++cancelled;
        }
    }
    CHECK(max_inside == slots);
    CHECK(inside == 0);
    CHECK(completed + cancelled == 300);
    CHECK(cancelled > 0);
    CHECK(sem.value() == slots); // every slot came back
    CHECK_FALSE(sem.locked());
}

// Issue 10, defect 9: GCC 12 miscompiles a co_await used as a condition; with GCC that form does
// not compile, and the result kept in a local works everywhere (see test_lock.cpp).
static_assert(std::is_same_v<decltype(std::declval<coring::SemaphoreAwaiter&>().await_resume()),
                             coring::TrueResult>);

CORING_TEST_CASE("Semaphore: the result of acquire() kept in a local works as a condition",
                 "[sync][semaphore]") {
    BoundedSemaphore sem(1);
    bool first = co_await sem.acquire();
    CHECK(first);
    auto waiter = coring::create_task([](BoundedSemaphore& s) -> Task<int> {
        auto ok = co_await s.acquire(); // suspends until the release below
        s.release();
        co_return ok ? 1 : 0;
    }(sem));
    co_await coring::sleep(0s);
    CHECK_FALSE(waiter.done());
    sem.release();
    int n = co_await waiter;
    CHECK(n == 1);
}

#if !CORING_REJECT_CO_AWAIT_CONDITION
CORING_TEST_CASE("Semaphore: the condition form resumes the task (Clang)", "[sync][semaphore]") {
    Semaphore sem(0);
    auto waiter = coring::create_task([](Semaphore& s) -> Task<int> {
        int n = 0;
        if (co_await s.acquire()) {
            ++n;
        }
        co_return n;
    }(sem));
    co_await coring::sleep(0s);
    sem.release();
    int n = co_await waiter;
    CHECK(n == 1);
}
#endif
