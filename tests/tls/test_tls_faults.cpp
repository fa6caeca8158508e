// SPDX-License-Identifier: MIT
// TLS streams (coring::tls) against faults a real peer can make (issue 12): a plain TCP relay
// between a coring TLS client and a coring TLS server forwards the server's bytes record by
// record, and on the test's word cuts the connection mid-record or between records (without
// close_notify) or holds the rest of a record back. Also: the shutdown timeout against a peer
// that takes nothing, and cancellation closing the socket.
#include <coring/coring.hpp>
#include <coring/testing/catch2.hpp>
#include <coring/tls.hpp>

#include <catch2/catch.hpp>

#include <sys/ioctl.h>

#include <any>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "net/net_helpers.hpp"
#include "support/leak_check.hpp"
#include "support/test_support.hpp"
#include "tls/tls_certs.hpp"

using namespace std::chrono_literals;
using coring::StreamReader;
using coring::StreamWriter;
using coring::Task;
using coring::tls::SslContext;

namespace {

using coring::test::client_ctx;
using coring::test::localhost;
using coring::test::server_ctx;

// Bounds waits that end by themselves when all goes well.
constexpr auto guard = 10s;

std::string payload(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>('a' + i % 26);
    }
    return s;
}

/// The TLS server behind the relay: "ping\n" gets "pong\n", "send N\n" gets payload(N) in one
/// write (one record for N up to 16 KiB).
Task<> command_server(StreamReader r, StreamWriter w) {
    try {
        for (;;) {
            std::string line = co_await r.readline();
            if (line.empty()) {
                break;
            }
            if (line == "ping\n") {
                w.write("pong\n");
            } else if (line.starts_with("send ")) {
                w.write(payload(std::stoul(line.substr(5))));
            }
            co_await w.drain();
        }
    } catch (const std::exception&) {
        // The relay cut the connection: the faults under test are on the client's side.
    }
    w.close();
    try {
        co_await w.wait_closed();
    } catch (const std::exception&) {
    }
}

/// What the relay does with the server's records (set by the test before the server writes).
struct Relay {
    std::size_t records_left = SIZE_MAX; // records still forwarded whole
    std::size_t cut = 0;                 // then: bytes of the next record forwarded
    bool hold = false; // then: false, close the client's connection (FIN, no close_notify),
                       // at once when cut is 0; true, set `held` and forward the rest once
                       // `release` is set
    coring::Event held;
    coring::Event release;
    std::uint16_t upstream = 0; // the TLS server's port
};

// The client's bytes, verbatim, until the client closes.
Task<> pump_up(StreamReader from_client, StreamWriter to_server) {
    try {
        for (;;) {
            std::string data = co_await from_client.read(64 * 1024);
            if (data.empty()) {
                break;
            }
            to_server.write(data);
            co_await to_server.drain();
        }
    } catch (const std::exception&) {
    }
    to_server.close();
}

// The server's bytes, one TLS record (5-byte header, 2-byte length at offset 3) at a time.
Task<> pump_down(Relay& relay, StreamReader from_server, StreamWriter to_client) {
    try {
        for (;;) {
            if (relay.records_left == 0 && relay.cut == 0 && !relay.hold) {
                break; // cut between records: to_client.close() below
            }
            std::string record = co_await from_server.readexactly(5);
            std::size_t len = static_cast<std::uint8_t>(record[3]) * 256u +
                              static_cast<std::uint8_t>(record[4]);
            record += co_await from_server.readexactly(len);
            if (relay.records_left > 0) {
                if (relay.records_left != SIZE_MAX) {
                    --relay.records_left;
                }
                to_client.write(record);
                co_await to_client.drain();
                continue;
            }
            to_client.write(std::string_view(record).substr(0, relay.cut));
            co_await to_client.drain();
            if (!relay.hold) {
                break; // to_client.close() below: a FIN, no close_notify
            }
            relay.held.set();
            co_await relay.release.wait();
            to_client.write(std::string_view(record).substr(relay.cut));
            relay.records_left = SIZE_MAX;
        }
    } catch (const std::exception&) {
        // The server closed (IncompleteReadError) or the client went.
    }
    to_client.close();
}

