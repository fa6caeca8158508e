// SPDX-License-Identifier: MIT
// Tests of driving an EventLoop from a foreign loop (poll_fd, run_ready, next_timeout; asyncio
// has no equivalent, the nearest are loop integrations such as qasync): a server and a client on
// loopback driven from plain poll(), a timer, a post from another thread.
#include <coring/event_loop.hpp>
#include <coring/sleep.hpp>
#include <coring/streams.hpp>
#include <coring/task.hpp>

#include <catch2/catch.hpp>

#include <poll.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using coring::EventLoop;
using coring::Task;

namespace {

// One host-loop step: poll the loop's fd for as long as next_timeout() allows, then run what is
// ready. Returns whether poll() reported the fd readable.
bool host_step(EventLoop& loop, int fd) {
    std::optional<EventLoop::duration> t = loop.next_timeout();
    int ms = -1;
    if (t) {
        ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(*t).count());
    }
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, ms);
    loop.run_ready();
    return r > 0 && (p.revents & POLLIN) != 0;
}

Task<> echo_once(coring::StreamReader reader, coring::StreamWriter writer) {
    std::string line = co_await reader.readline();
    writer.write("echo: " + line);
    co_await writer.drain();
    writer.close();
}

Task<std::string> server_and_client() {
    coring::Server server = co_await coring::start_server(echo_once, "127.0.0.1", 0);
    std::uint16_t port = server.sockets().front().getsockname().port();
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port);
    writer.write("hello\n");
    co_await writer.drain();
    std::string reply = co_await reader.readline();
    writer.close();
    server.close();
    co_return reply;
}

} // namespace

TEST_CASE("Embedding: a server and a client on loopback driven from a plain poll() loop",
          "[loop][embed]") {
    EventLoop loop;
    int fd = loop.poll_fd();
    REQUIRE(fd >= 0);
    CHECK(loop.poll_fd() == fd); // one fd for the loop's life
    auto task = loop.create_task(server_and_client());
    int steps = 0;
    int readable = 0;
    auto t0 = std::chrono::steady_clock::now();
    while (!task.done() && std::chrono::steady_clock::now() - t0 < 10s) {
        if (host_step(loop, fd)) {
            ++readable;
        }
        ++steps;
    }
    REQUIRE(task.done());
    CHECK(task.result() == "echo: hello\n");
    // io_uring: the completions (connect, accept, recv) woke poll() through the fd, with
    // DEFER_TASKRUN too. epoll: loopback operations are ready by the time run_ready()'s own
    // zero-timeout epoll_wait looks, so poll() may never need to wake; the step bound below
    // shows the host did not spin either way.
    if (loop.backend() == coring::Backend::uring) {
        CHECK(readable > 0);
    }
    INFO("steps " << steps << ", DEFER_TASKRUN "
                  << ((coring::detail::LoopAccess::ring(loop).setup_flags() &
                       IORING_SETUP_DEFER_TASKRUN) != 0));
    CHECK(steps < 1000);
    // Let the connection tasks finish, then the loop has nothing left but its own wake-up read.
    for (int k = 0; k < 100 && loop.has_pending_work(); ++k) {
        host_step(loop, fd);
    }
    loop.close();
    CHECK_THROWS_AS(loop.poll_fd(), coring::RuntimeError);
}

TEST_CASE("Embedding: next_timeout gives the time to the nearest timer, zero when work is "
          "ready, nullopt when only I/O can bring work",
          "[loop][embed]") {
    EventLoop loop;
    int fd = loop.poll_fd();
    auto task = loop.create_task([]() -> Task<int> {
        co_await coring::sleep(50ms);
        co_return 5;
    }());
    // The task has not started: it is ready now.
    REQUIRE(loop.next_timeout().has_value());
    CHECK(*loop.next_timeout() == EventLoop::duration::zero());
    loop.run_ready(); // starts it: it sleeps; its wake-up read is queued for the next entry
    loop.run_ready(); // submits
    std::optional<EventLoop::duration> t = loop.next_timeout();
    REQUIRE(t.has_value());
    CHECK(*t > 10ms);
    CHECK(*t <= 50ms);
    // Nothing but the timer: poll() times out, then run_ready fires it.
    auto t0 = std::chrono::steady_clock::now();
    while (!task.done() && std::chrono::steady_clock::now() - t0 < 5s) {
        host_step(loop, fd);
    }
    REQUIRE(task.done());
    CHECK(task.result() == 5);
    CHECK(std::chrono::steady_clock::now() - t0 >= 30ms);
    loop.run_ready();
    CHECK_FALSE(loop.next_timeout().has_value());
}

TEST_CASE("Embedding: call_soon_threadsafe from another thread makes poll_fd readable",
          "[loop][embed][threads]") {
    EventLoop loop;
    int fd = loop.poll_fd();
    loop.run_ready(); // arms the loop's wake-up read
    loop.run_ready();
    std::atomic<bool> ran{false};
    std::thread other([&loop, &ran] {
        std::this_thread::sleep_for(20ms);
        loop.call_soon_threadsafe([&ran] { ran.store(true); });
    });
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, 5000);
    other.join();
    CHECK(r == 1);
    for (int k = 0; k < 10 && !ran.load(); ++k) {
        loop.run_ready();
    }
    CHECK(ran.load());
}
