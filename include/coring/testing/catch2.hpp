// SPDX-License-Identifier: MIT
// Catch2 (v2) integration of coring/testing.hpp: CORING_TEST_CASE runs a coroutine test body on a
// fresh loop and fails on what it leaves behind (unittest's IsolatedAsyncioTestCase,
// pytest-asyncio). Include after <catch2/catch.hpp> is available; link coring::coring and Catch2.
#pragma once

#include <coring/errors.hpp>
#include <coring/testing.hpp>

#include <catch2/catch.hpp>

#include <exception>
#include <string>

namespace coring::testing {

/// Runs body through run_checked, turns every problem found into a failed check of the current
/// test case and rethrows what the body threw (a failed REQUIRE, an exception).
inline void run_catch2_case(Task<> (*body)(), const CheckedRunOptions& options) {
    CheckedRunResult result = run_checked([body] { return body(); }, options);
    for (const auto& problem : result.problems) {
        FAIL_CHECK("coring leak check: " << problem);
    }
    if (result.error) {
        std::rethrow_exception(result.error);
    }
}

/// The options of CORING_TEST_CASE: every check, virtual time, debug mode.
inline constexpr CheckedRunOptions virtual_time_case{};

/// The options of CORING_TEST_CASE_REAL_TIME: every check, the real clock, debug mode.
inline constexpr CheckedRunOptions real_time_case{.virtual_time = false};

} // namespace coring::testing

#define CORING_TESTING_CASE_IMPL_(body, options, ...)                                              \
    static ::coring::Task<> body();                                                                \
    TEST_CASE(__VA_ARGS__) {                                                                       \
        ::coring::testing::run_catch2_case(&body, options);                                        \
    }                                                                                              \
    static ::coring::Task<> body()

/// Declares a Catch2 test case whose body is a coroutine:
///
///     CORING_TEST_CASE("a timeout fires", "[timeout]") { co_await coring::sleep(10min); }
///
/// The body runs as the main task of a fresh EventLoop on virtual time (timers jump instead of
/// sleeping), in debug mode. After it returns, the test case fails (one failed check per
/// finding, prefixed "coring leak check:") when a task it started is still pending, when the
/// loop's exception handler was called (an exception never retrieved, a failing callback), when
/// a descriptor opened during the case is still open, or when a child process is still running
/// or was never reaped. Leftover tasks are cancelled and the loop closed either way. Use the
/// CORING_CO_* assertions below for awaited values: never co_await inside CHECK/REQUIRE.
#define CORING_TEST_CASE(...)                                                                      \
    CORING_TESTING_CASE_IMPL_(INTERNAL_CATCH_UNIQUE_NAME(coring_test_body_),                       \
                              ::coring::testing::virtual_time_case,                                \
                              __VA_ARGS__)

/// CORING_TEST_CASE on the real clock, for tests that measure real waits or talk to peers that
/// keep real time (other processes, threads).
#define CORING_TEST_CASE_REAL_TIME(...)                                                            \
    CORING_TESTING_CASE_IMPL_(INTERNAL_CATCH_UNIQUE_NAME(coring_test_body_),                       \
                              ::coring::testing::real_time_case,                                   \
                              __VA_ARGS__)

/// CORING_TEST_CASE with explicit coring::testing::CheckedRunOptions (a constant expression or
/// a namespace-scope object), e.g. to skip the descriptor check for a process-wide cache.
#define CORING_TEST_CASE_WITH(options, ...)                                                        \
    CORING_TESTING_CASE_IMPL_(INTERNAL_CATCH_UNIQUE_NAME(coring_test_body_), options, __VA_ARGS__)

// GCC 12 evaluates a co_await placed inside a Catch2 assertion more than once (the macros repeat
// their expression in a `(false) && ...` clause), so these await into a local first.

/// Awaits awaitable and CHECKs its result (anything testable as a bool).
#define CORING_CO_CHECK(awaitable)                                                                 \
    do {                                                                                           \
        auto coring_value_ = co_await awaitable;                                                   \
        CHECK(coring_value_);                                                                      \
    } while (false)

/// Awaits awaitable and REQUIREs its result (anything testable as a bool).
#define CORING_CO_REQUIRE(awaitable)                                                               \
    do {                                                                                           \
        auto coring_value_ = co_await awaitable;                                                   \
        REQUIRE(coring_value_);                                                                    \
    } while (false)

/// Awaits awaitable and CHECKs that its result equals expected.
#define CORING_CO_CHECK_EQ(awaitable, expected)                                                    \
    do {                                                                                           \
        auto coring_value_ = co_await awaitable;                                                   \
        CHECK(coring_value_ == (expected));                                                        \
    } while (false)

/// Awaits awaitable and REQUIREs that its result equals expected.
#define CORING_CO_REQUIRE_EQ(awaitable, expected)                                                  \
    do {                                                                                           \
        auto coring_value_ = co_await awaitable;                                                   \
        REQUIRE(coring_value_ == (expected));                                                      \
    } while (false)

#define CORING_CO_THROWS_AS_IMPL_(awaitable, Exception, ASSERT)                                    \
    do {                                                                                           \
        std::string coring_outcome_ = "no exception";                                              \
        bool coring_caught_ = false;                                                               \
        try {                                                                                      \
            static_cast<void>(co_await awaitable);                                                 \
        } catch (const Exception&) {                                                               \
            coring_caught_ = true;                                                                 \
        } catch (...) {                                                                            \
            coring_outcome_ = ::coring::describe_exception(std::current_exception());              \
        }                                                                                          \
        INFO("co_await " #awaitable " gave: " << coring_outcome_);                                 \
        ASSERT(coring_caught_);                                                                    \
    } while (false)

/// Awaits awaitable and checks that it throws Exception (coring::CancelledError included).
#define CORING_CO_CHECK_THROWS_AS(awaitable, Exception)                                            \
    CORING_CO_THROWS_AS_IMPL_(awaitable, Exception, CHECK)

/// Awaits awaitable and requires that it throws Exception (coring::CancelledError included).
#define CORING_CO_REQUIRE_THROWS_AS(awaitable, Exception)                                          \
    CORING_CO_THROWS_AS_IMPL_(awaitable, Exception, REQUIRE)

/// Awaits awaitable and checks that it throws nothing (the exception is described if it does).
#define CORING_CO_CHECK_NOTHROW(awaitable)                                                         \
    do {                                                                                           \
        std::string coring_outcome_ = "no exception";                                              \
        try {                                                                                      \
            static_cast<void>(co_await awaitable);                                                 \
        } catch (...) {                                                                            \
            coring_outcome_ = ::coring::describe_exception(std::current_exception());              \
        }                                                                                          \
        CHECK(coring_outcome_ == "no exception");                                                  \
    } while (false)

/// Awaits awaitable and checks that it throws something whose what() is text.
#define CORING_CO_CHECK_THROWS_WITH(awaitable, text)                                               \
    do {                                                                                           \
        std::string coring_what_ = "no exception";                                                 \
        try {                                                                                      \
            static_cast<void>(co_await awaitable);                                                 \
        } catch (const ::coring::CancelledError& e) {                                              \
            coring_what_ = e.what();                                                               \
        } catch (const std::exception& e) {                                                        \
            coring_what_ = e.what();                                                               \
        } catch (...) {                                                                            \
            coring_what_ = "unknown exception";                                                    \
        }                                                                                          \
        CHECK(coring_what_ == std::string(text));                                                  \
    } while (false)
