// SPDX-License-Identifier: MIT
// The epoll backend: io_uring SQEs executed with non-blocking system calls, epoll and a file pool.
#include "epoll.hpp"

#include <coring/errors.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <new>

namespace coring::detail {

namespace {

// Close generations of fds below this number: an epoll registration is trusted only while the
// generation it was made under is current. Higher fds are rare; their closes go unnoticed
// unless made through IORING_OP_CLOSE.
constexpr std::size_t tracked_fds = 1u << 16;
std::array<std::atomic<std::uint32_t>, tracked_fds> close_generation{};

std::uint32_t generation_of(int fd) noexcept {
    // relaxed: a close on another thread is unordered with this loop's use of the number anyway.
    return static_cast<std::size_t>(fd) < tracked_fds
                   ? close_generation[static_cast<std::size_t>(fd)].load(std::memory_order_relaxed)
                   : 0;
}

constexpr std::uint64_t pool_marker = ~std::uint64_t{0};
constexpr unsigned max_workers = 4;
constexpr std::size_t max_free_ops = 1024;

int errno_result(long r) noexcept {
    return r < 0 ? -errno : static_cast<int>(r);
}

unsigned round_up_pow2(unsigned n) noexcept {
    unsigned p = 1;
    while (p < n && p < (1u << 15)) {
        p <<= 1;
    }
    return p;
}

// The signal that interrupts a pool worker's blocking call when its job is cancelled (as the
// kernel's io-wq does for io_uring): a handler that does nothing, installed without SA_RESTART,
// and unblocked only in pool workers.
int pool_signal() noexcept {
    static const int sig = [] {
        int s = SIGRTMIN + 6;
        struct sigaction sa {};
        sa.sa_handler = [](int) {
        };
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;
        ::sigaction(s, &sa, nullptr);
        return s;
    }();
    return sig;
}

} // namespace

void note_fd_closed(int fd) noexcept {
    if (fd >= 0 && static_cast<std::size_t>(fd) < tracked_fds) {
        close_generation[static_cast<std::size_t>(fd)].fetch_add(1, std::memory_order_relaxed);
    }
}

void EpollEngine::OpList::push_back(Op* op) noexcept {
    op->next = nullptr;
    op->prev = tail;
    if (tail != nullptr) {
        tail->next = op;
    } else {
        head = op;
    }
    tail = op;
}

void EpollEngine::OpList::remove(Op* op) noexcept {
    (op->prev != nullptr ? op->prev->next : head) = op->next;
    (op->next != nullptr ? op->next->prev : tail) = op->prev;
    op->prev = op->next = nullptr;
}

bool EpollEngine::executes(unsigned opcode) noexcept {
    switch (opcode) {
    case IORING_OP_NOP:
    case IORING_OP_READ:
    case IORING_OP_WRITE:
    case IORING_OP_RECV:
    case IORING_OP_SEND:
    case IORING_OP_RECVMSG:
    case IORING_OP_SENDMSG:
    case IORING_OP_ACCEPT:
    case IORING_OP_CONNECT:
    case IORING_OP_SHUTDOWN:
    case IORING_OP_CLOSE:
    case IORING_OP_OPENAT:
    case IORING_OP_STATX:
    case IORING_OP_FSYNC:
    case IORING_OP_SPLICE:
    case IORING_OP_POLL_ADD:
    case IORING_OP_POLL_REMOVE:
    case IORING_OP_ASYNC_CANCEL:
    case IORING_OP_SOCKET:
    case IORING_OP_TIMEOUT:
    case IORING_OP_TIMEOUT_REMOVE:
        return true;
    default:
        return false;
    }
}

EpollEngine::EpollEngine(io_uring& ring, unsigned entries) : ring_(ring) {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) {
        throw RuntimeError(fmt::format("coring: epoll_create1 failed: {}", std::strerror(errno)));
    }
    pool_efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = pool_marker;
    if (pool_efd_ < 0 || ::epoll_ctl(epfd_, EPOLL_CTL_ADD, pool_efd_, &ev) != 0) {
        int err = errno;
        if (pool_efd_ >= 0) {
            ::close(pool_efd_);
        }
        ::close(epfd_);
        throw RuntimeError(
                fmt::format("coring: the epoll backend's eventfd: {}", std::strerror(err)));
    }
    unsigned n = round_up_pow2(entries == 0 ? 1 : entries);
    sqes_.resize(n);
    cqes_.resize(2 * n);
    // The fake ring: only what liburing's inline SQ/CQ helpers read (liburing 2.3's layout).
    ring = io_uring{};
    ring.sq.khead = &sq_head_;
    ring.sq.ktail = &sq_ktail_;
    ring.sq.kflags = &kflags_;
    ring.sq.kdropped = &kdropped_;
    ring.sq.sqes = sqes_.data();
    ring.sq.ring_mask = n - 1;
    ring.sq.ring_entries = n;
    ring.sq.kring_mask = &ring.sq.ring_mask;
    ring.sq.kring_entries = &ring.sq.ring_entries;
    ring.cq.khead = &cq_head_;
    ring.cq.ktail = &cq_tail_;
    ring.cq.kflags = &kdropped_;
    ring.cq.koverflow = &koverflow_;
    ring.cq.cqes = cqes_.data();
    ring.cq.ring_mask = 2 * n - 1;
    ring.cq.ring_entries = 2 * n;
    ring.cq.kring_mask = &ring.cq.ring_mask;
    ring.cq.kring_entries = &ring.cq.ring_entries;
    ring.flags = 0;
    ring.ring_fd = -1;
    ring.enter_ring_fd = -1;
}

