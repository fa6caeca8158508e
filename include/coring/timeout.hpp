// SPDX-License-Identifier: MIT
// Timeout, timeout() and timeout_at(): a deadline over a block of awaits (asyncio.timeouts).
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/task.hpp>

#include <coring/detail/child_watch.hpp>
#include <coring/detail/scope_body.hpp>
#include <coring/detail/task_base.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace coring {

/// A deadline over a block of awaits (asyncio.Timeout). When the deadline passes, the task
/// running the block is cancelled; the CancelledError that this causes leaves the block as
/// TimeoutError, and only that one: a cancellation from elsewhere stays CancelledError (the task's
/// cancelling()/uncancel() count tells them apart, as in asyncio 3.11+). Nested scopes work: the
/// innermost expired one converts its own cancellation.
///
/// `async with asyncio.timeout(d) as cm: body` is written
///
///     co_await coring::timeout(2s).run([&](coring::Timeout& cm) -> coring::Task<> { ... });
///
/// or, to look at the scope afterwards,
///
///     coring::Timeout cm = coring::timeout(2s);
///     co_await cm.run(body);          // body: callable taking Timeout& or nothing, or a Task
///     bool late = cm.expired();
///
/// A Timeout cannot be moved (its timer refers to it) and is entered once.
class Timeout {
public:
    using time_point = EventLoop::time_point;

    /// A scope that expires at when, on the loop's clock, or never (std::nullopt). It is not
    /// entered yet: the deadline starts to count in run().
    explicit Timeout(std::optional<time_point> when) noexcept : when_(when) {}

    Timeout(const Timeout&) = delete;
    Timeout& operator=(const Timeout&) = delete;

    ~Timeout() { handle_.cancel(); }

    /// The current deadline, or std::nullopt for none (Timeout.when()).
    std::optional<time_point> when() const noexcept { return when_; }

    /// Moves the deadline (Timeout.reschedule); std::nullopt removes it. A deadline already past
    /// expires the scope on the next loop iteration; time_point::max() never comes.
    /// Throws: RuntimeError when the scope is not running ("Timeout has not been entered",
    /// "Cannot change state of expiring Timeout", ... expired, finished).
    void reschedule(std::optional<time_point> when);

    /// reschedule() with a time point of the loop's clock in any unit, saturated: one past the
    /// clock's range becomes time_point::max() (never) or time_point::min() (at once).
    template <class Dur>
    void reschedule(std::chrono::time_point<EventLoop::clock, Dur> when) {
        reschedule(
                std::optional<time_point>(detail::LoopAccess::from_ns(detail::saturated_ns(when))));
    }

    /// Whether the deadline passed while the body ran (Timeout.expired()).
    bool expired() const noexcept { return state_ == State::expiring || state_ == State::expired; }

    /// "<Timeout [active] when=12.345>", "<Timeout [expired]>", as asyncio's repr.
    std::string describe() const;

    /// Runs body under this deadline and yields its result (asyncio's `async with`). body is a
    /// callable taking Timeout& or nothing and returning an awaitable (a lambda coroutine), or
    /// an awaitable itself. Awaiting the result runs the body inline, in the calling task.
    /// Throws: TimeoutError when the deadline's cancellation ended the body; whatever else the
    /// body throws; RuntimeError when entered twice or outside a task.
    /// Cancellation: a cancellation from elsewhere passes through as CancelledError.
    /// With GCC, a body lambda that owns resources (captures by value something with a
    /// destructor) must be named first and passed by name (docs/pitfalls.md).
    template <class Body>
    [[nodiscard]] Task<detail::scope_result_t<std::decay_t<Body>, Timeout>> run(Body&& body) {
        static_assert(!detail::unsafe_scope_body<Body>, CORING_AWAIT_CLOSURE_MESSAGE);
        return detail::run_scope(*this, std::decay_t<Body>(std::forward<Body>(body)));
    }

private:
    friend struct detail::ScopeAccess;

    // created -> entered -> exited, or entered -> expiring (deadline hit) -> expired.
    enum class State : std::uint8_t { created, entered, expiring, expired, exited };

    void enter();
    void exit(std::exception_ptr error);
    void on_timeout() noexcept;

