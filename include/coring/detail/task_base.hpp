// SPDX-License-Identifier: MIT
// TaskBase: the promise part every Task<T> coroutine shares, and the state of a scheduled task
// (asyncio.tasks.Task: steps, cancellation requests, name, the thing it waits on).
#pragma once

#include <coring/event_loop.hpp>

#include <coring/detail/future_base.hpp>

#include <coroutine>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

namespace coring::detail {

/// Passed first to the promise constructor so that a coroutine's own parameters never match it;
/// the defaults that follow record where the coroutine was defined.
struct PromiseTag {
    explicit PromiseTag() = default;
};

/// Promise base of every Task<T> coroutine. A coroutine awaited directly (`co_await f()`) runs
/// inline as part of its awaiter's task and uses only the chain fields; the root coroutine of a
/// scheduled task (create_task) also uses the task fields, and its frame is the task's state.
class TaskBase : public FutureBase {
public:
    TaskBase(const char* function, const char* file, unsigned line) noexcept
        : FutureBase(true), function_(function), file_(file), line_(line) {}

    // ---- the chain of coroutines a task runs ----
    //
    // A coroutine is either awaited inline (a child: task_ != this) or the root of a task
    // (task_ == this). The two roles never overlap, so handle_ and link_ serve both, which keeps
    // every frame 16 bytes smaller (a million sleeping tasks is a normal load).

    std::coroutine_handle<>
            handle_;           // child: the awaiting coroutine; root: where the next step resumes
    TaskBase* link_ = nullptr; // child: the awaiting coroutine's promise; root: the innermost
    TaskBase* task_ = nullptr; // the scheduled task this coroutine runs in
    const char* function_;     // the coroutine function's name
    const char* file_;         // the file of its definition
    unsigned line_;            // the line of its definition

    /// Whether this coroutine is the root of a scheduled task.
    bool is_root() const noexcept { return task_ == this; }

    /// Whether the coroutine has begun: awaited inline, or its task took its first step.
    bool started() const noexcept { return started_; }

    /// Prepares this coroutine to run inline under parent (co_await of a lazy Task<T>).
    void start_inline(TaskBase& parent, std::coroutine_handle<> continuation) noexcept {
        handle_ = continuation;
        link_ = &parent;
        task_ = parent.task_;
        started_ = true;
    }

    /// The exception the coroutine ended with, or null.
    const std::exception_ptr& stored_exception() const noexcept { return exception_; }

    // ---- a scheduled task (the root of a chain) ----

    /// Called by an awaiter's await_suspend: the task will resume at h (in coroutine inner)
    /// and waits on w. If a cancellation is pending, it is passed to w at once (asyncio's
    /// __step: "if self._must_cancel: if self._fut_waiter.cancel(): ...").
    void suspend_on(std::coroutine_handle<> h, TaskBase* inner, Waiter& w) noexcept {
        handle_ = h;
        link_ = inner;
        waiter_ = &w;
        if (must_cancel_ && w.cancel(cancel_message())) {
            must_cancel_ = false;
        }
    }

    /// suspend_on for a caller that has just seen must_cancel() false, with nothing since that
    /// could have set it: the test is not made again.
    void suspend_on_uncancelled(std::coroutine_handle<> h, TaskBase* inner, Waiter& w) noexcept {
        handle_ = h;
        link_ = inner;
        waiter_ = &w;
    }

    /// Called by an awaiter that only yields (sleep(0)): resume at h on the next iteration.
    void suspend_yield(std::coroutine_handle<> h, TaskBase* inner) {
        handle_ = h;
        link_ = inner;
        waiter_ = nullptr;
        wake();
    }

    /// Schedules the task's next step (appends it to the ready queue).
    void wake() { detail::LoopAccess::schedule(*loop_, {&TaskBase::step_entry, this}); }

    /// Throws the pending cancellation, if any. Awaiters call it from await_resume: asyncio
    /// throws CancelledError into the coroutine when _must_cancel is set at the next step.
    void throw_if_cancel_pending() {
        if (must_cancel_) {
            must_cancel_ = false;
            throw_cancelled();
        }
    }

    /// Throws CancelledError carrying the cancel message.
    [[noreturn]] void throw_cancelled() const;

    /// An I/O operation's result won the race against cancel(): the coroutine gets the result
    /// and the cancellation waits for its next suspension point. If the task ends before one,
    /// it ends with its result (finish_root), so an operation is either done or cancelled,
    /// never both: a received byte, an accepted connection or a write that reached the file is
    /// never reported as cancelled (issue 10).
    void keep_result_over_cancel() noexcept {
        must_cancel_ = true;
        result_won_ = true;
    }

    bool must_cancel() const noexcept { return must_cancel_; }