EpollEngine::~EpollEngine() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : workers_) {
        t.join();
    }
    std::vector<Op*> all;
    for (auto& [ud, op] : by_user_data_) {
        all.push_back(op);
    }
    for (Op* op : all) {
        delete op;
    }
    for (Op* op : free_ops_) {
        delete op;
    }
    ::close(pool_efd_);
    ::close(epfd_);
}

EpollEngine::Op* EpollEngine::new_op(const Sqe& sqe) {
    Op* op;
    if (!free_ops_.empty()) {
        op = free_ops_.back();
        free_ops_.pop_back();
        op->~Op();
        new (op) Op;
    } else {
        op = new Op;
    }
    op->sqe = sqe;
    op->fd = sqe.fd;
    return op;
}

void EpollEngine::free_op(Op* op) noexcept {
    if (free_ops_.size() < max_free_ops) {
        try {
            free_ops_.push_back(op);
            return;
        } catch (...) {
        }
    }
    delete op;
}

bool EpollEngine::has_completions() const noexcept {
    return cq_tail_ != cq_head_ || !overflow_.empty();
}

void EpollEngine::post(std::uint64_t user_data, int res, unsigned flags) noexcept {
    io_uring_cqe cqe{};
    cqe.user_data = user_data;
    cqe.res = res;
    cqe.flags = flags;
    unsigned head = __atomic_load_n(&cq_head_, __ATOMIC_ACQUIRE);
    if (overflow_.empty() && cq_tail_ - head < cqes_.size()) {
        cqes_[cq_tail_ & (cqes_.size() - 1)] = cqe;
        __atomic_store_n(&cq_tail_, cq_tail_ + 1, __ATOMIC_RELEASE);
        return;
    }
    try {
        overflow_.push_back(cqe);
    } catch (...) {
        ++koverflow_; // lost, as the kernel's CQ overflow without memory would lose it
    }
}

void EpollEngine::flush_overflow() noexcept {
    while (!overflow_.empty() && cq_tail_ - cq_head_ < cqes_.size()) {
        cqes_[cq_tail_ & (cqes_.size() - 1)] = overflow_.front();
        overflow_.pop_front();
        __atomic_store_n(&cq_tail_, cq_tail_ + 1, __ATOMIC_RELEASE);
    }
}

void EpollEngine::refresh_flags() noexcept {
    // TASKRUN: operations wait, so submit_nowait should look at epoll (as a selector loop
    // selects with timeout 0 when callbacks are ready); CQ_OVERFLOW: CQEs wait for room.
    kflags_ = (pending_ != 0 ? IORING_SQ_TASKRUN : 0u) |
              (overflow_.empty() ? 0u : IORING_SQ_CQ_OVERFLOW);
}

void EpollEngine::submit() {
    while (sq_head_ != ring_.sq.sqe_tail) {
        const io_uring_sqe& raw = sqes_[sq_head_ & ring_.sq.ring_mask];
        Sqe sqe;
        sqe.off = raw.off;
        sqe.addr = raw.addr;
        sqe.user_data = raw.user_data;
        sqe.len = raw.len;
        sqe.op_flags = raw.rw_flags;
        sqe.fd = raw.fd;
        sqe.splice_fd_in = raw.splice_fd_in;
        sqe.ioprio = raw.ioprio;
        sqe.opcode = raw.opcode;
        sqe.flags = raw.flags;
        ++sq_head_;
        ring_.sq.sqe_head = sq_head_;
        try {
            execute(sqe);
        } catch (...) {
            post(sqe.user_data, -ENOMEM, 0);
        }
    }
    flush_overflow();
    refresh_flags();
}

