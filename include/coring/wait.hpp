// SPDX-License-Identifier: MIT
// wait(), wait_for() and as_completed(): waiting on several tasks, or on one with a deadline
// (asyncio.wait, asyncio.wait_for, asyncio.as_completed).
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/future.hpp>
#include <coring/task.hpp>

#include <coring/detail/child_watch.hpp>
#include <coring/detail/future_base.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/pointer_set.hpp>
#include <coring/detail/range.hpp>
#include <coring/detail/ref.hpp>
#include <coring/detail/task_base.hpp>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// NextWaiter and AsCompletedState, which AsCompleted derives from and uses; wait() and
// wait_for() have theirs in detail/wait_impl.hpp, included at the end of this header.
#include <coring/detail/as_completed_impl.hpp>

namespace coring {

/// When wait() returns (asyncio's return_when constants).
enum class ReturnWhen : std::uint8_t {
    /// As soon as any task finishes or is cancelled.
    first_completed,
    /// As soon as any task finishes by raising an exception (a cancellation does not count), or
    /// when all are done.
    first_exception,
    /// When all tasks are done.
    all_completed,
};

/// asyncio.FIRST_COMPLETED.
inline constexpr auto FIRST_COMPLETED = ReturnWhen::first_completed;
/// asyncio.FIRST_EXCEPTION.
inline constexpr auto FIRST_EXCEPTION = ReturnWhen::first_exception;
/// asyncio.ALL_COMPLETED.
inline constexpr auto ALL_COMPLETED = ReturnWhen::all_completed;

/// What wait() yields: the tasks that are done and those still pending, each in the order they
/// were given (asyncio returns two sets). Use with structured bindings:
/// `auto [done, pending] = co_await coring::wait(tasks);`
template <class H>
struct WaitResult {
    std::vector<H> done;
    std::vector<H> pending;
};

namespace detail {

// Defined in detail/wait_impl.hpp.
template <class H>
class WaitAwaiter;
template <class R>
auto unique_handles(R&& fs);
template <class H, bool Move>
class WaitForAwaiter;

} // namespace detail

/// What as_completed() returns: size() awaitables, each yielding the next result in completion
/// order. Iterate it, or call next() size() times. Copies share the same state.
template <class T, bool Move>
class AsCompleted {
public:
    /// One `co_await` of it yields the next result in completion order (T, T& or void), or
    /// rethrows that child's exception (CancelledError when it was cancelled).
    /// Throws: TimeoutError once the timeout has passed and no finished result is left;
    /// InvalidStateError when awaited more than size() times in all.
    /// Cancellation: the waiting coroutine gets CancelledError; the children are untouched.
    class [[nodiscard]] Awaiter final : public detail::NextWaiter {
    public:
        explicit Awaiter(detail::AsCompletedState* state) noexcept : NextWaiter(state) {}

        Awaiter(Awaiter&&) noexcept = default;

        bool await_ready() const { return ready(); }

        template <class Promise>
        void await_suspend(std::coroutine_handle<Promise> h) {
            task_ = task_of(h);
            suspend();
            task_->suspend_on(h, &h.promise(), *this);
        }

        decltype(auto) await_resume() {
            detail::FutureBase* f = take();
            if (f == nullptr) {
                throw TimeoutError();
            }
            f->check_result(); // rethrows; marks the exception retrieved
            if constexpr (std::is_void_v<T>) {
                return;
            } else {
                return detail::take_value<T, Move, T>(*f);
            }
        }
    };

    /// Input iterator over the awaitables.
    class iterator {
    public:
        using value_type = Awaiter;
        using difference_type = std::ptrdiff_t;

        iterator() noexcept = default;

        Awaiter operator*() const noexcept { return Awaiter(state_); }

        iterator& operator++() noexcept {
            ++i_;
            return *this;
        }

        void operator++(int) noexcept { ++i_; }

        friend bool operator==(const iterator& a, const iterator& b) noexcept {
            return a.i_ == b.i_;
        }

    private:
        friend class AsCompleted;

        iterator(detail::AsCompletedState* state, std::size_t i) noexcept : state_(state), i_(i) {}

        detail::AsCompletedState* state_ = nullptr;
        std::size_t i_ = 0;
    };

    explicit AsCompleted(detail::AsCompletedState* state) noexcept
        : state_(detail::adopt_ref, state) {}

    // Declared so that there is no move: a moved-from AsCompleted shares the state as a copy
    // does and goes on yielding.
    AsCompleted(const AsCompleted& other) noexcept = default;
    AsCompleted& operator=(const AsCompleted& other) noexcept = default;

    /// How many results it yields: the number of distinct awaitables given.
    std::size_t size() const noexcept { return state_ != nullptr ? state_->size() : 0; }

    /// The next result in completion order (see Awaiter).
    [[nodiscard]] Awaiter next() const noexcept { return Awaiter(state_.get()); }

    iterator begin() const noexcept { return iterator(state_.get(), 0); }

