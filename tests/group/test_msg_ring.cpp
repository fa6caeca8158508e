// SPDX-License-Identifier: MIT
// Tests of cross-loop posts carried by IORING_OP_MSG_RING (no asyncio equivalent; asyncio's
// call_soon_threadsafe is the eventfd path): the ring path is used, its fallbacks (turned off,
// refused by the kernel), load from 8 loops plus plain threads, and loops closing with posts
// in flight. Catch2 v2 assertions are not thread-safe: loop threads record, the test thread
// checks.
#include <coring/event_loop.hpp>
#include <coring/future.hpp>
#include <coring/loop_channel.hpp>
#include <coring/loop_group.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>

#include <catch2/catch.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using coring::EventLoop;
using coring::LoopGroup;
using coring::Task;

namespace {

bool kernel_has_msg_ring() {
    EventLoop loop;
    return coring::detail::LoopAccess::ring(loop).supports(IORING_OP_MSG_RING);
}

struct Counters {
    std::atomic<std::uint64_t> sent{0};
    std::atomic<std::uint64_t> received{0};
    std::atomic<std::uint64_t> refused{0};
    std::atomic<bool> msg_ring_after{true};
    std::atomic<long> sum{0};
};

// Loop 0 calls loop 1 `calls` times; both record their loop's message counters at the end.
Task<> ping_main(LoopGroup& group, std::size_t i, int calls, Counters& c, std::atomic<int>& done) {
    EventLoop& loop = coring::get_running_loop();
    if (i == 0) {
        for (int k = 0; k < calls; ++k) {
            int v = co_await group.run_on(1, [k] { return k; });
            c.sum.fetch_add(v);
        }
        done.fetch_add(1);
    }
    while (done.load() == 0) {
        co_await coring::sleep(1ms);
    }
    c.sent.fetch_add(loop.messages_sent());
    c.received.fetch_add(loop.messages_received());
    c.refused.fetch_add(loop.messages_refused());
    if (!loop.msg_ring()) {
        c.msg_ring_after.store(false);
    }
}

} // namespace

TEST_CASE("MSG_RING: run_on between two loops posts CQEs ring to ring", "[group][threads]") {
    if (!kernel_has_msg_ring()) {
        WARN("the kernel has no IORING_OP_MSG_RING: skipped");
        return;
    }
    Counters c;
    std::atomic<int> done{0};
    LoopGroup group({.loops = 2});
    group.run([&](std::size_t i) { return ping_main(group, i, 200, c, done); });
    CHECK(c.sum.load() == 199 * 200 / 2);
    // Every call is a post there and a post back, each one CQE into the other ring.
    CHECK(c.sent.load() >= 400);
    CHECK(c.received.load() >= 400);
    CHECK(c.refused.load() == 0);
    CHECK(c.msg_ring_after.load());
}

TEST_CASE("MSG_RING: with msg_ring off the posts go through the eventfd", "[group][threads]") {
    Counters c;
    std::atomic<int> done{0};
    LoopGroup group({.loops = 2, .msg_ring = false});
    group.run([&](std::size_t i) { return ping_main(group, i, 200, c, done); });
    CHECK(c.sum.load() == 199 * 200 / 2);
    CHECK(c.sent.load() == 0);
    CHECK(c.received.load() == 0);
}

