// SPDX-License-Identifier: MIT
// Event: a flag tasks can wait for (asyncio.locks.Event).
#pragma once

#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/sync_waiter.hpp>
#include <coring/detail/task_base.hpp>

#include <coroutine>
#include <string>

namespace coring {

class Event;

/// Awaiter of Event::wait(). Lives in the awaiting frame and is the node of the event's wait
/// list; returns at once when the flag is set.
class [[nodiscard]] EventAwaiter final : public detail::SyncWaiter {
public:
    explicit EventAwaiter(Event& event) noexcept : event_(&event) {}

    /// Moves an awaiter that has not been awaited yet (create_task(event.wait())).
    EventAwaiter(EventAwaiter&& other) noexcept : event_(other.event_) {}

    EventAwaiter(const EventAwaiter&) = delete;
    EventAwaiter& operator=(const EventAwaiter&) = delete;

    bool await_ready() const noexcept;

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h);

    /// Returns true (asyncio's wait() returns True), also when the flag was cleared again
    /// before this task ran; see TrueResult for GCC. Throws: CancelledError when cancelled.
    TrueResult await_resume() {
        if (state_ != detail::WaitState::ready) {
            end_wait([] {}); // nothing granted to pass on
        }
        return {};
    }

    bool cancel(const std::string&) noexcept override { return cancel_waiting(); }

    void describe(std::string& out) const override;

private:
    Event* event_;
};

/// A flag that tasks can wait for (asyncio.Event). set() wakes every task waiting now; wait()
/// on a set event returns without suspending; clear() resets the flag.
///
///     coring::Event ready;
///     // in one task:           // in others:
///     ready.set();              co_await ready.wait();
///
/// Thread safety: loop thread only (from another thread, set it through
/// call_soon_threadsafe). An event is bound to the first loop that waits on it.
class Event : private detail::LoopBound {
public:
    Event() noexcept = default;
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    /// Whether the flag is set (Event.is_set()).
    bool is_set() const noexcept { return value_; }

    /// Sets the flag and wakes every waiting task, in the order they began waiting
    /// (Event.set()). Does nothing when the flag is set already.
    void set() {
        if (!value_) {
            value_ = true;
            while (detail::SyncWaiter* w = waiters_.pop_front()) {
                w->wake();
            }
        }
    }

    /// Resets the flag (Event.clear()); tasks that set() woke still return true.
    void clear() noexcept { value_ = false; }

    /// Waits until the flag is set (Event.wait()); yields true.
    /// Throws: RuntimeError when the event is bound to another loop.
    /// Cancellation: throws CancelledError; the task stops waiting.
    [[nodiscard]] EventAwaiter wait() noexcept { return EventAwaiter(*this); }

private:
    friend class EventAwaiter;

    detail::IntrusiveList<detail::SyncWaiter> waiters_; // only tasks still waiting
    bool value_ = false;
};

// Implementation

inline bool EventAwaiter::await_ready() const noexcept {
    return event_->value_;
}

template <class Promise>
void EventAwaiter::await_suspend(std::coroutine_handle<Promise> h) {
    task_ = task_of(h);
    event_->bind_loop(task_->loop(), "Event");
    on_wake_ = detail::step_entry_for(task_);
    event_->waiters_.push_back(*this);
    suspend_here(h);
}

} // namespace coring