// Runs f(reader, writer, relay) with a TLS client connected through the relay to
// command_server, after one ping round trip (the handshake and TLS 1.3's session tickets
// are through: the relay is between records and nothing more is on its way).
template <class F>
Task<> through_relay(F f) {
    Relay relay;
    SslContext sctx = server_ctx();
    auto server = co_await coring::start_server(command_server, "127.0.0.1", 0, {.ssl = sctx});
    relay.upstream = coring::test::port_of(server);
    auto relay_server = co_await coring::start_server(
            [&relay](StreamReader cr, StreamWriter cw) -> Task<> {
                auto [sr, sw] = co_await coring::open_connection("127.0.0.1", relay.upstream);
                auto up = coring::create_task(pump_up(cr, sw));
                co_await pump_down(relay, sr, cw);
                co_await up;
                try {
                    co_await sw.wait_closed();
                    co_await cw.wait_closed();
                } catch (const std::exception&) {
                }
            },
            "127.0.0.1",
            0);
    SslContext cctx = client_ctx();
    auto [reader, writer] =
            co_await coring::open_connection("127.0.0.1",
                                             coring::test::port_of(relay_server),
                                             {.ssl = cctx, .server_hostname = localhost});
    writer.write("ping\n");
    std::string pong = co_await reader.readline();
    REQUIRE(pong == "pong\n");
    co_await f(reader, writer, relay);
    relay.release.set();
    writer.close();
    try {
        co_await writer.wait_closed();
    } catch (const std::exception&) {
    }
    relay_server.close();
    co_await relay_server.wait_closed();
    server.close();
    co_await server.wait_closed();
}

// Bytes in fd's receive queue (not yet taken by a recv).
int unread_bytes(int fd) {
    int n = 0;
    REQUIRE(::ioctl(fd, FIONREAD, &n) == 0);
    return n;
}

// Lets the loop run until pred() holds, for about 5 s at most (a guard, not a delay: it returns
// as soon as pred() does); returns pred().
template <class Pred>
Task<bool> eventually(Pred pred) {
    for (int i = 0; i < 5000 && !pred(); ++i) {
        co_await coring::sleep(i < 20 ? 0ms : 1ms);
    }
    co_return pred();
}

// After the relay has sent the first `cut` bytes of a record: waits until the client's socket
// has handed them to coring's recv, so the record is half received inside the TLS filter.
Task<> until_half_received(Relay& relay, StreamWriter& writer) {
    co_await coring::wait_for(relay.held.wait(), guard);
    int fd = std::any_cast<int>(writer.get_extra_info("socket"));
    bool taken = co_await eventually([fd] { return unread_bytes(fd) == 0; });
    REQUIRE(taken);
}

// The sockets open in this process (other descriptors, such as the default executor's wake-up
// eventfd made on first use, may come and go).
std::set<int> open_sockets() {
    std::set<int> out;
    for (int fd : coring::test::open_fds()) {
        if (coring::test::fd_target(fd).starts_with("socket:")) {
            out.insert(fd);
        }
    }
    return out;
}

std::string describe(std::exception_ptr e) {
    return coring::describe_exception(e);
}

} // namespace

CORING_TEST_CASE(
        "TLS faults: a peer that closes mid-record without close_notify raises SslEofError",
        "[tls][faults]") {
    co_await through_relay([](StreamReader& reader, StreamWriter& writer, Relay& relay) -> Task<> {
        relay.records_left = 0;
        relay.cut = 100; // the header and 95 of the record's 1,000+ bytes, then FIN
        writer.write("send 1000\n");
        std::string outcome = "no exception";
        try {
            std::string got = co_await coring::wait_for(reader.read(64 * 1024), guard);
            outcome = "read " + std::to_string(got.size()) + " bytes";
        } catch (const coring::tls::SslEofError& e) {
            outcome = "SslEofError";
            CHECK(e.reason() == "UNEXPECTED_EOF");
            CHECK(std::string(e.what()).find("UNEXPECTED_EOF_WHILE_READING") != std::string::npos);
        } catch (...) {
            outcome = describe(std::current_exception());
        }
        CHECK(outcome == "SslEofError");
        CHECK_FALSE(reader.at_eof()); // not a clean end of stream
        // The error stays: the next read raises it again.
        CO_CHECK_THROWS_AS(reader.read(1), coring::tls::SslEofError);
    });
}

