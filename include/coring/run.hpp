// SPDX-License-Identifier: MIT
// run() and Runner: a loop's whole life around one main coroutine (asyncio.runners).
#pragma once

#include <coring/event_loop.hpp>
#include <coring/task.hpp>

#include <optional>
#include <type_traits>
#include <utility>

namespace coring {

/// Options of run() and Runner.
struct RunOptions {
    /// Debug mode for the new loop; when unset, CORING_DEBUG=1 in the environment turns it on.
    std::optional<bool> debug;
    /// Size of the loop's io_uring submission queue.
    unsigned ring_entries = 1024;
};

/// Owns a loop for a sequence of run() calls (asyncio.Runner). close() (also run by the
/// destructor) cancels every task still pending, waits for them, and closes the loop.
///
///     coring::Runner runner;
///     runner.run(setup());
///     int code = runner.run(serve());
class Runner {
public:
    explicit Runner(RunOptions options = {});

    Runner(const Runner&) = delete;
    Runner& operator=(const Runner&) = delete;

    ~Runner();

    /// Runs aw (a Task or any awaitable) as the main task until it is done; returns its value or
    /// rethrows its exception. Tasks it leaves behind keep their state until close().
    /// Throws: RuntimeError when called from a running loop or after close().
    template <class Aw>
    decltype(auto) run(Aw&& aw) {
        if (EventLoop::running() != nullptr) {
            throw RuntimeError("coring::run() cannot be called from a running event loop");
        }
        EventLoop& loop = get_loop();
        return loop.run_until_complete(loop.create_task(std::forward<Aw>(aw)));
    }

    /// Cancels the tasks still pending, waits for them, then closes the loop. Idempotent.
    void close();

    /// The loop, created on first use. Throws: RuntimeError after close().
    EventLoop& get_loop();

private:
    RunOptions options_;
    std::optional<EventLoop> loop_;
    bool closed_ = false;
};

/// Runs main on a new event loop and returns its value or rethrows its exception
/// (asyncio.run). Before returning, every task still pending is cancelled and awaited and the
/// loop is closed.
///
///     int main() { return coring::run(amain()); }
/// Throws: RuntimeError when a loop is already running on this thread.
template <class Aw>
decltype(auto) run(Aw&& main, RunOptions options = {}) {
    Runner runner(options);
    return runner.run(std::forward<Aw>(main));
}

/// Cancels every pending task of loop and runs the loop until they are all done; reports any
/// that ended with an exception other than CancelledError (asyncio.runners._cancel_all_tasks).
void cancel_all_tasks(EventLoop& loop);

} // namespace coring