void EpollEngine::execute(const Sqe& sqe) {
    bool skip_success = (sqe.flags & IOSQE_CQE_SKIP_SUCCESS) != 0;
    auto reply = [&](int res) {
        if (!(skip_success && res >= 0)) {
            post(sqe.user_data, res, 0);
        }
    };
    switch (sqe.opcode) {
    case IORING_OP_NOP:
        reply(0);
        return;
    case IORING_OP_RECV:
    case IORING_OP_RECVMSG:
    case IORING_OP_ACCEPT:
    case IORING_OP_READ:
        start(sqe, Wait::read);
        return;
    case IORING_OP_SEND:
    case IORING_OP_SENDMSG:
    case IORING_OP_CONNECT:
    case IORING_OP_WRITE:
        start(sqe, Wait::write);
        return;
    case IORING_OP_SPLICE: {
        // From a file: on the pool (a file has no readiness). Else (pipe to socket): non-blocking
        // here, waiting for the output to become writable.
        if (sqe.splice_fd_in < 0) {
            reply(-EBADF);
            return;
        }
        FdEntry& in = entry(sqe.splice_fd_in);
        if (kind_of(in, sqe.splice_fd_in) == Kind::file) {
            to_pool(new_op(sqe));
        } else {
            start(sqe, Wait::write);
        }
        return;
    }
    case IORING_OP_POLL_ADD:
        start_poll(sqe);
        return;
    case IORING_OP_POLL_REMOVE:
        reply(poll_remove(sqe));
        return;
    case IORING_OP_ASYNC_CANCEL: {
        if (sqe.op_flags & (IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY)) {
            std::size_t before = pending_;
            cancel_all();
            reply(static_cast<int>(before - pending_));
        } else {
            reply(cancel(sqe.addr));
        }
        return;
    }
    case IORING_OP_SHUTDOWN:
        reply(errno_result(::shutdown(sqe.fd, static_cast<int>(sqe.len))));
        return;
    case IORING_OP_CLOSE:
        do_close(sqe);
        return;
    case IORING_OP_SOCKET: {
        int fd = ::socket(sqe.fd, static_cast<int>(sqe.off), static_cast<int>(sqe.len));
        note_fd_closed(fd); // a new file under this number (nothing for -1)
        reply(errno_result(fd));
        return;
    }
    case IORING_OP_OPENAT:
    case IORING_OP_STATX:
    case IORING_OP_FSYNC:
        to_pool(new_op(sqe));
        return;
    case IORING_OP_TIMEOUT:
        start_timeout(sqe);
        return;
    case IORING_OP_TIMEOUT_REMOVE: {
        auto it = by_user_data_.find(sqe.addr);
        if (it == by_user_data_.end() || it->second->wait != Wait::timer) {
            reply(-ENOENT);
        } else {
            finish(*it->second, -ECANCELED);
            reply(0);
        }
        return;
    }
    default:
        // Not executed here (e.g. IORING_OP_MSG_RING): what a kernel without the opcode says.
        reply(-EINVAL);
        return;
    }
}

EpollEngine::FdEntry& EpollEngine::entry(int fd) {
    auto i = static_cast<std::size_t>(fd);
    if (i >= fds_.size()) {
        fds_.resize(std::max(i + 1, fds_.size() * 2));
    }
    FdEntry& e = fds_[i];
    std::uint32_t gen = generation_of(fd);
    if (e.gen != gen) {
        // The number was closed (and maybe reused) since this entry was made: forget it.
        reset(e, fd);
        e.gen = gen;
    }
    return e;
}

void EpollEngine::reset(FdEntry& e, int fd) noexcept {
    static_cast<void>(fd);
    for (OpList* list : {&e.readers, &e.writers, &e.pollers}) {
        while (Op* op = list->head) {
            finish(*op, -ECANCELED);
        }
    }
    e.registered = false;
    e.nonblock = false;
    e.kind = Kind::unknown;
}

EpollEngine::Kind EpollEngine::kind_of(FdEntry& e, int fd) noexcept {
    if (e.kind == Kind::unknown) {
        struct stat st {};

        if (::fstat(fd, &st) != 0) {
            return Kind::pollable; // the operation itself reports the error
        }
        if (S_ISSOCK(st.st_mode)) {
            e.kind = Kind::socket;
        } else if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode)) {
            e.kind = Kind::file;
        } else {
            e.kind = Kind::pollable;
        }
    }
    return e.kind;
}

bool EpollEngine::ensure_nonblock(FdEntry& e, int fd) noexcept {
    // As asyncio's setblocking(False) on the descriptors a selector loop uses.
    if (e.nonblock) {
        return true;
    }
    int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0) {
        return false;
    }
    if (!(fl & O_NONBLOCK) && ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        return false;
    }
    e.nonblock = true;
    return true;
}