CORING_TEST_CASE("TLS faults: a peer that closes between records without close_notify raises "
                 "SslEofError after the data",
                 "[tls][faults]") {
    co_await through_relay([](StreamReader& reader, StreamWriter& writer, Relay& relay) -> Task<> {
        relay.records_left = 1; // the payload's record whole, then FIN
        relay.cut = 0;
        writer.write("send 1000\n");
        std::string got = co_await coring::wait_for(reader.readexactly(1000), guard);
        CHECK(got == payload(1000));
        std::string outcome = "no exception";
        try {
            std::string more = co_await coring::wait_for(reader.read(), guard);
            outcome = "read " + std::to_string(more.size()) + " bytes (a clean EOF)";
        } catch (const coring::tls::SslEofError&) {
            outcome = "SslEofError";
        } catch (...) {
            outcome = describe(std::current_exception());
        }
        CHECK(outcome == "SslEofError");
    });
}

CORING_TEST_CASE("TLS faults: a read cancelled over a half-received record loses nothing",
                 "[tls][faults]") {
    co_await through_relay([](StreamReader& reader, StreamWriter& writer, Relay& relay) -> Task<> {
        relay.records_left = 0;
        relay.cut = 700; // of a 4,000-byte record
        relay.hold = true;
        auto first = coring::create_task(reader.readexactly(4000));
        writer.write("send 4000\n");
        co_await until_half_received(relay, writer);
        CHECK_FALSE(first.done());
        first.cancel();
        CO_CHECK_THROWS_AS(first, coring::CancelledError);
        relay.release.set(); // the rest of the record
        std::string got = co_await coring::wait_for(reader.readexactly(4000), guard);
        CHECK(got == payload(4000));
        // And the stream goes on.
        writer.write("ping\n");
        std::string pong = co_await coring::wait_for(reader.readline(), guard);
        CHECK(pong == "pong\n");
    });
}

CORING_TEST_CASE("TLS faults: a read waiting for the rest of a record does not spin the loop",
                 "[tls][faults]") {
    co_await through_relay([](StreamReader& reader, StreamWriter& writer, Relay& relay) -> Task<> {
        relay.records_left = 0;
        relay.cut = 300;
        relay.hold = true;
        auto read = coring::create_task(reader.read(64 * 1024));
        writer.write("send 2000\n");
        co_await until_half_received(relay, writer);
        // The read now waits for the record's rest: one recv in the kernel and nothing
        // ready. EventLoop::iteration_count() is the public measure: over a 100 ms
        // window (a measurement, not a synchronisation) a loop that waits runs a
        // handful of iterations (this task's timer), one that re-polls a half record
        // runs thousands.
        coring::EventLoop& loop = coring::get_running_loop();
        std::uint64_t before = loop.iteration_count();
        co_await coring::sleep(100ms);
        std::uint64_t iterations = loop.iteration_count() - before;
        INFO("loop iterations in 100 ms: " << iterations);
        CHECK(iterations < 20);
        CHECK_FALSE(read.done());
        relay.release.set();
        std::string got = co_await coring::wait_for(read, guard);
        CHECK(got == payload(2000));
    });
}

CORING_TEST_CASE("TLS faults: close and wait_closed do not wait for the peer's close_notify",
                 "[tls][faults]") {
    // A TLS server that never closes (nor answers close_notify) until the test ends.
    coring::Event done;
    SslContext sctx = server_ctx();
    auto server = co_await coring::start_server(
            [&done](StreamReader, StreamWriter w) -> Task<> {
                co_await done.wait();
                w.abort();
            },
            "127.0.0.1",
            0,
            {.ssl = sctx});
    SslContext cctx = client_ctx();
    auto [reader, writer] = co_await coring::open_connection(
            "127.0.0.1",
            coring::test::port_of(server),
            {.ssl = cctx, .server_hostname = localhost, .ssl_shutdown_timeout = 30s});
    writer.write("something\n");
    co_await writer.drain();
    auto start = std::chrono::steady_clock::now();
    writer.close();
    co_await coring::wait_for(writer.wait_closed(), guard);
    auto took = std::chrono::steady_clock::now() - start;
    CHECK(took < 5s); // far below the 30 s shutdown timeout: no wait for the peer
    done.set();
    server.close();
    co_await server.wait_closed();
}

