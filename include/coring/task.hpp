// SPDX-License-Identifier: MIT
// Task<T>, the coroutine type, and TaskHandle<T>, a scheduled task (asyncio.tasks).
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>

#include <coring/detail/awaitable_traits.hpp>
#include <coring/detail/frame_allocator.hpp>
#include <coring/detail/ref.hpp>
#include <coring/detail/result.hpp>
#include <coring/detail/task_base.hpp>

#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace coring {

template <class T = void>
class Task;

template <class T = void>
class TaskHandle;

namespace detail {

/// The promise of a Task<T> coroutine. Its frame comes from the recycling frame allocator.
template <class T>
class TaskPromise final : public TaskBase, public ReturnValue<T> {
public:
    TaskPromise(PromiseTag = PromiseTag{},
                const char* function = __builtin_FUNCTION(),
                const char* file = __builtin_FILE(),
                unsigned line = __builtin_LINE()) noexcept
        : TaskBase(function, file, line) {}

    Task<T> get_return_object() noexcept;

    std::suspend_always initial_suspend() const noexcept { return {}; }

    FinalAwaiter final_suspend() const noexcept { return {}; }

    void unhandled_exception() noexcept { exception_ = std::current_exception(); }

    static void* operator new(std::size_t size) { return frame_allocate(size); }

    static void operator delete(void* p, std::size_t size) noexcept { frame_deallocate(p, size); }

private:
    void destroy() noexcept override {
        std::coroutine_handle<TaskPromise>::from_promise(*this).destroy();
    }
};

template <class T>
struct IsTask : std::false_type {};

template <class T>
struct IsTask<Task<T>> : std::true_type {};

template <class T>
struct IsTaskHandle : std::false_type {};

template <class T>
struct IsTaskHandle<TaskHandle<T>> : std::true_type {};

/// Turns any awaitable into a Task (asyncio.ensure_future on an awaitable).
template <class A>
Task<await_result_t<A>> wrap_awaitable(A awaitable) {
    co_return co_await std::move(awaitable);
}

} // namespace detail

/// The coroutine type (asyncio's `async def`). Lazy: nothing runs until it is awaited, which
/// runs it inline by symmetric transfer as `await coro()` does, or handed to create_task, which
/// schedules it as a task. T may be void, a reference or move-only. Move-only itself.
///
///     coring::Task<int> answer() { co_await coring::sleep(10ms); co_return 42; }
///     coring::Task<> main_task() { int x = co_await answer(); }
template <class T>
class [[nodiscard]] Task {
public:
    using promise_type = detail::TaskPromise<T>;
    using value_type = T;

    Task() noexcept = default;

    explicit Task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}

    Task(Task&& other) noexcept : h_(std::exchange(other.h_, {})) {}

    Task& operator=(Task&& other) noexcept {
        if (this != &other) {
            reset();
            h_ = std::exchange(other.h_, {});
        }
        return *this;
    }

    /// Destroys the coroutine. In debug mode, one never started is reported as never awaited.
    ~Task() { reset(); }

    /// Whether this holds a coroutine.
    bool valid() const noexcept { return static_cast<bool>(h_); }

    /// Runs the coroutine inline and yields its result or rethrows its exception.
    /// Throws: InvalidStateError when the Task is empty or was awaited already.
    auto operator co_await() & noexcept { return Awaiter{h_}; }

    auto operator co_await() && noexcept { return Awaiter{h_}; }

    /// Gives up ownership of the coroutine (create_task takes it this way).
    std::coroutine_handle<promise_type> release() noexcept { return std::exchange(h_, {}); }

private:
    struct Awaiter {
        std::coroutine_handle<promise_type> h;

        bool await_ready() const {
            if (!h || h.promise().started()) {
                throw InvalidStateError("coring::Task: this coroutine was already awaited or "
                                        "scheduled (or the Task is empty)");
            }
            return false;
        }

        template <class Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> parent) noexcept {
            static_assert(std::is_base_of_v<detail::TaskBase, Promise>,
                          "a coring::Task must be awaited from a coring::Task coroutine");
            h.promise().start_inline(parent.promise(), parent);
            return h;
        }

        T await_resume() {
            promise_type& p = h.promise();
            if (p.stored_exception()) {
                std::rethrow_exception(p.stored_exception());
            }
            if constexpr (std::is_reference_v<T>) {
                return p.result_.get();
            } else if constexpr (!std::is_void_v<T>) {
                return std::move(p.result_.get());
            }
        }
    };

    void reset() noexcept {
        if (h_) {
            if (!h_.promise().started() && detail::debug_enabled()) {
                detail::report_never_awaited(h_.promise());
            }
            h_.destroy();
            h_ = {};
        }
    }

    std::coroutine_handle<promise_type> h_;
};

