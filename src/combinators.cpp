// SPDX-License-Identifier: MIT
// The out-of-line parts of gather, wait, wait_for, as_completed and shield (asyncio.tasks):
// cancellation of several children, as_completed's getter queue, and task-dump descriptions.
#include <coring/gather.hpp>
#include <coring/shield.hpp>
#include <coring/wait.hpp>

#include <fmt/format.h>

#include <iterator>

namespace coring::detail {

namespace {

const char* return_when_name(ReturnWhen rw) noexcept {
    switch (rw) {
    case ReturnWhen::first_completed:
        return "FIRST_COMPLETED";
    case ReturnWhen::first_exception:
        return "FIRST_EXCEPTION";
    case ReturnWhen::all_completed:
        return "ALL_COMPLETED";
    }
    return "?";
}

/// The pending children of a watch, for task dumps.
void pending_children(const ChildWatch& w, std::vector<const FutureBase*>& out) {
    for (std::size_t i = 0; i < w.size(); ++i) {
        const ChildSlot& s = w.slot(i);
        if (s.child != nullptr && !s.finished && !s.child->done()) {
            out.push_back(s.child);
        }
    }
}

} // namespace

void append_seconds(std::string& out, EventLoop::duration d) {
    fmt::format_to(std::back_inserter(out), "{:.3f} s", std::chrono::duration<double>(d).count());
}

// ---- gather ----

bool GatherState::cancel(const std::string& msg) noexcept {
    if (completed_) {
        return false; // the outcome is on its way to the awaiter
    }
    bool any = false;
    for (std::size_t i = 0; i < size(); ++i) {
        ChildSlot& s = slot(i);
        if (s.child == nullptr) {
            continue;
        }
        try {
            if (s.child->cancel(msg)) {
                any = true;
            }
        } catch (...) {
            // a child of a closed loop cannot be cancelled
        }
    }
    if (any) {
        // If any child could be cancelled, the gather raises CancelledError in the end, whatever
        // return_exceptions says (bpo-32684).
        cancel_requested_ = true;
        try {
            cancel_message_ = msg;
        } catch (...) {
        }
    }
    return any;
}

void GatherState::describe(std::string& out) const {
    fmt::format_to(std::back_inserter(out), "gather of {} ({} done", size(), finished_);
    if (return_exceptions_) {
        out += ", return_exceptions";
    }
    if (cancel_requested_) {
        out += ", cancelling";
    }
    out += ')';
}

void GatherState::awaited(std::vector<const FutureBase*>& out) const {
    pending_children(*this, out);
}

// ---- wait ----

bool WaitOperation::cancel(const std::string&) noexcept {
    if (released_) {
        return false;
    }
    released_ = true;
    cancelled_ = true;
    if (task_ != nullptr) {
        task_->wake();
    }
    return true;
}

void WaitOperation::describe(std::string& out) const {
    fmt::format_to(std::back_inserter(out),
                   "wait {}: {} of {} done",
                   return_when_name(return_when_),
                   size() - counter_,
                   size());
    if (timeout_) {
        out += ", timeout ";
        append_seconds(out, *timeout_);
    }
}

void WaitOperation::awaited(std::vector<const FutureBase*>& out) const {
    pending_children(*this, out);
}

// ---- wait_for, shield ----

void describe_wait_for(std::string& out,
                       const FutureBase& inner,
                       std::optional<EventLoop::duration> timeout,
                       bool expired) {
    out += "wait_for ";
    if (timeout) {
        append_seconds(out, *timeout);
    } else {
        out += "(no timeout)";
    }
    out += " on ";
    out += inner.describe();
    if (expired) {
        out += " (expired, waiting for it to finish)";
    }
}

void describe_shield(std::string& out, const FutureBase& inner) {
    out += "shield of ";
    out += inner.describe();
}

// ---- as_completed ----

NextWaiter::NextWaiter(AsCompletedState* state) noexcept : call_(state) {
    task_ = nullptr; // take() tells by it whether the getter suspended
    if (call_ != nullptr) {
        call_->add_ref();
    }
}

NextWaiter::NextWaiter(NextWaiter&& other) noexcept : call_(std::exchange(other.call_, nullptr)) {
    task_ = nullptr;
}

NextWaiter::~NextWaiter() {
    if (call_ == nullptr) {
        return;
    }
    if (is_linked()) {
        // The waiting frame is being destroyed (a closing loop).
        unlink();
        --call_->waiting_;
    }
    if (reserved_) {
        --call_->reserved_;
        call_->wake_getters();
    }
    call_->release();
}

bool NextWaiter::ready() const {
    if (call_ == nullptr) {
        throw InvalidStateError("as_completed: empty awaiter");
    }
    AsCompletedState& s = *call_;
    if (s.delivered_ + s.reserved_ + s.waiting_ >= s.size()) {
        throw InvalidStateError(
                fmt::format("as_completed: all {} results were awaited already", s.size()));
    }
    return s.unreserved() > 0 || s.timed_out_;
}

void NextWaiter::suspend() noexcept {
    call_->getters_.push_back(*this);
    ++call_->waiting_;
}

FutureBase* NextWaiter::take() {
    AsCompletedState& s = *call_;
    if (task_ != nullptr) {
        end_wait([&] {
            // Cancelled after it was woken: hand its result to the next getter.
            if (reserved_) {
                reserved_ = false;
                --s.reserved_;
                s.wake_getters();
            }
        });
    }
    if (reserved_) {
        reserved_ = false;
        --s.reserved_;
    }
    ++s.delivered_;
    if (s.head_ < s.queue_.size()) {
        return s.slot(s.queue_[s.head_++]).child;
    }
    return nullptr; // timed out: as_completed's dummy None
}

bool NextWaiter::cancel(const std::string&) noexcept {
    if (!is_linked()) {
        return false; // already woken: the cancellation is raised when it resumes
    }
    unlink();
    --call_->waiting_;
    return cancel_dequeued();
}

void NextWaiter::describe(std::string& out) const {
    const AsCompletedState& s = *call_;
    fmt::format_to(std::back_inserter(out),
                   "as_completed: {} of {} done",
                   s.size() - s.remaining_,
                   s.size());
    if (s.timed_out_) {
        out += " (timed out)";
    }
}

void NextWaiter::awaited(std::vector<const FutureBase*>& out) const {
    pending_children(*call_, out);
}

void AsCompletedState::wake_getters() noexcept {
    while (!getters_.empty()) {
        if (unreserved() > 0) {
            NextWaiter* g = getters_.pop_front();
            --waiting_;
            g->reserved_ = true;
            ++reserved_;
            g->task_->wake();
        } else if (timed_out_) {
            NextWaiter* g = getters_.pop_front();
            --waiting_;
            g->task_->wake();
        } else {
            break;
        }
    }
}

} // namespace coring::detail
