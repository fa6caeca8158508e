// SPDX-License-Identifier: MIT
// EventLoop: one io_uring, a ready queue and a timer heap (asyncio.events / base_events).
#pragma once

#include <coring/backend.hpp>
#include <coring/errors.hpp>

#include <coring/detail/deadline.hpp>
#include <coring/detail/frame_allocator.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/owned_op.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/ref.hpp>
#include <coring/detail/ring.hpp>
#include <coring/detail/timer_heap.hpp>

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
class FutureBase;
class Readiness;
class TaskBase;

struct LoopTag {};
class HandleState;
class LoopDebug;
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

namespace detail {

/// Shared state of a Handle: the callback, its cancelled flag, its timer when it has one.
/// Reference counted: one reference per Handle, one while the loop has it queued.
class HandleState : public FrameAllocated, public TimerNode {
public:
    HandleState(const HandleState&) = delete;
    HandleState& operator=(const HandleState&) = delete;

    void add_ref() noexcept {
        // relaxed: taking another reference needs no ordering; we already hold one.
        refs_.fetch_add(1, std::memory_order_relaxed);
    }

    void release() noexcept {
        // acq_rel: the last owner must see every write made through other references before
        // it destroys the callback.
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            delete this;
        }
    }

    bool cancelled() const noexcept { return cancelled_; }

    /// Ready-queue entry function: runs the callback unless cancelled, then drops the queue's
    /// reference. With discard set (the loop is closing) it only drops the reference.
    static void run_entry(void* self, bool discard) noexcept;

    /// Timer fire function: moves the handle from the timer heap to the ready queue.
    static void fire_timer(TimerNode* node, bool discard) noexcept;

    /// run_entry's path in debug mode or with a debugging tool on.
    static void run_instrumented(HandleState& s) noexcept;

    EventLoop* loop_;
    std::int64_t when_ns_ = 0;
    const std::type_info* callback_type_;
    bool cancelled_ = false;

protected:
    HandleState(EventLoop* loop, const std::type_info& type) noexcept
        : TimerNode(&HandleState::fire_timer), loop_(loop), callback_type_(&type) {}

    virtual ~HandleState() = default;

    virtual void invoke() = 0;

private:
    std::atomic<std::uint32_t> refs_{1};
};

template <class F>
class CallbackHandleState final : public HandleState {
public:
    template <class G>
    CallbackHandleState(EventLoop* loop, G&& g)
        : HandleState(loop, typeid(F)), callback_(std::forward<G>(g)) {}

private:
    void invoke() override { callback_(); }

    F callback_;
};

template <class F, class... Args>
auto bind_callback(F&& f, Args&&... args) {
    if constexpr (sizeof...(Args) == 0) {
        return std::forward<F>(f);
    } else {
        return [fn = std::forward<F>(f),
                tup = std::make_tuple(std::forward<Args>(args)...)]() mutable {
            std::apply(fn, tup);
        };
    }
}

struct ResourceTag {};

struct FlushTag {};

/// Work to run just before the loop next enters the kernel (EventLoop::defer_flush): a stream
/// writer turns the bytes written during one iteration into one send this way.
class FlushNode : public ListHook<FlushTag> {
public:
    using FlushFn = void (*)(FlushNode*) noexcept;

    explicit FlushNode(FlushFn fn) noexcept : flush_(fn) {}

    FlushFn flush_;
};

/// Loop-thread state held on behalf of work running on other threads (an executor call's
/// Future). The loop tells each one to let go when it closes, on the loop thread, so a worker
/// that finishes later touches nothing of the loop's.
class LoopResource : public ListHook<ResourceTag> {
public:
    LoopResource() = default;
    LoopResource(const LoopResource&) = delete;
    LoopResource& operator=(const LoopResource&) = delete;

    /// Called on the loop thread by EventLoop::close(); the resource is unlinked already.
    virtual void on_loop_close() noexcept = 0;

protected:
    ~LoopResource() = default;
};

struct MessageSend;
struct MessageBatch;

