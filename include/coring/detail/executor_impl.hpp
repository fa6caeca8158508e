// SPDX-License-Identifier: MIT
// The machinery of executor.hpp: the state one run_in_executor call shares between the loop
// and a worker, and the thread-safe result slot of run_coroutine_threadsafe. Users include
// <coring/executor.hpp>, which includes this header before its API.
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/future.hpp>
#include <coring/task.hpp>

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

namespace coring {

class Executor; // defined in executor.hpp, after this header

} // namespace coring

namespace coring::detail {

/// State shared between the loop thread and a worker for one run_in_executor call. The Future
/// belongs to the loop thread (its reference count is not atomic): it is created there and
/// released there, in complete() or when the loop closes first (on_loop_close); the worker only
/// writes the result fields. While registered with the loop the call holds a reference to
/// itself, so it is always unlinked from the loop's list on the loop thread before any thread
/// can destroy it.
template <class R>
struct ExecutorCall final : LoopResource {
    std::shared_ptr<ThreadsafeQueue> door;
    std::shared_ptr<ExecutorCall> self; // loop thread only: set while registered
    Future<R>* future = nullptr;        // loop thread only
    std::atomic<bool> cancelled{false};
    std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> value;
    std::exception_ptr error;

    ExecutorCall() = default;
    ExecutorCall(const ExecutorCall&) = delete;
    ExecutorCall& operator=(const ExecutorCall&) = delete;
    ~ExecutorCall() = default;

    // On the loop thread, once the worker is done. The result is taken out first so that its
    // last reference (an exception_ptr, a value) is released on this thread.
    void complete() {
        unlink();
        std::exception_ptr e = std::exchange(error, nullptr);
        auto v = std::move(value);
        value.reset();
        Future<R>* f = std::exchange(future, nullptr);
        auto keep = std::move(self); // released last, after every member was used
        if (f == nullptr) {
            return;
        }
        if (!f->done()) { // a cancelled future drops the result, as asyncio does
            if (e) {
                f->set_exception(std::move(e));
            } else if constexpr (std::is_void_v<R>) {
                f->set_result();
            } else {
                f->set_result(std::move(*v));
            }
        }
        delete f;
    }

    void on_loop_close() noexcept override {
        delete std::exchange(future, nullptr);
        self.reset(); // may destroy *this: nothing after it
    }
};

/// The loop's default executor, created on first use (asyncio creates it lazily too).
Executor& default_executor(EventLoop& loop);

/// The part of a ConcurrentFuture's result slot that does not depend on T: its state and the
/// mutex and condition variable that guard it (in executor.cpp: this header does without
/// <mutex> and <condition_variable>).
/// Thread safety: every member is safe from any thread; the fields marked guarded are read and
/// written under a Lock.
class ConcurrentStateBase {
public:
    enum class State { pending, finished, cancelled };

    ConcurrentStateBase();
    ConcurrentStateBase(const ConcurrentStateBase&) = delete;
    ConcurrentStateBase& operator=(const ConcurrentStateBase&) = delete;
    ~ConcurrentStateBase();

    /// Holds the state's mutex while it lives.
    class Lock {
    public:
        explicit Lock(const ConcurrentStateBase& s) : s_(s) { s_.lock(); }

        Lock(const Lock&) = delete;
        Lock& operator=(const Lock&) = delete;

        ~Lock() { s_.unlock(); }

    private:
        const ConcurrentStateBase& s_;
    };

    /// Marks the state done (cancelled when cancel, else finished) and wakes the waiters,
    /// unless it is done already; returns whether it did.
    bool resolve(bool cancel);

    /// Blocks until done.
    void wait() const;

    /// Blocks until done or until the steady clock reaches deadline_ns (never_ns: no limit);
    /// returns whether it is done.
    bool wait_until(std::int64_t deadline_ns) const;

    State state = State::pending;          // guarded
    std::exception_ptr error;              // guarded
    std::shared_ptr<ThreadsafeQueue> door; // the loop's cross-thread door
    TaskBase* task = nullptr;              // loop thread only; null once the task has finished

private:
    struct Sync;

    void lock() const;
    void unlock() const;

    std::unique_ptr<Sync> sync_;
};

/// Thread-safe result slot of a ConcurrentFuture.
template <class T>
struct ConcurrentState : ConcurrentStateBase {
    std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value; // guarded
};

/// Travels with the coroutine to the loop: if it is destroyed before the task reported its
/// outcome (the loop closed first), the future is resolved as cancelled so no thread waits
/// forever.
template <class T>
class ConcurrentResolver {
public:
    explicit ConcurrentResolver(std::shared_ptr<ConcurrentState<T>> s) : s_(std::move(s)) {}

    ConcurrentResolver(ConcurrentResolver&&) noexcept = default;
    ConcurrentResolver& operator=(ConcurrentResolver&&) noexcept = default;

    ~ConcurrentResolver() {
        if (s_) {
            s_->task = nullptr;
            s_->resolve(true);
        }
    }

    ConcurrentState<T>& state() const noexcept { return *s_; }

private:
    std::shared_ptr<ConcurrentState<T>> s_;
};

} // namespace coring::detail
