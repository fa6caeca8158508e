// SPDX-License-Identifier: MIT
// QueuedWaiter: the base of every awaiter that sits in a queue until someone wakes it (a wait
// list, the timer heap, a process's waiters, the sync primitives' FIFOs); asyncio gives each such
// waiter a Future, whose cancel() and result() this base's two steps mirror.
#pragma once

#include <coring/detail/future_base.hpp>
#include <coring/detail/task_base.hpp>

#include <coroutine>
#include <cstdint>
#include <type_traits>

namespace coring::detail {

/// Where a waiter is in its wait. asyncio keeps the same facts in a future: pending (waiting),
/// done with a result (woken), cancelled. Waiters whose queue tells whether they are still in it
/// (is_linked, is_queued) use only ready and cancelled; the sync primitives use all four.
enum class WaitState : std::uint8_t {
    ready,     // never suspended (the fast path), or resumed already
    waiting,   // linked in the primitive's wait list
    woken,     // granted or notified: unlinked or at the front, its wake-up is scheduled
    cancelled, // cancelled while waiting: unlinked, scheduled to throw CancelledError
};

/// A task suspended on something that queues it: the task, where it is in its wait, and the
/// cancel and resume steps every such waiter shares. Lives in the awaiting coroutine's frame
/// (the awaiter is the node), so waiting allocates nothing.
class QueuedWaiter : public Waiter {
public:
    // task_ is written by await_suspend before anything reads it, and left uninitialised until
    // then: an awaiter is built for every co_await, most of which take the fast path and never
    // suspend. A derived class that must tell whether it suspended initialises it.
    TaskBase* task_; // the suspended task
    WaitState state_ = WaitState::ready;

protected:
    QueuedWaiter() noexcept = default;
    ~QueuedWaiter() = default;

    /// The task that runs coroutine h (the awaiter protocol's first step).
    template <class Promise>
    static TaskBase* task_of(std::coroutine_handle<Promise> h) noexcept {
        static_assert(std::is_base_of_v<TaskBase, Promise>,
                      "coring awaitables must be awaited from a coring::Task coroutine");
        return h.promise().task_;
    }

    /// Suspends task_ on this waiter in state waiting, to be resumed by its step (task_->wake()).
    template <class Promise>
    void suspend_here(std::coroutine_handle<Promise> h) noexcept {
        state_ = WaitState::waiting;
        task_->suspend_on(h, &h.promise(), *this);
    }

    /// Waiter::cancel's end for a waiter its cancel() has just taken out of its queue: marks it
    /// cancelled and schedules its task, which throws CancelledError from await_resume.
    bool cancel_dequeued() noexcept {
        state_ = WaitState::cancelled;
        task_->wake();
        return true;
    }

    /// Waiter::cancel for a waiter that tracks waiting in state_: when still waiting, unqueue()
    /// takes it out of its queue and the task is scheduled to throw CancelledError. Returns false
    /// once the waiter was woken: Task::cancel then leaves the cancellation pending, and
    /// await_resume deals with it.
    template <class Unqueue>
    bool cancel_waiting(Unqueue&& unqueue) noexcept {
        if (state_ != WaitState::waiting) {
            return false;
        }
        unqueue();
        return cancel_dequeued();
    }

    /// await_resume's cancellation step after a suspension: throws CancelledError when the wait
    /// was cancelled, or when a cancellation arrived after the waiter was woken.
    void throw_if_cancelled() {
        if (state_ == WaitState::cancelled) {
            task_->throw_cancelled();
        }
        task_->throw_if_cancel_pending();
    }

    /// The same step for a waiter whose wake-up granted something (an item, a free slot, a
    /// result): state_ goes back to ready; a waiter cancelled after it was woken first hands
    /// the grant on with pass_on() (asyncio wakes the next waiter when a woken one is
    /// cancelled), then throws CancelledError.
    template <class PassOn>
    void end_wait(PassOn&& pass_on) {
        bool cancelled = state_ == WaitState::cancelled;
        state_ = WaitState::ready;
        if (cancelled) {
            task_->throw_cancelled();
        }
        if (task_->must_cancel()) {
            pass_on();
            task_->throw_if_cancel_pending();
        }
    }
};

} // namespace coring::detail
