// SPDX-License-Identifier: MIT
// The compile-time guard against GCC's double destruction of a closure written inside a
// co_await expression (docs/pitfalls.md); no asyncio counterpart.
#pragma once

#include <type_traits>

/// 1 when the compiler destroys an owning closure written inside a co_await expression twice.
/// GCC 12 does (a lambda such as `[state](...) {...}` or a braced aggregate argument: it copies
/// the temporary bitwise into a second coroutine-frame slot and destroys both, so a captured
/// shared_ptr is released twice); Clang does not. Nothing the called function does can help:
/// the copy is made by the caller before the call. Newer GCC releases are not verified here,
/// so every GCC counts; define it to 0 to drop the guard.
#ifndef CORING_AWAIT_DESTROYS_CLOSURES_TWICE
#if defined(__GNUC__) && !defined(__clang__)
#define CORING_AWAIT_DESTROYS_CLOSURES_TWICE 1
#else
#define CORING_AWAIT_DESTROYS_CLOSURES_TWICE 0
#endif
#endif

namespace coring::detail {

/// Whether a callable passed as F&& (F deduced) may be a temporary that such a compiler
/// destroys twice: an rvalue (a lambda written in the call) whose destructor does something.
/// A named callable (an lvalue) and a lambda capturing only references or trivially
/// destructible values are safe everywhere.
template <class F>
inline constexpr bool unsafe_await_closure =
        CORING_AWAIT_DESTROYS_CLOSURES_TWICE != 0 && !std::is_lvalue_reference_v<F> &&
        !std::is_trivially_destructible_v<std::remove_cvref_t<F>>;

} // namespace coring::detail

/// The message of the static_asserts that apply unsafe_await_closure.
#define CORING_AWAIT_CLOSURE_MESSAGE                                                               \
    "GCC destroys a lambda that owns resources (captures a shared_ptr, a string, a Future...) "    \
    "twice when it is written inside a co_await expression: name it first and pass the name "      \
    "(auto cb = [state](...) {...}; co_await coring::start_server(cb, host, port);), "             \
    "see docs/pitfalls.md"
