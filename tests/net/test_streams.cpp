// SPDX-License-Identifier: MIT
// Tests of streams.hpp: StreamReader, StreamWriter, Server, open_connection, start_server,
// the Unix and pipe forms (after CPython's test_asyncio/test_streams.py and test_server.py).
#include <coring/future.hpp>
#include <coring/sleep.hpp>
#include <coring/streams.hpp>
#include <coring/testing/catch2.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "net/net_helpers.hpp"
#include "streams_internal.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::StreamReader;
using coring::StreamWriter;
using coring::Task;
using coring::test::port_of;

namespace {

Task<> echo_handler(StreamReader reader, StreamWriter writer) {
    char buf[4096];
    for (;;) {
        std::size_t n = co_await reader.read_into(buf);
        if (n == 0) {
            break;
        }
        writer.write(std::string_view(buf, n));
        co_await writer.drain();
    }
    writer.close();
    co_await writer.wait_closed();
}

Task<> line_echo_handler(StreamReader reader, StreamWriter writer) {
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

Task<std::string> echo_once(StreamReader reader, StreamWriter writer, std::string text) {
    writer.write(text);
    co_await writer.drain();
    std::string back = co_await reader.readexactly(text.size());
    writer.close();
    co_await writer.wait_closed();
    co_return back;
}

// Feeds pieces to a reader, one per loop iteration, then EOF.
Task<> feed_slowly(StreamReader reader, std::vector<std::string> pieces, bool eof) {
    for (const auto& p : pieces) {
        co_await coring::sleep(0s);
        reader.feed_data(p);
    }
    if (eof) {
        co_await coring::sleep(0s);
        reader.feed_eof();
    }
}

Task<bool> ping_client(std::uint16_t port, int i) {
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port);
    std::string msg = "ping " + std::to_string(i) + "\n";
    writer.write(msg);
    std::string back = co_await reader.readline();
    writer.close();
    co_await writer.wait_closed();
    co_return back == msg;
}

void set_linger_zero(int fd) {
    linger l{};
    l.l_onoff = 1;
    l.l_linger = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

} // namespace

// ---- StreamReader without a transport (asyncio's feed_data tests) ----

CORING_TEST_CASE("StreamReader: readline returns a line split across feeds",
                 "[net][streams][reader]") {
    StreamReader reader;
    auto feeder = coring::create_task(feed_slowly(reader, {"li", "ne", "1\nline2"}, true));
    std::string a = co_await reader.readline();
    std::string b = co_await reader.readline();
    std::string c = co_await reader.readline();
    CHECK(a == "line1\n");
    CHECK(b == "line2"); // EOF mid-line: the partial line
    CHECK(c.empty());
    CHECK(reader.at_eof());
    co_await feeder;
}

CORING_TEST_CASE("StreamReader: readuntil finds a separator split across receives",
                 "[net][streams][reader]") {
    StreamReader reader;
    auto feeder = coring::create_task(feed_slowly(reader, {"ab", "c\r", "\nde"}, false));
    std::string got = co_await reader.readuntil("\r\n");
    CHECK(got == "abc\r\n");
    CHECK(reader.buffered() == 2);
    co_await feeder;
}

CORING_TEST_CASE("StreamReader: readuntil raises LimitOverrunError and keeps the data",
                 "[net][streams][reader]") {
    StreamReader reader(8);
    reader.feed_data("0123456789abcdefghij");
    std::size_t consumed = 0;
    try {
        static_cast<void>(co_await reader.readuntil("\n"));
    } catch (const coring::LimitOverrunError& e) {
        consumed = e.consumed;
    }
    CHECK(consumed == 20);
    CHECK(reader.buffered() == 20); // the data stays, as asyncio leaves it
    reader.feed_data("\n");
    std::string what;
    try {
        static_cast<void>(co_await reader.readuntil("\n"));
    } catch (const coring::LimitOverrunError& e) {
        what = e.what();
        consumed = e.consumed;
    }
    CHECK(what == "Separator is found, but chunk is longer than limit");
    CHECK(consumed == 20);
    std::string rest = co_await reader.readexactly(21);
    CHECK(rest == "0123456789abcdefghij\n");
}

CORING_TEST_CASE("StreamReader: readline drops an over-long line and raises ValueError",
                 "[net][streams][reader]") {
    StreamReader reader(8);
    reader.feed_data("0123456789abc\nnext\n");
    CO_CHECK_THROWS_AS(reader.readline(), coring::ValueError);
    std::string next = co_await reader.readline();
    CHECK(next == "next\n");

    reader.feed_data("no newline in sight");
    CO_CHECK_THROWS_WITH(reader.readline(), "Separator is not found, and chunk exceed the limit");
    CHECK(reader.buffered() == 0); // asyncio's readline clears the buffer
}

CORING_TEST_CASE("StreamReader: readexactly raises IncompleteReadError with the partial bytes",
                 "[net][streams][reader]") {
    StreamReader reader;
    auto feeder = coring::create_task(feed_slowly(reader, {"abc", "de"}, true));
    std::string partial;
    std::optional<std::size_t> expected;
    try {
        static_cast<void>(co_await reader.readexactly(10));
    } catch (const coring::IncompleteReadError& e) {
        partial = e.partial;
        expected = e.expected;
    }
    CHECK(partial == "abcde");
    CHECK(expected == std::optional<std::size_t>(10));
    CHECK(reader.at_eof());
    std::string empty = co_await reader.readexactly(0);
    CHECK(empty.empty());
    co_await feeder;
}

CORING_TEST_CASE("StreamReader: readuntil at EOF raises IncompleteReadError without expected",
                 "[net][streams][reader]") {
    StreamReader reader;
    reader.feed_data("tail");
    reader.feed_eof();
    std::string partial;
    bool unbounded = false;
    try {
        static_cast<void>(co_await reader.readuntil("\n"));
    } catch (const coring::IncompleteReadError& e) {
        partial = e.partial;
        unbounded = !e.expected.has_value();
    }
    CHECK(partial == "tail");
    CHECK(unbounded);
    CO_CHECK_THROWS_AS(reader.readuntil(""), coring::ValueError);
}

CORING_TEST_CASE("StreamReader: read(n) returns what is buffered, read() reads to EOF",
                 "[net][streams][reader]") {
    StreamReader reader;
    reader.feed_data("hello world");
    std::string a = co_await reader.read(5);
    CHECK(a == "hello");
    std::string none = co_await reader.read(0);
    CHECK(none.empty());
    auto feeder = coring::create_task(feed_slowly(reader, {"!", "?"}, true));
    std::string rest = co_await reader.read();
    CHECK(rest == " world!?");
    std::string after = co_await reader.read(10);
    CHECK(after.empty());
    CHECK(reader.at_eof());
    co_await feeder;
}

CORING_TEST_CASE("StreamReader: a second reader waiting at the same time raises RuntimeError",
                 "[net][streams][reader]") {
    StreamReader reader;
    auto first = coring::create_task(reader.readline());
    co_await coring::sleep(0s);
    CO_CHECK_THROWS_AS(reader.read(10), coring::RuntimeError);
    reader.feed_data("x\n");
    std::string line = co_await first;
    CHECK(line == "x\n");
}

CORING_TEST_CASE("StreamReader: set_exception wakes the reader and every read raises it",
                 "[net][streams][reader]") {
    StreamReader reader;
    reader.feed_data("buffered");
    auto waiting = coring::create_task(reader.readexactly(100));
    co_await coring::sleep(0s);
    reader.set_exception(std::make_exception_ptr(coring::RuntimeError("broken")));
    CO_CHECK_THROWS_WITH(waiting, "broken");
    CO_CHECK_THROWS_WITH(reader.read(1), "broken"); // even with data buffered, as asyncio
    CHECK(reader.exception() != nullptr);
}

CORING_TEST_CASE("StreamReader: a limit of 0 is refused", "[net][streams][reader]") {
    CHECK_THROWS_AS(StreamReader(0), coring::ValueError);
    co_return;
}

// ---- sizes a peer can influence (issue 10, defect 4) ----

CORING_TEST_CASE("StreamReader: readexactly of a size no buffer can hold raises ValueError",
                 "[net][streams][reader][limits]") {
    auto [a, b] = coring::socketpair();
    auto [reader, writer] = co_await coring::open_connection(std::move(a));
    REQUIRE(::send(b.fd(), "hello", 5, MSG_NOSIGNAL) == 5);
    ::shutdown(b.fd(), SHUT_WR);
    std::size_t header = 8;
    std::size_t underflowed = std::size_t{5} - header; // a length minus a header
    CO_CHECK_THROWS_AS(reader.readexactly(underflowed), coring::ValueError);
    CO_CHECK_THROWS_AS(reader.readexactly(std::size_t{1} << 63), coring::ValueError);
    std::string rest = co_await reader.read(); // nothing was taken
    CHECK(rest == "hello");
    writer.close();
    co_await writer.wait_closed();
}

CORING_TEST_CASE("StreamReader: readexactly of 1 TiB buffers what arrives and fails at EOF",
                 "[net][streams][reader][limits]") {
    // asyncio's readexactly buffers until n bytes or EOF; nothing is reserved ahead of the data.
    auto [a, b] = coring::socketpair();
    auto [reader, writer] = co_await coring::open_connection(std::move(a));
    constexpr std::size_t tib = std::size_t{1} << 40;
    auto pending = coring::create_task(reader.readexactly(tib));
    REQUIRE(::send(b.fd(), "hello", 5, MSG_NOSIGNAL) == 5);
    for (int i = 0; i < 4; ++i) {
        co_await coring::sleep(0s);
    }
    CHECK(!pending.done());
    CHECK(reader.buffered() == 5);
    ::shutdown(b.fd(), SHUT_WR);
    std::string partial = "none";
    std::optional<std::size_t> expected;
    try {
        co_await pending;
    } catch (const coring::IncompleteReadError& e) {
        partial = e.partial;
        expected = e.expected;
    }
    CHECK(partial == "hello");
    CHECK(expected == tib);
    writer.close();
    co_await writer.wait_closed();
}

CORING_TEST_CASE("StreamReader: a limit of SIZE_MAX or 1 TiB reads to EOF without reserving it",
                 "[net][streams][reader][limits]") {
    for (std::size_t limit : {SIZE_MAX, std::size_t{1} << 40}) {
        auto [a, b] = coring::socketpair();
        auto [reader, writer] = co_await coring::open_connection(std::move(a), limit);
        CHECK(reader.limit() == limit);
        REQUIRE(::send(b.fd(), "hello", 5, MSG_NOSIGNAL) == 5);
        ::shutdown(b.fd(), SHUT_WR);
        std::string all = co_await reader.read();
        CHECK(all == "hello");
        writer.close();
        co_await writer.wait_closed();
    }
}

CORING_TEST_CASE("StreamReader: readexactly of 3 MiB sent in pieces arrives whole",
                 "[net][streams][reader][limits]") {
    // The buffer grows by bounded steps as the data arrives.
    auto [a, b] = coring::socketpair();
    auto [reader, writer] = co_await coring::open_connection(std::move(a));
    auto [peer_reader, peer_writer] = co_await coring::open_connection(std::move(b));
    std::string data(3 << 20, 'x');
    for (std::size_t i = 0; i < data.size(); ++i) {
        data[i] = static_cast<char>('a' + i % 26);
    }
    auto got = coring::create_task(reader.readexactly(data.size()));
    for (std::size_t off = 0; off < data.size(); off += 100'000) {
        peer_writer.write(std::string_view(data).substr(off, 100'000));
        co_await peer_writer.drain();
    }
    std::string back = co_await got;
    CHECK(back == data);
    peer_writer.close();
    writer.close();
    co_await peer_writer.wait_closed();
    co_await writer.wait_closed();
}

// ---- echo round trips ----

CORING_TEST_CASE("Streams: an echo round trip over IPv4", "[net][streams]") {
    auto server = co_await coring::start_server(echo_handler, "127.0.0.1", 0);
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port_of(server));
    std::string back = co_await echo_once(reader, writer, "hello over IPv4\n");
    CHECK(back == "hello over IPv4\n");
    server.close();
    co_await server.wait_closed();
    CHECK(coring::get_running_loop().io_in_flight() == 0);
}

TEST_CASE("Streams: an echo round trip over IPv6", "[net][streams]") {
    if (!coring::test::ipv6_available()) {
        CORING_SKIP("IPv6 loopback is not available");
    }
    coring::test::run_test([]() -> Task<> {
        auto server = co_await coring::start_server(echo_handler, "::1", 0);
        CHECK(server.sockets().at(0).getsockname().is_ipv6());
        auto [reader, writer] = co_await coring::open_connection("::1", port_of(server));
        auto peer = writer.peername();
        REQUIRE(peer.has_value());
        CHECK(peer->to_string() == "[::1]:" + std::to_string(port_of(server)));
        std::string back = co_await echo_once(reader, writer, "hello over IPv6\n");
        CHECK(back == "hello over IPv6\n");
        server.close();
        co_await server.wait_closed();
    });
}

CORING_TEST_CASE("Streams: an echo round trip over a Unix socket", "[net][streams][unix]") {
    coring::test::TempDir dir;
    std::string path = dir.file("echo.sock");
    auto server = co_await coring::start_unix_server(echo_handler, path);
    auto [reader, writer] = co_await coring::open_unix_connection(path);
    std::string back = co_await echo_once(reader, writer, "hello over Unix\n");
    CHECK(back == "hello over Unix\n");
    server.close();
    co_await server.wait_closed();
    CHECK(::access(path.c_str(), F_OK) != 0); // the socket file is removed at close
}

CORING_TEST_CASE("open_unix_connection: a missing path raises ENOENT naming it",
                 "[net][streams][unix]") {
    coring::test::TempDir dir;
    std::string path = dir.file("nobody.sock");
    int code = 0;
    std::string what;
    try {
        static_cast<void>(co_await coring::open_unix_connection(path));
    } catch (const std::system_error& e) {
        code = e.code().value();
        what = e.what();
    }
    CHECK(code == ENOENT);
    CHECK(what.rfind("connect " + path + ":", 0) == 0);
}

CORING_TEST_CASE("Streams: pipes carry lines through connect_write_pipe and connect_read_pipe",
                 "[net][streams][pipe]") {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
    StreamReader reader = coring::connect_read_pipe(fds[0]);
    StreamWriter writer = coring::connect_write_pipe(fds[1]);
    CHECK(writer.can_write_eof());
    writer.write("line1\nline2\n");
    writer.write_eof(); // closes the pipe after the data
    std::string a = co_await reader.readline();
    std::string b = co_await reader.readline();
    std::string c = co_await reader.read();
    CHECK(a == "line1\n");
    CHECK(b == "line2\n");
    CHECK(c.empty());
    CHECK(reader.at_eof());
    co_await writer.wait_closed();
}

// ---- the writer ----

CORING_TEST_CASE("StreamWriter: writes made in one iteration leave in one send", "[net][streams]") {
    auto [a, b] = coring::socketpair();
    auto [ra, wa] = co_await coring::open_connection(std::move(a));
    auto [rb, wb] = co_await coring::open_connection(std::move(b));
    wa.write(std::string(100, 'a'));
    wa.write(std::string(100, 'b'));
    wa.writelines(std::vector<std::string>{std::string(100, 'c'), "\n"});
    co_await wa.drain();
    char buf[1024];
    std::size_t n = co_await rb.read_into(buf);
    CHECK(n == 301); // one send: the reader's single recv gets everything
    CHECK(std::string_view(buf + 295, 6) == "ccccc\n");
}

CORING_TEST_CASE("StreamWriter: write after write_eof raises RuntimeError", "[net][streams]") {
    auto [a, b] = coring::socketpair();
    auto [ra, wa] = co_await coring::open_connection(std::move(a));
    wa.write_eof();
    CHECK_THROWS_AS(wa.write("late"), coring::RuntimeError);
    CHECK_THROWS_AS(wa.set_write_buffer_limits(10, 20), coring::ValueError);
    wa.set_write_buffer_limits(std::nullopt, 100);
    CHECK(wa.get_write_buffer_limits() == std::pair<std::size_t, std::size_t>(100, 400));
    co_return;
}

CORING_TEST_CASE("StreamWriter: get_extra_info gives peername, sockname and socket",
                 "[net][streams]") {
    auto server = co_await coring::start_server(echo_handler, "127.0.0.1", 0);
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port_of(server));
    auto peer = std::any_cast<coring::SocketAddress>(writer.get_extra_info("peername"));
    auto local = std::any_cast<coring::SocketAddress>(writer.get_extra_info("sockname"));
    CHECK(peer.to_string() == "127.0.0.1:" + std::to_string(port_of(server)));
    CHECK(local.host() == "127.0.0.1");
    CHECK(std::any_cast<int>(writer.get_extra_info("socket")) == writer.fd());
    CHECK(std::any_cast<int>(writer.get_extra_info("nothing", 7)) == 7);
    // TCP_NODELAY, as asyncio sets it.
    int nodelay = 0;
    socklen_t len = sizeof nodelay;
    ::getsockopt(writer.fd(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &len);
    CHECK(nodelay == 1);
    writer.close();
    co_await writer.wait_closed();
    CHECK(writer.fd() == -1);
    server.close();
    co_await server.wait_closed();
}

CORING_TEST_CASE("Server: accepted connections have TCP_NODELAY", "[net][streams][server]") {
    auto flag = std::make_shared<int>(-1);
    coring::Future<void> seen;
    auto cb = [flag, seen](StreamReader, StreamWriter w) -> Task<> {
        int v = 0;
        socklen_t len = sizeof v;
        ::getsockopt(w.fd(), IPPROTO_TCP, TCP_NODELAY, &v, &len);
        *flag = v;
        seen.set_result();
        co_return;
    };
    auto server = co_await coring::start_server(cb, "127.0.0.1", 0);
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port_of(server));
    co_await seen;
    CHECK(*flag == 1);
}

// ---- volume and backpressure ----

namespace {

Task<std::size_t> count_until_eof(StreamReader reader, std::chrono::milliseconds pause_every_mib) {
    std::size_t total = 0;
    std::size_t next_pause = 1 << 20;
    std::vector<char> buf(256 * 1024);
    for (;;) {
        std::size_t n = co_await reader.read_into(buf);
        if (n == 0) {
            break;
        }
        total += n;
        if (pause_every_mib.count() > 0 && total >= next_pause) {
            next_pause += 1 << 20;
            co_await coring::sleep(pause_every_mib); // a slow reader
        }
    }
    co_return total;
}

// Writes total bytes in chunks with drain; returns the largest write buffer seen after drain.
Task<std::size_t> write_with_drain(StreamWriter writer, std::size_t total, std::size_t chunk) {
    std::string block(chunk, 'z');
    std::size_t max_buffered = 0;
    for (std::size_t sent = 0; sent < total; sent += chunk) {
        writer.write(block);
        max_buffered = std::max(max_buffered, writer.get_write_buffer_size());
        co_await writer.drain();
    }
    writer.write_eof();
    co_return max_buffered;
}

} // namespace

CORING_TEST_CASE("Streams: a 1 MiB transfer with drain arrives whole", "[net][streams]") {
    auto [a, b] = coring::socketpair();
    auto [ra, wa] = co_await coring::open_connection(std::move(a));
    auto [rb, wb] = co_await coring::open_connection(std::move(b));
    std::string payload(1 << 20, '\0');
    for (std::size_t i = 0; i < payload.size(); ++i) {
        payload[i] = static_cast<char>(i * 7 + i / 4096);
    }
    wa.write(payload);
    auto drained = coring::create_task(wa.drain());
    std::string got = co_await rb.readexactly(payload.size());
    co_await drained;
    CHECK(got == payload);
    CHECK(wa.get_write_buffer_size() == 0);
}

CORING_TEST_CASE("Streams: a 64 MiB transfer to a slow reader keeps the write buffer bounded",
                 "[net][streams][slow]") {
    auto server_total = std::make_shared<std::size_t>(0);
    coring::Future<void> done;
    auto cb = [server_total, done](StreamReader r, StreamWriter w) -> Task<> {
        *server_total = co_await count_until_eof(r, 1ms);
        w.write("ok\n");
        w.close();
        done.set_result();
    };
    auto server = co_await coring::start_server(cb, "127.0.0.1", 0);
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port_of(server));
    constexpr std::size_t total = 64u << 20;
    constexpr std::size_t chunk = 64u << 10;
    std::size_t max_buffered = co_await write_with_drain(writer, total, chunk);
    // drain() let the buffer grow past the 64 KiB high-water mark by one chunk at most.
    CHECK(max_buffered <= 64 * 1024 + chunk);
    co_await done;
    CHECK(*server_total == total);
    std::string ok = co_await reader.readline();
    CHECK(ok == "ok\n");
}