CORING_TEST_CASE("TLS faults: the shutdown timeout ends a close the peer never takes",
                 "[tls][faults]") {
    // A TLS server that reads nothing after the handshake: once the socket buffers are
    // full the client's data and close_notify cannot go out.
    coring::Event done;
    SslContext sctx = server_ctx();
    auto server = co_await coring::start_server(
            [&done](StreamReader, StreamWriter w) -> Task<> {
                co_await done.wait();
                w.abort();
            },
            "127.0.0.1",
            0,
            {.ssl = sctx});
    SslContext cctx = client_ctx();
    auto [reader, writer] = co_await coring::open_connection(
            "127.0.0.1",
            coring::test::port_of(server),
            {.ssl = cctx, .server_hostname = localhost, .ssl_shutdown_timeout = 300ms});
    // Far more than loopback socket buffers hold for a peer that does not read (its receive
    // buffer does not grow without reads), written without drain.
    writer.write(std::string(32 << 20, 'x'));
    auto start = std::chrono::steady_clock::now();
    writer.close();
    std::string outcome = "closed";
    try {
        co_await coring::wait_for(writer.wait_closed(), guard);
    } catch (const coring::TimeoutError&) {
        outcome = "still open after the guard";
    } catch (const std::exception&) {
        outcome = "closed"; // an aborted connection may report its error
    }
    auto took = std::chrono::steady_clock::now() - start;
    CHECK(outcome == "closed");
    CHECK(took >= 250ms); // the timer, not the peer, ended it
    CHECK(took < 5s);
    done.set();
    server.close();
    co_await server.wait_closed();
}

TEST_CASE("TLS faults: cancelling a task in the handshake or in a read closes its socket",
          "[tls][faults]") {
    SECTION("in the handshake") {
        coring::test::run_test([]() -> Task<> {
            // A plain server that takes the ClientHello and answers nothing; it closes its
            // side once the client's socket is gone.
            coring::Event accepted;
            auto server = co_await coring::start_server(
                    [&accepted](StreamReader r, StreamWriter w) -> Task<> {
                        accepted.set();
                        try {
                            static_cast<void>(co_await r.read());
                        } catch (const std::exception&) {
                        }
                        w.close();
                    },
                    "127.0.0.1",
                    0);
            std::set<int> before = open_sockets();
            SslContext cctx = client_ctx();
            std::uint16_t port = coring::test::port_of(server);
            // Arguments, not captures: the lambda is gone once create_task has the coroutine.
            auto task = coring::create_task([](SslContext& ctx, std::uint16_t p) -> Task<> {
                auto s = co_await coring::open_connection(
                        "127.0.0.1", p, {.ssl = ctx, .server_hostname = localhost});
            }(cctx, port));
            co_await coring::wait_for(accepted.wait(), guard);
            CHECK(open_sockets().size() == before.size() + 2); // client and server
            task.cancel();
            CO_CHECK_THROWS_AS(task, coring::CancelledError);
            bool back = co_await eventually([&] { return open_sockets() == before; });
            CHECK(back);
            server.close();
            co_await server.wait_closed();
        });
    }
    SECTION("in a read") {
        coring::test::run_test([]() -> Task<> {
            coring::Event connected;
            SslContext sctx = server_ctx();
            auto server = co_await coring::start_server(
                    [](StreamReader r, StreamWriter w) -> Task<> {
                        try {
                            static_cast<void>(co_await r.read());
                        } catch (const std::exception&) {
                        }
                        w.close();
                        try {
                            co_await w.wait_closed();
                        } catch (const std::exception&) {
                        }
                    },
                    "127.0.0.1",
                    0,
                    {.ssl = sctx});
            std::set<int> before = open_sockets();
            SslContext cctx = client_ctx();
            std::uint16_t port = coring::test::port_of(server);
            auto task = coring::create_task(
                    [](SslContext& ctx, coring::Event& ready, std::uint16_t p) -> Task<> {
                        auto [r, w] = co_await coring::open_connection(
                                "127.0.0.1", p, {.ssl = ctx, .server_hostname = localhost});
                        ready.set();
                        static_cast<void>(co_await r.read(100)); // nothing comes
                    }(cctx, connected, port));
            co_await coring::wait_for(connected.wait(), guard);
            co_await coring::sleep(0s); // the task is in its read
            CHECK(open_sockets().size() >= before.size() + 1);
            CHECK_FALSE(task.done());
            task.cancel();
            CO_CHECK_THROWS_AS(task, coring::CancelledError);
            bool back = co_await eventually([&] { return open_sockets() == before; });
            CHECK(back);
            server.close();
            co_await server.wait_closed();
        });
    }
}
