// SPDX-License-Identifier: MIT
// PointerSet (include/coring/detail/pointer_set.hpp).
#include <coring/detail/pointer_set.hpp>

#include <unordered_set>

namespace coring::detail {

namespace {
using Set = std::unordered_set<const void*>;
} // namespace

PointerSet::~PointerSet() {
    delete static_cast<Set*>(set_);
}

bool PointerSet::insert(const void* p) {
    if (set_ == nullptr) {
        set_ = new Set();
    }
    return static_cast<Set*>(set_)->insert(p).second;
}

} // namespace coring::detail
