// SPDX-License-Identifier: MIT
// Child processes with pipes: create_subprocess_exec, create_subprocess_shell, Process
// (asyncio.subprocess, with unix_events' PidfdChildWatcher).
#pragma once

#include <coring/event_loop.hpp>
#include <coring/streams.hpp>
#include <coring/task.hpp>

#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/ring.hpp>
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

// The machinery behind Process and create_subprocess_exec (the child watch, the awaiter of
// Process::wait(), argument checks), which the declarations below use.
#include <coring/detail/subprocess_impl.hpp>

namespace coring {

/// Where one of the child's standard streams goes (the stdin/stdout/stderr arguments of
/// asyncio.create_subprocess_exec). Either one of the constants PIPE, DEVNULL, STDOUT, INHERIT,
/// or a file descriptor of the parent: `.stdout_ = fd` (the descriptor is duplicated into the
/// child; the caller keeps and closes its own).
struct Stdio {
    /// What the stream is connected to.
    enum class Kind : std::uint8_t {
        inherit, // the parent's own stream (asyncio's None)
        pipe,    // a new pipe; the Process gets its end as stdin_/stdout_/stderr_
        devnull, // /dev/null
        stdout_, // stderr only: the same destination as the child's stdout
        fd,      // the parent's descriptor fd
    };

    Kind kind = Kind::inherit;
    int fd = -1;

    constexpr Stdio() noexcept = default;

    constexpr explicit Stdio(Kind k) noexcept : kind(k) {}

    /// The parent's file descriptor `descriptor` (asyncio accepts an int fd the same way).
    constexpr Stdio(int descriptor) noexcept : kind(Kind::fd), fd(descriptor) {} // NOLINT
};

/// A new pipe to the child (asyncio.subprocess.PIPE).
inline constexpr Stdio PIPE{Stdio::Kind::pipe};
/// /dev/null (asyncio.subprocess.DEVNULL).
inline constexpr Stdio DEVNULL{Stdio::Kind::devnull};
/// For stderr: merge into the child's stdout (asyncio.subprocess.STDOUT).
inline constexpr Stdio STDOUT{Stdio::Kind::stdout_};
/// The parent's own stream, the default (asyncio's None).
inline constexpr Stdio INHERIT{Stdio::Kind::inherit};

/// Options of create_subprocess_exec and create_subprocess_shell, designed for designated
/// initialisers: `{.stdout_ = coring::PIPE, .stderr_ = coring::STDOUT}`. The three streams end
/// in an underscore because stdin, stdout and stderr are macros of <cstdio>. cwd and env are
/// views: what they refer to must stay valid until the process has started, which in
/// `co_await create_subprocess_exec(...)` it does.
struct SubprocessOptions {
    /// The child's standard input: INHERIT (default), PIPE, DEVNULL or a descriptor.
    Stdio stdin_{};
    /// The child's standard output: INHERIT (default), PIPE, DEVNULL or a descriptor.
    Stdio stdout_{};
    /// The child's standard error: INHERIT (default), PIPE, DEVNULL, STDOUT or a descriptor.
    Stdio stderr_{};
    /// The child's working directory; empty: the parent's.
    std::string_view cwd{};
    /// The child's whole environment as "NAME=value" entries; unset: the parent's (asyncio's
    /// env=None). `.env = entries` with a `std::vector<std::string> entries`.
    std::optional<std::span<const std::string>> env{};
    /// The StreamReader limit of stdout_ and stderr_ pipes (asyncio's limit).
    std::size_t limit = default_stream_limit;
};

// WORKAROUND(gcc-12): a braced temporary of an aggregate with a non-trivial destructor inside a
// co_await expression is destroyed twice (double free), so the options hold only views and
// `co_await create_subprocess_exec(p, args, {.cwd = "/tmp"})` is safe with every compiler.
static_assert(std::is_trivially_destructible_v<SubprocessOptions>);

/// A child process started by create_subprocess_exec or create_subprocess_shell
/// (asyncio.subprocess.Process). Movable, not copyable. Dropping it neither kills nor waits for
/// the child: the loop keeps watching it and reaps it when it exits, so it never stays a
/// zombie; the pipes are closed.
class Process {
public:
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    Process(Process&& other) noexcept
        : stdin_(std::move(other.stdin_)), stdout_(std::move(other.stdout_)),
          stderr_(std::move(other.stderr_)), s_(std::exchange(other.s_, nullptr)) {}

