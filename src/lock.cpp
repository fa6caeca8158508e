// SPDX-License-Identifier: MIT
// Lock's descriptions in the task dump.
#include <coring/lock.hpp>

#include <fmt/format.h>

#include <iterator>

namespace coring {

void Lock::describe_state(std::string& out) const {
    fmt::format_to(std::back_inserter(out),
                   "{}, {} waiting",
                   locked_ ? "locked" : "unlocked",
                   waiters_.size());
}

void LockAwaiter::describe(std::string& out) const {
    out += "Lock acquire (";
    lock_->describe_state(out);
    out += ')';
}

} // namespace coring