CORING_TEST_CASE("Streams: write_eof half-closes, the peer reads to EOF and still answers",
                 "[net][streams]") {
    auto server = co_await coring::start_server(
            [](StreamReader r, StreamWriter w) -> Task<> {
                std::string request = co_await r.read(); // until the client's EOF
                w.write("got " + std::to_string(request.size()) + " bytes");
                w.close();
                co_await w.wait_closed();
            },
            "127.0.0.1",
            0);
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port_of(server));
    writer.write(std::string(100000, 'q'));
    writer.write_eof();
    std::string answer = co_await reader.read();
    CHECK(answer == "got 100000 bytes");
    CHECK(reader.at_eof());
    writer.close();
    co_await writer.wait_closed();
}

// ---- a misbehaving peer ----

CORING_TEST_CASE("Streams: a peer reset while the server writes fails drain with a ConnectionError",
                 "[net][streams][reset]") {
    struct Outcome {
        int code = 0;
        std::string what;
        bool connection_error = false;
    };

    auto outcome = std::make_shared<Outcome>();
    coring::Future<void> failed;
    auto cb = [outcome, failed](StreamReader, StreamWriter w) -> Task<> {
        std::string block(64 * 1024, 'w');
        try {
            for (;;) {
                w.write(block);
                co_await w.drain();
            }
        } catch (const coring::ConnectionError& e) {
            outcome->connection_error = true;
            outcome->code = e.code().value();
            outcome->what = e.what();
        } catch (const std::system_error& e) {
            outcome->code = e.code().value();
            outcome->what = e.what();
        }
        if (!failed.done()) {
            failed.set_result(); // the first connection's outcome is checked
        }
    };
    auto server = co_await coring::start_server(cb, "127.0.0.1", 0);
    coring::Socket client(AF_INET, SOCK_STREAM);
    co_await coring::sock_connect(client, coring::SocketAddress::ip("127.0.0.1", port_of(server)));
    std::string first = co_await coring::sock_recv(client, 1000);
    CHECK(!first.empty());
    set_linger_zero(client.fd());
    co_await client.close(); // RST
    co_await failed;
    CHECK(outcome->connection_error);
    CHECK((outcome->code == ECONNRESET || outcome->code == EPIPE));
    CHECK(outcome->what.rfind("send ", 0) == 0);
    // The server goes on serving.
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port_of(server));
    std::string data = co_await reader.readexactly(10);
    CHECK(data == "wwwwwwwwww");
    writer.close();
    server.close();
    co_await server.wait_closed(); // the handler ends once it meets the closed socket
}

