// SPDX-License-Identifier: MIT
// Tests of LoopChannel (no asyncio equivalent): order, a full channel, close, cancellation.
// Catch2 v2 assertions are not thread-safe: loop threads record, the test thread checks.
// clang-format off
#include <coring/loop_channel.hpp> // first: it must compile on its own
// clang-format on

#include <coring/sleep.hpp>
#include <coring/wait.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coring::LoopChannel;
using coring::LoopGroup;
using coring::Task;

TEST_CASE("LoopChannel: 20,000 items cross loops in order through 4 slots, then close",
          "[group][threads]") {
    constexpr int items = 20000;
    LoopGroup group({.loops = 2});
    LoopChannel<std::string> ch(group, 0, 1, 4);
    std::atomic<int> received{0};
    std::atomic<bool> in_order{true};
    std::atomic<bool> ended{false};
    group.run([&](std::size_t i) -> Task<> {
        if (i == 0) {
            for (int k = 0; k < items; ++k) {
                co_await ch.send(std::to_string(k));
            }
            ch.close();
            co_return;
        }
        for (;;) {
            std::optional<std::string> v = co_await ch.receive();
            if (!v) {
                ended.store(true);
                break;
            }
            if (*v != std::to_string(received.load())) {
                in_order.store(false);
            }
            received.fetch_add(1);
        }
    });
    CHECK(received.load() == items);
    CHECK(in_order.load());
    CHECK(ended.load());
}

TEST_CASE("LoopChannel: a full channel makes send wait until the consumer takes an item",
          "[group][threads]") {
    LoopGroup group({.loops = 2});
    LoopChannel<int> ch(group, 0, 1, 2);
    std::atomic<int> sent{0};
    std::atomic<int> sent_when_consumer_looked{-1};
    std::atomic<std::size_t> size_when_full{0};
    std::vector<int> got;
    group.run([&](std::size_t i) -> Task<> {
        if (i == 0) {
            for (int k = 1; k <= 3; ++k) {
                co_await ch.send(k);
                sent.fetch_add(1);
                if (k == 2) {
                    size_when_full.store(ch.size());
                }
            }
            ch.close();
            co_return;
        }
        for (;;) { // wait until the producer is blocked on the third item
            if (sent.load() == 2) {
                break;
            }
            co_await coring::sleep(1ms);
        }
        co_await coring::sleep(20ms);
        sent_when_consumer_looked.store(sent.load());
        for (;;) {
            std::optional<int> v = co_await ch.receive();
            if (!v) {
                break;
            }
            got.push_back(*v);
        }
    });
    CHECK(size_when_full.load() == 2);
    CHECK(sent_when_consumer_looked.load() == 2);
    CHECK(sent.load() == 3);
    CHECK(got == std::vector<int>{1, 2, 3});
}

TEST_CASE("LoopChannel: send after close throws, a cancelled receive takes nothing",
          "[group][threads]") {
    LoopGroup group({.loops = 2});
    LoopChannel<int> ch(group, 0, 1, 8);
    std::atomic<bool> timed_out{false};
    std::atomic<bool> send_after_close_threw{false};
    std::atomic<bool> consumer_ready{false};
    std::vector<int> got;
    group.run([&](std::size_t i) -> Task<> {
        if (i == 0) {
            for (;;) {
                if (consumer_ready.load()) {
                    break;
                }
                co_await coring::sleep(1ms);
            }
            co_await ch.send(5);
            ch.close();
            try {
                co_await ch.send(6);
            } catch (const coring::RuntimeError&) {
                send_after_close_threw.store(true);
            }
            co_return;
        }
        try {
            auto r = ch.receive();
            static_cast<void>(co_await coring::wait_for(std::move(r), 10ms));
        } catch (const coring::TimeoutError&) {
            timed_out.store(true);
        }
        consumer_ready.store(true);
        for (;;) {
            std::optional<int> v = co_await ch.receive();
            if (!v) {
                break;
            }
            got.push_back(*v);
        }
    });
    CHECK(timed_out.load());
    CHECK(send_after_close_threw.load());
    CHECK(got == std::vector<int>{5});
    CHECK_THROWS_AS(LoopChannel<int>(group, 0, 0, 4), coring::ValueError);
    CHECK_THROWS_AS(LoopChannel<int>(group, 0, 1, 0), coring::ValueError);
}
