// SPDX-License-Identifier: MIT
// Tests of fd readiness (asyncio test_events / test_selector_events: add_reader, add_writer,
// remove_reader, remove_writer) and of wait_readable / wait_writable, on pipes, eventfds,
// socketpairs and loopback TCP.
// clang-format off
#include <coring/readiness.hpp> // first: it must compile on its own
// clang-format on

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing.hpp>
#include <coring/testing/catch2.hpp>
#include <coring/wait.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::CancelledError;
using coring::EventLoop;
using coring::Task;
using coring::test::run_test;

namespace {

// An owned fd.
class Fd {
public:
    explicit Fd(int fd = -1) noexcept : fd_(fd) {}

    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}

    Fd& operator=(Fd&& o) noexcept {
        reset(std::exchange(o.fd_, -1));
        return *this;
    }

    ~Fd() { reset(); }

    int get() const noexcept { return fd_; }

    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = fd;
    }

private:
    int fd_;
};

struct Pipe {
    Fd r;
    Fd w;

    Pipe() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
        r.reset(fds[0]);
        w.reset(fds[1]);
    }
};

struct SocketPair {
    Fd a;
    Fd b;

    SocketPair() {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) == 0);
        a.reset(fds[0]);
        b.reset(fds[1]);
    }
};

void put(int fd, const std::string& s) {
    REQUIRE(::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
}

// Reads what is there (at most n bytes); "" when nothing is.
std::string take(int fd, std::size_t n = 4096) {
    std::string buf(n, '\0');
    ssize_t got = ::read(fd, buf.data(), n);
    buf.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
    return buf;
}

// Lets the loop run (first whole iterations, then 1 ms sleeps) until pred() holds, for at most
// about 5 s; returns pred().
template <class Pred>
Task<bool> eventually(Pred pred) {
    for (int i = 0; i < 5000; ++i) {
        if (pred()) {
            co_return true;
        }
        co_await coring::sleep(i < 20 ? 0ms : 1ms);
    }
    co_return pred();
}

// Checks that cond becomes true within eventually()'s bound. (co_await must not sit inside a
// Catch2 assertion: see test_support.hpp.)
#define CHECK_EVENTUALLY(...)                                                                      \
    do {                                                                                           \
        bool coring_ok_ = co_await eventually([&] { return __VA_ARGS__; });                        \
        INFO("eventually: " #__VA_ARGS__);                                                         \
        CHECK(coring_ok_);                                                                         \
    } while (false)

// Runs n loop iterations.
Task<> iterations(int n) {
    for (int i = 0; i < n; ++i) {
        co_await coring::sleep(0s);
    }
}

// Writes to fd (non-blocking) until the kernel takes no more.
void fill(int fd) {
    std::string block(64 * 1024, 'x');
    for (;;) {
        ssize_t n = ::write(fd, block.data(), block.size());
        if (n < 0) {
            REQUIRE((errno == EAGAIN || errno == EWOULDBLOCK));
            return;
        }
    }
}

// A socket that accepts connections on 127.0.0.1 (port chosen by the kernel).
Fd listen_loopback(std::uint16_t& port) {
    Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    REQUIRE(s.get() >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(s.get(), 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port = ntohs(addr.sin_port);
    return s;
}

} // namespace

// ---- add_reader / add_writer / remove_reader / remove_writer ----

CORING_TEST_CASE("Readiness: add_reader calls back on the loop thread when a pipe becomes readable",
                 "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    Pipe p;
    std::string got;
    bool on_loop = false;
    loop.add_reader(p.r.get(), [&] {
        on_loop = EventLoop::running() == &loop;
        got += take(p.r.get());
    });
    co_await iterations(3);
    CHECK(got.empty()); // nothing to read yet: not called
    put(p.w.get(), "hello");
    CHECK_EVENTUALLY(got == "hello");
    CHECK(on_loop);
    CHECK(loop.remove_reader(p.r.get()));
    CHECK_FALSE(loop.remove_reader(p.r.get()));
    CHECK_FALSE(loop.remove_writer(p.r.get()));
    // The poll is cancelled in the kernel: nothing of it stays in flight.
    CHECK_EVENTUALLY(loop.io_in_flight() == 0);
    put(p.w.get(), "more");
    co_await iterations(3);
    CHECK(got == "hello");
}

CORING_TEST_CASE("Readiness: add_reader passes extra arguments and works on an eventfd",
                 "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    Fd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    REQUIRE(efd.get() >= 0);
    std::uint64_t total = 0;
    int calls = 0;
    auto on_readable = [&](int fd, int weight) {
        std::uint64_t v = 0;
        REQUIRE(::read(fd, &v, sizeof v) == sizeof v);
        total += v * static_cast<std::uint64_t>(weight);
        ++calls;
    };
    loop.add_reader(efd.get(), on_readable, efd.get(), 10);
    for (std::uint64_t i = 1; i <= 3; ++i) {
        REQUIRE(::write(efd.get(), &i, sizeof i) == sizeof i);
        CHECK_EVENTUALLY(calls == static_cast<int>(i));
    }
    CHECK(total == 60);
    CHECK(loop.remove_reader(efd.get()));
}

CORING_TEST_CASE("Readiness: add_writer on a full pipe runs once the reader makes room",
                 "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    Pipe p;
    fill(p.w.get());
    int calls = 0;
    loop.add_writer(p.w.get(), [&] {
        ++calls;
        loop.remove_writer(p.w.get());
    });
    co_await iterations(5);
    CHECK(calls == 0); // full: not writable
    while (!take(p.r.get(), 64 * 1024).empty()) {
    }
    CHECK_EVENTUALLY(calls == 1);
    co_await iterations(3);
    CHECK(calls == 1);
    CHECK_FALSE(loop.remove_writer(p.w.get()));
    CHECK_EVENTUALLY(loop.io_in_flight() == 0);
}

CORING_TEST_CASE("Readiness: add_writer on an eventfd runs only while its counter has room",
                 "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    Fd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    REQUIRE(efd.get() >= 0);
    // The counter at its maximum (2^64 - 2): a write would block, so not writable.
    std::uint64_t most = 0xfffffffffffffffeULL;
    REQUIRE(::write(efd.get(), &most, sizeof most) == sizeof most);
    int calls = 0;
    loop.add_writer(efd.get(), [&] {
        ++calls;
        loop.remove_writer(efd.get());
    });
    co_await iterations(5);
    CHECK(calls == 0);
    std::uint64_t v = 0;
    REQUIRE(::read(efd.get(), &v, sizeof v) == sizeof v); // the counter back to 0
    CHECK(v == most);
    CHECK_EVENTUALLY(calls == 1);
    co_await iterations(3);
    CHECK(calls == 1);
    CHECK_EVENTUALLY(loop.io_in_flight() == 0);
}

CORING_TEST_CASE("Readiness: a reader and a writer on one socket are independent",
                 "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    SocketPair sp;
    int reads = 0;
    int writes = 0;
    loop.add_reader(sp.a.get(), [&] {
        ++reads;
        take(sp.a.get());
    });
    loop.add_writer(sp.a.get(), [&] { ++writes; });
    // Writable at once; level-triggered, so called on every iteration while it stays so.
    CHECK_EVENTUALLY(writes >= 3);
    CHECK(reads == 0);
    CHECK(loop.remove_writer(sp.a.get()));
    int writes_then = writes;
    put(sp.b.get(), "x");
    CHECK_EVENTUALLY(reads == 1);
    co_await iterations(3);
    CHECK(writes == writes_then); // the writer is gone; the reader was not disturbed
    CHECK(reads == 1);
    CHECK_FALSE(loop.remove_writer(sp.a.get()));
    CHECK(loop.remove_reader(sp.a.get()));
}

CORING_TEST_CASE("Readiness: add_reader again replaces the callback", "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    Pipe p;
    std::vector<std::string> log;
    loop.add_reader(p.r.get(), [&] { log.push_back("first " + take(p.r.get())); });
    co_await iterations(2);
    loop.add_reader(p.r.get(), [&] { log.push_back("second " + take(p.r.get())); });
    CHECK_EVENTUALLY(loop.io_in_flight() == 1); // the first poll was cancelled
    put(p.w.get(), "a");
    CHECK_EVENTUALLY(!log.empty());
    CHECK(log == std::vector<std::string>{"second a"});
    CHECK(loop.remove_reader(p.r.get()));
    CHECK_FALSE(loop.remove_reader(p.r.get()));
}

CORING_TEST_CASE("Readiness: level-triggered, a callback that reads part of the data runs again on "
                 "later iterations",
                 "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    Pipe p;
    std::string got;
    std::vector<std::uint64_t> at;
    loop.add_reader(p.r.get(), [&] {
        got += take(p.r.get(), 1); // one byte per call
        at.push_back(loop.iteration_count());
    });
    put(p.w.get(), "abcdef");
    CHECK_EVENTUALLY(got.size() == 6);
    CHECK(got == "abcdef");
    REQUIRE(at.size() == 6);
    for (std::size_t i = 1; i < at.size(); ++i) {
        CHECK(at[i] > at[i - 1]); // once per iteration, as asyncio's selector loop
    }
    // Drained: it is not called again until more data comes.
    co_await iterations(5);
    CHECK(at.size() == 6);
    put(p.w.get(), "g");
    CHECK_EVENTUALLY(got == "abcdefg");
    CHECK(loop.remove_reader(p.r.get()));
}

CORING_TEST_CASE("Readiness: a callback is scheduled after what is already ready",
                 "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    Pipe p;
    std::vector<std::string> log;
    loop.add_reader(p.r.get(), [&] {
        take(p.r.get());
        log.push_back("reader");
    });
    co_await iterations(2);
    loop.call_soon([&] {
        put(p.w.get(), "x");
        loop.call_soon([&] { log.push_back("call_soon"); });
    });
    CHECK_EVENTUALLY(log.size() == 2);
    CHECK(log == std::vector<std::string>{"call_soon", "reader"});
    CHECK(loop.remove_reader(p.r.get()));
}

CORING_TEST_CASE("Readiness: an exception in a callback goes to the exception handler and the "
                 "registration stays",
                 "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    std::vector<std::string> reports;
    loop.set_exception_handler([&](EventLoop&, const coring::ExceptionContext& ctx) {
        std::string what;
        try {
            std::rethrow_exception(ctx.exception);
        } catch (const std::exception& e) {
            what = e.what();
        }
        reports.push_back(ctx.message + ": " + what);
    });
    Pipe p;
    int calls = 0;
    loop.add_reader(p.r.get(), [&] {
        ++calls;
        std::string s = take(p.r.get(), 1);
        if (s == "!") {
            throw std::runtime_error("boom");
        }
    });
    put(p.w.get(), "!");
    CHECK_EVENTUALLY(reports.size() == 1);
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].find("Exception in callback") != std::string::npos);
    CHECK(reports[0].find("boom") != std::string::npos);
    put(p.w.get(), "ok");
    CHECK_EVENTUALLY(calls == 3);
    CHECK(reports.size() == 1);
    CHECK(loop.remove_reader(p.r.get()));
    loop.set_exception_handler(nullptr);
}

CORING_TEST_CASE("Readiness: a callback removes its own registration and another fd's",
                 "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    Pipe p1;
    Pipe p2;
    int calls = 0;
    bool removed_own = false;
    bool removed_other = false;
    // Both pipes are readable in the same iteration; whichever callback runs first removes
    // both registrations, so the other one never runs (its queued call is cancelled, as
    // asyncio's remove_reader cancels the handle).
    auto cb = [&](int own, int other) {
        ++calls;
        removed_own = loop.remove_reader(own);
        removed_other = loop.remove_reader(other);
    };
    loop.add_reader(p1.r.get(), cb, p1.r.get(), p2.r.get());
    loop.add_reader(p2.r.get(), cb, p2.r.get(), p1.r.get());
    put(p1.w.get(), "1");
    put(p2.w.get(), "2");
    CHECK_EVENTUALLY(calls > 0);
    co_await iterations(5);
    CHECK(calls == 1);
    CHECK(removed_own);
    CHECK(removed_other);
    CHECK_EVENTUALLY(loop.io_in_flight() == 0);
}

CORING_TEST_CASE("Readiness: a callback re-adds itself with a new callback", "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    Pipe p;
    std::vector<std::string> log;
    std::function<void()> second = [&] {
        log.push_back("second " + take(p.r.get()));
    };
    loop.add_reader(p.r.get(), [&] {
        log.push_back("first " + take(p.r.get()));
        loop.add_reader(p.r.get(), second);
    });
    put(p.w.get(), "a");
    CHECK_EVENTUALLY(log.size() == 1);
    put(p.w.get(), "b");
    CHECK_EVENTUALLY(log.size() == 2);
    CHECK(log == std::vector<std::string>{"first a", "second b"});
    CHECK(loop.remove_reader(p.r.get()));
}

CORING_TEST_CASE("Readiness: accept and echo over loopback TCP with add_reader and add_writer",
                 "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    std::uint16_t port = 0;
    Fd listener = listen_loopback(port);
    Fd served;
    std::string pending; // what the server still has to send back
    // Server: accept on readability, echo with a writer that removes itself when done.
    loop.add_reader(listener.get(), [&] {
        int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            return;
        }
        served.reset(fd);
        loop.add_reader(fd, [&, fd] {
            std::string s = take(fd);
            if (s.empty()) {
                loop.remove_reader(fd); // EOF
                return;
            }
            pending += s;
            loop.add_writer(fd, [&, fd] {
                ssize_t n = ::send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
                if (n > 0) {
                    pending.erase(0, static_cast<std::size_t>(n));
                }
                if (pending.empty()) {
                    loop.remove_writer(fd);
                }
            });
        });
    });
    // Client: a non-blocking connect, finished when the socket becomes writable.
    Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    REQUIRE(client.get() >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    int rc = ::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    REQUIRE((rc == 0 || errno == EINPROGRESS));
    int ev = co_await coring::wait_writable(client.get());
    CHECK((ev & POLLOUT) != 0);
    int err = -1;
    socklen_t len = sizeof err;
    REQUIRE(::getsockopt(client.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0);
    CHECK(err == 0);
    std::string echoed;
    loop.add_reader(client.get(), [&] { echoed += take(client.get()); });
    put(client.get(), "ping");
    CHECK_EVENTUALLY(echoed == "ping");
    put(client.get(), "pong");
    CHECK_EVENTUALLY(echoed == "pingpong");
    CHECK(loop.remove_reader(client.get()));
    CHECK(loop.remove_reader(listener.get()));
    CHECK(loop.remove_reader(served.get()));
    CHECK_FALSE(loop.remove_writer(served.get())); // it removed itself once all was sent
    CHECK_EVENTUALLY(loop.io_in_flight() == 0);
}

CORING_TEST_CASE("Readiness: add_reader on an fd that is not open, or not pollable, fails at once",
                 "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    int closed_fd;
    {
        Pipe p;
        closed_fd = p.r.get();
    }
    bool ran = false;
    try {
        loop.add_reader(closed_fd, [&] { ran = true; });
        FAIL("add_reader accepted a closed fd");
    } catch (const std::system_error& e) {
        CHECK(e.code().value() == EBADF);
        CHECK(std::string(e.what()).find("add_reader fd") != std::string::npos);
    }
    CHECK_THROWS_AS(loop.add_writer(-1, [&] { ran = true; }), std::system_error);
    // Regular files and directories are refused, as epoll refuses them.
    Fd dir(::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(dir.get() >= 0);
    try {
        loop.add_reader(dir.get(), [&] { ran = true; });
        FAIL("add_reader accepted a directory");
    } catch (const std::system_error& e) {
        CHECK(e.code().value() == EPERM);
    }
    CHECK_FALSE(loop.remove_reader(dir.get()));
    CHECK_FALSE(loop.remove_reader(closed_fd));
    CHECK_FALSE(loop.remove_writer(-1));
    co_await iterations(2);
    CHECK_FALSE(ran);
    CHECK(loop.io_in_flight() == 0);
}

TEST_CASE("Readiness: a loop that never watches an fd has no readiness table",
          "[loop][readiness]") {
    EventLoop loop;
    CHECK_FALSE(loop.remove_reader(0));
    CHECK_FALSE(loop.remove_writer(0));
    loop.close();
    Pipe p;
    CHECK_THROWS_AS(loop.add_reader(p.r.get(), [] {}), coring::RuntimeError);
    CHECK_FALSE(loop.remove_reader(p.r.get()));
}

CORING_TEST_CASE("Readiness: 1,000 registrations at once", "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    constexpr int n = 500;
    std::vector<SocketPair> pairs(n);
    std::vector<int> reads(n, 0);
    std::vector<int> writes(n, 0);
    for (int i = 0; i < n; ++i) {
        int fd = pairs[static_cast<std::size_t>(i)].a.get();
        loop.add_reader(fd, [&, i, fd] {
            ++reads[static_cast<std::size_t>(i)];
            take(fd);
        });
        loop.add_writer(fd, [&, i, fd] {
            ++writes[static_cast<std::size_t>(i)];
            loop.remove_writer(fd);
        });
    }
    for (auto& sp : pairs) {
        put(sp.b.get(), "x");
    }
    auto all = [&](const std::vector<int>& v) {
        for (int x : v) {
            if (x != 1) {
                return false;
            }
        }
        return true;
    };
    CHECK_EVENTUALLY(all(reads) && all(writes));
    co_await iterations(3);
    CHECK(all(reads));
    CHECK(all(writes));
    for (auto& sp : pairs) {
        CHECK(loop.remove_reader(sp.a.get()));
    }
    CHECK_EVENTUALLY(loop.io_in_flight() == 0);
}

TEST_CASE("Readiness: a poll the kernel ended because the completion queue was full is armed "
          "again",
          "[loop][readiness]") {
    coring::EventLoopOptions options;
    options.ring_entries = 4; // a completion queue of 8 entries
    EventLoop loop(options);
    constexpr std::size_t n = 40;
    std::vector<Pipe> pipes(n);
    std::vector<int> calls(n, 0);
    auto body = [&]() -> Task<> {
        for (std::size_t i = 0; i < n; ++i) {
            int fd = pipes[i].r.get();
            loop.add_reader(fd, [&, i, fd] {
                ++calls[i];
                take(fd);
            });
        }
        co_await iterations(2);
        for (int round = 1; round <= 3; ++round) {
            // All become readable at once: more completions than the CQ holds, so the kernel
            // ends multishot polls it cannot post for (their last completion overflows).
            for (auto& p : pipes) {
                put(p.w.get(), "x");
            }
            CHECK_EVENTUALLY(std::count(calls.begin(), calls.end(), round) ==
                             static_cast<std::ptrdiff_t>(n));
        }
        CHECK(loop.io_in_flight() == n);
        for (auto& p : pipes) {
            CHECK(loop.remove_reader(p.r.get()));
        }
        CHECK_EVENTUALLY(loop.io_in_flight() == 0);
    };
    loop.run_until_complete(body());
}

// ---- closing a watched fd ----

CORING_TEST_CASE("Readiness: a closed fd's registration never fires for a new file that reuses its "
                 "number, and add_reader replaces it",
                 "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    Pipe old_pipe;
    Pipe new_pipe;
    int number = old_pipe.r.get();
    std::vector<std::string> log;
    loop.add_reader(number, [&] { log.push_back("old callback"); });
    co_await iterations(2);
    old_pipe.r.reset(); // closed with the registration still in place

    // A new file at the same number, with data in it.
    REQUIRE(::dup3(new_pipe.r.get(), number, O_CLOEXEC) == number);
    new_pipe.r.reset(number);
    put(new_pipe.w.get(), "new data");
    co_await iterations(5);
    co_await coring::sleep(5ms);
    CHECK(log.empty()); // the new file's readiness is not what the old poll watches
    pollfd old_writer{old_pipe.w.get(), POLLOUT, 0};
    REQUIRE(::poll(&old_writer, 1, 0) == 1);
    // io_uring only: the kernel's poll holds the old file (epoll lets it go at close).
    bool uring = loop.backend() == coring::Backend::uring;
    CHECK((!uring || (old_writer.revents & POLLERR) == 0)); // the old read end is still open

    // add_reader on the reused number watches the new file instead.
    loop.add_reader(number, [&] { log.push_back("new callback " + take(number)); });
    CHECK_EVENTUALLY(!log.empty());
    CHECK(log == std::vector<std::string>{"new callback new data"});
    // The stale poll was cancelled, which released the old pipe's read end: its writer now
    // sees POLLERR (no reader left), and only the new registration is in flight.
    CHECK_EVENTUALLY(loop.io_in_flight() == 1);
    REQUIRE(::poll(&old_writer, 1, 0) == 1);
    CHECK((old_writer.revents & POLLERR) != 0);
    CHECK(log.size() == 1);
    CHECK(loop.remove_reader(number));
    CHECK_EVENTUALLY(loop.io_in_flight() == 0);
}

CORING_TEST_CASE(
        "Readiness: a socket closed under add_writer, its number reused by an eventfd: the "
        "old callback never runs for the eventfd, add_writer replaces it and releases the "
        "socket",
        "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    SocketPair sp;
    int number = sp.a.get();
    fill(number); // not writable until the peer reads
    std::vector<std::string> log;
    loop.add_writer(number, [&] { log.push_back("old callback"); });
    co_await iterations(3);
    CHECK(log.empty());
    Fd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)); // made first: it must not get number
    REQUIRE(efd.get() >= 0);
    sp.a.reset(); // closed with the registration still in place

    // A new, writable file at the same number.
    REQUIRE(::dup3(efd.get(), number, O_CLOEXEC) == number);
    efd.reset();
    Fd reused(number);
    co_await iterations(5);
    co_await coring::sleep(5ms);
    CHECK(log.empty()); // the eventfd's readiness is not what the old poll watches
    pollfd peer{sp.b.get(), POLLRDHUP, 0};
    // io_uring only: the kernel's poll still holds the socket open (epoll lets it go).
    if (loop.backend() == coring::Backend::uring) {
        CHECK(::poll(&peer, 1, 0) == 0);
    }

    loop.add_writer(number, [&] {
        log.push_back("new callback");
        loop.remove_writer(number);
    });
    CHECK_EVENTUALLY(!log.empty());
    CHECK(log == std::vector<std::string>{"new callback"});
    // The stale poll was cancelled: the socket is really closed and its peer sees it.
    CHECK_EVENTUALLY(::poll(&peer, 1, 0) == 1 && (peer.revents & POLLRDHUP) != 0);
    CHECK_EVENTUALLY(loop.io_in_flight() == 0);
    co_await iterations(3);
    CHECK(log.size() == 1);
}

TEST_CASE("Readiness: after close, the registration still watches the old file until removed",
          "[loop][readiness]") {
    if (coring::EventLoop().backend() == coring::Backend::epoll) {
        CORING_SKIP("io_uring only: its poll holds a reference to the file after close(2); "
                    "epoll drops the registration when the file closes");
    }
    run_test([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        Pipe p;
        int number = p.r.get();
        int calls = 0;
        loop.add_reader(number, [&] {
            if (++calls == 1) {
                // Still called for the old file's events; nothing can drain it any more
                // (the fd is gone), so, level-triggered, it would be called on and on.
                CHECK(loop.remove_reader(number));
            }
        });
        co_await iterations(2);
        p.r.reset();
        put(p.w.get(), "for the old file");
        CHECK_EVENTUALLY(calls == 1);
        co_await iterations(3);
        CHECK(calls == 1);
        CHECK_EVENTUALLY(loop.io_in_flight() == 0);
    });
}

TEST_CASE("Readiness: remove_reader after close returns true and releases the file (the peer "
          "sees EOF)",
          "[loop][readiness]") {
    if (coring::EventLoop().backend() == coring::Backend::epoll) {
        CORING_SKIP("io_uring only: its poll holds a reference to the file after close(2); "
                    "epoll drops the registration when the file closes");
    }
    run_test([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        SocketPair sp;
        int number = sp.a.get();
        bool called = false;
        loop.add_reader(number, [&] { called = true; });
        co_await iterations(2);
        sp.a.reset();
        co_await iterations(2);
        // The kernel's poll still holds the socket open: the peer sees no hang-up yet.
        pollfd pfd{sp.b.get(), POLLIN | POLLRDHUP, 0};
        CHECK(::poll(&pfd, 1, 0) == 0);
        CHECK(loop.remove_reader(number));
        CHECK_EVENTUALLY(loop.io_in_flight() == 0);
        CHECK_EVENTUALLY(::poll(&pfd, 1, 0) == 1);
        char c;
        CHECK(::read(sp.b.get(), &c, 1) == 0); // EOF
        CHECK_FALSE(called);
        CHECK_FALSE(loop.remove_reader(number));
    });
}

// ---- loop close ----

TEST_CASE("Readiness: closing the loop drops every registration", "[loop][readiness]") {
    coring::test::Counted::reset();
    {
        Pipe p1;
        Pipe p2;
        SocketPair sp;
        EventLoop loop;
        int calls = 0;
        loop.add_reader(p1.r.get(), [&, c = coring::test::Counted(1)] { ++calls; });
        loop.add_reader(p2.r.get(), [&, c = coring::test::Counted(2)] { ++calls; });
        loop.add_writer(sp.a.get(), [&, c = coring::test::Counted(3)] { ++calls; });
        loop.add_reader(sp.a.get(), [&, c = coring::test::Counted(4)] { ++calls; });
        put(p1.w.get(), "x");
        // One iteration: the readers' and the writer's polls are armed and some complete.
        loop.call_soon([&] { loop.stop(); });
        loop.run_forever();
        // One removed whose cancel is still in the kernel, one ready entry still queued.
        CHECK(loop.remove_reader(p2.r.get()));
        loop.call_soon([&] { loop.stop(); });
        loop.run_forever();
        CHECK(coring::test::Counted::alive == 3);
        loop.close();
        CHECK(coring::test::Counted::alive == 0);
        CHECK_FALSE(loop.remove_reader(p1.r.get()));
    }
    CHECK(coring::test::Counted::alive == 0);
}

TEST_CASE("Readiness: a loop closed without ever running drops its registrations",
          "[loop][readiness]") {
    coring::test::Counted::reset();
    Pipe p;
    {
        EventLoop loop;
        loop.add_reader(p.r.get(), [c = coring::test::Counted(1)] {});
        CHECK(loop.remove_reader(p.r.get()));
        loop.add_reader(p.r.get(), [c = coring::test::Counted(2)] {});
    }
    CHECK(coring::test::Counted::alive == 0);
}

// ---- wait_readable / wait_writable ----

CORING_TEST_CASE("Readiness: wait_readable and wait_writable return the revents",
                 "[loop][readiness]") {
    Pipe p;
    int ev = co_await coring::wait_writable(p.w.get());
    CHECK((ev & POLLOUT) != 0);
    auto writer = [&]() -> Task<> {
        co_await coring::sleep(2ms);
        put(p.w.get(), "z");
    };
    auto h = coring::create_task(writer());
    ev = co_await coring::wait_readable(p.r.get());
    CHECK(ev == POLLIN);
    CHECK(take(p.r.get()) == "z");
    co_await h;
    // Readable already: returns at once.
    put(p.w.get(), "y");
    ev = co_await coring::wait_readable(p.r.get());
    CHECK((ev & POLLIN) != 0);
}

CORING_TEST_CASE("Readiness: wait_readable reports POLLHUP when the pipe's writer is gone",
                 "[loop][readiness]") {
    Pipe p;
    auto closer = [&]() -> Task<> {
        co_await coring::sleep(2ms);
        p.w.reset();
    };
    auto h = coring::create_task(closer());
    int ev = co_await coring::wait_readable(p.r.get());
    CHECK((ev & POLLHUP) != 0);
    co_await h;
}

CORING_TEST_CASE("Readiness: wait_readable on an fd that is not open throws EBADF",
                 "[loop][readiness]") {
    int closed_fd;
    {
        Pipe p;
        closed_fd = p.r.get();
    }
    try {
        co_await coring::wait_readable(closed_fd);
        FAIL("no error");
    } catch (const std::system_error& e) {
        CHECK(e.code().value() == EBADF);
        CHECK(std::string(e.what()).find("wait_readable fd") != std::string::npos);
    }
}

CORING_TEST_CASE("Readiness: cancelling wait_readable cancels the poll in the kernel",
                 "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    Pipe p;
    bool returned = false;
    auto waiter = [&]() -> Task<> {
        co_await coring::wait_readable(p.r.get());
        returned = true;
    };
    auto h = coring::create_task(waiter());
    co_await iterations(2);
    CHECK(loop.io_in_flight() == 1);
    CHECK(h.cancel());
    CO_CHECK_THROWS_AS(h, CancelledError);
    CHECK_FALSE(returned);
    CHECK(loop.io_in_flight() == 0); // resumed only once the kernel gave the poll back
    put(p.w.get(), "late");
    co_await iterations(3);
    CHECK(loop.io_in_flight() == 0);
    CHECK_FALSE(returned);
    CHECK(take(p.r.get()) == "late"); // nothing consumed it
}

CORING_TEST_CASE("Readiness: wait_for times out around wait_readable", "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    Pipe p;
    CO_CHECK_THROWS_AS(coring::wait_for(coring::wait_readable(p.r.get()), 10ms),
                       coring::TimeoutError);
    CHECK(loop.io_in_flight() == 0);
    put(p.w.get(), "x");
    int ev = co_await coring::wait_for(coring::wait_readable(p.r.get()), 5s);
    CHECK(ev == POLLIN);
}

CORING_TEST_CASE("Readiness: wait_readable and add_reader on one fd are independent",
                 "[loop][readiness]") {
    EventLoop& loop = coring::get_running_loop();
    Pipe p;
    int calls = 0;
    loop.add_reader(p.r.get(), [&] { ++calls; });
    put(p.w.get(), "x");
    int ev = co_await coring::wait_readable(p.r.get());
    CHECK(ev == POLLIN);
    CHECK_EVENTUALLY(calls >= 1);
    CHECK(loop.remove_reader(p.r.get()));
    CHECK_EVENTUALLY(loop.io_in_flight() == 0);
}
