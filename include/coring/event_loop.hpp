// SPDX-License-Identifier: MIT
// EventLoop: one io_uring, a ready queue and a timer heap (asyncio.events / base_events).
#pragma once

#include <coring/backend.hpp>
#include <coring/errors.hpp>

#include <coring/detail/deadline.hpp>
#include <coring/detail/loop_core.hpp>
#include <coring/detail/owned_op.hpp>
#include <coring/detail/ref.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace coring {

class EventLoop;
class Executor;
struct LoopMetrics;

namespace testing {
std::size_t run_until_idle(EventLoop& loop, std::size_t max_iterations);
} // namespace testing

namespace detail {
class LoopAccess;
} // namespace detail

/// What went wrong, as passed to an exception handler (asyncio's context dict).
struct ExceptionContext {
    /// What happened, e.g. "Task exception was never retrieved".
    std::string message;
    /// The exception, when there is one.
    std::exception_ptr exception;
    /// Name of the task involved ("Task-3"), or empty.
    std::string task;
    /// Where the task or callback came from ("file.cpp:42 in worker"), or empty.
    std::string source;
};

/// Receives errors nobody else can: failed callbacks, exceptions never retrieved, ...
/// Must not throw; if it does, the default handler reports that too.
using ExceptionHandler = std::function<void(EventLoop&, const ExceptionContext&)>;

/// Construction parameters of an EventLoop.
struct EventLoopOptions {
    /// Size of the io_uring submission queue. A full queue is flushed, never an error.
    unsigned ring_entries = 1024;
    /// Debug mode; when unset, on if the environment variable CORING_DEBUG is set to 1.
    std::optional<bool> debug;
    /// The fd of another loop's ring (EventLoop::ring().fd()) whose kernel worker pool (io-wq)
    /// this loop's ring shares (IORING_SETUP_ATTACH_WQ); -1: a pool of its own. A ring the
    /// kernel refuses to attach gets a pool of its own.
    int attach_wq_fd = -1;
    /// The I/O backend; when unset, the environment variable CORING_BACKEND ("uring" or
    /// "epoll"), else io_uring, falling back to epoll where io_uring is refused.
    std::optional<Backend> backend{};
};

/// A callback scheduled with call_soon (asyncio.Handle). Copies share the callback.
/// Thread safety: cancel() only on the loop's thread; copies may be dropped on any thread.
class Handle {
public:
    Handle() noexcept = default;
    Handle(const Handle& other) noexcept; // defaulted in event_loop.cpp: HandleState is complete
    Handle(Handle&& other) noexcept = default;

    Handle& operator=(Handle other) noexcept {
        state_.swap(other.state_);
        return *this;
    }

    ~Handle();

    /// Stops the callback from running, if it has not run yet. Calling it again does nothing.
    void cancel() noexcept;

    /// Whether cancel() was called.
    bool cancelled() const noexcept;

    /// Whether this refers to a callback (a default-constructed Handle does not).
    explicit operator bool() const noexcept { return static_cast<bool>(state_); }

protected:
    friend class EventLoop;

    explicit Handle(detail::HandleState* state) noexcept : state_(detail::adopt_ref, state) {}

    detail::Ref<detail::HandleState> state_;
};

/// A callback scheduled with call_later or call_at (asyncio.TimerHandle).
class TimerHandle : public Handle {
public:
    TimerHandle() noexcept = default;

    /// When the callback is due, on the loop's clock.
    std::chrono::steady_clock::time_point when() const noexcept;

private:
    friend class EventLoop;

    explicit TimerHandle(detail::HandleState* state) noexcept : Handle(state) {}
};

