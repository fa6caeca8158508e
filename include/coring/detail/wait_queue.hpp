// SPDX-License-Identifier: MIT
// WaitQueue: tasks waiting until someone else says so (a writer's drain, wait_closed, a reader
// waiting for feed_data); asyncio uses a Future per waiter for the same job.
#pragma once

#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/queued_waiter.hpp>
#include <coring/detail/task_base.hpp>

#include <coroutine>
#include <string>

namespace coring::detail {

class WaitNode;

/// A FIFO of suspended tasks. The nodes live in the waiting coroutines' frames.
class WaitQueue {
public:
    bool empty() const noexcept { return list_.empty(); }

    /// Schedules every waiting task, in the order they started waiting.
    void notify_all() noexcept;

private:
    friend class WaitNode;

    IntrusiveList<WaitNode> list_;
};

/// Awaiter that suspends the task in a WaitQueue until notify_all() (the caller has checked
/// that it must wait). Cancelling the task takes it out of the queue and resumes it with
/// CancelledError.
class [[nodiscard]] WaitNode final : public ListHook<>, public QueuedWaiter {
public:
    /// what: shown in task dumps ("StreamWriter.drain").
    WaitNode(WaitQueue& queue, const char* what) noexcept : queue_(&queue), what_(what) {}

    WaitNode(WaitNode&& other) noexcept : queue_(other.queue_), what_(other.what_) {}

    bool await_ready() const noexcept { return false; }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        task_ = task_of(h);
        queue_->list_.push_back(*this);
        suspend_here(h);
    }

    void await_resume() { throw_if_cancelled(); }

    bool cancel(const std::string&) noexcept override {
        return cancel_waiting([this]() noexcept { unlink(); });
    }

    void describe(std::string& out) const override { out += what_; }

private:
    friend class WaitQueue;

    WaitQueue* queue_;
    const char* what_;
};

inline void WaitQueue::notify_all() noexcept {
    while (WaitNode* n = list_.pop_front()) {
        n->state_ = WaitState::woken;
        n->task_->wake();
    }
}

} // namespace coring::detail
