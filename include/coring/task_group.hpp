// SPDX-License-Identifier: MIT
// TaskGroup: structured concurrency, tasks that end with the scope that made them
// (asyncio.taskgroups).
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/task.hpp>

#include <coring/detail/future_base.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/scope_body.hpp>
#include <coring/detail/task_base.hpp>

#include <cstddef>
#include <exception>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace coring {

class TaskGroup;

namespace detail {

struct GroupTag {};

/// A TaskGroup's done node on one of its tasks, and its entry in the group's list of running
/// tasks. It lives in the group's node pool and is registered (owned) in the task's callback
/// list: the task keeps itself alive for it while it is scheduled. The group waits for every
/// node to run before its scope ends; only a loop closing under the scope destroys the group
/// first, and the group then unlinks its nodes from their tasks.
class GroupChild final : public DoneNode, public ListHook<GroupTag> {
public:
    GroupChild(TaskGroup& group, TaskBase& task) noexcept
        : DoneNode(&GroupChild::run, true), group_(&group), task_(&task) {}

    /// Leaves the group's list of running tasks.
    void leave_group() noexcept { static_cast<ListHook<GroupTag>&>(*this).unlink(); }

    /// Leaves the task's callback list.
    void leave_task() noexcept { static_cast<ListHook<>&>(*this).unlink(); }

    TaskGroup* group_;
    TaskBase* task_; // the task: alive while this node is registered or scheduled

private:
    static void run(DoneNode* node, bool discard) noexcept;
};

/// Storage for a group's GroupChild nodes: slabs of nodes and a free list, so that a task in a
/// group costs no allocation besides its frame (one slab per 64 tasks running at once).
class GroupChildPool {
public:
    GroupChildPool() noexcept = default;
    GroupChildPool(const GroupChildPool&) = delete;
    GroupChildPool& operator=(const GroupChildPool&) = delete;

    ~GroupChildPool() {
        while (Slab* s = slabs_) {
            slabs_ = s->next;
            delete s;
        }
    }

    GroupChild* make(TaskGroup& group, TaskBase& task) {
        if (free_ == nullptr) {
            grow();
        }
        Cell* c = free_;
        free_ = c->next_free;
        return ::new (static_cast<void*>(c->bytes)) GroupChild(group, task);
    }

    void free(GroupChild* node) noexcept {
        node->~GroupChild();
        auto* c = reinterpret_cast<Cell*>(node); // the node was built in a Cell's bytes
        c->next_free = free_;
        free_ = c;
    }

private:
    union Cell {
        Cell* next_free;
        alignas(GroupChild) unsigned char bytes[sizeof(GroupChild)];
    };

    struct Slab {
        static constexpr std::size_t size = 64;
        Slab* next;
        Cell cells[size];
    };

    void grow() {
        auto* s = new Slab;
        s->next = slabs_;
        slabs_ = s;
        for (std::size_t i = Slab::size; i > 0; --i) {
            s->cells[i - 1].next_free = free_;
            free_ = &s->cells[i - 1];
        }
    }

    Slab* slabs_ = nullptr;
    Cell* free_ = nullptr;
};

} // namespace detail

/// A group of tasks that ends with the scope that made them (asyncio.TaskGroup). Leaving the scope
/// waits for every task of the group. The first task to fail with anything but CancelledError
/// cancels the other tasks and the body; once all are done, every failure (the body's included,
/// last) leaves the scope together in an ExceptionGroup("unhandled errors in a TaskGroup").
/// Cancelling the task running the scope cancels the group's tasks too, and the scope then raises
/// CancelledError (or the ExceptionGroup, if tasks failed).
///
/// `async with asyncio.TaskGroup() as tg: body` is written
///
///     co_await coring::task_group([&](coring::TaskGroup& tg) -> coring::Task<> {
///         tg.create_task(fetch("a"));
///         tg.create_task(fetch("b"));
///     });   // both are done here
///
/// or, with a group object that outlives the scope, `co_await tg.run(body)`. The body runs inline
/// in the calling task, which is the group's parent task. A TaskGroup is entered once and cannot
/// be moved. Thread safety: loop thread only.
class TaskGroup {
public:
    TaskGroup() noexcept = default;

    TaskGroup(const TaskGroup&) = delete;
    TaskGroup& operator=(const TaskGroup&) = delete;

    /// Unregisters from the tasks still running (only possible when the loop closed under the
    /// scope).
    ~TaskGroup();

