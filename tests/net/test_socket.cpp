// SPDX-License-Identifier: MIT
// Tests of net/socket.hpp: Socket and the sock_* operations (after CPython's
// test_asyncio/test_sock_lowlevel.py).
#include <coring/net/socket.hpp>
#include <coring/sleep.hpp>
#include <coring/testing/catch2.hpp>

#include <coring/detail/sys.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "net/net_helpers.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::Socket;
using coring::SocketAddress;
using coring::Task;

namespace {

Socket listening_socket() {
    Socket s(AF_INET, SOCK_STREAM);
    s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
    s.bind(SocketAddress::ip("127.0.0.1", 0));
    s.listen(16);
    return s;
}

bool fd_is_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

int fail_emfile_socket(int, int, int) {
    errno = EMFILE;
    return -1;
}

} // namespace

CORING_TEST_CASE("sock_*: accept, connect, sendall and recv over loopback", "[net][socket]") {
    Socket listener = listening_socket();
    SocketAddress address = listener.getsockname();
    auto accepting = coring::create_task(coring::sock_accept(listener));
    Socket client(AF_INET, SOCK_STREAM);
    co_await coring::sock_connect(client, address);
    auto [conn, peer] = co_await std::move(accepting);
    CHECK(peer == client.getsockname());
    CHECK(conn.getpeername() == client.getsockname());

    std::string big(300000, 'b');
    auto sending = coring::create_task(coring::sock_sendall(client, big));
    std::string got;
    while (got.size() < big.size()) {
        std::string part = co_await coring::sock_recv(conn, 65536);
        REQUIRE(!part.empty());
        got += part;
    }
    co_await sending;
    CHECK(got == big);

    co_await client.shutdown(SHUT_WR);
    char buf[16];
    std::size_t n = co_await coring::sock_recv_into(conn, buf);
    CHECK(n == 0); // EOF after the peer's shutdown
    std::size_t zero = co_await coring::sock_recv_into(conn, std::span<char>());
    CHECK(zero == 0);
}

CORING_TEST_CASE("sock_connect: a refused connection names the address", "[net][socket]") {
    std::uint16_t port = coring::test::unused_port();
    Socket s(AF_INET, SOCK_STREAM);
    CO_CHECK_THROWS_WITH(coring::sock_connect(s, SocketAddress::ip("127.0.0.1", port)),
                         "connect 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

CORING_TEST_CASE("sock_send: writing to a closed peer raises BrokenPipeError, no SIGPIPE",
                 "[net][socket]") {
    auto [a, b] = coring::socketpair();
    co_await b.close();
    // Without MSG_NOSIGNAL this would kill the test process with SIGPIPE.
    CO_CHECK_THROWS_AS(coring::sock_send(a, "into the void"), coring::BrokenPipeError);
    int code = 0;
    try {
        static_cast<void>(co_await coring::sock_send(a, "again"));
    } catch (const std::system_error& e) {
        code = e.code().value();
    }
    CHECK(code == EPIPE);
}

CORING_TEST_CASE("sock_accept: cancelling a task blocked in accept cancels it in the kernel",
                 "[net][socket][cancel]") {
    Socket listener = listening_socket();
    auto& loop = coring::get_running_loop();
    auto blocked = coring::create_task(coring::sock_accept(listener));
    co_await coring::sleep(0s);
    co_await coring::sleep(0s);
    CHECK(loop.io_in_flight() == 1);
    CHECK(blocked.get_stack().find("sock_accept") != std::string::npos);
    blocked.cancel();
    CO_CHECK_THROWS_AS(blocked, coring::CancelledError);
    CHECK(loop.io_in_flight() == 0);
    // Nothing was accepted on the way: a connection now is accepted by a new accept.
    Socket client(AF_INET, SOCK_STREAM);
    co_await coring::sock_connect(client, listener.getsockname());
    auto [conn, peer] = co_await coring::sock_accept(listener);
    CHECK(conn.fd() >= 0);
}

CORING_TEST_CASE("sock_recv: cancelling a task blocked in recv cancels it in the kernel",
                 "[net][socket][cancel]") {
    auto [a, b] = coring::socketpair();
    auto& loop = coring::get_running_loop();
    auto blocked = coring::create_task(coring::sock_recv(a, 100));
    co_await coring::sleep(0s);
    CHECK(loop.io_in_flight() == 1);
    blocked.cancel("enough");
    CO_CHECK_THROWS_WITH(blocked, "enough");
    CHECK(loop.io_in_flight() == 0);
    // No byte was lost to the cancelled recv.
    co_await coring::sock_sendall(b, "kept");
    std::string got = co_await coring::sock_recv(a, 100);
    CHECK(got == "kept");
}

TEST_CASE("Socket: the destructor closes through the running loop's io_uring", "[net][socket]") {
    coring::test::run_test([]() -> Task<> {
        int fd = -1;
        {
            Socket s(AF_INET, SOCK_STREAM);
            fd = s.fd();
            CHECK(fd_is_open(fd));
        }
        // Queued, not yet submitted: the close goes to the kernel with the next io_uring_enter.
        CHECK(fd_is_open(fd));
        co_await coring::sleep(0s);
        CHECK(!fd_is_open(fd));
    });
    // Outside a running loop the destructor closes at once.
    int fd = -1;
    {
        Socket s(AF_INET, SOCK_STREAM);
        fd = s.fd();
    }
    CHECK(!fd_is_open(fd));
}

CORING_TEST_CASE("Socket: close() is awaitable and leaves the socket empty", "[net][socket]") {
    Socket s(AF_UNIX, SOCK_STREAM);
    int fd = s.fd();
    co_await s.close();
    CHECK(!s);
    CHECK(!fd_is_open(fd));
    co_await s.close(); // closing an empty socket does nothing
}

TEST_CASE("Socket: a failing socket() call raises with its errno (syscall seam)", "[net][socket]") {
    using SocketFn = int (*)(int, int, int);
    coring::detail::SysOverride<SocketFn> guard(&coring::detail::Sys::socket, &fail_emfile_socket);
    int code = 0;
    std::string what;
    try {
        Socket s(AF_INET, SOCK_STREAM);
    } catch (const std::system_error& e) {
        code = e.code().value();
        what = e.what();
    }
    CHECK(code == EMFILE);
    CHECK(what == "socket: Too many open files");
}

CORING_TEST_CASE("sock_sendto and sock_recvfrom exchange datagrams with their addresses",
                 "[net][socket][udp]") {
    Socket a(AF_INET, SOCK_DGRAM);
    Socket b(AF_INET, SOCK_DGRAM);
    a.bind(SocketAddress::ip("127.0.0.1", 0));
    b.bind(SocketAddress::ip("127.0.0.1", 0));
    std::size_t sent = co_await coring::sock_sendto(a, "datagram", b.getsockname());
    CHECK(sent == 8);
    auto [data, from] = co_await coring::sock_recvfrom(b, 100);
    CHECK(data == "datagram");
    CHECK(from == a.getsockname());
    co_await coring::sock_sendto(b, "reply", from);
    char buf[3];
    auto [n, sender] = co_await coring::sock_recvfrom_into(a, buf);
    CHECK(n == 3); // truncated to the buffer, as recvfrom does
    CHECK(std::string_view(buf, n) == "rep");
    CHECK(sender == b.getsockname());
}