TEST_CASE("MSG_RING: a target the kernel refuses gets the post through its eventfd, and the "
          "sender stops using MSG_RING",
          "[group][threads]") {
    if (!kernel_has_msg_ring()) {
        WARN("the kernel has no IORING_OP_MSG_RING: skipped");
        return;
    }
    // The target announces an eventfd as its ring: the kernel answers -EBADFD, as it would for
    // a backend without io_uring.
    int not_a_ring = ::eventfd(0, EFD_CLOEXEC);
    REQUIRE(not_a_ring >= 0);
    Counters c;
    std::atomic<int> ran{0};
    std::atomic<int> stage{0};
    LoopGroup group({.loops = 2});
    group.run([&](std::size_t i) -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        if (i == 1) {
            coring::detail::LoopAccess::threadsafe_queue(loop)->open_messages(not_a_ring);
            stage.store(1);
            while (ran.load() < 3) {
                co_await coring::sleep(1ms);
            }
            co_return;
        }
        while (stage.load() == 0) {
            co_await coring::sleep(1ms);
        }
        for (int k = 0; k < 3; ++k) {
            group.post(1, [&ran] { ran.fetch_add(1); });
            co_await coring::sleep(1ms);
        }
        while (ran.load() < 3) {
            co_await coring::sleep(1ms);
        }
        c.sent.store(loop.messages_sent());
        c.refused.store(loop.messages_refused());
        c.msg_ring_after.store(loop.msg_ring());
    });
    ::close(not_a_ring);
    CHECK(ran.load() == 3);
    CHECK(c.sent.load() == 1); // the first post tried MSG_RING, was refused, fell back
    CHECK(c.refused.load() == 1);
    CHECK_FALSE(c.msg_ring_after.load());
}

TEST_CASE("MSG_RING: a loop blocked in io_uring_enter with nothing to do wakes on the CQE",
          "[group][threads]") {
    std::atomic<bool> waiting{false};
    std::atomic<bool> woke{false};
    std::atomic<std::uint64_t> received{0};
    std::shared_ptr<coring::Future<int>> box;
    LoopGroup group({.loops = 2});
    group.run([&](std::size_t i) -> Task<> {
        if (i == 1) {
            // No timer, no I/O but the loop's own: the loop sleeps in the kernel.
            coring::Future<int> f;
            box = std::make_shared<coring::Future<int>>(f);
            waiting.store(true);
            int v = co_await f;
            woke.store(v == 7);
            received.store(coring::get_running_loop().messages_received());
            co_return;
        }
        while (!waiting.load()) {
            co_await coring::sleep(1ms);
        }
        co_await coring::sleep(20ms); // loop 1 is asleep in io_uring_enter by now
        group.post(1, [&box] { box->set_result(7); });
    });
    box.reset();
    CHECK(woke.load());
    if (kernel_has_msg_ring()) {
        CHECK(received.load() >= 1);
    }
}

TEST_CASE("MSG_RING: 8 loops and 8 plain threads post to each other, nothing lost",
          "[group][threads]") {
    constexpr std::size_t loops = 8;
    constexpr int per_loop = 400;
    constexpr int per_thread = 400;
    std::array<std::atomic<long>, loops> ran{};
    std::atomic<std::size_t> finished{0};
    std::atomic<bool> started{false};
    std::atomic<std::size_t> running{0};
    std::atomic<std::uint64_t> sent_by_ring{0};
    LoopGroup group({.loops = loops});
    std::vector<std::thread> threads;
    group.run([&](std::size_t i) -> Task<> {
        if (i == 0) {
            // Plain threads: the eventfd path, mixed with the loops' ring-to-ring posts.
            for (int t = 0; t < 8; ++t) {
                threads.emplace_back([&group, &ran, t] {
                    for (int k = 0; k < per_thread; ++k) {
                        std::size_t target = static_cast<std::size_t>(t + k) % loops;
                        group.post(target, [&ran, target] { ran[target].fetch_add(1); });
                    }
                });
            }
            started.store(true);
        }
        // Every loop accepts ring-to-ring posts once it runs: wait for all of them.
        running.fetch_add(1);
        while (running.load() < loops) {
            co_await coring::sleep(1ms);
        }
        for (int k = 0; k < per_loop; ++k) {
            std::size_t target = (i + 1 + static_cast<std::size_t>(k) % (loops - 1)) % loops;
            group.post(target, [&ran, target] { ran[target].fetch_add(1); });
            if (k % 50 == 0) {
                co_await coring::sleep(0ms);
            }
        }
        sent_by_ring.fetch_add(coring::get_running_loop().messages_sent());
        finished.fetch_add(1);
        // Stay until every post has run somewhere, so none meets a finished loop.
        for (;;) {
            long total = 0;
            for (auto& r : ran) {
                total += r.load();
            }
            if (started.load() && total == static_cast<long>(loops * per_loop + 8 * per_thread)) {
                break;
            }
            co_await coring::sleep(1ms);
        }
    });
    for (auto& t : threads) {
        t.join();
    }
    long total = 0;
    for (auto& r : ran) {
        total += r.load();
    }
    CHECK(total == static_cast<long>(loops * per_loop + 8 * per_thread));
    if (kernel_has_msg_ring()) {
        CHECK(sent_by_ring.load() == loops * per_loop);
    }
}

