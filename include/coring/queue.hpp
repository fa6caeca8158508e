// SPDX-License-Identifier: MIT
// Queue, LifoQueue, PriorityQueue: queues between tasks, with join() and Python 3.13's
// shutdown() (asyncio.queues).
#pragma once

#include <coring/errors.hpp>
#include <coring/event.hpp>

#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/queue_storage.hpp>
#include <coring/detail/sync_waiter.hpp>
#include <coring/detail/task_base.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

namespace coring {

template <class T, class Storage>
class BasicQueue;

namespace detail {

/// A queue's getter or putter: a SyncWaiter with a ticket that, woken for an item or a slot
/// another task took first, waits again at its turn instead of at the back.
class QueueWaiter : public SyncWaiter {
public:
    std::uint64_t seq_; // ticket: the order in which waiters began waiting (set on suspending)

protected:
    QueueWaiter() noexcept = default;
    ~QueueWaiter() = default;

    /// await_suspend's work: links this waiter at the back of list with ticket seq, to be woken
    /// through on_wake, and suspends the task.
    template <class Promise>
    void enqueue(std::coroutine_handle<Promise> h,
                 IntrusiveList<SyncWaiter>& list,
                 std::uint64_t seq,
                 ReadyEntry on_wake) noexcept {
        h_ = h;
        inner_ = &h.promise();
        seq_ = seq;
        on_wake_ = on_wake;
        list.push_back(*this);
        suspend_here(h);
    }

    /// From on_woken: back into list at this waiter's turn, the task suspended again.
    void wait_again(IntrusiveList<SyncWaiter>& list) noexcept {
        requeue_in_order(list, *this);
        state_ = WaitState::waiting;
        task_->suspend_on(h_, inner_, *this);
    }

private:
    std::coroutine_handle<> h_; // where the task resumes
    TaskBase* inner_;           // set with h_
};

} // namespace detail

/// Awaiter of a queue's get(). Lives in the awaiting frame and is the node of the queue's list
/// of getters: waiting allocates nothing. A non-empty queue gives an item without suspending.
///
/// As in asyncio, put_nowait() leaves the item in the queue and wakes the first getter, which
/// takes whatever comes first when its turn comes (the smallest item of a PriorityQueue, the
/// newest of a LifoQueue). If another task took the item before (get_nowait(), or a get() that
/// found the queue non-empty), the getter waits again, keeping its turn.
template <class Q>
class [[nodiscard]] QueueGetAwaiter final : public detail::QueueWaiter {
public:
    using value_type = typename Q::value_type;

    explicit QueueGetAwaiter(Q& queue) noexcept : q_(&queue) {}

    /// Moves an awaiter that has not been awaited yet (create_task(q.get())).
    QueueGetAwaiter(QueueGetAwaiter&& other) noexcept : q_(other.q_) {}

    QueueGetAwaiter(const QueueGetAwaiter&) = delete;
    QueueGetAwaiter& operator=(const QueueGetAwaiter&) = delete;

    /// Throws: QueueShutDown when the queue is shut down and empty.
    bool await_ready() const {
        if (!q_->empty()) {
            return true;
        }
        if (q_->shutdown_) {
            detail::throw_queue_shutdown();
        }
        return false;
    }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        task_ = task_of(h);
        q_->bind_loop(task_->loop(), "Queue");
        enqueue(h, q_->getters_, q_->next_seq_++, {&QueueGetAwaiter::on_woken, this});
    }

    /// Removes and returns the next item.
    /// Throws: QueueShutDown when the queue was shut down while empty; CancelledError when
    /// cancelled, in which case no item was taken.
    value_type await_resume() {
        if (state_ != detail::WaitState::ready) {
            resume_slow();
        }
        return q_->take();
    }

    bool cancel(const std::string&) noexcept override { return cancel_waiting(); }

    void describe(std::string& out) const override {
        out += "Queue get (";
        out += std::to_string(q_->qsize());
        out += " items)";
    }

private:
    void resume_slow() {
        // asyncio's Queue.get after `await getter`.
        end_wait([this] {
            // Woken for an item, then cancelled: leave the item to the next getter.
            if (!q_->empty()) {
                q_->wakeup_next(q_->getters_);
            }
        });
        if (q_->empty()) {
            throw QueueShutDown(); // on_woken resumes an empty-queue getter only after shutdown
        }
    }

    static void on_woken(void* self, bool discard) noexcept {
        if (discard) {
            return;
        }
        auto* w = static_cast<QueueGetAwaiter*>(self);
        Q& q = *w->q_;
        if (!w->task_->must_cancel() && q.empty() && !q.shutdown_) {
            // Someone took the item before this getter's turn came: wait again.
            w->wait_again(q.getters_);
            return;
        }
        detail::TaskBase::step_entry(w->task_, false); // resumes in await_resume
    }

    Q* q_;
};

/// Awaiter of a queue's put(). Holds the item in the awaiting frame until there is room, and is
/// the node of the queue's list of putters. A queue with room takes the item without suspending.
template <class Q>
class [[nodiscard]] QueuePutAwaiter final : public detail::QueueWaiter {
public:
    using value_type = typename Q::value_type;

