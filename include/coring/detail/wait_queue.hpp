// SPDX-License-Identifier: MIT
// WaitQueue: tasks waiting until someone else says so (a writer's drain, wait_closed, a reader
// waiting for feed_data); asyncio uses a Future per waiter for the same job.
#pragma once

#include <coring/detail/future_base.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/task_base.hpp>

#include <coroutine>
#include <string>
#include <type_traits>

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
class [[nodiscard]] WaitNode final : public ListHook<>, public Waiter {
public:
    /// what: shown in task dumps ("StreamWriter.drain").
    WaitNode(WaitQueue& queue, const char* what) noexcept : queue_(&queue), what_(what) {}

    WaitNode(WaitNode&& other) noexcept : queue_(other.queue_), what_(other.what_) {}

    bool await_ready() const noexcept { return false; }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        static_assert(std::is_base_of_v<TaskBase, Promise>,
                      "coring awaitables must be awaited from a coring::Task coroutine");
        task_ = h.promise().task_;
        queue_->list_.push_back(*this);
        task_->suspend_on(h, &h.promise(), *this);
    }

    void await_resume() {
        if (cancelled_) {
            task_->throw_cancelled();
        }
        task_->throw_if_cancel_pending();
    }

    bool cancel(const std::string&) noexcept override {
        if (!is_linked()) {
            return false; // notified already: the task is scheduled
        }
        unlink();
        cancelled_ = true;
        task_->wake();
        return true;
    }

    void describe(std::string& out) const override { out += what_; }

private:
    friend class WaitQueue;

    WaitQueue* queue_;
    const char* what_;
    TaskBase* task_ = nullptr;
    bool cancelled_ = false;
};

inline void WaitQueue::notify_all() noexcept {
    while (WaitNode* n = list_.pop_front()) {
        n->task_->wake();
    }
}

} // namespace coring::detail
