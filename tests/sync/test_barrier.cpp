// SPDX-License-Identifier: MIT
// Tests of Barrier (asyncio test_locks.BarrierTests).
// clang-format off
#include <coring/barrier.hpp> // first: it must compile on its own
// clang-format on

#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::Barrier;
using coring::BrokenBarrierError;
using coring::CancelledError;
using coring::Task;
using coring::TaskHandle;

namespace {

constexpr int N = 5;

/// asyncio BarrierTests.gather_tasks: runs n copies of coro as tasks and awaits them all.
template <class T>
Task<std::vector<T>> gather_tasks(int n, const std::function<Task<T>()>& coro) {
    std::vector<TaskHandle<T>> tasks;
    for (int i = 0; i < n; ++i) {
        tasks.push_back(coring::create_task(coro()));
    }
    std::vector<T> results;
    for (auto& t : tasks) {
        results.push_back(co_await t);
    }
    co_return results;
}

Task<> gather_void(int n, const std::function<Task<>()>& coro) {
    std::vector<TaskHandle<>> tasks;
    for (int i = 0; i < n; ++i) {
        tasks.push_back(coring::create_task(coro()));
    }
    for (auto& t : tasks) {
        co_await t;
    }
}

Task<std::size_t> wait_on(Barrier& barrier) {
    co_return co_await barrier.wait();
}

std::vector<std::size_t> iota(std::size_t n) {
    std::vector<std::size_t> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        v[i] = i;
    }
    return v;
}

} // namespace

TEST_CASE("Barrier: parties must be positive", "[sync][barrier]") {
    // asyncio test_barrier_parties
    CHECK_THROWS_WITH(Barrier(0), "parties must be > 0");
    CHECK_THROWS_AS(Barrier(-4), coring::ValueError);
    Barrier b(N);
    CHECK(b.parties() == N);
    CHECK(b.n_waiting() == 0);
    CHECK_FALSE(b.broken());
    CHECK(b.state() == Barrier::State::filling);
}

CORING_TEST_CASE("Barrier: states seen while filling, draining, resetting and broken",
                 "[sync][barrier]") {
    // asyncio test_repr
    Barrier barrier(N);
    std::vector<TaskHandle<std::size_t>> waiters;
    for (int i = 0; i < 2; ++i) {
        waiters.push_back(coring::create_task(wait_on(barrier)));
    }
    co_await coring::sleep(0s);
    CHECK(barrier.n_waiting() == 2);
    CHECK(barrier.state() == Barrier::State::filling);

    for (std::size_t i = barrier.n_waiting(); i < barrier.parties(); ++i) {
        waiters.push_back(coring::create_task(wait_on(barrier)));
    }
    co_await coring::sleep(0s);
    CHECK(barrier.state() == Barrier::State::draining);

    for (int i = 0; i < 2; ++i) {
        waiters.push_back(coring::create_task(wait_on(barrier)));
    }
    co_await coring::sleep(0s);
    co_await barrier.reset();
    CHECK(barrier.state() == Barrier::State::resetting);

    for (int i = 0; i < 2; ++i) {
        waiters.push_back(coring::create_task(wait_on(barrier)));
    }
    co_await coring::sleep(0s);
    co_await barrier.abort();
    CHECK(barrier.state() == Barrier::State::broken);
    CHECK(barrier.broken());
    for (auto& w : waiters) {
        try {
            co_await w;
        } catch (const BrokenBarrierError&) {
        }
    }
}

CORING_TEST_CASE("Barrier: every party gets a distinct index", "[sync][barrier]") {
    // asyncio test_context_manager
    Barrier barrier(3);
    auto results = co_await gather_tasks<std::size_t>(
            3, [&]() -> Task<std::size_t> { co_return co_await barrier.wait(); });
    std::sort(results.begin(), results.end());
    CHECK(results == iota(3));
    CHECK(barrier.n_waiting() == 0);
    CHECK_FALSE(barrier.broken());
}

CORING_TEST_CASE("Barrier: a barrier of one passes without suspending", "[sync][barrier]") {
    // asyncio test_filling_one_task, test_filling_one_task_twice
    Barrier barrier(1);
    auto iterations = coring::get_running_loop().iteration_count();
    std::size_t a = co_await barrier.wait();
    std::size_t b = co_await barrier.wait();
    CHECK(a == 0);
    CHECK(b == 0);
    CHECK(coring::get_running_loop().iteration_count() == iterations);
    CHECK(barrier.n_waiting() == 0);
    CHECK_FALSE(barrier.broken());
}

