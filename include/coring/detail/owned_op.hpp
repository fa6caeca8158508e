// SPDX-License-Identifier: MIT
// OwnedOp: an io_uring operation an object keeps in the kernel on its own behalf.
#pragma once

#include <coring/detail/ring.hpp>

#include <liburing.h>

#include <cstdint>

namespace coring::detail {

/// One operation that owner keeps in flight for itself, not for an awaiting coroutine (a
/// transport's send, a server's accept, the loop's wake-up read): at most one at a time, and its
/// completions go to (owner->*Fn)(res, flags). The op stops being in flight when its last CQE is
/// reaped, before Fn runs, so Fn may submit it again. A Multishot op completes any number of
/// times; its last CQE is the one without IORING_CQE_F_MORE.
template <class Owner, void (Owner::*Fn)(int res, unsigned flags) noexcept, bool Multishot = false>
class OwnedOp final : public Completion {
public:
    explicit OwnedOp(Owner* owner) noexcept : Completion{&OwnedOp::on_complete}, owner_(owner) {}

    OwnedOp(const OwnedOp&) = delete;
    OwnedOp& operator=(const OwnedOp&) = delete;

    /// The op is in the kernel (submitted, last completion not reaped yet).
    bool in_flight() const noexcept { return state_ != State::idle; }

    /// Tracks sqe, prepared by the caller, as this op. It must not be in flight.
    void submit(Ring& ring, io_uring_sqe* sqe) noexcept {
        ring.track(sqe, this);
        state_ = State::in_flight;
    }

    /// Queues a cancel of the op if it is in flight and none was queued yet. Without an SQE
    /// (a dead ring) nothing is queued: the op then completes on its own.
    void cancel(Ring& ring) noexcept {
        if (state_ != State::in_flight) {
            return;
        }
        try {
            ring.cancel(this);
            state_ = State::cancelling;
        } catch (...) {
            // No SQE to be had.
        }
    }

    /// The loop drained its ring without delivering this op's completion: it is no longer in
    /// flight. Returns whether it was.
    bool forget() noexcept {
        bool was = in_flight();
        state_ = State::idle;
        return was;
    }

private:
    enum class State : std::uint8_t {
        idle,       // not in the kernel
        in_flight,  // submitted
        cancelling, // submitted, and a cancel of it queued
    };

    static void on_complete(Completion* c, int res, unsigned flags) noexcept {
        auto* op = static_cast<OwnedOp*>(c);
        if (!Multishot || !(flags & IORING_CQE_F_MORE)) {
            op->state_ = State::idle;
        }
        (op->owner_->*Fn)(res, flags);
    }

    Owner* owner_;
    State state_ = State::idle;
};

} // namespace coring::detail
