// SPDX-License-Identifier: MIT
// Test helpers without a test-framework dependency: virtual time, running until idle
// (asyncio's test_utils.TestLoop).
#pragma once

#include <coring/event_loop.hpp>

#include <coring/detail/deadline.hpp>

#include <chrono>
#include <cstddef>

namespace coring::testing {

/// Puts a loop on virtual time for its lifetime: whenever the loop has nothing to do but wait
/// for a timer, its clock jumps to that timer instead of sleeping, so a test of a 10-minute
/// timeout runs in microseconds and in a deterministic order. While kernel operations are in
/// flight the loop waits for them in real time, as usual.
class VirtualClock {
public:
    explicit VirtualClock(EventLoop& loop) noexcept : loop_(loop), was_(loop.virtual_time()) {
        loop_.set_virtual_time(true);
    }

    VirtualClock(const VirtualClock&) = delete;
    VirtualClock& operator=(const VirtualClock&) = delete;

    ~VirtualClock() { loop_.set_virtual_time(was_); }

    /// Moves the clock forward by d (any std::chrono duration) without waiting; due timers fire
    /// on the next iteration. Saturates: a huge d makes every finite deadline due but never a
    /// never-due one (a saturated huge delay); a negative d does nothing (the clock is monotonic).
    template <class Rep, class Period>
    void advance(std::chrono::duration<Rep, Period> d) noexcept {
        loop_.advance_time_ns(detail::saturated_ns(d));
    }

    /// The loop's current (virtual) time.
    EventLoop::time_point now() const noexcept { return loop_.time(); }

private:
    EventLoop& loop_;
    bool was_;
};

/// Runs loop iterations until nothing is ready, or max_iterations were run; returns how many
/// ran. Timers and operations in flight do not count as ready: they stay pending.
/// Throws: RuntimeError when the loop is closed or running.
std::size_t run_until_idle(EventLoop& loop, std::size_t max_iterations = 1'000'000);

} // namespace coring::testing
