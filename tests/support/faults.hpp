// SPDX-License-Identifier: MIT
// Fault injection for tests through the one seam, detail::sys: enter errors, short transfers,
// rewritten completion results, a missing opcode, failed allocations.
#pragma once

#include <coring/detail/frame_allocator.hpp>
#include <coring/detail/sys.hpp>

#include <liburing.h>

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <unordered_map>

namespace coring::test {

/// Installs every fault-capable entry of detail::sys for its lifetime; the public fields say
/// which faults to inject. One at a time, on the loop's thread, while no loop runs on another.
class FaultInjector {
public:
    // ---- io_uring_enter (every submit entry) ----
    /// The next enter_errors enters fail with -enter_error.
    int enter_error = 0;
    int enter_errors = 0;
    /// Inject only every enter_every-th enter (1: every one).
    int enter_every = 1;
    /// false: fail before the kernel sees anything (the SQEs stay queued, so a full SQ stays
    /// full); true: make the real call, then report the error anyway (EINTR after submitting).
    bool enter_error_after_call = false;
    int enters = 0;               // enters seen
    int enters_injected = 0;      // enters made to fail
    bool saw_cq_overflow = false; // the kernel flagged an overflowing CQ after some enter

    // ---- short transfers: the kernel really transfers at most this many bytes ----
    /// Caps the len of queued SEND/RECV/READ/WRITE SQEs before they reach the kernel (0: off).
    unsigned max_transfer = 0;

    // ---- completion results ----
    /// Called for each completion with the opcode of its SQE (-1 if unknown) and its res;
    /// returns the res to dispatch. Empty: results unchanged. Needs a ring with
    /// IORING_SETUP_DEFER_TASKRUN (completions posted only inside io_uring_enter).
    std::function<int(int opcode, int res)> rewrite;

    // ---- probe ----
    /// Opcodes the probe reports as unsupported (for rings built while this is alive).
    std::bitset<256> hidden_ops;

    // ---- allocation ----
    /// The allocation (counted from 0) that throws std::bad_alloc; -1: none.
    long fail_allocation = -1;
    long allocations = 0; // sys.allocate calls so far
    bool allocation_failed = false;

    FaultInjector() {
        current_ = this;
        detail::frame_cache_bypass(true);
    }

    FaultInjector(const FaultInjector&) = delete;
    FaultInjector& operator=(const FaultInjector&) = delete;

    ~FaultInjector() {
        detail::frame_cache_bypass(false);
        current_ = nullptr;
    }

private:
    using ProbeFn = io_uring_probe* (*)(io_uring*);
    using SubmitFn = int (*)(io_uring*);
    using SubmitWaitFn = int (*)(io_uring*, unsigned);
    using SubmitTimeoutFn =
            int (*)(io_uring*, io_uring_cqe**, unsigned, __kernel_timespec*, sigset_t*);
    using AllocFn = void* (*)(std::size_t);

    // Looks at the SQEs not yet handed to the kernel: remembers their opcodes (for rewrite) and
    // caps transfer lengths.
    void before_enter(io_uring* ring) {
        for (unsigned i = ring->sq.sqe_head; i != ring->sq.sqe_tail; ++i) {
            io_uring_sqe& sqe = ring->sq.sqes[i & ring->sq.ring_mask];
            if (sqe.user_data != 0) {
                opcode_of_[sqe.user_data] = sqe.opcode;
            }
            if (max_transfer != 0 && sqe.len > max_transfer &&
                (sqe.opcode == IORING_OP_SEND || sqe.opcode == IORING_OP_RECV ||
                 sqe.opcode == IORING_OP_READ || sqe.opcode == IORING_OP_WRITE)) {
                sqe.len = max_transfer;
            }
        }
    }

    // Returns the error to report (0: none), counting the enter.
    int enter_fault() {
        ++enters;
        if (enter_errors > 0 && enters % enter_every == 0) {
            --enter_errors;
            ++enters_injected;
            return -enter_error;
        }
        return 0;
    }

