// SPDX-License-Identifier: MIT
// A set of pointers for the combinators' de-duplication (asyncio: fs = set(fs)), compiled in
// src/ so that the headers do not pull <unordered_set>.
#pragma once

namespace coring::detail {

/// A hash set of addresses (a std::unordered_set in src/detail/pointer_set.cpp).
class PointerSet {
public:
    PointerSet() noexcept = default;
    PointerSet(const PointerSet&) = delete;
    PointerSet& operator=(const PointerSet&) = delete;
    ~PointerSet();

    /// Adds p; returns whether it was not there yet.
    bool insert(const void* p);

private:
    void* set_ = nullptr; // the std::unordered_set, created on first insert
};

} // namespace coring::detail