CORING_TEST_CASE("Streams: a peer reset while the server reads raises ConnectionResetError there",
                 "[net][streams][reset]") {
    auto what = std::make_shared<std::string>();
    coring::Future<void> failed;
    auto cb = [what, failed](StreamReader r, StreamWriter w) -> Task<> {
        try {
            static_cast<void>(co_await r.readline());
        } catch (const coring::ConnectionResetError& e) {
            *what = e.what();
        }
        // The writer sees the same error.
        try {
            co_await w.drain();
        } catch (const coring::ConnectionResetError&) {
            *what += " | drain";
        }
        failed.set_result();
    };
    auto server = co_await coring::start_server(cb, "127.0.0.1", 0);
    coring::Socket client(AF_INET, SOCK_STREAM);
    auto address = coring::SocketAddress::ip("127.0.0.1", port_of(server));
    co_await coring::sock_connect(client, address);
    co_await coring::sock_sendall(client, "a partial line");
    set_linger_zero(client.fd());
    co_await client.close();
    co_await failed;
    CHECK(what->rfind("recv ", 0) == 0);
    CHECK(what->find("Connection reset by peer | drain") != std::string::npos);
}

CORING_TEST_CASE("Server: 10 MiB without a newline fails readline, other clients are served",
                 "[net][streams][server]") {
    auto overruns = std::make_shared<int>(0);
    auto cb = [overruns](StreamReader r, StreamWriter w) -> Task<> {
        try {
            for (;;) {
                std::string line = co_await r.readline();
                if (line.empty()) {
                    break;
                }
                w.write(line);
                co_await w.drain();
            }
        } catch (const coring::ValueError&) {
            ++*overruns;
        }
        w.close();
    };
    auto server = co_await coring::start_server(cb, "127.0.0.1", 0);
    std::uint16_t port = port_of(server);
    auto flood = coring::create_task([](std::uint16_t p) -> Task<bool> {
        auto [reader, writer] = co_await coring::open_connection("127.0.0.1", p);
        std::string junk(1 << 20, 'x');
        try {
            for (int i = 0; i < 10; ++i) {
                writer.write(junk);
                co_await writer.drain();
            }
            std::string rest = co_await reader.read();
            co_return rest.empty(); // the server closed the connection
        } catch (const std::system_error&) {
            co_return true; // or reset it, having data left to read
        }
    }(port));
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port);
    writer.write("polite\n");
    std::string echo = co_await reader.readline();
    CHECK(echo == "polite\n");
    bool flood_ended = co_await flood;
    CHECK(flood_ended);
    CHECK(*overruns == 1);
    writer.write("still here\n");
    std::string again = co_await reader.readline();
    CHECK(again == "still here\n");
    writer.close();
    server.close();
    co_await server.wait_closed();
}