CORING_TEST_CASE("Barrier: fills task by task", "[sync][barrier]") {
    // asyncio test_filling_task_by_task
    Barrier barrier(3);
    auto t1 = coring::create_task(wait_on(barrier));
    co_await coring::sleep(0s);
    CHECK(barrier.n_waiting() == 1);
    auto t2 = coring::create_task(wait_on(barrier));
    co_await coring::sleep(0s);
    CHECK(barrier.n_waiting() == 2);
    auto t3 = coring::create_task(wait_on(barrier));
    co_await coring::sleep(0s);
    CHECK(t3.done()); // the last one does not wait
    std::size_t i1 = co_await t1;
    std::size_t i2 = co_await t2;
    std::size_t i3 = co_await t3;
    CHECK(i1 == 0);
    CHECK(i2 == 1);
    CHECK(i3 == 2);
    CHECK(barrier.n_waiting() == 0);
    CHECK_FALSE(barrier.broken());
}

CORING_TEST_CASE("Barrier: tasks pass it twice in a row", "[sync][barrier]") {
    // asyncio test_filling_tasks_wait_twice, test_filling_tasks_check_return_value
    Barrier barrier(N);
    std::vector<bool> results;
    auto second = co_await gather_tasks<std::size_t>(N, [&]() -> Task<std::size_t> {
        co_await barrier.wait();
        results.push_back(true);
        std::size_t i = co_await barrier.wait();
        results.push_back(false);
        co_return i;
    });
    CHECK(std::count(results.begin(), results.end(), true) == N);
    CHECK(std::count(results.begin(), results.end(), false) == N);
    std::sort(second.begin(), second.end());
    CHECK(second == iota(N));
    CHECK(barrier.n_waiting() == 0);
    CHECK_FALSE(barrier.broken());
}

CORING_TEST_CASE("Barrier: drains until the last party has left", "[sync][barrier]") {
    // asyncio test_draining_state
    Barrier barrier(N);
    std::vector<bool> draining;
    co_await gather_void(N, [&]() -> Task<> {
        co_await barrier.wait();
        draining.push_back(barrier.state() == Barrier::State::draining);
    });
    REQUIRE(draining.size() == N);
    CHECK_FALSE(draining.back()); // the last to leave sees filling again
    CHECK(std::all_of(draining.begin(), draining.end() - 1, [](bool d) { return d; }));
    CHECK(barrier.n_waiting() == 0);
}

CORING_TEST_CASE("Barrier: tasks arriving while it drains wait for the next round",
                 "[sync][barrier]") {
    // asyncio test_blocking_tasks_while_draining
    constexpr int rewait = 2;
    Barrier barrier(N);
    Barrier barrier_nowaiting(N - rewait);
    int rewait_n = rewait;
    co_await gather_void(N, [&]() -> Task<> {
        co_await barrier.wait();
        if (rewait_n > 0) {
            --rewait_n;
            co_await barrier.wait(); // arrives while the first round drains
        } else {
            co_await barrier_nowaiting.wait();
            co_await barrier.wait();
        }
    });
    CHECK(barrier.n_waiting() == 0);
    CHECK_FALSE(barrier.broken());
}

CORING_TEST_CASE("Barrier: a cancelled party no longer counts", "[sync][barrier]") {
    // asyncio test_filling_tasks_cancel_one
    Barrier barrier(3);
    int passed = 0;
    auto coro = [&]() -> Task<> {
        co_await barrier.wait();
        ++passed;
    };
    auto t1 = coring::create_task(coro());
    co_await coring::sleep(0s);
    CHECK(barrier.n_waiting() == 1);
    auto t2 = coring::create_task(coro());
    co_await coring::sleep(0s);
    CHECK(barrier.n_waiting() == 2);

    t1.cancel();
    co_await coring::sleep(0s);
    CHECK(barrier.n_waiting() == 1);
    CO_CHECK_THROWS_AS(t1, CancelledError);
    CHECK(t1.cancelled());

    auto t3 = coring::create_task(coro());
    co_await coring::sleep(0s);
    CHECK(barrier.n_waiting() == 2);
    auto t4 = coring::create_task(coro());
    co_await t2;
    co_await t3;
    co_await t4;
    CHECK(passed == 3);
    CHECK(barrier.n_waiting() == 0);
    CHECK_FALSE(barrier.broken());
}

CORING_TEST_CASE("Barrier: a party cancelled after the barrier opened throws CancelledError",
                 "[sync][barrier]") {
    Barrier barrier(2);
    auto t1 = coring::create_task(wait_on(barrier));
    co_await coring::sleep(0s);
    auto t2 = coring::create_task(wait_on(barrier));
    co_await coring::sleep(0s); // t2 completes the barrier; t1 is woken
    t1.cancel();
    CO_CHECK_THROWS_AS(t1, CancelledError);
    std::size_t i2 = co_await t2;
    CHECK(i2 == 1);
    CHECK(barrier.state() == Barrier::State::filling); // t1 left it too
    CHECK(barrier.n_waiting() == 0);
}

