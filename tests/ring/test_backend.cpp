// SPDX-License-Identifier: MIT
// Tests of the backend choice (CORING_BACKEND, EventLoopOptions::backend, the fallback where
// io_uring is refused) and of what is specific to the epoll backend (issue 16).
#include <coring/event_loop.hpp>
#include <coring/file.hpp>
#include <coring/net/socket.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/timeout.hpp>
#include <coring/wait.hpp>

#include <coring/detail/ring.hpp>
#include <coring/detail/sys.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::Backend;
using coring::EventLoop;
using coring::EventLoopOptions;
using coring::Task;
using coring::detail::Sys;
using coring::detail::SysOverride;

namespace {

// Sets (or unsets, with nullptr) CORING_BACKEND for its lifetime.
class BackendEnv {
public:
    explicit BackendEnv(const char* value) {
        if (const char* old = std::getenv("CORING_BACKEND")) {
            saved_ = old;
        }
        if (value != nullptr) {
            ::setenv("CORING_BACKEND", value, 1);
        } else {
            ::unsetenv("CORING_BACKEND");
        }
    }

    BackendEnv(const BackendEnv&) = delete;
    BackendEnv& operator=(const BackendEnv&) = delete;

    ~BackendEnv() {
        if (saved_) {
            ::setenv("CORING_BACKEND", saved_->c_str(), 1);
        } else {
            ::unsetenv("CORING_BACKEND");
        }
    }

private:
    std::optional<std::string> saved_;
};

EventLoopOptions epoll_options() {
    EventLoopOptions o;
    o.backend = Backend::epoll;
    return o;
}

using InitFn = int (*)(unsigned, io_uring*, io_uring_params*);

int fail_eperm(unsigned, io_uring*, io_uring_params*) {
    return -EPERM;
}

int fail_enosys(unsigned, io_uring*, io_uring_params*) {
    return -ENOSYS;
}

int fail_einval(unsigned, io_uring*, io_uring_params*) {
    return -EINVAL;
}

std::vector<unsigned> enomem_sizes;

int fail_enomem(unsigned entries, io_uring*, io_uring_params*) {
    enomem_sizes.push_back(entries);
    return -ENOMEM;
}

int enomem_above_256(unsigned entries, io_uring* ring, io_uring_params* p) {
    enomem_sizes.push_back(entries);
    return entries > 256 ? -ENOMEM : ::io_uring_queue_init_params(entries, ring, p);
}

Task<std::string> recv_task(coring::Socket& s, std::size_t n) {
    co_return co_await coring::sock_recv(s, n);
}

} // namespace

TEST_CASE("Backend: CORING_BACKEND=epoll and =uring choose the backend", "[ring][backend]") {
    {
        BackendEnv env("epoll");
        EventLoop loop;
        CHECK(loop.backend() == Backend::epoll);
        CHECK(coring::detail::LoopAccess::ring(loop).poll_fd() >= 0);
        CHECK(coring::detail::LoopAccess::ring(loop).fd() == -1);
    }
    {
        BackendEnv env("uring");
        EventLoop loop;
        CHECK(loop.backend() == Backend::uring);
        CHECK(coring::detail::LoopAccess::ring(loop).fd() >= 0);
        int fd = coring::detail::LoopAccess::ring(loop)
                         .poll_fd(); // an eventfd registered with the ring
        CHECK(fd >= 0);
        CHECK(fd != coring::detail::LoopAccess::ring(loop).fd());
        CHECK(coring::detail::LoopAccess::ring(loop).poll_fd() == fd);
    }
}

TEST_CASE("Backend: EventLoopOptions::backend wins over CORING_BACKEND", "[ring][backend]") {
    BackendEnv env("uring");
    EventLoop loop(epoll_options());
    CHECK(loop.backend() == Backend::epoll);
    EventLoopOptions uring;
    uring.backend = Backend::uring;
    BackendEnv env2("epoll");
    EventLoop loop2(uring);
    CHECK(loop2.backend() == Backend::uring);
}

