// SPDX-License-Identifier: MIT
// Spawning children with posix_spawn and watching them through a pidfd polled in the loop's
// io_uring (asyncio.subprocess, base_subprocess, unix_events' PidfdChildWatcher).
#include <coring/errors.hpp>
#include <coring/gather.hpp>
#include <coring/log.hpp>
#include <coring/signals.hpp>
#include <coring/subprocess.hpp>

#include <coring/detail/sys.hpp>

#include <fmt/format.h>
#include <liburing.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

#ifndef P_PIDFD
#define P_PIDFD 3 // waitid(2) on a pidfd, Linux 5.4 (glibc 2.36 defines it)
#endif

extern char** environ; // NOLINT: POSIX declares it nowhere else

namespace coring {

namespace detail {

struct ProcessAccess {
    static Process make(ProcessState* s) noexcept { return Process(s); }
};

namespace {

[[noreturn]] void throw_errno(int err, const std::string& what) {
    throw std::system_error(err, std::system_category(), what);
}

int pidfd_open(pid_t pid) noexcept {
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int pidfd_send_signal(int pidfd, int sig) noexcept {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// A descriptor owned by the spawning code until it is handed over.
class OwnedFd {
public:
    OwnedFd() noexcept = default;

    explicit OwnedFd(int fd) noexcept : fd_(fd) {}

    OwnedFd(OwnedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

    OwnedFd& operator=(OwnedFd&& other) noexcept {
        reset(std::exchange(other.fd_, -1));
        return *this;
    }

    ~OwnedFd() { reset(); }

    int get() const noexcept { return fd_; }

    int release() noexcept { return std::exchange(fd_, -1); }

    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) {
            sys.close(fd_); // through the seam: the epoll backend notes the number's reuse
        }
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

// A close-on-exec copy of fd numbered 3 or above, so that the dup2 of one standard stream can
// never overwrite the source of another.
OwnedFd dup_high(int fd, const std::string& what) {
    int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (copy < 0) {
        throw_errno(errno, what);
    }
    return OwnedFd(copy);
}

class FileActions {
public:
    FileActions() { check(::posix_spawn_file_actions_init(&fa_)); }

    FileActions(const FileActions&) = delete;
    FileActions& operator=(const FileActions&) = delete;

    ~FileActions() { ::posix_spawn_file_actions_destroy(&fa_); }

    posix_spawn_file_actions_t* get() noexcept { return &fa_; }

    static void check(int err) {
        if (err != 0) {
            throw_errno(err, "posix_spawn_file_actions");
        }
    }

private:
    posix_spawn_file_actions_t fa_;
};

class SpawnAttr {
public:
    SpawnAttr() { FileActions::check(::posix_spawnattr_init(&attr_)); }

    SpawnAttr(const SpawnAttr&) = delete;
    SpawnAttr& operator=(const SpawnAttr&) = delete;

    ~SpawnAttr() { ::posix_spawnattr_destroy(&attr_); }

    posix_spawnattr_t* get() noexcept { return &attr_; }

private:
    posix_spawnattr_t attr_;
};

} // namespace

// ---- ProcessState ----

ProcessState::ProcessState(EventLoop& loop, pid_t pid, int pidfd)
    : loop_(&loop), pid_(pid), pidfd_(pidfd) {
    detail::LoopAccess::register_resource(loop, *this);
    registered_ = true;
    arm();
}

ProcessState::~ProcessState() {
    if (pidfd_ >= 0) {
        sys.close(pidfd_);
    }
}

void ProcessState::arm() {
    Ring& ring = detail::LoopAccess::ring(*loop_);
    io_uring_sqe* sqe = ring.get_sqe();
    io_uring_prep_poll_add(sqe, pidfd_, POLLIN);
    poll_.submit(ring, sqe);
    sync_background();
}

// The poll is the loop's own work while nobody waits (asyncio's child watcher), so it must not
// keep io_in_flight() above zero then; a task waiting in wait() makes it that task's I/O.
void ProcessState::sync_background() noexcept {
    bool want = poll_.in_flight() && waiters_.empty() && loop_ != nullptr;
    if (want != background_) {
        detail::LoopAccess::count_background_io(*loop_, want ? +1 : -1);
        background_ = want;
    }
}

void ProcessState::on_poll(int res, unsigned) noexcept {
    sync_background();
    if (try_reap()) {
        return; // may have deleted this
    }
    if (res < 0 && res != -EINTR && res != -ECANCELED) {
        loop_->call_exception_handler(
                {fmt::format("coring: polling the pidfd of child process {} failed: {}",
                             pid_,
                             std::strerror(-res)),
                 {},
                 {},
                 {}});
        return;
    }
    try {
        arm(); // woken without an exit (cannot happen for a pidfd, but be safe)
    } catch (...) {
        loop_->call_exception_handler({"coring: could not re-arm a child's pidfd poll",
                                       std::current_exception(),
                                       {},
                                       {}});
    }
}

// Reaps the child if it has exited (waitid on the pidfd: never another process's child).
bool ProcessState::try_reap() noexcept {
    siginfo_t info{};
    int r;
    do {
        r = ::waitid(static_cast<idtype_t>(P_PIDFD),
                     static_cast<id_t>(pidfd_),
                     &info,
                     WEXITED | WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        // Someone else reaped it (waitpid(-1) elsewhere): asyncio reports 255 the same way.
        log(LogLevel::warning,
            fmt::format("child process pid {} exit status already read: will report "
                        "returncode 255",
                        pid_));
        finish(255);
        return true;
    }
    if (info.si_pid == 0) {
        return false; // still running
    }
    finish(info.si_code == CLD_EXITED ? info.si_status : -info.si_status);
    return true;
}

void ProcessState::finish(int code) noexcept {
    returncode_ = code;
    sys.close(pidfd_);
    pidfd_ = -1;
    while (ProcessWaitAwaiter* w = waiters_.pop_front()) {
        w->code_ = code;
        w->state_ = WaitState::woken;
        w->task_->wake();
    }
    sync_background();
    if (registered_) {
        static_cast<LoopResource&>(*this).unlink();
        registered_ = false;
    }
    maybe_delete();
}

void ProcessState::add_waiter(ProcessWaitAwaiter& w) noexcept {
    waiters_.push_back(w);
    sync_background();
}

void ProcessState::remove_waiter(ProcessWaitAwaiter& w) noexcept {
    static_cast<ListHook<ProcessWaitTag>&>(w).unlink();
    sync_background();
}

void ProcessState::release_by_process() noexcept {
    process_alive_ = false;
    maybe_delete();
}

void ProcessState::maybe_delete() noexcept {
    if (!process_alive_ && !registered_ && waiters_.empty()) {
        delete this;
    }
}

void ProcessState::on_loop_close() noexcept {
    registered_ = false; // close() unlinked us
    poll_.forget();      // close() drained the ring: the poll is over
    sync_background();
    waiters_.clear(); // their tasks are destroyed next, never resumed
    if (!try_reap_at_close()) {
        log(LogLevel::warning,
            fmt::format("coring: the event loop closed while child process pid {} was still "
                        "running; it is left running and will not be reaped by coring",
                        pid_));
    }
    loop_ = nullptr;
    maybe_delete();
}

// At loop close: reap without finish() (which would delete and wake). Returns whether the
// child is reaped.
bool ProcessState::try_reap_at_close() noexcept {
    if (returncode_) {
        return true;
    }
    siginfo_t info{};
    if (::waitid(static_cast<idtype_t>(P_PIDFD),
                 static_cast<id_t>(pidfd_),
                 &info,
                 WEXITED | WNOHANG) < 0) {
        returncode_ = 255;
        return true;
    }
    if (info.si_pid == 0) {
        return false;
    }
    returncode_ = info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
    return true;
}

void ProcessState::send_signal(int sig) {
    if (returncode_) {
        // Reaped, and wait() has returned or can return at once: asyncio's transport has
        // finished by then and raises ProcessLookupError.
        throw ProcessLookupError(
                ESRCH, fmt::format("send_signal {} to child process {}: it has exited", sig, pid_));
    }
    if (pidfd_send_signal(pidfd_, sig) < 0) {
        int err = errno;
        if (err == ESRCH) {
            return; // exited, not reaped yet: nothing to do (Popen.send_signal, Python 3.9+)
        }
        throw_errno(err, fmt::format("send_signal {} to child process {}", sig, pid_));
    }
}

void ProcessWaitAwaiter::describe(std::string& out) const {
    out += fmt::format("Process.wait (pid {})", s_->pid());
}

namespace {

struct Pipes {
    OwnedFd parent[3]; // our ends of the PIPE streams
};

Process spawn(const std::string& program,
              const std::vector<std::string>& args,
              const SubprocessOptions& options) {
    EventLoop& loop = get_running_loop();
    ignore_sigpipe();
    const std::string what = fmt::format("spawn '{}'", program);

    std::vector<char*> argv;
    argv.reserve(args.size() + 2);
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const std::string& a : args) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);

    std::vector<char*> envp;
    if (options.env) {
        envp.reserve(options.env->size() + 1);
        for (const std::string& e : *options.env) {
            envp.push_back(const_cast<char*>(e.c_str()));
        }
        envp.push_back(nullptr);
    }

    FileActions actions;
    const std::string cwd(options.cwd); // NUL-terminated; lives until the spawn is done
    if (!cwd.empty()) {
        FileActions::check(::posix_spawn_file_actions_addchdir_np(actions.get(), cwd.c_str()));
    }
    Pipes pipes;
    OwnedFd child_side[3]; // closed in the parent once the child has its copies
    const Stdio* streams[3] = {&options.stdin_, &options.stdout_, &options.stderr_};
    for (int i = 0; i < 3; ++i) {
        const Stdio& s = *streams[i];
        switch (s.kind) {
        case Stdio::Kind::inherit:
            break;
        case Stdio::Kind::pipe: {
            int fds[2];
            if (detail::sys.pipe2(fds, O_CLOEXEC) < 0) {
                throw_errno(errno, what + ": pipe");
            }
            OwnedFd read_end(fds[0]);
            OwnedFd write_end(fds[1]);
            OwnedFd& child = i == 0 ? read_end : write_end;
            if (child.get() < 3) {
                child = dup_high(child.get(), what + ": dup");
            }
            FileActions::check(::posix_spawn_file_actions_adddup2(actions.get(), child.get(), i));
            child_side[i] = std::move(child);
            pipes.parent[i] = std::move(i == 0 ? write_end : read_end);
            break;
        }
        case Stdio::Kind::devnull:
            FileActions::check(::posix_spawn_file_actions_addopen(
                    actions.get(), i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0));
            break;
        case Stdio::Kind::stdout_:
            if (i != 2) {
                throw ValueError("STDOUT can only be used for stderr");
            }
            FileActions::check(::posix_spawn_file_actions_adddup2(actions.get(), 1, 2));
            break;
        case Stdio::Kind::fd: {
            int src = s.fd;
            if (src < 0) {
                throw ValueError(fmt::format("invalid file descriptor {}", src));
            }
            if (src < 3 && src != i) {
                child_side[i] = dup_high(src, what + ": dup");
                src = child_side[i].get();
            }
            // adddup2(fd, fd) clears FD_CLOEXEC in the child (POSIX 2017, glibc 2.29).
            FileActions::check(::posix_spawn_file_actions_adddup2(actions.get(), src, i));
            break;
        }
        }
    }

    // Python's close_fds=True: nothing but 0, 1 and 2 reaches the child, even descriptors the
    // program opened without O_CLOEXEC (close_range(2) in the child, after the dup2s above).
    FileActions::check(::posix_spawn_file_actions_addclosefrom_np(actions.get(), 3));

    // The child starts with an empty mask (the loop's thread blocks the signals it reads with
    // a signalfd) and the default disposition for SIGPIPE and SIGXFSZ (ignored here, as Python
    // does; restore_signals=True) and for every signal coring handles.
    SpawnAttr attr;
    sigset_t mask;
    sigemptyset(&mask);
    FileActions::check(::posix_spawnattr_setsigmask(attr.get(), &mask));
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGXFSZ);
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig != SIGKILL && sig != SIGSTOP && detail::signal_has_handler(sig)) {
            sigaddset(&defaults, sig);
        }
    }
    FileActions::check(::posix_spawnattr_setsigdefault(attr.get(), &defaults));
    FileActions::check(::posix_spawnattr_setflags(
            attr.get(), static_cast<short>(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)));