CORING_TEST_CASE("Barrier: reset() with nobody waiting keeps it filling", "[sync][barrier]") {
    // asyncio test_reset_barrier
    Barrier barrier(1);
    co_await barrier.reset();
    CHECK(barrier.n_waiting() == 0);
    CHECK_FALSE(barrier.broken());
    CHECK(barrier.state() == Barrier::State::filling);
}

CORING_TEST_CASE("Barrier: reset() breaks the current waiters' wait", "[sync][barrier]") {
    // asyncio test_reset_barrier_while_tasks_waiting
    Barrier barrier(N);
    int broken = 0;
    auto coro = [&]() -> Task<> {
        try {
            co_await barrier.wait();
        } catch (const BrokenBarrierError& e) {
            CHECK(std::string(e.what()) == "Abort or reset of barrier");
            ++broken;
        }
    };
    std::vector<TaskHandle<>> tasks;
    for (int i = 0; i < N - 1; ++i) {
        tasks.push_back(coring::create_task(coro()));
    }
    co_await coring::sleep(0s);
    auto reset = [&]() -> Task<> {
        co_await barrier.reset();
    };
    auto r = coring::create_task(reset());
    for (auto& t : tasks) {
        co_await t;
    }
    co_await r;
    CHECK(broken == N - 1);
    CHECK(barrier.n_waiting() == 0);
    CHECK(barrier.state() == Barrier::State::filling);
    CHECK_FALSE(barrier.broken());
}

CORING_TEST_CASE("Barrier: reset() while half the parties are still draining", "[sync][barrier]") {
    // asyncio test_reset_barrier_when_tasks_half_draining
    Barrier barrier(N);
    int results1 = 0;
    const int rest_of_tasks = N / 2;
    int passed = 0;
    co_await gather_void(N, [&]() -> Task<> {
        try {
            co_await barrier.wait();
        } catch (const BrokenBarrierError&) {
            ++results1;
            co_return;
        }
        // asyncio compares barrier._count: the number of tasks still inside wait().
        if (++passed == N - rest_of_tasks) {
            co_await barrier.reset();
        }
    });
    CHECK(results1 == rest_of_tasks);
    CHECK(barrier.n_waiting() == 0);
    CHECK(barrier.state() == Barrier::State::filling);
    CHECK_FALSE(barrier.broken());
}

CORING_TEST_CASE("Barrier: reset() while some parties drain and others wait again",
                 "[sync][barrier]") {
    // asyncio test_reset_barrier_when_tasks_half_draining_half_blocking
    Barrier barrier(N);
    int results1 = 0;
    int results2 = 0;
    const int blocking_tasks = N / 2;
    int count = 0;
    co_await gather_void(N, [&]() -> Task<> {
        bool broke = false;
        try {
            co_await barrier.wait();
        } catch (const BrokenBarrierError&) {
            ++results1;
            broke = true;
        }
        if (broke) {
            co_await barrier.wait(); // wait again to reach the parties
            co_return;
        }
        ++count;
        if (count > blocking_tasks) {
            co_await barrier.reset();
            co_await barrier.wait();
        } else {
            try {
                co_await barrier.wait();
            } catch (const BrokenBarrierError&) {
                ++results2;
            }
        }
    });
    CHECK(results1 == blocking_tasks);
    CHECK(results2 == 0);
    CHECK(barrier.n_waiting() == 0);
    CHECK(barrier.state() == Barrier::State::filling);
    CHECK_FALSE(barrier.broken());
}

CORING_TEST_CASE("Barrier: parties broken by reset() can wait again and pass", "[sync][barrier]") {
    // asyncio test_reset_barrier_while_tasks_waiting_and_waiting_again
    Barrier barrier(N);
    int results1 = 0;
    int results2 = 0;
    auto coro1 = [&]() -> Task<> {
        try {
            co_await barrier.wait();
        } catch (const BrokenBarrierError&) {
            ++results1;
        }
        co_await barrier.wait();
        ++results2;
    };
    auto coro2 = [&]() -> Task<> {
        co_await barrier.wait();
        ++results2;
    };
    std::vector<TaskHandle<>> tasks;
    for (int i = 0; i < N - 1; ++i) {
        tasks.push_back(coring::create_task(coro1()));
    }
    auto reset = [&]() -> Task<> {
        co_await barrier.reset();
    };
    auto r = coring::create_task(reset());
    co_await coring::sleep(0s);
    auto last = coring::create_task(coro2());
    for (auto& t : tasks) {
        co_await t;
    }
    co_await r;
    co_await last;
    CHECK_FALSE(barrier.broken());
    CHECK(results1 == N - 1);
    CHECK(results2 == N);
    CHECK(barrier.n_waiting() == 0);
}

