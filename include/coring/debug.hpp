// SPDX-License-Identifier: MIT
// Task dumps for hung programs: every pending task, its chain of coroutines and what it awaits,
// as a tree from awaiter to awaited (asyncio's Task.print_stack over all_tasks(); the
// `python -m asyncio pstree` view of 3.14).
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

} // namespace coring
