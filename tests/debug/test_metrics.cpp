// SPDX-License-Identifier: MIT
// Tests of the loop metrics (EventLoop::set_metrics, metrics(), set_lag_probe): each number moves
// the right way, on virtual time where the numbers are times.
// clang-format off
#include <coring/metrics.hpp> // first: it must compile on its own
// clang-format on

#include <coring/event_loop.hpp>
#include <coring/fmt.hpp>
#include <coring/readiness.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>

#include <catch2/catch.hpp>
#include <liburing.h>

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coring::EventLoop;
using coring::LoopMetrics;

namespace {

coring::Task<> yield_once() {
    co_await coring::sleep(0ms);
}

coring::Task<> spawn_many(int n) {
    std::vector<coring::TaskHandle<>> tasks;
    for (int i = 0; i < n; ++i) {
        tasks.push_back(coring::create_task(yield_once()));
    }
    for (auto& t : tasks) {
        co_await t;
    }
}

coring::Task<> sleep_for(std::chrono::milliseconds d) {
    co_await coring::sleep(d);
}

coring::Task<> block_loop(std::chrono::milliseconds d) {
    co_await coring::sleep(0ms);
    ::usleep(static_cast<useconds_t>(d.count() * 1000)); // a blocking call on the loop thread
}

coring::Task<int> wait_readable_task(int fd) {
    int ev = co_await coring::wait_readable(fd);
    co_return ev;
}

std::uint64_t in_flight_of(const LoopMetrics& m, const std::string& name) {
    for (const auto& c : m.in_flight_by_op) {
        if (c.name == name) {
            return c.count;
        }
    }
    return 0;
}

} // namespace

TEST_CASE("metrics: off by default, all zero, and on they count iterations, ready entries, timers "
          "and time waiting (virtual time)",
          "[debug][metrics]") {
    EventLoop loop;
    loop.set_virtual_time(true);
    LoopMetrics off = loop.metrics();
    CHECK_FALSE(off.enabled);
    CHECK(off.iterations == 0);
    CHECK(coring::to_string(off) == "loop metrics: off");

    loop.set_metrics(true);
    CHECK(loop.metrics().enabled);
    CHECK(loop.metrics().iterations == 0);

    loop.run_until_complete(spawn_many(100));
    LoopMetrics a = loop.metrics();
    CHECK(a.iterations > 0);
    CHECK(a.ready_max >= 100); // the hundred first steps were ready together
    CHECK(a.callbacks_run >= 200);
    CHECK(a.ready_now == 0);

    loop.run_until_complete(sleep_for(1500ms));
    LoopMetrics b = loop.metrics();
    CHECK(b.iterations > a.iterations);
    CHECK(b.timers_fired >= a.timers_fired + 1);
    // The virtual time skipped waiting for the timer: the 1.5 s less what passed in real time
    // between scheduling it and waiting.
    CHECK(b.wait_time - a.wait_time >= 1400ms);
    CHECK(b.wait_time - a.wait_time < 1600ms);

    std::string text = coring::to_string(b);
    CHECK(text.find(fmt::format("{} iterations", b.iterations)) != std::string::npos);
    CHECK(fmt::format("{}", b) == text);

    loop.set_metrics(true); // resets
    CHECK(loop.metrics().iterations == 0);
    loop.set_metrics(false);
    CHECK_FALSE(loop.metrics().enabled);
    CHECK(coring::detail::LoopAccess::debug_state(loop) == nullptr);
}

TEST_CASE("metrics: time in callbacks grows by what a blocking step took", "[debug][metrics]") {
    EventLoop loop;
    loop.set_metrics(true);
    loop.run_until_complete(block_loop(30ms));
    LoopMetrics m = loop.metrics();
    CHECK(m.callback_time >= 30ms);
    CHECK(m.callbacks_run >= 2);
}

TEST_CASE("metrics: operations in flight by kind, and completed", "[debug][metrics]") {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    EventLoop loop;
    loop.set_metrics(true);
    auto t = loop.create_task(wait_readable_task(sv[0]), "reader");
    // Let the reader submit its poll, then look.
    loop.run_until_complete(coring::sleep(5ms));
    LoopMetrics waiting = loop.metrics();
    CHECK(in_flight_of(waiting, "POLL_ADD") == 1);
    CHECK(waiting.ops_submitted >= 1);
    CHECK(coring::to_string(waiting).find("POLL_ADD 1") != std::string::npos);

    REQUIRE(::write(sv[1], "x", 1) == 1);
    int ev = loop.run_until_complete(t);
    CHECK(ev != 0);
    LoopMetrics done = loop.metrics();
    CHECK(in_flight_of(done, "POLL_ADD") == 0);
    CHECK(done.ops_completed >= waiting.ops_completed + 1);
    bool submitted_poll = false;
    for (const auto& c : done.submitted_by_op) {
        submitted_poll = submitted_poll || (c.name == "POLL_ADD" && c.count >= 1);
    }
    CHECK(submitted_poll);
    loop.close();
    ::close(sv[0]);
    ::close(sv[1]);
}

TEST_CASE("metrics: the lag probe measures how late its timer runs behind a blocked loop",
          "[debug][metrics]") {
    EventLoop loop;
    loop.set_lag_probe(5ms);
    CHECK(loop.metrics().enabled); // the probe turns metrics on
    loop.run_until_complete(sleep_for(50ms));
    LoopMetrics calm = loop.metrics();
    CHECK(calm.lag_samples >= 1); // its 5 ms timer is due before the 50 ms one, however late
    loop.run_until_complete(block_loop(60ms));
    loop.run_until_complete(sleep_for(20ms));
    LoopMetrics m = loop.metrics();
    CHECK(m.lag_samples > calm.lag_samples);
    CHECK(m.lag_max >= 30ms); // the probe's timer was due during the 60 ms block
    CHECK(coring::to_string(m).find("lag ") != std::string::npos);
    loop.set_lag_probe(0ms);
    std::uint64_t samples = loop.metrics().lag_samples;
    loop.run_until_complete(sleep_for(20ms));
    CHECK(loop.metrics().lag_samples == samples);
}

TEST_CASE("metrics: CORING_METRICS=1 turns them on for new loops", "[debug][metrics]") {
    ::setenv("CORING_METRICS", "1", 1);
    EventLoop loop;
    ::unsetenv("CORING_METRICS");
    CHECK(loop.metrics().enabled);
    EventLoop other;
    CHECK_FALSE(other.metrics().enabled);
}

TEST_CASE("metrics: opcode names", "[debug][metrics]") {
    CHECK(coring::opcode_name(IORING_OP_RECV) == "RECV");
    CHECK(coring::opcode_name(IORING_OP_POLL_ADD) == "POLL_ADD");
    CHECK(coring::opcode_name(IORING_OP_TIMEOUT) == "TIMEOUT");
    CHECK(coring::opcode_name(250) == "OP_250");
}
