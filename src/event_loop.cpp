// SPDX-License-Identifier: MIT
// EventLoop: run_once (base_events._run_once), close, handles, wake-ups, MSG_RING posts, reports.
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

#include "diagnostics.hpp"
#include "loop_debug.hpp"

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
        detail::LoopAccess::remove_timer(*state_->loop_, *state_);
        state_->release();
    }
}

bool Handle::cancelled() const noexcept {
    return state_ != nullptr && state_->cancelled_;
}

std::chrono::steady_clock::time_point TimerHandle::when() const noexcept {
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(state_->when_ns_));
}

// ---- EventLoop ----

EventLoop::EventLoop() : EventLoop(EventLoopOptions{}) {
}

EventLoop::EventLoop(const EventLoopOptions& options)
    : LoopCore(detail::RingOptions{options.ring_entries, options.attach_wq_fd, options.backend},
               options.debug.value_or(detail::debug_from_env())) {
    int fd = detail::sys.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        throw std::system_error(err, std::system_category(), "coring: eventfd for the event loop");
    }
    threadsafe_ = std::make_shared<detail::ThreadsafeQueue>(this, fd);
    batch_flush_.flush_ = &EventLoop::flush_batches;
    batch_flush_.loop = this;
    ring_.set_message_handler(&EventLoop::on_message, this);
    msg_ring_ok_ = ring_.supports(IORING_OP_MSG_RING);
    update_instrumented();
    init_debug_from_env();
}

EventLoop::~EventLoop() {
    if (running_) {
        // Destroying a running loop (from inside one of its own callbacks) cannot be recovered.
        detail::assertion_failed(
                __FILE__, __LINE__, "!running_", "EventLoop destroyed while running");
    }
    close();
    delete dbg_;
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

class EventLoop::RunningScope {
public:
    explicit RunningScope(EventLoop& loop);
    RunningScope(const RunningScope&) = delete;
    RunningScope& operator=(const RunningScope&) = delete;
    ~RunningScope();

private:
    EventLoop& loop_;
};

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
    if (!loop.watchdog_chosen_ && loop.debug_ != loop.watchdog_auto_) [[unlikely]] {
        loop.follow_debug_mode(); // debug mode's watchdog (loop_debug.cpp)
    }
    loop.ring_.enable();
    loop.thread_ = pthread_self();
    loop.running_ = true;
    running_loop_ = &loop;
    loop.arm_wakeup();
    if (loop.ring_.supports(IORING_OP_MSG_RING)) {
        loop.threadsafe_->open_messages(loop.ring_.fd());
    }
}

EventLoop::RunningScope::~RunningScope() {
    if (loop_.batch_flush_.is_linked()) {
        loop_.batch_flush_.unlink();
        loop_.send_batches();
    }
    if (loop_.msg_in_flight_ > 0) {
        // Messages queued during the last pass go to the kernel now rather than whenever this
        // loop next runs: their targets may be waiting for them (or to close).
        try {
            loop_.ring_.submit_nowait();
        } catch (...) {
            // the next run or close() submits them
        }
    }
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
    //    else until the nearest timer (base_events._run_once's select timeout). Forced inline:
    //    GCC 12 calls a lambda used twice.
    auto wait_for_completions = [this]() __attribute__((always_inline)) {
        if (!ready_.empty() || stopping_) {
            ring_.submit_nowait();
            return;
        }
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
    };
    // The debugging tools' hooks (loop_debug.cpp): dbg_ is null while they are all off, and
    // then this is the iteration's only test for them. Nothing in step 1 turns them on or off;
    // dbg_ is read again after the wait so that nothing extra stays live across it.
    if (dbg_ != nullptr) [[unlikely]] {
        dbg_->wait_begin();
        wait_for_completions();
        finish_iteration_hooked(*dbg_); // steps 2 to 4 with the hooks
        return;
    }
    wait_for_completions();

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
    // Other loops stop posting CQEs into this ring; those already on their way are drained
    // below, after this loop's own operations.
    threadsafe_->stop_messages();
    flushes_.clear();
    // The default executor's threads post to this loop: let them finish first (asyncio shuts
    // it down without waiting, but its threads hold references to a garbage-collected loop).
    if (default_executor_) {
        default_executor_->shutdown(true);
        default_executor_.reset();
    }
    // Operations still in the kernel write into coroutine frames: get them all back first. (Loop
    // resources are released after the cross-thread queue, whose pending handles may hold them.)
    finish_outgoing_messages();
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
    wake_op_.forget();
    drain_incoming_messages();

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
    close_debug(); // stops the watchdog, completes the trace file
}

