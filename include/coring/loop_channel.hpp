// SPDX-License-Identifier: MIT
// LoopChannel: a bounded single-producer/single-consumer channel between two loops of a
// LoopGroup (asyncio has none; the nearest is an asyncio.Queue fed by call_soon_threadsafe).
#pragma once

#include <coring/errors.hpp>
#include <coring/future.hpp>
#include <coring/loop_group.hpp>
#include <coring/task.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace coring {

/// A bounded channel from one loop of a group (the producer, the only one that sends) to
/// another (the consumer, the only one that receives). The items travel through a lock-free
/// ring; a side that has to wait (full, empty) is woken by the other through its loop's
/// call_soon_threadsafe, which is paid only when someone actually waits.
///
///     coring::LoopChannel<int> ch(group, 0, 1, 64);   // loop 0 -> loop 1
///     co_await ch.send(42);                            // on loop 0
///     std::optional<int> v = co_await ch.receive();     // on loop 1; nullopt once closed
///
/// A consumer whose loop finishes leaves a producer waiting for room waiting until cancelled.
/// Thread safety: send() and close() on the producer loop only, receive() on the consumer loop
/// only. The channel must outlive the group's run(): a wake-up may still be queued on a loop
/// after the last send or receive.
template <class T>
class LoopChannel {
public:
    /// Throws: ValueError when capacity is 0 or producer == consumer.
    LoopChannel(LoopGroup& group, std::size_t producer, std::size_t consumer, std::size_t capacity)
        : group_(group), producer_(producer), consumer_(consumer), slots_(capacity + 1) {
        if (capacity == 0 || producer == consumer) {
            throw ValueError("LoopChannel: capacity must be > 0 and the loops different");
        }
    }

    LoopChannel(const LoopChannel&) = delete;
    LoopChannel& operator=(const LoopChannel&) = delete;

    /// Appends v, waiting while the channel is full.
    /// Throws: RuntimeError("LoopChannel is closed") after close(); RuntimeError when the
    /// consumer's loop is gone while waiting for room.
    /// Cancellation: v is not sent.
    [[nodiscard]] Task<> send(T v) {
        for (;;) {
            if (closed_.load(std::memory_order_acquire)) {
                throw RuntimeError("LoopChannel is closed");
            }
            std::size_t tail = tail_.load(std::memory_order_relaxed);
            std::size_t next = (tail + 1) % slots_.size();
            if (next != head_.load(std::memory_order_acquire)) {
                slots_[tail].emplace(std::move(v));
                tail_.store(next, std::memory_order_seq_cst);
                wake(consumer_waiting_, consumer_, &LoopChannel::consumer_waiter_);
                co_return;
            }
            // Full: announce the wait, look again (the consumer may have made room between),
            // then sleep until the consumer wakes us.
            producer_waiting_.store(true, std::memory_order_seq_cst);
            if (next != head_.load(std::memory_order_seq_cst)) {
                producer_waiting_.store(false, std::memory_order_relaxed);
                continue;
            }
            Future<> room;
            WaiterScope scope(producer_waiter_, room);
            co_await room;
        }
    }

    /// The next item, waiting while the channel is empty; nullopt once the channel is closed
    /// and drained.
    /// Cancellation: no item is taken.
    [[nodiscard]] Task<std::optional<T>> receive() {
        for (;;) {
            std::size_t head = head_.load(std::memory_order_relaxed);
            if (head != tail_.load(std::memory_order_acquire)) {
                std::optional<T> item = std::move(slots_[head]);
                slots_[head].reset();
                head_.store((head + 1) % slots_.size(), std::memory_order_seq_cst);
                wake(producer_waiting_, producer_, &LoopChannel::producer_waiter_);
                co_return item;
            }
            if (closed_.load(std::memory_order_acquire)) {
                // Items sent before close() are visible: close() came after them in program
                // order, so look once more.
                if (head == tail_.load(std::memory_order_acquire)) {
                    co_return std::nullopt;
                }
                continue;
            }
            consumer_waiting_.store(true, std::memory_order_seq_cst);
            if (head != tail_.load(std::memory_order_seq_cst) ||
                closed_.load(std::memory_order_seq_cst)) {
                consumer_waiting_.store(false, std::memory_order_relaxed);
                continue;
            }
            Future<> ready;
            WaiterScope scope(consumer_waiter_, ready);
            co_await ready;
        }
    }

    /// Producer side: no more items; the consumer drains what was sent, then gets nullopt.
    /// Idempotent.
    void close() {
        closed_.store(true, std::memory_order_seq_cst);
        wake(consumer_waiting_, consumer_, &LoopChannel::consumer_waiter_);
    }

    /// Items in the channel now (a snapshot).
    std::size_t size() const noexcept {
        std::size_t h = head_.load(std::memory_order_acquire);
        std::size_t t = tail_.load(std::memory_order_acquire);
        return (t + slots_.size() - h) % slots_.size();
    }

private:
    // Sets a waiter pointer (touched on its own loop only) for the duration of one wait.
    struct WaiterScope {
        Future<>*& slot;

        WaiterScope(Future<>*& s, Future<>& f) noexcept : slot(s) { slot = &f; }

        WaiterScope(const WaiterScope&) = delete;
        WaiterScope& operator=(const WaiterScope&) = delete;

        ~WaiterScope() { slot = nullptr; }
    };

    // Wakes the other side if it announced a wait: resolves its future on its own loop.
    void wake(std::atomic<bool>& waiting, std::size_t loop, Future<>* LoopChannel::*waiter) {
        if (!waiting.exchange(false, std::memory_order_seq_cst)) {
            return;
        }
        try {
            group_.post(loop, [this, waiter] {
                Future<>* f = this->*waiter;
                if (f != nullptr && !f->done()) {
                    f->set_result();
                }
            });
        } catch (const RuntimeError&) {
            // that loop has finished: nobody waits there any more
        }
    }

    LoopGroup& group_;
    std::size_t producer_;
    std::size_t consumer_;
    std::vector<std::optional<T>> slots_; // one slot stays empty: full is tail + 1 == head
    std::atomic<std::size_t> head_{0};    // written by the consumer
    std::atomic<std::size_t> tail_{0};    // written by the producer
    std::atomic<bool> closed_{false};
    std::atomic<bool> producer_waiting_{false};
    std::atomic<bool> consumer_waiting_{false};
    Future<>* producer_waiter_ = nullptr; // producer loop only
    Future<>* consumer_waiter_ = nullptr; // consumer loop only
};

} // namespace coring
