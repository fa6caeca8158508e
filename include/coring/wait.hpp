// SPDX-License-Identifier: MIT
// wait(), wait_for() and as_completed(): waiting on several tasks, or on one with a deadline
// (asyncio.wait, asyncio.wait_for, asyncio.as_completed).
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/future.hpp>
#include <coring/task.hpp>

#include <coring/detail/child_watch.hpp>
#include <coring/detail/future_base.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/task_base.hpp>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

namespace coring {

/// When wait() returns (asyncio's return_when constants).
enum class ReturnWhen : std::uint8_t {
    /// As soon as any task finishes or is cancelled.
    first_completed,
    /// As soon as any task finishes by raising an exception (a cancellation does not count), or
    /// when all are done.
    first_exception,
    /// When all tasks are done.
    all_completed,
};

/// asyncio.FIRST_COMPLETED.
inline constexpr auto FIRST_COMPLETED = ReturnWhen::first_completed;
/// asyncio.FIRST_EXCEPTION.
inline constexpr auto FIRST_EXCEPTION = ReturnWhen::first_exception;
/// asyncio.ALL_COMPLETED.
inline constexpr auto ALL_COMPLETED = ReturnWhen::all_completed;

/// What wait() yields: the tasks that are done and those still pending, each in the order they
/// were given (asyncio returns two sets). Use with structured bindings:
/// `auto [done, pending] = co_await coring::wait(tasks);`
template <class H>
struct WaitResult {
    std::vector<H> done;
    std::vector<H> pending;
};

namespace detail {

/// Describes a timeout for task dumps: "2.000 s".
void append_seconds(std::string& out, EventLoop::duration d);

// ---- wait ----

/// State of one wait() call (asyncio's _wait: its waiter future and _on_completion callback).
/// The Waiter of the awaiting task: cancelling that task cancels the wait, not the tasks.
class WaitOperation final : public ChildWatch, public Waiter, public TrailingSlots<WaitOperation> {
public:
    WaitOperation(ReturnWhen return_when, std::optional<EventLoop::duration> timeout) noexcept
        : return_when_(return_when), timeout_(timeout) {}

    void set_task(TaskBase* task) noexcept { task_ = task; }

    /// The timeout passed: release the waiter (asyncio's _release_waiter).
    void on_timeout() noexcept {
        if (!released_) {
            release_waiter();
        }
    }

    bool cancelled() const noexcept { return cancelled_; }

    /// Cancelling the awaiting task cancels the wait (its waiter future), not the tasks.
    bool cancel(const std::string& msg) noexcept override;

    /// "wait FIRST_COMPLETED: 1 of 3 done, timeout 1.000 s".
    void describe(std::string& out) const override;

    void awaited(std::vector<const FutureBase*>& out) const override;

private:
    friend class TrailingSlots<WaitOperation>;

    void set_trailing(ChildSlot* slots, std::size_t n) noexcept {
        set_slots(slots, n);
        counter_ = n;
    }

    void destroy() noexcept override { destroy_trailing(size()); }

    /// _wait's _on_completion.
    void on_child_done(ChildSlot& s) noexcept override {
        if (released_) {
            return;
        }
        --counter_;
        FutureBase& f = *s.child;
        if (counter_ == 0 || return_when_ == ReturnWhen::first_completed ||
            (return_when_ == ReturnWhen::first_exception && !f.cancelled() && child_exception(f))) {
            release_waiter();
        }
    }

    void release_waiter() noexcept {
        released_ = true;
        if (task_ != nullptr) {
            task_->wake();
        }
    }

    TaskBase* task_ = nullptr; // the awaiting task, while suspended
    std::size_t counter_ = 0;  // children not finished yet
    ReturnWhen return_when_;
    std::optional<EventLoop::duration> timeout_;
    bool released_ = false;  // the awaiting task was woken (condition met, timeout or cancel)
    bool cancelled_ = false; // released by cancel()
};

/// What `co_await wait(...)` uses. H is TaskHandle<T> or Future<T>.
template <class H>
class [[nodiscard]] WaitAwaiter {
public:
    WaitAwaiter(std::vector<H> fs,
                std::optional<EventLoop::duration> timeout,
                ReturnWhen return_when) noexcept
        : fs_(std::move(fs)), timeout_(timeout), return_when_(return_when) {}

