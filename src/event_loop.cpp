// SPDX-License-Identifier: MIT
// EventLoop: run_once (base_events._run_once), close, handles, threadsafe wake-ups, reports.
#include <coring/event_loop.hpp>
#include <coring/executor.hpp>
#include <coring/log.hpp>
#include <coring/testing.hpp>

#include <coring/detail/future_base.hpp>
#include <coring/detail/sys.hpp>
#include <coring/detail/task_base.hpp>

#include <fmt/format.h>

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "diagnostics.hpp"

static_assert(std::is_same_v<pthread_t, unsigned long>, "EventLoop::thread_ holds a pthread_t");

namespace coring {

// ---- Handle ----

Handle::Handle(const Handle& other) noexcept = default;

Handle::~Handle() = default;

void Handle::cancel() noexcept {
    if (state_ == nullptr || state_->cancelled_) {
        return;
    }
    state_->cancelled_ = true;
    if (state_->is_queued()) {
        // A timer still in the heap: take it out now (O(log n)) and drop the heap's reference.
        state_->loop_->remove_timer(*state_);
        state_->release();
    }
}

bool Handle::cancelled() const noexcept {
    return state_ != nullptr && state_->cancelled_;
}

std::chrono::steady_clock::time_point TimerHandle::when() const noexcept {
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(state_->when_ns_));
}

namespace detail {

void HandleState::run_entry(void* self, bool discard) noexcept {
    auto* s = static_cast<HandleState*>(self);
    if (!discard && !s->cancelled_) {
        EventLoop& loop = *s->loop_;
        auto t0 = loop.debug_ ? EventLoop::clock::now() : EventLoop::time_point{};
        try {
            s->invoke();
        } catch (...) {
            loop.call_exception_handler(
                    {fmt::format("Exception in callback {}", detail::demangle(*s->callback_type_)),
                     std::current_exception(),
                     {},
                     {}});
        }
        if (loop.debug_) {
            auto took = EventLoop::clock::now() - t0;
            if (took >= loop.slow_callback_duration_) {
                loop.report_slow_callback(
                        fmt::format("<Handle {}>", detail::demangle(*s->callback_type_)), took);
            }
        }
    }
    s->release();
}

void HandleState::fire_timer(TimerNode* node, bool discard) noexcept {
    auto* s = static_cast<HandleState*>(node);
    if (discard) {
        s->release();
        return;
    }
    // The heap's reference moves to the ready queue.
    s->loop_->schedule({&HandleState::run_entry, s});
}

} // namespace detail

// ---- EventLoop ----

EventLoop::EventLoop() : EventLoop(EventLoopOptions{}) {
}

EventLoop::EventLoop(const EventLoopOptions& options)
    : ring_(detail::RingOptions{options.ring_entries, options.attach_wq_fd, options.backend}),
      debug_(options.debug.value_or(detail::debug_from_env())) {
    int fd = detail::sys.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        throw std::system_error(err, std::system_category(), "coring: eventfd for the event loop");
    }
    threadsafe_ = std::make_shared<detail::ThreadsafeQueue>(this, fd);
    wake_completion_.complete = &EventLoop::on_wakeup;
    wake_completion_.loop = this;
}

EventLoop::~EventLoop() {
    if (running_) {
        // Destroying a running loop (from inside one of its own callbacks) cannot be recovered.
        detail::assertion_failed(
                __FILE__, __LINE__, "!running_", "EventLoop destroyed while running");
    }
    close();
}

std::uint64_t EventLoop::next_task_id() noexcept {
    // Each thread takes ids in blocks of 1024 from the process-wide counter, so a spawn costs no
    // atomic operation; ids stay unique and increase in creation order within a thread.
    static std::atomic<std::uint64_t> counter{0};
    static thread_local std::uint64_t next = 0;
    static thread_local std::uint64_t end = 0;
    if (next == end) {
        // relaxed: ids only need to be unique, not ordered with anything else.
        next = counter.fetch_add(1024, std::memory_order_relaxed) + 1;
        end = next + 1024;
    }
    return next++;
}

void EventLoop::register_future(detail::FutureBase& f) noexcept {
    live_.push_back(f);
}

void EventLoop::check_closed() const {
    if (closed_) {
        throw RuntimeError("Event loop is closed");
    }
}

EventLoop::RunningScope::RunningScope(EventLoop& loop) : loop_(loop) {
    loop.check_closed();
    if (loop.running_) {
        throw RuntimeError("This event loop is already running");
    }
    if (running_loop_ != nullptr) {
        throw RuntimeError("Cannot run the event loop while another loop is running");
    }
    if ((loop.ring_.setup_flags() & IORING_SETUP_SINGLE_ISSUER) && loop.thread_ != 0 &&
        pthread_equal(loop.thread_, pthread_self()) == 0) {
        throw RuntimeError("coring: this event loop's io_uring is bound to the thread that first "
                           "ran it (IORING_SETUP_SINGLE_ISSUER); run it on that thread");
    }
    loop.ring_.enable();
    loop.thread_ = pthread_self();
    loop.running_ = true;
    running_loop_ = &loop;
    loop.arm_wakeup();
}

