// SPDX-License-Identifier: MIT
// The body of a coring scope (Timeout::run, TaskGroup::run): what `async with` encloses.
#pragma once

#include <coring/detail/await_temporary.hpp>
#include <coring/detail/awaitable_traits.hpp>

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

/// Lets the scope functions (task_group, timeout, timeout_at) start a scope's coroutine with a
/// body they own, past the guard that the public run() applies to the caller's argument.
struct ScopeAccess {
    template <class Scope, class Body>
    static auto run(Scope& scope, Body&& body) {
        return scope.run_scope(std::forward<Body>(body));
    }
};

} // namespace coring::detail