void EpollEngine::start(const Sqe& sqe, Wait wait) {
    if (sqe.fd < 0) {
        post(sqe.user_data, -EBADF, 0);
        return;
    }
    FdEntry& e = entry(sqe.fd);
    if ((sqe.opcode == IORING_OP_READ || sqe.opcode == IORING_OP_WRITE) &&
        kind_of(e, sqe.fd) == Kind::file) {
        to_pool(new_op(sqe));
        return;
    }
    Op* op = new_op(sqe);
    op->wait = wait;
    int r = attempt(*op);
    if (r != again) {
        finish(*op, r);
        return;
    }
    wait_on(*op, e);
}

int EpollEngine::attempt(Op& op) {
    const Sqe& s = op.sqe;
    int fd = op.fd;
    switch (s.opcode) {
    case IORING_OP_RECV:
    case IORING_OP_SEND: {
        bool send = s.opcode == IORING_OP_SEND;
        auto* buf = reinterpret_cast<char*>(static_cast<std::uintptr_t>(s.addr));
        int flags = static_cast<int>(s.op_flags);
        bool all = (flags & MSG_WAITALL) != 0;
        flags = (flags & ~MSG_WAITALL) | MSG_DONTWAIT;
        for (;;) {
            std::size_t left = s.len - op.done;
            ssize_t n = send ? ::send(fd, buf + op.done, left, flags)
                             : ::recv(fd, buf + op.done, left, flags);
            if (n < 0) {
                int err = errno;
                if (err == EINTR) {
                    continue;
                }
                if (err == EAGAIN || err == EWOULDBLOCK) {
                    return again;
                }
                return op.done > 0 ? static_cast<int>(op.done) : -err;
            }
            op.done += static_cast<std::uint32_t>(n);
            if (!all || n == 0 || op.done >= s.len) {
                return static_cast<int>(op.done);
            }
        }
    }
    case IORING_OP_RECVMSG:
    case IORING_OP_SENDMSG: {
        auto* msg = reinterpret_cast<msghdr*>(static_cast<std::uintptr_t>(s.addr));
        int flags = static_cast<int>(s.op_flags) | MSG_DONTWAIT;
        for (;;) {
            ssize_t n = s.opcode == IORING_OP_SENDMSG ? ::sendmsg(fd, msg, flags)
                                                      : ::recvmsg(fd, msg, flags);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return again;
            }
            return errno_result(n);
        }
    }
    case IORING_OP_ACCEPT: {
        FdEntry& e = entry(fd);
        ensure_nonblock(e, fd);
        bool multishot = (s.ioprio & IORING_ACCEPT_MULTISHOT) != 0;
        for (;;) {
            int c = ::accept4(fd,
                              reinterpret_cast<sockaddr*>(static_cast<std::uintptr_t>(s.addr)),
                              reinterpret_cast<socklen_t*>(static_cast<std::uintptr_t>(s.off)),
                              static_cast<int>(s.op_flags));
            if (c >= 0) {
                // A new file under this number: whatever the engine knew about it is stale.
                note_fd_closed(c);
                if (!multishot) {
                    return c;
                }
                post(s.user_data, c, IORING_CQE_F_MORE);
                continue;
            }
            int err = errno;
            if (err == EINTR || err == ECONNABORTED) {
                continue;
            }
            if (err == EAGAIN || err == EWOULDBLOCK) {
                return again;
            }
            return -err;
        }
    }
    case IORING_OP_CONNECT: {
        if (!op.connecting) {
            if (op.saved_fl < 0) {
                op.saved_fl = ::fcntl(fd, F_GETFL);
                if (op.saved_fl < 0) {
                    return -errno;
                }
                if (!(op.saved_fl & O_NONBLOCK)) {
                    ::fcntl(fd, F_SETFL, op.saved_fl | O_NONBLOCK);
                }
            }
            int r = ::connect(
                    fd,
                    reinterpret_cast<const sockaddr*>(static_cast<std::uintptr_t>(s.addr)),
                    static_cast<socklen_t>(s.off));
            if (r == 0) {
                return 0;
            }
            int err = errno;
            if (err == EINPROGRESS || err == EINTR) {
                op.connecting = true;
                return again;
            }
            if (err == EAGAIN) {
                return again; // a full AF_UNIX backlog: try again when writable
            }
            return -err;
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            return -errno;
        }
        if (err != 0) {
            return -err;
        }
        sockaddr_storage peer{};
        socklen_t plen = sizeof peer;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) != 0) {
            return errno == ENOTCONN ? again : -errno; // still connecting: a spurious event
        }
        return 0;
    }
    case IORING_OP_READ:
    case IORING_OP_WRITE:
        return attempt_rw(op, entry(fd));
    case IORING_OP_SPLICE: {
        loff_t off_in = static_cast<loff_t>(s.addr);
        loff_t off_out = static_cast<loff_t>(s.off);
        for (;;) {
            ssize_t n = ::splice(s.splice_fd_in,
                                 s.addr == ~std::uint64_t{0} ? nullptr : &off_in,
                                 fd,
                                 s.off == ~std::uint64_t{0} ? nullptr : &off_out,
                                 s.len,
                                 s.op_flags | SPLICE_F_NONBLOCK);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return again;
            }
            return errno_result(n);
        }
    }
    default:
        return -EINVAL;
    }
}

