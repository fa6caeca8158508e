// SPDX-License-Identifier: MIT
// Executors and thread hand-offs: run_in_executor, to_thread, run_coroutine_threadsafe
// (asyncio.base_events.run_in_executor, asyncio.threads, asyncio.tasks, concurrent.futures).
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/future.hpp>
#include <coring/task.hpp>

#include <coring/detail/await_temporary.hpp>
#include <coring/detail/deadline.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

// The machinery of run_in_executor and run_coroutine_threadsafe (the state each call shares
// between the loop and another thread), which the definitions below use.
#include <coring/detail/executor_impl.hpp>

namespace coring {

/// A unit of work for an Executor: a move-only callable taking no arguments.
class Work {
public:
    Work() noexcept = default;

    template <class F>

    requires(!std::is_same_v<std::decay_t<F>, Work> && std::is_invocable_v<std::decay_t<F>&>)
            Work(F&& f)
        : impl_(std::make_unique<Impl<std::decay_t<F>>>(std::forward<F>(f))) {}

    Work(Work&&) noexcept = default;
    Work& operator=(Work&&) noexcept = default;

    /// Runs the work. Precondition: not empty.
    void operator()() { impl_->run(); }

    explicit operator bool() const noexcept { return impl_ != nullptr; }

private:
    struct Base {
        virtual ~Base() = default;
        virtual void run() = 0;
    };

    template <class F>
    struct Impl final : Base {
        explicit Impl(F&& f) : fn(std::move(f)) {}

        explicit Impl(const F& f) : fn(f) {}

        void run() override { fn(); }

        F fn;
    };

    std::unique_ptr<Base> impl_;
};

/// Runs work on other threads (concurrent.futures.Executor). Implement it to bring your own
/// pool to run_in_executor.
/// Thread safety: submit() and shutdown() may be called from any thread.
class Executor {
public:
    Executor() = default;
    Executor(const Executor&) = delete;
    Executor& operator=(const Executor&) = delete;
    virtual ~Executor() = default;

    /// Queues work to run on some thread. Throws: RuntimeError after shutdown().
    virtual void submit(Work work) = 0;

    /// Refuses new work; with wait, returns once all queued work has run and the threads ended.
    virtual void shutdown(bool wait = true) = 0;
};

/// A pool of threads created on demand, up to max_workers (concurrent.futures.
/// ThreadPoolExecutor). Idle threads are reused before new ones start.
class ThreadPoolExecutor final : public Executor {
public:
    /// max_workers 0 means min(32, hardware threads + 4), as Python's default.
    explicit ThreadPoolExecutor(std::size_t max_workers = 0, std::string thread_name_prefix = {});

    /// Shuts down and joins the threads.
    ~ThreadPoolExecutor() override;

    void submit(Work work) override;

    void shutdown(bool wait = true) override;

    std::size_t max_workers() const noexcept { return max_workers_; }

    /// Threads started so far.
    std::size_t thread_count() const;

private:
    void worker_main(std::size_t index);

    // The threads, the queue and their mutex, in executor.cpp: this header does without
    // <thread>, <mutex> and <condition_variable>.
    struct State;

    std::size_t max_workers_;
    std::string prefix_;
    std::unique_ptr<State> s_;
};

/// Runs fn(args...) on executor (the loop's default ThreadPoolExecutor when null) and returns a
/// Future of its result on this loop (asyncio's loop.run_in_executor). Exceptions thrown by fn
/// come back through the future. Declared in event_loop.hpp, which cannot include this header.
/// Cancellation: cancelling the future (or the task awaiting it) stops work that has not
/// started; work already running finishes and its result is dropped.
/// Throws: RuntimeError("Event loop is closed") on a closed loop; RuntimeError when the default
/// executor was shut down.
template <class F, class... Args>
auto EventLoop::run_in_executor(Executor* executor, F&& fn, Args&&... args) {
    using R = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;
    static_assert(!detail::unsafe_await_closure<F>, CORING_AWAIT_CLOSURE_MESSAGE);
    check_closed();
    EventLoop& loop = *this;
    Executor& ex = executor != nullptr ? *executor : detail::default_executor(loop);
    auto call = std::make_shared<detail::ExecutorCall<R>>();
    call->door = detail::LoopAccess::threadsafe_queue(loop);
    call->future = new Future<R>(loop);
    call->self = call;
    detail::LoopAccess::register_resource(loop, *call);
    Future<R> result = *call->future;
    // A cancelled future stops work that has not started yet.
    result.add_done_callback(
            [weak = std::weak_ptr<detail::ExecutorCall<R>>(call)](const Future<R>& f) {
                if (f.cancelled()) {
                    if (auto c = weak.lock()) {
                        // relaxed: the flag only lets the worker skip work it has not begun.
                        c->cancelled.store(true, std::memory_order_relaxed);
                    }
                }
            });
    ex.submit([call,
               fn = std::forward<F>(fn),
               tup = std::make_tuple(std::forward<Args>(args)...)]() mutable {
        // relaxed: see above; the result itself is handed over through the door's mutex.
        if (!call->cancelled.load(std::memory_order_relaxed)) {
            try {
                if constexpr (std::is_void_v<R>) {
                    std::apply(fn, std::move(tup));
                    call->value.emplace(true);
                } else {
                    call->value.emplace(std::apply(fn, std::move(tup)));
                }
            } catch (...) {
                call->error = std::current_exception();
            }
        }
        try {
            call->door->call_soon([call] { call->complete(); });
        } catch (const RuntimeError&) {
            // The loop closed while the work ran: nobody is left to receive the result.
        }
    });
    return result;
}

/// get_running_loop().run_in_executor(executor, fn, args...): runs fn(args...) on executor (the
/// default one when null) and returns a Future of its result on the running loop.
/// Throws: RuntimeError when no loop is running or the default executor was shut down.
template <class F, class... Args>
[[nodiscard]] auto run_in_executor(Executor* executor, F&& fn, Args&&... args) {
    return get_running_loop().run_in_executor(
            executor, std::forward<F>(fn), std::forward<Args>(args)...);
}

/// Runs fn(args...) in the running loop's default executor and returns a Future of its result
/// (asyncio.to_thread).
template <class F, class... Args>
[[nodiscard]] auto to_thread(F&& fn, Args&&... args) {
    return run_in_executor(nullptr, std::forward<F>(fn), std::forward<Args>(args)...);
}

/// Replaces the loop's default executor.
void set_default_executor(EventLoop& loop, std::shared_ptr<Executor> executor);

/// Shuts the loop's default executor down without blocking the loop: the join happens on a
/// helper thread (asyncio's loop.shutdown_default_executor). Afterwards run_in_executor with the
/// default executor throws RuntimeError. run() and Runner call this when they close.
[[nodiscard]] Task<> shutdown_default_executor(EventLoop& loop);

/// The result of run_coroutine_threadsafe (concurrent.futures.Future): wait for it from any
/// thread, or cancel it, which cancels the task on its loop.
/// Thread safety: every member may be called from any thread.
template <class T>
class ConcurrentFuture {
public:
    explicit ConcurrentFuture(std::shared_ptr<detail::ConcurrentState<T>> s) : s_(std::move(s)) {}

