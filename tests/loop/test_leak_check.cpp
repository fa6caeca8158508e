// SPDX-License-Identifier: MIT
// The leak check itself (tests/support/leak_check.hpp): hidden cases that leak on purpose, run
// by CTest cases that expect the check to name the leak and fail the run.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "support/leak_check.hpp"

TEST_CASE("Leak check: a descriptor left open is reported", "[.][leak-check-self-test-fd]") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0); // never closed: the listener must name both ends
}

TEST_CASE("Leak check: a child left running is reported", "[.][leak-check-self-test-child]") {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::sleep(2);
        std::_Exit(0);
    }
}

TEST_CASE("Leak check: descriptors and children are back to the baseline", "[loop]") {
    const auto before = coring::test::open_fds();
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    CHECK(coring::test::open_fds().size() == before.size() + 2);
    CHECK(coring::test::fd_target(fds[0]).rfind("pipe:", 0) == 0);
    ::close(fds[0]);
    ::close(fds[1]);
    CHECK(coring::test::open_fds() == before);

    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::_Exit(0);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(coring::test::leftover_children().empty());
}
