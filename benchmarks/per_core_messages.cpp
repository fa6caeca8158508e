// SPDX-License-Identifier: MIT
// Cross-loop messages (issue 16): one-way latency and throughput of a post from one loop to
// another carried by IORING_OP_MSG_RING (a CQE posted ring to ring) vs the eventfd path of
// call_soon_threadsafe (LoopGroupOptions::msg_ring = false) vs a mutex + condition-variable
// queue between two plain threads, each the median of RUNS runs in the same process; then
// LoopGroup::run_on round trips (one at a time and 64 in flight) and LoopChannel.
// No asyncio equivalent (loop.call_soon_threadsafe and asyncio.run_coroutine_threadsafe are the
// nearest).
//
// Usage: bench_per_core_messages [CALLS] [RUNS]   (default 20000, 5)
// Output: `BENCH <metric> <value> <unit>` lines.
#include <coring/loop_channel.hpp>
#include <coring/loop_group.hpp>
#include <coring/sleep.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
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

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
            .count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// One-way latency: loop 0 posts a message stamped with its send time to loop 1 (asleep in
// io_uring_enter, awaiting a future), which records arrival - send and posts an acknowledgement
// back; the next message leaves once the ack came, so no message queues behind another.
// Returns the median one-way time in ns.
double post_latency(bool msg_ring, int messages) {
    std::vector<double> one_way; // loop 1 only while the group runs
    one_way.reserve(static_cast<std::size_t>(messages));
    std::atomic<coring::Future<>*> stop_ptr{nullptr};
    coring::LoopGroup group({.loops = 2, .handle_signals = false, .msg_ring = msg_ring});
    group.run([&](std::size_t i) -> coring::Task<> {
        if (i == 1) {
            coring::Future<> stop;
            stop_ptr.store(&stop);
            co_await stop;
            co_return;
        }
        while (stop_ptr.load() == nullptr) {
            co_await coring::sleep(std::chrono::milliseconds(1));
        }
        for (int k = 0; k < messages; ++k) {
            coring::Future<> ack;
            coring::Future<>* ackp = &ack;
            std::int64_t t0 = now_ns();
            group.post(1, [&group, &one_way, t0, ackp] {
                one_way.push_back(static_cast<double>(now_ns() - t0));
                group.post(0, [ackp] { ackp->set_result(); });
            });
            co_await ack;
        }
        coring::Future<>* stop = stop_ptr.load();
        group.post(1, [stop] { stop->set_result(); });
    });
    return median(one_way);
}

// Throughput: loop 0 posts `messages` callbacks to loop 1 as fast as it can (yielding to its
// loop every 256, which submits them), loop 1 runs them; messages per second from the first
// send to the last arrival.
double post_throughput(bool msg_ring, int messages) {
    std::int64_t t_start = 0;
    std::int64_t t_end = 0; // loop 1
    int count = 0;          // loop 1
    std::atomic<coring::Future<>*> stop_ptr{nullptr};
    coring::LoopGroup group({.loops = 2, .handle_signals = false, .msg_ring = msg_ring});
    group.run([&](std::size_t i) -> coring::Task<> {
        if (i == 1) {
            coring::Future<> stop;
            stop_ptr.store(&stop);
            co_await stop;
            co_return;
        }
        while (stop_ptr.load() == nullptr) {
            co_await coring::sleep(std::chrono::milliseconds(1));
        }
        coring::Future<>* stop = stop_ptr.load();
        t_start = now_ns();
        for (int k = 0; k < messages; ++k) {
            group.post(1, [&count, &t_end, messages, stop] {
                if (++count == messages) {
                    t_end = now_ns();
                    stop->set_result();
                }
            });
            if (k % 256 == 255) {
                co_await coring::sleep(std::chrono::milliseconds(0));
            }
        }
    });
    return messages / (static_cast<double>(t_end - t_start) / 1e9);
}

