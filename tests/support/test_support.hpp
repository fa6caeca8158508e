// SPDX-License-Identifier: MIT
// Shared test helpers: run_test, Counted, log capture, skip (STYLE.md 26-28).
#pragma once

#include <coring/event_loop.hpp>
#include <coring/log.hpp>
#include <coring/task.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace coring::test {

/// Runs the coroutine made by make() as the main task of a fresh loop, then fails the test if
/// any other task is still pending (a leak), as seastar's SEASTAR_TEST_CASE.
void run_test(std::function<Task<>()> make);

/// Same, with debug mode on and a caller-provided loop setup.
void run_test(std::function<Task<>()> make, const std::function<void(EventLoop&)>& setup);

/// Counts live instances, so tests can assert destruction (cppcoro's counted).
struct Counted {
    static inline int alive = 0;
    static inline int constructed = 0;

    int value = 0;

    explicit Counted(int v = 0) : value(v) {
        ++alive;
        ++constructed;
    }

    Counted(const Counted& o) : value(o.value) {
        ++alive;
        ++constructed;
    }

    Counted(Counted&& o) noexcept : value(o.value) {
        ++alive;
        ++constructed;
    }

    Counted& operator=(const Counted&) = default;
    Counted& operator=(Counted&&) = default;

    ~Counted() { --alive; }

    static void reset() {
        alive = 0;
        constructed = 0;
    }
};

/// Calls f(name, d) for durations so large that they mean "never": every unit's max(), 300
/// years (past the end of a nanosecond clock) and floating-point ones (issue 10, defect 3).
template <class F>
void for_each_huge_delay(F&& f) {
    using namespace std::chrono;
    f("nanoseconds::max()", nanoseconds::max());
    f("microseconds::max()", microseconds::max());
    f("milliseconds::max()", milliseconds::max());
    f("seconds::max()", seconds::max());
    f("minutes::max()", minutes::max());
    f("hours::max()", hours::max());
    f("300 years", hours(24 * 365 * 300));
    f("1e300 s", duration<double>(1e300));
    f("+inf s", duration<double>(std::numeric_limits<double>::infinity()));
}

/// Calls f(name, d) for durations so negative that they mean "now" (issue 10, defect 3).
template <class F>
void for_each_huge_negative_delay(F&& f) {
    using namespace std::chrono;
    f("nanoseconds::min()", nanoseconds::min());
    f("microseconds::min()", microseconds::min());
    f("milliseconds::min()", milliseconds::min());
    f("seconds::min()", seconds::min());
    f("minutes::min()", minutes::min());
    f("hours::min()", hours::min());
    f("-300 years", -hours(24 * 365 * 300));
    f("-inf s", duration<double>(-std::numeric_limits<double>::infinity()));
}

/// Stops a loop from another thread if it is still busy after a while, so that a loop stuck in
/// io_uring_enter fails its test (run_until_complete throws, fired() is true) instead of hanging
/// it until CTest's timeout. Only the loop thread may assert on fired().
class Watchdog {
public:
    Watchdog(EventLoop& loop, std::chrono::milliseconds after);
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    /// Disarms the watchdog and joins its thread.
    ~Watchdog();

    /// Whether it had to stop the loop.
    bool fired() const;

private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    bool done_ = false;  // guarded by mutex_
    bool fired_ = false; // guarded by mutex_
    std::thread thread_;
};

/// Captures everything coring logs while alive (single-threaded tests only).
class LogCapture {
public:
    LogCapture();
    LogCapture(const LogCapture&) = delete;
    LogCapture& operator=(const LogCapture&) = delete;
    ~LogCapture();

    /// Every record so far, "LEVEL: message".
    const std::vector<std::string>& records() const;

    /// Whether some record contains text.
    bool contains(const std::string& text) const;

    void clear();

private:
    LogSink previous_;
};

} // namespace coring::test

/// Catch2 2.13 has no SKIP(): warn with a marker that CTest's SKIP_REGULAR_EXPRESSION reports
/// as skipped, and leave the test case.
#define CORING_SKIP(msg)                                                                           \
    do {                                                                                           \
        WARN("CORING-SKIP: " << msg);                                                              \
        return;                                                                                    \
    } while (0)

// Never put co_await inside a Catch2 assertion: GCC 12 evaluates a co_await that sits in the
// `(false) && !!(expr)` clause Catch2 macros repeat their expression in, so the awaitable is
// awaited more than once (Clang does not). Await into a local first, or use these.

/// Awaits expr and checks that it throws Exception (which may be coring::CancelledError).
#define CO_CHECK_THROWS_AS(expr, Exception)                                                        \
    do {                                                                                           \
        std::string coring_outcome_ = "no exception";                                              \
        bool coring_caught_ = false;                                                               \
        try {                                                                                      \
            static_cast<void>(co_await expr);                                                      \
        } catch (const Exception&) {                                                               \
            coring_caught_ = true;                                                                 \
        } catch (...) {                                                                            \
            coring_outcome_ = ::coring::describe_exception(std::current_exception());              \
        }                                                                                          \
        INFO("co_await " #expr " gave: " << coring_outcome_);                                      \
        CHECK(coring_caught_);                                                                     \
    } while (false)

/// Awaits expr and checks that it throws something whose what() is text.
#define CO_CHECK_THROWS_WITH(expr, text)                                                           \
    do {                                                                                           \
        std::string coring_what_ = "no exception";                                                 \
        try {                                                                                      \
            static_cast<void>(co_await expr);                                                      \
        } catch (const ::coring::CancelledError& e) {                                              \
            coring_what_ = e.what();                                                               \
        } catch (const std::exception& e) {                                                        \
            coring_what_ = e.what();                                                               \
        } catch (...) {                                                                            \
            coring_what_ = "unknown exception";                                                    \
        }                                                                                          \
        CHECK(coring_what_ == std::string(text));                                                  \
    } while (false)
