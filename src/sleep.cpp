// SPDX-License-Identifier: MIT
// sleep's description in the task dump.
#include <coring/sleep.hpp>

#include <fmt/format.h>

#include <chrono>
#include <iterator>

namespace coring {

void SleepAwaiter::describe(std::string& out) const {
    fmt::format_to(std::back_inserter(out),
                   "sleep {:.3f} s",
                   std::chrono::duration<double>(delay_).count());
}

} // namespace coring
