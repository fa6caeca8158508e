// SPDX-License-Identifier: MIT
// Task dumps for hung programs: every pending task, its chain of coroutines and what it awaits,
// as a tree from awaiter to awaited (asyncio's Task.print_stack over all_tasks(); the
// `python -m asyncio pstree` view of 3.14); the blocking-call watchdog's signal. The watchdog,
// metrics and tracing are switched on through EventLoop (set_watchdog, set_metrics,
// start_trace; docs/guides/debugging.md).
#pragma once

#include <coring/event_loop.hpp>

#include <cstdio>
#include <string>

namespace coring {

/// Describes every pending task of loop: for each one, its name and state, its chain of
/// coroutines (root first, with where each is defined) and what the innermost one waits on
/// ("sleep 1.500 s", "gather of 3 (1 done)", "wait_for 2.000 s on Task 'x'", ...). Tasks awaited
/// by another task (through co_await of its handle, gather, wait, wait_for, shield, as_completed
/// or a TaskGroup's exit) are listed under it, indented, so the listing reads from awaiter to
/// awaited; a task awaited from several places is listed in full once.
///
///     2 pending tasks
///     Task 'main' (pending)
///       amain at app.cpp:40
///         waiting on gather of 1 (0 done)
///       -> Task 'fetch' (pending)
///            fetch at app.cpp:12
///              waiting on sleep 30.000 s
std::string format_tasks(EventLoop& loop);

/// format_tasks() of the running loop. Throws: RuntimeError when no loop is running.
std::string format_tasks();

/// Writes format_tasks(loop) to out (stderr by default).
void dump_tasks(EventLoop& loop, std::FILE* out = stderr);

/// Writes format_tasks() of the running loop to out (stderr by default).
/// Throws: RuntimeError when no loop is running.
void dump_tasks(std::FILE* out = stderr);

/// The realtime signal (SIGRTMIN + 4) the blocking-call watchdog (EventLoop::set_watchdog)
/// sends to a stuck loop thread so that the thread writes its own report: its handler is
/// installed process-wide the first time a watchdog starts. While a callback or task step has
/// run longer than the threshold, the watchdog's thread signals the loop thread once for that
/// step; the handler writes, without allocating, "coring watchdog: the event loop thread has been
/// blocked for N ms (threshold T ms) in:", the running task's name and async stack as it was at
/// the start of the step (format_tasks' rendering, "task step of Task 'x' (pending)" ...) or the
/// callback's type, the loop thread's native backtrace (glibc backtrace_symbols_fd: function names
/// appear for exported symbols, so link programs with -rdynamic; otherwise the binary+offset
/// addresses can be resolved with addr2line), and "coring watchdog: end of report".
/// Consequences of signalling: the handler is installed with SA_RESTART, but a blocking call that
/// the kernel never restarts (nanosleep/usleep, poll, epoll_wait, ...) returns early with EINTR
/// when it is interrupted; a thread that blocks the signal gets no report.
int watchdog_signal() noexcept;

} // namespace coring
