// SPDX-License-Identifier: MIT
// LoopAccess: what coring's own layers (awaiters, tasks, transports, executors) reach inside an
// EventLoop. Not API: users have EventLoop's public members. Included at the end of
// event_loop.hpp.
#pragma once

#include <coring/event_loop.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace coring::detail {

class LoopAccess {
public:
    /// The io_uring (or the epoll engine's stand-in) behind the loop.
    static Ring& ring(EventLoop& loop) noexcept { return loop.ring_; }

    /// Appends an entry to the ready queue.
    static void schedule(EventLoop& loop, ReadyEntry entry) { loop.ready_.push(entry); }

    /// Queues a timer for the loop's time when (nanoseconds on the loop clock).
    static void add_timer(EventLoop& loop, TimerNode& node, std::int64_t when_ns) {
        loop.timers_.push(node, when_ns);
    }

    static void remove_timer(EventLoop& loop, TimerNode& node) noexcept {
        loop.timers_.remove(node);
    }

    /// The task whose step is about to run (nullptr after it).
    static void set_current_task(EventLoop& loop, TaskBase* t) noexcept { loop.current_task_ = t; }

    /// Registers a Future or Task so close() can detach it.
    static void register_future(EventLoop& loop, FutureBase& f) noexcept {
        loop.register_future(f);
    }

    /// Visits every live (registered) future and task.
    template <class F>
    static void for_each_future(EventLoop& loop, F&& f) {
        loop.live_.for_each(std::forward<F>(f));
    }

    /// Registers loop-thread state held for another thread, or for kernel operations that no
    /// coroutine frame owns; close() releases it after the kernel has handed every operation
    /// back.
    static void register_resource(EventLoop& loop, LoopResource& r) noexcept {
        loop.resources_.push_back(r);
    }

    /// Runs node's function once at the start of the next iteration, just before the loop
    /// submits to the kernel, so that what tasks queued during this pass (several writes to one
    /// stream) becomes few SQEs sent with this iteration's io_uring_enter. Does nothing when node
    /// is queued already. A function that defers its own node again runs again in the same
    /// pass, so it may do so only when it has made progress.
    static void defer_flush(EventLoop& loop, FlushNode& node) noexcept {
        if (!node.is_linked()) {
            loop.flushes_.push_back(node);
        }
    }

    /// Counts (+1) or uncounts (-1) an operation that coring's own machinery keeps in flight for
    /// the loop's lifetime (the signalfd read), so that io_in_flight() leaves it out as it leaves
    /// out the wake-up read: it is nobody's pending work.
    static void count_background_io(EventLoop& loop, int delta) noexcept {
        loop.background_io_ =
                static_cast<std::uint64_t>(static_cast<std::int64_t>(loop.background_io_) + delta);
    }

    /// Next task number, for default names ("Task-N").
    static std::uint64_t next_task_id() noexcept { return EventLoop::next_task_id(); }

    /// time() in nanoseconds: never negative, always below never_ns.
    static std::int64_t now_ns(const EventLoop& loop) noexcept { return loop.now_ns(); }

    /// The time point for nanoseconds on the loop clock; never_ns gives time_point::max().
    static EventLoop::time_point from_ns(std::int64_t ns) noexcept {
        return EventLoop::from_ns(ns);
    }

    /// advance_time in nanoseconds.
    static void advance_time_ns(EventLoop& loop, std::int64_t d) noexcept {
        loop.advance_time_ns(d);
    }

    /// Runs exactly one iteration (asyncio's _run_once). For tests and run_until_idle.
    static void run_once(EventLoop& loop) { loop.run_once(); }

    /// The loop's cross-thread door, for code that posts from other threads and may outlive
    /// the loop (executors). Thread safety: safe from any thread.
    static const std::shared_ptr<ThreadsafeQueue>&
    threadsafe_queue(const EventLoop& loop) noexcept {
        return loop.threadsafe_;
    }

    /// For ThreadsafeQueue::push on this loop's thread: adds s (one more reference) to the batch
    /// for target that leaves as one IORING_OP_MSG_RING SQE when this loop next enters the
    /// kernel. False when this loop cannot (path off, not running) or target does not accept
    /// messages; s is untouched then.
    static bool
    send_message(EventLoop& loop, const std::shared_ptr<ThreadsafeQueue>& target, HandleState* s) {
        return loop.send_message(target, s);
    }

    /// The default executor (executor.hpp), created on first use, and whether it was shut down.
    static std::shared_ptr<Executor>& default_executor(EventLoop& loop) noexcept {
        return loop.default_executor_;
    }

    static bool& executor_shutdown_called(EventLoop& loop) noexcept {
        return loop.executor_shutdown_called_;
    }

    /// Debug mode's warning: "Executing <what> took 0.150 seconds".
    static void report_slow_callback(EventLoop& loop,
                                     const std::string& what,
                                     std::chrono::nanoseconds took) noexcept {
        loop.report_slow_callback(what, took);
    }

    /// The state of the debugging tools, null while all are off.
    static LoopDebug* debug_state(const EventLoop& loop) noexcept { return loop.dbg_; }

    /// Whether debug mode or any debugging tool is on: task steps and callbacks take the
    /// instrumented path (one branch on this flag when off).
    static bool instrumented(const EventLoop& loop) noexcept { return loop.instrumented_; }
};

} // namespace coring::detail
