// SPDX-License-Identifier: MIT
// Tests of Task<T>, TaskHandle<T>, create_task (asyncio test_tasks).
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>

#include <catch2/catch.hpp>

#include "support/test_support.hpp"

using namespace std::chrono_literals;

namespace {

coring::Task<int> answer() {
    co_await coring::sleep(1ms);
    co_return 42;
}

} // namespace

TEST_CASE("Task: run returns the main coroutine's value", "[task]") {
    CHECK(coring::run(answer()) == 42);
}
