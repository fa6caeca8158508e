// SPDX-License-Identifier: MIT
// The leak-check listener (see leak_check.hpp).
#include "support/leak_check.hpp"

#define CATCH_CONFIG_EXTERNAL_INTERFACES // TestEventListenerBase
#include <catch2/catch.hpp>

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

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
    std::set<int> fds;
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) {
        return fds;
    }
    const int own = ::dirfd(dir);
    while (const dirent* entry = ::readdir(dir)) {
        char* end = nullptr;
        const long fd = std::strtol(entry->d_name, &end, 10);
        if (end != entry->d_name && *end == '\0' && fd != own) {
            fds.insert(static_cast<int>(fd));
        }
    }
    ::closedir(dir);
    return fds;
}

std::string fd_target(int fd) {
    char path[64];
    char target[256];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    const ssize_t n = ::readlink(path, target, sizeof target - 1);
    return n < 0 ? std::string("?") : std::string(target, static_cast<std::size_t>(n));
}

std::vector<std::string> leftover_children() {
    std::vector<std::string> found;
    for (;;) {
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            found.push_back("child " + std::to_string(pid) + " exited but was never reaped");
            continue;
        }
        if (pid == 0) {
            found.push_back("a child process is still running");
        }
        break; // -1 with ECHILD: no children at all
    }
    return found;
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
