// SPDX-License-Identifier: MIT
// Cross-loop calls (issue 16): LoopGroup::run_on round trips between two loops (carried by each
// loop's call_soon_threadsafe eventfd wake-up), one at a time (latency) and 64 in flight
// (throughput), beside a mutex + condition-variable request/reply between two plain threads.
// No asyncio equivalent (asyncio.run_coroutine_threadsafe is the nearest).
//
// Usage: bench_per_core_messages [CALLS]   (default 20000)
// Output: `BENCH <metric> <value> <unit>` lines.
#include <coring/loop_channel.hpp>
#include <coring/loop_group.hpp>
#include <coring/sleep.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double ns_since(Clock::time_point t0) {
    return static_cast<double>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
}

coring::Task<> caller(coring::LoopGroup& group, int calls, int inflight, double& ns) {
    auto t0 = Clock::now();
    if (inflight == 1) {
        long sum = 0;
        for (int k = 0; k < calls; ++k) {
            sum += co_await group.run_on(1, [k] { return static_cast<long>(k); });
        }
        if (sum < 0) {
            std::abort();
        }
    } else {
        auto worker = [&group](int n) -> coring::Task<> {
            for (int k = 0; k < n; ++k) {
                co_await group.run_on(1, [k] { return k; });
            }
        };
        std::vector<coring::TaskHandle<>> workers;
        for (int w = 0; w < inflight; ++w) {
            workers.push_back(coring::create_task(worker(calls / inflight)));
        }
        for (auto& t : workers) {
            co_await t;
        }
    }
    ns = ns_since(t0);
}

double run_on_bench(int calls, int inflight) {
    double ns = 0;
    std::atomic<bool> done{false};
    coring::LoopGroup group({.loops = 2, .handle_signals = false});
    group.run([&](std::size_t i) -> coring::Task<> {
        if (i == 0) {
            co_await caller(group, calls, inflight, ns);
            done.store(true);
        } else {
            for (;;) { // serve calls until loop 0 is done
                if (done.load()) {
                    break;
                }
                co_await coring::sleep(std::chrono::milliseconds(1));
            }
        }
    });
    return ns;
}

double channel_bench(int items) {
    double ns = 0;
    coring::LoopGroup group({.loops = 2, .handle_signals = false});
    coring::LoopChannel<int> ch(group, 0, 1, 64);
    group.run([&](std::size_t i) -> coring::Task<> {
        if (i == 0) {
            auto t0 = Clock::now();
            for (int k = 0; k < items; ++k) {
                co_await ch.send(k);
            }
            ch.close();
            ns = ns_since(t0);
            co_return;
        }
        for (;;) {
            std::optional<int> v = co_await ch.receive();
            if (!v) {
                break;
            }
        }
    });
    return ns;
}

// The floor most programs start with: a request slot and a reply slot under one mutex.
double mutex_cv_bench(int calls) {
    std::mutex m;
    std::condition_variable cv;
    int request = -1;
    int reply = -1;
    bool stop = false;
    std::thread server([&] {
        std::unique_lock lock(m);
        for (;;) {
            cv.wait(lock, [&] { return request >= 0 || stop; });
            if (stop) {
                return;
            }
            reply = request;
            request = -1;
            cv.notify_all();
        }
    });
    auto t0 = Clock::now();
    for (int k = 0; k < calls; ++k) {
        std::unique_lock lock(m);
        request = k;
        cv.notify_all();
        cv.wait(lock, [&] { return reply == k; });
    }
    double ns = ns_since(t0);
    {
        std::lock_guard lock(m);
        stop = true;
    }
    cv.notify_all();
    server.join();
    return ns;
}

} // namespace

int main(int argc, char** argv) {
    int calls = argc > 1 ? std::atoi(argv[1]) : 20000;
    double lat = run_on_bench(calls, 1);
    std::printf("BENCH run_on_round_trip %.0f ns/op\n", lat / calls);
    double tput = run_on_bench(calls, 64);
    std::printf("BENCH run_on_64_in_flight %.0f ops/s\n", calls / (tput / 1e9));
    double chn = channel_bench(calls * 10);
    std::printf("BENCH loop_channel_64_slots %.0f items/s\n", calls * 10 / (chn / 1e9));
    double mcv = mutex_cv_bench(calls);
    std::printf("BENCH mutex_cv_round_trip %.0f ns/op\n", mcv / calls);
    return 0;
}