EventLoop::RunningScope::~RunningScope() {
    loop_.running_ = false;
    loop_.stopping_ = false;
    running_loop_ = nullptr;
}

void EventLoop::run_forever() {
    RunningScope scope(*this);
    for (;;) {
        run_once();
        if (stopping_) {
            break;
        }
    }
}

void EventLoop::run_once() {
    ++iterations_;
    // 0. Deferred flushes: what tasks wrote to streams during the last pass becomes SQEs that
    //    this iteration's io_uring_enter submits (one send per stream, however many writes).
    while (detail::FlushNode* f = flushes_.pop_front()) {
        f->flush_(f);
    }
    // 1. Submit what is queued and wait for completions: not at all when something is ready,
    //    else until the nearest timer (base_events._run_once's select timeout).
    if (!ready_.empty() || stopping_) {
        ring_.submit_nowait();
    } else {
        // -1: no timer, or only never-due ones (detail::never_ns): wait without limit. The
        // deadline arithmetic saturates (detail/deadline.hpp), so this never overflows.
        std::int64_t wait =
                timers_.empty() ? -1 : detail::wait_for_deadline(timers_.earliest(), now_ns());
        if (wait >= 0 && virtual_time_ && io_in_flight() == 0) {
            ring_.submit_nowait();
            if (!ring_.has_completions()) {
                advance_time_ns(wait);
            }
        } else {
            // At most a day per io_uring_enter, as asyncio's MAXIMUM_SELECT_TIMEOUT: the loop
            // then recomputes the wait, and the kernel never sees an extreme timespec.
            constexpr std::int64_t max_wait_ns = std::int64_t{24} * 3600 * 1'000'000'000;
            ring_.submit_and_wait(std::chrono::nanoseconds(std::min(wait, max_wait_ns)));
        }
    }

    // 2. Completions become ready entries, in completion order.
    ring_.reap([](detail::Completion* c, int res, unsigned flags) noexcept {
        c->complete(c, res, flags);
    });

    // 3. Timers that are due, in deadline order (ties in scheduling order).
    if (!timers_.empty()) {
        std::int64_t now = now_ns();
        while (!timers_.empty() && timers_.earliest() <= now) {
            timers_.pop()->fire(false);
        }
    }

    // 4. Run exactly what was ready when this pass began; what it schedules waits for the next.
    for (std::size_t n = ready_.size(); n > 0; --n) {
        detail::ReadyEntry e = ready_.pop();
        e.run(e.arg, false);
    }
}

void EventLoop::close() {
    if (running_) {
        throw RuntimeError("Cannot close a running event loop");
    }
    if (closed_) {
        return;
    }
    closed_ = true;
    flushes_.clear();
    // The default executor's threads post to this loop: let them finish first (asyncio shuts
    // it down without waiting, but its threads hold references to a garbage-collected loop).
    if (default_executor_) {
        default_executor_->shutdown(true);
        default_executor_.reset();
    }
    // Operations still in the kernel write into coroutine frames: get them all back first. (Loop
    // resources are released after the cross-thread queue, whose pending handles may hold them.)
    std::uint64_t user_ops = io_in_flight();
    if (!ring_.cancel_all_and_drain()) {
        // A SINGLE_ISSUER ring only accepts io_uring_enter from the thread that ran the loop.
        // The loop's own eventfd read is harmless (nobody else can write to that eventfd); user
        // operations are not, so say so.
        if (user_ops > 0) {
            log(LogLevel::error,
                fmt::format("coring: closing an event loop on a thread other than the one that "
                            "ran it, with {} io_uring operations in flight: they cannot be "
                            "drained and are left to the kernel's ring teardown",
                            user_ops));
        }
        ring_.abandon_in_flight();
    }
    wake_armed_ = false;

    while (!ready_.empty()) {
        detail::ReadyEntry e = ready_.pop();
        e.run(e.arg, true);
    }
    while (!timers_.empty()) {
        timers_.pop()->fire(true);
    }
    for (detail::HandleState* s : threadsafe_->close()) {
        s->release();
    }
    while (detail::LoopResource* r = resources_.pop_front()) {
        r->on_loop_close();
    }

    // Pending tasks lose the loop's reference; those nobody else holds are destroyed now (and
    // reported, as asyncio reports "Task was destroyed but it is pending!").
    std::vector<detail::TaskBase*> pending;
    live_.for_each([&](detail::FutureBase& f) {
        if (f.is_task() && !f.done()) {
            pending.push_back(static_cast<detail::TaskBase*>(&f));
        }
    });
    for (detail::TaskBase* t : pending) {
        t->release();
    }
    // Whatever is still referenced from outside outlives the loop, detached from it.
    while (detail::FutureBase* f = live_.pop_front()) {
        f->detach_from_loop();
    }
}

