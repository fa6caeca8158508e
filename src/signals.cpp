// SPDX-License-Identifier: MIT
// Signal handlers through a signalfd read kept in flight in the loop's io_uring
// (unix_events.add_signal_handler / remove_signal_handler), and Runner's SIGINT handling
// (runners.Runner._on_sigint).
#include <coring/run.hpp>
#include <coring/signals.hpp>

#include <coring/detail/owned_op.hpp>
#include <coring/detail/sys.hpp>

#include <fmt/format.h>
#include <liburing.h>

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "diagnostics.hpp"

namespace coring {

namespace detail {

namespace {

class LoopSignals;

// Process-wide bookkeeping of one signal number. Guarded by registry_mutex.
struct SignalSlot {
    LoopSignals* owner = nullptr; // the loop handling it, or null

    struct sigaction previous {}; // the disposition before coring installed its own

    pid_t blocker = 0;        // the thread that blocked it for the loop
    bool was_blocked = false; // whether that thread blocked it already before
};

std::mutex registry_mutex;
std::array<SignalSlot, NSIG> slots;    // guarded by registry_mutex
std::vector<LoopSignals*> loop_states; // guarded by registry_mutex: one per loop with handlers

// The thread each handled signal is redirected to when it lands on a thread that does not
// block it. Read inside the signal handler, so lock-free atomics only.
std::array<std::atomic<pid_t>, NSIG> forward_tid{};
static_assert(std::atomic<pid_t>::is_always_lock_free, "read inside a signal handler");

pid_t current_tid() noexcept {
    return static_cast<pid_t>(::syscall(SYS_gettid));
}

// The disposition coring installs. The signal is blocked in the loop's thread, where the
// signalfd reads it; an instance the kernel delivers to another thread (which does not block
// it) lands here and is sent on to the loop's thread, where it stays pending for the signalfd.
// Async-signal-safe: a lock-free atomic load and plain system calls; errno is preserved.
void forward_signal(int sig) {
    int saved = errno;
    // relaxed: the tid is a plain value; a stale one only sends the signal to the thread that
    // just stopped handling it, which then treats it with the restored disposition.
    pid_t tid = forward_tid[static_cast<std::size_t>(sig)].load(std::memory_order_relaxed);
    if (tid != 0 && tid != current_tid()) {
        ::syscall(SYS_tgkill, ::getpid(), tid, sig);
    }
    errno = saved;
}

std::string signal_name(int sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev != nullptr ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", sig);
}

// asyncio's _check_signal: a number the platform knows (glibc's sigfillset leaves out the two
// real-time signals it reserves for threads, as Python's valid_signals() does).
void check_signal(int sig) {
    sigset_t all;
    sigfillset(&all);
    if (sig <= 0 || sig >= NSIG || sigismember(&all, sig) != 1) {
        throw ValueError(fmt::format("invalid signal number {}", sig));
    }
}

[[noreturn]] void throw_errno(int err, const std::string& what) {
    throw std::system_error(err, std::system_category(), what);
}

// The signals of one loop: its signalfd, its handlers, and the read kept in flight.
// Loop thread only, except where the registry's mutex says otherwise.
class LoopSignals final : public LoopResource {
public:
    explicit LoopSignals(EventLoop& loop) : loop_(&loop) { sigemptyset(&mask_); }

    LoopSignals(const LoopSignals&) = delete;
    LoopSignals& operator=(const LoopSignals&) = delete;

    ~LoopSignals() {
        if (fd_ >= 0) {
            sys.close(fd_);
        }
    }

    EventLoop& loop() const noexcept { return *loop_; }

    bool has_handler(int sig) const noexcept { return handlers_[index(sig)] != nullptr; }

    const SignalCallback* handler(int sig) const noexcept { return handlers_[index(sig)].get(); }

    // Adds sig to the signalfd's mask, creating the signalfd on first use.
    // Throws: std::system_error from signalfd.
    void watch(int sig) {
        sigset_t mask = mask_;
        sigaddset(&mask, sig);
        int fd = sys.signalfd(fd_, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0) {
            throw_errno(errno, fmt::format("signalfd for {}", signal_name(sig)));
        }
        fd_ = fd;
        mask_ = mask;
    }

