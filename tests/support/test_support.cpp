// SPDX-License-Identifier: MIT
// Shared test helpers.
#include "support/test_support.hpp"

#include <coring/run.hpp>
#include <coring/testing.hpp>

#include <exception>
#include <optional>

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
    // The shared runner of CORING_TEST_CASE (coring/testing.hpp), with the checks these older
    // tests were written for: real time, and only leaked tasks (the listener of leak_check.cpp
    // checks descriptors and children after every case; tests set their own exception handlers).
    testing::CheckedRunOptions options;
    options.virtual_time = false;
    options.debug = std::nullopt; // as before: CORING_DEBUG decides
    options.check_exception_handler = false;
    options.check_fds = false;
    options.check_children = false;
    testing::CheckedRunResult result = testing::run_checked(make, options, setup);
    if (result.error) {
        std::rethrow_exception(result.error);
    }
    std::string found;
    for (const auto& problem : result.problems) {
        found += problem + "\n";
    }
    INFO(found);
    CHECK(result.problems.empty());
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