void EventLoop::arm_wakeup() {
    if (wake_op_.in_flight() || closed_) {
        return;
    }
    io_uring_sqe* sqe = ring_.get_sqe();
    io_uring_prep_read(sqe, threadsafe_->wake_fd(), &wake_buf_, sizeof wake_buf_, 0);
    wake_op_.submit(ring_, sqe);
}

void EventLoop::on_wakeup(int res, unsigned) noexcept {
    for (detail::HandleState* s : threadsafe_->take()) {
        ready_.push({&detail::HandleState::run_entry, s});
    }
    if (res != -ECANCELED && !closed_) {
        try {
            arm_wakeup();
        } catch (...) {
            call_exception_handler(
                    {"could not re-arm the loop's wake-up read", std::current_exception(), {}, {}});
        }
    }
}

// ---- IORING_OP_MSG_RING ----

namespace detail {

/// The posts one loop made to another during one iteration, carried by one CQE (message_tag
/// set on its address). Owned by the sender until the kernel posted the CQE, then by the target.
struct MessageBatch {
    std::vector<HandleState*> handles; // one reference each
    // The kernel's CQ publication orders the sender's writes before the target's reads; this
    // release/acquire pair (one per batch) says so to ThreadSanitizer, which cannot see it.
    std::atomic<bool> published{false};
};

/// The sender's completion of one IORING_OP_MSG_RING SQE.
struct MessageSend : Completion {
    EventLoop* from;
    MessageBatch* batch; // the sender's only when the kernel refused it
    std::shared_ptr<ThreadsafeQueue> target;
};

} // namespace detail

bool EventLoop::send_message(const std::shared_ptr<detail::ThreadsafeQueue>& target,
                             detail::HandleState* s) {
    if (!msg_ring_ok_ || !running_ || closed_) {
        return false;
    }
    for (Outbox& o : outboxes_) {
        if (o.target == target) {
            try {
                o.batch->handles.push_back(s);
            } catch (...) {
                return false;
            }
            s->add_ref();
            ++messages_sent_;
            return true;
        }
    }
    // First post to target in this pass: count in its gate (held until the CQE of the batch
    // is reaped here) and check it accepts messages.
    target->msg_senders_.fetch_add(1, std::memory_order_seq_cst);
    int fd = target->msg_fd_.load(std::memory_order_seq_cst);
    if (fd < 0) {
        target->msg_senders_.fetch_sub(1, std::memory_order_seq_cst);
        return false;
    }
    try {
        auto batch = std::make_unique<detail::MessageBatch>();
        CORING_ASSERT((reinterpret_cast<std::uintptr_t>(batch.get()) & detail::message_tag) == 0,
                      "batches are aligned");
        batch->handles.push_back(s);
        outboxes_.push_back({target, fd, batch.get()});
        batch.release();
    } catch (...) {
        target->msg_senders_.fetch_sub(1, std::memory_order_seq_cst);
        return false;
    }
    s->add_ref();
    ++messages_sent_;
    detail::LoopAccess::defer_flush(*this, batch_flush_);
    return true;
}

void EventLoop::flush_batches(detail::FlushNode* node) noexcept {
    static_cast<BatchFlush*>(node)->loop->send_batches();
}

void EventLoop::send_batches() noexcept {
    for (Outbox& o : outboxes_) {
        try {
            auto m = std::make_unique<detail::MessageSend>(
                    detail::MessageSend{{&EventLoop::on_message_sent}, this, o.batch, o.target});
            io_uring_sqe* sqe = ring_.get_sqe();
            o.batch->published.store(true, std::memory_order_release);
            io_uring_prep_msg_ring(sqe,
                                   o.fd,
                                   0,
                                   reinterpret_cast<std::uintptr_t>(o.batch) | detail::message_tag,
                                   0);
            ring_.track(sqe, m.release());
            ++msg_in_flight_;
        } catch (...) {
            // No SQE (or no memory): deliver through the target's queue and eventfd.
            detail::MessageSend m{{&EventLoop::on_message_sent}, this, o.batch, o.target};
            ++msg_in_flight_;
            on_message_sent_inline(m, -ENOMEM);
        }
    }
    outboxes_.clear();
}

void EventLoop::on_message(void* self, std::uint64_t payload) noexcept {
    auto* loop = static_cast<EventLoop*>(self);
    std::unique_ptr<detail::MessageBatch> batch(
            reinterpret_cast<detail::MessageBatch*>(static_cast<std::uintptr_t>(payload)));
    // The kernel published the CQE after the sender filled the batch: reaping it orders them.
    [[maybe_unused]] bool published = batch->published.load(std::memory_order_acquire);
    for (detail::HandleState* s : batch->handles) {
        ++loop->messages_received_;
        try {
            loop->ready_.push({&detail::HandleState::run_entry, s});
        } catch (...) {
            s->release(); // out of memory for the ready queue: the callback is dropped
        }
    }
}

