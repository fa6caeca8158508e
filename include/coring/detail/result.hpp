// SPDX-License-Identifier: MIT
// Storage for the value of a Task or Future: optional<T>, a pointer for T&, nothing for void.
#pragma once

#include <optional>
#include <utility>

namespace coring::detail {

/// Where a coroutine's or future's value lives: optional<T>, a pointer for T&, nothing for void.
template <class T>
class ResultStorage {
public:
    template <class U>
    void set(U&& v) {
        value_.emplace(std::forward<U>(v));
    }

    T& get() noexcept { return *value_; }

private:
    std::optional<T> value_;
};

template <class T>
class ResultStorage<T&> {
public:
    void set(T& v) noexcept { value_ = &v; }

    T& get() noexcept { return *value_; }

private:
    T* value_ = nullptr;
};

template <>
class ResultStorage<void> {};

template <class T>
class ReturnValue {
public:
    template <class U = T>
    void return_value(U&& v) {
        result_.set(std::forward<U>(v));
    }

    ResultStorage<T> result_;
};

template <>
class ReturnValue<void> {
public:
    void return_void() noexcept {}

    ResultStorage<void> result_;
};

} // namespace coring::detail
