// SPDX-License-Identifier: MIT
// Out-of-line parts of the synchronisation primitives (asyncio.locks): task-dump descriptions,
// Condition's re-acquisition of its lock, Barrier's state machine, error reports.
#include <coring/barrier.hpp>
#include <coring/condition.hpp>
#include <coring/errors.hpp>
#include <coring/event.hpp>
#include <coring/lock.hpp>
#include <coring/log.hpp>
#include <coring/semaphore.hpp>

#include <coring/detail/sync_waiter.hpp>

#include <fmt/format.h>

#include <iterator>

namespace coring {

namespace detail {

void LoopBound::throw_bound_elsewhere(const char* what) {
    throw RuntimeError(fmt::format("<coring::{}> is bound to a different event loop", what));
}

void throw_runtime_error(const char* what) {
    throw RuntimeError(what);
}

void throw_value_error(const char* what) {
    throw ValueError(what);
}

void throw_queue_shutdown() {
    throw QueueShutDown();
}

void throw_queue_full() {
    throw QueueFull();
}

void throw_queue_empty() {
    throw QueueEmpty();
}

void report_guard_misuse(const char* what) noexcept {
    log(LogLevel::error, what);
}

} // namespace detail

// ---- Lock ----

void Lock::describe_state(std::string& out) const {
    fmt::format_to(std::back_inserter(out),
                   "{}, {} waiting",
                   locked_ ? "locked" : "unlocked",
                   waiters_.size());
}

void LockAwaiter::describe(std::string& out) const {
    out += "Lock acquire (";
    lock_->describe_state(out);
    out += ')';
}

// ---- Event ----

void EventAwaiter::describe(std::string& out) const {
    out += event_->is_set() ? "Event wait (set)" : "Event wait (unset)";
}

// ---- Condition ----

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
        task_->loop()->schedule({&ConditionAwaiter::on_notified, this});
    } else {
        task_->loop()->schedule({&ConditionAwaiter::on_relock_cancelled, this});
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

// ---- Semaphore ----

void Semaphore::describe_state(std::string& out) const {
    fmt::format_to(std::back_inserter(out),
                   "value {}, {} waiting, {} woken",
                   value_,
                   waiters_.size(),
                   woken_);
}

void SemaphoreAwaiter::describe(std::string& out) const {
    out += "Semaphore acquire (";
    sem_->describe_state(out);
    out += ')';
}

// ---- Barrier ----
//
// asyncio builds Barrier on a Condition whose lock is never contended (nobody awaits while
// holding it), so the lock is left out here; the condition's single notify_all list becomes two
// lists, because a task arriving while the barrier drains or resets (blocked_) and a task
// counted and waiting for the others (filling_) never wait at the same time.

namespace {

const char* state_name(Barrier::State s) noexcept {
    switch (s) {
    case Barrier::State::filling:
        return "filling";
    case Barrier::State::draining:
        return "draining";
    case Barrier::State::resetting:
        return "resetting";
    case Barrier::State::broken:
        return "broken";
    }
    return "?";
}

} // namespace

Barrier::Barrier(std::ptrdiff_t parties) : parties_(static_cast<std::size_t>(parties)) {
    if (parties < 1) {
        throw ValueError("parties must be > 0");
    }
}

void Barrier::wake_all(detail::IntrusiveList<detail::SyncWaiter>& list) {
    while (detail::SyncWaiter* w = list.pop_front()) {
        w->wake();
    }
}

Barrier::Arrival Barrier::arrive(BarrierAwaiter& w) {
    // asyncio's Barrier.wait up to the point where it blocks: _block(), then counting in.
    if (state_ == State::draining || state_ == State::resetting) {
        w.phase_ = BarrierAwaiter::Phase::blocked;
        return Arrival::wait;
    }
    if (state_ == State::broken) {
        w.phase_ = BarrierAwaiter::Phase::broken;
        return Arrival::broken;
    }
    w.index_ = count_++;
    if (w.index_ + 1 == parties_) {
        // _release(): the last party lets everybody through without waiting itself.
        state_ = State::draining;
        wake_all(filling_);
        w.phase_ = BarrierAwaiter::Phase::passed;
        leave();
        return Arrival::passed;
    }
    w.phase_ = BarrierAwaiter::Phase::filling;
    return Arrival::wait;
}

void Barrier::park(BarrierAwaiter& w) noexcept {
    if (w.phase_ == BarrierAwaiter::Phase::blocked) {
        w.on_wake_ = {&BarrierAwaiter::on_unblocked, &w};
        blocked_.push_back(w);
    } else {
        w.on_wake_ = detail::step_entry_for(w.task_);
        filling_.push_back(w);
    }
}

void Barrier::leave() noexcept {
    // The `finally` of asyncio's Barrier.wait: count out, and _exit().
    --count_;
    if (count_ == 0) {
        if (state_ == State::resetting || state_ == State::draining) {
            state_ = State::filling;
        }
        wake_all(blocked_);
    }
}

void Barrier::do_reset() {
    if (count_ > 0) {
        state_ = State::resetting;
    } else {
        state_ = State::filling;
        wake_all(blocked_);
    }
    wake_all(filling_); // they see resetting and throw BrokenBarrierError
}

void Barrier::do_abort() {
    state_ = State::broken;
    wake_all(blocked_);
    wake_all(filling_);
}

bool BarrierAwaiter::await_ready() {
    switch (barrier_->arrive(*this)) {
    case Barrier::Arrival::passed:
        return true;
    case Barrier::Arrival::broken:
        throw BrokenBarrierError("Barrier aborted");
    case Barrier::Arrival::wait:
        break;
    }
    return false;
}

void BarrierAwaiter::on_unblocked(void* self, bool discard) noexcept {
    // A task woken from blocked_ re-checks the barrier when its turn comes, as asyncio's
    // _block() re-evaluates its wait_for() predicate in the task's step.
    if (discard) {
        return;
    }
    auto* w = static_cast<BarrierAwaiter*>(self);
    if (!w->task_->must_cancel()) {
        Barrier& b = *w->barrier_;
        if (b.arrive(*w) == Barrier::Arrival::wait) {
            b.park(*w);
            w->state_ = detail::WaitState::waiting;
            w->task_->suspend_on(w->h_, w->inner_, *w);
            return;
        }
    }
    detail::TaskBase::step_entry(w->task_, false); // resumes in await_resume
}

std::size_t BarrierAwaiter::resume_slow() {
    bool cancelled = state_ == detail::WaitState::cancelled;
    state_ = detail::WaitState::ready;
    Barrier& b = *barrier_;
    switch (phase_) {
    case Phase::blocked:
        // Cancelled before counting in.
        if (cancelled) {
            task_->throw_cancelled();
        }
        task_->throw_if_cancel_pending();
        break;
    case Phase::broken:
        throw BrokenBarrierError("Barrier aborted");
    case Phase::passed:
        return index_;
    case Phase::filling: {
        // asyncio's _wait() after the condition woke it, then the `finally` of wait().
        bool interrupted = cancelled || task_->must_cancel();
        bool broken = b.state_ == Barrier::State::broken || b.state_ == Barrier::State::resetting;
        b.leave();
        if (cancelled) {
            task_->throw_cancelled();
        }
        if (interrupted) {
            task_->throw_if_cancel_pending();
        }
        if (broken) {
            throw BrokenBarrierError("Abort or reset of barrier");
        }
        return index_;
    }
    }
    return index_;
}

void BarrierAwaiter::describe(std::string& out) const {
    const Barrier& b = *barrier_;
    fmt::format_to(std::back_inserter(out),
                   "Barrier wait ({}, {}/{} waiting)",
                   state_name(b.state()),
                   b.n_waiting(),
                   b.parties());
}

} // namespace coring
