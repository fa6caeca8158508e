// SPDX-License-Identifier: MIT
// Barrier: tasks wait until a fixed number of them have arrived (asyncio.locks.Barrier).
#pragma once

#include <coring/errors.hpp>

#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/sync_waiter.hpp>
#include <coring/detail/task_base.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <string>

namespace coring {

class Barrier;

/// Awaiter of Barrier::wait(). Lives in the awaiting frame and is the node of the barrier's
/// wait lists: waiting allocates nothing. The task that completes the barrier does not suspend.
class [[nodiscard]] BarrierAwaiter final : public detail::SyncWaiter {
public:
    explicit BarrierAwaiter(Barrier& barrier) noexcept : barrier_(&barrier) {}

    /// Moves an awaiter that has not been awaited yet (create_task(barrier.wait())).
    BarrierAwaiter(BarrierAwaiter&& other) noexcept : barrier_(other.barrier_) {}

    BarrierAwaiter(const BarrierAwaiter&) = delete;
    BarrierAwaiter& operator=(const BarrierAwaiter&) = delete;

    /// Arrives at the barrier; true when this task completes it.
    /// Throws: BrokenBarrierError("Barrier aborted") when the barrier is broken.
    bool await_ready();

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h);

    /// Returns the arrival index, 0 .. parties() - 1.
    /// Throws: BrokenBarrierError when the barrier was aborted or reset while waiting;
    /// CancelledError when cancelled.
    std::size_t await_resume() {
        if (state_ == detail::WaitState::ready) { // completed the barrier without suspending
            return index_;
        }
        return resume_slow();
    }

    bool cancel(const std::string&) noexcept override { return cancel_waiting(); }

    void describe(std::string& out) const override;

private:
    friend class Barrier;

    enum class Phase : std::uint8_t {
        blocked, // waits for the barrier to finish draining or resetting
        filling, // arrived (counted), waits for the other parties
        passed,  // arrived and the barrier was released: index_ is valid
        broken,  // found the barrier broken on arrival
    };

    static void on_unblocked(void* self, bool discard) noexcept;
    std::size_t resume_slow();

    Barrier* barrier_;
    std::coroutine_handle<> h_; // where the task resumes
    detail::TaskBase* inner_;   // set with h_
    std::size_t index_ = 0;
    Phase phase_ = Phase::blocked;
};

/// Awaiter of Barrier::reset() and Barrier::abort(): does the work when awaited and never
/// suspends (asyncio's versions only take the barrier's condition lock, which is never
/// contended).
class [[nodiscard]] BarrierControlAwaiter final {
public:
    BarrierControlAwaiter(Barrier& barrier, bool abort) noexcept
        : barrier_(&barrier), abort_(abort) {}

    bool await_ready();

    void await_suspend(std::coroutine_handle<>) const noexcept {}

    void await_resume() const noexcept {}

private:
    Barrier* barrier_;
    bool abort_;
};

/// A barrier for a fixed number of tasks (asyncio.Barrier): each wait() blocks until parties()
/// tasks are waiting, then all return together, each with a distinct index. The barrier then
/// drains (tasks arriving meanwhile wait for the next round) and fills again. reset() sends the
/// waiting tasks BrokenBarrierError and starts over; abort() breaks it for good.
///
///     coring::Barrier start(3);
///     std::size_t i = co_await start.wait(); // in each of three tasks
///
/// Thread safety: loop thread only. A barrier is bound to the first loop that waits on it.
class Barrier : private detail::LoopBound {
public:
    /// The state asyncio shows in repr(): filling, draining, resetting, broken.
    enum class State : std::uint8_t { filling, draining, resetting, broken };

    /// A barrier for parties tasks.
    /// Throws: ValueError("parties must be > 0") when parties < 1.
    explicit Barrier(std::ptrdiff_t parties);

    Barrier(const Barrier&) = delete;
    Barrier& operator=(const Barrier&) = delete;

    /// Waits until parties() tasks are waiting (Barrier.wait()); yields this task's index,
    /// unique among them. `async with barrier as i` is `auto i = co_await barrier.wait()`.
    /// Throws: BrokenBarrierError when the barrier is broken, or is reset or aborted while this
    /// task waits; RuntimeError when the barrier is bound to another loop.
    /// Cancellation: throws CancelledError; the task no longer counts as waiting.
    [[nodiscard]] BarrierAwaiter wait() noexcept { return BarrierAwaiter(*this); }

    /// Returns the barrier to the filling state (Barrier.reset()); tasks waiting now get
    /// BrokenBarrierError. Takes effect when awaited.
    [[nodiscard]] BarrierControlAwaiter reset() noexcept { return {*this, false}; }

    /// Breaks the barrier (Barrier.abort()): waiting tasks and later wait()s get
    /// BrokenBarrierError, until reset(). Takes effect when awaited.
    [[nodiscard]] BarrierControlAwaiter abort() noexcept { return {*this, true}; }

    /// The number of tasks needed to pass the barrier.
    std::size_t parties() const noexcept { return parties_; }

    /// The number of tasks waiting for the barrier to fill (0 while draining or resetting).
    std::size_t n_waiting() const noexcept { return state_ == State::filling ? count_ : 0; }

    /// Whether the barrier is broken.
    bool broken() const noexcept { return state_ == State::broken; }

    /// The barrier's state.
    State state() const noexcept { return state_; }

private:
    friend class BarrierAwaiter;
    friend class BarrierControlAwaiter;

    enum class Arrival : std::uint8_t { wait, passed, broken };

    Arrival arrive(BarrierAwaiter& w);
    void park(BarrierAwaiter& w) noexcept;
    void leave() noexcept;
    void do_reset();
    void do_abort();
    static void wake_all(detail::IntrusiveList<detail::SyncWaiter>& list);

    std::size_t parties_;
    std::size_t count_ = 0; // tasks inside wait() that arrived (asyncio's _count)
    State state_ = State::filling;
    detail::IntrusiveList<detail::SyncWaiter> blocked_; // arrived while draining or resetting
    detail::IntrusiveList<detail::SyncWaiter> filling_; // counted, waiting for the others
};

// Implementation

template <class Promise>
void BarrierAwaiter::await_suspend(std::coroutine_handle<Promise> h) {
    task_ = task_of(h);
    barrier_->bind_loop(task_->loop(), "Barrier");
    h_ = h;
    inner_ = &h.promise();
    barrier_->park(*this);
    suspend_here(h);
}

inline bool BarrierControlAwaiter::await_ready() {
    if (abort_) {
        barrier_->do_abort();
    } else {
        barrier_->do_reset();
    }
    return true;
}

} // namespace coring