namespace detail {

template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
    return Task<T>(std::coroutine_handle<TaskPromise>::from_promise(*this));
}

} // namespace detail

/// A scheduled task (asyncio.Task), returned by create_task. Copies refer to the same task;
/// the task keeps running when every handle is gone. Awaiting it from any number of coroutines
/// waits for it to finish: an lvalue handle yields T& (the task keeps the value), an rvalue
/// handle yields T moved out of the task. TaskHandle<> (void) can refer to a task of any type.
/// Thread safety: loop thread only.
template <class T>
class TaskHandle {
public:
    using value_type = T;

    TaskHandle() noexcept = default;

    /// Erases the result type: a TaskHandle<> refers to any task.
    template <class U>
    requires(std::is_void_v<T> && !std::is_void_v<U>) TaskHandle(const TaskHandle<U>& other)
    noexcept : t_(other.t_) {}

    /// Whether the task has finished: returned, raised or was cancelled.
    bool done() const noexcept { return t_->done(); }

    /// Whether the task ended cancelled.
    bool cancelled() const noexcept { return t_->cancelled(); }

    /// The task's value (T& into the task), or rethrows its exception.
    /// Throws: CancelledError when cancelled; InvalidStateError("Result is not set.") when
    /// not done.
    decltype(auto) result() const {
        t_->check_result();
        if constexpr (!std::is_void_v<T>) {
            return promise().result_.get();
        }
    }

    /// The task's exception, or null when it returned normally.
    /// Throws: CancelledError when cancelled; InvalidStateError when not done.
    std::exception_ptr exception() const { return t_->get_exception(); }

    /// Asks the task to cancel: CancelledError is thrown into it at its current suspension
    /// point, and whatever it awaits (an I/O operation in the kernel, another task) is cancelled
    /// too. Returns false when the task is already done. The task may catch the error and go on.
    bool cancel(const std::string& msg = {}) const { return t_->cancel(msg); }

    /// How many cancellation requests are pending (Task.cancelling()).
    std::uint32_t cancelling() const noexcept { return t_->cancelling(); }

    /// Withdraws one cancellation request; returns how many remain (Task.uncancel()).
    std::uint32_t uncancel() const noexcept { return t_->uncancel(); }

    /// Calls f(TaskHandle<T>) on a later iteration once the task is done (at once scheduled
    /// when it is done already). Returns an id for remove_done_callback.
    template <class F>
    CallbackId add_done_callback(F f) const {
        if (t_->loop() == nullptr) {
            throw RuntimeError("Event loop is closed");
        }
        std::uint64_t token = detail::next_callback_token();
        auto* node = new detail::CallbackNode<TaskHandle, F>(*t_, std::move(f), token);
        t_->add_done_node(*node);
        return CallbackId{token};
    }

    /// Removes a callback that has not been scheduled yet; returns how many were removed.
    std::size_t remove_done_callback(CallbackId id) const noexcept {
        return t_->remove_done_node(id.token);
    }

    /// The task's name: the one given to create_task or set_name, or "Task-N".
    std::string get_name() const { return t_->name(); }

    void set_name(std::string name) const { t_->set_name(std::move(name)); }

    /// The loop the task runs on. Throws: RuntimeError when that loop has closed.
    EventLoop& get_loop() const {
        if (t_->loop() == nullptr) {
            throw RuntimeError("Event loop is closed");
        }
        return *t_->loop();
    }

    /// The chain of coroutines the task is running, root first, and what the innermost one
    /// waits on (asyncio's Task.get_stack / print_stack).
    std::string get_stack() const {
        std::string out;
        t_->describe_stack(out);
        return out;
    }

    /// Whether this refers to a task.
    explicit operator bool() const noexcept { return static_cast<bool>(t_); }

    friend bool operator==(const TaskHandle& a, const TaskHandle& b) noexcept {
        return a.t_ == b.t_;
    }

    /// Waits for the task to finish; yields T& or rethrows.
    auto operator co_await() const& noexcept { return Awaiter<false>(*t_); }

    /// Waits for the task to finish; yields T moved out of the task, or rethrows.
    auto operator co_await() && noexcept { return Awaiter<true>(*t_); }

    /// A handle sharing ownership of base, which must be a task with result type T (or any
    /// task, for TaskHandle<>).
    static TaskHandle from_base(detail::FutureBase& base) noexcept {
        auto* t = static_cast<detail::TaskBase*>(&base);
        t->add_ref();
        return TaskHandle(t);
    }