namespace {

// Counts a post that ran, or was destroyed without running (refused by a closed loop).
struct Tracked {
    std::atomic<long>* ran;
    std::atomic<long>* dropped;
    bool armed = true;

    Tracked(std::atomic<long>* r, std::atomic<long>* d) noexcept : ran(r), dropped(d) {}

    Tracked(Tracked&& o) noexcept : ran(o.ran), dropped(o.dropped), armed(o.armed) {
        o.armed = false;
    }

    Tracked(const Tracked&) = delete;
    Tracked& operator=(const Tracked&) = delete;
    Tracked& operator=(Tracked&&) = delete;

    ~Tracked() {
        if (armed) {
            dropped->fetch_add(1);
        }
    }

    void operator()() {
        armed = false;
        ran->fetch_add(1);
    }
};

} // namespace

TEST_CASE("MSG_RING: a loop that closes with posts in flight runs or releases every one",
          "[group][threads]") {
    for (int round = 0; round < 5; ++round) {
        std::atomic<long> ran{0};
        std::atomic<long> dropped{0};
        std::atomic<long> refused{0};
        std::atomic<long> posted{0};
        std::atomic<bool> go{false};
        LoopGroup group({.loops = 3});
        group.run([&](std::size_t i) -> Task<> {
            if (i == 0) {
                // Loop 0 finishes as soon as the others start posting to it.
                while (!go.load()) {
                    co_await coring::sleep(0ms);
                }
                co_await coring::sleep(std::chrono::microseconds(200 * round));
                co_return;
            }
            go.store(true);
            for (int k = 0; k < 5'000'000; ++k) {
                try {
                    group.post(0, Tracked(&ran, &dropped));
                    posted.fetch_add(1);
                } catch (const coring::RuntimeError&) {
                    refused.fetch_add(1);
                    co_return;
                }
                if (k % 64 == 0) {
                    co_await coring::sleep(0ms);
                }
            }
        });
        // Every accepted post either ran on loop 0 or was released when it closed; a refused
        // one was released at once (and counted as dropped too).
        CHECK(ran.load() + dropped.load() == posted.load() + refused.load());
        CHECK(refused.load() >= 1);
    }
}

TEST_CASE("MSG_RING: LoopChannel wake-ups between loops go ring to ring", "[group][threads]") {
    constexpr int items = 5000;
    std::atomic<int> received{0};
    std::atomic<std::uint64_t> ring_posts{0};
    LoopGroup group({.loops = 2});
    coring::LoopChannel<int> ch(group, 0, 1, 2);
    group.run([&](std::size_t i) -> Task<> {
        if (i == 0) {
            for (int k = 0; k < items; ++k) {
                co_await ch.send(k);
            }
            ch.close();
        } else {
            for (;;) {
                std::optional<int> v = co_await ch.receive();
                if (!v) {
                    break;
                }
                received.fetch_add(1);
            }
        }
        ring_posts.fetch_add(coring::get_running_loop().messages_sent());
    });
    CHECK(received.load() == items);
    if (kernel_has_msg_ring()) {
        CHECK(ring_posts.load() > 0);
    }
}
