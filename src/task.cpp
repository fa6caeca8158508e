// SPDX-License-Identifier: MIT
// Tasks (asyncio.tasks): steps, cancellation, names and async stacks, the never-awaited report,
// current_task/all_tasks.
#include <coring/event_loop.hpp>
#include <coring/log.hpp>
#include <coring/task.hpp>

#include <coring/detail/future_base.hpp>
#include <coring/detail/task_base.hpp>

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>

#include "diagnostics.hpp"
#include "loop_debug.hpp"
#include "task_internal.hpp"

namespace coring {

namespace detail {

std::string source_of(const TaskBase& t) {
    return fmt::format("{} at {}:{}", t.function_, t.file_, t.line_);
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
    id_ = detail::LoopAccess::next_task_id();
    if (!name.empty()) {
        set_name(std::string(name));
    }
    if (detail::LoopAccess::instrumented(loop)) [[unlikely]] {
        on_created(loop);
    }
    wake();
}

void TaskBase::on_created(EventLoop& loop) {
    if (loop.get_debug()) {
        if (TaskBase* creator = loop.current_task()) {
            std::string stack;
            creator->describe_stack(stack);
            if (!extras_) {
                extras_ = std::make_unique<Extras>();
            }
            extras_->created_by = std::move(stack);
        }
    }
    if (LoopDebug* dbg = detail::LoopAccess::debug_state(loop)) {
        dbg->task_created(*this);
    }
}

void TaskBase::describe_origin(std::string& out) const {
    if (!extras_) {
        return;
    }
    auto indented = [&out](std::string_view text) {
        bool at_start = true;
        for (char c : text) {
            if (at_start) {
                out += "    ";
                at_start = false;
            }
            out += c;
            at_start = c == '\n';
        }
    };
    auto section = [&](std::string_view header, const std::string& text) {
        if (text.empty()) {
            return;
        }
        out += "\n  ";
        out += header;
        out += '\n';
        indented(text);
        while (!out.empty() && out.back() == '\n') {
            out.pop_back();
        }
    };
    section("async stack when the task last resumed:", extras_->last_stack);
    section("created by:", extras_->created_by);
}

void TaskBase::step_entry(void* self, bool discard) noexcept {
    if (!discard) {
        static_cast<TaskBase*>(self)->step();
    }
}

[[gnu::always_inline]] inline bool TaskBase::begin_step() noexcept {
    waiter_ = nullptr;
    if (!started_) {
        started_ = true;
        if (must_cancel_) {
            // Cancelled before its first step: the coroutine never runs (coro.throw() on an
            // unstarted coroutine raises at once).
            must_cancel_ = false;
            exception_ = std::make_exception_ptr(CancelledError(cancel_message()));
            finish_root();
            return false;
        }
    }
    return true;
}

void TaskBase::step() noexcept {
    // asyncio's Task.__step.
    EventLoop& loop = *loop_;
    if (detail::LoopAccess::instrumented(loop)) [[unlikely]] {
        step_instrumented(loop);
        return;
    }
    if (!begin_step()) {
        return;
    }
    detail::LoopAccess::set_current_task(loop, this);
    handle_.resume(); // may finish and destroy the task
    detail::LoopAccess::set_current_task(loop, nullptr);
}

void TaskBase::step_instrumented(EventLoop& loop) noexcept {
    // step() in debug mode (slow-step report, the stack for unretrieved-exception reports) or
    // with a debugging tool on (watchdog description, trace events).
    bool debug = loop.get_debug();
    LoopDebug* dbg = detail::LoopAccess::debug_state(loop);
    std::string stack; // before begin_step clears waiter_: what the task was waiting on
    std::string what;
    try {
        if (debug || (dbg != nullptr && dbg->wants_task_stack())) {
            describe_stack(stack);
        }
        if (debug) {
            what = fmt::format("<Task '{}' {}>", name(), source_of(*this));
            if (!extras_) {
                extras_ = std::make_unique<Extras>();
            }
            extras_->last_stack = stack;
        }
    } catch (...) {
    }
    if (dbg != nullptr) {
        dbg->task_step_begin(*this, stack);
    }
    if (begin_step()) {
        detail::LoopAccess::set_current_task(loop, this);
        auto t0 = EventLoop::clock::now();
        handle_.resume(); // may finish and destroy the task: only locals below
        auto took = EventLoop::clock::now() - t0;
        detail::LoopAccess::set_current_task(loop, nullptr);
        if (debug && took >= loop.slow_callback_duration()) {
            detail::LoopAccess::report_slow_callback(loop, what, took);
        }
    }
    if (LoopDebug* d = detail::LoopAccess::debug_state(loop)) {
        d->task_step_end();
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
    // a step's loop: never null here
    if (detail::LoopAccess::debug_state(*loop_) != nullptr) [[unlikely]] {
        detail::LoopAccess::debug_state(*loop_)->task_done(*this);
    }
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
        throw RuntimeError(fmt::format(
                "{} is attached to a different loop (it belongs to {}, awaited on {})",
                future_->describe(),
                future_->loop() != nullptr ? future_->loop()->describe() : "a closed loop",
                task->loop() != nullptr ? task->loop()->describe() : "a closed loop"));
    }
}

// ---- debug reports ----

bool debug_enabled() noexcept {
    if (EventLoop* loop = EventLoop::running()) {
        return loop->get_debug();
    }
    static const bool env = debug_from_env();
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

// ---- current_task, all_tasks ----

TaskHandle<> current_task() {
    detail::TaskBase* t = get_running_loop().current_task();
    return t != nullptr ? TaskHandle<>::from_base(*t) : TaskHandle<>();
}

std::vector<TaskHandle<>> all_tasks(EventLoop& loop) {
    std::vector<TaskHandle<>> out;
    detail::LoopAccess::for_each_future(loop, [&](detail::FutureBase& f) {
        if (f.is_task() && !f.done()) {
            out.push_back(TaskHandle<>::from_base(f));
        }
    });
    return out;
}

std::vector<TaskHandle<>> all_tasks() {
    return all_tasks(get_running_loop());
}

} // namespace coring
