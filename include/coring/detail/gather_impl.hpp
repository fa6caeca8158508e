// SPDX-License-Identifier: MIT
// The machinery of gather(): the state of one call (the children's slots, the first failure,
// the awaiting task) in its tuple and range forms, and the awaiters that yield the results.
// Users include <coring/gather.hpp>, which includes this header before its API.
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/task.hpp>

#include <coring/detail/child_watch.hpp>
#include <coring/detail/frame_allocator.hpp>
#include <coring/detail/future_base.hpp>
#include <coring/detail/range.hpp>
#include <coring/detail/task_base.hpp>

#include <array>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <iterator>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace coring {

template <class T>
class Outcome; // defined in gather.hpp, after this header

} // namespace coring

namespace coring::detail {

/// Whether e holds an E (or something derived from E).
template <class E>
bool exception_holds(const std::exception_ptr& e) noexcept {
    if (!e) {
        return false;
    }
    try {
        std::rethrow_exception(e);
    } catch (const E&) {
        return true;
    } catch (...) {
        return false;
    }
}

/// What every Outcome<T> shares: the exception it may hold, and the API that asks about it.
class OutcomeBase {
public:
    /// Whether the child returned a value.
    bool has_value() const noexcept { return !exception_; }

    explicit operator bool() const noexcept { return has_value(); }

    /// Whether the child ended with an exception (CancelledError included).
    bool has_exception() const noexcept { return static_cast<bool>(exception_); }

    /// Whether the child was cancelled (its exception is a CancelledError).
    bool cancelled() const noexcept { return holds<CancelledError>(); }

    /// Whether the exception is an E (or derives from E).
    template <class E>
    bool holds() const noexcept {
        return exception_holds<E>(exception_);
    }

    /// The exception, or null when the child returned a value.
    const std::exception_ptr& exception() const noexcept { return exception_; }

    /// Rethrows the exception, if there is one.
    void rethrow_if_failed() const {
        if (exception_) {
            std::rethrow_exception(exception_);
        }
    }

protected:
    /// An outcome holding a value.
    OutcomeBase() noexcept = default;

    /// An outcome holding an exception. Throws: ValueError when e is null.
    explicit OutcomeBase(std::exception_ptr e) : exception_(std::move(e)) {
        if (!exception_) {
            throw ValueError("Outcome: null exception_ptr");
        }
    }

    std::exception_ptr exception_;
};

/// State of one gather call (asyncio's _GatheringFuture and its _done_callback): the children's
/// slots, the first failure, and the task awaiting it. It is the Waiter the awaiting task is
/// suspended on, so cancelling that task cancels every child still running.
class GatherState : public ChildWatch, public Waiter {
public:
    bool completed() const noexcept { return completed_; }

    /// Registers task as the one awaiting this gather.
    void set_waiter(TaskBase* task) noexcept { task_ = task; }

    /// After the awaiter resumed: rethrows the failure, if any (the first exception, a
    /// cancelled child's CancelledError, or CancelledError when the gather was cancelled).
    void rethrow_if_failed() {
        if (error_) {
            std::rethrow_exception(error_);
        }
    }

    /// The awaiter is gone before the gather completed: stop watching the children (they keep
    /// running, and report their own unretrieved exceptions).
    void abandon() noexcept {
        task_ = nullptr;
        abandoned_ = true;
        unwatch_all();
    }

    /// _GatheringFuture.cancel: cancels every child; the gather raises CancelledError once
    /// they are done if any child could be cancelled. Returns false when no child could be.
    bool cancel(const std::string& msg) noexcept override;

    /// "gather of 3 (1 done)".
    void describe(std::string& out) const override;

    void awaited(std::vector<const FutureBase*>& out) const override;

protected:
    explicit GatherState(bool return_exceptions) noexcept : return_exceptions_(return_exceptions) {}

    ~GatherState() override = default;

    /// gather's _done_callback.
    void on_child_done(ChildSlot& s) noexcept override {
        ++finished_;
        FutureBase& child = *s.child;
        if (completed_ || abandoned_) {
            // gather already raised (or its awaiter is gone): asyncio marks the exceptions of
            // the other children retrieved, since the first one was reported.
            if (completed_ && !child.cancelled()) {
                static_cast<void>(child_exception(child));
            }
            drop_child(s);
            return;
        }
        std::exception_ptr e = child_exception(child);
        if (e && !return_exceptions_) {
            drop_child(s);
            fail(std::move(e));
            return;
        }
        collect(s, e);
        if (finished_ == size() && !completed_) {
            if (cancel_requested_) {
                // The gather was cancelled but its children swallowed the cancellation: it
                // raises CancelledError regardless of return_exceptions (bpo-32684).
                try {
                    error_ = std::make_exception_ptr(CancelledError(cancel_message_));
                } catch (...) {
                    error_ = std::current_exception();
                }
            }
            complete();
        }
    }

