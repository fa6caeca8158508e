// SPDX-License-Identifier: MIT
// Condition: a condition variable for tasks over a Lock (asyncio.locks.Condition).
#pragma once

#include <coring/errors.hpp>
#include <coring/lock.hpp>
#include <coring/task.hpp>

#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/sync_waiter.hpp>
#include <coring/detail/task_base.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

namespace coring {

class Condition;

/// Awaiter of Condition::wait(): releases the lock, waits for a notification, re-acquires the
/// lock. One node in the awaiting frame serves both waits (first in the condition's list, then
/// in the lock's), so waiting allocates nothing.
///
/// asyncio's wait() re-acquires the lock in the task's own step after the notification; here
/// the entry scheduled by notify() does exactly that work at the same point of the loop (takes
/// the lock if it is free and unclaimed, else queues for it), then resumes the task.
class [[nodiscard]] ConditionAwaiter final : public detail::SyncWaiter {
public:
    explicit ConditionAwaiter(Condition& cond) noexcept : cond_(&cond) {}

    /// Moves an awaiter that has not been awaited yet (create_task(cond.wait())).
    ConditionAwaiter(ConditionAwaiter&& other) noexcept : cond_(other.cond_) {}

    ConditionAwaiter(const ConditionAwaiter&) = delete;
    ConditionAwaiter& operator=(const ConditionAwaiter&) = delete;

    /// Throws: RuntimeError("cannot wait on un-acquired lock") when the lock is not held.
    bool await_ready() const;

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h);

    /// Returns true, with the lock held again; see TrueResult for GCC.
    /// Throws: CancelledError when cancelled, after the lock was re-acquired.
    TrueResult await_resume() {
        state_ = detail::WaitState::ready;
        if (cancelled_) {
            resume_cancelled();
        }
        return {};
    }

    bool cancel(const std::string& msg) noexcept override;

    void describe(std::string& out) const override;

private:
    friend class Condition;

    enum class Phase : std::uint8_t {
        notification, // in the condition's list, or notified and about to take the lock
        relock,       // in the lock's list, or handed the lock and about to resume
    };

    static void on_notified(void* self, bool discard) noexcept;
    static void on_lock_granted(void* self, bool discard) noexcept;
    static void on_relock_cancelled(void* self, bool discard) noexcept;
    void absorb_cancel() noexcept;
    void take_lock_or_queue() noexcept;
    [[noreturn]] void resume_cancelled();

    Condition* cond_;
    std::coroutine_handle<> h_; // where the task resumes
    detail::TaskBase* inner_;   // set with h_
    Phase phase_ = Phase::notification;
    bool notified_ = false;  // a notify() chose this waiter
    bool cancelled_ = false; // CancelledError is thrown once the lock is held again
};

/// A condition variable (asyncio.Condition): tasks wait() until another task notify()s them,
/// with a Lock protecting the shared state. The Lock is the condition's own, or one given to the
/// constructor (several conditions may share a lock).
///
///     coring::Condition cond;
///     {
///         auto guard = co_await cond.scoped_acquire();
///         co_await cond.wait_for([&] { return !items.empty(); });
///         use(items.front());
///     }
///
/// wait() releases the lock, waits for notify() or notify_all(), and re-acquires the lock
/// before it returns, also when cancelled: CancelledError is thrown with the lock held. A waiter
/// that was notified and then cancelled passes its notification on to the next waiter (asyncio
/// 3.13), so no notification is lost. Thread safety: loop thread only.
class Condition : private detail::LoopBound {
public:
    /// A condition with its own Lock.
    Condition() noexcept : lock_(&own_lock_) {}

    /// A condition over lock, which must outlive it.
    explicit Condition(Lock& lock) noexcept : lock_(&lock) {}

    Condition(const Condition&) = delete;
    Condition& operator=(const Condition&) = delete;

    /// Whether the underlying lock is held.
    bool locked() const noexcept { return lock_->locked(); }

    /// Acquires the underlying lock (Condition.acquire() is the lock's acquire()).
    [[nodiscard]] LockAwaiter acquire() noexcept { return lock_->acquire(); }

    /// Acquires the underlying lock and yields a LockGuard (`async with cond:`).
    [[nodiscard]] ScopedLockAwaiter scoped_acquire() noexcept { return lock_->scoped_acquire(); }

    /// Releases the underlying lock. Throws: RuntimeError("Lock is not acquired.").
    void release() { lock_->release(); }

    /// Releases the lock, waits to be notified, re-acquires the lock (Condition.wait());
    /// yields true.
    /// Throws: RuntimeError("cannot wait on un-acquired lock") when the lock is not held.
    /// Cancellation: CancelledError is thrown after the lock was re-acquired.
    [[nodiscard]] ConditionAwaiter wait() noexcept { return ConditionAwaiter(*this); }

    /// Waits until predicate() is true (Condition.wait_for()): checks it, and wait()s again
    /// while it is false. Yields the predicate's last value. The lock must be held unless the
    /// predicate is true at once. A coroutine: its frame comes from the recycling frame
    /// allocator.
    /// Throws: what wait() throws, and what predicate throws.
    template <class Predicate>
    [[nodiscard]] Task<std::invoke_result_t<Predicate&>> wait_for(Predicate predicate);

    /// Wakes up to n waiting tasks, in FIFO order (Condition.notify()). Each re-acquires the
    /// lock before its wait() returns, so the caller should release it.
    /// Throws: RuntimeError("cannot notify on un-acquired lock") when the lock is not held.
    void notify(std::size_t n = 1) {
        if (!locked()) {
            throw RuntimeError("cannot notify on un-acquired lock");
        }
        notify_waiters(n);
    }

    /// Wakes every waiting task (Condition.notify_all()).
    /// Throws: RuntimeError("cannot notify on un-acquired lock") when the lock is not held.
    void notify_all() { notify(std::numeric_limits<std::size_t>::max()); }

private:
    friend class ConditionAwaiter;

    void notify_waiters(std::size_t n);

    Lock own_lock_;                                     // used unless a lock was given
    Lock* lock_;                                        // the lock in use
    detail::IntrusiveList<detail::SyncWaiter> waiters_; // tasks not notified yet
};

// Implementation

inline bool ConditionAwaiter::await_ready() const {
    if (!cond_->locked()) {
        throw RuntimeError("cannot wait on un-acquired lock");
    }
    return false;
}

template <class Promise>
void ConditionAwaiter::await_suspend(std::coroutine_handle<Promise> h) {
    task_ = task_of(h);
    cond_->bind_loop(task_->loop(), "Condition");
    h_ = h;
    inner_ = &h.promise();
    cond_->release();
    on_wake_ = {&ConditionAwaiter::on_notified, this};
    cond_->waiters_.push_back(*this);
    suspend_here(h);
}

inline void Condition::notify_waiters(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        detail::SyncWaiter* w = waiters_.pop_front();
        if (w == nullptr) {
            break;
        }
        static_cast<ConditionAwaiter*>(w)->notified_ = true;
        w->wake();
    }
}

template <class Predicate>
Task<std::invoke_result_t<Predicate&>> Condition::wait_for(Predicate predicate) {
    auto result = predicate();
    while (!result) {
        co_await wait();
        result = predicate();
    }
    co_return result;
}

} // namespace coring
