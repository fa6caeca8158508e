// SPDX-License-Identifier: MIT
// Tests of the blocking-call watchdog (EventLoop::set_watchdog): the report is written while the
// loop thread is still stuck, names the task, its async stack and the blocking native frame.
// clang-format off
#include <coring/debug.hpp> // first: it must compile on its own
// clang-format on

#include <coring/event_loop.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>

#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using coring::EventLoop;

// External linkage, not inlined: the native backtrace must show this symbol (the test executable
// exports its symbols, -rdynamic, so backtrace_symbols_fd can name it).
bool coring_test_block_until_seen(std::atomic<bool>& seen, std::chrono::milliseconds extra);

[[gnu::noinline]] bool coring_test_block_until_seen(std::atomic<bool>& seen,
                                                    std::chrono::milliseconds extra) {
    // Blocks the loop thread (as a blocking call in a coroutine would) until the test has read
    // the watchdog's report, with a generous limit so a broken watchdog fails instead of hanging.
    auto limit = std::chrono::steady_clock::now() + 20s;
    while (!seen.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < limit) {
        ::usleep(1000);
    }
    bool ok = seen.load(std::memory_order_acquire);
    auto until = std::chrono::steady_clock::now() + extra;
    while (std::chrono::steady_clock::now() < until) {
        ::usleep(1000); // still stuck: no second report for the same step
    }
    asm volatile("" ::: "memory"); // not a tail call
    return ok;
}

namespace {

int thread_count() {
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/task")) {
        while (dirent* e = ::readdir(d)) {
            if (e->d_name[0] != '.') {
                ++n;
            }
        }
        ::closedir(d);
    }
    return n;
}

/// Reads fd until the end-of-report line, then sets seen; keeps the rest for the test.
struct ReportReader {
    int fd;
    std::atomic<bool>& seen;
    std::string text;
    std::thread thread;

    ReportReader(int read_fd, std::atomic<bool>& flag) : fd(read_fd), seen(flag) {
        thread = std::thread([this] {
            char buf[4096];
            for (;;) {
                ssize_t n = ::read(fd, buf, sizeof buf);
                if (n <= 0) {
                    return;
                }
                text.append(buf, static_cast<std::size_t>(n));
                if (text.find("coring watchdog: end of report") != std::string::npos) {
                    seen.store(true, std::memory_order_release);
                }
            }
        });
    }
};

coring::Task<bool> stuck_step(std::atomic<bool>& seen) {
    co_await coring::sleep(1ms);
    bool ok = coring_test_block_until_seen(seen, 150ms);
    co_return ok;
}

coring::Task<bool> watched_main(std::atomic<bool>& seen) {
    bool ok = co_await stuck_step(seen);
    co_return ok;
}

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

} // namespace

TEST_CASE("watchdog: a stuck task step is reported while it is still stuck, with the task's async "
          "stack and the blocking native frame",
          "[debug][watchdog][threads]") {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    std::atomic<bool> seen{false};
    bool unblocked_by_report = false;
    std::string text;
    {
        ReportReader reader(fds[0], seen);
        {
            EventLoop loop;
            loop.set_watchdog(50ms, fds[1]);
            CHECK(loop.watchdog() == 50ms);
            auto t = loop.create_task(watched_main(seen), "blocker");
            unblocked_by_report = loop.run_until_complete(t);
            loop.close();
        }
        ::close(fds[1]);
        reader.thread.join();
        text = reader.text;
    }
    ::close(fds[0]);
    INFO(text);
    // The step ended only because the test had read the whole report: it was written while the
    // loop thread was blocked.
    CHECK(unblocked_by_report);
    CHECK(text.find("coring watchdog: the event loop thread has been blocked for") !=
          std::string::npos);
    CHECK(text.find("threshold 50 ms") != std::string::npos);
    CHECK(text.find("task step of Task 'blocker'") != std::string::npos);
    // The async stack as dump_tasks renders it: the chain of coroutines and what it waited on.
    CHECK(text.find("watched_main at") != std::string::npos);
    CHECK(text.find("stuck_step at") != std::string::npos);
    CHECK(text.find("waiting on sleep 0.001 s") != std::string::npos);
    // The native backtrace of the loop thread, from inside the blocking function.
    CHECK(text.find("native backtrace of the loop thread") != std::string::npos);
    CHECK(text.find("coring_test_block_until_seen") != std::string::npos);
    // One report per stuck step, though it stayed stuck for several more watcher periods.
    CHECK(count_of(text, "coring watchdog: end of report") == 1);
}

TEST_CASE("watchdog: a stuck callback is reported with its type", "[debug][watchdog][threads]") {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    std::atomic<bool> seen{false};
    bool ok = false;
    std::string text;
    {
        ReportReader reader(fds[0], seen);
        {
            EventLoop loop;
            loop.set_watchdog(30ms, fds[1]);
            loop.call_soon([&] {
                ok = coring_test_block_until_seen(seen, 0ms);
                loop.stop();
            });
            loop.run_forever();
            loop.close();
        }
        ::close(fds[1]);
        reader.thread.join();
        text = reader.text;
    }
    ::close(fds[0]);
    INFO(text);
    CHECK(ok);
    CHECK(text.find("callback <Handle ") != std::string::npos);
    CHECK(text.find("coring_test_block_until_seen") != std::string::npos);
}

