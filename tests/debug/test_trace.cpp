// SPDX-License-Identifier: MIT
// Tests of Chrome trace-event output (EventLoop::start_trace, CORING_TRACE): the file is valid
// JSON with task, callback, timer and I/O events, and begin/end events nest.
// clang-format off
#include <coring/debug.hpp> // first: it must compile on its own
// clang-format on

#include <coring/event_loop.hpp>
#include <coring/readiness.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using coring::EventLoop;
using nlohmann::json;

namespace {

coring::Task<> child_work(int fd) {
    co_await coring::sleep(2ms);
    int ev = co_await coring::wait_readable(fd);
    (void)ev;
}

coring::Task<> traced_main(int read_fd, int write_fd) {
    auto child = coring::create_task(child_work(read_fd), "child");
    co_await coring::sleep(5ms);
    coring::get_running_loop().call_soon(
            [write_fd] { [[maybe_unused]] ssize_t n = ::write(write_fd, "x", 1); });
    co_await child;
}

std::string temp_path(const char* tag) {
    return fmt::format("/tmp/coring-trace-{}-{}.json", tag, ::getpid());
}

json read_json(const std::string& path) {
    std::ifstream in(path);
    return json::parse(in);
}

const json* find_event(const json& events, const std::string& name) {
    for (const json& e : events) {
        if (e.value("name", "") == name) {
            return &e;
        }
    }
    return nullptr;
}

double ts_of(const json& e) {
    return e.at("ts").get<double>();
}

void check_trace(const json& doc) {
    REQUIRE(doc.contains("traceEvents"));
    const json& events = doc["traceEvents"];
    REQUIRE(events.is_array());
    for (const json& e : events) {
        INFO(e.dump());
        CHECK(e.contains("ph"));
        CHECK(e.contains("pid"));
        CHECK(e.contains("tid"));
        if (e["ph"] != "M") {
            CHECK(e["ts"].is_number());
        }
    }
    // Begin/end events nest per thread, and every begin is ended.
    std::map<long, std::vector<std::string>> open;
    std::vector<std::string> begun;
    double last_ts = -1;
    for (const json& e : events) {
        std::string ph = e["ph"];
        long tid = e["tid"];
        if (ph == "B") {
            open[tid].push_back(e["name"]);
            begun.push_back(e["name"]);
        } else if (ph == "E") {
            REQUIRE_FALSE(open[tid].empty());
            open[tid].pop_back();
        }
        if (ph != "M" && ph != "X") {
            CHECK(ts_of(e) >= last_ts); // written in time order
            last_ts = ts_of(e);
        }
    }
    for (auto& [tid, stack] : open) {
        CHECK(stack.empty());
    }
    // Tasks: created, stepped (B/E named after the task), done.
    const json* create_child = find_event(events, "create Task 'child'");
    const json* done_child = find_event(events, "done Task 'child'");
    REQUIRE(create_child != nullptr);
    REQUIRE(done_child != nullptr);
    CHECK((*create_child)["ph"] == "i");
    CHECK((*create_child)["args"]["source"].get<std::string>().find("child_work at") == 0);
    CHECK((*done_child)["args"]["state"] == "done");
    const json* step_child = find_event(events, "Task 'child'");
    REQUIRE(step_child != nullptr);
    CHECK((*step_child)["ph"] == "B");
    CHECK(ts_of(*create_child) <= ts_of(*step_child));
    CHECK(ts_of(*step_child) <= ts_of(*done_child));
    // A callback and timers.
    bool callback = false;
    for (const std::string& name : begun) {
        callback = callback || name.find("<Handle ") == 0;
    }
    CHECK(callback);
    CHECK(find_event(events, "timer fired") != nullptr);
    // I/O: the poll's submit and completion, with its opcode, in that order.
    const json* submit = find_event(events, "submit POLL_ADD");
    const json* complete = find_event(events, "complete POLL_ADD");
    REQUIRE(submit != nullptr);
    REQUIRE(complete != nullptr);
    CHECK((*submit)["args"]["op"] == "POLL_ADD");
    CHECK((*submit)["args"]["id"] == (*complete)["args"]["id"]);
    CHECK((*complete)["args"]["res"].get<int>() > 0);
    CHECK(ts_of(*submit) <= ts_of(*complete));
    // The kernel waits, as complete events with a duration.
    const json* wait = find_event(events, "io_uring_enter (wait)");
    REQUIRE(wait != nullptr);
    CHECK((*wait)["ph"] == "X");
    CHECK((*wait)["dur"].get<double>() > 0);
}

} // namespace

TEST_CASE("trace: start_trace writes a Chrome trace of tasks, callbacks, timers and I/O, "
          "completed when the loop closes",
          "[debug][trace]") {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    std::string path = temp_path("api");
    {
        EventLoop loop;
        loop.start_trace(path);
        CHECK(coring::detail::LoopAccess::instrumented(loop));
        loop.run_until_complete(traced_main(sv[0], sv[1]));
        loop.close(); // completes the file
    }
    ::close(sv[0]);
    ::close(sv[1]);
    json doc = read_json(path);
    check_trace(doc);
    std::remove(path.c_str());
}

TEST_CASE("trace: CORING_TRACE=path traces a loop created afterwards, and stop_trace ends it",
          "[debug][trace]") {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    std::string path = temp_path("env");
    ::setenv("CORING_TRACE", path.c_str(), 1);
    EventLoop loop;
    ::unsetenv("CORING_TRACE");
    loop.run_until_complete(traced_main(sv[0], sv[1]));
    loop.stop_trace();
    // nothing left on: back to the uninstrumented path
    CHECK(coring::detail::LoopAccess::debug_state(loop) == nullptr);
    ::close(sv[0]);
    ::close(sv[1]);
    // Later loops write path.1, path.2, ...: this test's file is the one it named, or a
    // numbered one when an earlier loop of the process took the name.
    json doc = read_json(path);
    check_trace(doc);
    std::remove(path.c_str());
}

TEST_CASE("trace: an unwritable path throws and leaves the loop uninstrumented", "[debug][trace]") {
    EventLoop loop;
    CHECK_THROWS_AS(loop.start_trace("/nonexistent-dir/trace.json"), std::system_error);
    CHECK(coring::detail::LoopAccess::debug_state(loop) == nullptr);
    CHECK_FALSE(coring::detail::LoopAccess::instrumented(loop));
}