/// asyncio's event loop over one io_uring. Runs on one thread at a time; a loop that uses
/// IORING_SETUP_SINGLE_ISSUER stays bound to the first thread that runs it.
///
/// Every iteration is asyncio's `_run_once`: submit queued operations and wait for completions
/// (one io_uring_enter; no wait if something is ready, else until the nearest timer), turn
/// completions into ready entries in completion order, move due timers to the ready queue in
/// deadline order, then run exactly the entries that were ready when the pass began.
///
/// Thread safety: only call_soon_threadsafe may be called from other threads.
class EventLoop : private detail::LoopCore {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    using duration = clock::duration;

    /// Creates a loop with its own io_uring.
    /// Throws: RuntimeError naming the cause and the fix when io_uring is unavailable.
    EventLoop();
    explicit EventLoop(const EventLoopOptions& options);

    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    /// Closes the loop if it is not closed yet.
    ~EventLoop();

    /// Runs until aw (a Task, a TaskHandle, a Future or any awaitable) is done and returns its
    /// result or rethrows its exception. A Task is wrapped in a task first. Defined in task.hpp.
    /// Throws: RuntimeError when the loop is closed or already running, or when stop() ended
    /// the run before aw finished.
    template <class Aw>
    decltype(auto) run_until_complete(Aw&& aw);

    /// Runs until stop() is called.
    /// Throws: RuntimeError when the loop is closed or already running, or when another loop is
    /// running on this thread.
    void run_forever();

    /// Stops run_forever after the current iteration (before it starts, if not running: then
    /// the next run polls I/O once, runs what is ready and returns).
    void stop() noexcept { stopping_ = true; }

    /// Closes the loop: cancels and drains operations still in the kernel, drops pending
    /// callbacks and timers, destroys pending tasks (each reported as "Task was destroyed but it
    /// is pending!"). Idempotent. Throws: RuntimeError when the loop is running.
    void close();

    bool is_running() const noexcept { return running_; }

    bool is_closed() const noexcept { return closed_; }

    static_assert(std::is_same_v<duration, std::chrono::nanoseconds>,
                  "the loop keeps deadlines as int64 nanoseconds of its clock");

    /// The loop's monotonic clock (asyncio's loop.time()).
    time_point time() const noexcept { return from_ns(now_ns()); }

    /// Schedules f(args...) to run on a later iteration, after what is already ready (FIFO).
    template <class F, class... Args>
    Handle call_soon(F&& f, Args&&... args) {
        detail::HandleState* s = make_handle(std::forward<F>(f), std::forward<Args>(args)...);
        s->add_ref();
        ready_.push({&detail::HandleState::run_entry, s});
        return Handle(s);
    }

    /// Schedules f(args...) to run once delay (any std::chrono duration) has passed, that is at
    /// the deadline time() + delay (asyncio's loop.call_later). Timers run in deadline order,
    /// equal deadlines in the order they were scheduled. A zero or negative delay gives a
    /// deadline that is already due, in the past for a negative one: the callback runs on the
    /// next iteration, after timers with still earlier deadlines. Deadlines saturate: a delay
    /// too large for the clock (hours::max(), 300 years, +inf) means never, one too negative
    /// means the earliest possible deadline.
    template <class Rep, class Period, class F, class... Args>
    TimerHandle call_later(std::chrono::duration<Rep, Period> delay, F&& f, Args&&... args) {
        return schedule_timer_handle(detail::deadline_after(now_ns(), delay),
                                     std::forward<F>(f),
                                     std::forward<Args>(args)...);
    }

    /// Schedules f(args...) to run at when, a point on this loop's clock (time()) in any unit
    /// (asyncio's loop.call_at). A time point past the clock's range saturates: max() never
    /// comes, min() is due at once.
    template <class Dur, class F, class... Args>
    TimerHandle call_at(std::chrono::time_point<clock, Dur> when, F&& f, Args&&... args) {
        return schedule_timer_handle(
                detail::saturated_ns(when), std::forward<F>(f), std::forward<Args>(args)...);
    }

