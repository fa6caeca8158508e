// SPDX-License-Identifier: MIT
// A coring echo server and client driven entirely from a host program's own epoll loop, the way
// a GUI toolkit or another reactor would embed coring (asyncio has nothing built in; qasync and
// gbulb do this for Qt and glib).
//
// Usage: embed_poll            (exits 0 after 5 round trips, printing what it saw)
//
// The host loop owns the thread: it waits in epoll_wait on its own fds (here a timerfd ticking
// every 10 ms) and on coring's EventLoop::poll_fd(), with the timeout EventLoop::next_timeout()
// gives, and calls EventLoop::run_ready() whenever coring's fd is readable or the timeout ran
// out. run_ready() never blocks.
//
// glib would do the same with g_unix_fd_add(loop.poll_fd(), G_IO_IN, cb) whose callback calls
// run_ready(), plus a g_timeout_add re-armed from next_timeout() after every run_ready(); Qt with a
// QSocketNotifier(loop.poll_fd(), QSocketNotifier::Read) connected to run_ready() and a
// single-shot QTimer set from next_timeout().
#include <coring/coring.hpp>

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

static coring::Task<> echo(coring::StreamReader reader, coring::StreamWriter writer) {
    for (;;) {
        std::string line = co_await reader.readline();
        if (line.empty()) {
            break;
        }
        writer.write(line);
        co_await writer.drain();
    }
    writer.close();
}

// The coring side: a server, and a client that makes five round trips with pauses between.
static coring::Task<int> amain() {
    coring::Server server = co_await coring::start_server(echo, "127.0.0.1", 0);
    std::uint16_t port = server.sockets().front().getsockname().port();
    std::printf("coring: listening on 127.0.0.1:%u\n", port);
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port);
    int ok = 0;
    for (int i = 0; i < 5; ++i) {
        std::string msg = "ping " + std::to_string(i) + "\n";
        writer.write(msg);
        co_await writer.drain();
        std::string reply = co_await reader.readline();
        if (reply == msg) {
            ++ok;
        }
        co_await coring::sleep(std::chrono::milliseconds(25));
    }
    writer.close();
    co_await writer.wait_closed();
    server.close();
    co_await server.wait_closed();
    co_return ok;
}

int main() {
    coring::EventLoop loop;
    auto task = loop.create_task(amain());

    // The host's own loop: epoll over its timerfd and coring's fd.
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    int tick = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    itimerspec every10ms{{0, 10'000'000}, {0, 10'000'000}};
    ::timerfd_settime(tick, 0, &every10ms, nullptr);
    int coring_fd = loop.poll_fd();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = tick;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, tick, &ev);
    ev.data.fd = coring_fd;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, coring_fd, &ev);

    long ticks = 0;
    long coring_wakeups = 0;
    long run_ready_calls = 0;
    while (!task.done()) {
        int timeout_ms = -1;
        if (std::optional<coring::EventLoop::duration> t = loop.next_timeout()) {
            timeout_ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(*t).count());
        }
        epoll_event events[4];
        int n = ::epoll_wait(ep, events, 4, timeout_ms);
        for (int i = 0; i < n; ++i) {
            if (events[i].data.fd == tick) {
                std::uint64_t expirations = 0;
                if (::read(tick, &expirations, sizeof expirations) > 0) {
                    ticks += static_cast<long>(expirations);
                }
            } else {
                ++coring_wakeups;
            }
        }
        // Readable, or the timeout coring asked for has run out: run what is ready.
        loop.run_ready();
        ++run_ready_calls;
    }
    int ok = task.result();
    // Connection tasks finish their last steps; then the loop is closed as coring::run would.
    for (int i = 0; i < 100 && loop.has_pending_work(); ++i) {
        loop.run_ready();
    }
    loop.close();
    ::close(tick);
    ::close(ep);
    std::printf("round trips ok: %d of 5\n", ok);
    std::printf("host ticks: %ld, coring fd readable: %ld times, run_ready calls: %ld\n",
                ticks,
                coring_wakeups,
                run_ready_calls);
    return ok == 5 && coring_wakeups > 0 && ticks > 0 ? 0 : 1;
}