    // glibc's posix_spawn clones with CLONE_VFORK and reports a failed exec through its
    // return value, so ENOENT and EACCES are thrown here, naming the program.
    pid_t pid = 0;
    char** env = options.env ? envp.data() : environ;
    bool search = program.find('/') == std::string::npos;
    int err = search ? ::posix_spawnp(
                               &pid, program.c_str(), actions.get(), attr.get(), argv.data(), env)
                     : ::posix_spawn(
                               &pid, program.c_str(), actions.get(), attr.get(), argv.data(), env);
    if (err != 0) {
        throw_errno(err, what);
    }
    for (OwnedFd& fd : child_side) {
        fd.reset();
    }

    // Our own child, not reaped by anyone (coring never calls waitpid(-1)): its pid cannot be
    // recycled before the pidfd refers to it.
    int pidfd = pidfd_open(pid);
    if (pidfd < 0) {
        int open_err = errno;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        throw_errno(open_err, what + ": pidfd_open");
    }
    auto* state = new ProcessState(loop, pid, pidfd);
    Process proc = ProcessAccess::make(state);
    if (pipes.parent[0].get() >= 0) {
        proc.stdin_ = connect_write_pipe(pipes.parent[0].release());
    }
    if (pipes.parent[1].get() >= 0) {
        proc.stdout_ = connect_read_pipe(pipes.parent[1].release(), options.limit);
    }
    if (pipes.parent[2].get() >= 0) {
        proc.stderr_ = connect_read_pipe(pipes.parent[2].release(), options.limit);
    }
    return proc;
}

bool ignorable_stdin_error(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const BrokenPipeError&) {
        return true;
    } catch (const ConnectionResetError&) {
        return true;
    } catch (...) {
        return false;
    }
}

// base_subprocess / subprocess.Process._feed_stdin: write, drain, close; a child that went away
// is not an error.
Task<std::optional<std::string>> feed_stdin(StreamWriter writer, std::string input) {
    std::exception_ptr error;
    try {
        if (!input.empty()) {
            writer.write(input);
            std::string().swap(input);
        }
        co_await writer.drain();
    } catch (const std::exception&) {
        error = std::current_exception();
    }
    if (error && !ignorable_stdin_error(error)) {
        writer.close();
        std::rethrow_exception(error);
    }
    writer.close();
    co_return std::nullopt;
}

Task<std::optional<std::string>> read_all(StreamReader reader) {
    co_return co_await reader.read();
}

Task<std::optional<std::string>> nothing() {
    co_return std::nullopt;
}

} // namespace

} // namespace detail

