// SPDX-License-Identifier: MIT
// The machinery of wait() and wait_for(): the state of one wait() call, its awaiter and the
// awaiter of wait_for(). Users include <coring/wait.hpp>, which includes this header at its
// end; this header includes wait.hpp first (for ReturnWhen and WaitResult), so it also
// compiles on its own.
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/future.hpp>
#include <coring/task.hpp>
#include <coring/wait.hpp>

#include <coring/detail/child_watch.hpp>
#include <coring/detail/future_base.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/pointer_set.hpp>
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
    using H = std::remove_cvref_t<detail::range_reference_t<R>>;
    static_assert(!IsTask<H>::value,
                  "coring::wait takes TaskHandles or Futures: wrap coroutines with create_task "
                  "(asyncio 3.12 forbids coroutines too)");
    static_assert(WaitHandle<H>, "coring::wait takes a range of TaskHandles or Futures");
    std::vector<H> out;
    PointerSet seen;
    for (auto&& f : fs) {
        const FutureBase* base = f.base();
        if (base == nullptr) {
            throw ValueError("coring::wait: empty TaskHandle");
        }
        if (seen.insert(base)) {
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

} // namespace coring::detail