namespace detail {

struct ThreadsafeQueue::Guarded {
    std::mutex mutex;
    std::vector<HandleState*> queue; // guarded by mutex
    bool wake_pending = false;       // guarded by mutex: an eventfd write is outstanding
    bool closed = false;             // guarded by mutex
};

ThreadsafeQueue::ThreadsafeQueue(EventLoop* loop, int wake_fd)
    : loop_(loop), wake_fd_(wake_fd), g_(std::make_unique<Guarded>()) {
}

ThreadsafeQueue::~ThreadsafeQueue() {
    for (HandleState* s : g_->queue) {
        s->release();
    }
    if (wake_fd_ >= 0) {
        sys.close(wake_fd_);
    }
}

void ThreadsafeQueue::push(HandleState* s) {
    std::lock_guard lock(g_->mutex);
    if (g_->closed) {
        throw RuntimeError("Event loop is closed");
    }
    s->add_ref(); // the queue's reference
    g_->queue.push_back(s);
    if (!g_->wake_pending) {
        g_->wake_pending = true;
        std::uint64_t one = 1;
        // The eventfd counter cannot overflow here, so write() never blocks or fails partially.
        [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
    }
}

std::vector<HandleState*> ThreadsafeQueue::take() {
    std::vector<HandleState*> batch;
    std::lock_guard lock(g_->mutex);
    batch.swap(g_->queue);
    g_->wake_pending = false;
    return batch;
}

std::vector<HandleState*> ThreadsafeQueue::close() {
    std::vector<HandleState*> batch;
    std::lock_guard lock(g_->mutex);
    g_->closed = true;
    batch.swap(g_->queue);
    if (wake_fd_ >= 0) {
        sys.close(wake_fd_);
        wake_fd_ = -1;
    }
    return batch;
}

} // namespace detail

void EventLoop::arm_wakeup() {
    if (wake_armed_ || closed_) {
        return;
    }
    io_uring_sqe* sqe = ring_.get_sqe();
    io_uring_prep_read(sqe, threadsafe_->wake_fd(), &wake_buf_, sizeof wake_buf_, 0);
    ring_.track(sqe, &wake_completion_);
    wake_armed_ = true;
}

void EventLoop::on_wakeup(detail::Completion* c, int res, unsigned) noexcept {
    EventLoop& loop = *static_cast<WakeCompletion*>(c)->loop;
    loop.wake_armed_ = false;
    for (detail::HandleState* s : loop.threadsafe_->take()) {
        loop.ready_.push({&detail::HandleState::run_entry, s});
    }
    if (res != -ECANCELED && !loop.closed_) {
        try {
            loop.arm_wakeup();
        } catch (...) {
            loop.call_exception_handler(
                    {"could not re-arm the loop's wake-up read", std::current_exception(), {}, {}});
        }
    }
}

void EventLoop::report_slow_callback(const std::string& what, duration took) noexcept {
    try {
        log(LogLevel::warning,
            fmt::format("Executing {} took {:.3f} seconds",
                        what,
                        std::chrono::duration<double>(took).count()));
    } catch (...) {
        // formatting failed (out of memory): nothing sensible to report
    }
}

void EventLoop::log_exception(const ExceptionContext& context) noexcept {
    try {
        std::string text =
                context.message.empty() ? "Unhandled exception in event loop" : context.message;
        if (!context.task.empty()) {
            fmt::format_to(std::back_inserter(text), "\n  task: {}", context.task);
        }
        if (!context.source.empty()) {
            fmt::format_to(std::back_inserter(text), "\n  source: {}", context.source);
        }
        if (context.exception) {
            fmt::format_to(std::back_inserter(text),
                           "\n  exception: {}",
                           describe_exception(context.exception));
        }
        log(LogLevel::error, text);
    } catch (...) {
        log(LogLevel::error, context.message);
    }
}

void EventLoop::call_exception_handler(const ExceptionContext& context) noexcept {
    if (!handler_) {
        default_exception_handler(context);
        return;
    }
    try {
        handler_(*this, context);
    } catch (...) {
        // As asyncio: a failing custom handler is itself reported by the default handler.
        default_exception_handler({"Unhandled error in exception handler",
                                   std::current_exception(),
                                   context.task,
                                   context.source});
        default_exception_handler(context);
    }
}

EventLoop& get_running_loop() {
    EventLoop* loop = EventLoop::running();
    if (loop == nullptr) {
        throw RuntimeError("no running event loop");
    }
    return *loop;
}

namespace testing {

std::size_t run_until_idle(EventLoop& loop, std::size_t max_iterations) {
    EventLoop::RunningScope scope(loop);
    std::size_t n = 0;
    while (n < max_iterations && loop.ready_count() > 0) {
        loop.run_once();
        ++n;
    }
    return n;
}

} // namespace testing

} // namespace coring