TEST_CASE("Backend: an invalid CORING_BACKEND is a clear error", "[ring][backend]") {
    BackendEnv env("kqueue");
    try {
        EventLoop loop;
        FAIL("no error");
    } catch (const coring::RuntimeError& e) {
        std::string msg = e.what();
        CHECK(msg.find("CORING_BACKEND") != std::string::npos);
        CHECK(msg.find("'kqueue'") != std::string::npos);
        CHECK(msg.find("'uring' or 'epoll'") != std::string::npos);
    }
}

TEST_CASE("Backend: io_uring refused (EPERM, ENOSYS, EINVAL) falls back to epoll with one "
          "warning",
          "[ring][backend]") {
    BackendEnv env(nullptr);
    coring::detail::reset_fallback_warning();
    coring::test::LogCapture capture;
    {
        SysOverride<InitFn> guard(&Sys::io_uring_queue_init_params, &fail_eperm);
        EventLoop loop;
        CHECK(loop.backend() == Backend::epoll);
        EventLoop second;
        CHECK(second.backend() == Backend::epoll);
        auto body = []() -> Task<int> {
            co_await coring::sleep(1ms);
            co_return 7;
        };
        CHECK(loop.run_until_complete(body()) == 7);
    }
    REQUIRE(capture.records().size() == 1); // once per process, not per loop
    CHECK(capture.contains("io_uring_setup: Operation not permitted (seccomp or "
                           "kernel.io_uring_disabled); using the epoll backend"));
    for (InitFn fn : {&fail_enosys, &fail_einval}) {
        coring::detail::reset_fallback_warning();
        capture.clear();
        SysOverride<InitFn> guard(&Sys::io_uring_queue_init_params, fn);
        EventLoop loop;
        CHECK(loop.backend() == Backend::epoll);
        CHECK(capture.records().size() == 1);
        CHECK(capture.contains("using the epoll backend"));
    }
}

TEST_CASE("Backend: io_uring forced and refused is the RuntimeError naming the cause",
          "[ring][backend]") {
    BackendEnv env("uring");
    SysOverride<InitFn> guard(&Sys::io_uring_queue_init_params, &fail_eperm);
    try {
        EventLoop loop;
        FAIL("no error");
    } catch (const coring::RuntimeError& e) {
        CHECK(std::string(e.what()).find("EPERM") != std::string::npos);
    }
}

TEST_CASE("Backend: ENOMEM retries smaller rings and never falls back to epoll",
          "[ring][backend]") {
    BackendEnv env(nullptr);
    enomem_sizes.clear();
    {
        SysOverride<InitFn> guard(&Sys::io_uring_queue_init_params, &fail_enomem);
        CHECK_THROWS_AS(EventLoop(), coring::RuntimeError);
    }
    REQUIRE(enomem_sizes.size() > 2);
    CHECK(enomem_sizes.front() == 1024);
    CHECK(enomem_sizes.back() < enomem_sizes.front());
    enomem_sizes.clear();
    SysOverride<InitFn> guard(&Sys::io_uring_queue_init_params, &enomem_above_256);
    EventLoop loop;
    CHECK(loop.backend() == Backend::uring);
    CHECK(enomem_sizes.back() == 256);
}

TEST_CASE("Backend epoll: cancelling a waiting recv completes it with CancelledError, the "
          "socket keeps working",
          "[ring][backend]") {
    EventLoop loop(epoll_options());
    auto body = []() -> Task<> {
        auto [a, b] = coring::socketpair();
        auto waiting = coring::create_task(recv_task(a, 10));
        co_await coring::sleep(5ms);
        CHECK(!waiting.done());
        waiting.cancel();
        CO_CHECK_THROWS_AS(waiting, coring::CancelledError);
        CHECK(coring::get_running_loop().io_in_flight() == 0);
        co_await coring::sock_sendall(b, "after");
        std::string got = co_await coring::sock_recv(a, 10);
        CHECK(got == "after");
        // A timeout is a cancel too.
        CO_CHECK_THROWS_AS(coring::wait_for(recv_task(a, 10), 10ms), coring::TimeoutError);
        CHECK(coring::get_running_loop().io_in_flight() == 0);
    };
    loop.run_until_complete(body());
}

