// SPDX-License-Identifier: MIT
// Tests of Event (asyncio test_locks.EventTests).
// clang-format off
#include <coring/event.hpp> // first: it must compile on its own
// clang-format on

#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::CancelledError;
using coring::Event;
using coring::Task;
using coring::TaskHandle;

namespace {

Task<bool> wait_and_record(Event& ev, std::vector<int>& out, int id) {
    bool r = co_await ev.wait();
    out.push_back(id);
    co_return r;
}

} // namespace

CORING_TEST_CASE("Event: set() wakes every waiter, a task started later passes at once",
                 "[sync][event]") {
    // asyncio test_wait: t3 is created before set() but runs first, finding the flag set.
    Event ev;
    CHECK_FALSE(ev.is_set());
    std::vector<int> result;
    auto t1 = coring::create_task(wait_and_record(ev, result, 1));
    auto t2 = coring::create_task(wait_and_record(ev, result, 2));
    co_await coring::sleep(0s);
    CHECK(result.empty());
    auto t3 = coring::create_task(wait_and_record(ev, result, 3));
    ev.set();
    co_await coring::sleep(0s);
    CHECK(result == std::vector<int>{3, 1, 2});
    for (auto* t : {&t1, &t2, &t3}) {
        REQUIRE(t->done());
        CHECK(t->result());
    }
}

CORING_TEST_CASE("Event: wait() on a set event returns without suspending", "[sync][event]") {
    Event ev;
    ev.set();
    auto iterations = coring::get_running_loop().iteration_count();
    bool r = co_await ev.wait();
    CHECK(r);
    CHECK(coring::get_running_loop().iteration_count() == iterations);
}

CORING_TEST_CASE("Event: a cancelled waiter stops waiting and is not woken later",
                 "[sync][event]") {
    // asyncio test_wait_cancel
    Event ev;
    std::vector<int> result;
    auto waiter = coring::create_task(wait_and_record(ev, result, 1));
    coring::get_running_loop().call_soon([waiter] { waiter.cancel(); });
    CO_CHECK_THROWS_AS(waiter, CancelledError);
    ev.set();
    co_await coring::sleep(0s);
    CHECK(result.empty());
}

TEST_CASE("Event: clear() resets the flag", "[sync][event]") {
    // asyncio test_clear
    Event ev;
    CHECK_FALSE(ev.is_set());
    ev.set();
    CHECK(ev.is_set());
    ev.clear();
    CHECK_FALSE(ev.is_set());
}

CORING_TEST_CASE("Event: a waiter woken by set() returns true even if clear() came first",
                 "[sync][event]") {
    // asyncio test_clear_with_waiters
    Event ev;
    std::vector<int> result;
    auto t = coring::create_task(wait_and_record(ev, result, 1));
    co_await coring::sleep(0s);
    ev.set();
    ev.clear();
    CHECK_FALSE(ev.is_set());
    ev.set();
    ev.set();
    co_await coring::sleep(0s);
    CHECK(result == std::vector<int>{1});
    REQUIRE(t.done());
    CHECK(t.result());
}

CORING_TEST_CASE("Event: a waiter cancelled after set() woke it throws CancelledError",
                 "[sync][event]") {
    // asyncio: the future is done, so Task.cancel() makes the next step raise.
    Event ev;
    std::vector<int> result;
    auto t = coring::create_task(wait_and_record(ev, result, 1));
    co_await coring::sleep(0s);
    ev.set();
    CHECK(t.cancel());
    CO_CHECK_THROWS_AS(t, CancelledError);
    CHECK(result.empty());
}

CORING_TEST_CASE("Event: a set() before the waiters run wakes them in FIFO order",
                 "[sync][event]") {
    Event ev;
    std::vector<int> result;
    std::vector<TaskHandle<bool>> tasks;
    for (int i = 0; i < 50; ++i) {
        tasks.push_back(coring::create_task(wait_and_record(ev, result, i)));
    }
    co_await coring::sleep(0s);
    CHECK(result.empty());
    ev.set();
    for (auto& t : tasks) {
        co_await t;
    }
    REQUIRE(result.size() == 50);
    for (int i = 0; i < 50; ++i) {
        CHECK(result[static_cast<std::size_t>(i)] == i);
    }
}

CORING_TEST_CASE("Event: the task dump names the event", "[sync][event]") {
    Event ev;
    std::vector<int> result;
    auto t = coring::create_task(wait_and_record(ev, result, 1));
    co_await coring::sleep(0s);
    CHECK(t.get_stack().find("waiting on Event wait (unset)") != std::string::npos);
    ev.set();
    co_await t;
}

// Issue 10, defect 9: GCC 12 miscompiles a co_await used as a condition; with GCC that form does
// not compile, and the result kept in a local works everywhere (see test_lock.cpp).
static_assert(std::is_same_v<decltype(std::declval<coring::EventAwaiter&>().await_resume()),
                             coring::TrueResult>);

CORING_TEST_CASE("Event: the result of wait() kept in a local works as a condition",
                 "[sync][event]") {
    Event ev;
    auto waiter = coring::create_task([](Event& e) -> Task<int> {
        auto ok = co_await e.wait();    // suspends until set()
        bool again = co_await e.wait(); // set already: at once
        co_return (ok ? 1 : 0) + (again ? 1 : 0);
    }(ev));
    co_await coring::sleep(0s);
    CHECK_FALSE(waiter.done());
    ev.set();
    int n = co_await waiter;
    CHECK(n == 2);
}

#if !CORING_REJECT_CO_AWAIT_CONDITION
CORING_TEST_CASE("Event: the condition form resumes the task (Clang)", "[sync][event]") {
    Event ev;
    auto waiter = coring::create_task([](Event& e) -> Task<int> {
        int n = 0;
        if (co_await e.wait()) {
            ++n;
        }
        co_return n;
    }(ev));
    co_await coring::sleep(0s);
    ev.set();
    int n = co_await waiter;
    CHECK(n == 1);
}
#endif