    Process& operator=(Process&& other) noexcept {
        if (this != &other) {
            reset();
            stdin_ = std::move(other.stdin_);
            stdout_ = std::move(other.stdout_);
            stderr_ = std::move(other.stderr_);
            s_ = std::exchange(other.s_, nullptr);
        }
        return *this;
    }

    ~Process() { reset(); }

    /// The child's process id (Process.pid).
    pid_t pid() const noexcept { return s_->pid(); }

    /// The exit status once the child has been reaped, else nullopt (Process.returncode): the
    /// exit code, or -N when signal N killed it. Set by the loop as soon as the child exits,
    /// whether or not anyone waits.
    std::optional<int> returncode() const noexcept { return s_->returncode(); }

    /// Waits for the child to exit and returns its return code (Process.wait()). Any number of
    /// tasks may wait; all get the code. Beware: with stdout_ or stderr_ a PIPE that nobody
    /// reads, a child writing much output blocks forever; communicate() reads for you.
    /// Cancellation: cancels only this wait; the child keeps running.
    [[nodiscard]] detail::ProcessWaitAwaiter wait() noexcept {
        return detail::ProcessWaitAwaiter(*s_);
    }

    /// Sends input to stdin_ (then closes it), reads stdout_ and stderr_ to EOF concurrently,
    /// then waits for the child (Process.communicate). Returns (stdout data, stderr data); each
    /// is nullopt when that stream is not a PIPE. A child that exits or closes its input before
    /// reading all of input is not an error (BrokenPipeError and ConnectionResetError on stdin
    /// are ignored, as asyncio does).
    ///
    ///     auto [out, err] = co_await proc.communicate("hello\n");
    ///
    /// Throws: ValueError when input is given and stdin_ is not a PIPE; the errors of reading.
    /// Cancellation: stops the I/O; the child keeps running, the streams stay as they are.
    [[nodiscard]] Task<std::pair<std::optional<std::string>, std::optional<std::string>>>
    communicate(std::string input = {});

    /// Sends signal sig to the child (Process.send_signal), through its pidfd, so a recycled
    /// pid is never signalled. A child that has exited but is not reaped yet is left alone
    /// (Popen.send_signal, Python 3.9+). Throws: ProcessLookupError once the child has been
    /// reaped (returncode() is set), as asyncio does once wait() can return;
    /// std::system_error for an invalid signal or a permission error.
    void send_signal(int sig) { s_->send_signal(sig); }

    /// send_signal(SIGTERM) (Process.terminate). Throws: as send_signal.
    void terminate();

    /// send_signal(SIGKILL) (Process.kill). Throws: as send_signal.
    void kill();

    /// The write end of the child's stdin when it is a PIPE (Process.stdin).
    std::optional<StreamWriter> stdin_;
    /// The read end of the child's stdout when it is a PIPE (Process.stdout).
    std::optional<StreamReader> stdout_;
    /// The read end of the child's stderr when it is a PIPE (Process.stderr).
    std::optional<StreamReader> stderr_;

private:
    friend struct detail::ProcessAccess;

    explicit Process(detail::ProcessState* s) noexcept : s_(s) {}

    void reset() noexcept {
        if (s_ != nullptr) {
            std::exchange(s_, nullptr)->release_by_process();
        }
    }

    detail::ProcessState* s_;
};

/// The arguments of create_subprocess_exec written in place as a braced list of strings:
/// `create_subprocess_exec("sh", {"-c", "exit 3"})`. It holds views of at most max_size strings
/// inline, so it is trivially destructible and needs no array temporary: GCC 12 compiles the
/// braced list inside a `co_await` (a std::vector or std::initializer_list parameter there fails
/// with "array used as initializer") and cannot destroy it twice. create_subprocess_exec copies
/// the strings before it returns, so they only have to live until the call returns.
class ExecArgs {
public:
    /// The longest braced list; pass a std::vector<std::string> for more.
    static constexpr std::size_t max_size = 32;