TEST_CASE("Backend epoll: a closed fd number reused by a new socket does not hang",
          "[ring][backend]") {
    EventLoop loop(epoll_options());
    auto body = []() -> Task<> {
        int number = -1;
        {
            auto [a, b] = coring::socketpair();
            number = a.fd();
            // Make the backend register a.fd() with epoll: a recv that waits, then a timeout.
            CO_CHECK_THROWS_AS(coring::wait_for(recv_task(a, 1), 5ms), coring::TimeoutError);
        } // both closed by coring (no io_uring close in flight on epoll: close(2) at once)
        co_await coring::sleep(1ms);
        auto [c, d] = coring::socketpair();
        if (c.fd() != number) {
            WARN("CORING-SKIP: the new socket did not get the old number");
            co_return;
        }
        auto waiting = coring::create_task(recv_task(c, 5));
        co_await coring::sleep(2ms);
        co_await coring::sock_sendall(d, "fresh");
        std::string got = co_await coring::wait_for(waiting, 2s);
        CHECK(got == "fresh");
    };
    loop.run_until_complete(body());
}

TEST_CASE("Backend epoll: a number closed with plain close(2) and reused by an accepted socket "
          "does not hang",
          "[ring][backend]") {
    // libcurl closes its sockets with close(2), behind coring's back; the accepted socket that
    // gets the number next must not inherit the old file's registration or O_NONBLOCK state.
    EventLoop loop(epoll_options());
    auto body = []() -> Task<> {
        coring::Socket listener(AF_INET, SOCK_STREAM);
        listener.bind(coring::SocketAddress::ip("127.0.0.1", 0));
        listener.listen();
        coring::Socket client(AF_INET, SOCK_STREAM);
        int number = -1;
        {
            auto [a, b] = coring::socketpair();
            number = a.fd();
            CO_CHECK_THROWS_AS(coring::wait_for(recv_task(a, 1), 5ms), coring::TimeoutError);
            ::close(a.release()); // not through coring
        }
        co_await coring::sock_connect(client, listener.getsockname());
        auto [conn, peer] = co_await coring::sock_accept(listener);
        static_cast<void>(peer);
        if (conn.fd() != number) {
            WARN("CORING-SKIP: the accepted socket did not get the old number");
            co_return;
        }
        auto waiting = coring::create_task(recv_task(conn, 5));
        co_await coring::sleep(2ms);
        co_await coring::sock_sendall(client, "fresh");
        std::string got = co_await coring::wait_for(waiting, 2s);
        CHECK(got == "fresh");
    };
    loop.run_until_complete(body());
}

TEST_CASE("Backend epoll: file operations run on the pool", "[ring][backend][threads]") {
    EventLoop loop(epoll_options());
    auto body = []() -> Task<> {
        char tmpl[] = "/tmp/coring-epoll-XXXXXX";
        int fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        ::close(fd);
        std::string path = tmpl;
        {
            coring::File f = co_await coring::File::open(path, O_WRONLY | O_TRUNC);
            std::size_t n = co_await f.write(std::string(100000, 'x'));
            CHECK(n == 100000);
            co_await f.fsync();
            coring::StatResult st = co_await f.stat();
            CHECK(st.st_size == 100000);
            co_await f.close();
        }
        // Several reads at once: the pool runs them on more than one thread.
        std::vector<coring::File> files;
        for (int i = 0; i < 4; ++i) {
            files.push_back(co_await coring::File::open(path, O_RDONLY));
        }
        std::vector<std::string> got;
        for (auto& f : files) {
            got.push_back(co_await f.read_all());
        }
        for (const std::string& s : got) {
            CHECK(s.size() == 100000);
        }
        CO_CHECK_THROWS_AS(coring::File::open("/nonexistent/dir/x", O_RDONLY), std::system_error);
        ::unlink(path.c_str());
    };
    loop.run_until_complete(body());
}

