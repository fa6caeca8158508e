// SPDX-License-Identifier: MIT
// Lock: a mutual-exclusion lock for tasks, and LockGuard for `async with lock` (asyncio.locks).
#pragma once

#include <coring/errors.hpp>

#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/sync_waiter.hpp>
#include <coring/detail/task_base.hpp>

#include <coroutine>
#include <string>
#include <utility>

namespace coring {

class Lock;
class LockGuard;
class Condition;
class ConditionAwaiter;

/// Awaiter of Lock::acquire(). Lives in the awaiting coroutine's frame and is the node of the
/// lock's wait list: waiting allocates nothing. The uncontended path is await_ready alone.
class [[nodiscard]] LockAwaiter final : public detail::SyncWaiter {
public:
    explicit LockAwaiter(Lock& lock) noexcept : lock_(&lock) {}

    /// Moves an awaiter that has not been awaited yet (create_task(lock.acquire())).
    LockAwaiter(LockAwaiter&& other) noexcept : lock_(other.lock_) {}

    LockAwaiter(const LockAwaiter&) = delete;
    LockAwaiter& operator=(const LockAwaiter&) = delete;

    /// Takes the lock at once when it is free and nobody waits for it.
    bool await_ready() noexcept;

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h);

    /// Returns true (asyncio's acquire() returns True); see TrueResult for GCC.
    /// Throws: CancelledError when cancelled; the lock is then not held.
    TrueResult await_resume() {
        if (state_ != detail::WaitState::ready) {
            resume_slow();
        }
        return {};
    }

    bool cancel(const std::string& msg) noexcept override;

    void describe(std::string& out) const override;

private:
    void resume_slow();

    Lock* lock_;
};

/// Awaiter of Lock::scoped_acquire(): acquires like acquire() and yields a LockGuard.
class [[nodiscard]] ScopedLockAwaiter final {
public:
    explicit ScopedLockAwaiter(Lock& lock) noexcept : acquire_(lock), lock_(&lock) {}

    bool await_ready() noexcept { return acquire_.await_ready(); }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        acquire_.await_suspend(h);
    }

    /// Throws: CancelledError when cancelled; the lock is then not held.
    LockGuard await_resume();

private:
    LockAwaiter acquire_;
    Lock* lock_;
};

/// A lock for tasks (asyncio.Lock): not owned by any task, FIFO among waiters.
///
/// acquire() takes the lock when it is free and nobody waits, without suspending; otherwise the
/// task waits in FIFO order. release() wakes the first waiter, which takes the lock when it
/// runs; until then locked() is false, as in asyncio, but no newcomer can take it (fair
/// hand-off, asyncio 3.11.x). A waiter cancelled before its turn leaves the queue without
/// touching the lock; a waiter cancelled after release() chose it passes the lock on to the next
/// waiter and throws CancelledError.
///
///     coring::Lock lock;
///     {
///         auto guard = co_await lock.scoped_acquire(); // async with lock:
///         ...
///     }                                                // released here
///
/// Thread safety: loop thread only. A lock is bound to the first loop that waits on it.
class Lock : private detail::LoopBound {
public:
    Lock() noexcept = default;
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;

    /// Whether the lock is held (Lock.locked()).
    bool locked() const noexcept { return locked_; }

    /// Waits until the lock is free, then takes it (Lock.acquire()); yields true.
    /// Throws: RuntimeError when the lock is bound to another loop.
    /// Cancellation: throws CancelledError; the lock is not taken, and a hand-off already made to
    /// this waiter passes on to the next one.
    [[nodiscard]] LockAwaiter acquire() noexcept { return LockAwaiter(*this); }

    /// Like acquire(), but yields a LockGuard that releases the lock when it goes out of scope:
    /// coring's form of `async with lock:`.
    [[nodiscard]] ScopedLockAwaiter scoped_acquire() noexcept { return ScopedLockAwaiter(*this); }

    /// Releases the lock and wakes the first waiter, if any (Lock.release()).
    /// Throws: RuntimeError("Lock is not acquired.") when the lock is not held.
    void release() {
        if (!locked_) [[unlikely]] {
            detail::throw_runtime_error("Lock is not acquired.");
        }
        locked_ = false;
        wake_up_first();
    }

private:
    friend class LockAwaiter;
    friend class Condition;
    friend class ConditionAwaiter;

    /// The fast path: free and nobody queued (a woken waiter stays queued until it runs).
    bool try_take() noexcept {
        if (!locked_ && waiters_.empty()) {
            locked_ = true;
            return true;
        }
        return false;
    }

    /// asyncio's Lock._wake_up_first: make sure the first waiter will run, once.
    void wake_up_first() {
        if (!waiters_.empty()) {
            // A pointer, not a reference: the hook sits after the vtable pointer, and GCC's
            // -Wnull-dereference cannot see that the adjusted pointer is never null.
            detail::SyncWaiter* first = &waiters_.front();
            if (first != nullptr && first->state_ == detail::WaitState::waiting) {
                first->wake();
            }
        }
    }

    /// Describes the lock for task dumps: "locked, 2 waiting".
    void describe_state(std::string& out) const;

    detail::IntrusiveList<detail::SyncWaiter> waiters_; // FIFO; a woken waiter stays at the front
    bool locked_ = false;
};

/// Holds an acquired Lock and releases it when destroyed (the `async with lock:` block).
/// Move-only. Returned by Lock::scoped_acquire() and Condition::scoped_acquire(). unlock()
/// releases early (Throws: RuntimeError("Lock is not acquired.") when the lock was released by
/// other means); the destructor logs that misuse instead of throwing. owns_lock() tells whether
/// the guard still holds the lock.
class [[nodiscard]] LockGuard : public detail::AcquiredGuard<Lock, LockGuard> {
public:
    using AcquiredGuard::AcquiredGuard;

private:
    friend class detail::AcquiredGuard<Lock, LockGuard>;

    static void release_quietly(Lock& lock) noexcept {
        if (lock.locked()) {
            lock.release();
        } else {
            detail::report_guard_misuse("LockGuard: Lock is not acquired.");
        }
    }
};

// Implementation

inline bool LockAwaiter::await_ready() noexcept {
    return lock_->try_take();
}

template <class Promise>
void LockAwaiter::await_suspend(std::coroutine_handle<Promise> h) {
    task_ = task_of(h);
    lock_->bind_loop(task_->loop(), "Lock");
    on_wake_ = detail::step_entry_for(task_);
    lock_->waiters_.push_back(*this);
    suspend_here(h);
}

inline void LockAwaiter::resume_slow() {
    // asyncio's Lock.acquire after `await fut`.
    if (state_ == detail::WaitState::cancelled) {
        state_ = detail::WaitState::ready;
        task_->throw_cancelled();
    }
    // Woken: we are at the front of the queue and the lock is free for us.
    unlink();
    state_ = detail::WaitState::ready;
    if (task_->must_cancel()) {
        // Cancelled after release() chose us: pass the lock on, then throw.
        lock_->wake_up_first();
        task_->throw_if_cancel_pending();
    }
    lock_->locked_ = true;
}

inline bool LockAwaiter::cancel(const std::string&) noexcept {
    return cancel_waiting();
}

inline LockGuard ScopedLockAwaiter::await_resume() {
    acquire_.await_resume();
    return LockGuard(*lock_);
}

} // namespace coring
