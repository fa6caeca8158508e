// SPDX-License-Identifier: MIT
// Ring setup (flag fallback chain, probe, error messages), submission and draining.
#include <coring/errors.hpp>
#include <coring/log.hpp>

#include <coring/detail/ring.hpp>
#include <coring/detail/sys.hpp>

#include <fmt/format.h>

#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "epoll.hpp"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORING_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CORING_ASAN 1
#endif
#ifdef CORING_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace coring::detail {

namespace {

// Flag sets to try, best first. The kernel answers EINVAL for flags it does not know, so each
// step drops the newest feature: DEFER_TASKRUN (6.1), SINGLE_ISSUER (6.0), COOP_TASKRUN and
// TASKRUN_FLAG (5.19), SUBMIT_ALL (5.18). R_DISABLED lets the thread that first runs the loop,
// rather than the one that built it, become the single issuer.
constexpr unsigned setup_chain[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
                IORING_SETUP_SUBMIT_ALL | IORING_SETUP_R_DISABLED,
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
                IORING_SETUP_SUBMIT_ALL | IORING_SETUP_R_DISABLED,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL,
        IORING_SETUP_SUBMIT_ALL,
        0,
};

[[noreturn]] void throw_setup_error(int err, unsigned entries) {
    const char* name = std::strerror(err);
    switch (err) {
    case EPERM:
        throw RuntimeError(fmt::format(
                "coring: io_uring_setup failed: {} (EPERM). io_uring is blocked for this process. "
                "In a container the seccomp profile usually forbids it (Docker and Podman do by "
                "default): run with a profile that allows io_uring_setup, io_uring_enter and "
                "io_uring_register, e.g. --security-opt seccomp=unconfined. On the host, check "
                "the sysctl kernel.io_uring_disabled: set it to 0, or to 1 and add the user to "
                "the group in kernel.io_uring_group.",
                name));
    case ENOSYS:
        throw RuntimeError(fmt::format(
                "coring: io_uring_setup failed: {} (ENOSYS). This kernel has no io_uring: it is "
                "older than Linux 5.1 or was built without CONFIG_IO_URING. coring needs Linux "
                "5.11 or newer (6.1 or newer for its fastest mode): upgrade the kernel or enable "
                "CONFIG_IO_URING.",
                name));
    case ENOMEM:
        throw RuntimeError(fmt::format(
                "coring: io_uring_setup failed: {} (ENOMEM) for a ring of {} entries. Before "
                "Linux 5.12 ring memory counts against the locked-memory limit (RLIMIT_MEMLOCK, "
                "see `ulimit -l`): raise it (`ulimit -l unlimited`, memlock in "
                "/etc/security/limits.conf, or LimitMEMLOCK= in a systemd unit), or give the loop "
                "fewer entries (EventLoopOptions::ring_entries).",
                name,
                entries));
    case EINVAL:
        // Reached only after every flag set of setup_chain was refused, down to no flags at
        // all: what is left is the size, or a kernel that knows none of these setups.
        throw RuntimeError(fmt::format(
                "coring: io_uring_setup failed: {} (EINVAL) for a ring of {} entries, with every "
                "combination of setup flags coring tries, down to none. The kernel refuses the "
                "parameters: the ring size is out of range (more than IORING_MAX_ENTRIES, 32768 "
                "on current kernels; zero; or too large for the completion queue), or the setup "
                "flags or sizes are unsupported by this kernel. Give the loop fewer entries "
                "(EventLoopOptions::ring_entries, 1 to 32768; the kernel rounds it up to a power "
                "of two) or upgrade the kernel.",
                name,
                entries));
    case EMFILE:
    case ENFILE:
        throw RuntimeError(fmt::format(
                "coring: io_uring_setup failed: {} ({}). The process has run out of file "
                "descriptors: close some or raise the limit (`ulimit -n`).",
                name,
                err == EMFILE ? "EMFILE" : "ENFILE"));
    default:
        throw RuntimeError(fmt::format(
                "coring: io_uring_setup failed: {} (errno {}) for a ring of {} entries.",
                name,
                err,
                entries));
    }
}

} // namespace