    std::optional<time_point> when_;
    Handle handle_;                    // the pending call_at/call_soon of on_timeout, if any
    detail::TaskBase* task_ = nullptr; // the task running the body
    std::uint32_t cancelling_ = 0;     // task_->cancelling() when entered
    State state_ = State::created;
};

/// A Timeout expiring delay from now (asyncio.timeout); std::nullopt never expires. The
/// deadline saturates: a delay too large for the loop's clock never expires (when() is
/// time_point::max()), a negative one expires on the next iteration.
/// Throws: RuntimeError when no loop is running.
[[nodiscard]] Timeout timeout(std::optional<EventLoop::duration> delay);

/// A Timeout expiring delay (any std::chrono duration) from now.
template <class Rep, class Period>
[[nodiscard]] Timeout timeout(std::chrono::duration<Rep, Period> delay) {
    return timeout(detail::to_timeout(delay));
}

/// A Timeout expiring at when, on the loop's clock (asyncio.timeout_at); std::nullopt never
/// expires.
[[nodiscard]] inline Timeout timeout_at(std::optional<EventLoop::time_point> when) noexcept {
    return Timeout(when);
}

/// timeout_at() with a time point of the loop's clock in any unit, saturated: max() of any
/// unit never expires, min() expires at once.
template <class Dur>
[[nodiscard]] Timeout timeout_at(std::chrono::time_point<EventLoop::clock, Dur> when) noexcept {
    return Timeout(detail::LoopAccess::from_ns(detail::saturated_ns(when)));
}

namespace detail {
// The coroutines behind the timeout functions; the deadline starts when the task runs.
template <class Body>
Task<scope_result_t<Body, Timeout>> timeout_in(std::optional<EventLoop::duration> delay,
                                               Body body) {
    Timeout scope = timeout(delay);
    co_return co_await run_scope(scope, std::move(body));
}

template <class Body>
Task<scope_result_t<Body, Timeout>> timeout_at(std::optional<EventLoop::time_point> when,
                                               Body body) {
    Timeout scope(when);
    co_return co_await run_scope(scope, std::move(body));
}
} // namespace detail

/// Runs body with a deadline delay from now: `co_await coring::timeout(2s, body)` is
/// `co_await coring::timeout(2s).run(body)` (asyncio: `async with asyncio.timeout(2): ...`).
/// Throws: TimeoutError when the deadline ended the body; whatever else the body throws.
template <class Body>
[[nodiscard]] Task<detail::scope_result_t<std::decay_t<Body>, Timeout>>
timeout(std::optional<EventLoop::duration> delay, Body&& body) {
    static_assert(!detail::unsafe_scope_body<Body>, CORING_AWAIT_CLOSURE_MESSAGE);
    return detail::timeout_in(delay, std::decay_t<Body>(std::forward<Body>(body)));
}

/// timeout(delay, body) for any std::chrono duration.
template <class Rep, class Period, class Body>
[[nodiscard]] Task<detail::scope_result_t<std::decay_t<Body>, Timeout>>
timeout(std::chrono::duration<Rep, Period> delay, Body&& body) {
    static_assert(!detail::unsafe_scope_body<Body>, CORING_AWAIT_CLOSURE_MESSAGE);
    return detail::timeout_in(detail::to_timeout(delay),
                              std::decay_t<Body>(std::forward<Body>(body)));
}

/// Runs body with a deadline at when: `co_await coring::timeout_at(t).run(body)`.
template <class Body>
[[nodiscard]] Task<detail::scope_result_t<std::decay_t<Body>, Timeout>>
timeout_at(std::optional<EventLoop::time_point> when, Body&& body) {
    static_assert(!detail::unsafe_scope_body<Body>, CORING_AWAIT_CLOSURE_MESSAGE);
    return detail::timeout_at(when, std::decay_t<Body>(std::forward<Body>(body)));
}

/// timeout_at(when, body) with a time point of the loop's clock in any unit, saturated.
template <class Dur, class Body>
[[nodiscard]] Task<detail::scope_result_t<std::decay_t<Body>, Timeout>>
timeout_at(std::chrono::time_point<EventLoop::clock, Dur> when, Body&& body) {
    static_assert(!detail::unsafe_scope_body<Body>, CORING_AWAIT_CLOSURE_MESSAGE);
    return detail::timeout_at(detail::LoopAccess::from_ns(detail::saturated_ns(when)),
                              std::decay_t<Body>(std::forward<Body>(body)));
}

} // namespace coring
