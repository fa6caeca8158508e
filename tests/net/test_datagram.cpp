// SPDX-License-Identifier: MIT
// Tests of net/datagram.hpp: DatagramEndpoint and create_datagram_endpoint (after CPython's
// test_asyncio/test_base_events.py create_datagram_endpoint tests).
#include <coring/net/datagram.hpp>
#include <coring/sleep.hpp>
#include <coring/testing/catch2.hpp>

#include <chrono>
#include <string>

#include "net/net_helpers.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::DatagramEndpoint;
using coring::DatagramOptions;
using coring::HostPort;
using coring::Task;

namespace {

Task<> udp_echo(DatagramEndpoint ep, int count) {
    for (int i = 0; i < count; ++i) {
        auto [data, from] = co_await ep.recvfrom();
        co_await ep.sendto(data, from);
    }
}

} // namespace

CORING_TEST_CASE("DatagramEndpoint: a ping to an echoing endpoint comes back", "[net][udp]") {
    DatagramOptions server_options;
    server_options.local_addr = HostPort{"127.0.0.1", 0};
    auto server = co_await coring::create_datagram_endpoint(server_options);
    auto server_addr = server.sockname();
    auto echo = coring::create_task(udp_echo(server, 2));

    DatagramOptions client_options;
    client_options.remote_addr = HostPort{"127.0.0.1", server_addr.port()};
    auto client = co_await coring::create_datagram_endpoint(client_options);
    REQUIRE(client.peername().has_value());
    CHECK(*client.peername() == server_addr);

    co_await client.sendto("ping 1");
    auto [data, from] = co_await client.recvfrom();
    CHECK(data == "ping 1");
    CHECK(from == server_addr);

    co_await client.sendto("ping 2", server_addr);
    char buf[64];
    auto [n, sender] = co_await client.recvfrom_into(buf);
    CHECK(std::string_view(buf, n) == "ping 2");
    co_await echo;

    // A connected endpoint refuses another destination, as asyncio's sendto does.
    CHECK_THROWS_AS(client.sendto("x", coring::SocketAddress::ip("127.0.0.1", 9)),
                    coring::ValueError);
    CHECK(std::any_cast<coring::SocketAddress>(client.get_extra_info("peername")) == server_addr);
    client.close();
    server.close();
}

// Issue 10, defect 6: the natural braced options inside co_await (GCC 12 used to destroy the
// HostPort strings twice).
CORING_TEST_CASE("DatagramEndpoint: braced options inside co_await bind and connect",
                 "[net][udp]") {
    auto server =
            co_await coring::create_datagram_endpoint({.local_addr = HostPort{"127.0.0.1", 0}});
    auto server_addr = server.sockname();
    auto echo = coring::create_task(udp_echo(server, 1));
    auto client = co_await coring::create_datagram_endpoint(
            {.remote_addr = HostPort{server_addr.host(), server_addr.port()}});
    REQUIRE(client.peername().has_value());
    CHECK(*client.peername() == server_addr);
    co_await client.sendto("braced");
    auto [data, from] = co_await client.recvfrom();
    CHECK(data == "braced");
    co_await echo;
    client.close();
    server.close();
}

CORING_TEST_CASE("DatagramEndpoint: close ends a receive that is waiting", "[net][udp]") {
    DatagramOptions options;
    options.local_addr = HostPort{"127.0.0.1", 0};
    auto ep = co_await coring::create_datagram_endpoint(options);
    auto waiting = coring::create_task(ep.recvfrom());
    co_await coring::sleep(0s);
    CHECK(coring::get_running_loop().io_in_flight() == 1);
    ep.close();
    CHECK(ep.is_closing());
    int code = 0;
    try {
        static_cast<void>(co_await waiting);
    } catch (const std::system_error& e) {
        code = e.code().value();
    }
    CHECK(code == EBADF);
    CHECK(coring::get_running_loop().io_in_flight() == 0);
    CO_CHECK_THROWS_AS(ep.recvfrom(), std::system_error);
}

CORING_TEST_CASE("DatagramEndpoint: an ICMP port unreachable surfaces as ECONNREFUSED",
                 "[net][udp]") {
    DatagramOptions options;
    options.remote_addr = HostPort{"127.0.0.1", coring::test::unused_port()};
    auto ep = co_await coring::create_datagram_endpoint(options);
    co_await ep.sendto("anyone?");
    int code = 0;
    try {
        static_cast<void>(co_await ep.recvfrom()); // asyncio: protocol.error_received
    } catch (const std::system_error& e) {
        code = e.code().value();
    }
    CHECK(code == ECONNREFUSED);
}

CORING_TEST_CASE("create_datagram_endpoint: nothing to bind or connect to is refused",
                 "[net][udp]") {
    CO_CHECK_THROWS_AS(coring::create_datagram_endpoint({}), coring::ValueError);
    DatagramOptions options;
    options.family = AF_INET;
    auto ep = co_await coring::create_datagram_endpoint(options);
    CHECK(ep.socket().type() == SOCK_DGRAM);
}