    WaitAwaiter(WaitAwaiter&& other) noexcept
        : fs_(std::move(other.fs_)), timeout_(other.timeout_), return_when_(other.return_when_),
          state_(std::exchange(other.state_, nullptr)) {}

    WaitAwaiter& operator=(WaitAwaiter&&) = delete;

    ~WaitAwaiter() { drop_state(); }

    bool await_ready() const noexcept { return false; }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        static_assert(std::is_base_of_v<TaskBase, Promise>,
                      "coring::wait must be awaited from a coring::Task coroutine");
        TaskBase* task = h.promise().task_;
        task_ = task;
        WaitOperation* s = WaitOperation::create(fs_.size(), return_when_, timeout_);
        state_ = s;
        s->set_task(task);
        try {
            for (std::size_t i = 0; i < fs_.size(); ++i) {
                s->watch(i, *fs_[i].base());
            }
            if (timeout_) {
                timer_ = task->loop()->call_later(*timeout_, [s] { s->on_timeout(); });
            }
        } catch (...) {
            drop_state();
            throw;
        }
        task->suspend_on(h, &h.promise(), *s);
    }

    WaitResult<H> await_resume() {
        bool cancelled = state_->cancelled();
        drop_state(); // asyncio's finally: cancel the timeout, remove the callbacks
        if (cancelled) {
            task_->throw_cancelled();
        }
        task_->throw_if_cancel_pending();
        WaitResult<H> out;
        for (H& f : fs_) {
            (f.done() ? out.done : out.pending).push_back(std::move(f));
        }
        return out;
    }

private:
    void drop_state() noexcept {
        timer_.cancel();
        if (WaitOperation* s = std::exchange(state_, nullptr)) {
            s->set_task(nullptr);
            s->unwatch_all();
            s->release();
        }
    }

    std::vector<H> fs_;
    std::optional<EventLoop::duration> timeout_;
    ReturnWhen return_when_;
    WaitOperation* state_ = nullptr;
    TaskBase* task_ = nullptr;
    Handle timer_;
};

template <class H>
concept WaitHandle = IsTaskHandle<H>::value || IsFuture<H>::value;

/// Copies the handles of a range, dropping duplicates (asyncio: fs = set(fs)).
template <class R>
auto unique_handles(R&& fs) {
    using H = std::remove_cvref_t<std::ranges::range_reference_t<R>>;
    static_assert(!IsTask<H>::value,
                  "coring::wait takes TaskHandles or Futures: wrap coroutines with create_task "
                  "(asyncio 3.12 forbids coroutines too)");
    static_assert(WaitHandle<H>, "coring::wait takes a range of TaskHandles or Futures");
    std::vector<H> out;
    std::unordered_set<const FutureBase*> seen;
    for (auto&& f : fs) {
        const FutureBase* base = f.base();
        if (base == nullptr) {
            throw ValueError("coring::wait: empty TaskHandle");
        }
        if (seen.insert(base).second) {
            out.push_back(f);
        }
    }
    return out;
}

// ---- wait_for ----

/// Appends "wait_for 2.000 s on Task 'x' (expired)" for task dumps.
void describe_wait_for(std::string& out,
                       const FutureBase& inner,
                       std::optional<EventLoop::duration> timeout,
                       bool expired);

/// What `co_await wait_for(...)` uses: awaits the inner task or future like DoneAwaiter (the
/// inner one's end steps the awaiting task directly), with a timer that cancels it.
template <class H, bool Move>
class [[nodiscard]] WaitForAwaiter final : public DoneAwaiter {
    using T = typename H::value_type;

public:
    WaitForAwaiter(H inner, std::optional<EventLoop::duration> timeout) noexcept
        : DoneAwaiter(*inner.base()), inner_(std::move(inner)), timeout_(timeout) {}

