// SPDX-License-Identifier: MIT
// Timeout's state machine (asyncio.timeouts.Timeout: __aenter__, __aexit__, reschedule).
#include <coring/timeout.hpp>

#include <coring/detail/assert.hpp>
#include <coring/detail/deadline.hpp>

#include <fmt/format.h>

namespace coring {

namespace {

double seconds(EventLoop::time_point t) noexcept {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
}

} // namespace

Timeout timeout(std::optional<EventLoop::duration> delay) {
    EventLoop& loop = get_running_loop();
    if (!delay) {
        return Timeout(std::nullopt);
    }
    return Timeout(detail::LoopAccess::from_ns(
            detail::deadline_after(detail::LoopAccess::now_ns(loop), *delay)));
}

void Timeout::reschedule(std::optional<time_point> when) {
    if (state_ != State::entered) {
        if (state_ == State::created) {
            throw RuntimeError("Timeout has not been entered");
        }
        const char* name = state_ == State::expiring  ? "expiring"
                           : state_ == State::expired ? "expired"
                                                      : "finished";
        throw RuntimeError(fmt::format("Cannot change state of {} Timeout", name));
    }
    when_ = when;
    handle_.cancel();
    handle_ = Handle();
    if (!when) {
        return;
    }
    EventLoop& loop = *task_->loop();
    if (*when <= loop.time()) {
        handle_ = loop.call_soon([this] { on_timeout(); });
    } else {
        handle_ = loop.call_at(*when, [this] { on_timeout(); });
    }
}

std::string Timeout::describe() const {
    switch (state_) {
    case State::created:
        return "<Timeout [created]>";
    case State::entered:
        if (when_) {
            return fmt::format("<Timeout [active] when={:.3f}>", seconds(*when_));
        }
        return "<Timeout [active] when=None>";
    case State::expiring:
        return "<Timeout [expiring]>";
    case State::expired:
        return "<Timeout [expired]>";
    case State::exited:
        return "<Timeout [finished]>";
    }
    return "<Timeout>";
}

void Timeout::enter() {
    // asyncio's __aenter__.
    if (state_ != State::created) {
        throw RuntimeError("Timeout has already been entered");
    }
    EventLoop& loop = get_running_loop();
    detail::TaskBase* task = loop.current_task();
    if (task == nullptr) {
        throw RuntimeError("Timeout should be used inside a task");
    }
    state_ = State::entered;
    task_ = task;
    cancelling_ = task->cancelling();
    reschedule(when_);
}

void Timeout::exit(std::exception_ptr error) {
    // asyncio's __aexit__.
    handle_.cancel();
    handle_ = Handle();
    if (state_ == State::expiring) {
        state_ = State::expired;
        // Only the cancellation this scope caused becomes TimeoutError: when the count of
        // cancellation requests goes back to what it was on entry, nobody else asked.
        if (task_->uncancel() <= cancelling_ && error && detail::is_cancelled_error(error)) {
            throw TimeoutError();
        }
    } else if (state_ == State::entered) {
        state_ = State::exited;
    }
    if (error) {
        std::rethrow_exception(error);
    }
}

void Timeout::on_timeout() noexcept {
    CORING_ASSERT(state_ == State::entered, "Timeout fired outside its scope");
    try {
        task_->cancel({});
    } catch (...) {
        // out of memory recording the cancel message: nothing better to do
    }
    state_ = State::expiring;
    handle_ = Handle(); // drop the reference early; the running callback keeps its own
}

} // namespace coring
