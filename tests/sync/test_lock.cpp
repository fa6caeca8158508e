// SPDX-License-Identifier: MIT
// Tests of Lock and LockGuard (asyncio test_locks.LockTests, plus hand-off, fairness and a
// randomized stress test).
// clang-format off
#include <coring/lock.hpp> // first: it must compile on its own
// clang-format on

#include <coring/event_loop.hpp>
#include <coring/future.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::CancelledError;
using coring::Lock;
using coring::LockGuard;
using coring::Task;
using coring::TaskHandle;
using coring::test::run_test;

namespace {

/// Acquires lock, records id, keeps the lock.
Task<bool> acquire_and_record(Lock& lock, std::vector<int>& out, int id) {
    bool got = co_await lock.acquire();
    out.push_back(id);
    co_return got;
}

/// Acquires lock, optionally waits for blocker, releases.
Task<> lock_it(Lock& lock, coring::Future<> blocker) {
    co_await lock.acquire();
    try {
        co_await blocker;
    } catch (...) {
        lock.release();
        throw;
    }
    lock.release();
}

/// Counts the tasks inside a critical section, also when one leaves it by an exception.
struct Holding {
    int& holders;

    Holding(int& n, int& max_seen) : holders(n) { max_seen = std::max(max_seen, ++holders); }

    Holding(const Holding&) = delete;
    Holding& operator=(const Holding&) = delete;

    ~Holding() { --holders; }
};

Task<> lock_and_release(Lock& lock) {
    co_await lock.acquire();
    lock.release();
}

} // namespace

CORING_TEST_CASE("Lock: a free lock is taken without suspending", "[sync][lock]") {
    Lock lock;
    CHECK_FALSE(lock.locked());
    auto iterations = coring::get_running_loop().iteration_count();
    bool got = co_await lock.acquire();
    CHECK(got);
    CHECK(lock.locked());
    CHECK(coring::get_running_loop().iteration_count() == iterations);
    lock.release();
    CHECK_FALSE(lock.locked());
}

CORING_TEST_CASE("Lock: waiters get the lock in FIFO order, one per release", "[sync][lock]") {
    // asyncio test_locks.LockTests.test_acquire
    Lock lock;
    std::vector<int> result;
    co_await lock.acquire();
    auto t1 = coring::create_task(acquire_and_record(lock, result, 1));
    auto t2 = coring::create_task(acquire_and_record(lock, result, 2));
    co_await coring::sleep(0s);
    CHECK(result.empty());

    lock.release();
    co_await coring::sleep(0s);
    CHECK(result == std::vector<int>{1});
    co_await coring::sleep(0s);
    CHECK(result == std::vector<int>{1});

    auto t3 = coring::create_task(acquire_and_record(lock, result, 3));
    lock.release();
    co_await coring::sleep(0s);
    CHECK(result == std::vector<int>{1, 2});

    lock.release();
    co_await coring::sleep(0s);
    CHECK(result == std::vector<int>{1, 2, 3});
    for (auto* t : {&t1, &t2, &t3}) {
        REQUIRE(t->done());
        CHECK(t->result());
    }
    lock.release();
}

TEST_CASE("Lock: release() of an unlocked lock throws RuntimeError", "[sync][lock]") {
    Lock lock;
    CHECK_THROWS_AS(lock.release(), coring::RuntimeError);
    CHECK_THROWS_WITH(lock.release(), "Lock is not acquired.");
    run_test([&]() -> Task<> {
        co_await lock.acquire();
        lock.release();
        CHECK_THROWS_WITH(lock.release(), "Lock is not acquired.");
    });
}

CORING_TEST_CASE("Lock: a waiter cancelled while waiting leaves the queue", "[sync][lock]") {
    // asyncio test_acquire_cancel
    Lock lock;
    co_await lock.acquire();
    auto task = coring::create_task(lock_and_release(lock));
    coring::get_running_loop().call_soon([task] { task.cancel(); });
    CO_CHECK_THROWS_AS(task, CancelledError);
    CHECK(task.cancelled());
    CHECK(lock.locked());
    lock.release();
    CHECK_FALSE(lock.locked()); // nobody was left waiting
    bool again = co_await lock.acquire();
    CHECK(again);
    lock.release();
}

