// SPDX-License-Identifier: MIT
// Unix signal handlers run as loop callbacks (asyncio.unix_events add/remove_signal_handler).
#pragma once

#include <coring/event_loop.hpp>
#include <coring/task.hpp>

#include <memory>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace coring {

namespace detail {

/// A signal handler's callback, type-erased. Shared: a callback already scheduled keeps it
/// alive after the handler is removed or replaced.
class SignalCallback {
public:
    explicit SignalCallback(const std::type_info& type) noexcept : type_(&type) {}

    SignalCallback(const SignalCallback&) = delete;
    SignalCallback& operator=(const SignalCallback&) = delete;
    virtual ~SignalCallback() = default;

    /// Runs the user's callback (may throw; the caller reports it).
    virtual void invoke() = 0;

    /// The callable's type, for reports.
    const std::type_info& type() const noexcept { return *type_; }

private:
    const std::type_info* type_;
};

template <class F>
class SignalCallbackImpl final : public SignalCallback {
public:
    template <class G>
    explicit SignalCallbackImpl(G&& g) : SignalCallback(typeid(F)), fn_(std::forward<G>(g)) {}

    void invoke() override { fn_(); }

private:
    F fn_;
};

/// Installs callback for sig on loop (the work behind coring::add_signal_handler).
void add_signal_handler(EventLoop& loop, int sig, std::shared_ptr<SignalCallback> callback);

/// Removes loop's handler for sig only if its callback is still `callback` (Runner's SIGINT
/// handler must not remove one the user installed meanwhile). Returns whether it did.
bool remove_signal_handler_if(EventLoop& loop, int sig, const SignalCallback* callback);

/// Whether any loop of the process has a handler for sig. Thread safety: any thread.
bool signal_has_handler(int sig);

} // namespace detail

/// Arranges for callback(args...) to run on loop whenever signal sig arrives
/// (asyncio's loop.add_signal_handler). A second call for the same signal replaces the callback.
/// The callback runs as a loop callback: scheduled (FIFO, like call_soon) when the loop reads
/// the signal, never inside the signal handler, so it may do anything a callback may; what it
/// throws goes to the loop's exception handler.
///
/// How: the signal is blocked in the calling thread (call this on the thread that runs the
/// loop) and read through a signalfd whose read stays in flight in the loop's io_uring while
/// the loop has handlers. Its disposition is replaced by a tiny handler that redirects an
/// instance delivered to another thread (one that does not block the signal, e.g. started
/// before this call) to the loop's thread. One loop per signal at a time: different loops may
/// handle different signals. Removing the last handler restores the previous disposition and
/// this thread's mask; closing the loop removes its handlers.
///
///     coring::add_signal_handler(loop, SIGTERM, [&] { stop.set(); });
///
/// Throws: ValueError("invalid signal number N") when sig is not a valid signal;
/// RuntimeError("sig N cannot be caught") for SIGKILL and SIGSTOP; RuntimeError when another
/// loop handles sig or the loop is closed; std::system_error when signalfd, pthread_sigmask
/// or sigaction fail (nothing is changed then).
/// Thread safety: call it on the loop's thread; different loops may call it concurrently.
template <class F, class... Args>
requires std::is_invocable_v < std::decay_t<F>

&, std::decay_t<Args>&... >
           void add_signal_handler(EventLoop& loop, int sig, F&& callback, Args&&... args) {
    using Bound = std::decay_t<decltype(detail::bind_callback(std::forward<F>(callback),
                                                              std::forward<Args>(args)...))>;
    static_assert(!detail::IsTask<std::decay_t<std::invoke_result_t<Bound&>>>::value,
                  "coroutines cannot be used with add_signal_handler(); start a task from "
                  "a plain callback instead");
    detail::add_signal_handler(
            loop,
            sig,
            std::make_shared<detail::SignalCallbackImpl<Bound>>(
                    detail::bind_callback(std::forward<F>(callback), std::forward<Args>(args)...)));
}

/// Removes the handler for sig installed on loop (asyncio's loop.remove_signal_handler) and
/// returns true, or returns false when loop had none. The signal's previous disposition is
/// restored, instances that arrived but were not read yet are discarded, and the signal is
/// unblocked again if this thread blocked it. A callback already scheduled still runs.
/// Throws: ValueError("invalid signal number N") when sig is not a valid signal.
/// Thread safety: call it on the loop's thread.
bool remove_signal_handler(EventLoop& loop, int sig);

} // namespace coring
