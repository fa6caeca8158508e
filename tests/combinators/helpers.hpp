// SPDX-License-Identifier: MIT
// Coroutines and runners shared by the combinator tests.
#pragma once

#include <coring/event_loop.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>

#include "support/test_support.hpp"

namespace coring::test {

/// Runs make() as the main task of a fresh loop on virtual time (timers jump instead of waiting,
/// so the order of events is deterministic and tests take no real time).
inline void run_virtual(std::function<Task<>()> make) {
    run_test(std::move(make), [](EventLoop& loop) { loop.set_virtual_time(true); });
}

/// Returns v after d.
inline Task<int> value_after(std::chrono::nanoseconds d, int v) {
    co_await sleep(d);
    co_return v;
}

/// Throws std::runtime_error(what) after d.
inline Task<int> fail_after(std::chrono::nanoseconds d, std::string what) {
    co_await sleep(d);
    throw std::runtime_error(what);
}

/// Seconds of loop time since start, rounded to milliseconds (virtual time is exact enough).
inline long long elapsed_ms(EventLoop& loop, EventLoop::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(loop.time() - start).count();
}

} // namespace coring::test

/// Checks that about ms milliseconds of loop time passed since start. Virtual time jumps to each
/// deadline exactly, but real time still runs between iterations (a loaded machine or a
/// sanitizer build adds milliseconds), so allow a little more, never less.
#define CHECK_ELAPSED(loop, start, ms)                                                             \
    do {                                                                                           \
        long long coring_elapsed_ = ::coring::test::elapsed_ms(loop, start);                       \
        INFO("elapsed " << coring_elapsed_ << " ms, expected " << (ms));                           \
        CHECK(coring_elapsed_ >= (ms));                                                            \
        CHECK(coring_elapsed_ < (ms) + 50);                                                        \
    } while (false)
