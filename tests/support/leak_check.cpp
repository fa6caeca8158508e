// SPDX-License-Identifier: MIT
// The leak-check listener (see leak_check.hpp); the checks themselves are coring/testing.hpp's,
// which CORING_TEST_CASE runs too.
#include "support/leak_check.hpp"

#define CATCH_CONFIG_EXTERNAL_INTERFACES // TestEventListenerBase
#include <coring/testing.hpp>

#include <catch2/catch.hpp>

#include <cstdio>

namespace coring::test {

namespace {

int failures = 0;
std::set<int> baseline;
bool allow_new_fds = false;

class LeakCheckListener : public Catch::TestEventListenerBase {
public:
    using TestEventListenerBase::TestEventListenerBase;

    void testCaseStarting(const Catch::TestCaseInfo& info) override {
        TestEventListenerBase::testCaseStarting(info);
        baseline = open_fds();
        allow_new_fds = false;
    }

    void testCaseEnded(const Catch::TestCaseStats& stats) override {
        std::vector<std::string> problems;
        if (!allow_new_fds) {
            for (int fd : open_fds()) {
                if (baseline.count(fd) == 0) {
                    problems.push_back("descriptor " + std::to_string(fd) + " (" + fd_target(fd) +
                                       ") left open");
                }
            }
        }
        for (auto& child : leftover_children()) {
            problems.push_back(std::move(child));
        }
        if (!problems.empty()) {
            ++failures;
            std::fprintf(stderr, "leak check: test case \"%s\":\n", stats.testInfo.name.c_str());
            for (const auto& p : problems) {
                std::fprintf(stderr, "  %s\n", p.c_str());
            }
        }
        TestEventListenerBase::testCaseEnded(stats);
    }
};

} // namespace

std::set<int> open_fds() {
    std::vector<int> fds = coring::testing::open_fds();
    return {fds.begin(), fds.end()};
}

std::string fd_target(int fd) {
    return coring::testing::fd_target(fd);
}

std::vector<std::string> leftover_children() {
    return coring::testing::leftover_children();
}

int leak_check_failures() {
    return failures;
}

void allow_lasting_fds(const char* why) {
    static_cast<void>(why);
    allow_new_fds = true;
}

CATCH_REGISTER_LISTENER(LeakCheckListener)

} // namespace coring::test