    bool done() const {
        Lock lock(*s_);
        return s_->state != State::pending;
    }

    bool cancelled() const {
        Lock lock(*s_);
        return s_->state == State::cancelled;
    }

    /// Blocks until done.
    void wait() const { s_->wait(); }

    /// Blocks until done or timeout (any std::chrono duration, saturated: a huge one waits
    /// until done, a negative one does not wait); returns whether it is done.
    template <class Rep, class Period>
    bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
        using clock = std::chrono::steady_clock;
        // condition_variable::wait_for adds timeout to now() and overflows on huge timeouts:
        // compute the deadline here, saturated, on the steady clock.
        std::int64_t ns = detail::saturated_ns(timeout);
        std::int64_t deadline = detail::deadline_after(detail::saturated_ns(clock::now()), ns);
        if (ns <= 0) {
            return done();
        }
        return s_->wait_until(deadline);
    }

    /// Blocks until done, then returns the value (moved out) or rethrows.
    /// Throws: CancelledError when cancelled; the coroutine's exception.
    T get() {
        wait();
        Lock lock(*s_);
        if (s_->state == State::cancelled) {
            throw CancelledError();
        }
        if (s_->error) {
            std::rethrow_exception(s_->error);
        }
        if constexpr (!std::is_void_v<T>) {
            return std::move(*s_->value);
        }
    }

    /// Like get() but gives up after timeout. Throws: TimeoutError when it is not done by then.
    template <class Rep, class Period>
    T result(std::chrono::duration<Rep, Period> timeout) {
        if (!wait_for(timeout)) {
            throw TimeoutError();
        }
        return get();
    }

    /// Cancels: the future is cancelled at once and the task is cancelled on its loop. Returns
    /// false when it was already done.
    bool cancel() {
        if (!s_->resolve(true)) {
            return false;
        }
        try {
            s_->door->call_soon([s = s_] {
                if (s->task != nullptr) {
                    s->task->cancel({});
                }
            });
        } catch (const RuntimeError&) {
            // the loop is closed: nothing runs there any more
        }
        return true;
    }

private:
    using State = detail::ConcurrentStateBase::State;
    using Lock = detail::ConcurrentStateBase::Lock;
    std::shared_ptr<detail::ConcurrentState<T>> s_;
};

/// Submits a coroutine to loop from another thread and returns a ConcurrentFuture for its
/// result (asyncio.run_coroutine_threadsafe). The task is created on the loop's thread. If the
/// loop closes before the coroutine finishes, the future ends cancelled.
/// Throws: RuntimeError when the loop is closed.
/// Thread safety: meant to be called from threads other than the loop's.
template <class T>
[[nodiscard]] ConcurrentFuture<T> run_coroutine_threadsafe(Task<T> coro, EventLoop& loop) {
    auto s = std::make_shared<detail::ConcurrentState<T>>();
    s->door = detail::LoopAccess::threadsafe_queue(loop);
    loop.call_soon_threadsafe(
            [resolver = detail::ConcurrentResolver<T>(s), coro = std::move(coro)]() mutable {
                auto& st = resolver.state();
                {
                    detail::ConcurrentStateBase::Lock lock(st);
                    if (st.state != detail::ConcurrentState<T>::State::pending) {
                        return; // cancelled before it started: the coroutine never runs
                    }
                }
                TaskHandle<T> task = get_running_loop().create_task(std::move(coro));
                st.task = task.base();
                task.add_done_callback([resolver = std::move(resolver)](const TaskHandle<T>& t) {
                    auto& state = resolver.state();
                    state.task = nullptr;
                    {
                        detail::ConcurrentStateBase::Lock lock(state);
                        if (state.state != detail::ConcurrentState<T>::State::pending) {
                            // Cancelled by the caller already; mark the outcome retrieved.
                            if (!t.cancelled()) {
                                static_cast<void>(t.exception());
                            }
                            return;
                        }
                        if (!t.cancelled()) {
                            if (auto e = t.exception()) {
                                state.error = e;
                            } else if constexpr (std::is_void_v<T>) {
                                state.value.emplace(true);
                            } else {
                                state.value.emplace(std::move(t.result()));
                            }
                        }
                    }
                    state.resolve(t.cancelled());
                });
            });
    return ConcurrentFuture<T>(std::move(s));
}

} // namespace coring
