// SPDX-License-Identifier: MIT
// LoopGroup and run_per_core: N event loops, one thread each, each running its own copy of the
// program's main coroutine, with cross-loop calls (asyncio has no equivalent; see
// docs/asyncio-mapping.md "Loop layouts").
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/future.hpp>
#include <coring/run.hpp>
#include <coring/streams.hpp>
#include <coring/task.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace coring {

/// Options of LoopGroup and run_per_core.
struct LoopGroupOptions {
    /// Number of loops (threads); 0: one per CPU this process may run on.
    unsigned loops = 0;
    /// Pin loop i's thread to the i-th CPU of the process's affinity mask (modulo their count).
    bool pin = false;
    /// Size of each loop's io_uring submission queue.
    unsigned ring_entries = 1024;
    /// Debug mode for every loop; when unset, CORING_DEBUG=1 turns it on.
    std::optional<bool> debug{};
    /// While run() runs, SIGINT and SIGTERM cancel every loop's main (a second one stops every
    /// loop at once). The signals are blocked in the calling thread and the loops' threads and
    /// read with a signalfd by the calling thread; false leaves signals alone.
    bool handle_signals = true;
    /// The rings of loops 1..N-1 share loop 0's kernel worker pool (IORING_SETUP_ATTACH_WQ):
    /// one set of io-wq threads for the blocking work of the whole group, not one per loop.
    bool share_kernel_workers = true;
    /// Posts between the group's loops (run_on, post, LoopChannel wake-ups) travel as CQEs one
    /// ring posts into another (IORING_OP_MSG_RING) where the kernel supports it; false: through
    /// the target loop's eventfd, as posts from other threads always do.
    bool msg_ring = true;
};

static_assert(std::is_trivially_destructible_v<LoopGroupOptions>);

/// run() ended because SIGTERM (or another handled signal but SIGINT, which gives
/// KeyboardInterrupt as coring::run does) cancelled every loop's main. Like KeyboardInterrupt it
/// does not derive from std::exception.
class SignalShutdown {
public:
    explicit SignalShutdown(int signo) noexcept : signo_(signo) {}

    /// The signal received.
    int signal() const noexcept { return signo_; }

    /// "SignalShutdown".
    const char* what() const noexcept { return "SignalShutdown"; }

private:
    int signo_;
};

namespace detail {

/// The state one run_on call shares between the calling loop and the target loop. value and
/// error are written on the target before the completion is posted home and read at home after
/// it ran (the cross-thread queue orders them); waiter is touched at home only, remote on the
/// target only.
template <class R>
struct RemoteCall {
    std::conditional_t<std::is_void_v<R>, std::monostate, std::optional<R>> value;
    std::exception_ptr error;
    Future<>* waiter = nullptr;         // home thread only: the awaiting run_on frame's future
    TaskHandle<> remote;                // target thread only: the remote coroutine, while it runs
    std::atomic<bool> cancelled{false}; // the awaiting task gave up
};

template <class R>
void finish_remote_call(std::shared_ptr<RemoteCall<R>> call,
                        const std::shared_ptr<ThreadsafeQueue>& home) noexcept {
    try {
        home->call_soon([call] {
            if (call->waiter != nullptr && !call->waiter->done()) {
                call->waiter->set_result();
            }
        });
    } catch (...) {
        // the calling loop has closed: nobody waits for the result any more
    }
}

/// What run_on sends to the target loop besides fn: when it is destroyed without having run
/// (the target loop closed first), the caller gets RuntimeError instead of waiting forever.
template <class R>
struct RemoteStart {
    std::shared_ptr<RemoteCall<R>> call;
    std::shared_ptr<ThreadsafeQueue> home;

    RemoteStart(std::shared_ptr<RemoteCall<R>> c, std::shared_ptr<ThreadsafeQueue> h) noexcept
        : call(std::move(c)), home(std::move(h)) {}

    RemoteStart(RemoteStart&&) noexcept = default;
    RemoteStart(const RemoteStart&) = delete;
    RemoteStart& operator=(const RemoteStart&) = delete;
    RemoteStart& operator=(RemoteStart&&) = delete;

    ~RemoteStart() {
        if (call) {
            call->error = std::make_exception_ptr(
                    RuntimeError("LoopGroup::run_on: the target loop closed before the call ran"));
            finish_remote_call<R>(std::move(call), home);
        }
    }
};

/// Clears RemoteCall::remote when the remote coroutine's frame goes (on the target thread).
template <class R>
struct RemoteHandleReset {
    RemoteCall<R>* call;