/// The cross-thread door of a loop (call_soon_threadsafe). Shared with every thread that posts
/// to the loop, so a worker may still post after the loop is gone and simply be refused.
/// A post made on another loop's thread travels as a CQE that the sender's ring posts straight
/// into this loop's ring (IORING_OP_MSG_RING) while this loop accepts such messages; else, or
/// when the kernel refuses, it is queued here and the loop woken through its eventfd.
/// Thread safety: every member is safe from any thread.
class ThreadsafeQueue : public std::enable_shared_from_this<ThreadsafeQueue> {
public:
    ThreadsafeQueue(EventLoop* loop, int wake_fd);

    ThreadsafeQueue(const ThreadsafeQueue&) = delete;
    ThreadsafeQueue& operator=(const ThreadsafeQueue&) = delete;

    /// Releases whatever was never run.
    ~ThreadsafeQueue();

    /// Schedules f() on the loop from any thread.
    /// Throws: RuntimeError("Event loop is closed") once the loop has closed.
    template <class F>
    void call_soon(F&& f) {
        auto* s = new CallbackHandleState<std::decay_t<F>>(loop_, std::forward<F>(f));
        try {
            push(s);
        } catch (...) {
            s->release();
            throw;
        }
        s->release(); // push took its own reference
    }

    /// Queues s (taking a reference) and wakes the loop: by IORING_OP_MSG_RING from another
    /// loop's thread when possible, else through the queue and the eventfd (push_queued).
    /// Throws: RuntimeError when the loop has closed; s is untouched then.
    void push(HandleState* s);

    /// The eventfd path of push.
    void push_queued(HandleState* s);

    /// Loop thread: from now on other loops may post into ring_fd with IORING_OP_MSG_RING.
    void open_messages(int ring_fd) noexcept;

    /// Loop thread, at close: refuses further IORING_OP_MSG_RING posts; those already started
    /// are counted by senders() until their sender has seen them complete.
    void stop_messages() noexcept;

    /// Number of IORING_OP_MSG_RING posts to this loop started and not yet complete.
    int senders() const noexcept { return msg_senders_.load(std::memory_order_acquire); }

    /// Loop thread: takes every queued handle (each with one reference) and re-allows a wake-up.
    std::vector<HandleState*> take();

    /// Loop thread: refuses further posts and closes the eventfd; returns what was queued.
    std::vector<HandleState*> close();

    int wake_fd() const noexcept { return wake_fd_; }

private:
    friend class coring::EventLoop;
    friend struct MessageSend;

    // The mutex and the state it guards, in event_loop.cpp: this header does without <mutex>.
    struct Guarded;

    // IORING_OP_MSG_RING gate: a sender counts itself in msg_senders_, then reads msg_fd_; the
    // closing loop sets msg_fd_ to -1, then waits for msg_senders_ to reach 0 (both seq_cst:
    // either the sender sees -1 or the loop sees the sender).
    std::atomic<int> msg_fd_{-1};
    std::atomic<int> msg_senders_{0};
    EventLoop* loop_;
    int wake_fd_; // guarded by the mutex after construction
    std::unique_ptr<Guarded> g_;
};

} // namespace detail

/// asyncio's event loop over one io_uring. Runs on one thread at a time; a loop that uses
/// IORING_SETUP_SINGLE_ISSUER stays bound to the first thread that runs it.
///
/// Every iteration is asyncio's `_run_once`: submit queued operations and wait for completions
/// (one io_uring_enter; no wait if something is ready, else until the nearest timer), turn
/// completions into ready entries in completion order, move due timers to the ready queue in
/// deadline order, then run exactly the entries that were ready when the pass began.
///
/// Thread safety: only call_soon_threadsafe may be called from other threads.
class EventLoop {
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

    /// The loop's cross-thread door, for code that posts from other threads and may outlive
    /// the loop (executors). Thread safety: safe from any thread.
    const std::shared_ptr<detail::ThreadsafeQueue>& threadsafe_queue() const noexcept {
        return threadsafe_;
    }

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

    /// For ThreadsafeQueue::push on this loop's thread: adds s (one more reference) to the batch
    /// for target that leaves as one IORING_OP_MSG_RING SQE when this loop next enters the
    /// kernel. False when this loop cannot (path off, not running) or target does not accept
    /// messages; s is untouched then.
    bool send_message(const std::shared_ptr<detail::ThreadsafeQueue>& target,
                      detail::HandleState* s);
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

    /// The state of the debugging tools, null while all are off (for coring's layers).
    detail::LoopDebug* debug_state() const noexcept { return dbg_; }

