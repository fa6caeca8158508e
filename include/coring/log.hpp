// SPDX-License-Identifier: MIT
// Where coring writes its warnings and error reports (Python's "asyncio" logger).
#pragma once

#include <string_view>

namespace coring {

/// Severity of a log record, as Python's logging levels.
enum class LogLevel { debug, info, warning, error };

/// Receives every record coring logs: the default exception handler's reports, debug-mode
/// warnings (slow callbacks, coroutines never awaited). Must not throw.
using LogSink = void (*)(LogLevel level, std::string_view message) noexcept;

/// Replaces the process-wide sink and returns the previous one. nullptr restores the default,
/// which writes "coring: WARNING: message" lines to stderr.
/// Thread safety: safe to call from any thread.
LogSink set_log_sink(LogSink sink) noexcept;

/// Writes one record through the current sink.
void log(LogLevel level, std::string_view message) noexcept;

} // namespace coring
