// SPDX-License-Identifier: MIT
// Synchronisation-primitive and queue benchmarks (peers in sync_asyncio.py do the same work with
// asyncio and uvloop).
//
// Usage: bench_sync [--case NAME]... [--list]
//
// Prints `BENCH <case> <value> <unit>` on stdout (benchmarks/README.md) and, on stderr,
// `ITERATIONS <case> <n>` for callgrind's per-case dumps. Every case runs its operations in
// timed laps after a warm-up and reports the fastest lap (support.hpp says why).
//
// Cases (one operation in brackets):
//   lock_uncontended       one task: [co_await lock.acquire(); lock.release()]
//   lock_scoped            one task: [{ auto g = co_await lock.scoped_acquire(); }]
//                          (Python: `async with lock: pass`)
//   queue_nowait           one task: [q.put_nowait(i); q.get_nowait()] on an unbounded Queue
//   queue_pingpong         a producer puts n ints into a Queue(maxsize=1), a consumer gets
//                          them: every put after the first waits for the consumer's get
//                          [one item through the queue: a put, a get, two task switches]
//   semaphore_1000_tasks   1000 tasks share a Semaphore(10), each 10 rounds of
//                          `async with sem: sleep(0)` [one acquire + release, with its wait]
//   event_broadcast_10k    10,000 tasks wait on an Event; set() until the last has resumed
//                          [one waiter woken and run to its end]
#include <coring/event.hpp>
#include <coring/lock.hpp>
#include <coring/queue.hpp>
#include <coring/run.hpp>
#include <coring/semaphore.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
using bench::Region;
using bench::scaled;
using coring::Task;

namespace {

/// Makes the compiler assume *p is read and written here, so that a loop over an uncontended
/// primitive is not folded away (it still does all the work a real caller's loop does).
template <class T>
void clobber(T* p) {
    asm volatile("" : : "r"(p) : "memory");
}

// ---- lock_uncontended, lock_scoped ----

Task<> lock_loop(coring::Lock& lock, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
        co_await lock.acquire();
        clobber(&lock);
        lock.release();
    }
}

Task<> lock_scoped_loop(coring::Lock& lock, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
        auto guard = co_await lock.scoped_acquire();
        clobber(&lock);
    }
}

template <class Loop>
Task<> bench_lock(const char* name, Loop loop) {
    const std::uint64_t n = scaled(20'000'000);
    coring::Lock lock;
    co_await loop(lock, n / 10);
    Region r(name, n);
    const int laps = bench::lap_count();
    for (int lap = 0; lap < laps; ++lap) {
        r.lap_start();
        co_await loop(lock, n / laps);
        r.lap_end(n / laps);
    }
    r.report_ns_per_op();
}

// ---- queue_nowait ----

Task<> nowait_loop(coring::Queue<int>& q, std::uint64_t n) {
    std::uint64_t sum = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        q.put_nowait(static_cast<int>(i));
        sum += static_cast<std::uint64_t>(q.get_nowait());
        q.task_done();
    }
    clobber(&sum);
    co_return;
}

Task<> bench_queue_nowait() {
    const std::uint64_t n = scaled(10'000'000);
    coring::Queue<int> q;
    co_await nowait_loop(q, n / 10);
    Region r("queue_nowait", n);
    const int laps = bench::lap_count();
    for (int lap = 0; lap < laps; ++lap) {
        r.lap_start();
        co_await nowait_loop(q, n / laps);
        r.lap_end(n / laps);
    }
    r.report_ns_per_op();
}

// ---- queue_pingpong ----

Task<> producer(coring::Queue<int>& q, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
        co_await q.put(static_cast<int>(i));
    }
}

Task<std::uint64_t> consumer(coring::Queue<int>& q, std::uint64_t n) {
    std::uint64_t sum = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        sum += static_cast<std::uint64_t>(co_await q.get());
    }
    co_return sum;
}

Task<> pingpong(coring::Queue<int>& q, std::uint64_t n) {
    auto c = coring::create_task(consumer(q, n));
    auto p = coring::create_task(producer(q, n));
    co_await p;
    std::uint64_t sum = co_await c;
    if (sum != n * (n - 1) / 2) {
        std::fprintf(stderr, "queue_pingpong: wrong sum\n");
        std::exit(1);
    }
}

