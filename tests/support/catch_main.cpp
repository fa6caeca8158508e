// SPDX-License-Identifier: MIT
// The one translation unit that compiles Catch2's main, with the leak check of every test case:
// file descriptors back to their baseline and no child process left (issue 10).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "support/leak_check.hpp"

int main(int argc, char* argv[]) {
    Catch::Session session;
    if (const int rc = session.applyCommandLine(argc, argv); rc != 0) {
        return rc;
    }
    const int failed = session.run();
    const int leaks = coring::test::leak_check_failures();
    if (leaks > 0) {
        std::fprintf(
                stderr, "leak check: %d test case(s) left descriptors or children behind\n", leaks);
    }
    return failed + leaks > 0 ? 1 : 0;
}
