// SPDX-License-Identifier: MIT
// TaskGroup's scope exit and task bookkeeping (asyncio.taskgroups.TaskGroup: __aexit__, _abort,
// _on_task_done), with the fixes of 3.12/3.13 (uncancel after the tasks are done; a cancelled
// parent stays cancelled when an ExceptionGroup is raised).
#include <coring/log.hpp>
#include <coring/task_group.hpp>

#include <fmt/format.h>

#include <iterator>

namespace coring {

/// The scope's exit waiting for the group's tasks (asyncio's `await self._on_completed_fut`).
/// Cancelling the parent while it waits wakes it with CancelledError, as cancelling that future
/// does; the exit loop then cancels the tasks and waits again.
class TaskGroup::JoinAwaiter final : public detail::Waiter {
public:
    explicit JoinAwaiter(TaskGroup& group) noexcept : group_(group) {}

    JoinAwaiter(const JoinAwaiter&) = delete;
    JoinAwaiter& operator=(const JoinAwaiter&) = delete;

    ~JoinAwaiter() {
        if (group_.joiner_ == this) {
            group_.joiner_ = nullptr;
        }
    }

    bool await_ready() const noexcept { return group_.count_ == 0; }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        task_ = h.promise().task_;
        group_.joiner_ = this;
        task_->suspend_on(h, &h.promise(), *this);
    }

    void await_resume() {
        if (group_.joiner_ == this) {
            group_.joiner_ = nullptr;
        }
        if (cancelled_) {
            task_->throw_cancelled();
        }
        if (task_ != nullptr) {
            task_->throw_if_cancel_pending();
        }
    }

    /// The last task finished (asyncio: _on_completed_fut.set_result).
    void complete() noexcept {
        done_ = true;
        group_.joiner_ = nullptr;
        task_->wake();
    }

    bool cancel(const std::string&) noexcept override {
        if (done_) {
            return false;
        }
        done_ = true;
        cancelled_ = true;
        group_.joiner_ = nullptr;
        task_->wake();
        return true;
    }

    void describe(std::string& out) const override {
        fmt::format_to(std::back_inserter(out),
                       "TaskGroup exit: {} task{} left",
                       group_.count_,
                       group_.count_ == 1 ? "" : "s");
        if (!group_.errors_.empty()) {
            fmt::format_to(std::back_inserter(out), ", {} failed", group_.errors_.size());
        }
        if (group_.aborting_) {
            out += ", cancelling";
        }
    }

    void awaited(std::vector<const detail::FutureBase*>& out) const override {
        group_.tasks_.for_each([&](detail::GroupChild& c) {
            if (!c.task_->done()) {
                out.push_back(c.task_);
            }
        });
    }

private:
    TaskGroup& group_;
    detail::TaskBase* task_ = nullptr; // the parent, once suspended
    bool done_ = false;                // woken: every task finished, or cancelled
    bool cancelled_ = false;           // woken by cancel()
};

namespace detail {

void GroupChild::run(DoneNode* node, bool discard) noexcept {
    auto* child = static_cast<GroupChild*>(node);
    TaskBase* task = child->task_;
    TaskGroup* group = child->group_;
    bool held = child->holds_ref_;
    if (discard) {
        // The loop is closing, or the task is being destroyed: keep the count honest.
        child->leave_group();
        --group->count_;
    } else {
        group->on_task_done(*child);
    }
    group->pool_.free(child);
    if (held) {
        task->release();
    }
}

} // namespace detail

TaskGroup::~TaskGroup() {
    // Only a loop closing under the scope leaves tasks here (its ready queue was drained first,
    // so no node is scheduled): take the nodes out of the tasks' callback lists.
    tasks_.for_each([this](detail::GroupChild& c) {
        c.leave_task();
        c.leave_group();
        pool_.free(&c);
    });
}

std::string TaskGroup::describe() const {
    std::string out = "<TaskGroup";
    if (count_ > 0) {
        fmt::format_to(std::back_inserter(out), " tasks={}", count_);
    }
    if (!errors_.empty()) {
        fmt::format_to(std::back_inserter(out), " errors={}", errors_.size());
    }
    if (aborting_) {
        out += " cancelling";
    } else if (entered_) {
        out += " entered";
    }
    out += '>';
    return out;
}