    /// Like call_soon, from any thread (asyncio's loop.call_soon_threadsafe). Called on the
    /// thread running this loop it is exactly call_soon, so it keeps FIFO order with call_soon
    /// there; from another thread it wakes the loop through its io_uring and the callback joins
    /// the ready queue when the loop wakes.
    /// Throws: RuntimeError when the loop is closed.
    /// Thread safety: safe from any thread.
    template <class F, class... Args>
    Handle call_soon_threadsafe(F&& f, Args&&... args) {
        if (running_loop_ == this) {
            // The loop's own thread (running_loop_ is thread-local): the ready queue is ours.
            return call_soon(std::forward<F>(f), std::forward<Args>(args)...);
        }
        detail::HandleState* s =
                make_handle_unchecked(std::forward<F>(f), std::forward<Args>(args)...);
        Handle h(s);
        threadsafe_->push(s);
        return h;
    }

    /// Watches fd and calls callback(args...) on this loop whenever fd is readable (asyncio's
    /// loop.add_reader). Level-triggered, as asyncio's selector loop: while fd stays readable
    /// (a callback read only part of the data) the callback runs again on later iterations.
    /// Adding again for the same fd replaces the callback. The callback is scheduled like a
    /// call_soon callback, in completion order; what it throws goes to the exception handler and
    /// the registration stays. A reader and a writer of one fd are independent. Remove the
    /// registration before closing fd: see coring/readiness.hpp for what happens otherwise.
    /// Throws: RuntimeError("Event loop is closed"); std::system_error: EBADF when fd is not
    /// an open file descriptor, EPERM for a regular file or a directory (as epoll).
    template <class F, class... Args>
    void add_reader(int fd, F&& callback, Args&&... args) {
        add_fd_callback(fd,
                        false,
                        make_fd_callback(std::forward<F>(callback), std::forward<Args>(args)...));
    }

    /// Like add_reader, for writability (asyncio's loop.add_writer).
    template <class F, class... Args>
    void add_writer(int fd, F&& callback, Args&&... args) {
        add_fd_callback(
                fd, true, make_fd_callback(std::forward<F>(callback), std::forward<Args>(args)...));
    }

    /// Stops watching fd for readability (asyncio's loop.remove_reader): returns true when a
    /// reader was registered, false otherwise (also on a closed loop). A callback already
    /// scheduled does not run. Works after fd was closed, and releases the kernel's reference
    /// to the file then.
    bool remove_reader(int fd) noexcept { return remove_fd_callback(fd, false); }

    /// Like remove_reader, for the writer (asyncio's loop.remove_writer).
    bool remove_writer(int fd) noexcept { return remove_fd_callback(fd, true); }

    /// Sets the handler called for errors nobody else can receive; nullptr restores the default.
    void set_exception_handler(ExceptionHandler handler) { handler_ = std::move(handler); }

    /// The handler set with set_exception_handler, or empty.
    const ExceptionHandler& get_exception_handler() const noexcept { return handler_; }

    /// Logs the context at error level through coring::log (asyncio's default handler).
    void default_exception_handler(const ExceptionContext& context) noexcept {
        log_exception(context);
    }

    /// What default_exception_handler does, for reports that no longer have a loop.
    static void log_exception(const ExceptionContext& context) noexcept;

    /// Passes context to the handler, or to the default handler when none is set. Never throws.
    void call_exception_handler(const ExceptionContext& context) noexcept;

    /// Debug mode: reports callbacks and task steps slower than slow_callback_duration(), and
    /// coroutines that were created but never awaited.
    void set_debug(bool enabled) noexcept {
        debug_ = enabled;
        update_instrumented();
    }

    bool get_debug() const noexcept { return debug_; }

    /// Threshold for debug mode's slow-callback warning (default 100 ms).
    duration slow_callback_duration() const noexcept { return slow_callback_duration_; }

    void set_slow_callback_duration(duration d) noexcept { slow_callback_duration_ = d; }

    /// Wraps aw in a task scheduled on this loop (asyncio's loop.create_task). Defined in
    /// task.hpp. Unlike coring::create_task it works before the loop runs.
    template <class Aw>
    auto create_task(Aw&& aw, std::string_view name = {});