CORING_TEST_CASE("Barrier: reset() by the last party to leave a draining barrier",
                 "[sync][barrier]") {
    // asyncio test_reset_barrier_while_tasks_draining
    Barrier barrier(N);
    int results1 = 0;
    int results2 = 0;
    int results3 = 0;
    int count = 0;
    co_await gather_void(N, [&]() -> Task<> {
        co_await barrier.wait();
        ++count;
        if (count == N) {
            co_await barrier.reset();
            co_await barrier.wait();
        } else {
            try {
                co_await barrier.wait();
                ++results1;
            } catch (const BrokenBarrierError&) {
                ++results2;
            }
        }
        co_await barrier.wait();
        ++results3;
    });
    CHECK_FALSE(barrier.broken());
    CHECK(results1 == N - 1);
    CHECK(results2 == 0);
    CHECK(results3 == N);
    CHECK(barrier.n_waiting() == 0);
}

CORING_TEST_CASE("Barrier: abort() with nobody waiting breaks it", "[sync][barrier]") {
    // asyncio test_abort_barrier
    Barrier barrier(1);
    co_await barrier.abort();
    CHECK(barrier.n_waiting() == 0);
    CHECK(barrier.broken());
    CO_CHECK_THROWS_WITH(barrier.wait(), "Barrier aborted");
}

CORING_TEST_CASE("Barrier: abort() while some parties drain and others wait again",
                 "[sync][barrier]") {
    // asyncio test_abort_barrier_when_tasks_half_draining_half_blocking
    Barrier barrier(N);
    int results1 = 0;
    int results2 = 0;
    const int blocking_tasks = N / 2;
    int count = 0;
    co_await gather_void(N, [&]() -> Task<> {
        try {
            co_await barrier.wait();
        } catch (const BrokenBarrierError&) {
            ++results1;
            co_return;
        }
        ++count;
        if (count > blocking_tasks) {
            co_await barrier.abort();
        } else {
            try {
                co_await barrier.wait();
            } catch (const BrokenBarrierError&) {
                ++results2;
            }
        }
    });
    CHECK(barrier.broken());
    CHECK(results1 == blocking_tasks);         // drained, but broken before they ran
    CHECK(results2 == N - blocking_tasks - 1); // waiting for the next round
    CHECK(barrier.n_waiting() == 0);
}

CORING_TEST_CASE("Barrier: a party that fails aborts the barrier for the others",
                 "[sync][barrier]") {
    // asyncio test_abort_barrier_when_exception
    Barrier barrier(N);
    int results1 = 0;
    int results2 = 0;
    co_await gather_void(N, [&]() -> Task<> {
        bool failed = false;
        try {
            std::size_t i = co_await barrier.wait();
            if (i == N / 2) {
                throw coring::RuntimeError("party failed");
            }
            co_await barrier.wait();
            ++results1;
        } catch (const BrokenBarrierError&) {
            ++results2;
        } catch (const coring::RuntimeError&) {
            failed = true;
        }
        if (failed) {
            co_await barrier.abort();
        }
    });
    CHECK(barrier.broken());
    CHECK(results1 == 0);
    CHECK(results2 == N - 1);
    CHECK(barrier.n_waiting() == 0);
}

CORING_TEST_CASE("Barrier: after an abort, reset() makes it usable again", "[sync][barrier]") {
    // asyncio test_abort_barrier_when_exception_then_resetting
    Barrier barrier1(N);
    Barrier barrier2(N);
    int results1 = 0;
    int results2 = 0;
    int results3 = 0;
    co_await gather_void(N, [&]() -> Task<> {
        bool failed = false;
        try {
            std::size_t i = co_await barrier1.wait();
            if (i == N / 2) {
                throw coring::RuntimeError("party failed");
            }
            co_await barrier1.wait();
            ++results1;
        } catch (const BrokenBarrierError&) {
            ++results2;
        } catch (const coring::RuntimeError&) {
            failed = true;
        }
        if (failed) {
            co_await barrier1.abort();
        }
        std::size_t i = co_await barrier2.wait();
        if (i == N / 2) {
            co_await barrier1.reset();
        }
        co_await barrier2.wait();
        co_await barrier1.wait();
        ++results3;
    });
    CHECK_FALSE(barrier1.broken());
    CHECK(results1 == 0);
    CHECK(results2 == N - 1);
    CHECK(results3 == N);
    CHECK(barrier1.n_waiting() == 0);
}

CORING_TEST_CASE("Barrier: the task dump shows the barrier's state", "[sync][barrier]") {
    Barrier barrier(2);
    auto t = coring::create_task(wait_on(barrier));
    co_await coring::sleep(0s);
    CHECK(t.get_stack().find("Barrier wait (filling, 1/2 waiting)") != std::string::npos);
    co_await barrier.wait();
    co_await t;
}
