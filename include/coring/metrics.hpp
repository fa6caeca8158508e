// SPDX-License-Identifier: MIT
// Loop metrics: iterations, ready queue, time in callbacks and in the kernel, timer lag and
// io_uring operations by kind (what aiomonitor and loop-lag probes give an asyncio program).
#pragma once

#include <coring/event_loop.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace coring {

/// A count per io_uring operation kind.
struct OpCount {
    /// The IORING_OP_* opcode.
    unsigned opcode = 0;
    /// Its name without the prefix ("RECV", "TIMEOUT"), or "OP_<n>" for one coring does not know.
    std::string name;
    std::uint64_t count = 0;
};

/// A snapshot of an event loop's metrics (EventLoop::metrics()), counted since they were turned
/// on with EventLoop::set_metrics(true), set_lag_probe or CORING_METRICS=1. Times are on the
/// loop's clock, so on virtual time (coring::testing::VirtualClock) the time spent waiting for a
/// timer is the virtual time skipped.
struct LoopMetrics {
    /// Whether metrics are on; everything else is zero when they are not.
    bool enabled = false;
    /// Loop iterations (asyncio's _run_once passes).
    std::uint64_t iterations = 0;
    /// Entries in the ready queue now, and the most seen at the start of an iteration's run phase.
    std::size_t ready_now = 0;
    std::size_t ready_max = 0;
    /// Ready entries run (task steps, callbacks, done callbacks).
    std::uint64_t callbacks_run = 0;
    /// Time spent running ready entries.
    std::chrono::nanoseconds callback_time{0};
    /// Time spent in io_uring_enter submitting and waiting for completions or a timer.
    std::chrono::nanoseconds wait_time{0};
    /// Timers that fired.
    std::uint64_t timers_fired = 0;
    /// The lag probe (EventLoop::set_lag_probe): how late its timer ran, last and worst, and how
    /// often it ran.
    std::chrono::nanoseconds lag_last{0};
    std::chrono::nanoseconds lag_max{0};
    std::uint64_t lag_samples = 0;
    /// io_uring operations submitted, and completed (final completions).
    std::uint64_t ops_submitted = 0;
    std::uint64_t ops_completed = 0;
    /// Operations in the kernel now (submitted while metrics were on), by kind; kinds with none
    /// are left out. The loop's own wake-up read (a READ of its eventfd, armed when it starts
    /// running) is one of them.
    std::vector<OpCount> in_flight_by_op;
    /// Operations submitted, by kind.
    std::vector<OpCount> submitted_by_op;
};

/// The name of an IORING_OP_* opcode without its prefix ("READ", "RECV"), or "OP_<n>".
std::string opcode_name(unsigned opcode);

/// A multi-line human-readable rendering of m:
///
///     loop metrics: 1204 iterations, 3 ready now (max 57), 5230 run in 12.301 ms, 1.002 s
///     waiting in the kernel, 40 timers fired, lag 0.104 ms (max 2.310 ms, 10 samples)
///     io_uring: 130 submitted, 128 completed, in flight: RECV 2
std::string to_string(const LoopMetrics& m);

} // namespace coring