    /// Whether debug mode or any debugging tool is on: task steps and callbacks take the
    /// instrumented path (one branch on this flag when off).
    bool instrumented() const noexcept { return instrumented_; }

    // ---- For coring's own layers (awaiters, tasks); not part of the asyncio API. ----

    /// The io_uring behind this loop.
    detail::Ring& ring() noexcept { return ring_; }

    /// The I/O backend this loop runs on.
    Backend backend() const noexcept { return ring_.backend(); }

    /// Appends an entry to the ready queue.
    void schedule(detail::ReadyEntry entry) { ready_.push(entry); }

    /// Queues a timer for the loop's time when (nanoseconds on the loop clock).
    void add_timer(detail::TimerNode& node, std::int64_t when_ns) { timers_.push(node, when_ns); }

    void remove_timer(detail::TimerNode& node) noexcept { timers_.remove(node); }

    /// The task whose step is running, or nullptr.
    detail::TaskBase* current_task() const noexcept { return current_task_; }

    void set_current_task(detail::TaskBase* t) noexcept { current_task_ = t; }

    /// Registers a Future or Task so close() can detach it.
    void register_future(detail::FutureBase& f) noexcept;

    /// Registers loop-thread state held for another thread, or for kernel operations that no
    /// coroutine frame owns; close() releases it after the kernel has handed every operation
    /// back.
    void register_resource(detail::LoopResource& r) noexcept { resources_.push_back(r); }

    /// Runs node's function once at the start of the next iteration, just before the loop
    /// submits to the kernel, so that what tasks queued during this pass (several writes to one
    /// stream) becomes few SQEs sent with this iteration's io_uring_enter. Does nothing when node
    /// is queued already. A function that defers its own node again runs again in the same
    /// pass, so it may do so only when it has made progress.
    void defer_flush(detail::FlushNode& node) noexcept {
        if (!node.is_linked()) {
            flushes_.push_back(node);
        }
    }

    /// Next task number, for default names ("Task-N").
    static std::uint64_t next_task_id() noexcept;

    /// Visits every live (registered) future and task.
    template <class F>
    void for_each_future(F&& f) {
        live_.for_each(std::forward<F>(f));
    }

    /// Turns the loop's clock into virtual time (see coring::testing::VirtualClock): whenever the
    /// loop has nothing to do but wait for a timer, the clock jumps to the timer instead.
    void set_virtual_time(bool enabled) noexcept { virtual_time_ = enabled; }

    bool virtual_time() const noexcept { return virtual_time_; }

    /// Moves the clock forward by d without waiting (virtual time only). Saturates: a huge d
    /// makes every finite deadline due, never a never-due one; a negative d does nothing.
    void advance_time(duration d) noexcept { advance_time_ns(d.count()); }

    /// advance_time in nanoseconds.
    void advance_time_ns(std::int64_t d) noexcept {
        if (d > 0 && __builtin_add_overflow(virtual_offset_ns_, d, &virtual_offset_ns_)) {
            virtual_offset_ns_ = detail::never_ns;
        }
    }

    /// The default executor (executor.hpp) and whether it was shut down; for coring's layers.
    std::shared_ptr<Executor>& default_executor_slot() noexcept { return default_executor_; }

    bool& executor_shutdown_called() noexcept { return executor_shutdown_called_; }

    /// Debug mode's warning: "Executing <what> took 0.150 seconds".
    void report_slow_callback(const std::string& what, duration took) noexcept;

    /// Runs exactly one iteration (asyncio's _run_once). For tests and run_until_idle.
    void run_once();

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

    /// Counts (+1) or uncounts (-1) an operation that coring's own machinery keeps in flight for
    /// the loop's lifetime (the signalfd read of signals.hpp), so that io_in_flight() leaves it
    /// out as it leaves out the wake-up read: it is nobody's pending work.
    void count_background_io(int delta) noexcept {
        background_io_ =
                static_cast<std::uint64_t>(static_cast<std::int64_t>(background_io_) + delta);
    }

    /// Loop iterations run so far.
    std::uint64_t iteration_count() const noexcept { return iterations_; }

    /// Nanoseconds on the loop clock for a time point of it in any unit, saturated (see
    /// detail/deadline.hpp).
    template <class Dur>
    static std::int64_t to_ns(std::chrono::time_point<clock, Dur> t) noexcept {
        return detail::saturated_ns(t);
    }

