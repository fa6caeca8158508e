// SPDX-License-Identifier: MIT
// Private to the library: what future.cpp and task.cpp share.
#pragma once

#include <string>

namespace coring::detail {

class TaskBase;

/// "function at file:line" of the coroutine a task runs, for reports.
std::string source_of(const TaskBase& t);

} // namespace coring::detail