    WaitForAwaiter(WaitForAwaiter&& other) noexcept
        : DoneAwaiter(*other.future_), inner_(std::move(other.inner_)), timeout_(other.timeout_) {}

    WaitForAwaiter& operator=(WaitForAwaiter&&) = delete;

    ~WaitForAwaiter() { timer_.cancel(); }

    /// A finished inner task or future is returned at once (asyncio: fut.result()).
    bool await_ready() const noexcept { return future_->done(); }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        DoneAwaiter::await_suspend(h); // may call cancel() at once if a cancel is pending
        if (timeout_ && !expired_) {
            if (timeout_->count() <= 0) {
                expire(); // asyncio: a timeout <= 0 cancels at once, then waits
            } else {
                timer_ = h.promise().task_->loop()->call_later(*timeout_, [this] { expire(); });
            }
        }
    }

    /// Cancelling the awaiting task cancels the inner one; wait_for then raises CancelledError
    /// (not TimeoutError) once the inner one has finished, unless it returned a value anyway.
    bool cancel(const std::string& msg) noexcept override {
        outer_cancelled_ = true;
        return DoneAwaiter::cancel(msg);
    }

    void describe(std::string& out) const override {
        describe_wait_for(out, *future_, timeout_, expired_);
    }

    decltype(auto) await_resume() {
        timer_.cancel();
        after_resume();
        if (future_->cancelled() && expired_ && !outer_cancelled_) {
            throw TimeoutError();
        }
        future_->check_result();
        return awaited_result<T, Move>(*future_);
    }

private:
    /// The deadline passed: cancel the inner task and keep waiting for it to really finish
    /// (asyncio 3.12: the timeout cancels the awaiting task, which cancels what it awaits).
    void expire() noexcept {
        if (!future_->done()) {
            expired_ = true;
            try {
                future_->cancel({});
            } catch (...) {
                // a closed loop: the inner task cannot finish any more
            }
        }
    }

    H inner_;
    std::optional<EventLoop::duration> timeout_;
    Handle timer_;
    bool expired_ = false;         // the deadline passed before the inner one finished
    bool outer_cancelled_ = false; // the awaiting task was cancelled
};

// ---- as_completed ----

class AsCompletedState;

/// One coroutine waiting for the next completion (a getter of as_completed's done queue).
class NextWaiter : public ListHook<>, public Waiter {
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

    /// Queues this getter; the task resumes when a child finishes or the timeout passes.
    void suspend(TaskBase* task) noexcept;

    /// After resuming: the finished child, or null when the timeout passed.
    FutureBase* take();

    AsCompletedState* state_;

private:
    friend class AsCompletedState;

    TaskBase* task_ = nullptr; // the waiting task, once suspended
    bool cancelled_ = false;   // the waiting task was cancelled while queued
    bool reserved_ = false;    // woken for a result that nobody else may take
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

} // namespace detail

/// What as_completed() returns: size() awaitables, each yielding the next result in completion
/// order. Iterate it, or call next() size() times. Copies share the same state.
template <class T, bool Move>
class AsCompleted {
public:
    /// One `co_await` of it yields the next result in completion order (T, T& or void), or
    /// rethrows that child's exception (CancelledError when it was cancelled).
    /// Throws: TimeoutError once the timeout has passed and no finished result is left;
    /// InvalidStateError when awaited more than size() times in all.
    /// Cancellation: the waiting coroutine gets CancelledError; the children are untouched.
    class [[nodiscard]] Awaiter final : public detail::NextWaiter {
    public:
        explicit Awaiter(detail::AsCompletedState* state) noexcept : NextWaiter(state) {}

        Awaiter(Awaiter&&) noexcept = default;

        bool await_ready() const { return ready(); }

        template <class Promise>
        void await_suspend(std::coroutine_handle<Promise> h) {
            static_assert(std::is_base_of_v<detail::TaskBase, Promise>,
                          "coring::as_completed must be awaited from a coring::Task coroutine");
            detail::TaskBase* task = h.promise().task_;
            suspend(task);
            task->suspend_on(h, &h.promise(), *this);
        }

