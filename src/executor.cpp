// SPDX-License-Identifier: MIT
// ThreadPoolExecutor and the loop's default executor (concurrent.futures.thread,
// base_events.run_in_executor / shutdown_default_executor).
#include <coring/executor.hpp>

#include <fmt/format.h>

#include <pthread.h>

#include <algorithm>

namespace coring {

ThreadPoolExecutor::ThreadPoolExecutor(std::size_t max_workers, std::string thread_name_prefix)
    : max_workers_(max_workers != 0
                           ? max_workers
                           : std::min<std::size_t>(32, std::thread::hardware_concurrency() + 4)),
      prefix_(thread_name_prefix.empty() ? std::string("coring-pool")
                                         : std::move(thread_name_prefix)) {
}

ThreadPoolExecutor::~ThreadPoolExecutor() {
    shutdown(true);
}

void ThreadPoolExecutor::submit(Work work) {
    std::unique_lock lock(mutex_);
    if (shutdown_) {
        throw RuntimeError("cannot schedule new work after shutdown");
    }
    queue_.push_back(std::move(work));
    // Like Python's pool: reuse an idle thread, otherwise start one while below the limit.
    if (idle_ >= queue_.size()) {
        lock.unlock();
        wake_.notify_one();
        return;
    }
    if (threads_.size() < max_workers_) {
        std::size_t index = threads_.size();
        threads_.emplace_back([this, index] { worker_main(index); });
    }
    lock.unlock();
    wake_.notify_one();
}

void ThreadPoolExecutor::shutdown(bool wait) {
    std::vector<std::thread> threads;
    {
        std::lock_guard lock(mutex_);
        shutdown_ = true;
        if (wait) {
            threads.swap(threads_);
        }
    }
    wake_.notify_all();
    for (std::thread& t : threads) {
        if (t.get_id() == std::this_thread::get_id()) {
            t.detach(); // shut down from one of its own workers: cannot join itself
        } else if (t.joinable()) {
            t.join();
        }
    }
}

std::size_t ThreadPoolExecutor::thread_count() const {
    std::lock_guard lock(mutex_);
    return threads_.size();
}

void ThreadPoolExecutor::worker_main(std::size_t index) {
    std::string name = fmt::format("{}-{}", prefix_, index);
    name.resize(std::min<std::size_t>(name.size(), 15)); // the kernel's limit for thread names
    pthread_setname_np(pthread_self(), name.c_str());
    std::unique_lock lock(mutex_);
    for (;;) {
        ++idle_;
        wake_.wait(lock, [&] { return shutdown_ || !queue_.empty(); });
        --idle_;
        if (queue_.empty()) {
            return; // shut down and nothing left: queued work still runs before the pool ends
        }
        Work work = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();
        work(); // exceptions are caught by the work itself (run_in_executor does)
        work = Work();
        lock.lock();
    }
}

namespace detail {

Executor& default_executor(EventLoop& loop) {
    if (loop.executor_shutdown_called()) {
        throw RuntimeError("Executor shutdown has been called");
    }
    std::shared_ptr<Executor>& slot = loop.default_executor_slot();
    if (!slot) {
        slot = std::make_shared<ThreadPoolExecutor>(0, "coring");
    }
    return *slot;
}

} // namespace detail

void set_default_executor(EventLoop& loop, std::shared_ptr<Executor> executor) {
    loop.default_executor_slot() = std::move(executor);
}

Task<> shutdown_default_executor(EventLoop& loop) {
    loop.executor_shutdown_called() = true;
    std::shared_ptr<Executor> executor = std::move(loop.default_executor_slot());
    loop.default_executor_slot().reset();
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