    // Takes sig out of the signalfd's mask. Never fails on a valid signalfd.
    void unwatch(int sig) noexcept {
        sigdelset(&mask_, sig);
        if (fd_ >= 0) {
            sys.signalfd(fd_, &mask_, SFD_NONBLOCK | SFD_CLOEXEC);
        }
    }

    void set_handler(int sig, std::shared_ptr<SignalCallback> cb) noexcept {
        handlers_[index(sig)] = std::move(cb); // nullptr removes
        count_ = 0;
        for (const auto& h : handlers_) {
            count_ += h != nullptr ? 1 : 0;
        }
    }

    bool empty() const noexcept { return count_ == 0; }

    // Keeps one read of the signalfd in flight while there are handlers.
    void arm() {
        if (read_.in_flight() || empty() || loop_->is_closed()) {
            return;
        }
        Ring& ring = detail::LoopAccess::ring(*loop_);
        io_uring_sqe* sqe = ring.get_sqe();
        if (use_poll_) {
            // The kernel returned EAGAIN for a read of the non-blocking signalfd instead of
            // waiting for it (older kernels do for O_NONBLOCK files): wait for readiness first.
            io_uring_prep_poll_add(sqe, fd_, POLLIN);
        } else {
            io_uring_prep_read(sqe, fd_, buffer_.data(), sizeof buffer_, 0);
        }
        read_.submit(ring, sqe);
        detail::LoopAccess::count_background_io(*loop_, +1);
    }

    // Cancels the read in flight (the last handler went away); it completes later (without an
    // SQE for the cancel: when the next signal comes), and is not re-armed.
    void disarm() noexcept { read_.cancel(detail::LoopAccess::ring(*loop_)); }

    // The loop closed: its ring was drained already, so nothing of ours is in the kernel.
    void on_loop_close() noexcept override;

private:
    static std::size_t index(int sig) noexcept { return static_cast<std::size_t>(sig); }

    void on_complete(int res, unsigned) noexcept {
        bool polled = use_poll_; // what arm() submitted: a poll, or a read
        detail::LoopAccess::count_background_io(*loop_, -1);
        if (!polled && res > 0) {
            dispatch(static_cast<std::size_t>(res) / sizeof(signalfd_siginfo));
        } else if (!polled && res == -EAGAIN) {
            use_poll_ = true;
        } else if (polled && res >= 0) {
            use_poll_ = false; // readable now: read it
        } else if (res < 0 && res != -ECANCELED && res != -EINTR) {
            loop_->call_exception_handler(
                    {fmt::format("coring: reading the signalfd failed: {}", std::strerror(-res)),
                     {},
                     {},
                     {}});
            return; // do not spin on a broken descriptor
        }
        try {
            arm();
        } catch (...) {
            loop_->call_exception_handler({"coring: could not re-arm the signalfd read",
                                           std::current_exception(),
                                           {},
                                           {}});
        }
    }

    // Schedules the callback of each signal read, in the order the kernel gave them. A signal
    // whose handler was removed meanwhile is dropped (asyncio's _handle_signal).
    void dispatch(std::size_t n) noexcept {
        for (std::size_t i = 0; i < n; ++i) {
            int sig = static_cast<int>(buffer_[i].ssi_signo);
            if (sig <= 0 || sig >= NSIG || handlers_[index(sig)] == nullptr) {
                continue;
            }
            try {
                loop_->call_soon([cb = handlers_[index(sig)], sig, loop = loop_] {
                    try {
                        cb->invoke();
                    } catch (...) {
                        loop->call_exception_handler(
                                {fmt::format("Exception in signal handler for {} ({})",
                                             signal_name(sig),
                                             demangle(cb->type())),
                                 std::current_exception(),
                                 {},
                                 {}});
                    }
                });
            } catch (...) {
                loop_->call_exception_handler({"coring: could not schedule a signal handler",
                                               std::current_exception(),
                                               {},
                                               {}});
            }
        }
    }

