// SPDX-License-Identifier: MIT
// RAII over one io_uring: setup with feature fallback, SQE acquisition, batched submit, reaping.
#pragma once

#include <coring/backend.hpp>

#include <coring/detail/assert.hpp>

#include <liburing.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

namespace coring::detail {

/// Target of a CQE: user_data points at one of these, living in the awaiting coroutine's frame.
/// complete() is called once per CQE; a multishot operation sees IORING_CQE_F_MORE in flags
/// on every completion but its last.
struct Completion {
    using CompleteFn = void (*)(Completion*, int res, unsigned flags) noexcept;

    CompleteFn complete;
};

/// user_data of SQEs whose completion nobody waits for (cancel requests).
inline constexpr std::uint64_t ignored_user_data = 0;

/// Low bit of the user_data of a CQE another ring posted into this one (IORING_OP_MSG_RING):
/// the rest is the sender's pointer, handed to the ring's message handler. Such CQEs were never
/// tracked here, so they do not count against in_flight().
inline constexpr std::uint64_t message_tag = 1;

/// Setup parameters of a Ring.
struct RingOptions {
    unsigned entries = 1024; // submission queue size; the completion queue is twice as large
    int attach_wq_fd = -1;   // IORING_SETUP_ATTACH_WQ: share this ring's kernel workers (io-wq)
    std::optional<Backend> backend{}; // unset: CORING_BACKEND, else io_uring with epoll fallback
};

class EpollEngine;

/// Lets the next fallback to epoll log its warning again (for tests; once per process otherwise).
void reset_fallback_warning() noexcept;

/// One io_uring instance, or its epoll emulation. Not thread-safe: a Ring belongs to the thread
/// that runs its loop.
///
/// In epoll mode (Backend::epoll) the Ring's io_uring is a fake whose SQ and CQ point at arrays
/// of the EpollEngine (src/detail/epoll.hpp): awaiters fill SQEs and the loop reaps CQEs exactly
/// as on io_uring, and the inline hot path (get_sqe, track, reap, submit_nowait) is the same
/// code on both; only the out-of-line entries (submit, wait, drain) branch on the mode.
class Ring {
public:
    /// Sets the ring up with the best flags the kernel accepts (SINGLE_ISSUER, DEFER_TASKRUN,
    /// COOP_TASKRUN, SUBMIT_ALL, falling back one step at a time on EINVAL). The backend is
    /// options.backend, else the environment variable CORING_BACKEND ("uring" or "epoll"),
    /// else io_uring, falling back to epoll (with one warning per process through coring::log)
    /// when io_uring_setup is refused with EPERM, EACCES, ENOSYS, or EINVAL without any flags.
    /// Throws: coring::RuntimeError naming the cause and the fix when io_uring is unavailable
    /// and was asked for, or CORING_BACKEND holds something else.
    explicit Ring(const RingOptions& options = {});

    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;

    ~Ring();

    /// A fresh SQE. When the submission queue is full, submits what it holds and retries, so this
    /// never fails.
    io_uring_sqe* get_sqe() {
        if (io_uring_sqe* sqe = try_get_sqe()) [[likely]] {
            return sqe;
        }
        return get_sqe_slow();
    }

    /// A fresh SQE, or null when the submission queue is full: liburing's io_uring_get_sqe for
    /// a ring without IORING_SETUP_SQPOLL and IORING_SETUP_SQE128 (coring sets neither), which
    /// saves it testing both on every call.
    io_uring_sqe* try_get_sqe() noexcept {
        io_uring_sq& sq = ring_.sq;
        unsigned tail = sq.sqe_tail;
        if (tail + 1 - IO_URING_READ_ONCE(*sq.khead) > sq.ring_entries) [[unlikely]] {
            return nullptr;
        }
        sq.sqe_tail = tail + 1;
        return &sq.sqes[tail & sq.ring_mask];
    }

    /// Points the SQE's user_data at c and counts the operation as in flight.
    void track(io_uring_sqe* sqe, Completion* c) noexcept {
        io_uring_sqe_set_data(sqe, c);
        ++in_flight_;
        if (track_hook_ != nullptr) [[unlikely]] {
            track_hook_(track_hook_arg_, sqe, c);
        }
    }

