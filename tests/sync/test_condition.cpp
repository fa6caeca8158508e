// SPDX-License-Identifier: MIT
// Tests of Condition (asyncio test_locks.ConditionTests, plus cancellation while re-acquiring
// the lock and notifications that must not be lost).
// clang-format off
#include <coring/condition.hpp> // first: it must compile on its own
// clang-format on

#include <coring/lock.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::CancelledError;
using coring::Condition;
using coring::Lock;
using coring::Task;
using coring::TaskHandle;

namespace {

/// acquire, wait, record id; keeps the lock (asyncio test_wait's c1..c3).
Task<bool> wait_keep(Condition& cond, std::vector<int>& out, int id) {
    co_await cond.acquire();
    bool r = co_await cond.wait();
    out.push_back(id);
    co_return r;
}

/// acquire, wait, record id, release (asyncio test_notify's c1..c3; the guard also releases
/// when the wait throws).
Task<bool> wait_release(Condition& cond, std::vector<int>& out, int id) {
    auto guard = co_await cond.scoped_acquire();
    bool r = co_await cond.wait();
    out.push_back(id);
    co_return r;
}

/// A bare wait() with the lock taken first; the caller holds nothing afterwards.
Task<> acquire_wait(Condition& cond) {
    auto guard = co_await cond.scoped_acquire();
    co_await cond.wait();
}

} // namespace

CORING_TEST_CASE("Condition: notify() wakes waiters in order, each re-acquiring the lock",
                 "[sync][condition]") {
    // asyncio test_wait
    Condition cond;
    std::vector<int> result;
    auto t1 = coring::create_task(wait_keep(cond, result, 1));
    auto t2 = coring::create_task(wait_keep(cond, result, 2));
    auto t3 = coring::create_task(wait_keep(cond, result, 3));
    co_await coring::sleep(0s);
    CHECK(result.empty());
    CHECK_FALSE(cond.locked());

    co_await cond.acquire();
    cond.notify();
    co_await coring::sleep(0s);
    CHECK(result.empty()); // notified, but the lock is ours
    CHECK(cond.locked());

    cond.release();
    co_await coring::sleep(0s);
    CHECK(result == std::vector<int>{1});
    CHECK(cond.locked());

    cond.notify(2);
    co_await coring::sleep(0s);
    CHECK(result == std::vector<int>{1});
    CHECK(cond.locked());

    cond.release();
    co_await coring::sleep(0s);
    CHECK(result == std::vector<int>{1, 2});
    CHECK(cond.locked());

    cond.release();
    co_await coring::sleep(0s);
    CHECK(result == std::vector<int>{1, 2, 3});
    CHECK(cond.locked());
    for (auto* t : {&t1, &t2, &t3}) {
        REQUIRE(t->done());
        CHECK(t->result());
    }
    cond.release();
}

CORING_TEST_CASE("Condition: a wait cancelled before notify re-acquires the lock, then throws",
                 "[sync][condition]") {
    // asyncio test_wait_cancel
    Condition cond;
    co_await cond.acquire();
    auto body = [&]() -> Task<> {
        co_await cond.wait(); // called with the lock held by main, as asyncio's test does
    };
    auto wait = coring::create_task(body());
    coring::get_running_loop().call_soon([wait] { wait.cancel(); });
    CO_CHECK_THROWS_AS(wait, CancelledError);
    CHECK(cond.locked()); // the cancelled wait() re-took the lock and kept it
    cond.release();
}

CORING_TEST_CASE("Condition: notify, then cancel while the lock is contended",
                 "[sync][condition]") {
    // asyncio test_wait_cancel_contested: the wait was already notified, so the cancellation
    // arrives after the notification and is delivered once the lock is re-acquired.
    Condition cond;
    co_await cond.acquire();
    CHECK(cond.locked());
    auto body = [&]() -> Task<> {
        co_await cond.wait();
    };
    auto wait_task = coring::create_task(body());
    co_await coring::sleep(0s);
    CHECK_FALSE(cond.locked());

    co_await cond.acquire();
    CHECK(cond.locked());
    cond.notify();
    auto& loop = coring::get_running_loop();
    loop.call_soon([wait_task] { wait_task.cancel(); });
    loop.call_soon([&] { cond.release(); });
    try {
        co_await wait_task;
    } catch (const CancelledError&) {
    }
    CHECK(cond.locked());
    cond.release();
}