    EventLoop* loop_;
    int fd_ = -1;
    sigset_t mask_;
    std::array<std::shared_ptr<SignalCallback>, NSIG> handlers_{};
    std::size_t count_ = 0;
    std::array<signalfd_siginfo, 8> buffer_{}; // the kernel writes here while a read is in flight
    OwnedOp<LoopSignals, &LoopSignals::on_complete> read_{this}; // reads (or polls) fd_
    bool use_poll_ = false; // wait for readiness before reading (set by an EAGAIN)
};

LoopSignals* find_state(EventLoop& loop) noexcept {
    for (LoopSignals* s : loop_states) {
        if (&s->loop() == &loop) {
            return s;
        }
    }
    return nullptr;
}

// Gives sig back: previous disposition, pending instances discarded, this thread's mask as it
// was. Called with registry_mutex held, after the loop stopped watching sig.
void release_signal(int sig) noexcept {
    SignalSlot& slot = slots[static_cast<std::size_t>(sig)];
    // relaxed: see forward_signal.
    forward_tid[static_cast<std::size_t>(sig)].store(0, std::memory_order_relaxed);
    sys.sigaction(sig, &slot.previous, nullptr);
    if (slot.blocker == current_tid()) {
        // Instances that arrived while the handler was installed but were not read are dropped,
        // as asyncio drops a signal whose handler is gone; unblocking would deliver them with
        // the restored disposition (for SIGTERM: death).
        sigset_t only;
        sigemptyset(&only);
        sigaddset(&only, sig);
        timespec zero{};
        while (::sigtimedwait(&only, nullptr, &zero) == sig) {
        }
        if (!slot.was_blocked) {
            sys.pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
        }
    }
    slot = SignalSlot{};
}

void LoopSignals::on_loop_close() noexcept {
    if (read_.forget()) {
        // EventLoop::close() drained the ring before closing resources: the read is over.
        detail::LoopAccess::count_background_io(*loop_, -1);
    }
    {
        std::lock_guard lock(registry_mutex);
        for (int sig = 1; sig < NSIG; ++sig) {
            if (handlers_[index(sig)] != nullptr) {
                handlers_[index(sig)] = nullptr;
                release_signal(sig);
            }
        }
        std::erase(loop_states, this);
    }
    delete this;
}

} // namespace

void add_signal_handler(EventLoop& loop, int sig, std::shared_ptr<SignalCallback> callback) {
    check_signal(sig);
    if (sig == SIGKILL || sig == SIGSTOP) {
        throw RuntimeError(fmt::format("sig {} cannot be caught", sig));
    }
    if (loop.is_closed()) {
        throw RuntimeError("Event loop is closed");
    }
    std::lock_guard lock(registry_mutex);
    SignalSlot& slot = slots[static_cast<std::size_t>(sig)];
    if (slot.owner != nullptr && &slot.owner->loop() != &loop) {
        throw RuntimeError(
                fmt::format("{} already has a handler on another event loop (one loop per signal)",
                            signal_name(sig)));
    }
    LoopSignals* state = find_state(loop);
    bool new_state = state == nullptr;
    if (new_state) {
        loop_states.reserve(loop_states.size() + 1);
        state = new LoopSignals(loop);
    }
    if (slot.owner == nullptr) {
        // Take the signal: block it here (the loop's thread), install the redirecting
        // disposition, then let the signalfd watch it. An instance arriving in between stays
        // pending and is read once the signalfd watches it.
        sigset_t only;
        sigemptyset(&only);
        sigaddset(&only, sig);
        sigset_t old;
        if (int err = sys.pthread_sigmask(SIG_BLOCK, &only, &old); err != 0) {
            if (new_state) {
                delete state;
            }
            throw_errno(err, fmt::format("pthread_sigmask blocking {}", signal_name(sig)));
        }
        bool was_blocked = sigismember(&old, sig) == 1;

        struct sigaction action {};

        action.sa_handler = &forward_signal;
        sigfillset(&action.sa_mask);
        action.sa_flags = SA_RESTART; // threads it lands on see no EINTR (siginterrupt False)

        struct sigaction previous {};

        auto undo_mask = [&] {
            if (!was_blocked) {
                sys.pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
            }
            if (new_state) {
                delete state;
            }
        };
        if (sys.sigaction(sig, &action, &previous) != 0) {
            int err = errno;
            undo_mask();
            if (err == EINVAL) {
                throw RuntimeError(fmt::format("sig {} cannot be caught", sig));
            }
            throw_errno(err, fmt::format("sigaction for {}", signal_name(sig)));
        }
        try {
            state->watch(sig);
        } catch (...) {
            sys.sigaction(sig, &previous, nullptr);
            undo_mask();
            throw;
        }
        slot.owner = state;
        slot.previous = previous;
        slot.blocker = current_tid();
        slot.was_blocked = was_blocked;
        // relaxed: see forward_signal.
        forward_tid[static_cast<std::size_t>(sig)].store(slot.blocker, std::memory_order_relaxed);
        if (new_state) {
            loop_states.push_back(state); // reserved above: cannot throw
            detail::LoopAccess::register_resource(loop, *state);
        }
    }
    state->set_handler(sig, std::move(callback));
    state->arm();
}

bool remove_signal_handler_if(EventLoop& loop, int sig, const SignalCallback* callback) {
    check_signal(sig);
    std::lock_guard lock(registry_mutex);
    LoopSignals* state = find_state(loop);
    if (state == nullptr || !state->has_handler(sig)) {
        return false;
    }
    if (callback != nullptr && state->handler(sig) != callback) {
        return false;
    }
    state->set_handler(sig, nullptr);
    state->unwatch(sig);
    release_signal(sig);
    if (state->empty()) {
        state->disarm();
    }
    return true;
}

bool signal_has_handler(int sig) {
    std::lock_guard lock(registry_mutex);
    return sig > 0 && sig < NSIG && slots[static_cast<std::size_t>(sig)].owner != nullptr;
}

// ---- Runner's SIGINT handling ----

struct SigintScope::State {
    EventLoop* loop;
    TaskBase* main_task;
    int interrupts = 0;
    bool force = false; // raise KeyboardInterrupt now, without waiting for the main task
    bool active = true; // false once run() returned: a late callback does nothing
};

SigintScope::SigintScope(EventLoop& loop, TaskBase& main_task) {
    // asyncio.Runner.run: only in the main thread, and only when SIGINT still has its default
    // handler (the user installed none).
    if (current_tid() != ::getpid() || signal_has_handler(SIGINT)) {
        return;
    }

    struct sigaction current {};

    if (sys.sigaction(SIGINT, nullptr, &current) != 0 || current.sa_handler != SIG_DFL ||
        (current.sa_flags & SA_SIGINFO) != 0) {
        return;
    }
    auto state = std::make_shared<State>(State{&loop, &main_task});
    std::shared_ptr<SignalCallback> callback =
            std::make_shared<SignalCallbackImpl<std::function<void()>>>([state] {
                if (!state->active) {
                    return;
                }
                ++state->interrupts;
                if (state->interrupts == 1 && !state->main_task->done()) {
                    // The first Ctrl-C cancels the main task; run() raises KeyboardInterrupt when
                    // it ends cancelled (Runner._on_sigint).
                    state->main_task->cancel({});
                    return;
                }
                // A second one: stop waiting for the main task (its clean-up may hang) and raise
                // now.
                state->force = true;
                state->loop->stop();
            });
    try {
        detail::add_signal_handler(loop, SIGINT, callback);
    } catch (...) {
        return; // as asyncio when signal.signal refuses: run without Ctrl-C handling
    }
    state_ = std::move(state);
    callback_ = std::move(callback);
}

SigintScope::~SigintScope() {
    if (!state_) {
        return;
    }
    state_->active = false;
    try {
        remove_signal_handler_if(*state_->loop, SIGINT, callback_.get());
    } catch (...) {
        // SIGINT is valid: cannot throw
    }
}

int SigintScope::interrupts() const noexcept {
    return state_ ? state_->interrupts : 0;
}

bool SigintScope::forced() const noexcept {
    return state_ && state_->force;
}

} // namespace detail

bool remove_signal_handler(EventLoop& loop, int sig) {
    return detail::remove_signal_handler_if(loop, sig, nullptr);
}

} // namespace coring