    /// Runs fn(args...) on executor (the loop's default ThreadPoolExecutor when null) and
    /// returns a Future of its result on this loop (asyncio's loop.run_in_executor); the loop
    /// need not be running yet. Defined in executor.hpp, which also has the free function
    /// coring::run_in_executor for the running loop.
    /// Throws: RuntimeError("Event loop is closed") when the loop is closed; RuntimeError when
    /// the default executor was shut down.
    template <class F, class... Args>
    [[nodiscard]] auto run_in_executor(Executor* executor, F&& fn, Args&&... args);

    /// The loop running on this thread, or nullptr.
    static EventLoop* running() noexcept { return running_loop_; }

    // ---- Embedding in a foreign event loop (glib, Qt, a plain poll/epoll loop). ----

    /// A file descriptor that becomes readable whenever this loop may have work to do (an
    /// eventfd registered with its io_uring). A host loop polls it for reading, and calls
    /// run_ready() when it is readable or when next_timeout() has passed. The first call binds
    /// the loop to the calling thread: drive the loop from that thread only. The fd belongs to
    /// the loop (do not close it).
    /// Throws: RuntimeError when the loop is closed or the fd cannot be set up.
    int poll_fd();

    /// Runs one iteration without blocking: submits queued operations, takes the completions
    /// and timers that are due, and runs what is ready (asyncio's stop() + run_forever()).
    /// Throws: as run_forever.
    void run_ready();

    /// How long a host loop may sleep before calling run_ready() again (with poll_fd() watched
    /// for reading meanwhile): zero when work is ready now, the time to the nearest timer, or
    /// nullopt when only I/O (poll_fd) can bring work.
    std::optional<duration> next_timeout() const noexcept;

    // ---- Cross-loop messages (IORING_OP_MSG_RING). ----

    /// Whether posts from this loop's thread to other loops (call_soon_threadsafe, LoopGroup's
    /// run_on/post, LoopChannel wake-ups) may go as IORING_OP_MSG_RING CQEs into the other
    /// loop's ring (the default when the kernel supports the opcode) rather than through the
    /// other loop's eventfd. False after the kernel refused such a message.
    bool msg_ring() const noexcept { return msg_ring_ok_; }

    /// Turns the MSG_RING path of posts from this loop off (false) or back on where the kernel
    /// supports it (true).
    void set_msg_ring(bool enabled) noexcept {
        msg_ring_ok_ = enabled && ring_.supports(IORING_OP_MSG_RING);
    }

    /// Posts sent from this loop as IORING_OP_MSG_RING so far, and of those the ones the kernel
    /// refused (delivered through the eventfd instead).
    std::uint64_t messages_sent() const noexcept { return messages_sent_; }

    std::uint64_t messages_refused() const noexcept { return messages_refused_; }

    /// Posts received from other loops as CQEs so far (one CQE carries the posts one loop made
    /// to this one during one iteration).
    std::uint64_t messages_received() const noexcept { return messages_received_; }

    /// The name used in reports (e.g. "loop 1 of a LoopGroup"); empty by default.
    const std::string& name() const noexcept { return name_; }

    void set_name(std::string name) { name_ = std::move(name); }

    /// "loop 'name'" or "loop 0x7f..." for error messages.
    std::string describe() const;

    // ---- Debugging tools (coring/debug.hpp, coring/metrics.hpp; defined in loop_debug.cpp) ----

    /// Blocking-call watchdog: a watcher thread reports every callback or task step that runs
    /// longer than threshold while it is still running: the task's name and async stack and the
    /// loop thread's native backtrace, written to fd (stderr by default). Zero or negative turns
    /// it off. Also on when the environment variable CORING_WATCHDOG is a number of
    /// milliseconds when the loop is created, and in debug mode (see debug_watchdog_threshold)
    /// unless this or CORING_WATCHDOG chose otherwise. See coring/debug.hpp for the details.
    void set_watchdog(duration threshold, int fd = 2);

