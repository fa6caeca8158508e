// SPDX-License-Identifier: MIT
// Foundation micro-benchmarks: spawn, task switch, call_soon, a million sleepers (peers in
// micro_asyncio.py do the same work with asyncio and uvloop).
//
// Usage: bench_micro [--case NAME]... [--list]
//
// Prints `BENCH <case> <value> <unit>` on stdout (benchmarks/README.md) and, on stderr,
// `ITERATIONS <case> <n>`: how many operations the measured part of <case> ran, so that
// callgrind's instruction count for the dump named <case> can be divided into instr/op.
// Without --case every case runs in a fresh process of its own (so peak RSS is per case).
// The ns/op cases run their operations in 50 timed laps after a warm-up and report the
// fastest lap (support.hpp says why); sleepers_1m runs once.
//
// Cases (one operation in brackets):
//   spawn_complete        [create_task(trivial()) then co_await it], one task at a time
//   spawn_complete_batch  the same, 1000 tasks created, then all 1000 awaited
//   sleep0_switch         two tasks ping-pong with co_await sleep(0s) [one task step]
//   call_soon             a callback that call_soon()s the next one [scheduled and run]
//   call_soon_batch       1000 call_soon() per loop iteration, then the task yields
//   sleepers_1m           1,000,000 tasks each sleep(1s), created then awaited one by one:
//                         wall seconds from the first create_task to the last await, the CPU
//                         seconds the process used meanwhile (on an idle core the wall time is
//                         about 1 s + that), and the process's peak RSS (VmHWM)
#include <coring/event_loop.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
using bench::Clock;
using bench::Region;
using bench::scaled;
using coring::Task;

namespace {

// ---- spawn_complete, spawn_complete_batch ----

Task<> trivial() {
    co_return;
}

Task<> spawn_one_at_a_time(std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
        auto t = coring::create_task(trivial());
        co_await t;
    }
}

Task<> spawn_batches(std::uint64_t batches, std::size_t batch) {
    std::vector<coring::TaskHandle<>> tasks;
    tasks.reserve(batch);
    for (std::uint64_t b = 0; b < batches; ++b) {
        for (std::size_t i = 0; i < batch; ++i) {
            tasks.push_back(coring::create_task(trivial()));
        }
        for (auto& t : tasks) {
            co_await t;
        }
        tasks.clear();
    }
}

Task<> bench_spawn_complete() {
    const std::uint64_t n = scaled(1'000'000);
    co_await spawn_one_at_a_time(n / 10); // warm the frame cache and the ready queue
    Region r("spawn_complete", n);
    const int laps = bench::lap_count();
    for (int lap = 0; lap < laps; ++lap) {
        r.lap_start();
        co_await spawn_one_at_a_time(n / laps);
        r.lap_end(n / laps);
    }
    r.report_ns_per_op();
}

Task<> bench_spawn_complete_batch() {
    constexpr std::size_t batch = 1000;
    const std::uint64_t batches = scaled(1000);
    co_await spawn_batches(batches / 10, batch);
    Region r("spawn_complete_batch", batches * batch);
    const int laps = bench::lap_count();
    for (int lap = 0; lap < laps; ++lap) {
        r.lap_start();
        co_await spawn_batches(batches / laps, batch);
        r.lap_end(batches / laps * batch);
    }
    r.report_ns_per_op();
}

// ---- sleep0_switch ----

Task<> yielder(std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
        co_await coring::sleep(0s);
    }
}

Task<> ping_pong(std::uint64_t n) {
    auto a = coring::create_task(yielder(n));
    auto b = coring::create_task(yielder(n));
    co_await a;
    co_await b;
}

Task<> bench_sleep0_switch() {
    const std::uint64_t n = scaled(2'000'000); // per task: 2n switches in all
    co_await ping_pong(n / 10);
    Region r("sleep0_switch", 2 * n);
    const int laps = bench::lap_count();
    for (int lap = 0; lap < laps; ++lap) {
        r.lap_start();
        co_await ping_pong(n / laps);
        r.lap_end(2 * n / laps);
    }
    r.report_ns_per_op();
}

