// SPDX-License-Identifier: MIT
// coring/testing.hpp: stepping to the next timer, the leak checks and the checked run of a test
// coroutine (asyncio's test_utils and IsolatedAsyncioTestCase).
#include <coring/errors.hpp>
#include <coring/run.hpp>
#include <coring/testing.hpp>

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace coring::testing {

std::optional<EventLoop::time_point> advance_to_next_timer(EventLoop& loop) {
    run_until_idle(loop); // throws on a closed or running loop
    if (loop.timer_count() == 0) {
        return std::nullopt;
    }
    // A timer that never comes due (a saturated huge delay) is no "next timer": a guard just
    // before the end of the clock stops the wait for it. Scheduled after every existing timer,
    // the guard fires after them when it ties.
    constexpr std::int64_t guard_ns = detail::never_ns - 1;
    TimerHandle guard = loop.call_at(detail::LoopAccess::from_ns(guard_ns), [] {});
    // One iteration that starts with nothing ready waits for (or, on virtual time, jumps to) the
    // earliest timer and runs what it fires. run_once runs inside a callback of run_forever, so
    // that the loop counts as running on this thread while the timer's callback and the task it
    // wakes run; that callback is the only entry of the outer iteration (the queue was idle), so
    // the inner iteration owns the queue. If a completion or an already due timer made something
    // ready meanwhile, the outer iteration runs it instead: the clock has moved to it.
    std::exception_ptr error;
    loop.call_soon([&loop, &error] {
        try {
            if (loop.ready_count() == 0) {
                detail::LoopAccess::run_once(loop);
            }
        } catch (...) {
            error = std::current_exception();
        }
        loop.stop();
    });
    loop.run_forever();
    const bool only_never_due = detail::LoopAccess::now_ns(loop) >= guard_ns;
    guard.cancel();
    if (error) {
        std::rethrow_exception(error);
    }
    if (only_never_due) {
        return std::nullopt;
    }
    return loop.time();
}

std::vector<int> open_fds() {
    std::vector<int> fds;
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) {
        return fds;
    }
    const int own = ::dirfd(dir);
    while (const dirent* entry = ::readdir(dir)) {
        char* end = nullptr;
        const long fd = std::strtol(entry->d_name, &end, 10);
        if (end != entry->d_name && *end == '\0' && fd != own) {
            fds.push_back(static_cast<int>(fd));
        }
    }
    ::closedir(dir);
    std::sort(fds.begin(), fds.end());
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

namespace {

std::string describe_context(const ExceptionContext& context) {
    std::string line = "the loop's exception handler was called: " + context.message;
    if (!context.task.empty()) {
        line += " (task \"" + context.task + "\")";
    }
    if (context.exception) {
        line += ": " + describe_exception(context.exception);
    }
    if (!context.source.empty()) {
        line += " [" + context.source + "]";
    }
    return line;
}

} // namespace

CheckedRunResult run_checked(const std::function<Task<>()>& make,
                             const CheckedRunOptions& options,
                             const std::function<void(EventLoop&)>& setup) {
    CheckedRunResult result;
    std::vector<int> fds_before;
    if (options.check_fds) {
        fds_before = open_fds();
    }
    {
        std::vector<std::string> reports; // outlives the loop whose handler appends to it
        EventLoop loop;
        if (options.debug) {
            loop.set_debug(*options.debug);
        }
        if (options.check_exception_handler) {
            loop.set_exception_handler([&reports](EventLoop&, const ExceptionContext& context) {
                try {
                    reports.push_back(describe_context(context));
                } catch (...) {
                    // out of memory while recording: nothing better to do in a handler
                }
            });
        }
        if (setup) {
            setup(loop);
        }
        std::optional<VirtualClock> clock;
        if (options.virtual_time) {
            clock.emplace(loop);
        }
        try {
            auto main_task = loop.create_task(make(), "test-main");
            loop.run_until_complete(main_task);
        } catch (...) {
            result.error = std::current_exception();
        }
        std::vector<TaskHandle<>> pending = all_tasks(loop);
        // After a failed assertion the tasks it skipped awaiting are noise, not the finding.
        if (options.check_tasks && !result.error) {
            for (const auto& t : pending) {
                std::string line =
                        "task \"" + t.get_name() + "\" was still pending when the test ended";
                if (const std::string stack = t.get_stack(); !stack.empty()) {
                    line += "; its stack: " + stack;
                }
                result.problems.push_back(std::move(line));
            }
        }
        pending.clear();
        try {
            cancel_all_tasks(loop);
        } catch (...) {
            result.problems.push_back("cancelling the leftover tasks failed: " +
                                      describe_exception(std::current_exception()));
        }
        clock.reset();
        loop.close();
        for (auto& r : reports) {
            result.problems.push_back(std::move(r));
        }
    }
    if (options.check_fds) {
        for (int fd : open_fds()) {
            if (!std::binary_search(fds_before.begin(), fds_before.end(), fd)) {
                result.problems.push_back("descriptor " + std::to_string(fd) + " (" +
                                          fd_target(fd) + ") left open");
            }
        }
    }
    if (options.check_children) {
        for (auto& child : leftover_children()) {
            result.problems.push_back(std::move(child));
        }
    }
    return result;
}

} // namespace coring::testing
