// SPDX-License-Identifier: MIT
// A Semaphore lets at most three of ten "downloads" run at a time; the others wait their turn.
//
// The asyncio equivalent:
//
//     async def download(url, slots, stats):
//         async with slots:                       # at most 3 inside at once
//             stats["running"] += 1
//             stats["peak"] = max(stats["peak"], stats["running"])
//             print(f"start {url} ({stats['running']} running)")
//             await asyncio.sleep(0.01 * (1 + len(url) % 3))
//             stats["running"] -= 1
//             print(f"done  {url}")
//             return len(url)
//
//     async def main():
//         slots = asyncio.Semaphore(3)
//         stats = {"running": 0, "peak": 0}
//         urls = [f"https://example.com/file{i}" for i in range(10)]
//         sizes = await asyncio.gather(*(download(u, slots, stats) for u in urls))
//         print(f"peak concurrency {stats['peak']}, {sum(sizes)} bytes")
//
//     asyncio.run(main())
#include <coring/coring.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

using namespace std::chrono_literals;

struct Stats {
    int running = 0;
    int peak = 0;
};

static coring::Task<std::size_t> download(std::string url, coring::Semaphore& slots, Stats& stats) {
    auto slot = co_await slots.scoped_acquire(); // async with slots: (released at scope exit)
    stats.peak = std::max(stats.peak, ++stats.running);
    std::printf("start %s (%d running)\n", url.c_str(), stats.running);
    co_await coring::sleep(10ms * static_cast<int>(1 + url.size() % 3)); // the "transfer"
    --stats.running;
    std::printf("done  %s\n", url.c_str());
    co_return url.size();
}

static coring::Task<int> amain() {
    coring::Semaphore slots(3);
    Stats stats;
    std::vector<coring::TaskHandle<std::size_t>> downloads;
    for (int i = 0; i < 10; ++i) {
        std::string url = "https://example.com/file" + std::to_string(i);
        downloads.push_back(coring::create_task(download(url, slots, stats)));
    }
    std::size_t total = 0;
    for (auto& d : downloads) {
        total += co_await d;
    }
    std::printf("peak concurrency %d, %zu bytes\n", stats.peak, total);
    co_return stats.peak == 3 && stats.running == 0 ? 0 : 1;
}

int main() {
    return coring::run(amain());
}