namespace {

std::optional<Backend> backend_from_env() {
    const char* value = std::getenv("CORING_BACKEND");
    if (value == nullptr || *value == '\0') {
        return std::nullopt;
    }
    std::string_view v(value);
    if (v == "uring" || v == "io_uring") {
        return Backend::uring;
    }
    if (v == "epoll") {
        return Backend::epoll;
    }
    throw RuntimeError(fmt::format(
            "coring: CORING_BACKEND is '{}'; it must be 'uring' or 'epoll' (or unset: io_uring, "
            "falling back to epoll where io_uring is refused)",
            v));
}

const char* refusal_reason(int err) noexcept {
    switch (err) {
    case EPERM:
    case EACCES:
        return "seccomp or kernel.io_uring_disabled";
    case ENOSYS:
        return "this kernel has no io_uring";
    default:
        return "the kernel refuses every io_uring setup, even without flags";
    }
}

std::atomic<bool> fallback_warned{false};

} // namespace

void reset_fallback_warning() noexcept {
    fallback_warned.store(false);
}

Ring::Ring(const RingOptions& options) {
    std::optional<Backend> chosen = options.backend ? options.backend : backend_from_env();
    if (chosen == Backend::epoll) {
        start_epoll(options.entries);
        return;
    }
    setup_uring(options, chosen.has_value());
}

void Ring::start_epoll(unsigned entries) {
    epoll_ = std::make_unique<EpollEngine>(ring_, entries);
    enabled_ = true;
    for (unsigned op = 0; op < 256; ++op) {
        if (EpollEngine::executes(op)) {
            ops_[op / 64] |= std::uint64_t{1} << (op % 64);
        }
    }
}

void Ring::setup_uring(const RingOptions& options, bool forced) {
    int ret = -EINVAL;
    // ENOMEM (ring memory counted against RLIMIT_MEMLOCK before 5.12) is retried with smaller
    // rings before anything else: it is no reason to leave io_uring.
    for (unsigned entries = options.entries;; entries /= 2) {
        // With attach_wq_fd, the chain is tried with IORING_SETUP_ATTACH_WQ first, then without
        // (a stale fd, or a ring the kernel cannot share with, costs only the sharing).
        for (bool attach : {options.attach_wq_fd >= 0, false}) {
            for (unsigned flags : setup_chain) {
                io_uring_params params{};
                params.flags = flags;
                if (attach) {
                    params.flags |= IORING_SETUP_ATTACH_WQ;
                    params.wq_fd = static_cast<unsigned>(options.attach_wq_fd);
                }
                ret = sys.io_uring_queue_init_params(entries, &ring_, &params);
                if (ret == 0) {
                    setup_flags_ = params.flags;
                    features_ = params.features;
                    break;
                }
                if (ret != -EINVAL && !(attach && ret == -EBADF)) {
                    break;
                }
            }
            if (ret == 0 || !attach) {
                break;
            }
        }
        if (ret != -ENOMEM || entries <= 16) {
            break;
        }
    }
    if (ret != 0) {
        int err = -ret;
        bool refused = err == EPERM || err == EACCES || err == ENOSYS ||
                       (err == EINVAL && options.entries >= 1 && options.entries <= 32768);
        if (!forced && refused) {
            if (!fallback_warned.exchange(true)) {
                log(LogLevel::warning,
                    fmt::format("coring: io_uring_setup: {} ({}); using the epoll backend",
                                std::strerror(err),
                                refusal_reason(err)));
            }
            ring_ = io_uring{};
            start_epoll(options.entries);
            return;
        }
        throw_setup_error(err, options.entries);
    }
    // The inline SQ and CQ code (ring.hpp) assumes these are off.
    CORING_ASSERT(
            (setup_flags_ & (IORING_SETUP_SQPOLL | IORING_SETUP_SQE128 | IORING_SETUP_CQE32)) == 0,
            "unexpected io_uring setup flags");
    enabled_ = !(setup_flags_ & IORING_SETUP_R_DISABLED);
    std::unique_ptr<io_uring_probe, void (*)(io_uring_probe*)> probe(
            sys.io_uring_get_probe_ring(&ring_), &io_uring_free_probe);
    if (probe) {
        for (unsigned op = 0; op <= probe->last_op && op < 256; ++op) {
            if (io_uring_opcode_supported(probe.get(), static_cast<int>(op))) {
                ops_[op / 64] |= std::uint64_t{1} << (op % 64);
            }
        }
    }
}

