// SPDX-License-Identifier: MIT
// The process-wide log sink and CORING_ASSERT's failure report.
#include <coring/log.hpp>

#include <coring/detail/assert.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace coring {

namespace {

void stderr_sink(LogLevel level, std::string_view message) noexcept {
    const char* name = "DEBUG";
    switch (level) {
    case LogLevel::debug:
        break;
    case LogLevel::info:
        name = "INFO";
        break;
    case LogLevel::warning:
        name = "WARNING";
        break;
    case LogLevel::error:
        name = "ERROR";
        break;
    }
    std::fprintf(
            stderr, "coring: %s: %.*s\n", name, static_cast<int>(message.size()), message.data());
}

std::atomic<LogSink> current_sink{&stderr_sink};

} // namespace

LogSink set_log_sink(LogSink sink) noexcept {
    // acq_rel: a sink installed by one thread is fully visible to threads that log through it.
    return current_sink.exchange(sink != nullptr ? sink : &stderr_sink, std::memory_order_acq_rel);
}

void log(LogLevel level, std::string_view message) noexcept {
    // acquire: pairs with the exchange in set_log_sink.
    current_sink.load(std::memory_order_acquire)(level, message);
}

} // namespace coring

namespace coring::detail {

void assertion_failed(const char* file, int line, const char* cond, const char* msg) noexcept {
    std::fprintf(stderr, "coring: %s:%d: assertion failed: %s (%s)\n", file, line, cond, msg);
    std::abort();
}

} // namespace coring::detail