        decltype(auto) await_resume() {
            detail::FutureBase* f = take();
            if (f == nullptr) {
                throw TimeoutError();
            }
            f->check_result(); // rethrows; marks the exception retrieved
            if constexpr (std::is_void_v<T>) {
                return;
            } else {
                return detail::take_value<T, Move, T>(*f);
            }
        }
    };

    /// Input iterator over the awaitables.
    class iterator {
    public:
        using value_type = Awaiter;
        using difference_type = std::ptrdiff_t;

        iterator() noexcept = default;

        Awaiter operator*() const noexcept { return Awaiter(state_); }

        iterator& operator++() noexcept {
            ++i_;
            return *this;
        }

        void operator++(int) noexcept { ++i_; }

        friend bool operator==(const iterator& a, const iterator& b) noexcept {
            return a.i_ == b.i_;
        }

    private:
        friend class AsCompleted;

        iterator(detail::AsCompletedState* state, std::size_t i) noexcept : state_(state), i_(i) {}

        detail::AsCompletedState* state_ = nullptr;
        std::size_t i_ = 0;
    };

    explicit AsCompleted(detail::AsCompletedState* state) noexcept : state_(state) {}

    AsCompleted(const AsCompleted& other) noexcept : state_(other.state_) {
        if (state_ != nullptr) {
            state_->add_ref();
        }
    }

    AsCompleted& operator=(AsCompleted other) noexcept {
        std::swap(state_, other.state_);
        return *this;
    }

    ~AsCompleted() {
        if (state_ != nullptr) {
            state_->release();
        }
    }

    /// How many results it yields: the number of distinct awaitables given.
    std::size_t size() const noexcept { return state_ != nullptr ? state_->size() : 0; }

    /// The next result in completion order (see Awaiter).
    [[nodiscard]] Awaiter next() const noexcept { return Awaiter(state_); }

    iterator begin() const noexcept { return iterator(state_, 0); }

    iterator end() const noexcept { return iterator(state_, size()); }

private:
    detail::AsCompletedState* state_;
};

/// Waits for the tasks or futures of a range (TaskHandles or Futures; duplicates count once)
/// until return_when is met or the timeout passes, and yields {done, pending} (asyncio.wait).
/// It never raises the tasks' exceptions and never cancels them, not even on timeout.
///
///     auto [done, pending] = co_await coring::wait(tasks, 5s, coring::FIRST_COMPLETED);
///
/// Throws: ValueError for an empty range ("Set of Tasks/Futures is empty.").
/// Cancellation: the awaiting coroutine gets CancelledError; the tasks keep running.
template <std::ranges::input_range R>
[[nodiscard]] auto wait(R&& fs,
                        std::optional<EventLoop::duration> timeout = std::nullopt,
                        ReturnWhen return_when = ALL_COMPLETED) {
    if (return_when != FIRST_COMPLETED && return_when != FIRST_EXCEPTION &&
        return_when != ALL_COMPLETED) {
        throw ValueError("Invalid return_when value");
    }
    auto handles = detail::unique_handles(std::forward<R>(fs));
    if (handles.empty()) {
        throw ValueError("Set of Tasks/Futures is empty.");
    }
    using H = typename decltype(handles)::value_type;
    return detail::WaitAwaiter<H>(std::move(handles), timeout, return_when);
}

/// wait() without a timeout.
template <std::ranges::input_range R>
[[nodiscard]] auto wait(R&& fs, ReturnWhen return_when) {
    return wait(std::forward<R>(fs), std::nullopt, return_when);
}

/// wait() with a timeout of any std::chrono duration (rounded up to nanoseconds).
template <std::ranges::input_range R, class Rep, class Period>
[[nodiscard]] auto
wait(R&& fs, std::chrono::duration<Rep, Period> timeout, ReturnWhen return_when = ALL_COMPLETED) {
    return wait(std::forward<R>(fs), detail::to_timeout(timeout), return_when);
}