    QueuePutAwaiter(Q& queue, value_type&& item) : q_(&queue), item_(std::move(item)) {}

    /// Moves an awaiter that has not been awaited yet (create_task(q.put(x))).
    QueuePutAwaiter(QueuePutAwaiter&& other) noexcept(
            std::is_nothrow_move_constructible_v<value_type>)
        : q_(other.q_), item_(std::move(other.item_)) {}

    QueuePutAwaiter(const QueuePutAwaiter&) = delete;
    QueuePutAwaiter& operator=(const QueuePutAwaiter&) = delete;

    /// Throws: QueueShutDown when the queue is shut down.
    bool await_ready() {
        if (q_->shutdown_) [[unlikely]] {
            detail::throw_queue_shutdown();
        }
        if (!q_->full()) {
            q_->push(std::move(item_));
            return true;
        }
        return false;
    }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        task_ = task_of(h);
        q_->bind_loop(task_->loop(), "Queue");
        enqueue(h, q_->putters_, q_->next_seq_++, {&QueuePutAwaiter::on_woken, this});
    }

    /// Throws: QueueShutDown when the queue was shut down while this task waited for room;
    /// CancelledError when cancelled, in which case the item was not added.
    void await_resume() {
        if (state_ != detail::WaitState::ready) {
            resume_slow();
        }
    }

    bool cancel(const std::string&) noexcept override { return cancel_waiting(); }

    void describe(std::string& out) const override {
        out += "Queue put (";
        out += std::to_string(q_->qsize());
        out += " of ";
        out += std::to_string(q_->maxsize());
        out += " items)";
    }

private:
    void resume_slow() {
        // asyncio's Queue.put after `await putter`.
        end_wait([this] {
            // Woken for a free slot, then cancelled: leave the slot to the next putter.
            if (!q_->full()) {
                q_->wakeup_next(q_->putters_);
            }
        });
        if (q_->shutdown_) {
            throw QueueShutDown();
        }
        q_->push(std::move(item_));
    }

    static void on_woken(void* self, bool discard) noexcept {
        if (discard) {
            return;
        }
        auto* w = static_cast<QueuePutAwaiter*>(self);
        Q& q = *w->q_;
        if (!w->task_->must_cancel() && q.full() && !q.shutdown_) {
            // Someone filled the free slot before this putter's turn came: wait again.
            w->wait_again(q.putters_);
            return;
        }
        detail::TaskBase::step_entry(w->task_, false); // resumes in await_resume
    }

    Q* q_;
    value_type item_;
};

/// The queue asyncio.Queue is, with the order of items left to Storage (FifoStorage,
/// LifoStorage or HeapStorage): Queue, LifoQueue and PriorityQueue are this class. T may be
/// move-only. Thread safety: loop thread only. A queue is bound to the first loop that waits on
/// it.
template <class T, class Storage>
class BasicQueue : private detail::LoopBound {
public:
    using value_type = T;

    /// A queue of at most maxsize items; maxsize <= 0 means unbounded (asyncio's default 0).
    explicit BasicQueue(std::ptrdiff_t maxsize = 0, Storage storage = Storage())
        : maxsize_(maxsize), items_(std::move(storage)) {
        finished_.set();
    }

    BasicQueue(const BasicQueue&) = delete;
    BasicQueue& operator=(const BasicQueue&) = delete;

    /// The number of items in the queue (Queue.qsize()).
    std::size_t qsize() const noexcept { return items_.size(); }

    /// The bound given to the constructor (Queue.maxsize).
    std::ptrdiff_t maxsize() const noexcept { return maxsize_; }

    /// Whether the queue holds no item (Queue.empty()).
    bool empty() const noexcept { return items_.empty(); }

    /// Whether the queue holds maxsize items; never for an unbounded queue (Queue.full()).
    bool full() const noexcept {
        return maxsize_ > 0 && items_.size() >= static_cast<std::size_t>(maxsize_);
    }

    /// Adds item, waiting for room if the queue is full (Queue.put()). Blocked putters are
    /// served in FIFO order.
    /// Throws: QueueShutDown when the queue is or gets shut down; RuntimeError when the queue
    /// is bound to another loop.
    /// Cancellation: throws CancelledError and the item is not added.
    [[nodiscard]] QueuePutAwaiter<BasicQueue> put(T item) {
        return QueuePutAwaiter<BasicQueue>(*this, std::move(item));
    }

    /// Removes and returns an item, waiting for one if the queue is empty (Queue.get()).
    /// Blocked getters are served in FIFO order.
    /// Throws: QueueShutDown when the queue is shut down and empty; RuntimeError when the queue
    /// is bound to another loop.
    /// Cancellation: throws CancelledError and no item is taken.
    [[nodiscard]] QueueGetAwaiter<BasicQueue> get() noexcept {
        return QueueGetAwaiter<BasicQueue>(*this);
    }

