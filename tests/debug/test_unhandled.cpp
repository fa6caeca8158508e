// SPDX-License-Identifier: MIT
// Tests of "Task exception was never retrieved" in debug mode: the report carries the task's
// async stack when it last resumed and the stack of the task that created it.
// clang-format off
#include <coring/debug.hpp> // first: it must compile on its own
// clang-format on

#include <coring/event_loop.hpp>
#include <coring/log.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coring::EventLoop;

namespace {

std::mutex g_mutex;
std::vector<std::string> g_records; // guarded by g_mutex

void capture(coring::LogLevel, std::string_view message) noexcept {
    std::lock_guard lock(g_mutex);
    g_records.emplace_back(message);
}

std::string find_record(const std::string& what) {
    std::lock_guard lock(g_mutex);
    for (const auto& r : g_records) {
        if (r.find(what) != std::string::npos) {
            return r;
        }
    }
    return {};
}

coring::Task<> failing_inner() {
    co_await coring::sleep(1ms);
    throw std::runtime_error("boom");
}

coring::Task<> failing_outer() {
    co_await failing_inner();
}

coring::Task<> spawner() {
    coring::create_task(failing_outer(), "worker"); // nobody awaits it
    co_await coring::sleep(10ms);
}

} // namespace

TEST_CASE("unhandled: in debug mode the never-retrieved report shows the task's async stack and "
          "its creator",
          "[debug][unhandled]") {
    {
        std::lock_guard lock(g_mutex);
        g_records.clear();
    }
    coring::LogSink previous = coring::set_log_sink(&capture);
    {
        EventLoop loop(coring::EventLoopOptions{.ring_entries = 64, .debug = true});
        auto t = loop.create_task(spawner(), "main");
        loop.run_until_complete(t);
        loop.close();
    }
    coring::set_log_sink(previous);
    std::string r = find_record("Task exception was never retrieved");
    INFO(r);
    REQUIRE_FALSE(r.empty());
    CHECK(r.find("task: worker") != std::string::npos);
    CHECK(r.find("boom") != std::string::npos);
    // What it was awaiting when it last resumed, rendered as dump_tasks renders a stack.
    auto stack_at = r.find("async stack when the task last resumed:");
    REQUIRE(stack_at != std::string::npos);
    CHECK(r.find("Task 'worker' (pending)", stack_at) != std::string::npos);
    CHECK(r.find("failing_outer at", stack_at) != std::string::npos);
    CHECK(r.find("failing_inner at", stack_at) != std::string::npos);
    CHECK(r.find("waiting on sleep 0.001 s", stack_at) != std::string::npos);
    // Where it was created: by the task 'main', in spawner.
    auto created_at = r.find("created by:");
    REQUIRE(created_at != std::string::npos);
    CHECK(r.find("Task 'main'", created_at) != std::string::npos);
    CHECK(r.find("spawner at", created_at) != std::string::npos);
}

TEST_CASE("unhandled: without debug mode the report stays as it was (no stacks recorded)",
          "[debug][unhandled]") {
    {
        std::lock_guard lock(g_mutex);
        g_records.clear();
    }
    coring::LogSink previous = coring::set_log_sink(&capture);
    {
        EventLoop loop(coring::EventLoopOptions{.ring_entries = 64, .debug = false});
        auto t = loop.create_task(spawner(), "main");
        loop.run_until_complete(t);
        loop.close();
    }
    coring::set_log_sink(previous);
    std::string r = find_record("Task exception was never retrieved");
    INFO(r);
    REQUIRE_FALSE(r.empty());
    CHECK(r.find("source: failing_outer at") != std::string::npos);
    CHECK(r.find("async stack") == std::string::npos);
}