int EpollEngine::attempt_rw(Op& op, FdEntry& e) {
    const Sqe& s = op.sqe;
    void* buf = reinterpret_cast<void*>(static_cast<std::uintptr_t>(s.addr));
    bool write = s.opcode == IORING_OP_WRITE;
    bool socket = kind_of(e, op.fd) == Kind::socket;
    if (!socket) {
        ensure_nonblock(e, op.fd);
    }
    for (;;) {
        ssize_t n;
        if (socket) {
            n = write ? ::send(op.fd, buf, s.len, MSG_DONTWAIT | MSG_NOSIGNAL)
                      : ::recv(op.fd, buf, s.len, MSG_DONTWAIT);
        } else {
            n = write ? ::write(op.fd, buf, s.len) : ::read(op.fd, buf, s.len);
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return again;
        }
        return errno_result(n);
    }
}

void EpollEngine::wait_on(Op& op, FdEntry& e) {
    OpList& list = op.wait == Wait::read    ? e.readers
                   : op.wait == Wait::write ? e.writers
                                            : e.pollers;
    list.push_back(&op);
    op.state = State::waiting;
    by_user_data_[op.sqe.user_data] = &op;
    ++pending_;
    // Registered once per file, edge-triggered (as Asio's reactor). Polls always re-add (EEXIST
    // is fine): a watched fd closed behind coring's back and reused must not stay silent.
    if (!e.registered || op.wait == Wait::poll) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.u64 = static_cast<std::uint64_t>(op.fd);
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, op.fd, &ev) == 0 || errno == EEXIST) {
            e.registered = true;
        } else {
            int err = errno;
            if (err == EPERM && op.wait == Wait::poll) {
                // A regular file is always ready, as poll(2) says.
                finish(op, static_cast<int>(op.sqe.op_flags & (POLLIN | POLLOUT)));
            } else {
                finish(op, -err);
            }
        }
    }
}

void EpollEngine::start_poll(const Sqe& sqe) {
    if (sqe.fd < 0) {
        post(sqe.user_data, -EBADF, 0);
        return;
    }
    FdEntry& e = entry(sqe.fd);
    bool multi = (sqe.len & IORING_POLL_ADD_MULTI) != 0;
    pollfd p{sqe.fd, static_cast<short>(sqe.op_flags), 0};
    if (::poll(&p, 1, 0) > 0) {
        if (p.revents & POLLNVAL) {
            post(sqe.user_data, -EBADF, 0);
            return;
        }
        if (!multi) {
            post(sqe.user_data, p.revents, 0);
            return;
        }
        post(sqe.user_data, p.revents, IORING_CQE_F_MORE);
    }
    Op* op = new_op(sqe);
    op->wait = Wait::poll;
    wait_on(*op, e);
}

int EpollEngine::poll_remove(const Sqe& sqe) noexcept {
    auto it = by_user_data_.find(sqe.addr);
    if (it == by_user_data_.end() || it->second->wait != Wait::poll ||
        it->second->state != State::waiting) {
        return -ENOENT;
    }
    Op& op = *it->second;
    unsigned flags = sqe.len;
    if (!(flags & (IORING_POLL_UPDATE_EVENTS | IORING_POLL_UPDATE_USER_DATA))) {
        finish(op, -ECANCELED);
        return 0;
    }
    if (flags & IORING_POLL_UPDATE_USER_DATA) {
        by_user_data_.erase(it);
        op.sqe.user_data = sqe.off;
        try {
            by_user_data_[op.sqe.user_data] = &op;
        } catch (...) {
            finish(op, -ECANCELED);
            return -ENOMEM;
        }
    }
    if (flags & IORING_POLL_UPDATE_EVENTS) {
        op.sqe.op_flags = sqe.op_flags;
    }
    // Re-armed: report the file's current state, as the kernel's re-armed poll does.
    pollfd p{op.fd, static_cast<short>(op.sqe.op_flags), 0};
    if (::poll(&p, 1, 0) > 0 && p.revents != 0) {
        if (op.sqe.len & IORING_POLL_ADD_MULTI) {
            post(op.sqe.user_data, p.revents, IORING_CQE_F_MORE);
        } else {
            finish(op, p.revents);
        }
    }
    return 0;
}