    void clear_must_cancel() noexcept { must_cancel_ = false; }

    /// Task.cancel(msg).
    bool cancel(const std::string& msg) override;

    /// Task.cancelling(): the number of cancellation requests not yet withdrawn.
    std::uint32_t cancelling() const noexcept { return num_cancels_requested_; }

    /// Task.uncancel(): withdraws one request and returns the remaining count. When it reaches
    /// zero a pending cancellation is dropped too (asyncio 3.13).
    std::uint32_t uncancel() noexcept;

    /// What the task is suspended on, or null (running, scheduled, done or not started).
    const Waiter* waiter() const noexcept { return waiter_; }

    /// Task.get_name(): the name given, or "Task-N".
    std::string name() const;

    void set_name(std::string name);

    std::uint64_t id() const noexcept { return id_; }

    /// "Task 'name'" for reports.
    std::string describe() const override;

    /// One line per coroutine from the root to the innermost, then what it waits on.
    void describe_stack(std::string& out) const;

    /// Debug mode only (empty otherwise): appends, indented, the task's async stack when it last
    /// suspended and the stack of the task that created it, for "Task exception was never
    /// retrieved".
    void describe_origin(std::string& out) const;

    /// Makes this coroutine (whose handle is self) the root of a task on loop and schedules
    /// its first step. The task holds two references: the loop's, and the caller's.
    void start_root(EventLoop& loop, std::coroutine_handle<> self, std::string_view name);

    /// Ready-queue entry function: runs one step of the task.
    static void step_entry(void* self, bool discard) noexcept;

    void detach_from_loop() noexcept override;

protected:
    /// The root coroutine returned or threw: record the outcome and wake whoever waits.
    void finish_root() noexcept;

private:
    friend struct FinalAwaiter;
    friend class DoneAwaiter;
    template <class>
    friend class TaskPromise;

    void step() noexcept;
    bool begin_step() noexcept;
    void step_instrumented(EventLoop& loop) noexcept;
    void on_created(EventLoop& loop);
    const std::string& cancel_message() const noexcept;

    struct Extras {
        std::string name;
        std::string cancel_message;
        std::string created_by; // debug mode: the creating task's stack
        std::string last_stack; // debug mode: the stack when the task last suspended
    };

    std::uint32_t num_cancels_requested_ = 0; // beside line_, filling its padding
    Waiter* waiter_ = nullptr;                // what the task is suspended on, or null
    std::unique_ptr<Extras> extras_;          // only when named or cancelled with a message
    std::uint64_t id_ = 0;
    // started_ and must_cancel_ live in FutureBase's flag byte.
};

/// final_suspend of every Task<T>: an inline coroutine hands control back to its awaiter by
/// symmetric transfer; a task's root records its outcome and finishes the task.
struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }

    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
        TaskBase& p = h.promise();
        if (!p.is_root()) {
            return p.handle_;
        }
        p.finish_root(); // may destroy the frame: touch nothing after this
        return std::noop_coroutine();
    }

    void await_resume() const noexcept {}
};

/// Whether debug mode is on for code running now: the running loop's flag, or CORING_DEBUG=1.
bool debug_enabled() noexcept;

/// Reports a coroutine that was created but never awaited or scheduled.
void report_never_awaited(const TaskBase& coroutine) noexcept;

/// A task suspended on a Future or another Task (asyncio: fut.add_done_callback(__wakeup)).
/// Cancelling the task cancels what it awaits, as Task.cancel() cancels _fut_waiter.
class DoneAwaiter : public DoneNode, public Waiter {
public:
    explicit DoneAwaiter(FutureBase& future) noexcept
        : DoneNode(&DoneAwaiter::run), future_(&future) {}

    bool await_ready() const noexcept { return future_->done(); }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        static_assert(std::is_base_of_v<TaskBase, Promise>,
                      "coring awaitables must be awaited from a coring::Task coroutine");
        TaskBase* task = h.promise().task_;
        check_awaitable(task);
        task_ = task;
        future_->add_done_node(*this);
        task->suspend_on(h, &h.promise(), *this);
    }

    bool cancel(const std::string& msg) noexcept override;

    void describe(std::string& out) const override;

    void awaited(std::vector<const FutureBase*>& out) const override { out.push_back(future_); }

protected:
    ~DoneAwaiter() = default;

    /// After resuming: throws a cancellation that arrived after the future finished.
    void after_resume() {
        if (task_ != nullptr) {
            task_->throw_if_cancel_pending();
        }
    }

    FutureBase* future_;

private:
    static void run(DoneNode* node, bool discard) noexcept;
    void check_awaitable(TaskBase* task) const;

    TaskBase* task_ = nullptr; // set once suspended
};

} // namespace coring::detail
