// SPDX-License-Identifier: MIT
// sleep(): suspend the calling task for a while (asyncio.sleep).
#pragma once

#include <coring/event_loop.hpp>

#include <coring/detail/task_base.hpp>
#include <coring/detail/timer_heap.hpp>

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <string>
#include <type_traits>

namespace coring {

/// Awaiter of sleep(): a timer node in the sleeping coroutine's frame, so sleeping allocates
/// nothing. Cancelling the task removes the timer and resumes it with CancelledError.
class [[nodiscard]] SleepAwaiter final : private detail::TimerNode, public detail::Waiter {
public:
    explicit SleepAwaiter(std::chrono::nanoseconds delay) noexcept
        : TimerNode(&SleepAwaiter::fire), delay_(delay) {}

    SleepAwaiter(SleepAwaiter&& other) noexcept
        : TimerNode(&SleepAwaiter::fire), delay_(other.delay_) {}

    ~SleepAwaiter() {
        if (is_queued()) {
            task_->loop()->remove_timer(*this);
        }
    }

    bool await_ready() const noexcept { return false; }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        static_assert(std::is_base_of_v<detail::TaskBase, Promise>,
                      "coring::sleep must be awaited from a coring::Task coroutine");
        task_ = h.promise().task_;
        if (delay_.count() <= 0) {
            // sleep(0): a bare yield, as asyncio's __sleep0.
            task_->suspend_yield(h, &h.promise());
            return;
        }
        EventLoop& loop = *task_->loop();
        loop.add_timer(*this, loop.now_ns() + delay_.count());
        task_->suspend_on(h, &h.promise(), *this);
    }

    void await_resume() {
        if (cancelled_) {
            task_->throw_cancelled();
        }
        task_->throw_if_cancel_pending();
    }

    bool cancel(const std::string&) noexcept override {
        if (!is_queued()) {
            return false; // already fired: the task is scheduled to wake
        }
        task_->loop()->remove_timer(*this);
        cancelled_ = true;
        task_->wake();
        return true;
    }

    void describe(std::string& out) const override;

private:
    static void fire(detail::TimerNode* node, bool discard) noexcept {
        if (!discard) {
            static_cast<SleepAwaiter&>(*node).task_->wake();
        }
    }

    bool cancelled_ = false; // first, so it can sit in TimerNode's tail padding
    std::chrono::nanoseconds delay_;
    detail::TaskBase* task_ = nullptr;
};

/// Suspends the calling task for delay (asyncio.sleep). sleep(0s) yields once to the loop: the
/// task runs again on the next iteration, after everything already ready.
/// Cancellation: throws CancelledError at once; the timer is removed.
template <class Rep, class Period>
[[nodiscard]] SleepAwaiter sleep(std::chrono::duration<Rep, Period> delay) noexcept {
    return SleepAwaiter(std::chrono::duration_cast<std::chrono::nanoseconds>(delay));
}

/// Suspends the calling task until the loop's clock reaches when.
[[nodiscard]] inline SleepAwaiter sleep_until(EventLoop::time_point when) {
    EventLoop& loop = get_running_loop();
    return SleepAwaiter(std::chrono::duration_cast<std::chrono::nanoseconds>(when - loop.time()));
}

} // namespace coring