// The same two measurements over a mutex + condition-variable queue between two threads.
double mutex_queue_latency(int messages) {
    std::mutex m;
    std::condition_variable cv;
    std::deque<std::int64_t> q;
    bool ack = false;
    std::vector<double> one_way;
    one_way.reserve(static_cast<std::size_t>(messages));
    std::thread consumer([&] {
        for (int k = 0; k < messages; ++k) {
            std::unique_lock lock(m);
            cv.wait(lock, [&] { return !q.empty(); });
            std::int64_t t0 = q.front();
            q.pop_front();
            one_way.push_back(static_cast<double>(now_ns() - t0));
            ack = true;
            cv.notify_all();
        }
    });
    for (int k = 0; k < messages; ++k) {
        std::unique_lock lock(m);
        ack = false;
        q.push_back(now_ns());
        cv.notify_all();
        cv.wait(lock, [&] { return ack; });
    }
    consumer.join();
    return median(one_way);
}

double mutex_queue_throughput(int messages) {
    std::mutex m;
    std::condition_variable cv;
    std::deque<int> q;
    std::int64_t t_end = 0;
    std::thread consumer([&] {
        int count = 0;
        std::deque<int> batch;
        while (count < messages) {
            {
                std::unique_lock lock(m);
                cv.wait(lock, [&] { return !q.empty(); });
                batch.swap(q);
            }
            count += static_cast<int>(batch.size());
            batch.clear();
        }
        t_end = now_ns();
    });
    std::int64_t t_start = now_ns();
    for (int k = 0; k < messages; ++k) {
        std::lock_guard lock(m);
        q.push_back(k);
        cv.notify_one();
    }
    consumer.join();
    return messages / (static_cast<double>(t_end - t_start) / 1e9);
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
    int runs = argc > 2 ? std::atoi(argv[2]) : 5;
    if (calls <= 0 || runs <= 0) {
        std::fprintf(stderr, "usage: bench_per_core_messages [CALLS] [RUNS]\n");
        return 2;
    }
    // Interleaved, so that the load of the machine (other processes) hits every variant alike.
    std::vector<double> lat_ring, lat_efd, lat_mcv, tp_ring, tp_efd, tp_mcv;
    for (int r = 0; r < runs; ++r) {
        lat_ring.push_back(post_latency(true, calls / 4));
        lat_efd.push_back(post_latency(false, calls / 4));
        lat_mcv.push_back(mutex_queue_latency(calls / 4));
        tp_ring.push_back(post_throughput(true, calls * 10));
        tp_efd.push_back(post_throughput(false, calls * 10));
        tp_mcv.push_back(mutex_queue_throughput(calls * 10));
    }
    double lr = median(lat_ring), le = median(lat_efd), lm = median(lat_mcv);
    double tr = median(tp_ring), te = median(tp_efd), tm = median(tp_mcv);
    std::printf("BENCH one_way_msg_ring %.0f ns (median of %d runs)\n", lr, runs);
    std::printf("BENCH one_way_eventfd_call_soon_threadsafe %.0f ns\n", le);
    std::printf("BENCH one_way_mutex_cv_queue %.0f ns\n", lm);
    std::printf("BENCH throughput_msg_ring %.0f msgs/s\n", tr);
    std::printf("BENCH throughput_eventfd_call_soon_threadsafe %.0f msgs/s\n", te);
    std::printf("BENCH throughput_mutex_cv_queue %.0f msgs/s\n", tm);
    std::printf("BENCH ratio_latency_msg_ring_over_eventfd %.2f x (target <= 0.5)\n", lr / le);
    std::printf("BENCH ratio_throughput_msg_ring_over_eventfd %.2f x (target >= 2)\n", tr / te);
    std::printf("BENCH ratio_latency_msg_ring_over_mutex_cv %.2f x\n", lr / lm);
    std::printf("BENCH ratio_throughput_msg_ring_over_mutex_cv %.2f x\n", tr / tm);
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
