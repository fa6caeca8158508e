// SPDX-License-Identifier: MIT
// The body of a coring scope (Timeout::run, TaskGroup::run): what `async with` encloses, and
// the one coroutine that runs it between the scope's __aenter__ and __aexit__.
#pragma once

#include <coring/task.hpp>

#include <coring/detail/await_temporary.hpp>
#include <coring/detail/awaitable_traits.hpp>
#include <coring/detail/result.hpp>

#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

namespace coring::detail {

/// Starts a scope's body: body(scope) or body() for a callable returning an awaitable (usually a
/// lambda coroutine), or the body itself when it is an awaitable (a Task).
template <class Body, class Scope>
decltype(auto) invoke_scope_body(Body& body, Scope& scope) {
    if constexpr (std::is_invocable_v<Body&, Scope&>) {
        return std::invoke(body, scope);
    } else if constexpr (std::is_invocable_v<Body&>) {
        static_cast<void>(scope);
        return std::invoke(body);
    } else {
        static_assert(Awaitable<Body>,
                      "a scope body is a callable returning an awaitable (taking the scope or "
                      "nothing), or an awaitable");
        static_cast<void>(scope);
        return std::move(body);
    }
}

/// What co_await of the body yields.
template <class Body, class Scope>
using scope_result_t =
        await_result_t<decltype(invoke_scope_body(std::declval<Body&>(), std::declval<Scope&>()))>;

/// Whether Body, passed as Body&&, is a callable that the compiler may destroy twice when it is
/// written inside the co_await (see await_temporary.hpp); an awaitable body (a Task) is safe.
template <class Body>
inline constexpr bool unsafe_scope_body =
        unsafe_await_closure<Body> && !Awaitable<std::remove_cvref_t<Body>>;

/// Lets run_scope reach a scope's private enter() and exit().
struct ScopeAccess {
    template <class Scope>
    static void enter(Scope& scope) {
        scope.enter();
    }

    template <class Scope>
    static decltype(auto) exit(Scope& scope, std::exception_ptr error) {
        return scope.exit(std::move(error));
    }
};

/// Runs a scope (asyncio's `async with scope: body`): scope's enter(), then the body inline in
/// the calling task, then scope's exit(error) with the body's exception or null, awaited when it
/// returns an awaitable (TaskGroup waits for its tasks). exit() raises what the scope raises
/// (the body's exception, TimeoutError, an ExceptionGroup); otherwise yields the body's result.
/// The scope must outlive the returned task.
template <class Body, class Scope>
Task<scope_result_t<Body, Scope>> run_scope(Scope& scope, Body body) {
    using R = scope_result_t<Body, Scope>;
    ScopeAccess::enter(scope);
    std::exception_ptr error;
    ResultStorage<R> result;
    try {
        if constexpr (std::is_void_v<R>) {
            co_await invoke_scope_body(body, scope);
        } else {
            result.set(co_await invoke_scope_body(body, scope));
        }
    } catch (...) {
        error = std::current_exception();
    }
    if constexpr (std::is_void_v<decltype(ScopeAccess::exit(scope, error))>) {
        ScopeAccess::exit(scope, error);
    } else {
        co_await ScopeAccess::exit(scope, error);
    }
    if (error) {
        // exit() raises whenever the body failed; kept so that no path can return a missing
        // value.
        std::rethrow_exception(error);
    }
    if constexpr (std::is_void_v<R>) {
        co_return;
    } else if constexpr (std::is_reference_v<R>) {
        co_return result.get();
    } else {
        co_return std::move(result.get());
    }
}

} // namespace coring::detail
