// SPDX-License-Identifier: MIT
// Cases that CORING_TEST_CASE must fail, each run alone by a CTest case that expects the failure
// and its message (tests/CMakeLists.txt, "testing:" tests). A plain Catch2 main, as a user's
// suite would have: no project listener, so the failures come from the macro alone.
#define CATCH_CONFIG_MAIN
#define CATCH_CONFIG_CONSOLE_WIDTH 300 // one line per finding, for the CTest regexes
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing/catch2.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>

using namespace std::chrono_literals;

namespace {

coring::Task<> sleep_long() {
    co_await coring::sleep(1h);
}

coring::Task<> fail_later() {
    co_await coring::sleep(1s);
    throw std::runtime_error("this exception is never retrieved");
}

coring::Task<bool> no() {
    co_return false;
}

} // namespace

CORING_TEST_CASE("must fail: a task left pending", "[.][leaked-task]") {
    coring::create_task(sleep_long(), "leaked-sleeper");
    co_await coring::sleep(1s);
}

CORING_TEST_CASE("must fail: an exception never retrieved", "[.][unretrieved]") {
    coring::create_task(fail_later(), "forgotten-failure");
    co_await coring::sleep(2s);
}

CORING_TEST_CASE("must fail: a descriptor left open", "[.][leaked-fd]") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    co_return;
}

CORING_TEST_CASE_REAL_TIME("must fail: a child left running", "[.][leaked-child]") {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::sleep(2);
        std::_Exit(0);
    }
    co_return;
}

CORING_TEST_CASE("must fail: a CORING_CO_REQUIRE that does not hold", "[.][co-require]") {
    CORING_CO_REQUIRE(no());
    FAIL("not reached: the REQUIRE ends the body");
}

CORING_TEST_CASE("passes: a clean body", "[clean]") {
    auto t = coring::create_task(sleep_long());
    co_await coring::sleep(2h);
    CHECK(t.done());
    co_await t;
}