TEST_CASE("Server: an exception escaping a connection's task is reported, the server goes on",
          "[net][streams][server]") {
    coring::test::LogCapture logs;
    coring::test::run_test([]() -> Task<> {
        auto server = co_await coring::start_server(
                [](StreamReader r, StreamWriter w) -> Task<> {
                    std::string line = co_await r.readline();
                    if (line == "boom\n") {
                        throw std::runtime_error("handler failed");
                    }
                    w.write(line);
                },
                "127.0.0.1",
                0);
        {
            auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port_of(server));
            writer.write("boom\n");
            std::string rest = co_await reader.read(); // the failed task's writer closes
            CHECK(rest.empty());
        }
        auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port_of(server));
        writer.write("fine\n");
        std::string line = co_await reader.readline();
        CHECK(line == "fine\n");
        server.close();
        co_await server.wait_closed();
    });
    CHECK(logs.contains("handler failed"));
}

TEST_CASE("Server: accept survives running out of file descriptors", "[net][streams][server]") {
    coring::test::LogCapture logs;
    rlimit saved{};
    ::getrlimit(RLIMIT_NOFILE, &saved);
    int base = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(base >= 0);
    // io_uring's accept takes RLIMIT_NOFILE when it is submitted: lower the limit before the
    // server arms its accept, as a process that really runs out would have it all along.
    rlimit low = saved;
    low.rlim_cur = static_cast<rlim_t>(base + 32);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
    coring::test::run_test([base, saved]() -> Task<> {
        coring::ServerOptions options;
        options.accept_retry_delay = 20ms;
        auto server = co_await coring::start_server(line_echo_handler, "127.0.0.1", 0, options);
        auto address = coring::SocketAddress::ip("127.0.0.1", port_of(server));

        auto reported = std::make_shared<coring::Future<void>>();
        auto& loop = coring::get_running_loop();
        loop.set_exception_handler(
                [reported](coring::EventLoop& l, const coring::ExceptionContext& ctx) {
                    l.default_exception_handler(ctx);
                    if (ctx.message.find("out of system resource") != std::string::npos &&
                        !reported->done()) {
                        reported->set_result();
                    }
                });

        // Sanitizer builds: UBSan's vptr check opens a pipe the first time it meets a type,
        // which fails while no descriptor is free. Take the paths the test takes while the
        // descriptors are exhausted once beforehand, so that those checks are cached.
        {
            coring::Socket warm(AF_INET, SOCK_STREAM);
            co_await coring::sock_connect(warm, address);
            co_await coring::sock_sendall(warm, "warm\n");
            char buf[16];
            static_cast<void>(co_await coring::sock_recv_into(warm, buf));
            loop.call_exception_handler({"warm-up: out of system resource",
                                         coring::make_os_error(EMFILE, "x"),
                                         {},
                                         {}});
            co_await *reported;
            *reported = coring::Future<void>();
            co_await warm.close();
        }

        // The client's socket exists before the descriptors run out.
        coring::Socket client(AF_INET, SOCK_STREAM);
        std::vector<int> hogs;
        for (int fd; (fd = ::fcntl(base, F_DUPFD_CLOEXEC, 0)) >= 0;) {
            hogs.push_back(fd);
        }
        int exhausted_errno = errno;                    // asserted once descriptors are free again
        co_await coring::sock_connect(client, address); // completes in the listen backlog
        co_await *reported;                             // the server's accept hit EMFILE
        for (int fd : hogs) {
            ::close(fd);
        }
        ::setrlimit(RLIMIT_NOFILE, &saved);
        loop.set_exception_handler(nullptr);
        CHECK(exhausted_errno == EMFILE);
        CHECK(hogs.size() > 4);

        // The accept is armed again after accept_retry_delay: the waiting client is served.
        co_await coring::sock_sendall(client, "after EMFILE\n");
        char buf[64];
        std::size_t n = co_await coring::sock_recv_into(client, buf);
        CHECK(std::string_view(buf, n) == "after EMFILE\n");
        CHECK(server.is_serving());
        co_await client.close();
        server.close();
        co_await server.wait_closed();
    });
    ::setrlimit(RLIMIT_NOFILE, &saved);
    ::close(base);
    CHECK(logs.contains("socket.accept() out of system resource"));
    CHECK(logs.contains("Too many open files"));
}