void EpollEngine::do_close(const Sqe& sqe) {
    int fd = sqe.fd;
    if (fd >= 0 && static_cast<std::size_t>(fd) < fds_.size()) {
        FdEntry& e = fds_[static_cast<std::size_t>(fd)];
        if (e.registered) {
            ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
        }
        reset(e, fd);
    }
    int r = ::close(fd);
    int res = r < 0 ? -errno : 0;
    note_fd_closed(fd);
    if (!((sqe.flags & IOSQE_CQE_SKIP_SUCCESS) && res >= 0)) {
        post(sqe.user_data, res, 0);
    }
}

namespace {

std::int64_t monotonic_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

} // namespace

void EpollEngine::start_timeout(const Sqe& sqe) {
    const auto* ts =
            reinterpret_cast<const __kernel_timespec*>(static_cast<std::uintptr_t>(sqe.addr));
    if (ts == nullptr) {
        post(sqe.user_data, -EFAULT, 0);
        return;
    }
    std::int64_t ns = ts->tv_sec * 1'000'000'000 + ts->tv_nsec;
    Op* op = new_op(sqe);
    op->wait = Wait::timer;
    op->deadline = (sqe.op_flags & IORING_TIMEOUT_ABS) ? ns : monotonic_ns() + ns;
    timers_.push_back(op);
    op->state = State::waiting;
    by_user_data_[op->sqe.user_data] = op;
    ++pending_;
}

std::int64_t EpollEngine::nearest_timer() const noexcept {
    std::int64_t nearest = -1;
    for (const Op* op : timers_) {
        if (nearest < 0 || op->deadline < nearest) {
            nearest = op->deadline;
        }
    }
    return nearest;
}

void EpollEngine::expire_timers() noexcept {
    if (timers_.empty()) {
        return;
    }
    std::int64_t now = monotonic_ns();
    for (std::size_t i = 0; i < timers_.size();) {
        if (timers_[i]->deadline <= now) {
            finish(*timers_[i], -ETIME); // removes it from timers_
        } else {
            ++i;
        }
    }
}

void EpollEngine::unlink(Op& op) noexcept {
    if (op.state != State::waiting) {
        return;
    }
    if (op.wait == Wait::timer) {
        for (auto it = timers_.begin(); it != timers_.end(); ++it) {
            if (*it == &op) {
                timers_.erase(it);
                break;
            }
        }
        return;
    }
    FdEntry& e = fds_[static_cast<std::size_t>(op.fd)];
    OpList& list = op.wait == Wait::read    ? e.readers
                   : op.wait == Wait::write ? e.writers
                                            : e.pollers;
    list.remove(&op);
}

void EpollEngine::finish(Op& op, int res) noexcept {
    unlink(op);
    if (op.state != State::idle) {
        --pending_;
        auto it = by_user_data_.find(op.sqe.user_data);
        if (it != by_user_data_.end() && it->second == &op) {
            by_user_data_.erase(it);
        }
    }
    if (op.sqe.opcode == IORING_OP_CONNECT && op.saved_fl >= 0 && !(op.saved_fl & O_NONBLOCK)) {
        ::fcntl(op.fd, F_SETFL, op.saved_fl);
    }
    if (!((op.sqe.flags & IOSQE_CQE_SKIP_SUCCESS) && res >= 0)) {
        post(op.sqe.user_data, res, 0);
    }
    free_op(&op);
}

void EpollEngine::run_ready(OpList& list, FdEntry& e) {
    static_cast<void>(e);
    while (Op* op = list.head) {
        int r = attempt(*op);
        if (r == again) {
            break; // drained: the next edge brings the rest
        }
        finish(*op, r);
    }
}

void EpollEngine::on_event(int fd, std::uint32_t events) {
    auto i = static_cast<std::size_t>(fd);
    if (i >= fds_.size()) {
        return;
    }
    FdEntry& e = fds_[i];
    if (e.gen != generation_of(fd)) {
        reset(e, fd);
        e.gen = generation_of(fd);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        run_ready(e.readers, e);
    }
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
        run_ready(e.writers, e);
    }
    for (Op* op = e.pollers.head; op != nullptr;) {
        Op* next = op->next;
        unsigned rev = events & (op->sqe.op_flags | POLLERR | POLLHUP);
        if (rev != 0) {
            if (op->sqe.len & IORING_POLL_ADD_MULTI) {
                post(op->sqe.user_data, static_cast<int>(rev), IORING_CQE_F_MORE);
            } else {
                finish(*op, static_cast<int>(rev));
            }
        }
        op = next;
    }
}

