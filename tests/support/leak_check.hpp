// SPDX-License-Identifier: MIT
// Leak check after every test case: a Catch2 listener that records the process's open file
// descriptors when a case starts and, when it ends, reports every descriptor that was not there
// before and every child process that is still running or was never reaped.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace coring::test {

/// The descriptors open in this process now (from /proc/self/fd).
std::set<int> open_fds();

/// What a descriptor refers to ("socket:[123]", "/tmp/x", "anon_inode:[io_uring]").
std::string fd_target(int fd);

/// Reaps and returns the children that had already exited but were never waited for, then
/// appends "running" entries for children that are still alive. Empty when there are none.
std::vector<std::string> leftover_children();

/// How many test cases the listener found leaking; catch_main.cpp turns it into the exit status
/// (Catch2 v2 cannot fail a test case from inside a listener).
int leak_check_failures();

/// Keeps the descriptors opened by the current test case out of the check: for process-wide
/// objects made on first use (the default executor's wake-up fd, a cached resolver) that stay
/// open on purpose. Each call names what it allows, so the report stays readable.
void allow_lasting_fds(const char* why);

} // namespace coring::test
