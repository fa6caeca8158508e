// SPDX-License-Identifier: MIT
// Semaphore's descriptions in the task dump.
#include <coring/semaphore.hpp>

#include <fmt/format.h>

#include <iterator>

namespace coring {

void Semaphore::describe_state(std::string& out) const {
    fmt::format_to(std::back_inserter(out),
                   "value {}, {} waiting, {} woken",
                   value_,
                   waiters_.size(),
                   woken_);
}

void SemaphoreAwaiter::describe(std::string& out) const {
    out += "Semaphore acquire (";
    sem_->describe_state(out);
    out += ')';
}

} // namespace coring