    /// A child finished and its outcome is wanted; e is its exception or null. The tuple form
    /// keeps the child and reads it when the awaiter resumes; the range form moves the outcome
    /// out now, while the child's frame is still in cache, and lets the child go.
    virtual void collect(ChildSlot& s, const std::exception_ptr& e) noexcept = 0;

    /// Completes the gather with e (the first exception).
    void fail(std::exception_ptr e) noexcept {
        error_ = std::move(e);
        complete();
    }

private:
    void complete() noexcept {
        completed_ = true;
        if (task_ != nullptr) {
            task_->wake(); // asyncio: outer.set_result schedules the awaiter's wake-up
        }
    }

    TaskBase* task_ = nullptr; // the task awaiting the gather, while suspended on it
    std::exception_ptr error_; // what the gather raises, or null
    std::string cancel_message_;
    std::size_t finished_ = 0; // children whose node has run
    bool return_exceptions_;
    bool completed_ = false;        // outcome known; the awaiter was (or will be) woken
    bool cancel_requested_ = false; // cancel() reached at least one child
    bool abandoned_ = false;        // the awaiter went away before completion
};

/// The state of gather(a, b, ...): N slots inline.
template <std::size_t N>
class GatherTupleState final : public GatherState, public FrameAllocated {
public:
    explicit GatherTupleState(bool return_exceptions) noexcept : GatherState(return_exceptions) {
        set_slots(slots_.data(), N);
    }

private:
    void collect(ChildSlot&, const std::exception_ptr&) noexcept override {}

    void destroy() noexcept override { delete this; }

    std::array<ChildSlot, N> slots_;
};

/// The state of gather(range) over children whose result type is T: the slots, then each
/// child's outcome as it finishes (V: the value, or Outcome<T> with return_exceptions), all in
/// the same allocation.
template <class T, bool Move, bool Exceptions>
class GatherRangeState final
    : public GatherState,
      public TrailingSlots<
              GatherRangeState<T, Move, Exceptions>,
              std::optional<std::conditional_t<Exceptions, Outcome<T>, child_element_t<T>>>> {
public:
    using value_type = std::conditional_t<Exceptions, Outcome<T>, child_element_t<T>>;

    GatherRangeState() noexcept : GatherState(Exceptions) {}

    /// The outcome of child i; set for every child once the gather succeeded.
    std::optional<value_type>& value(std::size_t i) noexcept { return values_[i]; }

private:
    friend class TrailingSlots<GatherRangeState, std::optional<value_type>>;

    void set_trailing(ChildSlot* slots, std::optional<value_type>* values, std::size_t n) noexcept {
        set_slots(slots, n);
        values_ = values;
    }

    void collect(ChildSlot& s, const std::exception_ptr& e) noexcept override {
        std::optional<value_type>& out = values_[index_of(s)];
        FutureBase& f = *s.child;
        try {
            if constexpr (Exceptions) {
                if (e) {
                    out.emplace(e);
                } else if constexpr (std::is_void_v<T>) {
                    out.emplace(std::in_place);
                } else {
                    out.emplace(std::in_place, take_value<T, Move, T>(f));
                }
            } else {
                out.emplace(take_value<T, Move, value_type>(f));
            }
        } catch (...) {
            drop_child(s);
            fail(std::current_exception()); // copying or moving the value threw
            return;
        }
        drop_child(s);
    }

    void destroy() noexcept override { this->destroy_trailing(size()); }

    std::optional<value_type>* values_ = nullptr;
};

/// Shared part of the gather awaiters: owns one reference to the state.
class GatherAwaiterBase {
public:
    GatherAwaiterBase(GatherAwaiterBase&& other) noexcept
        : state_(std::exchange(other.state_, nullptr)), consumed_(other.consumed_) {}

    GatherAwaiterBase& operator=(GatherAwaiterBase&&) = delete;

    ~GatherAwaiterBase() {
        if (state_ != nullptr) {
            if (!state_->completed()) {
                state_->abandon();
            }
            state_->release();
        }
    }

    bool await_ready() const noexcept { return state_ == nullptr || state_->completed(); }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        static_assert(std::is_base_of_v<TaskBase, Promise>,
                      "coring::gather must be awaited from a coring::Task coroutine");
        TaskBase* task = h.promise().task_;
        task_ = task;
        state_->set_waiter(task);
        task->suspend_on(h, &h.promise(), *state_);
    }

protected:
    explicit GatherAwaiterBase(GatherState* state) noexcept : state_(state) {}

