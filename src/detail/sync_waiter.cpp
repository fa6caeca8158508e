// SPDX-License-Identifier: MIT
// The synchronisation primitives' out-of-line throws and misuse reports.
#include <coring/errors.hpp>
#include <coring/log.hpp>
#include <coring/queue.hpp>

#include <coring/detail/sync_waiter.hpp>

#include <fmt/format.h>

namespace coring {

namespace detail {

void LoopBound::throw_bound_elsewhere(const char* what, EventLoop* bound, EventLoop* waiting) {
    throw RuntimeError(fmt::format(
            "<coring::{}> is bound to a different event loop (it belongs to {}, awaited on {})",
            what,
            // The first loop may be gone (destroyed): its address only.
            fmt::format("loop {}", static_cast<const void*>(bound)),
            waiting != nullptr ? waiting->describe() : "no loop"));
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