    /// Adopts a reference the caller already holds.
    static TaskHandle adopt(detail::TaskBase* t) noexcept { return TaskHandle(t); }

    /// The task's state, for coring's own layers.
    detail::TaskBase* base() const noexcept { return t_.get(); }

private:
    template <class>
    friend class TaskHandle;

    explicit TaskHandle(detail::TaskBase* t) noexcept : t_(detail::adopt_ref, t) {}

    detail::TaskPromise<T>& promise() const noexcept requires(!std::is_void_v<T>) {
        return static_cast<detail::TaskPromise<T>&>(*t_);
    }

    template <bool Move>
    class Awaiter final : public detail::DoneAwaiter {
    public:
        explicit Awaiter(detail::TaskBase& t) noexcept : DoneAwaiter(t) {}

        decltype(auto) await_resume() {
            after_resume();
            auto& t = static_cast<detail::TaskBase&>(*future_);
            t.check_result();
            if constexpr (std::is_void_v<T>) {
                return;
            } else if constexpr (Move && !std::is_reference_v<T>) {
                return T(std::move(static_cast<detail::TaskPromise<T>&>(t).result_.get()));
            } else {
                return static_cast<T&>(static_cast<detail::TaskPromise<T>&>(t).result_.get());
            }
        }
    };

    detail::Ref<detail::TaskBase> t_;
};

/// Schedules aw as a task on the running loop (asyncio.create_task): its first step runs on a
/// later iteration, and it runs to the end even if the handle is dropped. aw is a Task<T> or
/// any awaitable (which is wrapped in a Task).
/// Throws: RuntimeError("no running event loop") outside a running loop.
template <class Aw>
auto create_task(Aw&& aw, std::string_view name = {}) {
    return get_running_loop().create_task(std::forward<Aw>(aw), name);
}

/// The task whose step is running (asyncio.current_task()), or an empty handle outside a task.
/// Throws: RuntimeError when no loop is running.
TaskHandle<> current_task();

/// The running loop's tasks that are not done yet (asyncio.all_tasks()).
/// Throws: RuntimeError when no loop is running.
std::vector<TaskHandle<>> all_tasks();

/// loop's tasks that are not done yet.
std::vector<TaskHandle<>> all_tasks(EventLoop& loop);

// Implementation

template <class Aw>
auto EventLoop::create_task(Aw&& aw, std::string_view name) {
    using A = std::remove_cvref_t<Aw>;
    if constexpr (detail::IsTask<A>::value) {
        static_assert(!std::is_lvalue_reference_v<Aw>,
                      "create_task takes ownership of the Task: pass f() or std::move(task)");
        using T = typename A::value_type;
        check_closed();
        auto h = aw.release();
        if (!h || h.promise().started()) {
            throw InvalidStateError("create_task: the Task is empty or was already awaited");
        }
        h.promise().start_root(*this, h, name);
        return TaskHandle<T>::adopt(&h.promise());
    } else {
        static_assert(Awaitable<Aw>, "create_task needs a Task or an awaitable");
        return create_task(detail::wrap_awaitable<std::decay_t<Aw>>(std::forward<Aw>(aw)), name);
    }
}

template <class Aw>
decltype(auto) EventLoop::run_until_complete(Aw&& aw) {
    using A = std::remove_cvref_t<Aw>;
    check_closed();
    if constexpr (detail::IsTaskHandle<A>::value) {
        using T = typename A::value_type;
        TaskHandle<T> task = aw;
        CallbackId id = task.add_done_callback([this](const TaskHandle<T>&) { stop(); });
        try {
            run_forever();
        } catch (...) {
            task.remove_done_callback(id);
            throw;
        }
        task.remove_done_callback(id);
        if (!task.done()) {
            throw RuntimeError("Event loop stopped before Future completed.");
        }
        if constexpr (std::is_void_v<T>) {
            task.result();
        } else if constexpr (std::is_lvalue_reference_v<Aw> || std::is_reference_v<T>) {
            return task.result();
        } else {
            return T(std::move(task.result()));
        }
    } else {
        auto task = create_task(std::forward<Aw>(aw));
        try {
            auto owned = task; // this call owns the task: its value may be moved out
            return run_until_complete(std::move(owned));
        } catch (...) {
            // Mark the task's exception retrieved: it is being rethrown to the caller.
            if (task.done() && !task.cancelled()) {
                static_cast<void>(task.exception());
            }
            throw;
        }
    }
}

} // namespace coring