    /// No arguments.
    constexpr ExecArgs() noexcept = default;

    /// The strings first, rest..., in order (string literals, std::string, std::string_view, ...).
    template <detail::StringLike First, detail::StringLike... Rest>
    constexpr ExecArgs(const First& first, const Rest&... rest) noexcept // NOLINT: implicit
        : args_{std::string_view(first), std::string_view(rest)...}, size_(1 + sizeof...(Rest)) {
        static_assert(1 + sizeof...(Rest) <= max_size,
                      "more than ExecArgs::max_size arguments: pass a std::vector<std::string>");
    }

    /// The arguments, in order.
    constexpr std::span<const std::string_view> view() const noexcept {
        return {args_.data(), size_};
    }

private:
    std::array<std::string_view, max_size> args_{};
    std::size_t size_ = 0;
};

static_assert(std::is_trivially_destructible_v<ExecArgs>);

/// Starts program with args (argv[0] is program itself; args follow, as in
/// asyncio.create_subprocess_exec(program, *args)). A program without '/' is searched in the
/// parent's PATH. The child starts with an empty signal mask and the default disposition of
/// SIGPIPE and of every signal coring handles, its other descriptors closed on exec.
///
///     Process p = co_await coring::create_subprocess_exec("ls", {"-l", "/tmp"},
///                                                         {.stdout_ = coring::PIPE});
///
/// The braced list is an ExecArgs (at most ExecArgs::max_size strings); a std::vector of
/// strings works too (the overload below), and so do the strings spelled out one by one.
///
/// SIGPIPE: the first call sets the parent's SIGPIPE disposition to SIG_IGN if it is SIG_DFL
/// (Python does it at start-up), so writing to a child that has exited raises BrokenPipeError
/// instead of killing the program.
/// Throws: std::system_error (ENOENT, EACCES, ...) whose what() names the program when it
/// cannot be started; RuntimeError when no loop is running.
[[nodiscard]] inline Task<Process>
create_subprocess_exec(std::string program, ExecArgs args = {}, SubprocessOptions options = {}) {
    std::vector<std::string> owned(args.view().begin(), args.view().end());
    return detail::exec_process(std::move(program), std::move(owned), options);
}

/// create_subprocess_exec with the arguments in a std::vector<std::string> (any number of
/// them, built at run time):
///
///     std::vector<std::string> args{"-l", "/tmp"};
///     Process p = co_await coring::create_subprocess_exec("ls", args, {.stdout_ = coring::PIPE});
///
/// (A template only so that a braced list picks the ExecArgs form above.)
/// Throws: as create_subprocess_exec.
template <class V>
requires std::is_same_v<std::remove_cvref_t<V>, std::vector<std::string>>

[[nodiscard]] Task<Process>
create_subprocess_exec(std::string program, V&& args, SubprocessOptions options = {}) {
    return detail::exec_process(
            std::move(program), std::vector<std::string>(std::forward<V>(args)), options);
}

/// create_subprocess_exec with the arguments spelled out, as asyncio's `*args`, optionally
/// followed by the options (only as the last argument):
///
///     Process p = co_await coring::create_subprocess_exec(
///             "sh", "-c", "echo $HOME", coring::SubprocessOptions{.stdout_ = coring::PIPE});
///
/// Throws: as create_subprocess_exec.
template <class... A>

requires(detail::strings_then_options<A...>())
        [[nodiscard]] Task<Process> create_subprocess_exec(std::string program, A&&... a) {
    std::vector<std::string> args;
    args.reserve(sizeof...(A));
    SubprocessOptions options;
    (detail::add_spawn_argument(args, options, std::forward<A>(a)), ...);
    return detail::exec_process(std::move(program), std::move(args), options);
}

/// Runs cmd with /bin/sh -c (asyncio.create_subprocess_shell). Quoting is the caller's job.
/// Throws: as create_subprocess_exec.
[[nodiscard]] Task<Process> create_subprocess_shell(std::string cmd,
                                                    SubprocessOptions options = {});

} // namespace coring