void Process::terminate() {
    send_signal(SIGTERM);
}

void Process::kill() {
    send_signal(SIGKILL);
}

Task<std::pair<std::optional<std::string>, std::optional<std::string>>>
Process::communicate(std::string input) {
    if (!input.empty() && !stdin_) {
        throw ValueError("communicate: input given but stdin is not a PIPE");
    }
    auto in = stdin_ ? detail::feed_stdin(*stdin_, std::move(input)) : detail::nothing();
    auto out = stdout_ ? detail::read_all(*stdout_) : detail::nothing();
    auto err = stderr_ ? detail::read_all(*stderr_) : detail::nothing();
    auto [ignored, out_data, err_data] =
            co_await gather(std::move(in), std::move(out), std::move(err));
    static_cast<void>(ignored);
    co_await wait();
    co_return std::pair{std::move(out_data), std::move(err_data)};
}

Task<Process> detail::exec_process(std::string program,
                                   std::vector<std::string> args,
                                   SubprocessOptions options) {
    co_return detail::spawn(program, args, options);
}

Task<Process> create_subprocess_shell(std::string cmd, SubprocessOptions options) {
    std::vector<std::string> args{"-c", std::move(cmd)};
    co_return detail::spawn("/bin/sh", args, options);
}

} // namespace coring