    /// Schedules aw as a task of this group (TaskGroup.create_task): a Task<T> or any awaitable,
    /// as coring::create_task. The group waits for it before its scope ends.
    /// Throws: RuntimeError when the group "has not been entered", "is finished" (its scope ended)
    /// or "is shutting down" (a task failed or the parent was cancelled); aw is then destroyed
    /// without running.
    template <class Aw>
    auto create_task(Aw&& aw, std::string name = {});

    /// Runs body as the group's scope and yields its result (asyncio's `async with`): body is a
    /// callable taking TaskGroup& or nothing and returning an awaitable (a lambda coroutine), or
    /// an awaitable itself. Then waits for every task of the group.
    /// Throws: ExceptionGroup when tasks (or the body) failed; RuntimeError when the group was
    /// entered before or outside a task.
    /// Cancellation: a cancellation of the calling task cancels the group's tasks, is waited out,
    /// and raises CancelledError unless tasks failed.
    /// With GCC, a body lambda that owns resources (captures by value something with a
    /// destructor) must be named first and passed by name (docs/pitfalls.md).
    template <class Body>
    [[nodiscard]] Task<detail::scope_result_t<std::decay_t<Body>, TaskGroup>> run(Body&& body) {
        static_assert(!detail::unsafe_scope_body<Body>, CORING_AWAIT_CLOSURE_MESSAGE);
        return detail::run_scope(*this, std::decay_t<Body>(std::forward<Body>(body)));
    }

    /// How many tasks of the group have not finished (asyncio: len(tg._tasks)).
    std::size_t size() const noexcept { return count_; }

    /// "<TaskGroup tasks=2 errors=1 cancelling>", as asyncio's repr.
    std::string describe() const;

private:
    friend class detail::GroupChild;
    friend struct detail::ScopeAccess;
    class JoinAwaiter;

    void enter();
    Task<> exit(std::exception_ptr error);
    void check_can_create() const;
    void abort() noexcept;
    void on_task_done(detail::GroupChild& child) noexcept;

    EventLoop* loop_ = nullptr;
    detail::TaskBase* parent_ = nullptr; // the task running the scope
    detail::GroupChildPool pool_;        // before tasks_: the list must go first
    detail::IntrusiveList<detail::GroupChild, detail::GroupTag> tasks_; // not finished yet
    std::size_t count_ = 0;                                             // size of tasks_
    std::vector<std::exception_ptr> errors_;
    JoinAwaiter* joiner_ = nullptr; // the scope's exit, waiting for tasks_ to empty
    bool entered_ = false;
    bool exiting_ = false;  // the body ended; the scope waits for the tasks
    bool aborting_ = false; // the tasks were cancelled (a task failed, or the parent was)
    bool parent_cancel_requested_ = false; // this group cancelled the parent task
};

/// Runs body as the scope of a new TaskGroup: `co_await coring::task_group(body)` is
/// `co_await TaskGroup().run(body)` (asyncio: `async with asyncio.TaskGroup() as tg: ...`).
/// Throws, Cancellation: as TaskGroup::run.
namespace detail {
template <class Body>
Task<scope_result_t<Body, TaskGroup>> task_group_scope(Body body) {
    TaskGroup group;
    co_return co_await run_scope(group, std::move(body));
}
} // namespace detail

template <class Body>
[[nodiscard]] Task<detail::scope_result_t<std::decay_t<Body>, TaskGroup>> task_group(Body&& body) {
    static_assert(!detail::unsafe_scope_body<Body>, CORING_AWAIT_CLOSURE_MESSAGE);
    return detail::task_group_scope(std::decay_t<Body>(std::forward<Body>(body)));
}

// Implementation

template <class Aw>
auto TaskGroup::create_task(Aw&& aw, std::string name) {
    try {
        check_can_create();
    } catch (...) {
        if constexpr (detail::IsTask<std::remove_cvref_t<Aw>>::value) {
            // asyncio 3.13 closes the coroutine; destroying it quietly avoids the debug-mode
            // "never awaited" report for a coroutine the caller did hand over.
            if (auto h = aw.release()) {
                h.destroy();
            }
        }
        throw;
    }
    auto handle = loop_->create_task(std::forward<Aw>(aw), std::move(name));
    detail::GroupChild* child = pool_.make(*this, *handle.base());
    tasks_.push_back(*child);
    ++count_;
    handle.base()->add_done_node(*child); // pending: only links the node
    return handle;
}

} // namespace coring
