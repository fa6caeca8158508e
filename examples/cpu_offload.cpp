// SPDX-License-Identifier: MIT
// CPU-bound work sent to the executor keeps the loop responsive. A ticker task wakes every
// 10 ms and measures how late it is (the loop's lag) while a 300 ms computation runs first on
// the loop itself, then in the default thread pool.
//
// The asyncio equivalent:
//
//     def crunch(n):                        # CPU-bound, holds no lock the loop needs
//         ...
//
//     async def ticker(lags):
//         loop = asyncio.get_running_loop()
//         while True:
//             start = loop.time()
//             await asyncio.sleep(0.01)
//             lags.append(loop.time() - start - 0.01)
//
//     async def main():
//         t = asyncio.create_task(ticker(lags))
//         crunch(n)                         # blocks the loop: the ticker stalls
//         await asyncio.to_thread(crunch, n)  # the loop keeps ticking
//         t.cancel()
//
//     asyncio.run(main())
#include <coring/coring.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Spins the CPU for about `how_long` doing arithmetic the compiler cannot drop.
static std::uint64_t crunch(std::chrono::milliseconds how_long) {
    std::uint64_t x = 88172645463325252ULL;
    auto end = Clock::now() + how_long;
    while (Clock::now() < end) {
        for (int i = 0; i < 10000; ++i) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
    }
    return x;
}

struct Lag {
    double max_ms = 0;
    int ticks = 0;

    void reset() { *this = Lag{}; }
};

static coring::Task<> ticker(Lag& lag) {
    coring::EventLoop& loop = coring::get_running_loop();
    for (;;) {
        auto start = loop.time();
        co_await coring::sleep(10ms);
        double late = std::chrono::duration<double, std::milli>(loop.time() - start - 10ms).count();
        lag.max_ms = std::max(lag.max_ms, late);
        ++lag.ticks;
    }
}

static coring::Task<int> amain() {
    Lag lag;
    auto tick = coring::create_task(ticker(lag), "ticker");
    co_await coring::sleep(30ms); // the ticker settles

    lag.reset();
    std::uint64_t a = crunch(300ms); // on the loop's thread: nothing else can run
    co_await coring::sleep(20ms);    // let the ticker report its one late wake-up
    std::printf("on the loop:     %2d ticks, worst lag %6.1f ms\n", lag.ticks, lag.max_ms);
    double blocked_lag = lag.max_ms;

    lag.reset();
    std::uint64_t b = co_await coring::to_thread(crunch, 300ms); // in the default pool
    std::printf("in the executor: %2d ticks, worst lag %6.1f ms\n", lag.ticks, lag.max_ms);
    double offloaded_lag = lag.max_ms;

    tick.cancel();
    try {
        co_await tick;
    } catch (const coring::CancelledError&) {
        // expected
    }
    std::printf("results %s; the executor kept the loop %s\n",
                a != 0 && b != 0 ? "computed" : "missing",
                offloaded_lag < blocked_lag / 4 ? "responsive" : "BLOCKED");
    co_return offloaded_lag < blocked_lag / 4 ? 0 : 1;
}

int main() {
    return coring::run(amain());
}
