// SPDX-License-Identifier: MIT
// Periodic tasks: each runs every N ms, on a fixed schedule that does not drift, until it is
// cancelled.
//
// The asyncio equivalent:
//
//     async def every(name, interval, count):
//         loop = asyncio.get_running_loop()
//         next_at = loop.time()
//         try:
//             while True:
//                 count[name] += 1
//                 print(f"{name}: tick {count[name]}")
//                 next_at += interval
//                 await asyncio.sleep(max(0, next_at - loop.time()))
//         except asyncio.CancelledError:
//             print(f"{name}: cancelled after {count[name]} ticks")
//             raise
//
//     async def main():
//         fast = asyncio.create_task(every("fast", 0.1, count))
//         slow = asyncio.create_task(every("slow", 0.25, count))
//         await asyncio.sleep(1.0)
//         fast.cancel(); slow.cancel()
//         await asyncio.gather(fast, slow, return_exceptions=True)
//
//     asyncio.run(main())
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;

static coring::Task<> every(std::string name, std::chrono::milliseconds interval, int& ticks) {
    coring::EventLoop& loop = coring::get_running_loop();
    auto start = loop.time();
    auto next_at = start;
    try {
        for (;;) {
            ++ticks;
            auto late =
                    std::chrono::duration_cast<std::chrono::microseconds>(loop.time() - next_at);
            std::printf(
                    "%-4s tick %2d at %4lld ms (%lld us late)\n",
                    name.c_str(),
                    ticks,
                    static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                   loop.time() - start)
                                                   .count()),
                    static_cast<long long>(late.count()));
            // Sleep until the next slot, not for a whole interval: the time spent printing
            // and waking up does not accumulate.
            next_at += interval;
            co_await coring::sleep(next_at - loop.time());
        }
    } catch (const coring::CancelledError&) {
        std::printf("%-4s cancelled after %d ticks\n", name.c_str(), ticks);
        throw;
    }
}

static coring::Task<int> amain() {
    int fast_ticks = 0;
    int slow_ticks = 0;
    auto fast = coring::create_task(every("fast", 100ms, fast_ticks), "fast");
    auto slow = coring::create_task(every("slow", 250ms, slow_ticks), "slow");
    co_await coring::sleep(1s);
    fast.cancel();
    slow.cancel();
    for (auto* t : {&fast, &slow}) {
        try {
            co_await *t;
        } catch (const coring::CancelledError&) {
            // expected: we cancelled it
        }
    }
    std::printf("fast ran %d times, slow %d times in 1 s\n", fast_ticks, slow_ticks);
    // 0, 100, ..., 900 ms and 0, 250, 500, 750 ms (1000 ms races with the cancellation).
    bool ok = fast_ticks >= 8 && fast_ticks <= 11 && slow_ticks >= 3 && slow_ticks <= 5;
    co_return ok ? 0 : 1;
}

int main() {
    return coring::run(amain());
}