    iterator end() const noexcept { return iterator(state_.get(), size()); }

private:
    detail::Ref<detail::AsCompletedState> state_;
};

/// Waits for the tasks or futures of a range (TaskHandles or Futures; duplicates count once)
/// until return_when is met or the timeout passes, and yields {done, pending} (asyncio.wait).
/// It never raises the tasks' exceptions and never cancels them, not even on timeout.
///
///     auto [done, pending] = co_await coring::wait(tasks, 5s, coring::FIRST_COMPLETED);
///
/// Throws: ValueError for an empty range ("Set of Tasks/Futures is empty.").
/// Cancellation: the awaiting coroutine gets CancelledError; the tasks keep running.
template <detail::InputRange R>
[[nodiscard]] auto wait(R&& fs,
                        std::optional<EventLoop::duration> timeout = std::nullopt,
                        ReturnWhen return_when = ALL_COMPLETED) {
    if (return_when != FIRST_COMPLETED && return_when != FIRST_EXCEPTION &&
        return_when != ALL_COMPLETED) {
        throw ValueError("Invalid return_when value");
    }
    auto handles = detail::unique_handles(std::forward<R>(fs));
    if (handles.empty()) {
        throw ValueError("Set of Tasks/Futures is empty.");
    }
    using H = typename decltype(handles)::value_type;
    return detail::WaitAwaiter<H>(std::move(handles), timeout, return_when);
}

/// wait() without a timeout.
template <detail::InputRange R>
[[nodiscard]] auto wait(R&& fs, ReturnWhen return_when) {
    return wait(std::forward<R>(fs), std::nullopt, return_when);
}

/// wait() with a timeout of any std::chrono duration (rounded up to nanoseconds).
template <detail::InputRange R, class Rep, class Period>
[[nodiscard]] auto
wait(R&& fs, std::chrono::duration<Rep, Period> timeout, ReturnWhen return_when = ALL_COMPLETED) {
    return wait(std::forward<R>(fs), detail::to_timeout(timeout), return_when);
}

/// Waits for aw with a deadline (asyncio.wait_for). A coroutine or other awaitable is wrapped in
/// a task at once; a TaskHandle or Future is awaited as it is. When the timeout passes, the inner
/// task is cancelled, wait_for waits until it has really finished, then raises TimeoutError; if
/// it finished anyway (it returned a value or raised something else), that outcome wins, as in
/// asyncio 3.12. A timeout <= 0 cancels at once unless aw is already done. std::nullopt waits
/// forever. Yields what awaiting the inner task yields: T& for an lvalue TaskHandle or Future,
/// T otherwise.
///
///     std::string page = co_await coring::wait_for(fetch(url), 2s);
///
/// Throws: TimeoutError; the inner task's exception.
/// Cancellation: cancelling the awaiting task cancels the inner one and raises CancelledError
/// once it has finished (never TimeoutError).
template <class A>
[[nodiscard]] auto
wait_for(A&& aw, std::optional<EventLoop::duration> timeout) requires detail::ChildArgument<A> {
    using H = detail::inner_handle_t<A>;
    return detail::WaitForAwaiter<H, detail::ChildTraits<A>::movable>(
            detail::make_inner(std::forward<A>(aw)), timeout);
}

/// wait_for with a timeout of any std::chrono duration (rounded up to nanoseconds).
template <class A, class Rep, class Period>
[[nodiscard]] auto
wait_for(A&& aw, std::chrono::duration<Rep, Period> timeout) requires detail::ChildArgument<A> {
    return wait_for(std::forward<A>(aw), detail::to_timeout(timeout));
}

/// Yields the results of the awaitables in the order they finish (asyncio.as_completed).
/// Coroutines and other awaitables become tasks at once; duplicate handles count once. The
/// returned object is a range of size() awaitables:
///
///     for (auto next : coring::as_completed(std::move(jobs), 10s)) {
///         int r = co_await next;   // the earliest result not yet taken
///     }
///
/// Throws (from each co_await): the child's exception; TimeoutError for every result still
/// missing once the timeout has passed (the children are not cancelled).
template <detail::InputRange R>
[[nodiscard]] auto as_completed(R&& aws,
                                std::optional<EventLoop::duration> timeout = std::nullopt) requires
        detail::ChildArgument<detail::range_reference_t<R>> {
    using Elem = detail::element_arg_t<R>;
    using Tr = detail::ChildTraits<Elem>;
    static_assert(detail::range_gives_tasks_v<R>,
                  "as_completed takes ownership of a range of Tasks: pass std::move(tasks)");
    EventLoop& loop = get_running_loop();
    std::vector<detail::FutureBase*> children;
    detail::PointerSet seen;
    for (auto&& element : aws) {
        detail::FutureBase* f = nullptr;
        if constexpr (std::is_lvalue_reference_v<Elem>) {
            f = &detail::child_future(element);
        } else {
            f = &detail::child_future(std::move(element));
        }
        if (!Tr::is_handle || seen.insert(f)) {
            children.push_back(f);
        }
    }
    auto* s = detail::AsCompletedState::create(children.size(), loop);
    try {
        for (std::size_t i = 0; i < children.size(); ++i) {
            s->watch(i, *children[i]);
        }
        if (timeout && !children.empty()) {
            s->start_timer(*timeout);
        }
    } catch (...) {
        s->unwatch_all();
        s->release();
        throw;
    }
    return AsCompleted<typename Tr::result_type, Tr::movable>(s);
}

/// as_completed with a timeout of any std::chrono duration (rounded up to nanoseconds).
template <detail::InputRange R, class Rep, class Period>
[[nodiscard]] auto as_completed(R&& aws, std::chrono::duration<Rep, Period> timeout) requires
        detail::ChildArgument<detail::range_reference_t<R>> {
    return as_completed(std::forward<R>(aws), detail::to_timeout(timeout));
}

} // namespace coring

// The awaiters of wait() and wait_for(), which need ReturnWhen and WaitResult.
#include <coring/detail/wait_impl.hpp>