// ---- call_soon, call_soon_batch ----

struct Chain {
    coring::EventLoop* loop;
    std::uint64_t left;
};

void chain_step(Chain* c) {
    if (--c->left == 0) {
        c->loop->stop();
        return;
    }
    c->loop->call_soon([c] { chain_step(c); });
}

void run_chain(coring::EventLoop& loop, std::uint64_t n) {
    Chain c{&loop, n};
    loop.call_soon([&c] { chain_step(&c); });
    loop.run_forever();
}

void bench_call_soon() {
    const std::uint64_t n = scaled(2'000'000);
    coring::EventLoop loop;
    run_chain(loop, n / 10);
    Region r("call_soon", n);
    const int laps = bench::lap_count();
    for (int lap = 0; lap < laps; ++lap) {
        r.lap_start();
        run_chain(loop, n / laps);
        r.lap_end(n / laps);
    }
    r.report_ns_per_op();
}

Task<> call_soon_batches(std::uint64_t batches, std::size_t batch, std::uint64_t& ran) {
    coring::EventLoop& loop = coring::get_running_loop();
    for (std::uint64_t b = 0; b < batches; ++b) {
        for (std::size_t i = 0; i < batch; ++i) {
            loop.call_soon([&ran] { ++ran; });
        }
        co_await coring::sleep(0s); // runs after the batch: the loop is FIFO
    }
}

Task<> bench_call_soon_batch() {
    constexpr std::size_t batch = 1000;
    const std::uint64_t batches = scaled(2000);
    std::uint64_t ran = 0;
    co_await call_soon_batches(batches / 10, batch, ran);
    Region r("call_soon_batch", batches * batch);
    const int laps = bench::lap_count();
    for (int lap = 0; lap < laps; ++lap) {
        r.lap_start();
        co_await call_soon_batches(batches / laps, batch, ran);
        r.lap_end(batches / laps * batch);
    }
    r.report_ns_per_op();
    if (ran != (batches + batches / 10) * batch) {
        std::fprintf(stderr,
                     "call_soon_batch: %llu callbacks ran, expected more\n",
                     static_cast<unsigned long long>(ran));
        std::exit(1);
    }
}

// ---- sleepers_1m ----

Task<> sleeper() {
    co_await coring::sleep(1s);
}

Task<> bench_sleepers_1m() {
    constexpr std::uint64_t n = 1'000'000;
    std::vector<coring::TaskHandle<>> tasks;
    tasks.reserve(n);
    double cpu0 = bench::cpu_seconds();
    Region r("sleepers_1m", n);
    auto t0 = Clock::now();
    for (std::uint64_t i = 0; i < n; ++i) {
        tasks.push_back(coring::create_task(sleeper()));
    }
    auto created = Clock::now();
    for (auto& t : tasks) {
        co_await t;
    }
    double ns = r.stop();
    std::fprintf(stderr,
                 "sleepers_1m: created in %.3f s\n",
                 std::chrono::duration<double>(created - t0).count());
    double cpu = bench::cpu_seconds() - cpu0;
    std::printf("BENCH sleepers_1m_wall %.3f s\n", ns / 1e9);
    std::printf("BENCH sleepers_1m_cpu %.3f s\n", cpu);
    std::printf("BENCH sleepers_1m_peak_rss %.1f MiB\n", bench::peak_rss_mib());
}

// ---- driver ----

const bench::Case cases[] = {
        {"spawn_complete",
         [] {
             coring::run(bench_spawn_complete());
         }},
        {"spawn_complete_batch",
         [] {
             coring::run(bench_spawn_complete_batch());
         }},
        {"sleep0_switch",
         [] {
             coring::run(bench_sleep0_switch());
         }},
        {"call_soon",
         [] {
             bench_call_soon();
         }},
        {"call_soon_batch",
         [] {
             coring::run(bench_call_soon_batch());
         }},
        {"sleepers_1m",
         [] {
             coring::run(bench_sleepers_1m());
         }},
};

} // namespace

int main(int argc, char** argv) {
    return bench::main("bench_micro", cases, argc, argv);
}