CORING_TEST_CASE("Condition: cancelled while re-acquiring the lock, the task still gets it",
                 "[sync][condition]") {
    // asyncio test_wait_cancel_after_notify (bpo-32841)
    Condition cond;
    bool waited = false;
    auto wait_on_cond = [&]() -> Task<> {
        auto guard = co_await cond.scoped_acquire();
        waited = true;
        co_await cond.wait();
    };
    auto waiter = coring::create_task(wait_on_cond());
    co_await coring::sleep(0s);

    co_await cond.acquire();
    cond.notify();
    co_await coring::sleep(0s); // the waiter queues for the lock
    waiter.cancel();
    co_await coring::sleep(0s); // the cancelled acquire re-queues
    cond.release();
    co_await coring::sleep(0s); // it gets the lock, raises CancelledError, guard releases
    CHECK(waiter.cancelled());
    CHECK(waited);
    CHECK_FALSE(cond.locked());
}

CORING_TEST_CASE("Condition: wait() without the lock throws RuntimeError", "[sync][condition]") {
    // asyncio test_wait_unacquired
    Condition cond;
    CO_CHECK_THROWS_WITH(cond.wait(), "cannot wait on un-acquired lock");
    CHECK_FALSE(cond.locked());
}

CORING_TEST_CASE("Condition: wait_for() returns once the predicate holds after a notify",
                 "[sync][condition]") {
    // asyncio test_wait_for
    Condition cond;
    bool presult = false;
    std::vector<int> result;
    auto c1 = [&]() -> Task<bool> {
        co_await cond.acquire();
        bool r = co_await cond.wait_for([&] { return presult; });
        if (r) {
            result.push_back(1);
            cond.release();
        }
        co_return true;
    };
    auto t = coring::create_task(c1());
    co_await coring::sleep(0s);
    CHECK(result.empty());

    co_await cond.acquire();
    cond.notify();
    cond.release();
    co_await coring::sleep(0s);
    CHECK(result.empty()); // woken, predicate still false: waits again

    presult = true;
    co_await cond.acquire();
    cond.notify();
    cond.release();
    co_await coring::sleep(0s);
    CHECK(result == std::vector<int>{1});
    REQUIRE(t.done());
    CHECK(t.result());
}

CORING_TEST_CASE("Condition: wait_for() with a true predicate needs no lock and yields its value",
                 "[sync][condition]") {
    // asyncio test_wait_for_unacquired
    Condition cond;
    std::vector<int> items{1, 2, 3};
    auto res = co_await cond.wait_for([&]() -> const std::vector<int>* { return &items; });
    CHECK(res == &items);
    CO_CHECK_THROWS_AS(cond.wait_for([] { return false; }), coring::RuntimeError);
}

CORING_TEST_CASE("Condition: notify(n) wakes n waiters, notify(2048) wakes the rest",
                 "[sync][condition]") {
    // asyncio test_notify
    Condition cond;
    std::vector<int> result;
    auto t1 = coring::create_task(wait_release(cond, result, 1));
    auto t2 = coring::create_task(wait_release(cond, result, 2));
    auto t3 = coring::create_task(wait_release(cond, result, 3));
    co_await coring::sleep(0s);
    CHECK(result.empty());

    co_await cond.acquire();
    cond.notify(1);
    cond.release();
    co_await coring::sleep(0s);
    CHECK(result == std::vector<int>{1});

    co_await cond.acquire();
    cond.notify(1);
    cond.notify(2048);
    cond.release();
    co_await coring::sleep(0s);
    CHECK(result == std::vector<int>{1, 2, 3});
    for (auto* t : {&t1, &t2, &t3}) {
        REQUIRE(t->done());
        CHECK(t->result());
    }
}