    // Rewrites the res of the CQEs the last enter posted, before the loop reaps them. With
    // IORING_SETUP_DEFER_TASKRUN the kernel posts completions only inside io_uring_enter.
    void after_enter(io_uring* ring) {
        if ((IO_URING_READ_ONCE(*ring->sq.kflags) & IORING_SQ_CQ_OVERFLOW) != 0) {
            saw_cq_overflow = true;
        }
        if (!rewrite) {
            return;
        }
        unsigned head = *ring->cq.khead;
        unsigned tail = io_uring_smp_load_acquire(ring->cq.ktail);
        unsigned from = ring == last_ring_ && seen_tail_ - head <= tail - head ? seen_tail_ : head;
        for (unsigned i = from; i != tail; ++i) {
            io_uring_cqe& cqe = ring->cq.cqes[i & ring->cq.ring_mask];
            if (cqe.user_data == 0) {
                continue;
            }
            auto it = opcode_of_.find(cqe.user_data);
            cqe.res = rewrite(it == opcode_of_.end() ? -1 : it->second, cqe.res);
        }
        last_ring_ = ring;
        seen_tail_ = tail;
    }

    template <class Call>
    static int enter(io_uring* ring, Call call) {
        FaultInjector& f = *current_;
        f.before_enter(ring);
        int err = f.enter_fault();
        int ret = err;
        if (err == 0 || f.enter_error_after_call) {
            ret = call();
            f.after_enter(ring);
        }
        return err == 0 ? ret : err;
    }

    static int submit(io_uring* ring) {
        return enter(ring, [&] { return ::io_uring_submit(ring); });
    }

    static int submit_and_wait(io_uring* ring, unsigned n) {
        return enter(ring, [&] { return ::io_uring_submit_and_wait(ring, n); });
    }

    static int submit_and_wait_timeout(
            io_uring* ring, io_uring_cqe** cqe, unsigned n, __kernel_timespec* ts, sigset_t* m) {
        return enter(ring, [&] { return ::io_uring_submit_and_wait_timeout(ring, cqe, n, ts, m); });
    }

    static int submit_and_get_events(io_uring* ring) {
        return enter(ring, [&] { return ::io_uring_submit_and_get_events(ring); });
    }

    static io_uring_probe* probe(io_uring* ring) {
        io_uring_probe* p = ::io_uring_get_probe_ring(ring);
        if (p != nullptr) {
            for (unsigned op = 0; op <= p->last_op; ++op) {
                if (current_->hidden_ops.test(op)) {
                    p->ops[op].flags &= ~IO_URING_OP_SUPPORTED;
                }
            }
        }
        return p;
    }

    static void* allocate(std::size_t size) {
        FaultInjector& f = *current_;
        if (f.allocations++ == f.fail_allocation) {
            f.allocation_failed = true;
            throw std::bad_alloc();
        }
        return ::operator new(size);
    }

    static inline FaultInjector* current_ = nullptr;

    std::unordered_map<std::uint64_t, int> opcode_of_;
    io_uring* last_ring_ = nullptr;
    unsigned seen_tail_ = 0; // CQ index up to which last_ring_'s CQEs were rewritten
    detail::SysOverride<ProbeFn> probe_{&detail::Sys::io_uring_get_probe_ring, &probe};
    detail::SysOverride<SubmitFn> submit_{&detail::Sys::io_uring_submit, &submit};
    detail::SysOverride<SubmitWaitFn> submit_wait_{&detail::Sys::io_uring_submit_and_wait,
                                                   &submit_and_wait};
    detail::SysOverride<SubmitTimeoutFn> submit_timeout_{
            &detail::Sys::io_uring_submit_and_wait_timeout, &submit_and_wait_timeout};
    detail::SysOverride<SubmitFn> get_events_{&detail::Sys::io_uring_submit_and_get_events,
                                              &submit_and_get_events};
    detail::SysOverride<AllocFn> allocate_{&detail::Sys::allocate, &allocate};
};

} // namespace coring::test
