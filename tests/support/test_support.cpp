// SPDX-License-Identifier: MIT
// Shared test helpers.
#include "support/test_support.hpp"

#include <coring/run.hpp>

namespace coring::test {

namespace {

std::vector<std::string>& captured() {
    static std::vector<std::string> records;
    return records;
}

void capture_sink(LogLevel level, std::string_view message) noexcept {
    const char* names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};
    captured().push_back(std::string(names[static_cast<int>(level)]) + ": " + std::string(message));
}

} // namespace

void run_test(std::function<Task<>()> make) {
    run_test(std::move(make), [](EventLoop&) {});
}

void run_test(std::function<Task<>()> make, const std::function<void(EventLoop&)>& setup) {
    EventLoop loop;
    setup(loop);
    std::size_t leaked = 0;
    auto main_task = loop.create_task(make(), "test-main");
    loop.run_until_complete(main_task);
    leaked = all_tasks(loop).size();
    cancel_all_tasks(loop);
    loop.close();
    CHECK(leaked == 0);
}

Watchdog::Watchdog(EventLoop& loop, std::chrono::milliseconds after)
    : thread_([this, &loop, after] {
          std::unique_lock lock(mutex_);
          if (cv_.wait_for(lock, after, [this] { return done_; })) {
              return;
          }
          fired_ = true;
          lock.unlock();
          try {
              loop.call_soon_threadsafe([&loop] { loop.stop(); });
          } catch (const RuntimeError&) {
              // the loop closed meanwhile: nothing left to stop
          }
      }) {
}

Watchdog::~Watchdog() {
    {
        std::lock_guard lock(mutex_);
        done_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

bool Watchdog::fired() const {
    std::lock_guard lock(mutex_);
    return fired_;
}

LogCapture::LogCapture() : previous_(set_log_sink(&capture_sink)) {
    captured().clear();
}

LogCapture::~LogCapture() {
    set_log_sink(previous_);
}

const std::vector<std::string>& LogCapture::records() const {
    return captured();
}

bool LogCapture::contains(const std::string& text) const {
    for (const auto& r : captured()) {
        if (r.find(text) != std::string::npos) {
            return true;
        }
    }
    return false;
}

void LogCapture::clear() {
    captured().clear();
}

} // namespace coring::test