TEST_CASE("watchdog: steps under the threshold are not reported, and off means no thread",
          "[debug][watchdog][threads]") {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
    int before = thread_count();
    {
        EventLoop loop;
        CHECK(coring::detail::LoopAccess::debug_state(loop) == nullptr); // off: no state, no thread
        CHECK_FALSE(coring::detail::LoopAccess::instrumented(loop));
        CHECK(loop.watchdog() == 0ms);
        loop.set_watchdog(10s, fds[1]);
        // (Compared with counts taken around it: TSan starts a thread of its own with the first
        // thread a process creates.)
        int on = thread_count();
        CHECK(on > before);
        CHECK(coring::detail::LoopAccess::instrumented(loop));
        loop.run_until_complete(coring::sleep(20ms));
        loop.set_watchdog(0ms);
        CHECK(thread_count() == on - 1); // the watcher thread is gone
        CHECK(coring::detail::LoopAccess::debug_state(loop) == nullptr);
        CHECK_FALSE(coring::detail::LoopAccess::instrumented(loop));
    }
    char buf[16];
    CHECK(::read(fds[0], buf, sizeof buf) < 0); // nothing was written
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST_CASE("watchdog: CORING_WATCHDOG=ms turns it on for new loops", "[debug][watchdog][threads]") {
    ::setenv("CORING_WATCHDOG", "250", 1);
    EventLoop loop;
    ::unsetenv("CORING_WATCHDOG");
    CHECK(loop.watchdog() == 250ms);
    EventLoop other;
    CHECK(other.watchdog() == 0ms);
}

namespace {

coring::Task<> start_watchdog_then_sleep(int fd) {
    coring::get_running_loop().set_watchdog(20ms, fd); // from inside a step
    co_await coring::sleep(10ms);                      // a second, short step
    co_await coring::sleep(100ms);                     // idle, not blocked
}

} // namespace

TEST_CASE("watchdog: started from inside a step, it reports nothing for an idle loop",
          "[debug][watchdog][threads]") {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
    {
        EventLoop loop;
        loop.set_metrics(true); // the tools' hooks already run around that step
        loop.run_until_complete(start_watchdog_then_sleep(fds[1]));
        loop.close();
    }
    char buf[256];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    INFO(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0));
    CHECK(n < 0);
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST_CASE("watchdog: debug mode turns it on at debug_watchdog_threshold, unless one was chosen",
          "[debug][watchdog][threads]") {
    using coring::sleep;
    EventLoop loop;
    loop.set_debug(false);
    loop.run_until_complete(sleep(1ms));
    CHECK(loop.watchdog() == 0ms);
    loop.set_debug(true);
    CHECK(loop.watchdog() == 0ms); // it starts when the loop next runs
    loop.run_until_complete(sleep(1ms));
    CHECK(loop.watchdog() == EventLoop::debug_watchdog_threshold);
    CHECK(EventLoop::debug_watchdog_threshold == 1s);
    loop.set_debug(false);
    loop.run_until_complete(sleep(1ms));
    CHECK(loop.watchdog() == 0ms); // and stops when it next runs without debug mode
    CHECK(coring::detail::LoopAccess::debug_state(loop) == nullptr);
    loop.close();

    EventLoop off; // set_watchdog(0) is a choice debug mode keeps
    off.set_watchdog(0ms);
    off.set_debug(true);
    off.run_until_complete(sleep(1ms));
    CHECK(off.watchdog() == 0ms);
    off.close();

    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
    EventLoop chosen; // so is a threshold of the program's own
    chosen.set_watchdog(5s, fds[1]);
    chosen.set_debug(true);
    chosen.run_until_complete(sleep(1ms));
    CHECK(chosen.watchdog() == 5s);
    chosen.set_debug(false);
    chosen.run_until_complete(sleep(1ms));
    CHECK(chosen.watchdog() == 5s);
    chosen.close();
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST_CASE("watchdog: in debug mode a step stuck for a second is reported on stderr while stuck",
          "[debug][watchdog][threads]") {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    std::atomic<bool> seen{false};
    bool ok = false;
    std::string text;
    const int saved_stderr = ::dup(2);
    REQUIRE(saved_stderr >= 0);
    {
        ReportReader reader(fds[0], seen);
        ::dup2(fds[1], 2); // the debug-mode watchdog writes to stderr
        {
            EventLoop loop;
            loop.set_debug(true);
            ok = loop.run_until_complete(watched_main(seen));
            loop.close();
        }
        ::dup2(saved_stderr, 2);
        ::close(fds[1]);
        reader.thread.join();
        text = reader.text;
    }
    ::close(saved_stderr);
    ::close(fds[0]);
    INFO(text);
    CHECK(ok); // the report came while the step was still blocked
    CHECK(text.find("(threshold 1000 ms)") != std::string::npos);
    CHECK(text.find("stuck_step") != std::string::npos);
}
