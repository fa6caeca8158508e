// SPDX-License-Identifier: MIT
// The sync layer's allocation rule, checked by counting global operator new in this test
// executable: uncontended acquire/release, waits and wake-ups, and steady-state queue traffic
// allocate nothing (waiter nodes live in the awaiting frames; the ready queue and a queue's
// storage only grow).
#include <coring/barrier.hpp>
#include <coring/condition.hpp>
#include <coring/event.hpp>
#include <coring/lock.hpp>
#include <coring/queue.hpp>
#include <coring/run.hpp>
#include <coring/semaphore.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <new>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::Task;
using coring::test::run_test;

// Sanitizer runtimes own the global allocation functions (and frees through a replacement
// confuse ASan's alloc-dealloc checks), so these tests count only in normal builds.
#if defined(CORING_SANITIZER_BUILD)
#define CORING_COUNT_ALLOCATIONS 0
#else
#define CORING_COUNT_ALLOCATIONS 1
#endif

namespace {

thread_local std::size_t allocations = 0;

#if CORING_COUNT_ALLOCATIONS

void* counted_malloc(std::size_t size) {
    ++allocations;
    if (void* p = std::malloc(size == 0 ? 1 : size)) {
        return p;
    }
    throw std::bad_alloc();
}

#endif

} // namespace

#if CORING_COUNT_ALLOCATIONS

// Replaces the global allocation functions of this test executable (forwarding to malloc), so
// the tests below can count allocations. The aligned forms are left to the library.
void* operator new(std::size_t size) {
    return counted_malloc(size);
}

void* operator new[](std::size_t size) {
    return counted_malloc(size);
}

void operator delete(void* p) noexcept {
    std::free(p);
}

void operator delete[](void* p) noexcept {
    std::free(p);
}

void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}

#define CORING_REQUIRE_COUNTING() static_cast<void>(0)

#else

#define CORING_REQUIRE_COUNTING()                                                                  \
    CORING_SKIP("allocation counting replaces operator new, which the sanitizer runtime owns")

#endif

TEST_CASE("Sync: uncontended acquire and release allocate nothing", "[sync][alloc]") {
    CORING_REQUIRE_COUNTING();
    run_test([]() -> Task<> {
        coring::Lock lock;
        coring::Semaphore sem(2);
        coring::Event event;
        event.set();
        coring::Barrier one(1);
        std::size_t before = allocations;
        for (int i = 0; i < 1000; ++i) {
            co_await lock.acquire();
            lock.release();
            { auto guard = co_await lock.scoped_acquire(); }
            co_await sem.acquire();
            sem.release();
            { auto slot = co_await sem.scoped_acquire(); }
            co_await event.wait();
            co_await one.wait();
        }
        std::size_t after = allocations;
        CHECK(after == before);
    });
}

TEST_CASE("Sync: waits and wake-ups between tasks allocate nothing", "[sync][alloc]") {
    CORING_REQUIRE_COUNTING();
    run_test([]() -> Task<> {
        coring::Lock lock;
        coring::Condition cond;
        coring::Semaphore sem(1);
        coring::Event ping;
        coring::Barrier both(2);
        int rounds = 0;
        auto other = [&]() -> Task<> {
            for (int i = 0; i < 200; ++i) {
                {
                    auto guard = co_await lock.scoped_acquire();
                    co_await coring::sleep(0s); // holds the lock across a yield: contention
                }
                {
                    auto slot = co_await sem.scoped_acquire();
                    co_await coring::sleep(0s);
                }
                co_await ping.wait();
                ping.clear();
                {
                    auto guard = co_await cond.scoped_acquire();
                    ++rounds;
                    cond.notify();
                }
                co_await both.wait();
            }
        };
        auto task = coring::create_task(other());
        co_await coring::sleep(0s); // the task's frame exists before counting starts
        std::size_t before = allocations;
        for (int i = 0; i < 200; ++i) {
            { auto guard = co_await lock.scoped_acquire(); }
            { auto slot = co_await sem.scoped_acquire(); }
            ping.set();
            {
                auto guard = co_await cond.scoped_acquire();
                int seen = rounds;
                while (rounds == seen) {
                    co_await cond.wait();
                }
            }
            co_await both.wait();
        }
        std::size_t after = allocations;
        co_await task;
        CHECK(after == before);
    });
}

TEST_CASE("Queue: steady-state put and get allocate nothing", "[sync][queue][alloc]") {
    CORING_REQUIRE_COUNTING();
    run_test([]() -> Task<> {
        coring::Queue<int> bounded(1);
        coring::Queue<int> unbounded;
        coring::LifoQueue<int> lifo;
        coring::PriorityQueue<int> heap;
        constexpr int n = 5000;
        auto consumer = [&]() -> Task<long> {
            long sum = 0;
            for (int i = 0; i < n; ++i) {
                sum += co_await bounded.get();
                bounded.task_done();
            }
            co_return sum;
        };
        // Warm-up: let the storages reach their working size.
        bounded.put_nowait(-1);
        bounded.get_nowait();
        bounded.task_done();
        for (int i = 0; i < 64; ++i) {
            unbounded.put_nowait(i);
            lifo.put_nowait(i);
            heap.put_nowait(i);
        }
        for (int i = 0; i < 64; ++i) {
            unbounded.get_nowait();
            lifo.get_nowait();
            heap.get_nowait();
        }
        auto task = coring::create_task(consumer());
        co_await coring::sleep(0s);
        std::size_t before = allocations;
        for (int i = 0; i < n; ++i) {
            co_await bounded.put(i); // ping-pong: blocks until the consumer took the last one
            unbounded.put_nowait(i);
            lifo.put_nowait(i);
            heap.put_nowait(i);
            if (i % 32 == 31) { // the ring buffer slides through its capacity many times
                for (int k = 0; k < 32; ++k) {
                    co_await unbounded.get();
                    co_await lifo.get();
                    co_await heap.get();
                }
            }
        }
        co_await bounded.join();
        std::size_t after = allocations;
        long sum = co_await task;
        CHECK(after == before);
        CHECK(sum == static_cast<long>(n) * (n - 1) / 2);
    });
}