TEST_CASE("Server: single accepts serve as well (kernels without multishot accept)",
          "[net][streams][server]") {
    coring::detail::set_multishot_accept(false);
    coring::test::run_test([]() -> Task<> {
        auto server = co_await coring::start_server(line_echo_handler, "127.0.0.1", 0);
        std::vector<coring::TaskHandle<bool>> clients;
        for (int i = 0; i < 20; ++i) {
            clients.push_back(coring::create_task(ping_client(port_of(server), i)));
        }
        int ok = 0;
        for (auto& c : clients) {
            ok += (co_await c) ? 1 : 0;
        }
        CHECK(ok == 20);
        CHECK(coring::get_running_loop().io_in_flight() == 1); // one single accept armed
        server.close();
        co_await server.wait_closed();
        CHECK(coring::get_running_loop().io_in_flight() == 0);
    });
    coring::detail::set_multishot_accept(true);
}

// ---- closing ----

CORING_TEST_CASE(
        "Server: close stops listening, open connections go on, wait_closed waits for them",
        "[net][streams][server]") {
    auto server = co_await coring::start_server(line_echo_handler, "127.0.0.1", 0);
    std::uint16_t port = port_of(server);
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port);
    writer.write("before\n");
    std::string a = co_await reader.readline();
    CHECK(a == "before\n");
    CHECK(server.connection_count() == 1);

    server.close();
    CHECK(!server.is_serving());
    CHECK(server.sockets().empty());
    auto closed = coring::create_task(server.wait_closed());
    co_await coring::sleep(10ms);
    CHECK(!closed.done()); // a connection is still open

    CO_CHECK_THROWS_AS(coring::open_connection("127.0.0.1", port), coring::ConnectionRefusedError);
    writer.write("after\n");
    std::string b = co_await reader.readline();
    CHECK(b == "after\n");

    writer.close();
    co_await writer.wait_closed();
    co_await closed; // the handler saw EOF and closed its side
    CHECK(server.connection_count() == 0);
}

