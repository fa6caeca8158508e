// SPDX-License-Identifier: MIT
// Three workers with different delays run concurrently; total time is the slowest, not the sum.
//
// The asyncio equivalent:
//
//     async def worker(name, delay):
//         print(f"{name} started")
//         await asyncio.sleep(delay)
//         print(f"{name} finished after {delay}s")
//         return delay
//
//     async def main():
//         tasks = [asyncio.create_task(worker(n, d)) for n, d in
//                  (("A", 0.3), ("B", 0.1), ("C", 0.2))]
//         results = [await t for t in tasks]
//
//     asyncio.run(main())
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace std::chrono_literals;

static coring::Task<std::chrono::milliseconds> worker(std::string name,
                                                      std::chrono::milliseconds delay) {
    std::printf("%s started (will take %lld ms)\n",
                name.c_str(),
                static_cast<long long>(delay.count()));
    co_await coring::sleep(delay);
    std::printf("%s finished\n", name.c_str());
    co_return delay;
}

static coring::Task<int> amain() {
    auto start = coring::get_running_loop().time();
    std::vector<coring::TaskHandle<std::chrono::milliseconds>> tasks;
    tasks.push_back(coring::create_task(worker("A", 300ms), "worker-A"));
    tasks.push_back(coring::create_task(worker("B", 100ms), "worker-B"));
    tasks.push_back(coring::create_task(worker("C", 200ms), "worker-C"));

    std::chrono::milliseconds sum{0};
    for (auto& t : tasks) {
        sum += co_await t;
    }
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
            coring::get_running_loop().time() - start);
    std::printf("all done in %lld ms (sum of delays: %lld ms)\n",
                static_cast<long long>(took.count()),
                static_cast<long long>(sum.count()));
    // Concurrency means the total is close to the slowest worker, well under the sum.
    co_return took < sum ? 0 : 1;
}

int main() {
    return coring::run(amain());
}
