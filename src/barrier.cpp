// SPDX-License-Identifier: MIT
// Barrier's state machine (asyncio.Barrier).
#include <coring/barrier.hpp>
#include <coring/errors.hpp>

#include <fmt/format.h>

#include <iterator>

namespace coring {

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