/// Waits for aw with a deadline (asyncio.wait_for). A coroutine or other awaitable is wrapped in
/// a task at once; a TaskHandle or Future is awaited as it is. When the timeout passes, the inner
/// task is cancelled, wait_for waits until it has really finished, then raises TimeoutError; if
/// it finished anyway (it returned a value or raised something else), that outcome wins, as in
/// asyncio 3.12. A timeout <= 0 cancels at once unless aw is already done. std::nullopt waits
/// forever. Yields what awaiting the inner task yields: T& for an lvalue TaskHandle or Future,
/// T otherwise.
///
///     std::string page = co_await coring::wait_for(fetch(url), 2s);
///
/// Throws: TimeoutError; the inner task's exception.
/// Cancellation: cancelling the awaiting task cancels the inner one and raises CancelledError
/// once it has finished (never TimeoutError).
template <class A>
[[nodiscard]] auto
wait_for(A&& aw, std::optional<EventLoop::duration> timeout) requires detail::ChildArgument<A> {
    using H = detail::inner_handle_t<A>;
    return detail::WaitForAwaiter<H, detail::ChildTraits<A>::movable>(
            detail::make_inner(std::forward<A>(aw)), timeout);
}

/// wait_for with a timeout of any std::chrono duration (rounded up to nanoseconds).
template <class A, class Rep, class Period>
[[nodiscard]] auto
wait_for(A&& aw, std::chrono::duration<Rep, Period> timeout) requires detail::ChildArgument<A> {
    return wait_for(std::forward<A>(aw), detail::to_timeout(timeout));
}

/// Yields the results of the awaitables in the order they finish (asyncio.as_completed).
/// Coroutines and other awaitables become tasks at once; duplicate handles count once. The
/// returned object is a range of size() awaitables:
///
///     for (auto next : coring::as_completed(std::move(jobs), 10s)) {
///         int r = co_await next;   // the earliest result not yet taken
///     }
///
/// Throws (from each co_await): the child's exception; TimeoutError for every result still
/// missing once the timeout has passed (the children are not cancelled).
template <std::ranges::input_range R>
[[nodiscard]] auto as_completed(R&& aws,
                                std::optional<EventLoop::duration> timeout = std::nullopt) requires
        detail::ChildArgument<std::ranges::range_reference_t<R>> {
    using Elem = detail::element_arg_t<R>;
    using Tr = detail::ChildTraits<Elem>;
    static_assert(detail::range_gives_tasks_v<R>,
                  "as_completed takes ownership of a range of Tasks: pass std::move(tasks)");
    EventLoop& loop = get_running_loop();
    std::vector<detail::FutureBase*> children;
    std::unordered_set<detail::FutureBase*> seen;
    for (auto&& element : aws) {
        detail::FutureBase* f = nullptr;
        if constexpr (std::is_lvalue_reference_v<Elem>) {
            f = &detail::child_future(element);
        } else {
            f = &detail::child_future(std::move(element));
        }
        if (!Tr::is_handle || seen.insert(f).second) {
            children.push_back(f);
        }
    }
    auto* s = detail::AsCompletedState::create(children.size(), loop);
    try {
        for (std::size_t i = 0; i < children.size(); ++i) {
            s->watch(i, *children[i]);
        }
        if (timeout && !children.empty()) {
            s->start_timer(*timeout);
        }
    } catch (...) {
        s->unwatch_all();
        s->release();
        throw;
    }
    return AsCompleted<typename Tr::result_type, Tr::movable>(s);
}

/// as_completed with a timeout of any std::chrono duration (rounded up to nanoseconds).
template <std::ranges::input_range R, class Rep, class Period>
[[nodiscard]] auto as_completed(R&& aws, std::chrono::duration<Rep, Period> timeout) requires
        detail::ChildArgument<std::ranges::range_reference_t<R>> {
    return as_completed(std::forward<R>(aws), detail::to_timeout(timeout));
}

} // namespace coring