CORING_TEST_CASE("Server: close_clients closes the open connections", "[net][streams][server]") {
    auto server = co_await coring::start_server(line_echo_handler, "127.0.0.1", 0);
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port_of(server));
    writer.write("x\n");
    std::string line = co_await reader.readline();
    CHECK(line == "x\n");
    server.close();
    server.close_clients();
    co_await server.wait_closed();
    std::string rest = co_await reader.read(); // EOF from the server
    CHECK(rest.empty());
}

// ---- closing: close() takes effect at once (issue 10, defects 5 and 8) ----

namespace {

// errno of a blocking connect(2) to address, 0 when it connected. Not through the loop: the
// kernel's answer at this moment, before anything queued in the ring has been submitted.
int connect_now(const coring::SocketAddress& address) {
    coring::Socket s(address.family(), SOCK_STREAM);
    timeval tv{5, 0}; // a connect that hangs fails the test instead of the run
    ::setsockopt(s.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int err = ::connect(s.fd(), address.data(), address.size()) == 0 ? 0 : errno;
    ::close(s.release());
    return err;
}

// Starts a server, closes it, and checks that a connect is refused (errno `refused`) right
// after close() and after wait_closed(), rounds times. Odd rounds close before the accept has
// reached the kernel, even rounds after an iteration of the loop.
template <class Start>
Task<> check_close_refuses(Start start, int refused, int rounds) {
    for (int i = 0; i < rounds; ++i) {
        auto [server, address] = co_await start();
        if (i % 2 == 0) {
            co_await coring::sleep(0s);
        }
        server.close();
        int after_close = connect_now(address);
        co_await server.wait_closed();
        int after_wait = connect_now(address);
        INFO("round " << i);
        CHECK(after_close == refused);
        CHECK(after_wait == refused);
        if (after_close != refused || after_wait != refused) {
            break; // one failing round says it all
        }
    }
}

// A server on a port bound by number and without SO_REUSEADDR. A listener bound to port 0
// gives its port back when it stops listening, and a test server of another process on the
// machine could take it before the checks are done; this one keeps it until its fd is closed.
Task<std::pair<coring::Server, coring::SocketAddress>>
tcp_server(std::string host, coring::ClientConnectedCallback handler = echo_handler) {
    coring::ServerOptions options;
    options.reuse_address = false;
    for (int attempt = 0;; ++attempt) {
        auto address = coring::SocketAddress::ip(host, 0);
        coring::Socket probe(address.family(), SOCK_STREAM);
        probe.bind(address);
        std::uint16_t port = probe.getsockname().port();
        ::close(probe.release());
        try {
            auto server = co_await coring::start_server(handler, host, port, options);
            co_return std::pair{server, coring::SocketAddress::ip(host, port)};
        } catch (const std::system_error& e) {
            // EADDRINUSE: the port was taken meanwhile; try another.
            if (e.code().value() != EADDRINUSE || attempt == 20) {
                throw;
            }
        }
    }
}

Task<std::pair<coring::Server, coring::SocketAddress>> unix_server(std::string path) {
    auto server = co_await coring::start_unix_server(echo_handler, path);
    co_return std::pair{server, coring::SocketAddress::unix_path(path)};
}

// Reads until EOF and adds up the bytes in *count, then closes.
Task<> count_bytes(StreamReader reader, StreamWriter writer, std::shared_ptr<std::size_t> count) {
    char buf[65536];
    for (;;) {
        std::size_t n = co_await reader.read_into(buf);
        if (n == 0) {
            break;
        }
        *count += n;
    }
    writer.close();
    co_await writer.wait_closed();
}

} // namespace

CORING_TEST_CASE("Server: a connect right after close() or wait_closed() is refused",
                 "[net][streams][server]") {
    co_await check_close_refuses([] { return tcp_server("127.0.0.1"); }, ECONNREFUSED, 100);
}

TEST_CASE("Server: a connect right after close() is refused with single accepts too",
          "[net][streams][server]") {
    coring::detail::set_multishot_accept(false);
    coring::test::run_test([]() -> Task<> {
        co_await check_close_refuses([] { return tcp_server("127.0.0.1"); }, ECONNREFUSED, 100);
    });
    coring::detail::set_multishot_accept(true);
}

TEST_CASE("Server: a connect right after close() is refused over IPv6",
          "[net][streams][server][ipv6]") {
    if (!coring::test::ipv6_available()) {
        CORING_SKIP("no IPv6 loopback");
    }
    coring::test::run_test([]() -> Task<> {
        co_await check_close_refuses([] { return tcp_server("::1"); }, ECONNREFUSED, 100);
    });
}

CORING_TEST_CASE("Server: a Unix server's socket is gone right after close()",
                 "[net][streams][server][unix]") {
    coring::test::TempDir dir;
    std::string path = dir.file("close.sock");
    // The file is removed at close (asyncio 3.13), so the connect finds nothing.
    co_await check_close_refuses([&] { return unix_server(path); }, ENOENT, 100);
    CHECK(::access(path.c_str(), F_OK) != 0);
    // An abstract name has no file: the socket itself must refuse, and each round binds
    // the name again, which fails while the last round's socket is still open.
    std::string abstract = std::string(1, '\0') + "coring-close-" + std::to_string(::getpid());
    co_await check_close_refuses([&] { return unix_server(abstract); }, ECONNREFUSED, 100);
}

CORING_TEST_CASE("Server: close() refuses new connections at once and keeps the open ones",
                 "[net][streams][server]") {
    auto [server, address] = co_await tcp_server("127.0.0.1", line_echo_handler);
    std::uint16_t port = address.port();
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port);
    writer.write("before\n");
    std::string a = co_await reader.readline();
    CHECK(a == "before\n");

    server.close();
    CHECK(connect_now(address) == ECONNREFUSED);
    CO_CHECK_THROWS_AS(coring::open_connection("127.0.0.1", port), coring::ConnectionRefusedError);
    auto closed = coring::create_task(server.wait_closed());
    co_await coring::sleep(20ms);
    CHECK(!closed.done()); // asyncio 3.12: wait_closed waits for the connections
    CHECK(server.connection_count() == 1);