Ring::~Ring() {
    if (!cancel_all_and_drain() && in_flight_ > 0) {
        log(LogLevel::error,
            fmt::format("coring: {} io_uring operations were still in flight when the ring was "
                        "destroyed",
                        in_flight_));
    }
    if (!epoll_) {
        io_uring_queue_exit(&ring_);
    }
    if (poll_fd_ >= 0) {
        sys.close(poll_fd_);
    }
}

int Ring::poll_fd() {
    if (epoll_) {
        // The epoll set itself: readable when a watched fd or the pool's eventfd has an event.
        return epoll_->fd();
    }
    if (poll_fd_ >= 0) {
        return poll_fd_;
    }
    enable();
    int fd = sys.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        throw RuntimeError(fmt::format("coring: eventfd for poll_fd(): {}", std::strerror(errno)));
    }
    int ret = io_uring_register_eventfd(&ring_, fd);
    if (ret < 0) {
        sys.close(fd);
        throw RuntimeError(
                fmt::format("coring: io_uring_register_eventfd: {}", std::strerror(-ret)));
    }
    poll_fd_ = fd;
    return fd;
}

void Ring::clear_poll_fd() noexcept {
    if (poll_fd_ >= 0 && !epoll_) {
        std::uint64_t n = 0;
        [[maybe_unused]] ssize_t r = ::read(poll_fd_, &n, sizeof n);
    }
}

void Ring::enable() {
    if (enabled_) {
        return;
    }
    // liburing 2.3 declares io_uring_enable_rings but does not export it: call the syscall.
    long ret = ::syscall(
            __NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
    if (ret < 0) {
        throw RuntimeError(
                fmt::format("coring: enabling the io_uring failed: {}", std::strerror(errno)));
    }
    enabled_ = true;
}

io_uring_sqe* Ring::get_sqe_slow() {
    if (epoll_) {
        check_sqes_before_submit();
        epoll_->submit(); // executing the queue empties it
        ++enters_;
        return io_uring_get_sqe(&ring_);
    }
    for (;;) {
        // The SQ is full: hand its entries to the kernel and take a fresh slot.
        check_sqes_before_submit();
        int ret = sys.io_uring_submit(&ring_);
        ++enters_;
        if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) {
            return sqe;
        }
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
            throw RuntimeError(
                    fmt::format("coring: io_uring_submit failed: {}", std::strerror(-ret)));
        }
    }
}

namespace {

bool benign_enter_error(int ret) noexcept {
    return ret >= 0 || ret == -ETIME || ret == -EINTR || ret == -EBUSY || ret == -EAGAIN;
}

[[noreturn]] void throw_enter_error(int ret) {
    if (ret == -EEXIST) {
        throw RuntimeError("coring: io_uring_enter failed (EEXIST): an event loop must always run "
                           "on the thread that first ran it");
    }
    throw RuntimeError(fmt::format("coring: io_uring_enter failed: {}", std::strerror(-ret)));
}

} // namespace