void EpollEngine::poll(std::int64_t timeout_ns) {
    flush_overflow();
    if (!cancelling_.empty()) {
        signal_cancelled();
        constexpr std::int64_t resignal_ns = 10'000'000;
        timeout_ns = timeout_ns < 0 ? resignal_ns : std::min(timeout_ns, resignal_ns);
    }
    if (std::int64_t nearest = nearest_timer(); nearest >= 0 && timeout_ns != 0) {
        std::int64_t until = std::max<std::int64_t>(0, nearest - monotonic_ns());
        timeout_ns = timeout_ns < 0 ? until : std::min(timeout_ns, until);
    }
    std::array<epoll_event, 128> events{};
    int n;
    for (;;) {
        if (timeout_ns == 0) {
            n = ::epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 0);
        } else {
            static std::atomic<bool> no_pwait2{false};
            n = -1;
            errno = ENOSYS;
            if (!no_pwait2.load(std::memory_order_relaxed)) {
                timespec ts{};
                ts.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000);
                ts.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
                n = ::epoll_pwait2(epfd_,
                                   events.data(),
                                   static_cast<int>(events.size()),
                                   timeout_ns < 0 ? nullptr : &ts,
                                   nullptr);
            }
            if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
                // Before Linux 5.11 (or a seccomp profile without it): milliseconds, rounded up.
                no_pwait2.store(true, std::memory_order_relaxed);
                std::int64_t ms = timeout_ns < 0 ? -1 : (timeout_ns + 999'999) / 1'000'000;
                n = ::epoll_wait(epfd_,
                                 events.data(),
                                 static_cast<int>(events.size()),
                                 static_cast<int>(std::min<std::int64_t>(ms, INT_MAX)));
            }
        }
        if (n >= 0 || errno != EINTR) {
            break;
        }
        if (timeout_ns != 0) {
            n = 0; // a signal: let the loop look at its timers and signal handlers
            break;
        }
    }
    if (n < 0) {
        throw RuntimeError(fmt::format("coring: epoll_wait failed: {}", std::strerror(errno)));
    }
    for (int k = 0; k < n; ++k) {
        std::uint64_t data = events[static_cast<std::size_t>(k)].data.u64;
        if (data == pool_marker) {
            on_pool_done();
        } else {
            on_event(static_cast<int>(data), events[static_cast<std::size_t>(k)].events);
        }
    }
    expire_timers();
    flush_overflow();
    refresh_flags();
}

int EpollEngine::cancel(std::uint64_t user_data) noexcept {
    auto it = by_user_data_.find(user_data);
    if (it == by_user_data_.end()) {
        return -ENOENT;
    }
    Op& op = *it->second;
    if (op.state == State::waiting) {
        finish(op, -ECANCELED);
        return 0;
    }
    {
        std::lock_guard lock(mutex_);
        if (op.state == State::pool_running) {
            // Interrupt its blocking call; it completes with -ECANCELED (or its result, if
            // that came first), as io_uring's cancel of a running io-wq work says -EALREADY.
            if (!op.cancel.exchange(true)) {
                try {
                    cancelling_.push_back(&op);
                } catch (...) {
                }
                ::pthread_kill(op.worker, pool_signal());
            }
            return -EALREADY;
        }
        if (op.state != State::pool_queued) {
            return -EALREADY; // done, its completion on the way
        }
        for (auto j = jobs_.begin(); j != jobs_.end(); ++j) {
            if (*j == &op) {
                jobs_.erase(j);
                break;
            }
        }
        op.state = State::idle;
    }
    --pending_;
    by_user_data_.erase(user_data);
    post(op.sqe.user_data, -ECANCELED, 0);
    free_op(&op);
    return 0;
}

void EpollEngine::cancel_all() noexcept {
    std::vector<std::uint64_t> keys;
    try {
        keys.reserve(by_user_data_.size());
        for (auto& [ud, op] : by_user_data_) {
            keys.push_back(ud);
        }
    } catch (...) {
        return;
    }
    for (std::uint64_t ud : keys) {
        cancel(ud);
    }
    flush_overflow();
    refresh_flags();
}

void EpollEngine::to_pool(Op* op) {
    op->state = State::pool_queued;
    by_user_data_[op->sqe.user_data] = op;
    ++pending_;
    std::unique_lock lock(mutex_);
    jobs_.push_back(op);
    if (idle_workers_ < jobs_.size() && workers_.size() < max_workers) {
        try {
            workers_.emplace_back([this] { worker(); });
        } catch (...) {
            if (workers_.empty()) {
                jobs_.pop_back();
                lock.unlock();
                finish(*op, -EAGAIN);
                return;
            }
        }
    }
    lock.unlock();
    cv_.notify_one();
}

