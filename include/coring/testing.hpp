// SPDX-License-Identifier: MIT
// Test helpers without a test-framework dependency: virtual time, running until idle, stepping to
// the next timer (asyncio's test_utils.TestLoop), and a checked run of a test coroutine that finds
// what it leaves behind (IsolatedAsyncioTestCase's loop per test, plus leak checks).
#pragma once

#include <coring/event_loop.hpp>
#include <coring/task.hpp>

#include <coring/detail/deadline.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace coring::testing {

/// Runs loop iterations until nothing is ready, or max_iterations were run; returns how many
/// ran. Timers and operations in flight do not count as ready: they stay pending.
/// Throws: RuntimeError when the loop is closed or running.
std::size_t run_until_idle(EventLoop& loop, std::size_t max_iterations = 1'000'000);

/// Runs what is ready (run_until_idle), then, if a timer is scheduled, moves the loop's clock to
/// the earliest timer's deadline and runs the iteration that fires it (its callback, or the
/// wake-up of the task sleeping on it; what that schedules waits for the next iteration).
/// Returns the loop's new time, or nullopt when no timer was scheduled (the clock does not
/// move). Timers that never come due (a saturated huge delay) are not waited for: when only
/// they remain, the clock moves to the last finite instant and the result is nullopt. On
/// virtual time the clock jumps; on real time the call sleeps until the deadline. While kernel
/// operations are in flight the loop waits for them in real time, as VirtualClock does, and the
/// iteration may end on a completion instead of the timer.
/// Throws: RuntimeError when the loop is closed or running.
std::optional<EventLoop::time_point> advance_to_next_timer(EventLoop& loop);

/// Puts a loop on virtual time for its lifetime: whenever the loop has nothing to do but wait
/// for a timer, its clock jumps to that timer instead of sleeping, so a test of a 10-minute
/// timeout runs in microseconds and in a deterministic order. While kernel operations are in
/// flight the loop waits for them in real time, as usual. The virtual clock is the real clock
/// plus the jumps so far: it still moves by itself between two statements, so compare times
/// with a margin, or schedule at absolute time points (call_at, sleep_until) for exact ones.
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
        detail::LoopAccess::advance_time_ns(loop_, detail::saturated_ns(d));
    }

    /// advance(d), then one iteration that fires the timers now due without waiting, then
    /// run_until_idle: what became due has run, and what it scheduled too (asyncio TestLoop's
    /// advance_time followed by a run of the loop). Returns the iterations run.
    /// Throws: RuntimeError when the loop is closed or running.
    template <class Rep, class Period>
    std::size_t advance_and_run(std::chrono::duration<Rep, Period> d) {
        advance(d);
        loop_.stop(); // a stopped run_forever runs one iteration that polls and does not wait
        loop_.run_forever();
        return 1 + testing::run_until_idle(loop_);
    }

    /// testing::advance_to_next_timer on this clock's loop.
    std::optional<EventLoop::time_point> advance_to_next_timer() {
        return testing::advance_to_next_timer(loop_);
    }

    /// testing::run_until_idle on this clock's loop.
    std::size_t run_until_idle() { return testing::run_until_idle(loop_); }

    /// The loop's current (virtual) time.
    EventLoop::time_point now() const noexcept { return loop_.time(); }

    /// now() as a duration since the clock's epoch, handy for assertions on elapsed time.
    EventLoop::duration since_epoch() const noexcept { return now().time_since_epoch(); }

private:
    EventLoop& loop_;
    bool was_;
};

// ---- Leak checks (the ones the library's own test suite runs after every test case) ----

/// The descriptors open in this process now (from /proc/self/fd), in ascending order.
std::vector<int> open_fds();

/// What a descriptor refers to ("socket:[123]", "/tmp/x", "anon_inode:[io_uring]").
std::string fd_target(int fd);

/// Reaps and returns the children that had already exited but were never waited for ("child 42
/// exited but was never reaped"), then appends "a child process is still running" when a child
/// is still alive. Empty when there are none.
std::vector<std::string> leftover_children();

/// What run_checked checks and how it runs the test coroutine. Trivially destructible, so a
/// braced temporary may be passed at a co_await (docs/pitfalls.md).
struct CheckedRunOptions {
    /// Run on virtual time (VirtualClock) instead of the real clock.
    bool virtual_time = true;
    /// The loop's debug mode: on by default (as IsolatedAsyncioTestCase does); nullopt leaves
    /// the loop's own default (CORING_DEBUG=1 in the environment).
    std::optional<bool> debug = true;
    /// Report tasks still pending when the test coroutine returns.
    bool check_tasks = true;
    /// Report every call of the loop's exception handler (exceptions never retrieved, failing
    /// callbacks, tasks destroyed while pending). A setup that installs its own handler replaces
    /// this check.
    bool check_exception_handler = true;
    /// Report descriptors open after the loop closed that were not open before it was made.
    bool check_fds = true;
    /// Report child processes left running or unreaped.
    bool check_children = true;
};

static_assert(std::is_trivially_destructible_v<CheckedRunOptions>);

/// What run_checked found.
struct CheckedRunResult {
    /// One readable line per problem; empty when the run was clean.
    std::vector<std::string> problems;
    /// The test coroutine's own exception (e.g. a failed assertion), to rethrow; null if none.
    std::exception_ptr error;
};

/// Runs the coroutine made by make() as the main task of a fresh loop ("test-main"), then
/// cancels and drains what it left, closes the loop and checks what options asks for. setup, if
/// given, runs on the new loop before the main task is created. Never throws what the test
/// coroutine throws: that is returned in error.
CheckedRunResult run_checked(const std::function<Task<>()>& make,
                             const CheckedRunOptions& options = {},
                             const std::function<void(EventLoop&)>& setup = {});

} // namespace coring::testing
