// SPDX-License-Identifier: MIT
// Private to the library: the state of an EventLoop's debugging tools (watchdog, metrics, trace),
// created only while one of them is on; the loop, tasks and callbacks call its hooks.
#pragma once

#include <coring/event_loop.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace coring::detail {

class Watchdog;
class TraceWriter;

/// Metric counters (see coring::LoopMetrics).
struct MetricCounters {
    std::uint64_t iterations_at_start = 0;
    std::size_t ready_max = 0;
    std::uint64_t callbacks_run = 0;
    std::int64_t callback_ns = 0;
    std::int64_t wait_ns = 0;
    std::uint64_t timers_fired = 0;
    std::int64_t lag_last_ns = 0;
    std::int64_t lag_max_ns = 0;
    std::uint64_t lag_samples = 0;
    std::uint64_t ops_submitted = 0;
    std::uint64_t ops_completed = 0;
    std::uint64_t submitted_by_op[256] = {};
    std::uint64_t in_flight_by_op[256] = {};
};

class LoopDebug {
public:
    explicit LoopDebug(EventLoop& loop);
    LoopDebug(const LoopDebug&) = delete;
    LoopDebug& operator=(const LoopDebug&) = delete;
    ~LoopDebug();

    bool any_on() const noexcept {
        return metrics_on_ || watchdog_ != nullptr || trace_ != nullptr;
    }

    // ---- hooks called by the loop (only while this exists) ----

    /// Around the kernel wait of an iteration (step 1 of run_once).
    void wait_begin() noexcept;
    void wait_end() noexcept;

    /// A tracked SQE (Ring's track hook) and a completion being delivered.
    void on_track(const io_uring_sqe* sqe, Completion* c) noexcept;
    void on_complete(Completion* c, int res, unsigned flags) noexcept;

    /// A due timer is being fired.
    void on_timer() noexcept;

    /// Before and after one ready entry runs (n: entries ready at the start of the phase).
    void run_phase_begin(std::size_t n) noexcept;
    void entry_begin() noexcept;
    void entry_end() noexcept;

    /// A callback (Handle) is about to run / has run; name is its type.
    void callback_begin(const std::type_info& type) noexcept;
    void callback_end() noexcept;

    /// Task events; stack is describe_stack() at the step's start (empty unless wanted).
    bool wants_task_stack() const noexcept { return watchdog_ != nullptr; }

    void task_created(const TaskBase& t) noexcept;
    void task_step_begin(const TaskBase& t, const std::string& stack) noexcept;
    void task_step_end() noexcept;
    void task_done(const TaskBase& t) noexcept;

    // ---- the tools ----

    void set_metrics(bool on);
    void set_lag_probe(std::int64_t interval_ns);
    LoopMetrics metrics() const;

    void set_watchdog(std::int64_t threshold_ns, int fd);
    std::int64_t watchdog_threshold_ns() const noexcept;

    void start_trace(const std::string& path);
    void stop_trace() noexcept;

    /// Stops the watchdog and the lag probe and ends the trace (the loop is closing).
    void close() noexcept;

private:
    void schedule_lag_probe();
    void update_hook() noexcept;

    EventLoop& loop_;
    bool metrics_on_ = false;
    MetricCounters m_;
    std::unordered_map<const Completion*, std::uint8_t> op_of_; // in flight, metrics or trace on
    std::int64_t lag_interval_ns_ = 0;
    std::int64_t lag_due_ns_ = 0;
    TimerHandle lag_timer_;
    std::int64_t entry_t0_ = 0;
    std::int64_t wait_t0_ = -1; // wait_begin's time; -1: no wait begun
    std::unique_ptr<Watchdog> watchdog_;
    std::unique_ptr<TraceWriter> trace_;
};

} // namespace coring::detail