    writer.write("after\n"); // the open connection is served as before
    std::string b = co_await reader.readline();
    CHECK(b == "after\n");
    writer.close();
    co_await writer.wait_closed();
    co_await closed;
    CHECK(server.connection_count() == 0);
    CHECK(connect_now(address) == ECONNREFUSED);
}

CORING_TEST_CASE("StreamWriter: drain() right after close() raises ConnectionResetError",
                 "[net][streams]") {
    auto server = co_await coring::start_server(echo_handler, "127.0.0.1", 0);
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port_of(server));
    writer.close();
    CHECK(writer.is_closing());
    CO_CHECK_THROWS_AS(writer.drain(), coring::ConnectionResetError);
    // asyncio drops writes after close and warns from the fifth on.
    coring::test::LogCapture logs;
    for (int i = 0; i < 4; ++i) {
        writer.write("dropped");
    }
    CHECK(!logs.contains("socket.send() raised exception."));
    writer.write("dropped");
    CHECK(logs.contains("socket.send() raised exception."));
    co_await coring::sleep(0s);
    CO_CHECK_THROWS_AS(writer.drain(), coring::ConnectionResetError);
    co_await writer.wait_closed();
    CO_CHECK_THROWS_AS(writer.drain(), coring::ConnectionResetError);
    server.close();
    co_await server.wait_closed();
}

CORING_TEST_CASE("StreamWriter: what was written before close() reaches the peer whole",
                 "[net][streams]") {
    auto count = std::make_shared<std::size_t>(0);
    auto cb = [count](StreamReader r, StreamWriter w) {
        return count_bytes(r, w, count);
    };
    auto server = co_await coring::start_server(cb, "127.0.0.1", 0);
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port_of(server));
    constexpr std::size_t size = 4 * 1024 * 1024; // far above the high-water mark
    writer.write(std::string(size, 'x'));
    writer.close();
    CHECK(writer.is_closing());
    writer.write("late"); // dropped, as asyncio's transport drops writes after close
    CO_CHECK_THROWS_AS(writer.drain(), coring::ConnectionResetError);
    co_await writer.wait_closed();
    server.close();
    co_await server.wait_closed(); // the handler read to EOF
    CHECK(*count == size);
}

CORING_TEST_CASE("StreamWriter: the peer sees EOF once wait_closed() returns", "[net][streams]") {
    coring::Socket listener(AF_INET, SOCK_STREAM);
    listener.bind(coring::SocketAddress::ip("127.0.0.1", 0));
    listener.listen();
    std::uint16_t port = listener.getsockname().port();
    for (int i = 0; i < 100; ++i) {
        auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port);
        coring::Socket peer = coring::Socket::from_fd(
                ::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        REQUIRE(peer);
        // A read in flight holds the socket in the kernel: close() must still end it.
        auto reading = coring::create_task(reader.read(100));
        co_await coring::sleep(0s);
        writer.write("bye");
        writer.close();
        co_await writer.wait_closed();
        char buf[16];
        ssize_t n = ::recv(peer.fd(), buf, sizeof buf, 0);
        ssize_t end = ::recv(peer.fd(), buf, sizeof buf, 0);
        INFO("round " << i << ", errno " << errno);
        CHECK(n == 3);
        CHECK(end == 0); // EOF now, not EAGAIN
        std::string got = co_await reading;
        CHECK(got.empty());
        ::close(peer.release());
        if (n != 3 || end != 0) {
            break;
        }
    }
}

CORING_TEST_CASE("Server: serve_forever raises CancelledError when the server is closed",
                 "[net][streams][server]") {
    coring::ServerOptions options;
    options.start_serving = false;
    auto server = co_await coring::start_server(echo_handler, "127.0.0.1", 0, options);
    CHECK(!server.is_serving());
    auto forever = coring::create_task(server.serve_forever());
    co_await coring::sleep(0s);
    CHECK(server.is_serving());
    CO_CHECK_THROWS_AS(server.serve_forever(), coring::RuntimeError);
    server.close();
    CO_CHECK_THROWS_AS(forever, coring::CancelledError);
    CO_CHECK_THROWS_AS(server.start_serving(), coring::RuntimeError);
}

CORING_TEST_CASE("start_server: a port in use raises EADDRINUSE naming the address",
                 "[net][streams][server]") {
    auto first = co_await coring::start_server(echo_handler, "127.0.0.1", 0);
    std::uint16_t port = port_of(first);
    coring::ServerOptions options;
    options.reuse_address = false;
    CO_CHECK_THROWS_WITH(coring::start_server(echo_handler, "127.0.0.1", port, options),
                         "bind 127.0.0.1:" + std::to_string(port) + ": Address already in use");
}

// ---- connecting ----

CORING_TEST_CASE("open_connection: a refused connection raises ConnectionRefusedError naming it",
                 "[net][streams]") {
    std::uint16_t port = coring::test::unused_port();
    CO_CHECK_THROWS_WITH(coring::open_connection("127.0.0.1", port),
                         "connect 127.0.0.1:" + std::to_string(port) + ": Connection refused");
    CO_CHECK_THROWS_AS(coring::open_connection("127.0.0.1", port), coring::ConnectionRefusedError);
}

CORING_TEST_CASE("open_connection: every address a name resolves to is tried in turn",
                 "[net][streams]") {
    // What a name with two addresses resolves to, the first of them refusing.
    auto server = co_await coring::start_server(echo_handler, "127.0.0.1", 0);
    auto refused =
            co_await coring::getaddrinfo("127.0.0.1", coring::test::unused_port(), 0, SOCK_STREAM);
    auto listening = co_await coring::getaddrinfo("127.0.0.1", port_of(server), 0, SOCK_STREAM);
    std::vector<coring::AddrInfo> both{refused.at(0), listening.at(0)};
    auto [reader, writer] = co_await coring::detail::connect_first(both, {}, "two.example:1", {});
    CHECK(writer.peername()->port() == port_of(server));
    std::string back = co_await echo_once(reader, writer, "fallback\n");
    CHECK(back == "fallback\n");

    // Every address refused with the same errno: one error saying so.
    std::vector<coring::AddrInfo> none{refused.at(0), refused.at(0)};
    CO_CHECK_THROWS_WITH(coring::detail::connect_first(none, {}, "two.example:1", {}),
                         "connect two.example:1 (every address): Connection refused");
    CO_CHECK_THROWS_AS(coring::detail::connect_first(none, {}, "two.example:1", {}),
                       coring::ConnectionRefusedError);
    server.close();
    co_await server.wait_closed();
}

