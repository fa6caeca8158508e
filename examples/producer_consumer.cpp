// SPDX-License-Identifier: MIT
// Producers and consumers share a bounded Queue; join() waits until every job was processed.
//
// The asyncio equivalent:
//
//     async def producer(name, queue, n):
//         for i in range(n):
//             await queue.put(f"{name}-{i}")     # waits while the queue is full
//
//     async def consumer(name, queue, done):
//         while True:
//             job = await queue.get()
//             await asyncio.sleep(0.001)          # "process" the job
//             done.append(job)
//             queue.task_done()
//
//     async def main():
//         queue = asyncio.Queue(maxsize=4)
//         done = []
//         consumers = [asyncio.create_task(consumer(f"c{i}", queue, done)) for i in range(3)]
//         await asyncio.gather(producer("a", queue, 10), producer("b", queue, 10))
//         await queue.join()                      # every job taken and marked done
//         for c in consumers:
//             c.cancel()
//
//     asyncio.run(main())
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace std::chrono_literals;

static coring::Task<> producer(std::string name, coring::Queue<std::string>& queue, int n) {
    for (int i = 0; i < n; ++i) {
        std::string job = name + "-" + std::to_string(i);
        co_await queue.put(job); // waits while the queue is full
        std::printf("%s queued %s (%zu in queue)\n", name.c_str(), job.c_str(), queue.qsize());
    }
}

static coring::Task<>
consumer(std::string name, coring::Queue<std::string>& queue, std::vector<std::string>& done) {
    for (;;) {
        std::string job = co_await queue.get();
        co_await coring::sleep(1ms); // "process" the job
        std::printf("  %s processed %s\n", name.c_str(), job.c_str());
        done.push_back(job);
        queue.task_done();
    }
}

static coring::Task<int> amain() {
    coring::Queue<std::string> queue(4);
    std::vector<std::string> done;
    std::vector<coring::TaskHandle<>> consumers;
    for (int i = 0; i < 3; ++i) {
        consumers.push_back(coring::create_task(consumer("c" + std::to_string(i), queue, done)));
    }
    auto a = coring::create_task(producer("a", queue, 10));
    auto b = coring::create_task(producer("b", queue, 10));
    co_await a;
    co_await b;
    co_await queue.join(); // every job was taken and marked done
    std::printf("all %zu jobs processed; stopping the consumers\n", done.size());
    for (auto& c : consumers) {
        c.cancel();
    }
    for (auto& c : consumers) {
        try {
            co_await c;
        } catch (const coring::CancelledError&) {
        }
    }
    co_return done.size() == 20 && queue.empty() ? 0 : 1;
}

int main() {
    return coring::run(amain());
}