    /// The time point for nanoseconds on the loop clock; detail::never_ns gives
    /// time_point::max().
    static time_point from_ns(std::int64_t ns) noexcept { return time_point(duration(ns)); }

    /// time() in nanoseconds: never negative, always below detail::never_ns.
    std::int64_t now_ns() const noexcept {
        return detail::clock_ns(clock::now().time_since_epoch().count(), virtual_offset_ns_);
    }

private:
    friend class detail::HandleState;
    friend class detail::Readiness;

    friend std::size_t testing::run_until_idle(EventLoop& loop, std::size_t max_iterations);

    // Marks the loop running on this thread for its lifetime (run_forever, run_until_idle).
    class RunningScope {
    public:
        explicit RunningScope(EventLoop& loop);
        RunningScope(const RunningScope&) = delete;
        RunningScope& operator=(const RunningScope&) = delete;
        ~RunningScope();

    private:
        EventLoop& loop_;
    };

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

    detail::Ring ring_;
    detail::ReadyQueue ready_;
    detail::TimerHeap timers_;
    detail::IntrusiveList<detail::FutureBase, detail::LoopTag> live_;
    detail::IntrusiveList<detail::LoopResource, detail::ResourceTag> resources_;
    detail::IntrusiveList<detail::FlushNode, detail::FlushTag> flushes_;
    detail::TaskBase* current_task_ = nullptr;
    ExceptionHandler handler_;
    duration slow_callback_duration_ = std::chrono::milliseconds(100);
    std::int64_t virtual_offset_ns_ = 0; // >= 0; only ever grows (advance_time_ns)
    std::uint64_t iterations_ = 0;
    unsigned long thread_ = 0; // pthread_self() of the thread that ran it last (no <thread>)
    bool running_ = false;
    bool stopping_ = false;
    bool closed_ = false;
    bool debug_ = false;
    bool watchdog_chosen_ = false; // set_watchdog or CORING_WATCHDOG: debug mode leaves it alone
    bool watchdog_auto_ = false;   // the watchdog debug mode started is on
    bool virtual_time_ = false;
    bool instrumented_ = false;        // debug_ || dbg_ (update_instrumented)
    detail::LoopDebug* dbg_ = nullptr; // debugging tools (loop_debug.cpp), null while all off

    // call_soon_threadsafe: other threads append to the shared queue and write the eventfd; a
    // read on the eventfd stays in flight in the ring while the loop runs.
    std::shared_ptr<detail::ThreadsafeQueue> threadsafe_;
    std::uint64_t background_io_ = 0; // see count_background_io
    std::uint64_t wake_buf_ = 0;
    detail::OwnedOp<EventLoop, &EventLoop::on_wakeup> wake_op_{this}; // the eventfd read

    // IORING_OP_MSG_RING posts from this loop (see send_message).
    bool msg_ring_ok_ = false;
    std::uint64_t msg_in_flight_ = 0; // sent, completion not reaped yet
    std::uint64_t messages_sent_ = 0;
    std::uint64_t messages_refused_ = 0;
    std::uint64_t messages_received_ = 0;
    std::string name_;

    // Posts to other loops made during this pass, one batch per target (few targets: a vector).
    struct Outbox {
        std::shared_ptr<detail::ThreadsafeQueue> target;
        int fd;
        detail::MessageBatch* batch;
    };

    struct BatchFlush : detail::FlushNode {
        using FlushNode::FlushNode;
        EventLoop* loop = nullptr;
    };

    std::vector<Outbox> outboxes_;
    BatchFlush batch_flush_{&EventLoop::flush_batches};

    // add_reader/add_writer registrations (readiness.cpp): created on first use, so a loop that
    // never watches an fd pays nothing; a loop resource, released by close().
    detail::Readiness* readiness_ = nullptr;

    // The default executor (executor.hpp), created on first use, shut down when the loop
    // closes.
    std::shared_ptr<Executor> default_executor_;
    bool executor_shutdown_called_ = false;

    static inline thread_local constinit EventLoop* running_loop_ = nullptr;
};

/// The loop running on this thread (asyncio.get_running_loop()).
/// Throws: RuntimeError("no running event loop") when none is.
EventLoop& get_running_loop();

} // namespace coring