TEST_CASE("Backend epoll: add_reader is level-triggered", "[ring][backend]") {
    EventLoop loop(epoll_options());
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    REQUIRE(::write(fds[1], "x", 1) == 1);
    int calls = 0;
    loop.add_reader(fds[0], [&] { ++calls; }); // never drains: called again and again
    auto body = []() -> Task<> {
        co_await coring::sleep(20ms);
    };
    loop.run_until_complete(body());
    CHECK(calls >= 3);
    char c;
    REQUIRE(::read(fds[0], &c, 1) == 1);
    int after = calls;
    loop.run_until_complete(body());
    CHECK(calls <= after + 1); // drained: quiet
    CHECK(loop.remove_reader(fds[0]));
    loop.run_until_complete(body());
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST_CASE("Backend epoll: timers and timeouts", "[ring][backend]") {
    EventLoop loop(epoll_options());
    auto body = []() -> Task<> {
        auto start = std::chrono::steady_clock::now();
        co_await coring::sleep(30ms);
        auto elapsed = std::chrono::steady_clock::now() - start;
        CHECK(elapsed >= 30ms);
        CHECK(elapsed < 2s);
        auto [a, b] = coring::socketpair();
        start = std::chrono::steady_clock::now();
        CO_CHECK_THROWS_AS(coring::wait_for(recv_task(a, 1), 20ms), coring::TimeoutError);
        CHECK(std::chrono::steady_clock::now() - start >= 20ms);
    };
    loop.run_until_complete(body());
}

TEST_CASE("Backend epoll: multishot accept serves many connections", "[ring][backend]") {
    EventLoop loop(epoll_options());
    CHECK(coring::detail::LoopAccess::ring(loop).supports(IORING_OP_ACCEPT));
    auto body = []() -> Task<> {
        coring::Socket listener(AF_INET, SOCK_STREAM);
        listener.bind(coring::SocketAddress::ip("127.0.0.1", 0));
        listener.listen(64);
        // One multishot accept SQE, five connections.
        struct Accepted final : coring::detail::Completion {
            std::vector<int> fds;
            bool more = true;
        } acc;
        acc.complete = [](coring::detail::Completion* c, int res, unsigned flags) noexcept {
            auto& self = static_cast<Accepted&>(*c);
            if (res >= 0) {
                self.fds.push_back(res);
            }
            self.more = (flags & IORING_CQE_F_MORE) != 0;
        };
        auto& ring = coring::detail::LoopAccess::ring(coring::get_running_loop());
        io_uring_sqe* sqe = ring.get_sqe();
        io_uring_prep_multishot_accept(sqe, listener.fd(), nullptr, nullptr, SOCK_CLOEXEC);
        ring.track(sqe, &acc);
        std::vector<coring::Socket> clients;
        for (int i = 0; i < 5; ++i) {
            clients.emplace_back(AF_INET, SOCK_STREAM);
            co_await coring::sock_connect(clients.back(), listener.getsockname());
        }
        for (int i = 0; i < 200 && acc.fds.size() < 5; ++i) {
            co_await coring::sleep(1ms);
        }
        CHECK(acc.fds.size() == 5);
        CHECK(acc.more);
        ring.cancel(&acc);
        for (int i = 0; i < 200 && acc.more; ++i) {
            co_await coring::sleep(1ms);
        }
        CHECK(!acc.more); // the cancel ended it with a final CQE
        for (int fd : acc.fds) {
            ::close(fd);
        }
    };
    loop.run_until_complete(body());
}

TEST_CASE("Backend epoll: an opcode it does not execute completes with -EINVAL",
          "[ring][backend]") {
    EventLoop loop(epoll_options());
    CHECK(!coring::detail::LoopAccess::ring(loop).supports(IORING_OP_MSG_RING));
    CHECK(coring::detail::LoopAccess::ring(loop).supports(IORING_OP_SPLICE));

    struct Result final : coring::detail::Completion {
        int res = 1;
    } r;

    r.complete = [](coring::detail::Completion* c, int res, unsigned) noexcept {
        static_cast<Result&>(*c).res = res;
    };
    io_uring_sqe* sqe = coring::detail::LoopAccess::ring(loop).get_sqe();
    io_uring_prep_rw(IORING_OP_MSG_RING, sqe, 0, nullptr, 0, 0);
    coring::detail::LoopAccess::ring(loop).track(sqe, &r);
    auto body = []() -> Task<> {
        co_await coring::sleep(1ms);
    };
    loop.run_until_complete(body());
    CHECK(r.res == -EINVAL);
}
