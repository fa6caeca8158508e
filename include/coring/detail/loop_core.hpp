// SPDX-License-Identifier: MIT
// The event loop's state (EventLoop derives from LoopCore privately) and the types it queues:
// callbacks (HandleState), flushes, loop resources, the cross-thread door (ThreadsafeQueue).
// Internal: coring's layers reach the loop through detail::LoopAccess (loop_access.hpp).
#pragma once

#include <coring/detail/deadline.hpp>
#include <coring/detail/frame_allocator.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/ref.hpp>
#include <coring/detail/ring.hpp>
#include <coring/detail/timer_heap.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <typeinfo>
#include <utility>
#include <vector>

namespace coring {

class EventLoop;
class Executor;

namespace detail {

class FutureBase;
class LoopDebug;
class Readiness;
class TaskBase;

struct LoopTag {};

/// Shared state of a Handle: the callback, its cancelled flag, its timer when it has one.
/// Reference counted: one reference per Handle, one while the loop has it queued.
class HandleState : public FrameAllocated, public TimerNode {
public:
    HandleState(const HandleState&) = delete;
    HandleState& operator=(const HandleState&) = delete;

    void add_ref() noexcept {
        // relaxed: taking another reference needs no ordering; we already hold one.
        refs_.fetch_add(1, std::memory_order_relaxed);
    }

    void release() noexcept {
        // acq_rel: the last owner must see every write made through other references before
        // it destroys the callback.
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            delete this;
        }
    }

    bool cancelled() const noexcept { return cancelled_; }

    /// Ready-queue entry function: runs the callback unless cancelled, then drops the queue's
    /// reference. With discard set (the loop is closing) it only drops the reference.
    static void run_entry(void* self, bool discard) noexcept;

    /// Timer fire function: moves the handle from the timer heap to the ready queue.
    static void fire_timer(TimerNode* node, bool discard) noexcept;

    /// run_entry's path in debug mode or with a debugging tool on.
    static void run_instrumented(HandleState& s) noexcept;

    EventLoop* loop_;
    std::int64_t when_ns_ = 0;
    const std::type_info* callback_type_;
    bool cancelled_ = false;

protected:
    HandleState(EventLoop* loop, const std::type_info& type) noexcept
        : TimerNode(&HandleState::fire_timer), loop_(loop), callback_type_(&type) {}

    virtual ~HandleState() = default;

    virtual void invoke() = 0;

private:
    std::atomic<std::uint32_t> refs_{1};
};

template <class F>
class CallbackHandleState final : public HandleState {
public:
    template <class G>
    CallbackHandleState(EventLoop* loop, G&& g)
        : HandleState(loop, typeid(F)), callback_(std::forward<G>(g)) {}

private:
    void invoke() override { callback_(); }

    F callback_;
};

template <class F, class... Args>
auto bind_callback(F&& f, Args&&... args) {
    if constexpr (sizeof...(Args) == 0) {
        return std::forward<F>(f);
    } else {
        return [fn = std::forward<F>(f),
                tup = std::make_tuple(std::forward<Args>(args)...)]() mutable {
            std::apply(fn, tup);
        };
    }
}

struct ResourceTag {};

struct FlushTag {};

/// Work to run just before the loop next enters the kernel (EventLoop::defer_flush): a stream
/// writer turns the bytes written during one iteration into one send this way.
class FlushNode : public ListHook<FlushTag> {
public:
    using FlushFn = void (*)(FlushNode*) noexcept;

    explicit FlushNode(FlushFn fn) noexcept : flush_(fn) {}

    FlushFn flush_;
};

/// Loop-thread state held on behalf of work running on other threads (an executor call's
/// Future). The loop tells each one to let go when it closes, on the loop thread, so a worker
/// that finishes later touches nothing of the loop's.
class LoopResource : public ListHook<ResourceTag> {
public:
    LoopResource() = default;
    LoopResource(const LoopResource&) = delete;
    LoopResource& operator=(const LoopResource&) = delete;

    /// Called on the loop thread by EventLoop::close(); the resource is unlinked already.
    virtual void on_loop_close() noexcept = 0;

protected:
    ~LoopResource() = default;
};

struct MessageSend;
struct MessageBatch;

/// The cross-thread door of a loop (call_soon_threadsafe). Shared with every thread that posts
/// to the loop, so a worker may still post after the loop is gone and simply be refused.
/// A post made on another loop's thread travels as a CQE that the sender's ring posts straight
/// into this loop's ring (IORING_OP_MSG_RING) while this loop accepts such messages; else, or
/// when the kernel refuses, it is queued here and the loop woken through its eventfd.
/// Thread safety: every member is safe from any thread.
class ThreadsafeQueue : public std::enable_shared_from_this<ThreadsafeQueue> {
public:
    ThreadsafeQueue(EventLoop* loop, int wake_fd);

    ThreadsafeQueue(const ThreadsafeQueue&) = delete;
    ThreadsafeQueue& operator=(const ThreadsafeQueue&) = delete;

    /// Releases whatever was never run.
    ~ThreadsafeQueue();