void EventLoop::on_message_sent(detail::Completion* c, int res, unsigned) noexcept {
    std::unique_ptr<detail::MessageSend> m(static_cast<detail::MessageSend*>(c));
    m->from->on_message_sent_inline(*m, res);
}

void EventLoop::on_message_sent_inline(detail::MessageSend& m, int res) noexcept {
    --msg_in_flight_;
    if (res < 0) {
        // The kernel did not post it (the target ring is gone or full, or this kernel or backend
        // has no MSG_RING): deliver through the target's queue and eventfd instead. Refusals
        // that will not change stop this loop using MSG_RING.
        std::unique_ptr<detail::MessageBatch> batch(m.batch);
        messages_refused_ += batch->handles.size();
        if (res == -EINVAL || res == -EOPNOTSUPP || res == -EBADFD || res == -EBADF) {
            msg_ring_ok_ = false;
        }
        for (detail::HandleState* s : batch->handles) {
            try {
                m.target->push_queued(s);
            } catch (...) {
                // the target loop has closed: refused, as a post to a closed loop is
            }
            s->release();
        }
    }
    m.target->msg_senders_.fetch_sub(1, std::memory_order_seq_cst);
}

void EventLoop::finish_outgoing_messages() noexcept {
    // Posts to other loops still in this ring: submit them and take their completions, so each
    // is delivered (or falls back) and its target is not left waiting for it.
    batch_flush_.unlink();
    send_batches();
    for (int rounds = 0; msg_in_flight_ > 0 && rounds < 50; ++rounds) {
        try {
            ring_.submit_and_wait(std::chrono::milliseconds(100));
        } catch (...) {
            return; // closed on a thread other than the ring's: it cannot be entered
        }
        ring_.reap([](detail::Completion* c, int res, unsigned flags) noexcept {
            // Other completions are dropped as cancel_all_and_drain drops them.
            if (c->complete == &EventLoop::on_message_sent) {
                c->complete(c, res, flags);
            }
        });
    }
}

void EventLoop::drain_incoming_messages() noexcept {
    // Posts other loops started before stop_messages(): wait until their senders saw them
    // complete, then bring them into the CQ (deferred task work) and queue them, to be dropped
    // with the rest of the ready queue (that releases them: nothing is lost silently).
    if (thread_ == 0 || !ring_.supports(IORING_OP_MSG_RING)) {
        return; // never ran: never accepted messages
    }
    auto t0 = clock::now();
    while (threadsafe_->senders() > 0 && clock::now() - t0 < std::chrono::seconds(5)) {
        try {
            ring_.submit_and_wait(std::chrono::milliseconds(1));
        } catch (...) {
            return;
        }
        ring_.reap([](detail::Completion*, int, unsigned) noexcept {});
    }
    // The kernel runs a bounded batch of deferred task work per entry: enter until nothing more
    // comes.
    for (int rounds = 0; rounds < 100000; ++rounds) {
        try {
            ring_.submit_and_wait(std::chrono::nanoseconds(0));
        } catch (...) {
            return;
        }
        if (ring_.reap([](detail::Completion*, int, unsigned) noexcept {}) == 0 &&
            !ring_.kernel_has_work()) {
            break;
        }
    }
}

// ---- Embedding ----

int EventLoop::poll_fd() {
    check_closed();
    return ring_.poll_fd();
}

void EventLoop::run_ready() {
    // Empty the counter first: completions arriving from here on signal it again.
    ring_.clear_poll_fd();
    bool was_stopping = stopping_;
    stop();
    try {
        run_forever();
    } catch (...) {
        stopping_ = was_stopping; // it did not run: leave stop() as it was
        throw;
    }
}

std::optional<EventLoop::duration> EventLoop::next_timeout() const noexcept {
    if (!ready_.empty() || !flushes_.empty() || stopping_ || ring_.has_completions() ||
        ring_.has_pending_submissions() || ring_.host_must_enter()) {
        return duration::zero();
    }
    if (timers_.empty() || timers_.earliest() >= detail::never_ns) {
        return std::nullopt;
    }
    std::int64_t wait = timers_.earliest() - now_ns();
    return duration(wait > 0 ? wait : 0);
}

std::string EventLoop::describe() const {
    if (!name_.empty()) {
        return fmt::format("loop '{}'", name_);
    }
    return fmt::format("loop {}", static_cast<const void*>(this));
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
        detail::LoopAccess::run_once(loop);
        ++n;
    }
    return n;
}

} // namespace testing

} // namespace coring
