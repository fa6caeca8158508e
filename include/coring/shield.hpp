// SPDX-License-Identifier: MIT
// shield(): await something without letting a cancellation reach it (asyncio.shield).
#pragma once

#include <coring/errors.hpp>
#include <coring/future.hpp>
#include <coring/task.hpp>

#include <coring/detail/child_watch.hpp>
#include <coring/detail/future_base.hpp>
#include <coring/detail/task_base.hpp>

#include <coroutine>
#include <string>
#include <type_traits>
#include <utility>

namespace coring {

namespace detail {

/// Appends "shield of Task 'x'" for task dumps.
void describe_shield(std::string& out, const FutureBase& inner);

/// What `co_await shield(...)` uses: awaits the inner task or future like DoneAwaiter, but a
/// cancellation of the awaiting task only detaches it (asyncio's outer future is cancelled, the
/// inner one is not).
template <class H, bool Move>
class [[nodiscard]] ShieldAwaiter final : public DoneAwaiter {
    using T = typename H::value_type;

public:
    explicit ShieldAwaiter(H inner) noexcept
        : DoneAwaiter(*inner.base()), inner_(std::move(inner)) {}

    ShieldAwaiter(ShieldAwaiter&& other) noexcept
        : DoneAwaiter(*other.future_), inner_(std::move(other.inner_)) {}

    ShieldAwaiter& operator=(ShieldAwaiter&&) = delete;

    /// A finished inner task is returned at once (asyncio: shield returns it as it is).
    bool await_ready() const noexcept { return future_->done(); }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        outer_ = h.promise().task_;
        DoneAwaiter::await_suspend(h);
    }

    /// Detaches from the inner task and wakes the awaiting one with CancelledError. Returns false
    /// when the inner one has finished already (its outcome is on the way; the cancellation is
    /// then raised at the awaiting task's next suspension point, as in asyncio).
    bool cancel(const std::string&) noexcept override {
        if (!is_linked()) {
            return false;
        }
        unlink();
        cancelled_ = true;
        outer_->wake();
        return true;
    }

    void describe(std::string& out) const override { describe_shield(out, *future_); }

    decltype(auto) await_resume() {
        if (cancelled_) {
            outer_->throw_cancelled();
        }
        if (outer_ != nullptr && outer_->must_cancel() && !future_->cancelled()) {
            // The outer side is being cancelled: asyncio still marks the inner exception
            // retrieved, since the shield saw it.
            static_cast<void>(child_exception(*future_));
        }
        after_resume();
        future_->check_result();
        return awaited_result<T, Move>(*future_);
    }

private:
    H inner_;
    TaskBase* outer_ = nullptr; // the awaiting task, once suspended
    bool cancelled_ = false;    // the awaiting task was cancelled and detached
};

} // namespace detail

/// Awaits aw, protecting it from cancellation (asyncio.shield): a coroutine or other awaitable
/// is wrapped in a task at once; a TaskHandle or Future is used as it is. If the awaiting task is
/// cancelled, it gets CancelledError right away while the inner task keeps running (keep a
/// handle to it to get its result later). Yields what awaiting the inner task yields: T& for an
/// lvalue handle, T otherwise. Cancelling the inner task itself still cancels the shield.
///
///     auto saved = coring::create_task(save(record));
///     co_await coring::shield(saved);   // a cancel here does not interrupt the save
///
/// Throws: the inner task's exception (CancelledError if it was cancelled).
/// Cancellation: CancelledError in the awaiting task only.
template <class A>
[[nodiscard]] auto shield(A&& aw) requires detail::ChildArgument<A> {
    using H = detail::inner_handle_t<A>;
    return detail::ShieldAwaiter<H, detail::ChildTraits<A>::movable>(
            detail::make_inner(std::forward<A>(aw)));
}

} // namespace coring
