// SPDX-License-Identifier: MIT
// The loop's ready queue: a growable ring buffer of (function, argument) pairs (asyncio's _ready).
#pragma once

#include <cstddef>
#include <memory>

namespace coring::detail {

/// One runnable entry: a task step, a fired done-callback, or a call_soon handle. run(arg, false)
/// runs it; run(arg, true) only releases what it holds (the loop is closing).
struct ReadyEntry {
    void (*run)(void* arg, bool discard) noexcept;
    void* arg;
};

/// FIFO of ReadyEntry. Grows by doubling and never shrinks, so steady state allocates nothing.
class ReadyQueue {
public:
    ReadyQueue()
        : buf_(std::make_unique<ReadyEntry[]>(initial_capacity)), mask_(initial_capacity - 1) {}

    bool empty() const noexcept { return head_ == tail_; }

    std::size_t size() const noexcept { return tail_ - head_; }

    void push(ReadyEntry e) {
        if (tail_ - head_ == mask_ + 1) {
            grow();
        }
        buf_[tail_++ & mask_] = e;
    }

    /// Precondition: !empty().
    ReadyEntry pop() noexcept { return buf_[head_++ & mask_]; }

    void clear() noexcept { head_ = tail_ = 0; }

private:
    static constexpr std::size_t initial_capacity = 256;

    void grow() {
        std::size_t cap = mask_ + 1;
        auto bigger = std::make_unique<ReadyEntry[]>(cap * 2);
        for (std::size_t i = 0; i < cap; ++i) {
            bigger[i] = buf_[(head_ + i) & mask_];
        }
        buf_ = std::move(bigger);
        head_ = 0;
        tail_ = cap;
        mask_ = cap * 2 - 1;
    }

    std::unique_ptr<ReadyEntry[]> buf_;
    std::size_t mask_;
    std::size_t head_ = 0; // index of the next entry to run (wraps through mask_)
    std::size_t tail_ = 0; // index one past the last entry
};

} // namespace coring::detail