    /// Common part of await_resume: a cancellation that arrived after the outcome was known
    /// wins (asyncio's __step with _must_cancel), then the gather's own failure. Returns null
    /// for a gather of nothing.
    GatherState* resume() {
        if (consumed_) {
            throw InvalidStateError("coring::gather: awaited twice");
        }
        consumed_ = true;
        if (state_ == nullptr) {
            return nullptr;
        }
        if (task_ != nullptr) {
            state_->set_waiter(nullptr);
            task_->throw_if_cancel_pending();
        }
        state_->rethrow_if_failed();
        return state_;
    }

    /// Registers every argument; on failure stops watching the ones registered so far.
    template <class... A>
    static void watch_all(GatherState& s, A&&... args) {
        std::size_t i = 0;
        try {
            (s.watch(i++, child_future(std::forward<A>(args))), ...);
        } catch (...) {
            s.abandon();
            s.release();
            throw;
        }
    }

    GatherState* state_;       // null for a gather of nothing
    TaskBase* task_ = nullptr; // the awaiting task, once suspended
    bool consumed_ = false;    // await_resume ran: the results were taken
};

/// What `co_await gather(a, b, ...)` uses: yields std::tuple of the children's values (or
/// Outcomes when Exceptions), in argument order.
template <bool Exceptions, class... A>
class [[nodiscard]] GatherAwaiter final : public GatherAwaiterBase {
public:
    using result_type =
            std::conditional_t<Exceptions,
                               std::tuple<Outcome<typename ChildTraits<A>::result_type>...>,
                               std::tuple<child_value_t<typename ChildTraits<A>::result_type>...>>;

    explicit GatherAwaiter(A&&... args) : GatherAwaiterBase(make(std::forward<A>(args)...)) {}

    GatherAwaiter(GatherAwaiter&&) noexcept = default;

    result_type await_resume() {
        GatherState* s = resume();
        if constexpr (sizeof...(A) == 0) {
            return {};
        } else {
            if (s == nullptr) {
                throw InvalidStateError("coring::gather: no state"); // unreachable: N > 0
            }
            return [&]<std::size_t... I>(std::index_sequence<I...>) {
                return result_type(take<I, A>(*s)...);
            }
            (std::index_sequence_for<A...>{});
        }
    }

private:
    static GatherState* make(A&&... args) {
        if constexpr (sizeof...(A) == 0) {
            return nullptr;
        } else {
            auto* s = new GatherTupleState<sizeof...(A)>(Exceptions);
            watch_all(*s, std::forward<A>(args)...);
            return s;
        }
    }

    template <std::size_t I, class Arg>
    static decltype(auto) take(GatherState& s) {
        using Tr = ChildTraits<Arg>;
        using T = typename Tr::result_type;
        FutureBase& f = *s.slot(I).child;
        if constexpr (Exceptions) {
            if (std::exception_ptr e = child_exception(f)) {
                return Outcome<T>(std::move(e));
            }
            if constexpr (std::is_void_v<T>) {
                return Outcome<T>(std::in_place);
            } else {
                return Outcome<T>(std::in_place, take_value<T, Tr::movable, T>(f));
            }
        } else {
            return take_value<T, Tr::movable, child_value_t<T>>(f);
        }
    }
};

/// What `co_await gather(range)` uses: yields std::vector of the children's values (or Outcomes
/// when Exceptions), in range order. Elem is the range's element type as the range is given.
template <bool Exceptions, class Elem>
class [[nodiscard]] GatherRangeAwaiter final : public GatherAwaiterBase {
    using Tr = ChildTraits<Elem>;
    using T = typename Tr::result_type;
    using State = GatherRangeState<T, Tr::movable, Exceptions>;

public:
    using value_type = typename State::value_type;
    using result_type = std::vector<value_type>;

    template <class R>
    explicit GatherRangeAwaiter(R&& range) : GatherAwaiterBase(make(std::forward<R>(range))) {}

    GatherRangeAwaiter(GatherRangeAwaiter&&) noexcept = default;

    result_type await_resume() {
        auto* s = static_cast<State*>(resume());
        result_type out;
        if (s == nullptr) {
            return out;
        }
        out.reserve(s->size());
        for (std::size_t i = 0; i < s->size(); ++i) {
            out.push_back(std::move(*s->value(i)));
        }
        return out;
    }

private:
    template <class R>
    static GatherState* make(R&& range) {
        std::size_t n = 0;
        if constexpr (detail::SizedRange<R>) {
            n = static_cast<std::size_t>(std::ranges::size(range));
        } else {
            n = static_cast<std::size_t>(std::ranges::distance(range));
        }
        if (n == 0) {
            return nullptr;
        }
        State* s = State::create(n);
        std::size_t i = 0;
        try {
            for (auto&& element : range) {
                if constexpr (std::is_lvalue_reference_v<Elem>) {
                    s->watch(i++, child_future(element));
                } else {
                    s->watch(i++, child_future(std::move(element)));
                }
            }
        } catch (...) {
            s->abandon();
            s->release();
            throw;
        }
        return s;
    }
};

} // namespace coring::detail