void EpollEngine::worker() noexcept {
    // Only the cancel signal reaches pool threads; the process's signals go to other threads.
    sigset_t set;
    sigfillset(&set);
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    sigemptyset(&set);
    sigaddset(&set, pool_signal());
    ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    std::unique_lock lock(mutex_);
    for (;;) {
        ++idle_workers_;
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        --idle_workers_;
        if (jobs_.empty()) {
            return;
        }
        Op* op = jobs_.front();
        jobs_.pop_front();
        op->state = State::pool_running;
        op->worker = ::pthread_self();
        ++running_jobs_;
        lock.unlock();
        int res = run_blocking(*op);
        lock.lock();
        op->res = res;
        op->state = State::pool_done;
        --running_jobs_;
        try {
            done_.push_back(op);
        } catch (...) {
            // Out of memory: the job stays counted as running, so a drain reports it.
            ++running_jobs_;
        }
        std::uint64_t one = 1;
        [[maybe_unused]] ssize_t w = ::write(pool_efd_, &one, sizeof one);
    }
}

int EpollEngine::run_blocking(Op& op) noexcept {
    const Sqe& s = op.sqe;
    void* addr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(s.addr));
    auto* path = static_cast<const char*>(addr);
    bool at_position = s.off == ~std::uint64_t{0};
    for (;;) {
        long r;
        switch (s.opcode) {
        case IORING_OP_READ:
            r = at_position ? ::read(s.fd, addr, s.len)
                            : ::pread(s.fd, addr, s.len, static_cast<off_t>(s.off));
            break;
        case IORING_OP_WRITE:
            r = at_position ? ::write(s.fd, addr, s.len)
                            : ::pwrite(s.fd, addr, s.len, static_cast<off_t>(s.off));
            break;
        case IORING_OP_OPENAT:
            r = ::openat(s.fd, path, static_cast<int>(s.op_flags), static_cast<mode_t>(s.len));
            note_fd_closed(static_cast<int>(r));
            break;
        case IORING_OP_STATX:
            r = ::statx(s.fd,
                        path,
                        static_cast<int>(s.op_flags),
                        s.len,
                        reinterpret_cast<struct statx*>(static_cast<std::uintptr_t>(s.off)));
            break;
        case IORING_OP_FSYNC:
            r = (s.op_flags & IORING_FSYNC_DATASYNC) ? ::fdatasync(s.fd) : ::fsync(s.fd);
            break;
        case IORING_OP_SPLICE: {
            loff_t off_in = static_cast<loff_t>(s.addr);
            loff_t off_out = static_cast<loff_t>(s.off);
            r = ::splice(s.splice_fd_in,
                         s.addr == ~std::uint64_t{0} ? nullptr : &off_in,
                         s.fd,
                         at_position ? nullptr : &off_out,
                         s.len,
                         s.op_flags);
            break;
        }
        default:
            return -EINVAL;
        }
        if (r < 0 && errno == EINTR) {
            if (op.cancel.load()) {
                return -ECANCELED;
            }
            continue;
        }
        return errno_result(r);
    }
}

void EpollEngine::signal_cancelled() noexcept {
    // A signal that arrived just before the worker entered its blocking call is lost: repeat.
    std::lock_guard lock(mutex_);
    for (Op* op : cancelling_) {
        if (op->state == State::pool_running) {
            ::pthread_kill(op->worker, pool_signal());
        }
    }
}

void EpollEngine::on_pool_done() noexcept {
    std::uint64_t count = 0;
    [[maybe_unused]] ssize_t r = ::read(pool_efd_, &count, sizeof count);
    std::vector<Op*> finished;
    {
        std::lock_guard lock(mutex_);
        finished.swap(done_);
    }
    for (Op* op : finished) {
        for (auto it = cancelling_.begin(); it != cancelling_.end(); ++it) {
            if (*it == op) {
                cancelling_.erase(it);
                break;
            }
        }
        finish(*op, op->res);
    }
}

bool EpollEngine::wait_pool(int timeout_ms) noexcept {
    signal_cancelled();
    pollfd p{pool_efd_, POLLIN, 0};
    ::poll(&p, 1, timeout_ms);
    on_pool_done();
    flush_overflow();
    refresh_flags();
    std::lock_guard lock(mutex_);
    return running_jobs_ != 0 || !jobs_.empty();
}

} // namespace coring::detail
