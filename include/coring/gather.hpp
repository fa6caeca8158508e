// SPDX-License-Identifier: MIT
// gather(): run awaitables concurrently and collect their results in order (asyncio.gather).
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/task.hpp>

#include <coring/detail/child_watch.hpp>
#include <coring/detail/frame_allocator.hpp>
#include <coring/detail/future_base.hpp>
#include <coring/detail/range.hpp>
#include <coring/detail/task_base.hpp>

#include <array>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <iterator>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

// The machinery of gather() (its states and awaiters), which Outcome and gather() use.
#include <coring/detail/gather_impl.hpp>

namespace coring {

/// Selects the form of gather that returns every child's outcome instead of raising the first
/// exception (asyncio's `gather(..., return_exceptions=True)`).
struct ReturnExceptions {
    explicit ReturnExceptions() = default;
};

/// `coring::gather(coring::return_exceptions, a, b)` is `asyncio.gather(a, b,
/// return_exceptions=True)`.
inline constexpr ReturnExceptions return_exceptions{};

/// The outcome of one child of `gather(return_exceptions, ...)`: its value, or the exception it
/// ended with (a CancelledError when it was cancelled). T may be void or a reference. The
/// exception API (has_value, has_exception, cancelled, holds<E>, exception, rethrow_if_failed)
/// is detail::OutcomeBase's.
///
///     auto [a, b] = co_await coring::gather(coring::return_exceptions, fetch(x), fetch(y));
///     if (a) use(*a); else log(coring::describe_exception(a.exception()));
template <class T>
class Outcome : public detail::OutcomeBase {
public:
    using value_type = T;

    /// An outcome holding a value constructed from args.
    template <class... Args>
    explicit Outcome(std::in_place_t, Args&&... args) : value_(std::forward<Args>(args)...) {}

    /// An outcome holding an exception. Throws: ValueError when e is null.
    explicit Outcome(std::exception_ptr e) : OutcomeBase(std::move(e)) {}

    /// The value. Throws: the child's exception when it has no value.
    T& value() & {
        rethrow_if_failed();
        return *value_;
    }

    const T& value() const& {
        rethrow_if_failed();
        return *value_;
    }

    T&& value() && {
        rethrow_if_failed();
        return std::move(*value_);
    }

    /// The value; precondition: has_value().
    T& operator*() & noexcept { return *value_; }

    const T& operator*() const& noexcept { return *value_; }

    T* operator->() noexcept { return &*value_; }

    const T* operator->() const noexcept { return &*value_; }

private:
    std::optional<T> value_;
};

/// The outcome of a child returning a reference.
template <class T>
class Outcome<T&> : public detail::OutcomeBase {
public:
    using value_type = T&;

    explicit Outcome(std::in_place_t, T& v) noexcept : value_(&v) {}

    explicit Outcome(std::exception_ptr e) : OutcomeBase(std::move(e)) {}

    T& value() const {
        rethrow_if_failed();
        return *value_;
    }

    T& operator*() const noexcept { return *value_; }

    T* operator->() const noexcept { return value_; }

private:
    T* value_ = nullptr;
};

/// The outcome of a child returning void: success, or an exception.
template <>
class Outcome<void> : public detail::OutcomeBase {
public:
    using value_type = void;

    explicit Outcome(std::in_place_t) noexcept {}

    explicit Outcome(std::exception_ptr e) : OutcomeBase(std::move(e)) {}

    /// Returns when the child succeeded; rethrows its exception otherwise.
    void value() const { rethrow_if_failed(); }
};

/// Runs the awaitables concurrently and yields their results as a std::tuple in argument order
/// (asyncio.gather). Coroutines and other awaitables are wrapped in tasks at once (created when
/// gather is called, as asyncio's ensure_future does); TaskHandles and Futures are used as they
/// are. A void result becomes std::monostate. Results of lvalue handles are copied; all others
/// are moved out of their tasks.
///
///     auto [page, count] = co_await coring::gather(fetch(url), count_users());
///
/// Throws: the first exception a child raises, as soon as it is raised; the other children keep
/// running (their later exceptions are marked retrieved). CancelledError when a child was
/// cancelled.
/// Cancellation: cancelling the awaiting task cancels every child still running; the gather then
/// raises CancelledError, even if the children swallow their cancellation.
template <class... A>
[[nodiscard]] auto gather(A&&... aws) requires(detail::ChildArgument<A>&&...) {
    return detail::GatherAwaiter<false, A...>(std::forward<A>(aws)...);
}

/// Like gather(a, b, ...), but never raises a child's exception: yields a std::tuple of
/// Outcome<T>, each holding the child's value or the exception it ended with
/// (asyncio.gather(..., return_exceptions=True)).
/// Cancellation: cancelling the awaiting task still raises CancelledError (bpo-32684).
template <class... A>
[[nodiscard]] auto gather(ReturnExceptions, A&&... aws) requires(detail::ChildArgument<A>&&...) {
    return detail::GatherAwaiter<true, A...>(std::forward<A>(aws)...);
}

/// gather over a range of awaitables (Tasks, TaskHandles, Futures, ...): yields a std::vector of
/// their results in range order (T& results become std::reference_wrapper<T>). A range of Tasks
/// must be given as an rvalue (gather takes the coroutines). An empty range yields an empty
/// vector without suspending.
///
///     std::vector<coring::Task<int>> jobs = make_jobs();
///     std::vector<int> results = co_await coring::gather(std::move(jobs));
///
/// Throws, Cancellation: as gather(a, b, ...).
template <detail::ChildRange R>
[[nodiscard]] auto gather(R&& range) {
    static_assert(detail::range_gives_tasks_v<R>,
                  "gather takes ownership of a range of Tasks: pass std::move(tasks)");
    return detail::GatherRangeAwaiter<false, detail::element_arg_t<R>>(std::forward<R>(range));
}

/// gather over a range with return_exceptions: yields std::vector<Outcome<T>>.
template <detail::ChildRange R>
[[nodiscard]] auto gather(ReturnExceptions, R&& range) {
    static_assert(detail::range_gives_tasks_v<R>,
                  "gather takes ownership of a range of Tasks: pass std::move(tasks)");
    return detail::GatherRangeAwaiter<true, detail::element_arg_t<R>>(std::forward<R>(range));
}

} // namespace coring
