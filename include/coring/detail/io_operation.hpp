// SPDX-License-Identifier: MIT
// Awaiter base for one io_uring operation: the SQE's user_data points at the awaiter in the
// coroutine frame; cancelling the task cancels the operation in the kernel and waits for it.
#pragma once

#include <coring/event_loop.hpp>

#include <coring/detail/ring.hpp>
#include <coring/detail/task_base.hpp>

#include <liburing.h>

#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

namespace coring::detail {

/// One io_uring operation awaited by a task. Derived provides `void prepare(io_uring_sqe*)` and
/// `const char* op_name() const`, and calls result() from its await_resume.
///
/// Cancellation: cancel() queues IORING_OP_ASYNC_CANCEL for this operation; the task resumes
/// only when the operation's own completion arrives, so no buffer is written after its owner
/// is gone. If the kernel finished the operation before it saw the cancel, the result wins and
/// the cancellation stays pending for the task's next suspension point; a task that ends
/// before reaching one ends with its result (the operation completed, so it is not reported
/// as cancelled).
template <class Derived>
class IoOperation : public Completion, public Waiter {
public:
    IoOperation() noexcept { complete = &IoOperation::on_complete; }

    IoOperation(IoOperation&& other) noexcept : IoOperation() {
        static_cast<void>(other); // awaiters are moved only before they start
    }

    bool await_ready() const noexcept { return false; }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        static_assert(std::is_base_of_v<TaskBase, Promise>,
                      "coring I/O operations must be awaited from a coring::Task coroutine");
        task_ = h.promise().task_;
        if (task_->must_cancel()) {
            // A cancellation is already pending: do not start the operation at all.
            task_->clear_must_cancel();
            state_ = State::cancelled;
            res_ = -ECANCELED;
            task_->suspend_yield(h, &h.promise());
            return;
        }
        Ring& ring = detail::LoopAccess::ring(*task_->loop());
        io_uring_sqe* sqe = ring.get_sqe();
        static_cast<Derived*>(this)->prepare(sqe);
        ring.track(sqe, this);
        state_ = State::in_flight;
        // Preparing and tracking the SQE runs no code that could cancel the task.
        task_->suspend_on_uncancelled(h, &h.promise(), *this);
    }

    bool cancel(const std::string&) noexcept override {
        if (state_ != State::in_flight) {
            return false; // completed already; the task is scheduled to resume
        }
        if (!cancel_requested_) {
            cancel_requested_ = true;
            try {
                detail::LoopAccess::ring(*task_->loop()).cancel(this);
            } catch (...) {
                // get_sqe flushes a full SQ and cannot fail short of a dead ring; if it does,
                // the operation simply completes on its own.
            }
        }
        return true;
    }

    void describe(std::string& out) const override {
        out += static_cast<const Derived*>(this)->op_name();
        if (cancel_requested_) {
            out += " (cancel requested)";
        }
    }

protected:
    ~IoOperation() = default;

    /// The completion's res (>= 0, or -errno) and flags. Throws: CancelledError when the
    /// operation ended because it was cancelled.
    int result() {
        if (state_ == State::cancelled || (cancel_requested_ && interrupted(res_))) {
            task_->throw_cancelled();
        }
        if (cancel_requested_ || (state_ == State::done && task_->must_cancel())) {
            // The kernel finished the operation first (before the cancel reached it, or before
            // cancel() was even called): keep the result, cancel at the next suspension point.
            task_->keep_result_over_cancel();
        }
        return res_;
    }

    unsigned cqe_flags() const noexcept { return flags_; }

    /// The task awaiting the operation (set by await_suspend).
    TaskBase& task() const noexcept { return *task_; }

    EventLoop& loop() const noexcept { return *task_->loop(); }

private:
    // Results that mean "stopped by the cancel request": ECANCELED, EINTR, and the kernel's
    // internal restart codes (ERESTARTSYS 512 .. ERESTART_RESTARTBLOCK 516), which leak out
    // when the cancel interrupts a blocking call an io-wq worker was making (an open(2) of a
    // FIFO waiting for its other end returns -512).
    static bool interrupted(int res) noexcept {
        return res == -ECANCELED || res == -EINTR || (res <= -512 && res >= -516);
    }

    enum class State : std::uint8_t {
        idle,      // not submitted yet
        in_flight, // the kernel owns it
        done,      // the completion arrived
        cancelled, // never submitted: the task was cancelled first
    };

    static void on_complete(Completion* c, int res, unsigned flags) noexcept {
        auto& op = static_cast<IoOperation&>(*c);
        op.res_ = res;
        op.flags_ = flags;
        op.state_ = State::done;
        op.task_->wake();
    }

    TaskBase* task_ = nullptr;
    int res_ = 0;
    unsigned flags_ = 0;
    State state_ = State::idle;
    bool cancel_requested_ = false;
};

/// An IoOperation whose SQE is prepared by a callable; yields the raw completion result.
template <class Prep>
class [[nodiscard]] PreparedOperation final : public IoOperation<PreparedOperation<Prep>> {
public:
    PreparedOperation(const char* name, Prep prep) : name_(name), prep_(std::move(prep)) {}

    void prepare(io_uring_sqe* sqe) { prep_(sqe); }

    const char* op_name() const noexcept { return name_; }

    /// res: >= 0 on success, -errno on failure. Throws CancelledError when cancelled.
    int await_resume() { return this->result(); }

private:
    const char* name_;
    Prep prep_;
};

/// co_await io_op("read", [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, ...); }) submits one
/// operation and yields its completion result (-errno on failure).
template <class Prep>
PreparedOperation<Prep> io_op(const char* name, Prep prep) {
    return PreparedOperation<Prep>(name, std::move(prep));
}

} // namespace coring::detail
