// SPDX-License-Identifier: MIT
// The waiter node every synchronisation primitive and queue links into its wait list (the deques
// of futures in asyncio.locks and asyncio.queues), and the loop binding they share
// (asyncio.mixins._LoopBoundMixin).
#pragma once

#include <coring/event_loop.hpp>

#include <coring/detail/future_base.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/task_base.hpp>

#include <coroutine>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

// WORKAROUND(gcc-12): GCC 12 allocates the coroutine frame too small when a co_await of a
// temporary is (part of) the condition of an if, while, for, do-while or switch: the awaiter
// lives past the end of the frame, so the coroutine resumes at a garbage point or never (minimal
// repro: `if (co_await Aw{})` with a trivial awaiter is a heap-buffer-overflow under
// -fsanitize=address, at -O0 and -O2; Clang 14 is right). No shape of the awaiter avoids it, so
// with GCC that use of the sync primitives' result does not compile (see TrueResult). Define
// CORING_REJECT_CO_AWAIT_CONDITION to 0 or 1 to override.
#ifndef CORING_REJECT_CO_AWAIT_CONDITION
#if defined(__GNUC__) && !defined(__clang__)
#define CORING_REJECT_CO_AWAIT_CONDITION 1
#else
#define CORING_REJECT_CO_AWAIT_CONDITION 0
#endif
#endif

namespace coring {

/// What Lock.acquire(), Semaphore.acquire(), Event.wait() and Condition.wait() yield: asyncio's
/// True. It converts to bool when kept: `bool ok = co_await lock.acquire();` or
/// `auto ok = co_await lock.acquire(); if (ok) ...`.
///
/// With GCC, `if (co_await lock.acquire())`, `while (!co_await event.wait())` and every other
/// co_await used directly as a condition does not compile ("use of deleted function"): GCC 12
/// miscompiles a co_await inside a condition (the task hangs or corrupts memory), so coring
/// rejects the form rather than let it hang; await into a local first (docs/pitfalls.md). Clang
/// compiles the condition form correctly and accepts it.
struct TrueResult {
    bool value = true;

    /// The value, from a kept result (a local, a member).
    constexpr operator bool() const& noexcept { return value; } // NOLINT: asyncio's True

#if CORING_REJECT_CO_AWAIT_CONDITION
    /// WORKAROUND(gcc-12): GCC 12 miscompiles `if (co_await x)`: write `bool ok = co_await x;`.
    explicit operator bool() && = delete; // co_await used as a condition: see docs/pitfalls.md
#endif
};

} // namespace coring

namespace coring::detail {

/// Where a waiter is in its wait. asyncio keeps the same facts in a future: pending (waiting),
/// done with a result (woken), cancelled.
enum class WaitState : std::uint8_t {
    ready,     // never suspended (the fast path), or resumed already
    waiting,   // linked in the primitive's wait list
    woken,     // granted or notified: unlinked or at the front, its wake-up is scheduled
    cancelled, // cancelled while waiting: unlinked, scheduled to throw CancelledError
};

/// A task suspended on a primitive: lives in the awaiting coroutine's frame (the awaiter is the
/// node) and sits in the primitive's intrusive FIFO list, so waiting allocates nothing. Waking
/// it appends on_wake_ to the ready queue: usually the task's step, or a primitive's own entry
/// that decides, when the task's turn comes, whether to resume it or to wait again (what the
/// task's step would decide in asyncio).
class SyncWaiter : public ListHook<>, public Waiter {
public:
    /// Marks the waiter woken and schedules on_wake_ (never resumes inline).
    void wake() {
        state_ = WaitState::woken;
        task_->loop()->schedule(on_wake_);
    }

    // task_ and on_wake_ are written by await_suspend before anything reads them, and left
    // uninitialised until then: an awaiter is built for every co_await, most of which take the
    // fast path and never suspend.
    TaskBase* task_;     // the suspended task
    ReadyEntry on_wake_; // what wake() schedules
    WaitState state_ = WaitState::ready;

protected:
    SyncWaiter() noexcept = default;
    ~SyncWaiter() = default;

    /// The task that runs coroutine h (the awaiter protocol's first step).
    template <class Promise>
    static TaskBase* task_of(std::coroutine_handle<Promise> h) noexcept {
        static_assert(std::is_base_of_v<TaskBase, Promise>,
                      "coring awaitables must be awaited from a coring::Task coroutine");
        return h.promise().task_;
    }

