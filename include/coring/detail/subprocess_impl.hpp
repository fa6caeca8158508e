// SPDX-License-Identifier: MIT
// The machinery of subprocess.hpp: ProcessState (a child's pidfd, its exit watch and return
// code), the awaiter of Process::wait(), and the helpers of create_subprocess_exec. Users
// include <coring/subprocess.hpp>, which includes this header before its API.
#pragma once

#include <coring/event_loop.hpp>
#include <coring/streams.hpp>
#include <coring/task.hpp>

#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/owned_op.hpp>
#include <coring/detail/queued_waiter.hpp>
#include <coring/detail/task_base.hpp>

#include <sys/types.h>

#include <array>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace coring {

// Defined in subprocess.hpp, after this header.
class Process;
struct SubprocessOptions;

} // namespace coring

namespace coring::detail {

class ProcessWaitAwaiter;
struct ProcessAccess;

struct ProcessWaitTag {};

/// The kernel side of one child: its pidfd, the poll that waits for its exit, its return code
/// and the tasks in Process::wait(). Watched from spawn until reaped, as asyncio's child watcher
/// does, so returncode() becomes known even when nobody waits and a dropped Process never
/// leaves a zombie. Owned by its Process and, until the child is reaped, by its loop (it is a
/// LoopResource); deleted when both have let go. Loop thread only.
class ProcessState final : public LoopResource {
public:
    /// Takes pidfd; starts watching it on loop. Throws: what Ring::get_sqe throws.
    ProcessState(EventLoop& loop, pid_t pid, int pidfd);

    ProcessState(const ProcessState&) = delete;
    ProcessState& operator=(const ProcessState&) = delete;

    pid_t pid() const noexcept { return pid_; }

    const std::optional<int>& returncode() const noexcept { return returncode_; }

    /// The Process is gone: delete now if the child was reaped, else when it is.
    void release_by_process() noexcept;

    /// Sends sig with pidfd_send_signal, unless the child was reaped already (Popen.send_signal
    /// since Python 3.9). Throws: std::system_error for errors other than ESRCH.
    void send_signal(int sig);

    /// The loop closed: the poll was handed back already. Reaps the child if it has exited,
    /// otherwise logs a warning naming its pid and leaves it.
    void on_loop_close() noexcept override;

private:
    friend class ProcessWaitAwaiter;

    ~ProcessState();

    void on_poll(int res, unsigned flags) noexcept;
    void arm();
    bool try_reap() noexcept;
    bool try_reap_at_close() noexcept;
    void finish(int code) noexcept;
    void add_waiter(ProcessWaitAwaiter& w) noexcept;
    void remove_waiter(ProcessWaitAwaiter& w) noexcept;
    void sync_background() noexcept;
    void maybe_delete() noexcept;

    EventLoop* loop_; // null once the loop closed
    pid_t pid_;
    int pidfd_;
    std::optional<int> returncode_;
    IntrusiveList<ProcessWaitAwaiter, ProcessWaitTag> waiters_;
    OwnedOp<ProcessState, &ProcessState::on_poll> poll_{this}; // the POLL_ADD on pidfd_
    bool background_ = false; // counted with count_background_io (in flight, nobody waits)
    bool process_alive_ = true;
    bool registered_ = false; // linked in the loop's resources
};

/// Awaiter of Process::wait(): ready at once when the return code is known, else a node in the
/// state's waiter list (in the awaiting frame). Cancelling it unlinks only this waiter.
class [[nodiscard]] ProcessWaitAwaiter final : public ListHook<ProcessWaitTag>,
                                               public QueuedWaiter {
public:
    explicit ProcessWaitAwaiter(ProcessState& s) noexcept : s_(&s) {}

    /// Awaiters are moved only before they are awaited (create_task(proc.wait())).
    ProcessWaitAwaiter(ProcessWaitAwaiter&& other) noexcept : s_(other.s_) {}

    ProcessWaitAwaiter& operator=(const ProcessWaitAwaiter&) = delete;

    ~ProcessWaitAwaiter() {
        if (is_linked()) {
            s_->remove_waiter(*this); // a waiting task destroyed under a live state
        }
    }

    bool await_ready() const noexcept { return s_->returncode_.has_value(); }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        task_ = task_of(h);
        s_->add_waiter(*this);
        suspend_here(h);
    }

    /// The child's return code. Throws: CancelledError.
    int await_resume() {
        if (state_ == WaitState::ready) { // did not suspend
            return *s_->returncode_;
        }
        throw_if_cancelled();
        return code_;
    }

    bool cancel(const std::string&) noexcept override {
        if (!is_linked()) {
            return false; // the child was reaped: the task is scheduled already
        }
        s_->remove_waiter(*this);
        return cancel_dequeued();
    }

    void describe(std::string& out) const override;

private:
    friend class ProcessState;

    ProcessState* s_;
    int code_ = 0; // copied when woken: the state may be gone by the time the task runs
};

/// A string create_subprocess_exec accepts as an argument.
template <class A>
concept StringLike = std::is_convertible_v<const A&, std::string_view>;

/// The coroutine behind every form of create_subprocess_exec: owns its arguments.
[[nodiscard]] Task<Process>
exec_process(std::string program, std::vector<std::string> args, SubprocessOptions options);

/// Whether A... is strings, optionally followed by one SubprocessOptions (the variadic form).
template <class... A>
constexpr bool strings_then_options() noexcept {
    constexpr std::size_t n = sizeof...(A);
    if constexpr (n == 0) {
        return false;
    } else {
        constexpr bool is_string[] = {std::is_convertible_v<A, std::string_view>...};
        constexpr bool is_options[] = {
                std::is_same_v<std::remove_cvref_t<A>, SubprocessOptions>...};
        for (std::size_t i = 0; i + 1 < n; ++i) {
            if (!is_string[i]) {
                return false;
            }
        }
        return is_string[n - 1] || is_options[n - 1];
    }
}

template <class A>
void add_spawn_argument(std::vector<std::string>& args, SubprocessOptions& options, A&& a) {
    if constexpr (std::is_same_v<std::remove_cvref_t<A>, SubprocessOptions>) {
        options = a;
    } else {
        args.emplace_back(std::string_view(a));
    }
}

} // namespace coring::detail