CORING_TEST_CASE("Condition: notify_all() wakes every waiter", "[sync][condition]") {
    // asyncio test_notify_all
    Condition cond;
    std::vector<int> result;
    auto t1 = coring::create_task(wait_release(cond, result, 1));
    auto t2 = coring::create_task(wait_release(cond, result, 2));
    co_await coring::sleep(0s);
    CHECK(result.empty());
    co_await cond.acquire();
    cond.notify_all();
    cond.release();
    co_await coring::sleep(0s);
    CHECK(result == std::vector<int>{1, 2});
    CHECK(t1.done());
    CHECK(t2.done());
}

TEST_CASE("Condition: notify() without the lock throws RuntimeError", "[sync][condition]") {
    // asyncio test_notify_unacquired, test_notify_all_unacquired
    Condition cond;
    CHECK_THROWS_WITH(cond.notify(), "cannot notify on un-acquired lock");
    CHECK_THROWS_WITH(cond.notify_all(), "cannot notify on un-acquired lock");
}

CORING_TEST_CASE("Condition: scoped_acquire locks the condition for a scope", "[sync][condition]") {
    // asyncio test_context_manager
    Condition cond;
    CHECK_FALSE(cond.locked());
    {
        auto guard = co_await cond.scoped_acquire();
        CHECK(cond.locked());
    }
    CHECK_FALSE(cond.locked());
}

CORING_TEST_CASE("Condition: over a given lock, both names lock the same thing",
                 "[sync][condition]") {
    // asyncio test_explicit_lock
    Lock lock;
    Condition cond(lock);
    Condition other(lock);
    CHECK_FALSE(cond.locked());
    {
        auto guard = co_await cond.scoped_acquire();
        CHECK(lock.locked());
        CHECK(other.locked());
    }
    CHECK_FALSE(lock.locked());
    {
        auto guard = co_await lock.scoped_acquire();
        CHECK(cond.locked());
    }
    CHECK_FALSE(cond.locked());
}

CORING_TEST_CASE("Condition: a notified waiter cancelled before it runs passes the notification on",
                 "[sync][condition]") {
    // asyncio 3.13 (gh-112202): a notification consumed by a task that then fails is re-issued.
    Condition cond;
    std::vector<int> result;
    auto t1 = coring::create_task(wait_release(cond, result, 1));
    auto t2 = coring::create_task(wait_release(cond, result, 2));
    co_await coring::sleep(0s);
    co_await cond.acquire();
    cond.notify(1); // chooses t1...
    t1.cancel();    // ...which is cancelled before it runs
    cond.release();
    CO_CHECK_THROWS_AS(t1, CancelledError);
    co_await t2; // t2 got the notification t1 did not act on
    CHECK(result == std::vector<int>{2});
    CHECK_FALSE(cond.locked());
}

CORING_TEST_CASE("Condition: a waiter cancelled before any notify does not wake another",
                 "[sync][condition]") {
    Condition cond;
    std::vector<int> result;
    auto t1 = coring::create_task(wait_release(cond, result, 1));
    auto t2 = coring::create_task(wait_release(cond, result, 2));
    co_await coring::sleep(0s);
    t1.cancel();
    CO_CHECK_THROWS_AS(t1, CancelledError);
    CHECK_FALSE(cond.locked()); // t1's wait re-took the lock, the error released nothing...
    co_await coring::sleep(0s);
    CHECK(result.empty()); // ...and t2 was not woken spuriously
    co_await cond.acquire();
    cond.notify();
    cond.release();
    co_await t2;
    CHECK(result == std::vector<int>{2});
}

CORING_TEST_CASE("Condition: handed the lock and cancelled, a waiter passes the lock and re-queues",
                 "[sync][condition]") {
    // asyncio: Lock.acquire raises CancelledError without taking the lock and wakes the next
    // waiter; Condition.wait catches it and acquires again from the back of the queue.
    Condition cond;
    std::vector<std::string> order;
    auto waiter = [&]() -> Task<> {
        auto guard = co_await cond.scoped_acquire();
        try {
            co_await cond.wait();
        } catch (const CancelledError&) {
            CHECK(cond.locked()); // thrown with the lock held again
            order.push_back("waiter cancelled");
            throw;
        }
    };
    auto other = [&]() -> Task<> {
        auto guard = co_await cond.scoped_acquire();
        order.push_back("other");
    };
    auto w = coring::create_task(waiter());
    co_await coring::sleep(0s);
    co_await cond.acquire();
    cond.notify();
    co_await coring::sleep(0s); // w queues for the lock
    auto o = coring::create_task(other());
    co_await coring::sleep(0s); // o queues behind w
    cond.release();             // hands the lock to w...
    w.cancel();                 // ...which is cancelled before it runs
    CO_CHECK_THROWS_AS(w, CancelledError);
    co_await o;
    CHECK(order == std::vector<std::string>{"other", "waiter cancelled"});
    CHECK_FALSE(cond.locked());
}

