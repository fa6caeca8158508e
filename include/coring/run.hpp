// SPDX-License-Identifier: MIT
// run() and Runner: a loop's whole life around one main coroutine (asyncio.runners).
#pragma once

#include <coring/event_loop.hpp>
#include <coring/task.hpp>

#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace coring {

namespace detail {

class SignalCallback;

/// Runner::run's Ctrl-C handling for one run() (asyncio.Runner._on_sigint). When run() is
/// called on the main thread and SIGINT still has its default disposition (no handler of the
/// user's, no coring handler on any loop), it installs a SIGINT handler on the loop for the
/// duration: the first SIGINT cancels the main task, a second one stops the loop at once.
/// Defined with the signal plumbing (src/signals.cpp).
class SigintScope {
public:
    SigintScope(EventLoop& loop, TaskBase& main_task);
    SigintScope(const SigintScope&) = delete;
    SigintScope& operator=(const SigintScope&) = delete;

    /// Removes the handler if it is still the one installed here.
    ~SigintScope();

    /// SIGINTs received so far.
    int interrupts() const noexcept;

    /// Whether run() must raise KeyboardInterrupt without waiting for the main task.
    bool forced() const noexcept;

private:
    struct State;
    std::shared_ptr<State> state_;
    std::shared_ptr<SignalCallback> callback_;
};

} // namespace detail

/// Options of run() and Runner.
struct RunOptions {
    /// Debug mode for the new loop; when unset, CORING_DEBUG=1 in the environment turns it on.
    std::optional<bool> debug;
    /// Size of the loop's io_uring submission queue.
    unsigned ring_entries = 1024;
    /// EventLoopOptions::attach_wq_fd of the new loop.
    int attach_wq_fd = -1;
    /// EventLoopOptions::backend of the new loop.
    std::optional<Backend> backend{};
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
    ///
    /// Ctrl-C, as asyncio.Runner: on the main thread, when SIGINT has its default disposition,
    /// the first SIGINT cancels the main task (which may clean up; if it then ends cancelled,
    /// run() throws KeyboardInterrupt, and if it swallows the cancellation its value is
    /// returned), a second SIGINT makes run() throw KeyboardInterrupt at once without waiting
    /// for the main task. The default disposition is back when run() returns, so a SIGINT
    /// during close() ends the process as an unhandled SIGINT does.
    /// Throws: RuntimeError when called from a running loop or after close(); KeyboardInterrupt
    /// (see above).
    template <class Aw>
    decltype(auto) run(Aw&& aw) {
        if (EventLoop::running() != nullptr) {
            throw RuntimeError("coring::run() cannot be called from a running event loop");
        }
        EventLoop& loop = get_loop();
        auto task = loop.create_task(std::forward<Aw>(aw));
        detail::SigintScope sigint(loop, *task.base());
        try {
            auto owned = task; // run_until_complete may move the value out of its own handle
            if constexpr (std::is_void_v<typename decltype(task)::value_type>) {
                loop.run_until_complete(std::move(owned));
                if (sigint.forced()) {
                    throw KeyboardInterrupt();
                }
            } else {
                decltype(auto) result = loop.run_until_complete(std::move(owned));
                if (sigint.forced()) {
                    throw KeyboardInterrupt();
                }
                return result;
            }
        } catch (const CancelledError&) {
            // asyncio: a main task cancelled by Ctrl-C becomes KeyboardInterrupt, unless someone
            // else cancelled it too.
            if (sigint.forced() || (sigint.interrupts() > 0 && task.uncancel() == 0)) {
                throw KeyboardInterrupt();
            }
            throw;
        } catch (const RuntimeError&) {
            if (sigint.forced()) { // the second SIGINT stopped the loop early
                throw KeyboardInterrupt();
            }
            throw;
        }
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
/// loop is closed. Ctrl-C (SIGINT) cancels main, as Runner::run describes.
///
///     int main() { return coring::run(amain()); }
/// Throws: RuntimeError when a loop is already running on this thread; KeyboardInterrupt after
/// Ctrl-C.
template <class Aw>
decltype(auto) run(Aw&& main, RunOptions options = {}) {
    Runner runner(options);
    return runner.run(std::forward<Aw>(main));
}

/// Cancels every pending task of loop and runs the loop until they are all done; reports any
/// that ended with an exception other than CancelledError (asyncio.runners._cancel_all_tasks).
void cancel_all_tasks(EventLoop& loop);

} // namespace coring