CORING_TEST_CASE("Lock: release() skips a waiter cancelled in the same step", "[sync][lock]") {
    // asyncio test_cancel_race: A holds the lock; B and C wait; A releases while B is cancelled.
    Lock lock;
    coring::Future<> fa;
    auto ta = coring::create_task(lock_it(lock, fa));
    co_await coring::sleep(0s);
    CHECK(lock.locked());
    auto tb = coring::create_task(lock_it(lock, coring::Future<>()));
    co_await coring::sleep(0s);
    auto tc = coring::create_task(lock_it(lock, coring::Future<>()));
    co_await coring::sleep(0s);

    fa.set_result();
    tb.cancel();
    co_await coring::sleep(0s);
    CHECK_FALSE(lock.locked()); // C is woken but has not run yet, as in asyncio
    CHECK(ta.done());
    CHECK(tb.cancelled());
    // C cannot finish: its blocker never completes. Cancel it while it holds the lock.
    co_await coring::sleep(0s);
    CHECK(lock.locked());
    tc.cancel();
    CO_CHECK_THROWS_AS(tc, CancelledError);
    CHECK_FALSE(lock.locked());
}

CORING_TEST_CASE("Lock: cancel and release in one callback hand the lock to one task only",
                 "[sync][lock]") {
    // asyncio test_cancel_release_race (bpo-32734)
    Lock lock;
    int lock_count = 0;
    int call_count = 0;
    auto lockit = [&]() -> Task<> {
        ++call_count;
        co_await lock.acquire();
        ++lock_count;
    };
    co_await lock.acquire();
    auto t1 = coring::create_task(lockit());
    auto t2 = coring::create_task(lockit());
    auto t3 = coring::create_task(lockit());
    co_await coring::sleep(0s);

    coring::get_running_loop().call_soon([&] {
        t1.cancel();
        lock.release();
    });
    CO_CHECK_THROWS_AS(t1, CancelledError);
    CHECK(lock_count == 1);
    CHECK(call_count == 3);
    CHECK(t1.cancelled());
    CHECK(t2.done());
    CHECK_FALSE(t3.done());
    t3.cancel();
    co_await coring::sleep(0s);
    CHECK(t3.cancelled());
}

CORING_TEST_CASE("Lock: a waiter cancelled after the hand-off passes the lock on", "[sync][lock]") {
    // asyncio test_finished_waiter_cancelled, and the case where the next waiter exists.
    Lock lock;
    std::vector<int> got;
    co_await lock.acquire();
    auto tb = coring::create_task(acquire_and_record(lock, got, 2));
    co_await coring::sleep(0s);
    auto tc = coring::create_task(acquire_and_record(lock, got, 3));
    co_await coring::sleep(0s);

    lock.release();     // B is chosen...
    CHECK(tb.cancel()); // ...and cancelled before it runs: the cancellation stays pending
    CHECK_FALSE(lock.locked());
    co_await coring::sleep(0s);
    CHECK(tb.cancelled());
    CHECK(got.empty());
    co_await coring::sleep(0s);
    CHECK(got == std::vector<int>{3}); // C took the lock: it was neither lost nor leaked
    CHECK(lock.locked());
    lock.release();
    co_await tc;
}

CORING_TEST_CASE("Lock: a waiter cancelled after the hand-off, with nobody behind, frees the lock",
                 "[sync][lock]") {
    Lock lock;
    co_await lock.acquire();
    auto tb = coring::create_task(lock_and_release(lock));
    co_await coring::sleep(0s);
    lock.release();
    tb.cancel();
    CO_CHECK_THROWS_AS(tb, CancelledError);
    CHECK_FALSE(lock.locked());
    bool got = co_await lock.acquire(); // the fast path works again
    CHECK(got);
    lock.release();
}

CORING_TEST_CASE("Lock: a newcomer cannot take the lock before the woken waiter", "[sync][lock]") {
    // asyncio 3.11.x: acquire() takes the fast path only when no waiter is queued or woken.
    Lock lock;
    std::vector<int> order;
    co_await lock.acquire();
    auto waiter = coring::create_task(acquire_and_record(lock, order, 1));
    co_await coring::sleep(0s);
    lock.release();
    CHECK_FALSE(lock.locked());
    auto newcomer = coring::create_task(acquire_and_record(lock, order, 2));
    co_await coring::sleep(0s);
    CHECK(order == std::vector<int>{1});
    lock.release();
    co_await newcomer;
    CHECK(order == std::vector<int>{1, 2});
    lock.release();
    co_await waiter;
}