void TaskGroup::enter() {
    // asyncio's __aenter__.
    if (entered_) {
        throw RuntimeError(fmt::format("TaskGroup {} has already been entered", describe()));
    }
    EventLoop& loop = get_running_loop();
    detail::TaskBase* parent = loop.current_task();
    if (parent == nullptr) {
        throw RuntimeError(
                fmt::format("TaskGroup {} cannot determine the parent task", describe()));
    }
    loop_ = &loop;
    parent_ = parent;
    entered_ = true;
}

void TaskGroup::check_can_create() const {
    if (!entered_) {
        throw RuntimeError(fmt::format("TaskGroup {} has not been entered", describe()));
    }
    if (exiting_ && count_ == 0) {
        throw RuntimeError(fmt::format("TaskGroup {} is finished", describe()));
    }
    if (aborting_) {
        throw RuntimeError(fmt::format("TaskGroup {} is shutting down", describe()));
    }
}

void TaskGroup::abort() noexcept {
    aborting_ = true;
    tasks_.for_each([](detail::GroupChild& c) {
        if (!c.task_->done()) {
            try {
                c.task_->cancel({});
            } catch (...) {
            }
        }
    });
}

void TaskGroup::on_task_done(detail::GroupChild& child) noexcept {
    // asyncio's _on_task_done.
    child.leave_group();
    --count_;
    if (count_ == 0 && joiner_ != nullptr) {
        joiner_->complete();
    }
    detail::TaskBase& task = *child.task_;
    if (task.cancelled()) {
        return;
    }
    std::exception_ptr e = task.get_exception(); // marks it retrieved
    if (!e) {
        return;
    }
    try {
        errors_.push_back(e);
    } catch (...) {
        loop_->call_exception_handler(
                {"TaskGroup: out of memory recording a task's exception", e, task.name(), {}});
    }
    if (parent_->done()) {
        std::string message;
        try {
            message = fmt::format("{} has errored out but its parent {} is already completed",
                                  task.describe(),
                                  parent_->describe());
        } catch (...) {
        }
        loop_->call_exception_handler({std::move(message), e, {}, {}});
        return;
    }
    if (!aborting_ && !parent_cancel_requested_) {
        // The parent is not being cancelled: cancel it to stop the body, and remember to take
        // that cancellation back in the scope's exit.
        abort();
        parent_cancel_requested_ = true;
        try {
            parent_->cancel({});
        } catch (...) {
        }
    }
}

Task<> TaskGroup::exit(std::exception_ptr error) {
    // asyncio's __aexit__.
    exiting_ = true;
    std::exception_ptr propagate_cancel = detail::is_cancelled_error(error) ? error : nullptr;
    if (error && !aborting_) {
        // The parent is being cancelled, or the body raised: cancel the tasks.
        abort();
    }
    // A loop, because the wait can be cancelled several times if the parent is cancelled
    // repeatedly (or once while our own cancellation is in progress).
    std::exception_ptr pending_cancel;
    while (count_ > 0) {
        try {
            co_await JoinAwaiter(*this);
        } catch (const CancelledError&) {
            pending_cancel = std::current_exception();
            if (!aborting_) {
                // The parent was cancelled while the body had finished: cancel the tasks.
                propagate_cancel = pending_cancel;
                abort();
            }
        }
    }
    if (parent_cancel_requested_) {
        // The group cancelled its parent: take that request back now that the tasks are done.
        if (parent_->uncancel() == 0) {
            propagate_cancel = nullptr; // nobody else asked for a cancellation
        } else if (!propagate_cancel) {
            propagate_cancel = pending_cancel; // the rest is someone else's: keep it
        }
    }
    // A CancelledError propagates, unless tasks failed: errors have priority.
    if (propagate_cancel && errors_.empty()) {
        std::rethrow_exception(propagate_cancel);
    }
    if (error && !detail::is_cancelled_error(error)) {
        errors_.push_back(error);
    }
    if (!errors_.empty()) {
        // If the parent is being cancelled from outside the group, un-cancel and re-cancel it:
        // the ExceptionGroup propagates, and the cancellation stays pending for the parent's
        // next suspension point (asyncio 3.13).
        if (parent_->cancelling() > 0) {
            parent_->uncancel();
            parent_->cancel({});
        }
        std::vector<std::exception_ptr> errors = std::move(errors_);
        errors_.clear();
        throw ExceptionGroup("unhandled errors in a TaskGroup", std::move(errors));
    }
}

} // namespace coring
