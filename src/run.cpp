// SPDX-License-Identifier: MIT
// Runner and run() (asyncio.runners): the loop a program runs in, and the shutdown that cancels
// the tasks left and the default executor.
#include <coring/event_loop.hpp>
#include <coring/executor.hpp>
#include <coring/log.hpp>
#include <coring/run.hpp>
#include <coring/task.hpp>

#include <fmt/format.h>

#include <exception>
#include <vector>

namespace coring {

// ---- Runner ----

Runner::Runner(RunOptions options) : options_(options) {
}

Runner::~Runner() {
    try {
        close();
    } catch (const std::exception& e) {
        log(LogLevel::error, fmt::format("coring::Runner: error while closing: {}", e.what()));
    } catch (...) {
        log(LogLevel::error, "coring::Runner: unknown error while closing");
    }
}

EventLoop& Runner::get_loop() {
    if (closed_) {
        throw RuntimeError("Runner is closed");
    }
    if (!loop_) {
        loop_.emplace(EventLoopOptions{
                options_.ring_entries, options_.debug, options_.attach_wq_fd, options_.backend});
    }
    return *loop_;
}

void Runner::close() {
    if (closed_) {
        return;
    }
    closed_ = true;
    if (!loop_) {
        return;
    }
    try {
        cancel_all_tasks(*loop_);
        loop_->run_until_complete(shutdown_default_executor(*loop_));
    } catch (...) {
        loop_->close();
        loop_.reset();
        throw;
    }
    loop_->close();
    loop_.reset();
}

namespace {

Task<> await_all(std::vector<TaskHandle<>> tasks) {
    for (auto& t : tasks) {
        try {
            co_await t;
        } catch (...) {
            // outcomes are inspected by cancel_all_tasks
        }
    }
}

} // namespace

void cancel_all_tasks(EventLoop& loop) {
    std::vector<TaskHandle<>> tasks = all_tasks(loop);
    if (tasks.empty()) {
        return;
    }
    for (auto& t : tasks) {
        t.cancel();
    }
    loop.run_until_complete(await_all(tasks));
    for (auto& t : tasks) {
        if (t.cancelled()) {
            continue;
        }
        if (std::exception_ptr e = t.exception()) {
            loop.call_exception_handler(
                    {"unhandled exception during coring::run() shutdown", e, t.get_name(), {}});
        }
    }
}

} // namespace coring