    /// Suspends the task on this waiter, to be resumed by its step (task->wake()).
    template <class Promise>
    void suspend_here(std::coroutine_handle<Promise> h) noexcept {
        state_ = WaitState::waiting;
        task_->suspend_on(h, &h.promise(), *this);
    }

    /// Waiter::cancel for a waiter that is still in its list: unlink it and schedule its task,
    /// which throws CancelledError from await_resume. Returns false once the waiter was woken:
    /// Task::cancel then leaves the cancellation pending, and await_resume deals with it.
    bool cancel_waiting() noexcept {
        if (state_ != WaitState::waiting) {
            return false;
        }
        unlink();
        state_ = WaitState::cancelled;
        task_->wake();
        return true;
    }
};

/// Runs on_wake_ entries that step the task: the plain wake-up.
inline ReadyEntry step_entry_for(TaskBase* task) noexcept {
    return {&TaskBase::step_entry, task};
}

/// Binds a primitive to the first loop that waits on it; waiting from another loop later throws
/// RuntimeError (asyncio's _LoopBoundMixin._get_loop). Only slow paths check it, as in asyncio.
class LoopBound {
protected:
    void bind_loop(EventLoop* loop, const char* what) {
        if (loop_ == nullptr) {
            loop_ = loop;
        } else if (loop_ != loop) {
            throw_bound_elsewhere(what, loop_, loop);
        }
    }

    EventLoop* loop_ = nullptr; // the loop of the first wait, or null

private:
    [[noreturn]] static void
    throw_bound_elsewhere(const char* what, EventLoop* bound, EventLoop* waiting);
};

/// Moves w into list at the place its ticket (seq_) gives it among the waiters at the front: a
/// woken waiter that has to wait again keeps its turn instead of going to the back. Every node
/// of list must have a seq_ member; the walk stops at the first later ticket, so it costs the
/// number of earlier waiters that were re-queued the same way (usually none).
template <class Node, class List>
void requeue_in_order(List& list, Node& w) {
    // Pointers with explicit null checks: the hook sits after the vtable pointer, and GCC's
    // -Wnull-dereference cannot see that the adjusted pointers are never null.
    List earlier;
    for (;;) {
        auto* first = list.empty() ? nullptr : static_cast<Node*>(&list.front());
        if (first == nullptr || first->seq_ > w.seq_) {
            break;
        }
        List::remove(*first);
        earlier.push_back(*first);
    }
    list.push_front(w);
    for (;;) {
        auto* last = earlier.empty() ? nullptr : &earlier.back();
        if (last == nullptr) {
            break;
        }
        List::remove(*last);
        list.push_front(*last);
    }
}

/// Out-of-line throws, so that the hot paths that check for misuse stay small enough to inline.
[[noreturn]] void throw_runtime_error(const char* what);
[[noreturn]] void throw_value_error(const char* what);
[[noreturn]] void throw_queue_shutdown();
[[noreturn]] void throw_queue_full();
[[noreturn]] void throw_queue_empty();

/// Logs misuse detected in a destructor, which cannot throw (a guard releasing a primitive that
/// was already released by other means).
void report_guard_misuse(const char* what) noexcept;

/// The body LockGuard and SemaphoreGuard share: holds what the caller acquired and releases it
/// once, in unlock() (which throws the primitive's misuse error) or in the destructor (which
/// logs the misuse instead through Derived::release_quietly, since a destructor cannot throw).
template <class Primitive, class Derived>
class AcquiredGuard {
public:
    AcquiredGuard() noexcept = default;

    /// Adopts p, which the caller has acquired.
    explicit AcquiredGuard(Primitive& p) noexcept : p_(&p) {}

    AcquiredGuard(AcquiredGuard&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}

    AcquiredGuard& operator=(AcquiredGuard&& other) noexcept {
        if (this != &other) {
            release_quietly();
            p_ = std::exchange(other.p_, nullptr);
        }
        return *this;
    }

    ~AcquiredGuard() { release_quietly(); }

    /// Releases now. Throws what the primitive's release() throws on misuse.
    void unlock() {
        if (Primitive* p = std::exchange(p_, nullptr)) {
            p->release();
        }
    }

    /// Whether the guard still holds what it acquired.
    bool owns_lock() const noexcept { return p_ != nullptr; }

    explicit operator bool() const noexcept { return owns_lock(); }

private:
    void release_quietly() noexcept {
        if (Primitive* p = std::exchange(p_, nullptr)) {
            Derived::release_quietly(*p);
        }
    }

    Primitive* p_ = nullptr;
};

} // namespace coring::detail
