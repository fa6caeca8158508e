// SPDX-License-Identifier: MIT
// Future<T>: a value that will be set later (asyncio.futures.Future).
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>

#include <coring/detail/future_base.hpp>
#include <coring/detail/ref.hpp>
#include <coring/detail/result.hpp>
#include <coring/detail/task_base.hpp>

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

namespace coring {

template <class T = void>
class Future;

namespace detail {

template <class T>
class FutureState final : public FutureBase, public FrameAllocated {
public:
    explicit FutureState(EventLoop& loop) noexcept : FutureBase(false) { attach(loop); }

    bool cancel(const std::string& msg) override { return cancel_future(msg); }

    template <class... U>
    void set_result(U&&... v) {
        check_loop();
        if (done()) {
            throw InvalidStateError(state_name() + ": " + describe());
        }
        if constexpr (!std::is_void_v<T>) {
            result_.set(std::forward<U>(v)...);
        }
        finish(State::finished);
    }

    std::string state_name() const { return cancelled() ? "CANCELLED" : "FINISHED"; }

    ResultStorage<T> result_;

private:
    ~FutureState() override = default;

    void destroy() noexcept override { delete this; }
};

} // namespace detail

/// A result that some code sets later and coroutines await (asyncio.Future). Copies refer to
/// the same future. Awaiting an lvalue yields T&, an rvalue T moved out; a cancelled future
/// raises CancelledError in its awaiters, and cancelling a task that awaits a future cancels the
/// future. Thread safety: loop thread only (from other threads use call_soon_threadsafe).
///
///     coring::Future<int> f;                      // on the running loop
///     loop.call_later(10ms, [f] { f.set_result(7); });
///     int v = co_await f;
template <class T>
class Future {
public:
    using value_type = T;

    /// A pending future on the running loop. Throws: RuntimeError when no loop is running.
    Future() : Future(get_running_loop()) {}

    /// A pending future on loop.
    explicit Future(EventLoop& loop) : s_(detail::adopt_ref, new detail::FutureState<T>(loop)) {}

    bool done() const noexcept { return s_->done(); }

    bool cancelled() const noexcept { return s_->cancelled(); }

    /// The value (T&), or rethrows the exception.
    /// Throws: CancelledError when cancelled; InvalidStateError("Result is not set.") when
    /// pending.
    decltype(auto) result() const {
        s_->check_result();
        if constexpr (!std::is_void_v<T>) {
            return s_->result_.get();
        }
    }

    /// The exception, or null when a value was set.
    /// Throws: CancelledError when cancelled; InvalidStateError when pending.
    std::exception_ptr exception() const { return s_->get_exception(); }

    /// Marks the future done with a value and schedules its callbacks and awaiters.
    /// Throws: InvalidStateError when already done; RuntimeError when the loop is closed.
    template <class... U>
    void set_result(U&&... value) const
            requires(std::is_void_v<T> ? sizeof...(U) == 0 : sizeof...(U) == 1) {
        s_->set_result(std::forward<U>(value)...);
    }

    /// Marks the future done with an exception.
    /// Throws: InvalidStateError when already done; RuntimeError when the loop is closed.
    void set_exception(std::exception_ptr e) const { s_->set_exception(std::move(e)); }

    /// Cancels the future; returns false if it was already done.
    bool cancel(const std::string& msg = {}) const { return s_->cancel(msg); }

    /// Calls f(Future<T>) on a later iteration once the future is done.
    template <class F>
    CallbackId add_done_callback(F f) const {
        if (s_->loop() == nullptr) {
            throw RuntimeError("Event loop is closed");
        }
        std::uint64_t token = detail::next_callback_token();
        auto* node = new detail::CallbackNode<Future, F>(*s_, std::move(f), token);
        s_->add_done_node(*node);
        return CallbackId{token};
    }

    /// Removes a callback not yet scheduled; returns how many were removed.
    std::size_t remove_done_callback(CallbackId id) const noexcept {
        return s_->remove_done_node(id.token);
    }

    /// The loop of this future. Throws: RuntimeError when that loop has closed.
    EventLoop& get_loop() const {
        if (s_->loop() == nullptr) {
            throw RuntimeError("Event loop is closed");
        }
        return *s_->loop();
    }

    friend bool operator==(const Future& a, const Future& b) noexcept { return a.s_ == b.s_; }

    auto operator co_await() const& noexcept { return Awaiter<false>(*s_); }

    auto operator co_await() && noexcept { return Awaiter<true>(*s_); }

    /// The future's state, for coring's own layers.
    detail::FutureBase* base() const noexcept { return s_.get(); }

    static Future from_base(detail::FutureBase& base) noexcept {
        auto* s = static_cast<detail::FutureState<T>*>(&base);
        s->add_ref();
        return Future(s);
    }

private:
    explicit Future(detail::FutureState<T>* s) noexcept : s_(detail::adopt_ref, s) {}

    template <bool Move>
    class Awaiter final : public detail::DoneAwaiter {
    public:
        explicit Awaiter(detail::FutureState<T>& s) noexcept : DoneAwaiter(s) {}

        decltype(auto) await_resume() {
            after_resume();
            auto& s = static_cast<detail::FutureState<T>&>(*future_);
            s.check_result();
            if constexpr (std::is_void_v<T>) {
                return;
            } else if constexpr (Move && !std::is_reference_v<T>) {
                return T(std::move(s.result_.get()));
            } else {
                return static_cast<T&>(s.result_.get());
            }
        }
    };

    detail::Ref<detail::FutureState<T>> s_;
};

} // namespace coring
