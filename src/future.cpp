// SPDX-License-Identifier: MIT
// Futures (asyncio.futures): done callbacks, results and exceptions, cancellation, the
// unretrieved-exception report.
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/future.hpp>
#include <coring/log.hpp>

#include <coring/detail/future_base.hpp>
#include <coring/detail/task_base.hpp>

#include <fmt/format.h>

#include <atomic>

#include "task_internal.hpp"

namespace coring {

namespace detail {

bool is_cancelled_error(const std::exception_ptr& e) noexcept {
    if (!e) {
        return false;
    }
    try {
        std::rethrow_exception(e);
    } catch (const CancelledError&) {
        return true;
    } catch (...) {
        return false;
    }
}

std::uint64_t next_callback_token() noexcept {
    static std::atomic<std::uint64_t> counter{0};
    // relaxed: tokens only need to be unique.
    return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

// ---- FutureBase ----

FutureBase::~FutureBase() {
    // Heap callbacks die with the future; awaiter nodes in frames are only unlinked.
    while (DoneNode* node = callbacks_.pop_front()) {
        if (node->owned_) {
            node->run_(node, true);
        }
    }
}

void FutureBase::last_release() noexcept {
    if (is_task_ && state_ == State::pending && static_cast<TaskBase*>(this)->task_ == this) {
        ExceptionContext ctx{"Task was destroyed but it is pending!", nullptr, describe(), {}};
        auto* t = static_cast<TaskBase*>(this);
        ctx.source = source_of(*t);
        if (loop_ != nullptr) {
            loop_->call_exception_handler(ctx);
        } else {
            EventLoop::log_exception(ctx);
        }
    }
    if (log_traceback_) {
        report_unretrieved();
    }
    destroy();
}

void FutureBase::report_unretrieved() noexcept {
    ExceptionContext ctx;
    try {
        ctx.message = is_task_ ? "Task exception was never retrieved"
                               : "Future exception was never retrieved";
        ctx.exception = exception_;
        if (is_task_) {
            auto* t = static_cast<TaskBase*>(this);
            ctx.task = t->name();
            ctx.source = source_of(*t);
            t->describe_origin(ctx.source); // debug mode: its async stack and its creator's
        }
    } catch (...) {
        // out of memory while building the report: send what we have
    }
    if (loop_ != nullptr) {
        loop_->call_exception_handler(ctx);
    } else {
        EventLoop::log_exception(ctx);
    }
}

void FutureBase::add_done_node(DoneNode& node) {
    if (!done()) {
        callbacks_.push_back(node);
        return;
    }
    if (loop_ == nullptr) {
        if (node.owned_) {
            node.run_(&node, true);
        }
        return;
    }
    if (node.owned_) {
        add_ref();
        node.holds_ref_ = true;
    }
    detail::LoopAccess::schedule(*loop_, {&DoneNode::entry, &node});
}

std::size_t FutureBase::remove_done_node(std::uint64_t token) noexcept {
    std::size_t removed = 0;
    callbacks_.for_each([&](DoneNode& node) {
        if (node.owned_ && node.token_ == token) {
            node.unlink();
            node.run_(&node, true);
            ++removed;
        }
    });
    return removed;
}

void FutureBase::finish(State s) noexcept {
    state_ = s;
    // asyncio's __schedule_callbacks: every callback becomes a ready entry, in order.
    while (DoneNode* node = callbacks_.pop_front()) {
        if (loop_ == nullptr) {
            if (node->owned_) {
                node->run_(node, true);
            }
            continue;
        }
        if (node->owned_) {
            add_ref();
            node->holds_ref_ = true;
        }
        detail::LoopAccess::schedule(*loop_, {&DoneNode::entry, node});
    }
}

void FutureBase::check_loop() const {
    if (loop_ == nullptr) {
        throw RuntimeError("Event loop is closed");
    }
}

void FutureBase::check_result() {
    if (state_ == State::cancelled) {
        std::rethrow_exception(exception_);
    }
    if (state_ == State::pending) {
        throw InvalidStateError("Result is not set.");
    }
    log_traceback_ = false;
    if (exception_) {
        std::rethrow_exception(exception_);
    }
}

std::exception_ptr FutureBase::get_exception() {
    if (state_ == State::cancelled) {
        std::rethrow_exception(exception_);
    }
    if (state_ == State::pending) {
        throw InvalidStateError("Exception is not set.");
    }
    log_traceback_ = false;
    return exception_;
}

void FutureBase::set_exception(std::exception_ptr e) {
    check_loop();
    if (done()) {
        throw InvalidStateError(
                fmt::format("{}: {}", cancelled() ? "CANCELLED" : "FINISHED", describe()));
    }
    if (!e) {
        throw ValueError("set_exception: null exception_ptr");
    }
    exception_ = std::move(e);
    log_traceback_ = true;
    finish(State::finished);
}

bool FutureBase::cancel_future(const std::string& msg) {
    log_traceback_ = false;
    if (done()) {
        return false;
    }
    check_loop();
    exception_ = std::make_exception_ptr(CancelledError(msg));
    finish(State::cancelled);
    return true;
}

std::string FutureBase::describe() const {
    return "Future";
}

void FutureBase::detach_from_loop() noexcept {
    ListHook<LoopTag>::unlink();
    loop_ = nullptr;
}

} // namespace detail

} // namespace coring