    ~RemoteHandleReset() { call->remote = {}; }
};

template <class R, class F>
Task<>
remote_coroutine(F fn, std::shared_ptr<RemoteCall<R>> call, std::shared_ptr<ThreadsafeQueue> home) {
    RemoteHandleReset<R> reset{call.get()};
    try {
        auto work = fn();
        if constexpr (std::is_void_v<R>) {
            co_await std::move(work);
        } else {
            R v = co_await std::move(work);
            call->value.emplace(std::move(v));
        }
    } catch (...) {
        call->error = std::current_exception();
    }
    finish_remote_call<R>(call, home);
}

/// What run_on's fn gives: its awaited result when it returns an awaitable, else its value.
template <class F, class Res = std::invoke_result_t<F&>>
struct RemoteResult {
    using type = Res;
    static constexpr bool coroutine = false;
};

template <class F, class Res>
requires Awaitable<Res>

struct RemoteResult<F, Res> {
    using type = await_result_t<Res>;
    static constexpr bool coroutine = true;
};

} // namespace detail

/// N event loops, one thread each (the thread-per-core layout of Seastar, glommio, monoio),
/// each running its own copy of the program's main coroutine; asyncio's API inside every loop.
/// Loops share nothing but what the program shares; run_on calls a function or coroutine on
/// another loop and awaits its result.
///
///     coring::LoopGroup group({.loops = 2});
///     group.run([&](std::size_t i) { return serve(group, i); });
///
/// Thread safety: size(), index(), cancel() and run_on() are safe from any loop of the group;
/// run() from one thread at a time, not from a running loop.
class LoopGroup {
public:
    explicit LoopGroup(LoopGroupOptions options = {});

    LoopGroup(const LoopGroup&) = delete;
    LoopGroup& operator=(const LoopGroup&) = delete;

    ~LoopGroup();

    /// Number of loops.
    std::size_t size() const noexcept { return slots_.size(); }

    /// The index of the group loop running on this thread.
    /// Throws: RuntimeError when the calling thread runs no loop of this group.
    std::size_t index() const;

    /// Calls factory(i) on loop i's thread for every i (after every loop exists), runs the
    /// task it returns as that loop's main (as coring::run does), and waits for every loop to
    /// finish. Returns the results in loop order (nothing for void mains). The first main to
    /// fail cancels the others; its exception is rethrown once every loop has finished. After
    /// SIGINT: KeyboardInterrupt; after SIGTERM: SignalShutdown (see handle_signals).
    /// Throws: RuntimeError when called from a running loop or while the group runs; what a
    /// loop's creation throws (io_uring unavailable).
    template <class Factory>
    auto run(Factory factory) {
        using Main = std::invoke_result_t<Factory&, std::size_t>;
        using R = await_result_t<Main>;
        using Stored = std::conditional_t<std::is_void_v<R>, std::monostate, std::optional<R>>;
        std::vector<Stored> results(slots_.size());
        run_threads([&](std::size_t i) {
            EventLoop& loop = *slots_[i]->loop;
            auto main = group_main<R>(i, factory(i));
            if constexpr (std::is_void_v<R>) {
                loop.run_until_complete(std::move(main));
            } else {
                results[i].emplace(loop.run_until_complete(std::move(main)));
            }
        });
        if constexpr (!std::is_void_v<R>) {
            std::vector<R> out;
            out.reserve(results.size());
            for (auto& r : results) {
                out.push_back(std::move(*r));
            }
            return out;
        }
    }

    /// Cancels every loop's main task, once per run (each may clean up, awaiting, and finish;
    /// later calls, failures and signals do not cancel it again). Safe from any thread while
    /// run() runs; does nothing otherwise.
    void cancel() noexcept;