    /// The watchdog's threshold in debug mode when neither set_watchdog nor CORING_WATCHDOG set
    /// one: it starts when the loop next runs in debug mode and stops when it next runs without.
    static constexpr std::chrono::seconds debug_watchdog_threshold{1};

    /// The watchdog's threshold, or zero when it is off.
    duration watchdog() const noexcept;

    /// Loop metrics (coring/metrics.hpp): iterations, ready-queue length, time in callbacks and
    /// in the kernel, operations by kind, timer lag. Off by default (then they cost nothing);
    /// also on when the environment variable CORING_METRICS is set to 1. Turning them on
    /// resets them.
    void set_metrics(bool enabled);

    /// Measures the loop's lag: a timer every interval notes how late it ran (metrics().lag_*).
    /// Turns metrics on; zero or negative stops the probe.
    void set_lag_probe(duration interval);

    /// A snapshot of the loop metrics (all zero while off). Include coring/metrics.hpp.
    LoopMetrics metrics() const;

    /// Writes a Chrome trace-event JSON timeline of tasks, callbacks, timers and I/O to path
    /// (Perfetto, chrome://tracing), completed when stop_trace() is called or the loop closes.
    /// Also started by the environment variable CORING_TRACE=path when the loop is created.
    /// Throws: std::system_error when path cannot be opened.
    void start_trace(const std::string& path);

    /// Ends the trace: writes what is buffered and closes the file. Does nothing when off.
    void stop_trace() noexcept;

    // ---- Introspection, for tests and tools. ----

    /// The I/O backend this loop runs on.
    Backend backend() const noexcept { return ring_.backend(); }

    /// The task whose step is running, or nullptr.
    detail::TaskBase* current_task() const noexcept { return current_task_; }

    /// Whether anything is ready, scheduled or in flight.
    bool has_pending_work() const noexcept {
        return !ready_.empty() || !timers_.empty() || io_in_flight() > 0 || !flushes_.empty();
    }

    /// Number of ready entries, timers, kernel operations (excluding the loop's own wake-up).
    std::size_t ready_count() const noexcept { return ready_.size(); }

    std::size_t timer_count() const noexcept { return timers_.size(); }

    std::uint64_t io_in_flight() const noexcept {
        return ring_.in_flight() - (wake_op_.in_flight() ? 1 : 0) - background_io_;
    }

    /// Loop iterations run so far.
    std::uint64_t iteration_count() const noexcept { return iterations_; }

    /// Turns the loop's clock into virtual time (see coring::testing::VirtualClock): whenever the
    /// loop has nothing to do but wait for a timer, the clock jumps to the timer instead.
    void set_virtual_time(bool enabled) noexcept { virtual_time_ = enabled; }

    bool virtual_time() const noexcept { return virtual_time_; }

    /// Moves the clock forward by d without waiting (virtual time only). Saturates: a huge d
    /// makes every finite deadline due, never a never-due one; a negative d does nothing.
    void advance_time(duration d) noexcept { advance_time_ns(d.count()); }

private:
    friend class detail::LoopAccess;
    friend class detail::HandleState;
    friend class detail::Readiness;

    friend std::size_t testing::run_until_idle(EventLoop& loop, std::size_t max_iterations);

    // Marks the loop running on this thread for its lifetime (run_forever, run_until_idle);
    // defined in event_loop.cpp.
    class RunningScope;

    template <class F, class... Args>
    detail::HandleState* make_handle(F&& f, Args&&... args) {
        check_closed();
        return make_handle_unchecked(std::forward<F>(f), std::forward<Args>(args)...);
    }

