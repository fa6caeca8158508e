// SPDX-License-Identifier: MIT
// Peer of micro.cpp in standalone Asio (C++20 coroutines, io_uring backend): the same cases,
// as an Asio user would write them on a single-threaded io_context.
//
// Usage: bench_micro_asio [--case NAME]... [--list]   (output as bench_micro)
// Fewer operations than bench_micro where Asio is slower, so that a lap lasts about as long.
//
// How each case maps (coring → Asio):
//   create_task(f()) + co_await   → co_await co_spawn(ex, f(), use_awaitable)
//   a batch of tasks, then await  → co_spawn(ex, f(), handler) ×1000; the last handler cancels a
//                                   steady_timer the spawner awaits
//   co_await sleep(0s)            → co_await post(ex, use_awaitable)
//   loop.call_soon(f)             → post(io, f)
//   co_await sleep(1s)            → steady_timer(ex, 1s).async_wait(use_awaitable)
//   sleepers: awaiting 1M handles → co_spawn(io, sleeper(), handler) ×1M; io.run() returns once
//                                   every sleeper is done
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "support.hpp"

using namespace std::chrono_literals;
using bench::Region;
using bench::scaled;

namespace {

/// Runs the coroutine to completion on io (a single-threaded io_context, reused across runs).
void run_on(asio::io_context& io, asio::awaitable<void> main) {
    asio::co_spawn(io, std::move(main), [](std::exception_ptr e) {
        if (e) {
            std::rethrow_exception(e);
        }
    });
    io.restart();
    io.run();
}

// ---- spawn_complete, spawn_complete_batch ----

asio::awaitable<void> trivial() {
    co_return;
}

asio::awaitable<void> spawn_one_at_a_time(std::uint64_t n) {
    auto ex = co_await asio::this_coro::executor;
    for (std::uint64_t i = 0; i < n; ++i) {
        co_await asio::co_spawn(ex, trivial(), asio::use_awaitable);
    }
}

asio::awaitable<void> spawn_batches(std::uint64_t batches, std::size_t batch) {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer all_done(ex);
    for (std::uint64_t b = 0; b < batches; ++b) {
        std::size_t left = batch;
        all_done.expires_at(asio::steady_timer::time_point::max());
        for (std::size_t i = 0; i < batch; ++i) {
            asio::co_spawn(ex, trivial(), [&](std::exception_ptr) {
                if (--left == 0) {
                    all_done.cancel();
                }
            });
        }
        asio::error_code ec;
        co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
}

void bench_spawn_complete() {
    const std::uint64_t n = scaled(200'000);
    asio::io_context io(1);
    run_on(io, spawn_one_at_a_time(n / 10));
    Region r("spawn_complete", n);
    const int laps = bench::lap_count();
    for (int lap = 0; lap < laps; ++lap) {
        r.lap_start();
        run_on(io, spawn_one_at_a_time(n / laps));
        r.lap_end(n / laps);
    }
    r.report_ns_per_op();
}

void bench_spawn_complete_batch() {
    constexpr std::size_t batch = 1000;
    const std::uint64_t batches = scaled(200);
    asio::io_context io(1);
    run_on(io, spawn_batches(batches / 10, batch));
    Region r("spawn_complete_batch", batches * batch);
    const int laps = bench::lap_count();
    for (int lap = 0; lap < laps; ++lap) {
        r.lap_start();
        run_on(io, spawn_batches(batches / laps, batch));
        r.lap_end(batches / laps * batch);
    }
    r.report_ns_per_op();
}

// ---- sleep0_switch ----

asio::awaitable<void> yielder(std::uint64_t n) {
    auto ex = co_await asio::this_coro::executor;
    for (std::uint64_t i = 0; i < n; ++i) {
        co_await asio::post(ex, asio::use_awaitable);
    }
}

void ping_pong(asio::io_context& io, std::uint64_t n) {
    asio::co_spawn(io, yielder(n), asio::detached);
    asio::co_spawn(io, yielder(n), asio::detached);
    io.restart();
    io.run();
}

void bench_sleep0_switch() {
    const std::uint64_t n = scaled(200'000);
    asio::io_context io(1);
    ping_pong(io, n / 10);
    Region r("sleep0_switch", 2 * n);
    const int laps = bench::lap_count();
    for (int lap = 0; lap < laps; ++lap) {
        r.lap_start();
        ping_pong(io, n / laps);
        r.lap_end(2 * n / laps);
    }
    r.report_ns_per_op();
}

// ---- call_soon, call_soon_batch ----

struct Chain {
    asio::io_context* io;
    std::uint64_t left;
};

void chain_step(Chain* c) {
    if (--c->left == 0) {
        return; // io.run() returns: nothing else is queued
    }
    asio::post(*c->io, [c] { chain_step(c); });
}

void run_chain(asio::io_context& io, std::uint64_t n) {
    Chain c{&io, n};
    asio::post(io, [&c] { chain_step(&c); });
    io.restart();
    io.run();
}

void bench_call_soon() {
    const std::uint64_t n = scaled(2'000'000);
    asio::io_context io(1);
    run_chain(io, n / 10);
    Region r("call_soon", n);
    const int laps = bench::lap_count();
    for (int lap = 0; lap < laps; ++lap) {
        r.lap_start();
        run_chain(io, n / laps);
        r.lap_end(n / laps);
    }
    r.report_ns_per_op();
}

asio::awaitable<void>
call_soon_batches(std::uint64_t batches, std::size_t batch, std::uint64_t& ran) {
    auto ex = co_await asio::this_coro::executor;
    for (std::uint64_t b = 0; b < batches; ++b) {
        for (std::size_t i = 0; i < batch; ++i) {
            asio::post(ex, [&ran] { ++ran; });
        }
        co_await asio::post(ex, asio::use_awaitable); // runs after the batch: FIFO
    }
}

void bench_call_soon_batch() {
    constexpr std::size_t batch = 1000;
    const std::uint64_t batches = scaled(400);
    std::uint64_t ran = 0;
    asio::io_context io(1);
    run_on(io, call_soon_batches(batches / 10, batch, ran));
    Region r("call_soon_batch", batches * batch);
    const int laps = bench::lap_count();
    for (int lap = 0; lap < laps; ++lap) {
        r.lap_start();
        run_on(io, call_soon_batches(batches / laps, batch, ran));
        r.lap_end(batches / laps * batch);
    }
    r.report_ns_per_op();
    if (ran != (batches + batches / 10) * batch) {
        std::fprintf(stderr,
                     "call_soon_batch: only %llu callbacks ran\n",
                     static_cast<unsigned long long>(ran));
        std::exit(1);
    }
}

// ---- sleepers_1m ----

asio::awaitable<void> sleeper() {
    asio::steady_timer timer(co_await asio::this_coro::executor, 1s);
    co_await timer.async_wait(asio::use_awaitable);
}

void bench_sleepers_1m() {
    constexpr std::uint64_t n = 1'000'000;
    asio::io_context io(1);
    std::uint64_t done = 0;
    double cpu0 = bench::cpu_seconds();
    Region r("sleepers_1m", n);
    for (std::uint64_t i = 0; i < n; ++i) {
        asio::co_spawn(io, sleeper(), [&done](std::exception_ptr) { ++done; });
    }
    io.run();
    double ns = r.stop();
    if (done != n) {
        std::fprintf(stderr,
                     "sleepers_1m: only %llu sleepers finished\n",
                     static_cast<unsigned long long>(done));
        std::exit(1);
    }
    double cpu = bench::cpu_seconds() - cpu0;
    std::printf("BENCH sleepers_1m_wall %.3f s\n", ns / 1e9);
    std::printf("BENCH sleepers_1m_cpu %.3f s\n", cpu);
    std::printf("BENCH sleepers_1m_peak_rss %.1f MiB\n", bench::peak_rss_mib());
}

// ---- driver ----

const bench::Case cases[] = {
        {"spawn_complete", bench_spawn_complete},
        {"spawn_complete_batch", bench_spawn_complete_batch},
        {"sleep0_switch", bench_sleep0_switch},
        {"call_soon", bench_call_soon},
        {"call_soon_batch", bench_call_soon_batch},
        {"sleepers_1m", bench_sleepers_1m},
};

} // namespace

int main(int argc, char** argv) {
    return bench::main("bench_micro_asio", cases, argc, argv);
}
