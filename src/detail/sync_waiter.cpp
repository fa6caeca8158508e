// SPDX-License-Identifier: MIT
// The synchronisation primitives' out-of-line throws and misuse reports.
#include <coring/errors.hpp>
#include <coring/log.hpp>
#include <coring/queue.hpp>

#include <coring/detail/sync_waiter.hpp>

#include <fmt/format.h>

namespace coring {

namespace detail {

void LoopBound::throw_bound_elsewhere(const char* what) {
    throw RuntimeError(fmt::format("<coring::{}> is bound to a different event loop", what));
}

void throw_runtime_error(const char* what) {
    throw RuntimeError(what);
}

void throw_value_error(const char* what) {
    throw ValueError(what);
}

void throw_queue_shutdown() {
    throw QueueShutDown();
}

void throw_queue_full() {
    throw QueueFull();
}

void throw_queue_empty() {
    throw QueueEmpty();
}

void report_guard_misuse(const char* what) noexcept {
    log(LogLevel::error, what);
}

} // namespace detail

} // namespace coring
