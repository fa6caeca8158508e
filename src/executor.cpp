// SPDX-License-Identifier: MIT
// ThreadPoolExecutor and the loop's default executor (concurrent.futures.thread,
// base_events.run_in_executor / shutdown_default_executor).
#include <coring/executor.hpp>

#include <fmt/format.h>

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace coring {

struct ThreadPoolExecutor::State {
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<Work> queue;           // guarded by mutex
    std::vector<std::thread> threads; // guarded by mutex
    std::size_t idle = 0;             // guarded by mutex: workers waiting for work
    bool shutdown = false;            // guarded by mutex
};

ThreadPoolExecutor::ThreadPoolExecutor(std::size_t max_workers, std::string thread_name_prefix)
    : max_workers_(max_workers != 0
                           ? max_workers
                           : std::min<std::size_t>(32, std::thread::hardware_concurrency() + 4)),
      prefix_(thread_name_prefix.empty() ? std::string("coring-pool")
                                         : std::move(thread_name_prefix)),
      s_(std::make_unique<State>()) {
}

ThreadPoolExecutor::~ThreadPoolExecutor() {
    shutdown(true);
}

void ThreadPoolExecutor::submit(Work work) {
    std::unique_lock lock(s_->mutex);
    if (s_->shutdown) {
        throw RuntimeError("cannot schedule new work after shutdown");
    }
    s_->queue.push_back(std::move(work));
    // Like Python's pool: reuse an idle thread, otherwise start one while below the limit.
    if (s_->idle >= s_->queue.size()) {
        lock.unlock();
        s_->wake.notify_one();
        return;
    }
    if (s_->threads.size() < max_workers_) {
        std::size_t index = s_->threads.size();
        s_->threads.emplace_back([this, index] { worker_main(index); });
    }
    lock.unlock();
    s_->wake.notify_one();
}

void ThreadPoolExecutor::shutdown(bool wait) {
    std::vector<std::thread> threads;
    {
        std::lock_guard lock(s_->mutex);
        s_->shutdown = true;
        if (wait) {
            threads.swap(s_->threads);
        }
    }
    s_->wake.notify_all();
    for (std::thread& t : threads) {
        if (t.get_id() == std::this_thread::get_id()) {
            t.detach(); // shut down from one of its own workers: cannot join itself
        } else if (t.joinable()) {
            t.join();
        }
    }
}

std::size_t ThreadPoolExecutor::thread_count() const {
    std::lock_guard lock(s_->mutex);
    return s_->threads.size();
}

void ThreadPoolExecutor::worker_main(std::size_t index) {
    std::string name = fmt::format("{}-{}", prefix_, index);
    name.resize(std::min<std::size_t>(name.size(), 15)); // the kernel's limit for thread names
    pthread_setname_np(pthread_self(), name.c_str());
    std::unique_lock lock(s_->mutex);
    for (;;) {
        ++s_->idle;
        s_->wake.wait(lock, [&] { return s_->shutdown || !s_->queue.empty(); });
        --s_->idle;
        if (s_->queue.empty()) {
            return; // shut down and nothing left: queued work still runs before the pool ends
        }
        Work work = std::move(s_->queue.front());
        s_->queue.pop_front();
        lock.unlock();
        work(); // exceptions are caught by the work itself (run_in_executor does)
        work = Work();
        lock.lock();
    }
}

namespace detail {

struct ConcurrentStateBase::Sync {
    std::mutex mutex;
    std::condition_variable cv;
};

ConcurrentStateBase::ConcurrentStateBase() : sync_(std::make_unique<Sync>()) {
}

ConcurrentStateBase::~ConcurrentStateBase() = default;

void ConcurrentStateBase::lock() const {
    sync_->mutex.lock();
}

void ConcurrentStateBase::unlock() const {
    sync_->mutex.unlock();
}

bool ConcurrentStateBase::resolve(bool cancel) {
    {
        std::lock_guard lock(sync_->mutex);
        if (state != State::pending) {
            return false;
        }
        state = cancel ? State::cancelled : State::finished;
    }
    sync_->cv.notify_all();
    return true;
}

void ConcurrentStateBase::wait() const {
    std::unique_lock lock(sync_->mutex);
    sync_->cv.wait(lock, [&] { return state != State::pending; });
}

bool ConcurrentStateBase::wait_until(std::int64_t deadline_ns) const {
    auto done = [&] {
        return state != State::pending;
    };
    std::unique_lock lock(sync_->mutex);
    if (deadline_ns == never_ns) {
        sync_->cv.wait(lock, done);
        return true;
    }
    using clock = std::chrono::steady_clock;
    return sync_->cv.wait_until(
            lock, clock::time_point(std::chrono::nanoseconds(deadline_ns)), done);
}

Executor& default_executor(EventLoop& loop) {
    if (detail::LoopAccess::executor_shutdown_called(loop)) {
        throw RuntimeError("Executor shutdown has been called");
    }
    std::shared_ptr<Executor>& slot = detail::LoopAccess::default_executor(loop);
    if (!slot) {
        slot = std::make_shared<ThreadPoolExecutor>(0, "coring");
    }
    return *slot;
}

} // namespace detail

void set_default_executor(EventLoop& loop, std::shared_ptr<Executor> executor) {
    detail::LoopAccess::default_executor(loop) = std::move(executor);
}

Task<> shutdown_default_executor(EventLoop& loop) {
    detail::LoopAccess::executor_shutdown_called(loop) = true;
    std::shared_ptr<Executor> executor = std::move(detail::LoopAccess::default_executor(loop));
    detail::LoopAccess::default_executor(loop).reset();
    if (!executor) {
        co_return;
    }
    // Joining the pool blocks, so it happens on a helper thread while the loop keeps running.
    ThreadPoolExecutor helper(1, "coring-shutdown");
    // Named, not written in the co_await: GCC 12 would release `executor` twice
    // (docs/pitfalls.md). The helper's copy is dropped on its thread, ours when this returns.
    auto join = [executor = std::move(executor)] {
        executor->shutdown(true);
    };
    co_await run_in_executor(&helper, join);
}

} // namespace coring