    /// Adds item without waiting (Queue.put_nowait()).
    /// Throws: QueueShutDown when shut down; QueueFull when full.
    void put_nowait(T item) {
        if (shutdown_) [[unlikely]] {
            detail::throw_queue_shutdown();
        }
        if (full()) [[unlikely]] {
            detail::throw_queue_full();
        }
        push(std::move(item));
    }

    /// Removes and returns an item without waiting (Queue.get_nowait()).
    /// Throws: QueueShutDown when empty and shut down; QueueEmpty when empty.
    T get_nowait() {
        if (empty()) [[unlikely]] {
            if (shutdown_) {
                detail::throw_queue_shutdown();
            }
            detail::throw_queue_empty();
        }
        return take();
    }

    /// Marks one item taken with get() as processed (Queue.task_done()); join() returns when
    /// every item put has been marked.
    /// Throws: ValueError("task_done() called too many times").
    void task_done() {
        if (unfinished_ == 0) [[unlikely]] {
            detail::throw_value_error("task_done() called too many times");
        }
        if (--unfinished_ == 0) {
            finished_.set();
        }
    }

    /// Waits until every item put has been processed (Queue.join()): task_done() was called
    /// once per item, or shutdown(true) dropped the rest. Returns at once when nothing is
    /// pending.
    /// Cancellation: throws CancelledError.
    [[nodiscard]] EventAwaiter join() noexcept { return finished_.wait(); }

    /// Shuts the queue down (Queue.shutdown(), Python 3.13): put() and put_nowait() throw
    /// QueueShutDown from now on, and get() and get_nowait() once the queue is empty. Every
    /// blocked putter and getter is woken to see this. With immediate, the items still queued
    /// are dropped, each counting as task_done() (which may release join()).
    void shutdown(bool immediate = false) {
        shutdown_ = true;
        if (immediate) {
            std::size_t dropped = items_.size();
            items_.clear();
            unfinished_ -= dropped < unfinished_ ? dropped : unfinished_;
            if (unfinished_ == 0) {
                finished_.set();
            }
        }
        while (detail::SyncWaiter* w = getters_.pop_front()) {
            w->wake();
        }
        while (detail::SyncWaiter* w = putters_.pop_front()) {
            w->wake();
        }
    }

private:
    friend class QueueGetAwaiter<BasicQueue>;
    friend class QueuePutAwaiter<BasicQueue>;

    /// Appends without checks and wakes the first getter (the second half of put_nowait()).
    void push(T&& item) {
        items_.push(std::move(item));
        ++unfinished_;
        finished_.clear();
        wakeup_next(getters_);
    }

    /// Removes the next item and wakes the first putter (the second half of get_nowait()).
    /// Precondition: !empty().
    T take() {
        T item = items_.pop();
        wakeup_next(putters_);
        return item;
    }

    /// asyncio's Queue._wakeup_next: wake the first waiter still waiting.
    static void wakeup_next(detail::IntrusiveList<detail::SyncWaiter>& waiters) {
        if (detail::SyncWaiter* w = waiters.pop_front()) {
            w->wake();
        }
    }

    std::ptrdiff_t maxsize_;
    Storage items_;
    std::size_t unfinished_ = 0;                        // items put and not task_done() yet
    Event finished_;                                    // set when unfinished_ is 0
    detail::IntrusiveList<detail::SyncWaiter> getters_; // only getters still waiting, by seq_
    detail::IntrusiveList<detail::SyncWaiter> putters_; // only putters still waiting, by seq_
    std::uint64_t next_seq_ = 0;                        // next waiter ticket
    bool shutdown_ = false;
};

/// A first-in, first-out queue (asyncio.Queue).
///
///     coring::Queue<std::string> jobs(10);  // at most 10 items
///     co_await jobs.put("a");               // producer
///     std::string job = co_await jobs.get(); // consumer
///     jobs.task_done();
///     co_await jobs.join();                 // all jobs processed
template <class T>
class Queue : public BasicQueue<T, detail::FifoStorage<T>> {
public:
    using BasicQueue<T, detail::FifoStorage<T>>::BasicQueue;
};

/// A last-in, first-out queue (asyncio.LifoQueue).
template <class T>
class LifoQueue : public BasicQueue<T, detail::LifoStorage<T>> {
public:
    using BasicQueue<T, detail::LifoStorage<T>>::BasicQueue;
};

/// A queue that yields its smallest item first under Compare (asyncio.PriorityQueue, whose
/// heapq compares with `<`; pass std::greater<T> to get the largest first). Items that compare
/// equal come out in no particular order, as with heapq.
template <class T, class Compare = std::less<T>>
class PriorityQueue : public BasicQueue<T, detail::HeapStorage<T, Compare>> {
    using Base = BasicQueue<T, detail::HeapStorage<T, Compare>>;

public:
    /// A queue of at most maxsize items (maxsize <= 0: unbounded), ordered by compare.
    explicit PriorityQueue(std::ptrdiff_t maxsize = 0, Compare compare = Compare())
        : Base(maxsize, detail::HeapStorage<T, Compare>(std::move(compare))) {}
};

} // namespace coring