CORING_TEST_CASE("Lock: a hundred waiters are served strictly in arrival order", "[sync][lock]") {
    Lock lock;
    std::vector<int> order;
    co_await lock.acquire();
    std::vector<TaskHandle<bool>> tasks;
    for (int i = 0; i < 100; ++i) {
        tasks.push_back(coring::create_task(acquire_and_record(lock, order, i)));
    }
    co_await coring::sleep(0s);
    for (int i = 0; i < 100; ++i) {
        lock.release();
        co_await coring::sleep(0s);
        REQUIRE(order.size() == static_cast<std::size_t>(i + 1));
        CHECK(order.back() == i);
    }
    lock.release();
    for (auto& t : tasks) {
        co_await t;
    }
}

CORING_TEST_CASE("Lock: a task already cancelled when it starts waiting is cancelled at the wait",
                 "[sync][lock]") {
    Lock lock;
    co_await lock.acquire();
    auto body = [&]() -> Task<> {
        coring::current_task().cancel(); // pending: thrown at the next suspension point
        co_await lock.acquire();
    };
    auto t = coring::create_task(body());
    CO_CHECK_THROWS_AS(t, CancelledError);
    lock.release();
    CHECK_FALSE(lock.locked());
}

CORING_TEST_CASE("Lock: scoped_acquire yields a guard that releases at scope exit",
                 "[sync][lock]") {
    // asyncio test_context_manager
    Lock lock;
    {
        LockGuard guard = co_await lock.scoped_acquire();
        CHECK(guard.owns_lock());
        CHECK(lock.locked());
    }
    CHECK_FALSE(lock.locked());

    try {
        auto guard = co_await lock.scoped_acquire();
        throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
    }
    CHECK_FALSE(lock.locked()); // released during unwinding

    auto guard = co_await lock.scoped_acquire();
    LockGuard moved = std::move(guard);
    CHECK_FALSE(guard.owns_lock());
    CHECK(moved.owns_lock());
    moved.unlock();
    CHECK_FALSE(lock.locked());
    CHECK_FALSE(moved.owns_lock());
}

CORING_TEST_CASE("Lock: a guard hands the lock to the next waiter when destroyed", "[sync][lock]") {
    Lock lock;
    std::vector<int> order;
    auto worker = [&](int id) -> Task<> {
        auto guard = co_await lock.scoped_acquire();
        order.push_back(id);
        co_await coring::sleep(0s);
        order.push_back(id);
    };
    auto a = coring::create_task(worker(1));
    auto b = coring::create_task(worker(2));
    co_await a;
    co_await b;
    CHECK(order == std::vector<int>{1, 1, 2, 2});
    CHECK_FALSE(lock.locked());
}

TEST_CASE("Lock: a guard whose lock was released by other means logs the misuse", "[sync][lock]") {
    coring::test::LogCapture logs;
    run_test([]() -> Task<> {
        Lock lock;
        {
            auto guard = co_await lock.scoped_acquire();
            lock.release();
        }
        CHECK_FALSE(lock.locked());
    });
    CHECK(logs.contains("LockGuard: Lock is not acquired."));
}

CORING_TEST_CASE("Lock: a cancelled acquire through scoped_acquire holds nothing", "[sync][lock]") {
    Lock lock;
    co_await lock.acquire();
    auto body = [&]() -> Task<> {
        auto guard = co_await lock.scoped_acquire();
    };
    auto t = coring::create_task(body());
    co_await coring::sleep(0s);
    t.cancel();
    CO_CHECK_THROWS_AS(t, CancelledError);
    CHECK(lock.locked()); // still ours
    lock.release();
}

TEST_CASE("Lock: waiting from a second loop throws RuntimeError", "[sync][lock]") {
    // asyncio's _LoopBoundMixin: a primitive belongs to the first loop that waits on it.
    Lock lock;
    coring::EventLoop first; // stays alive, so the second loop has another address
    first.run_until_complete([&]() -> Task<> {
        co_await lock.acquire();
        auto t = coring::create_task(lock_and_release(lock));
        co_await coring::sleep(0s);
        lock.release();
        co_await t;
    }());
    run_test([&]() -> Task<> {
        co_await lock.acquire(); // the fast path does not check, as in asyncio
        coring::get_running_loop().set_name("second");
        std::string what = "no exception";
        try {
            co_await lock.acquire();
        } catch (const coring::RuntimeError& e) {
            what = e.what();
        }
        CHECK_THAT(what,
                   Catch::StartsWith("<coring::Lock> is bound to a different event loop (it "
                                     "belongs to loop 0x") &&
                           Catch::EndsWith(", awaited on loop 'second')"));
        lock.release();
    });
}

