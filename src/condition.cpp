// SPDX-License-Identifier: MIT
// Condition: the re-acquisition of its lock after a notification or a cancellation.
#include <coring/condition.hpp>
#include <coring/lock.hpp>

#include <fmt/format.h>

#include <iterator>

namespace coring {

void ConditionAwaiter::describe(std::string& out) const {
    if (phase_ == Phase::notification) {
        out += "Condition wait (for a notification)";
    } else {
        out += "Condition wait (re-acquiring the lock: ";
        cond_->lock_->describe_state(out);
        out += ')';
    }
}

bool ConditionAwaiter::cancel(const std::string&) noexcept {
    if (state_ != detail::WaitState::waiting) {
        return false; // notified or handed the lock: the pending cancellation is seen on_*()
    }
    // asyncio: the future of the notification wait or of the lock's acquire() is cancelled; the
    // task then (re-)acquires the lock and raises CancelledError.
    unlink();
    cancelled_ = true;
    state_ = detail::WaitState::woken;
    if (phase_ == Phase::notification) {
        detail::LoopAccess::schedule(*task_->loop(), {&ConditionAwaiter::on_notified, this});
    } else {
        detail::LoopAccess::schedule(*task_->loop(),
                                     {&ConditionAwaiter::on_relock_cancelled, this});
    }
    return true;
}

void ConditionAwaiter::absorb_cancel() noexcept {
    // asyncio throws a pending cancellation into wait() at the point it resumes, and wait()
    // still re-acquires the lock before raising it; remember it for then.
    if (task_->must_cancel()) {
        task_->clear_must_cancel();
        cancelled_ = true;
    }
}

void ConditionAwaiter::take_lock_or_queue() noexcept {
    // What `await self.acquire()` does inside asyncio's Condition.wait.
    Lock& lock = *cond_->lock_;
    phase_ = Phase::relock;
    if (lock.try_take()) {
        detail::TaskBase::step_entry(task_, false); // resumes in await_resume; may free *this
        return;
    }
    on_wake_ = {&ConditionAwaiter::on_lock_granted, this};
    lock.waiters_.push_back(*this);
    state_ = detail::WaitState::waiting;
    task_->suspend_on(h_, inner_, *this); // no cancellation is pending: absorb_cancel() ran
}

void ConditionAwaiter::on_notified(void* self, bool discard) noexcept {
    if (discard) {
        return;
    }
    auto* w = static_cast<ConditionAwaiter*>(self);
    w->absorb_cancel();
    w->take_lock_or_queue();
}

void ConditionAwaiter::on_lock_granted(void* self, bool discard) noexcept {
    if (discard) {
        return;
    }
    auto* w = static_cast<ConditionAwaiter*>(self);
    Lock& lock = *w->cond_->lock_;
    w->unlink();
    if (w->task_->must_cancel()) {
        // asyncio: Lock.acquire raises CancelledError without taking the lock and wakes the next
        // waiter; Condition.wait catches it and acquires again, from the back of the queue.
        w->absorb_cancel();
        lock.wake_up_first();
        w->take_lock_or_queue();
        return;
    }
    lock.locked_ = true;
    detail::TaskBase::step_entry(w->task_, false); // resumes in await_resume; may free *w
}

void ConditionAwaiter::on_relock_cancelled(void* self, bool discard) noexcept {
    if (discard) {
        return;
    }
    auto* w = static_cast<ConditionAwaiter*>(self);
    w->absorb_cancel(); // a second cancel() may have arrived meanwhile
    Lock& lock = *w->cond_->lock_;
    if (!lock.locked()) {
        lock.wake_up_first(); // asyncio's Lock.acquire on CancelledError
    }
    w->take_lock_or_queue();
}

void ConditionAwaiter::resume_cancelled() {
    if (notified_) {
        // This task consumed a notification it will not act on: pass it on, so that it is not
        // lost (asyncio 3.13's Condition.wait notifies one more on any error).
        cond_->notify_waiters(1);
    }
    task_->throw_cancelled();
}

} // namespace coring