    /// Schedules f() on the loop from any thread.
    /// Throws: RuntimeError("Event loop is closed") once the loop has closed.
    template <class F>
    void call_soon(F&& f) {
        auto* s = new CallbackHandleState<std::decay_t<F>>(loop_, std::forward<F>(f));
        try {
            push(s);
        } catch (...) {
            s->release();
            throw;
        }
        s->release(); // push took its own reference
    }

    /// Queues s (taking a reference) and wakes the loop: by IORING_OP_MSG_RING from another
    /// loop's thread when possible, else through the queue and the eventfd (push_queued).
    /// Throws: RuntimeError when the loop has closed; s is untouched then.
    void push(HandleState* s);

    /// The eventfd path of push.
    void push_queued(HandleState* s);

    /// Loop thread: from now on other loops may post into ring_fd with IORING_OP_MSG_RING.
    void open_messages(int ring_fd) noexcept;

    /// Loop thread, at close: refuses further IORING_OP_MSG_RING posts; those already started
    /// are counted by senders() until their sender has seen them complete.
    void stop_messages() noexcept;

    /// Number of IORING_OP_MSG_RING posts to this loop started and not yet complete.
    int senders() const noexcept { return msg_senders_.load(std::memory_order_acquire); }

    /// Loop thread: takes every queued handle (each with one reference) and re-allows a wake-up.
    std::vector<HandleState*> take();

    /// Loop thread: refuses further posts and closes the eventfd; returns what was queued.
    std::vector<HandleState*> close();

    int wake_fd() const noexcept { return wake_fd_; }

private:
    friend class coring::EventLoop;
    friend struct MessageSend;

    // The mutex and the state it guards, in event_loop.cpp: this header does without <mutex>.
    struct Guarded;

    // IORING_OP_MSG_RING gate: a sender counts itself in msg_senders_, then reads msg_fd_; the
    // closing loop sets msg_fd_ to -1, then waits for msg_senders_ to reach 0 (both seq_cst:
    // either the sender sees -1 or the loop sees the sender).
    std::atomic<int> msg_fd_{-1};
    std::atomic<int> msg_senders_{0};
    EventLoop* loop_;
    int wake_fd_; // guarded by the mutex after construction
    std::unique_ptr<Guarded> g_;
};

/// The data members of an EventLoop, apart from its API: the ring, the ready queue, the timers,
/// what close() must release, the cross-thread door and the debugging state. EventLoop's own
/// code uses them directly; other layers go through LoopAccess.
class LoopCore {
protected:
    LoopCore(const RingOptions& ring_options, bool debug) : ring_(ring_options), debug_(debug) {}

    Ring ring_;
    ReadyQueue ready_;
    TimerHeap timers_;
    IntrusiveList<FutureBase, LoopTag> live_;
    IntrusiveList<LoopResource, ResourceTag> resources_;
    IntrusiveList<FlushNode, FlushTag> flushes_;
    TaskBase* current_task_ = nullptr;
    std::chrono::nanoseconds slow_callback_duration_ = std::chrono::milliseconds(100);
    std::int64_t virtual_offset_ns_ = 0; // >= 0; only ever grows (advance_time_ns)
    std::uint64_t iterations_ = 0;
    unsigned long thread_ = 0; // pthread_self() of the thread that ran it last (no <thread>)
    bool running_ = false;
    bool stopping_ = false;
    bool closed_ = false;
    bool debug_ = false;
    bool watchdog_chosen_ = false; // set_watchdog or CORING_WATCHDOG: debug mode leaves it alone
    bool watchdog_auto_ = false;   // the watchdog debug mode started is on
    bool virtual_time_ = false;
    bool instrumented_ = false; // debug_ || dbg_ (update_instrumented)
    LoopDebug* dbg_ = nullptr;  // debugging tools (loop_debug.cpp), null while all off

    // call_soon_threadsafe: other threads append to the shared queue and write the eventfd; a
    // read on the eventfd stays in flight in the ring while the loop runs.
    std::shared_ptr<ThreadsafeQueue> threadsafe_;
    std::uint64_t background_io_ = 0; // see count_background_io
    std::uint64_t wake_buf_ = 0;

    // IORING_OP_MSG_RING posts from this loop (see send_message).
    bool msg_ring_ok_ = false;
    std::uint64_t msg_in_flight_ = 0; // sent, completion not reaped yet
    std::uint64_t messages_sent_ = 0;
    std::uint64_t messages_refused_ = 0;
    std::uint64_t messages_received_ = 0;
    std::string name_;

    // Posts to other loops made during this pass, one batch per target (few targets: a vector).
    struct Outbox {
        std::shared_ptr<ThreadsafeQueue> target;
        int fd;
        MessageBatch* batch;
    };

    struct BatchFlush : FlushNode {
        using FlushNode::FlushNode;
        EventLoop* loop = nullptr;
    };

    std::vector<Outbox> outboxes_;
    BatchFlush batch_flush_{nullptr}; // its function is set by EventLoop's constructor

    // add_reader/add_writer registrations (readiness.cpp): created on first use, so a loop that
    // never watches an fd pays nothing; a loop resource, released by close().
    Readiness* readiness_ = nullptr;

    // The default executor (executor.hpp), created on first use, shut down when the loop
    // closes.
    std::shared_ptr<Executor> default_executor_;
    bool executor_shutdown_called_ = false;
};

} // namespace detail
} // namespace coring