    /// Called by track() with every tracked SQE (already prepared) while set: the loop's metrics
    /// and tracing (loop_debug.cpp). Null (the default) turns it off.
    using TrackHook = void (*)(void* arg, const io_uring_sqe* sqe, Completion* c) noexcept;

    void set_track_hook(TrackHook hook, void* arg) noexcept {
        track_hook_ = hook;
        track_hook_arg_ = arg;
    }

    /// Queues an asynchronous cancel of the operation whose user_data is c. Its completion
    /// arrives later through c, usually with -ECANCELED.
    void cancel(Completion* c) {
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(c), 0);
        io_uring_sqe_set_data64(sqe, ignored_user_data);
    }

    /// Submits what is queued, then waits for at least one completion: for at most timeout, or
    /// without limit when timeout is negative. One io_uring_enter.
    void submit_and_wait(std::chrono::nanoseconds timeout);

    /// Submits what is queued and collects completions without waiting. Enters the kernel only
    /// when there is something to submit or the kernel has completions to hand over.
    void submit_nowait() {
        unsigned kflags = IO_URING_READ_ONCE(*ring_.sq.kflags);
        if (io_uring_sq_ready(&ring_) != 0 ||
            (kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0) {
            enter_nowait();
        }
    }

    /// Calls on_cqe(Completion*, res, flags) for every completion in the CQ, in order, then
    /// marks them seen. Completions of untracked SQEs (cancel requests) are skipped.
    template <class OnCqe>
    unsigned reap(OnCqe&& on_cqe) {
        // liburing's io_uring_for_each_cqe with the CQ's geometry read once (it never changes,
        // but the compiler must assume on_cqe might change it) and 16-byte CQEs (no
        // IORING_SETUP_CQE32). The tail is read again when the batch is done, so completions posted
        // meanwhile (a handler's submit can post some) are reaped in this pass too.
        io_uring_cqe* const cqes = ring_.cq.cqes;
        const unsigned mask = ring_.cq.ring_mask;
        const unsigned first = *ring_.cq.khead;
        unsigned head = first;
        unsigned tail = io_uring_smp_load_acquire(ring_.cq.ktail);
        while (head != tail) {
            io_uring_cqe* cqe = &cqes[head & mask];
            ++head;
            std::uint64_t ud = cqe->user_data;
            if ((ud & message_tag) != 0) [[unlikely]] {
                ++messages_received_;
                on_message_(message_ctx_, ud & ~message_tag);
            } else if (ud != ignored_user_data) {
                if (!(cqe->flags & IORING_CQE_F_MORE)) {
                    --in_flight_;
                }
                on_cqe(reinterpret_cast<Completion*>(ud), cqe->res, cqe->flags);
            }
            if (head == tail) {
                tail = io_uring_smp_load_acquire(ring_.cq.ktail);
            }
        }
        // The kernel only reads the head: storing it is io_uring_cq_advance(head - first).
        io_uring_smp_store_release(ring_.cq.khead, head);
        return head - first;
    }

    /// Receives the payload (user_data without message_tag) of every CQE another ring posted here
    /// with IORING_OP_MSG_RING, on the thread that reaps. Set once, before the ring is used.
    using MessageFn = void (*)(void* ctx, std::uint64_t payload) noexcept;

    void set_message_handler(MessageFn fn, void* ctx) noexcept {
        on_message_ = fn;
        message_ctx_ = ctx;
    }

    /// Number of CQEs other rings posted here (IORING_OP_MSG_RING) reaped so far.
    std::uint64_t messages_received() const noexcept { return messages_received_; }

    /// True when SQEs are queued that the kernel has not been handed yet.
    bool has_pending_submissions() const noexcept { return io_uring_sq_ready(&ring_) != 0; }

    /// True when the kernel may hold completions not yet in the CQ (deferred task work, an
    /// overflowed CQ): entering the kernel without waiting would bring them in.
    bool kernel_has_work() const noexcept {
        return (IO_URING_READ_ONCE(*ring_.sq.kflags) &
                (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
    }

    /// Like kernel_has_work(), for a host loop deciding whether it may sleep on poll_fd(): in
    /// epoll mode waiting operations are watched by poll_fd() itself, so only CQEs held back
    /// for want of CQ room count.
    bool host_must_enter() const noexcept {
        unsigned mask =
                epoll_ ? IORING_SQ_CQ_OVERFLOW : (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW);
        return (IO_URING_READ_ONCE(*ring_.sq.kflags) & mask) != 0;
    }

    /// An fd for a foreign event loop to poll: an eventfd registered with the ring
    /// (io_uring_register_eventfd), created on the first call and signalled whenever the ring
    /// gets a completion or completion work (with DEFER_TASKRUN the ring fd itself is not
    /// signalled for deferred work). Enables the ring, binding it to the calling thread. In
    /// epoll mode: the epoll fd itself.
    /// Throws: RuntimeError when the eventfd cannot be created or registered.
    int poll_fd();

    /// Empties poll_fd()'s counter (non-blocking); nothing when poll_fd() was never called.
    void clear_poll_fd() noexcept;

    /// True when the CQ holds completions not reaped yet.
    bool has_completions() const noexcept { return io_uring_cq_ready(&ring_) != 0; }

    /// Operations submitted (or queued) whose final completion has not been reaped.
    std::uint64_t in_flight() const noexcept { return in_flight_; }

    /// Number of io_uring_enter calls made so far (for tests and benchmarks).
    std::uint64_t enter_count() const noexcept { return enters_; }

    /// Binds the ring to the calling thread. Rings set up with IORING_SETUP_R_DISABLED (all that
    /// use SINGLE_ISSUER) start disabled so the thread that runs the loop, not the one that
    /// created it, becomes the single issuer. Idempotent.
    void enable();

    /// The IORING_SETUP_* flags the kernel accepted.
    unsigned setup_flags() const noexcept { return setup_flags_; }

    /// The IORING_FEAT_* flags the kernel reported.
    unsigned features() const noexcept { return features_; }

    /// Whether the kernel supports an IORING_OP_* opcode (io_uring_get_probe).
    bool supports(unsigned opcode) const noexcept {
        return opcode < 256 && ((ops_[opcode / 64] >> (opcode % 64)) & 1u) != 0;
    }

    /// Cancels every operation in flight and waits until the kernel has handed all of them
    /// back, discarding their completions. Used when a loop closes with tasks still pending.
    /// Returns false when that was impossible (the calling thread may not submit to this ring).
    bool cancel_all_and_drain() noexcept;

    /// Forgets operations that can no longer be drained; the kernel cancels them when the ring
    /// is torn down.
    void abandon_in_flight() noexcept { in_flight_ = 0; }

    /// The io_uring's fd (-1 in epoll mode).
    int fd() const noexcept { return ring_.ring_fd; }

    /// Which backend this ring runs on.
    Backend backend() const noexcept { return epoll_ ? Backend::epoll : Backend::uring; }

    io_uring* native() noexcept { return &ring_; }

private:
    io_uring_sqe* get_sqe_slow();
    void enter_nowait();
    void check_sqes_before_submit() noexcept;
    void setup_uring(const RingOptions& options, bool forced);
    void start_epoll(unsigned entries);
    bool epoll_cancel_all_and_drain() noexcept;

    static void drop_message(void*, std::uint64_t) noexcept {}

    io_uring ring_{};
    MessageFn on_message_ = &Ring::drop_message;
    void* message_ctx_ = nullptr;
    std::uint64_t messages_received_ = 0;
    int poll_fd_ = -1;
    std::unique_ptr<EpollEngine> epoll_;
    std::uint64_t ops_[4] = {}; // bit op set when the kernel supports opcode op (no <bitset>)
    std::uint64_t in_flight_ = 0;
    std::uint64_t enters_ = 0;
    TrackHook track_hook_ = nullptr;
    void* track_hook_arg_ = nullptr;
    unsigned setup_flags_ = 0;
    unsigned features_ = 0;
    bool enabled_ = false;
};

} // namespace coring::detail