Task<> bench_queue_pingpong() {
    const std::uint64_t n = scaled(4'000'000);
    coring::Queue<int> q(1);
    co_await pingpong(q, n / 10);
    Region r("queue_pingpong", n);
    const int laps = bench::lap_count();
    for (int lap = 0; lap < laps; ++lap) {
        r.lap_start();
        co_await pingpong(q, n / laps);
        r.lap_end(n / laps);
    }
    r.report_ns_per_op();
}

// ---- semaphore_1000_tasks ----

constexpr int sem_tasks = 1000;
constexpr int sem_rounds = 10;

Task<> sem_worker(coring::Semaphore& sem, std::uint64_t& done) {
    for (int i = 0; i < sem_rounds; ++i) {
        auto slot = co_await sem.scoped_acquire();
        co_await coring::sleep(0s);
        ++done;
    }
}

Task<> sem_round(coring::Semaphore& sem, std::vector<coring::TaskHandle<>>& tasks) {
    std::uint64_t done = 0;
    for (int i = 0; i < sem_tasks; ++i) {
        tasks.push_back(coring::create_task(sem_worker(sem, done)));
    }
    for (auto& t : tasks) {
        co_await t;
    }
    tasks.clear();
    if (done != static_cast<std::uint64_t>(sem_tasks) * sem_rounds) {
        std::fprintf(stderr, "semaphore_1000_tasks: lost rounds\n");
        std::exit(1);
    }
}

Task<> bench_semaphore_1000_tasks() {
    const int laps = bench::lap_count();
    const std::uint64_t per_lap = static_cast<std::uint64_t>(sem_tasks) * sem_rounds;
    coring::Semaphore sem(10);
    std::vector<coring::TaskHandle<>> tasks;
    tasks.reserve(sem_tasks);
    co_await sem_round(sem, tasks);
    Region r("semaphore_1000_tasks", per_lap * static_cast<std::uint64_t>(laps));
    for (int lap = 0; lap < laps; ++lap) {
        r.lap_start();
        co_await sem_round(sem, tasks);
        r.lap_end(per_lap);
    }
    r.report_ns_per_op();
}

// ---- event_broadcast_10k ----

constexpr int event_waiters = 10'000;

Task<> event_waiter(coring::Event& ev, int& left, coring::Event& all_done) {
    co_await ev.wait();
    if (--left == 0) {
        all_done.set();
    }
}

Task<> bench_event_broadcast_10k() {
    const int laps = bench::lap_count();
    std::vector<coring::TaskHandle<>> tasks;
    tasks.reserve(event_waiters);
    std::optional<Region> region;           // begins after the warm-up rounds
    for (int lap = -2; lap < laps; ++lap) { // two warm-up rounds
        coring::Event ev;
        coring::Event all_done;
        int left = event_waiters;
        for (int i = 0; i < event_waiters; ++i) {
            tasks.push_back(coring::create_task(event_waiter(ev, left, all_done)));
        }
        co_await coring::sleep(0s); // every waiter is now suspended in ev.wait()
        if (lap == 0) {
            region.emplace("event_broadcast_10k",
                           static_cast<std::uint64_t>(event_waiters) *
                                   static_cast<std::uint64_t>(laps));
        }
        if (region) {
            region->lap_start();
        }
        ev.set();
        co_await all_done.wait();
        if (region) {
            region->lap_end(event_waiters);
        }
        tasks.clear();
    }
    region->report_ns_per_op();
}

// ---- driver ----

const bench::Case cases[] = {
        {"lock_uncontended",
         [] {
             coring::run(bench_lock("lock_uncontended", lock_loop));
         }},
        {"lock_scoped",
         [] {
             coring::run(bench_lock("lock_scoped", lock_scoped_loop));
         }},
        {"queue_nowait",
         [] {
             coring::run(bench_queue_nowait());
         }},
        {"queue_pingpong",
         [] {
             coring::run(bench_queue_pingpong());
         }},
        {"semaphore_1000_tasks",
         [] {
             coring::run(bench_semaphore_1000_tasks());
         }},
        {"event_broadcast_10k",
         [] {
             coring::run(bench_event_broadcast_10k());
         }},
};

} // namespace

int main(int argc, char** argv) {
    return bench::main("bench_sync", cases, argc, argv);
}
