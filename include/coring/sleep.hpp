// SPDX-License-Identifier: MIT
// sleep(): suspend the calling task for a while (asyncio.sleep).
#pragma once

#include <coring/event_loop.hpp>

#include <coring/detail/deadline.hpp>
#include <coring/detail/queued_waiter.hpp>
#include <coring/detail/task_base.hpp>
#include <coring/detail/timer_heap.hpp>

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

namespace coring {

/// Awaiter of sleep(): a timer node in the sleeping coroutine's frame, so sleeping allocates
/// nothing. Cancelling the task removes the timer and resumes it with CancelledError.
class [[nodiscard]] SleepAwaiter final : private detail::TimerNode, public detail::QueuedWaiter {
public:
    /// Sleeps for delay; detail::never_ns nanoseconds (a saturated huge delay) means forever.
    explicit SleepAwaiter(std::chrono::nanoseconds delay) noexcept
        : TimerNode(&SleepAwaiter::fire), delay_(delay) {}

    SleepAwaiter(SleepAwaiter&& other) noexcept
        : TimerNode(&SleepAwaiter::fire), delay_(other.delay_) {}

    ~SleepAwaiter() {
        if (is_queued()) {
            detail::LoopAccess::remove_timer(*task_->loop(), *this);
        }
    }

    bool await_ready() const noexcept { return false; }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        task_ = task_of(h);
        if (delay_.count() <= 0) {
            // sleep(0): a bare yield, as asyncio's __sleep0.
            task_->suspend_yield(h, &h.promise());
            return;
        }
        EventLoop& loop = *task_->loop();
        detail::LoopAccess::add_timer(
                loop,
                *this,
                detail::deadline_after(detail::LoopAccess::now_ns(loop), delay_.count()));
        task_->suspend_on(h, &h.promise(), *this);
    }

    void await_resume() { throw_if_cancelled(); }

    bool cancel(const std::string&) noexcept override {
        if (!is_queued()) {
            return false; // already fired: the task is scheduled to wake
        }
        detail::LoopAccess::remove_timer(*task_->loop(), *this);
        return cancel_dequeued();
    }

    void describe(std::string& out) const override;

private:
    static void fire(detail::TimerNode* node, bool discard) noexcept {
        if (!discard) {
            static_cast<SleepAwaiter&>(*node).task_->wake();
        }
    }

    std::chrono::nanoseconds delay_;
};

/// Awaiter of sleep(delay, result): sleeps as SleepAwaiter, then yields the result.
template <class T>
class [[nodiscard]] SleepResultAwaiter {
public:
    SleepResultAwaiter(std::chrono::nanoseconds delay,
                       T result) noexcept(std::is_nothrow_move_constructible_v<T>)
        : sleep_(delay), result_(std::move(result)) {}

    bool await_ready() const noexcept { return false; }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        sleep_.await_suspend(h);
    }

    T await_resume() {
        sleep_.await_resume();
        return std::move(result_);
    }

private:
    SleepAwaiter sleep_;
    T result_;
};

/// Suspends the calling task for delay, any std::chrono duration (asyncio.sleep). sleep(0s)
/// yields once to the loop: the task runs again on the next iteration, after everything already
/// ready; so does a negative delay. The delay saturates: one too large for the loop's clock
/// (hours::max(), 300 years, +inf) sleeps until cancelled.
/// Cancellation: throws CancelledError at once; the timer is removed.
template <class Rep, class Period>
[[nodiscard]] SleepAwaiter sleep(std::chrono::duration<Rep, Period> delay) noexcept {
    return SleepAwaiter(std::chrono::nanoseconds(detail::saturated_ns(delay)));
}

/// Sleeps as sleep(delay), then yields result (asyncio.sleep(delay, result)).
///
///     int v = co_await coring::sleep(1s, 42); // 42
template <class Rep, class Period, class T>
[[nodiscard]] SleepResultAwaiter<std::decay_t<T>> sleep(std::chrono::duration<Rep, Period> delay,
                                                        T&& result) {
    return SleepResultAwaiter<std::decay_t<T>>(
            std::chrono::nanoseconds(detail::saturated_ns(delay)), std::forward<T>(result));
}

/// Suspends the calling task until the loop's clock reaches when, a time point of the loop's
/// clock in any unit. A time point already past yields once; one past the clock's range
/// (max()) sleeps until cancelled.
/// Throws: RuntimeError when no loop is running.
template <class Dur>
[[nodiscard]] SleepAwaiter sleep_until(std::chrono::time_point<EventLoop::clock, Dur> when) {
    EventLoop& loop = get_running_loop();
    std::int64_t deadline = detail::saturated_ns(when);
    std::int64_t now = detail::LoopAccess::now_ns(loop);
    // now >= 0, so deadline - now cannot overflow once deadline > now.
    std::int64_t delay = deadline == detail::never_ns ? detail::never_ns
                         : deadline <= now            ? 0
                                                      : deadline - now;
    return SleepAwaiter(std::chrono::nanoseconds(delay));
}

} // namespace coring
