// SPDX-License-Identifier: MIT
// The state machine shared by Future and Task (asyncio.futures.Future): state, done callbacks,
// exception, and the Waiter interface through which cancellation reaches what a task awaits.
#pragma once

#include <coring/event_loop.hpp>

#include <coring/detail/frame_allocator.hpp>
#include <coring/detail/intrusive_list.hpp>

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

namespace coring {

/// Identifies a callback registered with add_done_callback, for remove_done_callback.
struct CallbackId {
    std::uint64_t token = 0;
};

} // namespace coring

namespace coring::detail {

class TaskBase;
class FutureBase;

/// What a suspended task waits on. Task::cancel() forwards to the task's current Waiter.
class Waiter {
public:
    Waiter() = default;
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;

    /// Asks the awaited thing to finish early, so the task resumes and sees CancelledError.
    /// Returns false when that is no longer possible (it already finished), as Future.cancel().
    virtual bool cancel(const std::string& msg) noexcept = 0;

    /// Appends what is awaited, for task dumps: "sleep 1.500 s", "Task 'fetch-3'", "recv fd 7".
    virtual void describe(std::string& out) const = 0;

    /// Appends the futures and tasks this waiter waits on, for task dumps that follow the chain
    /// from awaiter to awaited (coring::format_tasks). Waiting on nothing of the kind by default.
    virtual void awaited(std::vector<const FutureBase*>& out) const { static_cast<void>(out); }

protected:
    ~Waiter() = default;
};

/// An entry in a future's done-callback list: a coroutine awaiting it (lives in the awaiting
/// frame) or a callback from add_done_callback (heap-allocated, owned by the list). When the
/// future finishes every node becomes a ready entry, in registration order.
class DoneNode : public ListHook<> {
public:
    /// Runs the node (discard false) or only releases it (discard true: the loop is closing or
    /// the future died with the node still registered).
    using RunFn = void (*)(DoneNode*, bool discard) noexcept;

    explicit DoneNode(RunFn run, bool owned = false) noexcept : run_(run), owned_(owned) {}

    /// Ready-queue entry function for a scheduled node.
    static void entry(void* self, bool discard) noexcept {
        auto* node = static_cast<DoneNode*>(self);
        node->run_(node, discard);
    }

    RunFn run_;
    bool owned_;              // heap node owned by the list (add_done_callback)
    bool holds_ref_ = false;  // scheduled: holds a reference to its future until it runs
    std::uint64_t token_ = 0; // identifies an add_done_callback node for removal
};

/// asyncio.Future without the value: pending, finished (result or exception) or cancelled.
/// Reference counted; not thread-safe (loop thread only).
class FutureBase : public ListHook<LoopTag> {
public:
    enum class State : std::uint8_t { pending, finished, cancelled };

    FutureBase(const FutureBase&) = delete;
    FutureBase& operator=(const FutureBase&) = delete;

    bool done() const noexcept { return state_ != State::pending; }

    bool cancelled() const noexcept { return state_ == State::cancelled; }

    bool is_task() const noexcept { return is_task_; }

    /// The loop this future belongs to; nullptr once that loop has closed.
    EventLoop* loop() const noexcept { return loop_; }

    void add_ref() noexcept { ++refs_; }

    void release() noexcept {
        if (--refs_ == 0) {
            last_release();
        }
    }

    /// Future.cancel / Task.cancel.
    virtual bool cancel(const std::string& msg) = 0;

    /// Registers node; when the future is done already, schedules it at once (asyncio's
    /// add_done_callback on a done future schedules the callback with call_soon).
    void add_done_node(DoneNode& node);

    /// Removes a heap callback node by token; returns how many were removed (0 or 1).
    std::size_t remove_done_node(std::uint64_t token) noexcept;

    /// Rethrows a failure: CancelledError when cancelled, the stored exception when failed.
    /// Throws: InvalidStateError("Result is not set.") when pending.
    void check_result();

    /// Future.exception(): the stored exception or null.
    /// Throws: InvalidStateError("Exception is not set.") when pending, CancelledError when
    /// cancelled.
    std::exception_ptr get_exception();

    /// Sets the exception (Future.set_exception). Throws: InvalidStateError when done,
    /// RuntimeError when the loop is closed.
    void set_exception(std::exception_ptr e);

    /// A short name for reports: "Task 'name'" or "Future".
    virtual std::string describe() const;

    /// Called when the loop closes: forget it, drop what cannot run any more.
    virtual void detach_from_loop() noexcept;

protected:
    explicit FutureBase(bool is_task) noexcept
        : is_task_(is_task), log_traceback_(false), started_(false), must_cancel_(false),
          result_won_(false) {}

    virtual ~FutureBase();

    /// Frees the object (delete, or destroy the coroutine frame).
    virtual void destroy() noexcept = 0;

    void attach(EventLoop& loop) noexcept {
        loop_ = &loop;
        detail::LoopAccess::register_future(loop, *this);
    }

    /// Sets the state and schedules every done callback.
    void finish(State s) noexcept;

    /// Throws RuntimeError when the loop is gone (asyncio: 'Event loop is closed').
    void check_loop() const;

    /// Future.cancel() for plain futures.
    bool cancel_future(const std::string& msg);

    EventLoop* loop_ = nullptr;
    IntrusiveList<DoneNode> callbacks_;
    std::exception_ptr exception_; // the failure, or the CancelledError when cancelled
    std::uint32_t refs_ = 1;
    State state_ = State::pending;
    // One flag byte, filling the padding after state_:
    bool is_task_ : 1;       // a TaskBase
    bool log_traceback_ : 1; // failed and nobody has looked at the exception yet
    bool started_ : 1;       // task: the coroutine has begun (first step, or awaited inline)
    bool must_cancel_ : 1;   // task: a cancellation waits for the next suspension point
    bool result_won_ : 1;    // task: must_cancel_ came too late for an I/O result it received

private:
    void last_release() noexcept;
    void report_unretrieved() noexcept;
};

/// A heap node for add_done_callback(f): calls f(handle) with a handle of the future's type.
template <class Handle, class F>
class CallbackNode final : public DoneNode, public FrameAllocated {
public:
    CallbackNode(FutureBase& future, F f, std::uint64_t token)
        : DoneNode(&CallbackNode::run, true), future_(&future), fn_(std::move(f)) {
        token_ = token;
    }

private:
    static void run(DoneNode* node, bool discard) noexcept {
        auto* self = static_cast<CallbackNode*>(node);
        FutureBase* fut = self->future_;
        if (!discard) {
            try {
                self->fn_(Handle::from_base(*fut));
            } catch (...) {
                if (EventLoop* loop = fut->loop()) {
                    loop->call_exception_handler({"Exception in callback of " + fut->describe(),
                                                  std::current_exception(),
                                                  {},
                                                  {}});
                }
            }
        }
        bool held = self->holds_ref_;
        delete self;
        if (held) {
            fut->release();
        }
    }

    FutureBase* future_;
    F fn_;
};

/// Whether e holds a CancelledError (false for a null e).
bool is_cancelled_error(const std::exception_ptr& e) noexcept;

/// Next token for add_done_callback nodes.
std::uint64_t next_callback_token() noexcept;

} // namespace coring::detail
