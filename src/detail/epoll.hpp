// SPDX-License-Identifier: MIT
// The epoll backend of detail::Ring: executes io_uring SQEs in user space (asyncio's selector
// loop).
#pragma once

#include <liburing.h>

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace coring::detail {

/// Records that fd was closed, so an epoll registration kept for its number is not trusted for
/// the next file that gets the number. Called by every close coring makes (sys.close's default,
/// IORING_OP_CLOSE on the epoll backend). Thread-safe.
void note_fd_closed(int fd) noexcept;

/// The epoll side of a Ring in epoll mode.
///
/// It points the SQ and CQ of a fake io_uring at its own arrays, so liburing's inline helpers
/// (io_uring_get_sqe, io_uring_for_each_cqe, io_uring_cq_advance; liburing 2.3 as pinned by
/// Debian bookworm) work unchanged and the hot path of the io_uring backend costs nothing more.
/// submit() executes the queued SQEs: socket, pipe, eventfd and signalfd operations try their
/// non-blocking system call at once and, on EAGAIN, wait on the fd's edge-triggered epoll
/// registration (EPOLLIN|EPOLLOUT|EPOLLRDHUP, added once per file); file operations (regular
/// files: read, write, openat, statx, fsync, splice from a file) run on a small thread pool
/// whose completions come back through an eventfd in the epoll set. Completions are posted as
/// CQEs with the res and flags io_uring would give.
class EpollEngine {
public:
    /// Sets up the epoll instance and points ring's queues at arrays of entries SQEs (rounded up
    /// to a power of two) and twice as many CQEs. Throws RuntimeError when epoll is refused.
    EpollEngine(io_uring& ring, unsigned entries);
    EpollEngine(const EpollEngine&) = delete;
    EpollEngine& operator=(const EpollEngine&) = delete;
    ~EpollEngine();

    /// Executes every SQE queued in the fake SQ.
    void submit();

    /// Waits for readiness (at most timeout_ns; without limit when negative; not at all when
    /// zero), runs the operations that became possible, posts their CQEs.
    void poll(std::int64_t timeout_ns);

    /// Cancels every waiting operation and queued pool job (their CQEs say -ECANCELED).
    void cancel_all() noexcept;

    /// Waits up to timeout_ms for pool jobs still running and posts their completions.
    /// Returns whether any job is still running.
    bool wait_pool(int timeout_ms) noexcept;

    /// Operations waiting for readiness or on the pool.
    std::size_t pending() const noexcept { return pending_; }

    /// Whether a CQE is queued or waits for room in the CQ.
    bool has_completions() const noexcept;

    /// The epoll fd: readable when poll() would find something to do.
    int fd() const noexcept { return epfd_; }

    /// The opcodes this backend executes, as Ring::supports() reports them.
    static bool executes(unsigned opcode) noexcept;

private:
    /// What an operation needs of its SQE (io_uring_sqe ends in a flexible array member, so
    /// it cannot be a member). op_flags is the union of msg_flags, accept_flags, open_flags,
    /// statx_flags, fsync_flags, splice_flags, poll32_events and cancel_flags; splice's
    /// off_in is addr (the same union in the SQE).
    struct Sqe {
        std::uint64_t off = 0;
        std::uint64_t addr = 0;
        std::uint64_t user_data = 0;
        std::uint32_t len = 0;
        std::uint32_t op_flags = 0;
        int fd = -1;
        int splice_fd_in = -1;
        std::uint16_t ioprio = 0;
        std::uint8_t opcode = 0;
        std::uint8_t flags = 0;
    };

    enum class Wait : std::uint8_t { none, read, write, poll, timer };
    enum class State : std::uint8_t { idle, waiting, pool_queued, pool_running, pool_done };

    struct Op {
        Sqe sqe{};
        Op* prev = nullptr;
        Op* next = nullptr;
        std::uint32_t done = 0; // bytes already moved (MSG_WAITALL)
        int fd = -1;
        int res = 0;
        int saved_fl = -1;         // connect: the file status flags to restore
        std::int64_t deadline = 0; // IORING_OP_TIMEOUT: CLOCK_MONOTONIC ns
        Wait wait = Wait::none;
        State state = State::idle;
        bool connecting = false; // connect: EINPROGRESS seen, SO_ERROR gives the result
        // Pool jobs: the worker running it (guarded by mutex_), and whether a cancel asked it
        // to stop (the worker's blocking call is interrupted with pool_signal()).
        pthread_t worker{};
        std::atomic<bool> cancel{false};
    };

    struct OpList {
        Op* head = nullptr;
        Op* tail = nullptr;
        void push_back(Op* op) noexcept;
        void remove(Op* op) noexcept;
    };

    enum class Kind : std::uint8_t { unknown, socket, pollable, file };

    struct FdEntry {
        std::uint32_t gen = 0;
        bool registered = false;
        bool nonblock = false; // O_NONBLOCK set by us (or found set)
        Kind kind = Kind::unknown;
        OpList readers;
        OpList writers;
        OpList pollers;
    };

    static constexpr int again = -EAGAIN;

    void execute(const Sqe& sqe);
    FdEntry& entry(int fd);
    void reset(FdEntry& e, int fd) noexcept;
    Kind kind_of(FdEntry& e, int fd) noexcept;
    bool ensure_nonblock(FdEntry& e, int fd) noexcept;
    int attempt(Op& op);
    int attempt_rw(Op& op, FdEntry& e);
    void start(const Sqe& sqe, Wait wait);
    void start_poll(const Sqe& sqe);
    void run_ready(OpList& list, FdEntry& e);
    void finish(Op& op, int res) noexcept;
    void wait_on(Op& op, FdEntry& e);
    void to_pool(Op* op);
    void on_event(int fd, std::uint32_t events);
    void on_pool_done() noexcept;
    void start_timeout(const Sqe& sqe);
    void expire_timers() noexcept;
    std::int64_t nearest_timer() const noexcept;
    int cancel(std::uint64_t user_data) noexcept;
    int poll_remove(const Sqe& sqe) noexcept;
    void do_close(const Sqe& sqe);
    void post(std::uint64_t user_data, int res, unsigned flags) noexcept;
    void flush_overflow() noexcept;
    void refresh_flags() noexcept;
    Op* new_op(const Sqe& sqe);
    void free_op(Op* op) noexcept;
    void unlink(Op& op) noexcept;
    static int run_blocking(Op& op) noexcept;
    void signal_cancelled() noexcept;
    void worker() noexcept;

    io_uring& ring_;
    int epfd_ = -1;
    int pool_efd_ = -1;
    std::vector<io_uring_sqe> sqes_;
    std::vector<io_uring_cqe> cqes_;
    std::deque<io_uring_cqe> overflow_;
    unsigned sq_head_ = 0;
    unsigned sq_ktail_ = 0;
    unsigned kflags_ = 0;
    unsigned kdropped_ = 0;
    unsigned cq_head_ = 0;
    unsigned cq_tail_ = 0;
    unsigned koverflow_ = 0;
    std::size_t pending_ = 0;
    std::vector<FdEntry> fds_;
    std::unordered_map<std::uint64_t, Op*> by_user_data_;
    std::vector<Op*> free_ops_;
    std::vector<Op*> timers_;     // IORING_OP_TIMEOUT operations (tests use them; rare)
    std::vector<Op*> cancelling_; // pool jobs running when cancelled: signalled until they end

    // The pool: jobs queue under mutex_; workers post finished ones to done_ and write pool_efd_.
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Op*> jobs_;
    std::vector<Op*> done_;
    std::vector<std::thread> workers_;
    unsigned idle_workers_ = 0;
    unsigned running_jobs_ = 0; // guarded by mutex_
    bool stopping_ = false;
};

} // namespace coring::detail
