// SPDX-License-Identifier: MIT
// Combinator benchmarks: gather of 100,000 trivial tasks and a TaskGroup of 100,000 tasks, with
// the heap each finished-and-awaited task costs beyond its coroutine frame.
// Peer: combinators_asyncio.py (asyncio, uvloop). Output: BENCH <case> <value> <unit>.
//
// Heap: operator new/delete are replaced below by counting versions (every allocation in this
// program goes through them, the frame allocator's included). The first round of each case runs
// on a cold frame cache, so every frame comes from operator new; the frame's block size is
// measured by allocating one child coroutine first. "heap beyond frame" is
// (bytes allocated during the round - frames * frame block size) / tasks.
#include <coring/coring.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

struct HeapCounter {
    bool on = false;
    std::size_t bytes = 0;
    std::size_t count = 0;
    std::size_t frame_size = 0;  // block size of one child frame
    std::size_t frame_count = 0; // allocations of exactly that size
};

HeapCounter heap;

void* counted_alloc(std::size_t n) {
    if (heap.on) {
        heap.bytes += n;
        ++heap.count;
        if (n == heap.frame_size) {
            ++heap.frame_count;
        }
    }
    if (void* p = std::malloc(n == 0 ? 1 : n)) {
        return p;
    }
    throw std::bad_alloc();
}

} // namespace

void* operator new(std::size_t n) {
    return counted_alloc(n);
}

void* operator new[](std::size_t n) {
    return counted_alloc(n);
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

namespace {

using clock_type = std::chrono::steady_clock;

coring::Task<int> child() {
    co_return 1;
}

struct Round {
    double seconds = 0;
    std::size_t heap_bytes = 0;
    std::size_t heap_count = 0;
    std::size_t frames = 0;
};

coring::Task<Round> gather_case(int n) {
    Round r;
    heap = HeapCounter{true, 0, 0, heap.frame_size, 0};
    CALLGRIND_ZERO_STATS;
    auto t0 = clock_type::now();
    std::vector<coring::Task<int>> jobs;
    jobs.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        jobs.push_back(child());
    }
    std::vector<int> results = co_await coring::gather(std::move(jobs));
    auto t1 = clock_type::now();
    CALLGRIND_DUMP_STATS_AT("gather_100k");
    heap.on = false;
    long sum = 0;
    for (int v : results) {
        sum += v;
    }
    if (sum != n) {
        std::fprintf(stderr, "gather: wrong sum %ld\n", sum);
        std::exit(1);
    }
    r.seconds = std::chrono::duration<double>(t1 - t0).count();
    r.heap_bytes = heap.bytes;
    r.heap_count = heap.count;
    r.frames = heap.frame_count;
    co_return r;
}

coring::Task<Round> task_group_case(int n) {
    Round r;
    heap = HeapCounter{true, 0, 0, heap.frame_size, 0};
    CALLGRIND_ZERO_STATS;
    auto t0 = clock_type::now();
    co_await coring::task_group([n](coring::TaskGroup& tg) -> coring::Task<> {
        for (int i = 0; i < n; ++i) {
            tg.create_task(child());
        }
        co_return;
    });
    auto t1 = clock_type::now();
    CALLGRIND_DUMP_STATS_AT("task_group_100k");
    heap.on = false;
    r.seconds = std::chrono::duration<double>(t1 - t0).count();
    r.heap_bytes = heap.bytes;
    r.heap_count = heap.count;
    r.frames = heap.frame_count;
    co_return r;
}

template <class Case>
void run_case(const char* name, Case make, int n, int rounds) {
    std::vector<double> times;
    Round cold;
    coring::Runner runner;
    for (int i = 0; i < rounds + 1; ++i) {
        Round r = runner.run(make(n));
        if (i == 0) {
            cold = r; // cold frame cache: the heap figures
        } else {
            times.push_back(r.seconds);
        }
    }
    std::sort(times.begin(), times.end());
    double median = times[times.size() / 2];
    double beyond = (static_cast<double>(cold.heap_bytes) -
                     static_cast<double>(cold.frames * heap.frame_size)) /
                    n;
    std::fprintf(stderr, "ITERATIONS %s %d\n", name, n); // per callgrind dump (the last: warm)
    std::printf("BENCH %s %.1f ns/op\n", name, median * 1e9 / n);
    std::printf("BENCH %s_heap %.1f B/op\n", name, beyond);
    std::fprintf(stderr,
                 "%s: n=%d median %.3f ms over %d rounds (min %.3f ms); cold round: %zu "
                 "allocations, %zu bytes, %zu frames of %zu bytes -> %.1f bytes/task beyond "
                 "the frame, %.2f allocations/task\n",
                 name,
                 n,
                 median * 1e3,
                 rounds,
                 times.front() * 1e3,
                 cold.heap_count,
                 cold.heap_bytes,
                 cold.frames,
                 heap.frame_size,
                 beyond,
                 static_cast<double>(cold.heap_count) / n);
}

} // namespace

int main(int argc, char** argv) {
    std::string only;
    int n = 100000;
    int rounds = 5;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--list") == 0) {
            std::printf("gather_100k\ntask_group_100k\n");
            return 0;
        }
        if (std::strcmp(argv[i], "--case") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (std::strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
            n = std::atoi(argv[++i]);
        } else if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = std::atoi(argv[++i]);
        } else {
            std::fprintf(stderr,
                         "usage: %s [--list] [--case gather_100k|task_group_100k] [--n N] "
                         "[--rounds R]\n",
                         argv[0]);
            return 2;
        }
    }
    {
        // The block size of one child frame, before the frame cache holds anything.
        heap = HeapCounter{true, 0, 0, 0, 0};
        { auto probe = child(); }
        heap.on = false;
        heap.frame_size = heap.bytes;
    }
    if (only.empty() || only == "gather_100k") {
        run_case("gather_100k", gather_case, n, rounds);
    }
    if (only.empty() || only == "task_group_100k") {
        run_case("task_group_100k", task_group_case, n, rounds);
    }
    return 0;
}
