// SPDX-License-Identifier: MIT
// What co_await on a type yields: the awaiter and its result type.
#pragma once

#include <coroutine>
#include <type_traits>
#include <utility>

namespace coring::detail {

template <class T>
concept HasMemberCoAwait = requires(T&& t) {
    std::forward<T>(t).operator co_await();
};

template <class T>
concept HasFreeCoAwait = requires(T&& t) {
    operator co_await(std::forward<T>(t));
};

template <class T>
concept IsAwaiter = requires(T& t) {
    { t.await_ready() } -> std::convertible_to<bool>;
    t.await_resume();
};

/// The awaiter that `co_await std::forward<T>(t)` uses.
template <class T>
decltype(auto) get_awaiter(T&& t) {
    if constexpr (HasMemberCoAwait<T>) {
        return std::forward<T>(t).operator co_await();
    } else if constexpr (HasFreeCoAwait<T>) {
        return operator co_await(std::forward<T>(t));
    } else {
        return std::forward<T>(t);
    }
}

} // namespace coring::detail

namespace coring {

/// Anything a coring coroutine can co_await: an awaiter, or a type with operator co_await.
template <class T>
concept Awaitable = detail::HasMemberCoAwait<T> || detail::HasFreeCoAwait<T> ||
        detail::IsAwaiter<std::remove_reference_t<T>>;

/// The type `co_await std::declval<T>()` produces.
template <Awaitable T>
using await_result_t = decltype(detail::get_awaiter(std::declval<T>()).await_resume());

} // namespace coring
