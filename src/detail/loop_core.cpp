// SPDX-License-Identifier: MIT
// What the loop queues (detail/loop_core.hpp): a callback's HandleState, and the cross-thread door
// ThreadsafeQueue (call_soon_threadsafe's eventfd path).
#include <coring/event_loop.hpp>

#include <coring/detail/sys.hpp>

#include <fmt/format.h>

#include <unistd.h>

#include <memory>
#include <mutex>
#include <vector>

#include "diagnostics.hpp"
#include "loop_debug.hpp"

namespace coring::detail {

// ---- HandleState ----

void HandleState::run_entry(void* self, bool discard) noexcept {
    auto* s = static_cast<HandleState*>(self);
    if (!discard && !s->cancelled_) {
        EventLoop& loop = *s->loop_;
        if (loop.instrumented_) [[unlikely]] {
            run_instrumented(*s);
            s->release();
            return;
        }
        try {
            s->invoke();
        } catch (...) {
            loop.call_exception_handler(
                    {fmt::format("Exception in callback {}", detail::demangle(*s->callback_type_)),
                     std::current_exception(),
                     {},
                     {}});
        }
    }
    s->release();
}

void HandleState::run_instrumented(HandleState& s) noexcept {
    // run_entry with debug mode's slow-callback report and the debugging tools' hooks.
    EventLoop& loop = *s.loop_;
    bool debug = loop.debug_;
    auto t0 = debug ? EventLoop::clock::now() : EventLoop::time_point{};
    if (LoopDebug* dbg = loop.dbg_) {
        dbg->callback_begin(*s.callback_type_);
    }
    try {
        s.invoke();
    } catch (...) {
        loop.call_exception_handler(
                {fmt::format("Exception in callback {}", detail::demangle(*s.callback_type_)),
                 std::current_exception(),
                 {},
                 {}});
    }
    if (LoopDebug* dbg = loop.dbg_) {
        dbg->callback_end();
    }
    if (debug) {
        auto took = EventLoop::clock::now() - t0;
        if (took >= loop.slow_callback_duration_) {
            detail::LoopAccess::report_slow_callback(
                    loop, fmt::format("<Handle {}>", detail::demangle(*s.callback_type_)), took);
        }
    }
}

void HandleState::fire_timer(TimerNode* node, bool discard) noexcept {
    auto* s = static_cast<HandleState*>(node);
    if (discard) {
        s->release();
        return;
    }
    // The heap's reference moves to the ready queue.
    detail::LoopAccess::schedule(*s->loop_, {&HandleState::run_entry, s});
}

// ---- ThreadsafeQueue ----

struct ThreadsafeQueue::Guarded {
    std::mutex mutex;
    std::vector<HandleState*> queue; // guarded by mutex
    bool wake_pending = false;       // guarded by mutex: an eventfd write is outstanding
    bool closed = false;             // guarded by mutex
};

ThreadsafeQueue::ThreadsafeQueue(EventLoop* loop, int wake_fd)
    : loop_(loop), wake_fd_(wake_fd), g_(std::make_unique<Guarded>()) {
}

ThreadsafeQueue::~ThreadsafeQueue() {
    for (HandleState* s : g_->queue) {
        s->release();
    }
    if (wake_fd_ >= 0) {
        sys.close(wake_fd_);
    }
}

void ThreadsafeQueue::push(HandleState* s) {
    EventLoop* from = EventLoop::running();
    if (from != nullptr && from != loop_ && msg_fd_.load(std::memory_order_relaxed) >= 0 &&
        detail::LoopAccess::send_message(*from, shared_from_this(), s)) {
        return;
    }
    push_queued(s);
}

void ThreadsafeQueue::open_messages(int ring_fd) noexcept {
    msg_fd_.store(ring_fd, std::memory_order_seq_cst);
}

void ThreadsafeQueue::stop_messages() noexcept {
    msg_fd_.store(-1, std::memory_order_seq_cst);
}

void ThreadsafeQueue::push_queued(HandleState* s) {
    std::lock_guard lock(g_->mutex);
    if (g_->closed) {
        throw RuntimeError("Event loop is closed");
    }
    s->add_ref(); // the queue's reference
    g_->queue.push_back(s);
    if (!g_->wake_pending) {
        g_->wake_pending = true;
        std::uint64_t one = 1;
        // The eventfd counter cannot overflow here, so write() never blocks or fails partially.
        [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
    }
}

std::vector<HandleState*> ThreadsafeQueue::take() {
    std::vector<HandleState*> batch;
    std::lock_guard lock(g_->mutex);
    batch.swap(g_->queue);
    g_->wake_pending = false;
    return batch;
}

std::vector<HandleState*> ThreadsafeQueue::close() {
    std::vector<HandleState*> batch;
    std::lock_guard lock(g_->mutex);
    g_->closed = true;
    batch.swap(g_->queue);
    if (wake_fd_ >= 0) {
        sys.close(wake_fd_);
        wake_fd_ = -1;
    }
    return batch;
}

} // namespace coring::detail