CORING_TEST_CASE("Lock: the task dump names the lock a task waits on", "[sync][lock]") {
    Lock lock;
    co_await lock.acquire();
    auto t = coring::create_task(lock_and_release(lock));
    co_await coring::sleep(0s);
    std::string stack = t.get_stack();
    CHECK(stack.find("waiting on Lock acquire (locked, 1 waiting)") != std::string::npos);
    lock.release();
    co_await t;
}

CORING_TEST_CASE("Lock: randomized tasks and cancellations never share or lose the lock",
                 "[sync][lock][stress]") {
    Lock lock;
    std::mt19937 rng(20240611);
    int holders = 0;
    int max_holders = 0;
    int completed = 0;
    int cancelled = 0;
    auto worker = [&](int rounds, int hold) -> Task<> {
        for (int r = 0; r < rounds; ++r) {
            auto guard = co_await lock.scoped_acquire();
            Holding holding(holders, max_holders);
            for (int i = 0; i < hold; ++i) {
                co_await coring::sleep(0s);
            }
        }
        ++completed;
    };
    std::vector<TaskHandle<>> tasks;
    for (int i = 0; i < 200; ++i) {
        tasks.push_back(coring::create_task(
                worker(1 + static_cast<int>(rng() % 4), static_cast<int>(rng() % 3))));
    }
    for (int step = 0; step < 400; ++step) {
        co_await coring::sleep(0s);
        auto& victim = tasks[rng() % tasks.size()];
        if (rng() % 4 == 0 && !victim.done()) {
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
    CHECK(max_holders == 1);
    CHECK(holders == 0);
    CHECK(completed + cancelled == 200);
    CHECK(cancelled > 0);
    CHECK(completed > 0);
    CHECK_FALSE(lock.locked());
    bool again = co_await lock.acquire(); // nothing was leaked: the fast path works
    CHECK(again);
    lock.release();
}

// Issue 10, defect 9: GCC 12 miscompiles a co_await used as a condition (`if (co_await
// lock.acquire())`: the task never resumed, a later release() threw, run() hung). With GCC that
// form does not compile (the rvalue's conversion to bool is deleted); the forms that keep the
// result first compile everywhere and behave as asyncio's `await lock.acquire()` (True).
static_assert(std::is_convertible_v<coring::TrueResult, bool>);
static_assert(std::is_same_v<decltype(std::declval<coring::LockAwaiter&>().await_resume()),
                             coring::TrueResult>);
#if CORING_REJECT_CO_AWAIT_CONDITION
static_assert(!std::is_constructible_v<bool, coring::TrueResult>,
              "with GCC, `if (co_await lock.acquire())` must not compile");
#endif

CORING_TEST_CASE("Lock: the result of acquire() kept in a local works as a condition",
                 "[sync][lock]") {
    Lock lock;
    bool fast = co_await lock.acquire(); // uncontended: await_ready alone
    CHECK(fast);
    auto waiter = coring::create_task([](Lock& l) -> Task<int> {
        int taken = 0;
        auto ok = co_await l.acquire(); // contended: suspends until the release below
        if (ok) {
            ++taken;
        }
        l.release();
        if (bool got = co_await l.acquire()) { // a declaration: GCC 12 compiles it right
            taken += got ? 1 : 0;
        }
        l.release();
        co_return taken;
    }(lock));
    co_await coring::sleep(0s);
    CHECK_FALSE(waiter.done());
    lock.release();
    int taken = co_await waiter;
    CHECK(taken == 2);
    CHECK_FALSE(lock.locked());
}

#if !CORING_REJECT_CO_AWAIT_CONDITION
// Clang compiles the condition form correctly: CPython's own idiom, with the task suspended.
CORING_TEST_CASE("Lock: if (co_await lock.acquire()) resumes the task (Clang)", "[sync][lock]") {
    Lock lock;
    co_await lock.acquire();
    auto waiter = coring::create_task([](Lock& l) -> Task<int> {
        int taken = 0;
        if (co_await l.acquire()) {
            ++taken;
        }
        l.release();
        co_return taken;
    }(lock));
    co_await coring::sleep(0s);
    lock.release();
    int taken = co_await waiter;
    CHECK(taken == 1);
}
#endif
