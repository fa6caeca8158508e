// SPDX-License-Identifier: MIT
// The waiter node every synchronisation primitive and queue links into its wait list (the deques
// of futures in asyncio.locks and asyncio.queues), and the loop binding they share
// (asyncio.mixins._LoopBoundMixin).
#pragma once

#include <coring/event_loop.hpp>

#include <coring/detail/future_base.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/queued_waiter.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/task_base.hpp>

#include <coroutine>
#include <string>
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

/// A task suspended on a primitive: sits in the primitive's intrusive FIFO list. Waking it
/// appends on_wake_ to the ready queue: usually the task's step, or a primitive's own entry that
/// decides, when the task's turn comes, whether to resume it or to wait again (what the task's
/// step would decide in asyncio). Tracks every WaitState: the primitives read it.
class SyncWaiter : public ListHook<>, public QueuedWaiter {
public:
    /// Marks the waiter woken and schedules on_wake_ (never resumes inline).
    void wake() {
        state_ = WaitState::woken;
        detail::LoopAccess::schedule(*task_->loop(), on_wake_);
    }

    // Written by await_suspend before anything reads it (see QueuedWaiter::task_).
    ReadyEntry on_wake_; // what wake() schedules

protected:
    SyncWaiter() noexcept = default;
    ~SyncWaiter() = default;

    /// Waiter::cancel of every primitive: unlinks a waiter that is still waiting (see
    /// QueuedWaiter::cancel_waiting).
    bool cancel_waiting() noexcept {
        return QueuedWaiter::cancel_waiting([this]() noexcept { unlink(); });
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