    /// Calls fn() on loop i and returns (or rethrows) its result; when fn returns an awaitable
    /// (a Task), it runs as a task on loop i and its awaited result is returned. Must be
    /// awaited on a loop (any loop, also one outside the group). fn is moved to loop i's thread
    /// and destroyed there; the result is moved back.
    /// Cancellation: the awaiting task gets CancelledError at once; fn does not start if it has
    /// not yet, and a coroutine already running on loop i is cancelled.
    /// Throws: RuntimeError when i is out of range or loop i is not running (closed).
    template <class F>
    [[nodiscard]] Task<typename detail::RemoteResult<F>::type> run_on(std::size_t i, F fn) {
        using R = typename detail::RemoteResult<F>::type;
        auto call = std::make_shared<detail::RemoteCall<R>>();
        std::shared_ptr<detail::ThreadsafeQueue> home =
                detail::LoopAccess::threadsafe_queue(get_running_loop());
        Future<> done;
        call->waiter = &done;
        WaiterReset<R> reset{call.get()};
        detail::RemoteStart<R> start(call, home);
        post(i, [fn = std::move(fn), start = std::move(start)]() mutable {
            std::shared_ptr<detail::RemoteCall<R>> c = std::move(start.call);
            std::shared_ptr<detail::ThreadsafeQueue> h = std::move(start.home);
            if (c->cancelled.load(std::memory_order_relaxed)) {
                return;
            }
            if constexpr (detail::RemoteResult<F>::coroutine) {
                c->remote = create_task(detail::remote_coroutine<R>(std::move(fn), c, h));
            } else {
                try {
                    if constexpr (std::is_void_v<R>) {
                        fn();
                    } else {
                        c->value.emplace(fn());
                    }
                } catch (...) {
                    c->error = std::current_exception();
                }
                detail::finish_remote_call<R>(c, h);
            }
        });
        try {
            co_await done;
        } catch (const CancelledError&) {
            call->cancelled.store(true, std::memory_order_relaxed);
            if constexpr (detail::RemoteResult<F>::coroutine) {
                try {
                    post(i, [call] {
                        if (call->remote) {
                            call->remote.cancel();
                        }
                    });
                } catch (...) {
                    // loop i has closed: its coroutine is gone already
                }
            }
            throw;
        }
        if (call->error) {
            std::rethrow_exception(call->error);
        }
        if constexpr (!std::is_void_v<R>) {
            co_return std::move(*call->value);
        }
    }

    /// Schedules f() on loop i from any thread (call_soon_threadsafe on that loop).
    /// Throws: RuntimeError when i is out of range or loop i is not running.
    template <class F>
    void post(std::size_t i, F&& f) {
        queue(i)->call_soon(std::forward<F>(f));
    }

    /// The signal that shut the group down during the last run(), or 0.
    int signal_received() const noexcept { return signal_.load(std::memory_order_relaxed); }

private:
    struct Slot {
        EventLoop* loop = nullptr;                      // set on its thread, during run()
        std::shared_ptr<detail::ThreadsafeQueue> queue; // guarded by lock_
        TaskHandle<> main;                              // loop thread only
        bool cancel_requested = false;                  // loop thread only
    };

    template <class R>
    struct WaiterReset {
        detail::RemoteCall<R>* call;

        ~WaiterReset() { call->waiter = nullptr; }
    };

    template <class R, class Main>
    Task<R> group_main(std::size_t i, Main main) {
        Slot& slot = *slots_[i];
        auto handle = create_task(std::move(main));
        slot.main = handle;
        if (slot.cancel_requested) {
            handle.cancel();
        }
        if constexpr (std::is_void_v<R>) {
            co_await std::move(handle);
        } else {
            R r = co_await std::move(handle);
            co_return r;
        }
    }

    std::shared_ptr<detail::ThreadsafeQueue> queue(std::size_t i) const;

    // Starts the threads, creates a loop on each, runs body(i) there, closes the loops (as
    // Runner::close), handles signals, joins, and rethrows the first failure.
    void run_threads(const std::function<void(std::size_t)>& body);

    // Loop thread: cancels the main of this slot.
    static void cancel_main(Slot& slot) noexcept;

    LoopGroupOptions options_;
    std::vector<std::unique_ptr<Slot>> slots_;
    // The mutex guarding the slots' queues and running_, in loop_group.cpp: this header does
    // without <mutex>.
    struct Lock;
    std::unique_ptr<Lock> lock_;
    bool running_ = false; // guarded by lock_
    std::atomic<int> signal_{0};
};

/// Runs main_factory(i) as the main of loop i on n loops of their own threads and returns
/// their results in loop order (see LoopGroup::run). n = 0: one loop per CPU.
///
///     int main() {
///         coring::run_per_core(2, [](std::size_t i) { return serve(i); });
///     }
template <class Factory>
auto run_per_core(unsigned n, Factory main_factory, LoopGroupOptions options = {}) {
    options.loops = n;
    LoopGroup group(options);
    return group.run(std::move(main_factory));
}

/// The other server layout: a listening socket on loop `acceptor` of group, whose accepted
/// connections are handed to the group's loops in turn (round robin, the acceptor included),
/// where client_connected_cb runs as with start_server. Returns when cancelled (the listening
/// socket is closed then); connections already handed over keep running on their loops.
/// Must run on loop `acceptor`. on_listening(port) is called once the socket listens.
/// Throws: GaiError; std::system_error "bind ...".
[[nodiscard]] Task<> serve_round_robin(LoopGroup& group,
                                       ClientConnectedCallback client_connected_cb,
                                       std::string host,
                                       std::uint16_t port,
                                       std::function<void(std::uint16_t)> on_listening = {});

} // namespace coring
