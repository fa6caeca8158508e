// SPDX-License-Identifier: MIT
// Semaphore and BoundedSemaphore, and SemaphoreGuard for `async with sem` (asyncio.locks).
#pragma once

#include <coring/errors.hpp>

#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/sync_waiter.hpp>
#include <coring/detail/task_base.hpp>

#include <coroutine>
#include <cstddef>
#include <string>
#include <utility>

namespace coring {

class Semaphore;
class SemaphoreGuard;

/// Awaiter of Semaphore::acquire(). Lives in the awaiting frame and is the node of the
/// semaphore's wait list: waiting allocates nothing. The uncontended path is await_ready alone.
class [[nodiscard]] SemaphoreAwaiter final : public detail::SyncWaiter {
public:
    explicit SemaphoreAwaiter(Semaphore& sem) noexcept : sem_(&sem) {}

    /// Moves an awaiter that has not been awaited yet (create_task(sem.acquire())).
    SemaphoreAwaiter(SemaphoreAwaiter&& other) noexcept : sem_(other.sem_) {}

    SemaphoreAwaiter(const SemaphoreAwaiter&) = delete;
    SemaphoreAwaiter& operator=(const SemaphoreAwaiter&) = delete;

    bool await_ready() noexcept;

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h);

    /// Returns true (asyncio's acquire() returns True); see TrueResult for GCC.
    /// Throws: CancelledError when cancelled; the semaphore is then not held.
    TrueResult await_resume() {
        if (state_ != detail::WaitState::ready) {
            resume_slow();
        }
        return {};
    }

    bool cancel(const std::string&) noexcept override { return cancel_waiting(); }

    void describe(std::string& out) const override;

private:
    void resume_slow();

    Semaphore* sem_;
};

/// Awaiter of Semaphore::scoped_acquire(): acquires like acquire() and yields a SemaphoreGuard.
class [[nodiscard]] ScopedSemaphoreAwaiter final {
public:
    explicit ScopedSemaphoreAwaiter(Semaphore& sem) noexcept : acquire_(sem), sem_(&sem) {}

    bool await_ready() noexcept { return acquire_.await_ready(); }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        acquire_.await_suspend(h);
    }

    /// Throws: CancelledError when cancelled; the semaphore is then not held.
    SemaphoreGuard await_resume();

private:
    SemaphoreAwaiter acquire_;
    Semaphore* sem_;
};

/// A counter of free slots that tasks acquire and release (asyncio.Semaphore).
///
/// acquire() takes a slot at once when one is free and nobody waits; otherwise the task waits in
/// FIFO order. release() gives a slot back and wakes the first waiter, to which the slot is
/// reserved from then on: a task arriving before the woken one runs waits its turn (asyncio
/// 3.11.x fairness). A waiter cancelled after being chosen gives its slot back to the next.
///
///     coring::Semaphore downloads(3);
///     {
///         auto slot = co_await downloads.scoped_acquire(); // async with downloads:
///         co_await fetch(url);
///     }
///
/// Thread safety: loop thread only. A semaphore is bound to the first loop that waits on it.
class Semaphore : private detail::LoopBound {
public:
    /// A semaphore with value free slots.
    /// Throws: ValueError("Semaphore initial value must be >= 0") when value is negative.
    explicit Semaphore(std::ptrdiff_t value = 1) : value_(value) {
        if (value < 0) {
            throw ValueError("Semaphore initial value must be >= 0");
        }
    }

    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;

    /// Whether acquire() would wait (Semaphore.locked()): no free slot, or tasks queued before.
    bool locked() const noexcept { return value_ == 0 || !waiters_.empty() || woken_ != 0; }

    /// The number of free slots not reserved for a woken waiter (asyncio's private _value).
    std::ptrdiff_t value() const noexcept { return value_; }

    /// Waits for a free slot and takes it (Semaphore.acquire()); yields true.
    /// Throws: RuntimeError when the semaphore is bound to another loop.
    /// Cancellation: throws CancelledError; a slot already reserved for this waiter goes to the
    /// next one.
    [[nodiscard]] SemaphoreAwaiter acquire() noexcept { return SemaphoreAwaiter(*this); }

    /// Like acquire(), but yields a SemaphoreGuard that releases the slot when it goes out of
    /// scope: coring's form of `async with sem:`.
    [[nodiscard]] ScopedSemaphoreAwaiter scoped_acquire() noexcept {
        return ScopedSemaphoreAwaiter(*this);
    }

