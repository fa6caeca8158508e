// SPDX-License-Identifier: MIT
// Ref<T>: the intrusive owning reference behind coring's shared handles (Future, TaskHandle,
// Handle, Server, DatagramEndpoint, AsCompleted, the stream transports); no asyncio counterpart.
#pragma once

#include <cstddef>
#include <utility>

namespace coring::detail {

/// Tag of Ref's adopting constructor: the Ref takes over a reference the caller holds.
struct AdoptRef {
    explicit AdoptRef() = default;
};

inline constexpr AdoptRef adopt_ref{};

/// Tag of Ref's retaining constructor: the Ref takes a reference of its own.
struct RetainRef {
    explicit RetainRef() = default;
};

inline constexpr RetainRef retain_ref{};

/// Ref's default policy: the object's own add_ref() and release().
struct DefaultRefPolicy {
    template <class T>
    static void add_ref(T* p) noexcept {
        p->add_ref();
    }

    template <class T>
    static void release(T* p) noexcept {
        p->release();
    }
};

/// An owning reference to a T counted by Policy::add_ref / Policy::release (by default T's own
/// add_ref() and release()). Copies take a reference, moves steal it (the source becomes
/// null), the destructor drops it. T may be incomplete where only moves, swaps and get() are
/// used; copies and destruction need Policy's functions.
template <class T, class Policy = DefaultRefPolicy>
class Ref {
public:
    Ref() noexcept = default;

    Ref(std::nullptr_t) noexcept {} // NOLINT(google-explicit-constructor): like a null pointer

    /// Takes over a reference the caller holds (p may be null).
    Ref(AdoptRef, T* p) noexcept : p_(p) {}

    /// Takes a new reference to p (p may be null).
    Ref(RetainRef, T* p) noexcept : p_(p) {
        if (p_ != nullptr) {
            Policy::add_ref(p_);
        }
    }

    Ref(const Ref& other) noexcept : p_(other.p_) {
        if (p_ != nullptr) {
            Policy::add_ref(p_);
        }
    }

    Ref(Ref&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}

    /// Copy and move assignment (copy-and-swap: self-assignment safe).
    Ref& operator=(Ref other) noexcept {
        swap(other);
        return *this;
    }

    ~Ref() {
        if (p_ != nullptr) {
            Policy::release(p_);
        }
    }

    T* get() const noexcept { return p_; }

    T* operator->() const noexcept { return p_; }

    T& operator*() const noexcept { return *p_; }

    explicit operator bool() const noexcept { return p_ != nullptr; }

    /// Drops the reference; the Ref becomes null.
    void reset() noexcept {
        if (T* p = std::exchange(p_, nullptr)) {
            Policy::release(p);
        }
    }

    /// Gives up the reference without dropping it: the caller owns it now.
    [[nodiscard]] T* detach() noexcept { return std::exchange(p_, nullptr); }

    void swap(Ref& other) noexcept { std::swap(p_, other.p_); }

    friend void swap(Ref& a, Ref& b) noexcept { a.swap(b); }

    friend bool operator==(const Ref& a, const Ref& b) noexcept { return a.p_ == b.p_; }

    friend bool operator==(const Ref& a, std::nullptr_t) noexcept { return a.p_ == nullptr; }

private:
    T* p_ = nullptr;
};

} // namespace coring::detail