void Ring::submit_and_wait(std::chrono::nanoseconds timeout) {
    check_sqes_before_submit();
    if (epoll_) {
        epoll_->submit();
        if (!epoll_->has_completions()) {
            epoll_->poll(timeout.count() < 0 ? -1 : timeout.count());
        }
        ++enters_;
        return;
    }
    int ret;
    io_uring_cqe* cqe = nullptr;
    if (timeout.count() < 0) {
        ret = sys.io_uring_submit_and_wait(&ring_, 1);
    } else {
        __kernel_timespec ts{};
        ts.tv_sec = static_cast<long long>(timeout.count() / 1'000'000'000);
        ts.tv_nsec = static_cast<long long>(timeout.count() % 1'000'000'000);
        ret = sys.io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    ++enters_;
    if (!benign_enter_error(ret)) {
        throw_enter_error(ret);
    }
}

void Ring::enter_nowait() {
    check_sqes_before_submit();
    if (epoll_) {
        epoll_->submit();
        if (epoll_->pending() != 0) {
            epoll_->poll(0);
        }
        ++enters_;
        return;
    }
    int ret = sys.io_uring_submit_and_get_events(&ring_);
    ++enters_;
    if (!benign_enter_error(ret)) {
        throw_enter_error(ret);
    }
}

bool Ring::epoll_cancel_all_and_drain() noexcept {
    try {
        check_sqes_before_submit();
        epoll_->submit(); // queued closes run, as io_uring would run them
    } catch (...) {
    }
    epoll_->cancel_all();
    // Pool jobs already running finish on their own: wait for them (they write into frames).
    int idle_rounds = 0;
    for (;;) {
        reap([](Completion*, int, unsigned) noexcept {});
        if (in_flight_ == 0) {
            return true;
        }
        if (epoll_->pending() == 0 && !epoll_->has_completions()) {
            in_flight_ = 0; // nothing is left that could complete
            return true;
        }
        bool running = epoll_->wait_pool(100);
        idle_rounds = running ? idle_rounds + 1 : 0;
        if (idle_rounds == 50) {
            log(LogLevel::error,
                fmt::format("coring: {} operations did not finish within 5 s of being cancelled "
                            "at close",
                            in_flight_));
            return false;
        }
    }
}

bool Ring::cancel_all_and_drain() noexcept {
    if (epoll_) {
        return epoll_cancel_all_and_drain();
    }
    if (in_flight_ == 0) {
        // Untracked SQEs may still be queued (a socket's fire-and-forget close from a
        // destructor): hand them to the kernel before the ring goes.
        if (enabled_ && io_uring_sq_ready(&ring_) > 0) {
            check_sqes_before_submit();
            sys.io_uring_submit(&ring_);
            ++enters_;
        }
        return true;
    }
    if (!enabled_) {
        // Nothing reached the kernel: the queued SQEs die with the ring.
        in_flight_ = 0;
        return true;
    }
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
        sys.io_uring_submit(&ring_);
        sqe = io_uring_get_sqe(&ring_);
    }
    if (sqe != nullptr) {
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, ignored_user_data);
    }
    // Wait for the kernel to hand every operation back: their buffers live in coroutine frames
    // that are about to be destroyed.
    int idle_rounds = 0;
    while (in_flight_ > 0) {
        __kernel_timespec ts{};
        ts.tv_nsec = 100'000'000;
        io_uring_cqe* cqe = nullptr;
        int ret = sys.io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
        ++enters_;
        if (!benign_enter_error(ret)) {
            return false;
        }
        unsigned n = reap([](Completion*, int, unsigned) noexcept {});
        idle_rounds = n == 0 ? idle_rounds + 1 : 0;
        if (idle_rounds == 50) {
            log(LogLevel::error,
                fmt::format("coring: {} io_uring operations did not finish within 5 s of being "
                            "cancelled at close",
                            in_flight_));
            return false;
        }
    }
    return true;
}

void Ring::check_sqes_before_submit() noexcept {
#ifdef CORING_ASAN
    // ASan cannot see the kernel write into buffers, so check just before the kernel gets them
    // that no buffer referenced by a queued SQE has been freed (liburing's sanitizer check).
    auto check = [](const void* p, std::size_t n, const char* what) {
        if (p != nullptr && n != 0 &&
            __asan_region_is_poisoned(const_cast<void*>(p), n) != nullptr) {
            assertion_failed(__FILE__, __LINE__, what, "SQE references a freed buffer");
        }
    };
    for (unsigned i = ring_.sq.sqe_head; i != ring_.sq.sqe_tail; ++i) {
        const io_uring_sqe& sqe = ring_.sq.sqes[i & ring_.sq.ring_mask];
        const void* addr = reinterpret_cast<const void*>(sqe.addr);
        switch (sqe.opcode) {
        case IORING_OP_READ:
        case IORING_OP_WRITE:
        case IORING_OP_SEND:
        case IORING_OP_RECV:
            check(addr, sqe.len, "read/write/send/recv buffer");
            break;
        case IORING_OP_READV:
        case IORING_OP_WRITEV: {
            check(addr, sqe.len * sizeof(iovec), "iovec array");
            const auto* iov = static_cast<const iovec*>(addr);
            for (unsigned k = 0; iov != nullptr && k < sqe.len; ++k) {
                check(iov[k].iov_base, iov[k].iov_len, "iovec buffer");
            }
            break;
        }
        case IORING_OP_SENDMSG:
        case IORING_OP_RECVMSG:
            check(addr, sizeof(msghdr), "msghdr");
            break;
        default:
            break;
        }
    }
#endif
}

} // namespace coring::detail
