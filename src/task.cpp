// SPDX-License-Identifier: MIT
// Futures and tasks: callbacks, steps, cancellation (asyncio.futures, asyncio.tasks), the
// unretrieved-exception and never-awaited reports, current_task/all_tasks, Runner.
#include <coring/event_loop.hpp>
#include <coring/executor.hpp>
#include <coring/log.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>

#include <coring/detail/future_base.hpp>
#include <coring/detail/task_base.hpp>

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>

namespace coring {

namespace detail {

namespace {

std::string source_of(const TaskBase& t) {
    return fmt::format("{} at {}:{}", t.function_, t.file_, t.line_);
}

} // namespace

bool is_cancelled_error(const std::exception_ptr& e) noexcept {
    if (!e) {
        return false;
    }
    try {
        std::rethrow_exception(e);
    } catch (const CancelledError&) {
        return true;
    } catch (...) {
        return false;
    }
}

std::uint64_t next_callback_token() noexcept {
    static std::atomic<std::uint64_t> counter{0};
    // relaxed: tokens only need to be unique.
    return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

// ---- FutureBase ----

FutureBase::~FutureBase() {
    // Heap callbacks die with the future; awaiter nodes in frames are only unlinked.
    while (DoneNode* node = callbacks_.pop_front()) {
        if (node->owned_) {
            node->run_(node, true);
        }
    }
}

void FutureBase::last_release() noexcept {
    if (is_task_ && state_ == State::pending && static_cast<TaskBase*>(this)->task_ == this) {
        ExceptionContext ctx{"Task was destroyed but it is pending!", nullptr, describe(), {}};
        auto* t = static_cast<TaskBase*>(this);
        ctx.source = source_of(*t);
        if (loop_ != nullptr) {
            loop_->call_exception_handler(ctx);
        } else {
            EventLoop::log_exception(ctx);
        }
    }
    if (log_traceback_) {
        report_unretrieved();
    }
    destroy();
}

void FutureBase::report_unretrieved() noexcept {
    ExceptionContext ctx;
    try {
        ctx.message = is_task_ ? "Task exception was never retrieved"
                               : "Future exception was never retrieved";
        ctx.exception = exception_;
        if (is_task_) {
            auto* t = static_cast<TaskBase*>(this);
            ctx.task = t->name();
            ctx.source = source_of(*t);
        }
    } catch (...) {
        // out of memory while building the report: send what we have
    }
    if (loop_ != nullptr) {
        loop_->call_exception_handler(ctx);
    } else {
        EventLoop::log_exception(ctx);
    }
}

void FutureBase::add_done_node(DoneNode& node) {
    if (!done()) {
        callbacks_.push_back(node);
        return;
    }
    if (loop_ == nullptr) {
        if (node.owned_) {
            node.run_(&node, true);
        }
        return;
    }
    if (node.owned_) {
        add_ref();
        node.holds_ref_ = true;
    }
    loop_->schedule({&DoneNode::entry, &node});
}

std::size_t FutureBase::remove_done_node(std::uint64_t token) noexcept {
    std::size_t removed = 0;
    callbacks_.for_each([&](DoneNode& node) {
        if (node.owned_ && node.token_ == token) {
            node.unlink();
            node.run_(&node, true);
            ++removed;
        }
    });
    return removed;
}

void FutureBase::finish(State s) noexcept {
    state_ = s;
    // asyncio's __schedule_callbacks: every callback becomes a ready entry, in order.
    while (DoneNode* node = callbacks_.pop_front()) {
        if (loop_ == nullptr) {
            if (node->owned_) {
                node->run_(node, true);
            }
            continue;
        }
        if (node->owned_) {
            add_ref();
            node->holds_ref_ = true;
        }
        loop_->schedule({&DoneNode::entry, node});
    }
}

void FutureBase::check_loop() const {
    if (loop_ == nullptr) {
        throw RuntimeError("Event loop is closed");
    }
}

void FutureBase::check_result() {
    if (state_ == State::cancelled) {
        std::rethrow_exception(exception_);
    }
    if (state_ == State::pending) {
        throw InvalidStateError("Result is not set.");
    }
    log_traceback_ = false;
    if (exception_) {
        std::rethrow_exception(exception_);
    }
}

std::exception_ptr FutureBase::get_exception() {
    if (state_ == State::cancelled) {
        std::rethrow_exception(exception_);
    }
    if (state_ == State::pending) {
        throw InvalidStateError("Exception is not set.");
    }
    log_traceback_ = false;
    return exception_;
}

void FutureBase::set_exception(std::exception_ptr e) {
    check_loop();
    if (done()) {
        throw InvalidStateError(
                fmt::format("{}: {}", cancelled() ? "CANCELLED" : "FINISHED", describe()));
    }
    if (!e) {
        throw ValueError("set_exception: null exception_ptr");
    }
    exception_ = std::move(e);
    log_traceback_ = true;
    finish(State::finished);
}

bool FutureBase::cancel_future(const std::string& msg) {
    log_traceback_ = false;
    if (done()) {
        return false;
    }
    check_loop();
    exception_ = std::make_exception_ptr(CancelledError(msg));
    finish(State::cancelled);
    return true;
}

std::string FutureBase::describe() const {
    return "Future";
}

void FutureBase::detach_from_loop() noexcept {
    ListHook<LoopTag>::unlink();
    loop_ = nullptr;
}

// ---- TaskBase ----

void TaskBase::throw_cancelled() const {
    throw CancelledError(cancel_message());
}

const std::string& TaskBase::cancel_message() const noexcept {
    static const std::string none;
    return extras_ ? extras_->cancel_message : none;
}

bool TaskBase::cancel(const std::string& msg) {
    log_traceback_ = false;
    if (done() || loop_ == nullptr) {
        return false;
    }
    ++num_cancels_requested_;
    if (!msg.empty() || extras_) {
        if (!extras_) {
            extras_ = std::make_unique<Extras>();
        }
        extras_->cancel_message = msg;
    }
    // asyncio's Task.cancel: cancel what the task waits on; if that is no longer possible, the
    // next step throws CancelledError into the coroutine.
    if (waiter_ != nullptr && waiter_->cancel(msg)) {
        return true;
    }
    must_cancel_ = true;
    result_won_ = false; // a request made after an I/O result was delivered is honoured
    return true;
}

std::uint32_t TaskBase::uncancel() noexcept {
    if (num_cancels_requested_ > 0) {
        --num_cancels_requested_;
        if (num_cancels_requested_ == 0) {
            must_cancel_ = false;
        }
    }
    return num_cancels_requested_;
}

std::string TaskBase::name() const {
    if (extras_ && !extras_->name.empty()) {
        return extras_->name;
    }
    return fmt::format("Task-{}", id_);
}

void TaskBase::set_name(std::string name) {
    if (!extras_) {
        extras_ = std::make_unique<Extras>();
    }
    extras_->name = std::move(name);
}

std::string TaskBase::describe() const {
    return fmt::format("Task '{}'", name());
}

void TaskBase::describe_stack(std::string& out) const {
    fmt::format_to(std::back_inserter(out),
                   "{} ({}){}\n",
                   describe(),
                   done() ? "done" : (started_ ? "pending" : "not started"),
                   must_cancel_ ? ", cancel pending" : "");
    if (done()) {
        return;
    }
    std::vector<const TaskBase*> chain;
    // link_ of the root is the innermost coroutine, valid while the task is suspended; a
    // running task (describing itself) shows only its root.
    bool running = loop_ != nullptr && loop_->current_task() == this;
    const TaskBase* p = running || link_ == nullptr ? this : link_;
    for (; p != this; p = p->link_) {
        chain.push_back(p);
    }
    chain.push_back(this);
    std::string indent = "  ";
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        fmt::format_to(std::back_inserter(out), "{}{}\n", indent, source_of(**it));
        indent += "  ";
    }
    if (waiter_ != nullptr) {
        out += indent;
        out += "waiting on ";
        waiter_->describe(out);
        out += '\n';
    } else if (started_) {
        out += indent;
        out += "scheduled to run\n";
    }
}

void TaskBase::start_root(EventLoop& loop, std::coroutine_handle<> self, std::string_view name) {
    attach(loop);
    task_ = this;
    handle_ = self;
    refs_ = 2; // the loop's, released when the task finishes, and the caller's handle
    id_ = EventLoop::next_task_id();
    if (!name.empty()) {
        set_name(std::string(name));
    }
    wake();
}

void TaskBase::step_entry(void* self, bool discard) noexcept {
    if (!discard) {
        static_cast<TaskBase*>(self)->step();
    }
}

void TaskBase::step() noexcept {
    // asyncio's Task.__step.
    EventLoop& loop = *loop_;
    waiter_ = nullptr;
    if (!started_) {
        started_ = true;
        if (must_cancel_) {
            // Cancelled before its first step: the coroutine never runs (coro.throw() on an
            // unstarted coroutine raises at once).
            must_cancel_ = false;
            exception_ = std::make_exception_ptr(CancelledError(cancel_message()));
            finish_root();
            return;
        }
    }
    loop.set_current_task(this);
    if (loop.get_debug()) {
        step_debug(loop);
    } else {
        handle_.resume(); // may finish and destroy the task
    }
    loop.set_current_task(nullptr);
}

void TaskBase::step_debug(EventLoop& loop) noexcept {
    std::string what;
    try {
        what = fmt::format("<Task '{}' {}>", name(), source_of(*this));
    } catch (...) {
    }
    auto t0 = EventLoop::clock::now();
    handle_.resume(); // may finish and destroy the task: only locals below
    auto took = EventLoop::clock::now() - t0;
    if (took >= loop.slow_callback_duration()) {
        loop.report_slow_callback(what, took);
    }
}

void TaskBase::finish_root() noexcept {
    State s = State::finished;
    if (exception_) {
        if (is_cancelled_error(exception_)) {
            s = State::cancelled;
        } else {
            log_traceback_ = true;
        }
    } else if (must_cancel_ && result_won_) {
        // The cancellation came too late for the I/O result the coroutine then returned: the
        // result wins, as wait_for's does (asyncio 3.12), and nothing is reported cancelled
        // that completed.
        must_cancel_ = false;
    } else if (must_cancel_) {
        // The coroutine returned while a cancellation was pending (asyncio: "Task is cancelled
        // right before coro stops").
        must_cancel_ = false;
        exception_ = std::make_exception_ptr(CancelledError(cancel_message()));
        s = State::cancelled;
    }
    waiter_ = nullptr;
    finish(s);
    release(); // the loop's reference; may destroy the frame
}

void TaskBase::detach_from_loop() noexcept {
    FutureBase::detach_from_loop();
}

// ---- DoneAwaiter ----

void DoneAwaiter::run(DoneNode* node, bool discard) noexcept {
    if (!discard) {
        static_cast<DoneAwaiter&>(*node).task_->step();
    }
}

bool DoneAwaiter::cancel(const std::string& msg) noexcept {
    try {
        return future_->cancel(msg);
    } catch (...) {
        return false;
    }
}

void DoneAwaiter::describe(std::string& out) const {
    out += future_->describe();
}

void DoneAwaiter::check_awaitable(TaskBase* task) const {
    CORING_ASSERT(task != nullptr, "awaited outside a task");
    if (future_ == task) {
        throw RuntimeError(fmt::format("Task cannot await on itself: {}", task->describe()));
    }
    if (future_->loop() != task->loop()) {
        throw RuntimeError(fmt::format("{} is attached to a different loop", future_->describe()));
    }
}

// ---- debug reports ----

bool debug_enabled() noexcept {
    if (EventLoop* loop = EventLoop::running()) {
        return loop->get_debug();
    }
    static const bool env = [] {
        const char* v = std::getenv("CORING_DEBUG");
        return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
    }();
    return env;
}

void report_never_awaited(const TaskBase& coroutine) noexcept {
    try {
        log(LogLevel::warning,
            fmt::format("coroutine '{}' was never awaited (defined at {}:{})",
                        coroutine.function_,
                        coroutine.file_,
                        coroutine.line_));
    } catch (...) {
    }
}

} // namespace detail

void SleepAwaiter::describe(std::string& out) const {
    fmt::format_to(std::back_inserter(out),
                   "sleep {:.3f} s",
                   std::chrono::duration<double>(delay_).count());
}

// ---- current_task, all_tasks ----

TaskHandle<> current_task() {
    detail::TaskBase* t = get_running_loop().current_task();
    return t != nullptr ? TaskHandle<>::from_base(*t) : TaskHandle<>();
}

std::vector<TaskHandle<>> all_tasks(EventLoop& loop) {
    std::vector<TaskHandle<>> out;
    loop.for_each_future([&](detail::FutureBase& f) {
        if (f.is_task() && !f.done()) {
            out.push_back(TaskHandle<>::from_base(f));
        }
    });
    return out;
}

std::vector<TaskHandle<>> all_tasks() {
    return all_tasks(get_running_loop());
}

// ---- Runner ----

Runner::Runner(RunOptions options) : options_(options) {
}

Runner::~Runner() {
    try {
        close();
    } catch (const std::exception& e) {
        log(LogLevel::error, fmt::format("coring::Runner: error while closing: {}", e.what()));
    } catch (...) {
        log(LogLevel::error, "coring::Runner: unknown error while closing");
    }
}

EventLoop& Runner::get_loop() {
    if (closed_) {
        throw RuntimeError("Runner is closed");
    }
    if (!loop_) {
        loop_.emplace(EventLoopOptions{options_.ring_entries, options_.debug});
    }
    return *loop_;
}

void Runner::close() {
    if (closed_) {
        return;
    }
    closed_ = true;
    if (!loop_) {
        return;
    }
    try {
        cancel_all_tasks(*loop_);
        loop_->run_until_complete(shutdown_default_executor(*loop_));
    } catch (...) {
        loop_->close();
        loop_.reset();
        throw;
    }
    loop_->close();
    loop_.reset();
}

namespace {

Task<> await_all(std::vector<TaskHandle<>> tasks) {
    for (auto& t : tasks) {
        try {
            co_await t;
        } catch (...) {
            // outcomes are inspected by cancel_all_tasks
        }
    }
}

} // namespace

void cancel_all_tasks(EventLoop& loop) {
    std::vector<TaskHandle<>> tasks = all_tasks(loop);
    if (tasks.empty()) {
        return;
    }
    for (auto& t : tasks) {
        t.cancel();
    }
    loop.run_until_complete(await_all(tasks));
    for (auto& t : tasks) {
        if (t.cancelled()) {
            continue;
        }
        if (std::exception_ptr e = t.exception()) {
            loop.call_exception_handler(
                    {"unhandled exception during coring::run() shutdown", e, t.get_name(), {}});
        }
    }
}

} // namespace coring