    /// Gives a slot back and wakes the first waiter, if any (Semaphore.release()).
    /// Throws: ValueError("BoundedSemaphore released too many times") for a BoundedSemaphore
    /// released above its initial value.
    void release() {
        if (bound_ >= 0 && value_ >= bound_) [[unlikely]] {
            detail::throw_value_error("BoundedSemaphore released too many times");
        }
        ++value_;
        wake_up_next();
    }

protected:
    /// The initial value of a BoundedSemaphore; -1 for an unbounded one.
    std::ptrdiff_t bound_ = -1;

private:
    friend class SemaphoreAwaiter;

    bool try_take() noexcept {
        if (value_ > 0 && waiters_.empty() && woken_ == 0) {
            --value_;
            return true;
        }
        return false;
    }

    /// asyncio's Semaphore._wake_up_next: reserve a slot for the first waiter and wake it.
    bool wake_up_next() {
        if (detail::SyncWaiter* w = waiters_.pop_front()) {
            --value_;
            ++woken_;
            w->wake();
            return true;
        }
        return false;
    }

    /// Wakes as many waiters as there are free slots (asyncio 3.13's acquire() epilogue: tasks
    /// that queued behind a woken one while a slot was free).
    void wake_up_allowed() {
        while (value_ > 0 && wake_up_next()) {
        }
    }

    void describe_state(std::string& out) const;

    std::ptrdiff_t value_;
    std::size_t woken_ = 0;                             // woken waiters that have not run yet
    detail::IntrusiveList<detail::SyncWaiter> waiters_; // only tasks still waiting, FIFO
};

/// A Semaphore that refuses to be released above its initial value (asyncio.BoundedSemaphore).
class BoundedSemaphore : public Semaphore {
public:
    /// A semaphore with value free slots, never more.
    /// Throws: ValueError("Semaphore initial value must be >= 0") when value is negative.
    explicit BoundedSemaphore(std::ptrdiff_t value = 1) : Semaphore(value) { bound_ = value; }
};

/// Holds an acquired slot of a Semaphore and releases it when destroyed (the
/// `async with sem:` block). Move-only. Returned by Semaphore::scoped_acquire(). unlock()
/// releases early (Throws: ValueError as BoundedSemaphore::release()); the destructor leaves a
/// BoundedSemaphore that would go above its initial value alone and logs the misuse instead.
class [[nodiscard]] SemaphoreGuard : public detail::AcquiredGuard<Semaphore, SemaphoreGuard> {
public:
    using AcquiredGuard::AcquiredGuard;

private:
    friend class detail::AcquiredGuard<Semaphore, SemaphoreGuard>;

    static void release_quietly(Semaphore& sem) noexcept {
        try {
            sem.release();
        } catch (const ValueError&) {
            detail::report_guard_misuse("SemaphoreGuard: BoundedSemaphore released too many times");
        }
    }
};

// Implementation

inline bool SemaphoreAwaiter::await_ready() noexcept {
    return sem_->try_take();
}

template <class Promise>
void SemaphoreAwaiter::await_suspend(std::coroutine_handle<Promise> h) {
    task_ = task_of(h);
    sem_->bind_loop(task_->loop(), "Semaphore");
    on_wake_ = detail::step_entry_for(task_);
    sem_->waiters_.push_back(*this);
    suspend_here(h);
}

inline void SemaphoreAwaiter::resume_slow() {
    // asyncio's Semaphore.acquire after `await fut` (3.11.7, with 3.13's epilogue).
    bool cancelled = state_ == detail::WaitState::cancelled;
    state_ = detail::WaitState::ready;
    if (cancelled) {
        // Cancelled while waiting: no slot was reserved for us.
        sem_->wake_up_allowed();
        task_->throw_cancelled();
    }
    --sem_->woken_;
    if (task_->must_cancel()) {
        // Cancelled after release() reserved a slot for us: give it to the next waiter.
        ++sem_->value_;
        sem_->wake_up_allowed();
        task_->throw_if_cancel_pending();
    }
    sem_->wake_up_allowed();
}

inline SemaphoreGuard ScopedSemaphoreAwaiter::await_resume() {
    acquire_.await_resume();
    return SemaphoreGuard(*sem_);
}

} // namespace coring