CORING_TEST_CASE("open_connection: a name that does not resolve raises GaiError",
                 "[net][streams][threads]") {
    CO_CHECK_THROWS_AS(coring::open_connection("no-such-host.invalid", 80), coring::GaiError);
}

CORING_TEST_CASE("open_connection: local_addr binds the connecting socket", "[net][streams]") {
    auto server = co_await coring::start_server(echo_handler, "127.0.0.1", 0);
    std::uint16_t local_port = coring::test::unused_port();
    coring::ConnectOptions options;
    options.local_addr = coring::HostPort{"127.0.0.1", local_port};
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port_of(server), options);
    CHECK(writer.sockname()->port() == local_port);
    std::string back = co_await echo_once(reader, writer, "bound\n");
    CHECK(back == "bound\n");
    server.close();
    co_await server.wait_closed();
}

// Issue 10, defect 6: g++ 12 destroyed a braced options temporary inside co_await twice (a
// double free of the host string). The dev preset builds this with GCC 12; the asan preset
// would report the double free.
CORING_TEST_CASE("open_connection: braced options with local_addr inside co_await",
                 "[net][streams]") {
    auto server = co_await coring::start_server(
            echo_handler, "127.0.0.1", 0, {.backlog = 8, .reuse_address = true});
    std::uint16_t local_port = coring::test::unused_port();
    std::string host = "127.0.0.1";
    auto [reader, writer] = co_await coring::open_connection(
            "127.0.0.1",
            port_of(server),
            {.limit = 1024, .local_addr = coring::HostPort{host, local_port}});
    CHECK(writer.sockname()->port() == local_port);
    std::string back = co_await echo_once(reader, writer, "braced\n");
    CHECK(back == "braced\n");
    server.close();
    co_await server.wait_closed();
}

TEST_CASE("HostPort: holds its host inline and rejects hosts longer than a DNS name",
          "[net][streams]") {
    static_assert(std::is_trivially_destructible_v<coring::HostPort>);
    static_assert(std::is_trivially_destructible_v<coring::ConnectOptions>);
    coring::HostPort a{std::string("example.org"), 80};
    coring::HostPort b = a;
    CHECK(b.host.view() == "example.org");
    CHECK(b.host == a.host);
    CHECK(coring::HostName(std::string(255, 'a')).view().size() == 255);
    CHECK_THROWS_AS(coring::HostName(std::string(256, 'a')), coring::ValueError);
}

CORING_TEST_CASE("open_connection: cancelling a connect in progress cancels it in the kernel",
                 "[net][streams][cancel]") {
    // A listener that never accepts, with a backlog of 0: the first connection fills the
    // queue, the kernel drops the next SYN, and that connect stays in progress.
    coring::Socket listener(AF_INET, SOCK_STREAM);
    listener.bind(coring::SocketAddress::ip("127.0.0.1", 0));
    listener.listen(0);
    std::uint16_t port = listener.getsockname().port();
    auto first = co_await coring::open_connection("127.0.0.1", port);
    auto& loop = coring::get_running_loop();
    std::uint64_t before = loop.io_in_flight();
    auto stuck = coring::create_task(coring::open_connection("127.0.0.1", port));
    co_await coring::sleep(0s);
    co_await coring::sleep(0s);
    CHECK(loop.io_in_flight() == before + 1);
    CHECK(stuck.get_stack().find("sock_connect") != std::string::npos);
    stuck.cancel();
    CO_CHECK_THROWS_AS(stuck, coring::CancelledError);
    CHECK(stuck.cancelled());
    CHECK(loop.io_in_flight() == before);
}

CORING_TEST_CASE("Streams: cancelling a task blocked in readline cancels the recv in the kernel",
                 "[net][streams][cancel]") {
    auto server = co_await coring::start_server(line_echo_handler, "127.0.0.1", 0);
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port_of(server));
    auto& loop = coring::get_running_loop();
    co_await coring::sleep(0s);
    std::uint64_t before = loop.io_in_flight();
    auto blocked = coring::create_task(reader.readline());
    co_await coring::sleep(0s);
    co_await coring::sleep(0s);
    CHECK(loop.io_in_flight() == before + 1);
    blocked.cancel();
    CO_CHECK_THROWS_AS(blocked, coring::CancelledError);
    CHECK(loop.io_in_flight() == before);
    // The reader is usable again.
    writer.write("next\n");
    std::string line = co_await reader.readline();
    CHECK(line == "next\n");
    writer.close();
    co_await writer.wait_closed();
    server.close();
    co_await server.wait_closed();
    CHECK(loop.io_in_flight() == 0);
}

CORING_TEST_CASE("Streams: close() makes a waiting read see EOF", "[net][streams]") {
    auto [a, b] = coring::socketpair();
    auto [ra, wa] = co_await coring::open_connection(std::move(a));
    auto waiting = coring::create_task(ra.read(100));
    co_await coring::sleep(0s);
    wa.close();
    std::string got = co_await waiting;
    CHECK(got.empty());
    CHECK(ra.at_eof());
    co_await wa.wait_closed();
    CO_CHECK_THROWS_AS(wa.drain(), coring::ConnectionResetError); // asyncio: Connection lost
}

// ---- many clients ----

TEST_CASE("Server: 1,000 concurrent clients are served", "[net][streams][server]") {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_cur < 2200) {
        rlimit raised = lim;
        raised.rlim_cur = std::min<rlim_t>(lim.rlim_max, 4096);
        ::setrlimit(RLIMIT_NOFILE, &raised);
        ::getrlimit(RLIMIT_NOFILE, &raised);
        if (raised.rlim_cur < 2200) {
            CORING_SKIP("RLIMIT_NOFILE is too low for 1,000 connections");
        }
    }
    coring::test::run_test([]() -> Task<> {
        coring::ServerOptions options;
        options.backlog = 1024;
        auto server = co_await coring::start_server(line_echo_handler, "127.0.0.1", 0, options);
        std::vector<coring::TaskHandle<bool>> clients;
        for (int i = 0; i < 1000; ++i) {
            clients.push_back(coring::create_task(ping_client(port_of(server), i)));
        }
        int ok = 0;
        for (auto& c : clients) {
            ok += (co_await c) ? 1 : 0;
        }
        CHECK(ok == 1000);
        server.close();
        co_await server.wait_closed();
    });
    ::setrlimit(RLIMIT_NOFILE, &lim);
}