CORING_TEST_CASE("Condition: the task dump tells which wait a task is in", "[sync][condition]") {
    Condition cond;
    auto t = coring::create_task(acquire_wait(cond));
    co_await coring::sleep(0s);
    CHECK(t.get_stack().find("Condition wait (for a notification)") != std::string::npos);
    co_await cond.acquire();
    cond.notify();
    co_await coring::sleep(0s);
    CHECK(t.get_stack().find("Condition wait (re-acquiring the lock: locked, 1 waiting)") !=
          std::string::npos);
    cond.release();
    co_await t;
}

CORING_TEST_CASE("Condition: producers and consumers hand over every item exactly once",
                 "[sync][condition][stress]") {
    Condition cond;
    std::vector<int> items;
    std::vector<int> consumed;
    bool done = false;
    auto producer = [&](int base) -> Task<> {
        for (int i = 0; i < 50; ++i) {
            {
                auto guard = co_await cond.scoped_acquire();
                items.push_back(base + i);
                cond.notify();
            }
            co_await coring::sleep(0s);
        }
    };
    auto consumer = [&]() -> Task<> {
        for (;;) {
            auto guard = co_await cond.scoped_acquire();
            co_await cond.wait_for([&] { return !items.empty() || done; });
            if (items.empty()) {
                co_return;
            }
            consumed.push_back(items.back());
            items.pop_back();
        }
    };
    std::vector<TaskHandle<>> consumers;
    for (int i = 0; i < 4; ++i) {
        consumers.push_back(coring::create_task(consumer()));
    }
    auto p1 = coring::create_task(producer(0));
    auto p2 = coring::create_task(producer(1000));
    co_await p1;
    co_await p2;
    {
        auto guard = co_await cond.scoped_acquire();
        done = true;
        cond.notify_all();
    }
    for (auto& c : consumers) {
        co_await c;
    }
    std::sort(consumed.begin(), consumed.end());
    std::vector<int> expected;
    for (int i = 0; i < 50; ++i) {
        expected.push_back(i);
    }
    for (int i = 0; i < 50; ++i) {
        expected.push_back(1000 + i);
    }
    CHECK(consumed == expected);
}

// Issue 10, defect 9: GCC 12 miscompiles a co_await used as a condition; with GCC that form does
// not compile, and the result kept in a local works everywhere (see test_lock.cpp).
static_assert(std::is_same_v<decltype(std::declval<coring::ConditionAwaiter&>().await_resume()),
                             coring::TrueResult>);

CORING_TEST_CASE("Condition: the result of wait() kept in a local works as a condition",
                 "[sync][condition]") {
    Condition cond;
    auto waiter = coring::create_task([](Condition& c) -> Task<int> {
        auto guard = co_await c.scoped_acquire();
        auto ok = co_await c.wait(); // suspends until notify()
        co_return ok ? 1 : 0;
    }(cond));
    co_await coring::sleep(0s);
    CHECK_FALSE(waiter.done());
    {
        auto guard = co_await cond.scoped_acquire();
        cond.notify();
    }
    int n = co_await waiter;
    CHECK(n == 1);
}

#if !CORING_REJECT_CO_AWAIT_CONDITION
CORING_TEST_CASE("Condition: the condition form resumes the task (Clang)", "[sync][condition]") {
    Condition cond;
    auto waiter = coring::create_task([](Condition& c) -> Task<int> {
        auto guard = co_await c.scoped_acquire();
        int n = 0;
        if (co_await c.wait()) {
            ++n;
        }
        co_return n;
    }(cond));
    co_await coring::sleep(0s);
    {
        auto guard = co_await cond.scoped_acquire();
        cond.notify();
    }
    int n = co_await waiter;
    CHECK(n == 1);
}
#endif
