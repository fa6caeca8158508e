// SPDX-License-Identifier: MIT
// Event's description in the task dump.
#include <coring/event.hpp>

#include <fmt/format.h>

#include <iterator>

namespace coring {

void EventAwaiter::describe(std::string& out) const {
    out += event_->is_set() ? "Event wait (set)" : "Event wait (unset)";
}

} // namespace coring
