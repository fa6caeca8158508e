// SPDX-License-Identifier: MIT
// The machinery of as_completed(): the state one call shares between its awaitables, and
// the waiter each awaitable is. Users include <coring/wait.hpp>, which includes this header
// before AsCompleted, the public type built on it.
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/future.hpp>
#include <coring/task.hpp>

#include <coring/detail/child_watch.hpp>
#include <coring/detail/future_base.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/queued_waiter.hpp>
#include <coring/detail/range.hpp>
#include <coring/detail/task_base.hpp>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace coring::detail {

class AsCompletedState;

/// One coroutine waiting for the next completion (a getter of as_completed's done queue).
class NextWaiter : public ListHook<>, public QueuedWaiter {
public:
    NextWaiter& operator=(const NextWaiter&) = delete;

    bool cancel(const std::string& msg) noexcept override;

    /// "as_completed: 1 of 3 done".
    void describe(std::string& out) const override;

    void awaited(std::vector<const FutureBase*>& out) const override;

protected:
    explicit NextWaiter(AsCompletedState* state) noexcept;

    NextWaiter(NextWaiter&& other) noexcept;

    virtual ~NextWaiter();

    /// Whether a result (or the timeout) is available without suspending.
    /// Throws: InvalidStateError when every result was awaited already.
    bool ready() const;

    /// Queues this getter; task_ resumes when a child finishes or the timeout passes.
    void suspend() noexcept;

    /// After resuming: the finished child, or null when the timeout passed.
    FutureBase* take();

    AsCompletedState* call_; // the as_completed() call this getter belongs to

private:
    friend class AsCompletedState;

    bool reserved_ = false; // woken for a result that nobody else may take
};

/// State of one as_completed() call: the children's slots, the queue of finished ones (by
/// index, in completion order), the queued getters and the timeout.
class AsCompletedState final : public ChildWatch, public TrailingSlots<AsCompletedState> {
public:
    explicit AsCompletedState(EventLoop& loop) noexcept : loop_(&loop) {}

    /// Starts the timer (as_completed's call_later(timeout, _on_timeout)).
    void start_timer(EventLoop::duration timeout) {
        timer_ = loop_->call_later(timeout, [this] { on_timeout(); });
    }

private:
    friend class TrailingSlots<AsCompletedState>;
    friend class NextWaiter;

    ~AsCompletedState() override { timer_.cancel(); }

    void set_trailing(ChildSlot* slots, std::size_t n) noexcept {
        set_slots(slots, n);
        remaining_ = n;
        queue_.reserve(n);
    }

    void destroy() noexcept override { destroy_trailing(size()); }

    /// as_completed's _on_completion.
    void on_child_done(ChildSlot& s) noexcept override {
        if (timed_out_) {
            return;
        }
        --remaining_;
        queue_.push_back(static_cast<std::uint32_t>(index_of(s))); // capacity reserved
        if (remaining_ == 0) {
            timer_.cancel();
        }
        wake_getters();
    }

    /// as_completed's _on_timeout: stop watching; every result still missing becomes a
    /// TimeoutError, after the results that arrived before.
    void on_timeout() noexcept {
        if (remaining_ == 0) {
            return;
        }
        timed_out_ = true;
        remaining_ = 0;
        unwatch_all();
        wake_getters();
    }

    std::size_t unreserved() const noexcept { return queue_.size() - head_ - reserved_; }

    /// Wakes queued getters for what is available (asyncio.Queue's _wakeup_next).
    void wake_getters() noexcept;

    EventLoop* loop_;
    IntrusiveList<NextWaiter> getters_; // suspended getters, FIFO
    std::vector<std::uint32_t> queue_;  // finished children, completion order
    std::size_t head_ = 0;              // next index of queue_ to hand out
    std::size_t reserved_ = 0;          // queued results promised to woken getters
    std::size_t waiting_ = 0;           // getters in getters_
    std::size_t delivered_ = 0;         // results (or TimeoutErrors) handed out
    std::size_t remaining_ = 0;         // children not finished (0 once timed out)
    Handle timer_;
    bool timed_out_ = false;
};

} // namespace coring::detail