    template <class F, class... Args>
    detail::HandleState* make_handle_unchecked(F&& f, Args&&... args) {
        using Bound =
                decltype(detail::bind_callback(std::forward<F>(f), std::forward<Args>(args)...));
        return new detail::CallbackHandleState<std::decay_t<Bound>>(
                this, detail::bind_callback(std::forward<F>(f), std::forward<Args>(args)...));
    }

    template <class F, class... Args>
    TimerHandle schedule_timer_handle(std::int64_t when_ns, F&& f, Args&&... args) {
        detail::HandleState* s = make_handle(std::forward<F>(f), std::forward<Args>(args)...);
        s->add_ref();
        s->when_ns_ = when_ns;
        timers_.push(*s, when_ns);
        return TimerHandle(s);
    }

    template <class F, class... Args>
    detail::HandleState* make_fd_callback(F&& f, Args&&... args) {
        using Bound = std::decay_t<decltype(detail::bind_callback(std::forward<F>(f),
                                                                  std::forward<Args>(args)...))>;
        static_assert(std::is_invocable_v<Bound&>,
                      "the callback must be callable with the arguments given");
        static_assert(
                !requires { typename std::invoke_result_t<Bound&>::promise_type; },
                "coroutines cannot be used as add_reader()/add_writer() callbacks; start a "
                "task from a plain callback, or co_await coring::wait_readable(fd)");
        return make_handle(std::forward<F>(f), std::forward<Args>(args)...);
    }

    // readiness.cpp: takes callback's reference, also when it throws.
    void add_fd_callback(int fd, bool writer, detail::HandleState* callback);
    bool remove_fd_callback(int fd, bool writer) noexcept;

    void check_closed() const;
    void arm_wakeup();
    // loop_debug.cpp
    void init_debug_from_env();
    void close_debug() noexcept;
    detail::LoopDebug& debug_state_or_create();

    void update_instrumented() noexcept { instrumented_ = debug_ || dbg_ != nullptr; }

    void drop_debug_if_unused() noexcept;
    void follow_debug_mode() noexcept; // starts or stops debug mode's watchdog
    void finish_iteration_hooked(detail::LoopDebug& dbg);
    void on_wakeup(int res, unsigned flags) noexcept;
    static void on_message(void* self, std::uint64_t payload) noexcept;
    static void on_message_sent(detail::Completion* c, int res, unsigned flags) noexcept;
    void finish_outgoing_messages() noexcept;
    void send_batches() noexcept;
    void on_message_sent_inline(detail::MessageSend& m, int res) noexcept;
    static void flush_batches(detail::FlushNode* node) noexcept;
    void drain_incoming_messages() noexcept;

    // Used by the API above and forwarded by detail::LoopAccess.
    std::int64_t now_ns() const noexcept {
        return detail::clock_ns(clock::now().time_since_epoch().count(), virtual_offset_ns_);
    }

    static time_point from_ns(std::int64_t ns) noexcept { return time_point(duration(ns)); }

    void advance_time_ns(std::int64_t d) noexcept {
        if (d > 0 && __builtin_add_overflow(virtual_offset_ns_, d, &virtual_offset_ns_)) {
            virtual_offset_ns_ = detail::never_ns;
        }
    }

    void register_future(detail::FutureBase& f) noexcept;
    static std::uint64_t next_task_id() noexcept;
    void report_slow_callback(const std::string& what, duration took) noexcept;
    void run_once();
    bool send_message(const std::shared_ptr<detail::ThreadsafeQueue>& target,
                      detail::HandleState* s);

    ExceptionHandler handler_;
    // The eventfd read that wakes the loop for call_soon_threadsafe (see ThreadsafeQueue).
    detail::OwnedOp<EventLoop, &EventLoop::on_wakeup> wake_op_{this};
    static inline thread_local constinit EventLoop* running_loop_ = nullptr;
};

/// The loop running on this thread (asyncio.get_running_loop()).
/// Throws: RuntimeError("no running event loop") when none is.
EventLoop& get_running_loop();

} // namespace coring

#include <coring/detail/loop_access.hpp>
