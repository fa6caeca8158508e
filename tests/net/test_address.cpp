// SPDX-License-Identifier: MIT
// Tests of net/address.hpp: SocketAddress, getaddrinfo and getnameinfo (after CPython's
// test_asyncio/test_base_events.py getaddrinfo tests).
#include <coring/executor.hpp>
#include <coring/net/address.hpp>
#include <coring/testing/catch2.hpp>

#include <netdb.h>

#include <string>

#include "support/test_support.hpp"

using coring::SocketAddress;
using coring::Task;

TEST_CASE("SocketAddress: IPv4, IPv6 and Unix addresses print as expected", "[net][address]") {
    auto v4 = SocketAddress::ip("127.0.0.1", 8080);
    CHECK(v4.is_ipv4());
    CHECK(v4.to_string() == "127.0.0.1:8080");
    CHECK(v4.host() == "127.0.0.1");
    CHECK(v4.port() == 8080);
    CHECK(v4 == SocketAddress::ipv4(0x7f000001, 8080));

    auto v6 = SocketAddress::ip("::1", 8080);
    CHECK(v6.is_ipv6());
    CHECK(v6.to_string() == "[::1]:8080");
    CHECK(SocketAddress::ip("fe80::1%2", 80).to_string() == "[fe80::1%2]:80");

    auto path = SocketAddress::unix_path("/tmp/app.sock");
    CHECK(path.is_unix());
    CHECK(path.path() == "/tmp/app.sock");
    CHECK(path.to_string() == "/tmp/app.sock");
    auto abstract = SocketAddress::unix_path(std::string("\0name", 5));
    CHECK(abstract.to_string() == "@name");
    CHECK(abstract.path() == std::string("\0name", 5));

    CHECK(SocketAddress().to_string() == "<unspecified>");
    CHECK(!SocketAddress::parse("example.com", 80).has_value());
    CHECK(!SocketAddress::parse("127.1", 80).has_value()); // inet_pton, as asyncio
    CHECK_THROWS_AS(SocketAddress::ip("localhost", 1), coring::ValueError);
    CHECK_THROWS_AS(SocketAddress::unix_path(std::string(200, 'p')), coring::ValueError);
}

CORING_TEST_CASE("getaddrinfo: numeric hosts resolve on the loop thread", "[net][address]") {
    auto& loop = coring::get_running_loop();
    auto v4 = co_await coring::getaddrinfo("127.0.0.1", 80, 0, SOCK_STREAM);
    REQUIRE(v4.size() == 1);
    CHECK(v4[0].family == AF_INET);
    CHECK(v4[0].protocol == IPPROTO_TCP);
    CHECK(v4[0].address.to_string() == "127.0.0.1:80");

    // Without a socket type, glibc's three answers: stream, datagram, raw.
    auto all = co_await coring::getaddrinfo("::1", "443");
    REQUIRE(all.size() == 3);
    CHECK(all[0].type == SOCK_STREAM);
    CHECK(all[1].type == SOCK_DGRAM);
    CHECK(all[2].type == SOCK_RAW);
    CHECK(all[0].address.to_string() == "[::1]:443");

    // AI_NUMERICHOST: a name is an immediate error, still without a thread.
    int code = 0;
    try {
        static_cast<void>(co_await coring::getaddrinfo(
                "not.numeric.invalid", 80, 0, SOCK_STREAM, 0, AI_NUMERICHOST));
    } catch (const coring::GaiError& e) {
        code = e.code().value();
        CHECK(e.code().category() == coring::gai_category());
        CHECK(std::string(e.what()) ==
              "getaddrinfo not.numeric.invalid:80: Name or service not known");
    }
    CHECK(code == EAI_NONAME);
    CHECK(!coring::detail::LoopAccess::default_executor(loop)); // no executor was ever needed
}

TEST_CASE("getaddrinfo: names resolve on the default executor", "[net][address][threads]") {
    // A minimal chroot (CI's fresh Debian) may have no /etc/hosts: then nothing resolves
    // "localhost", and what is tested here cannot be.
    addrinfo hints{};
    hints.ai_family = AF_INET;
    addrinfo* probe = nullptr;
    if (::getaddrinfo("localhost", nullptr, &hints, &probe) != 0) {
        CORING_SKIP("this system does not resolve localhost (no /etc/hosts entry)");
    }
    ::freeaddrinfo(probe);
    coring::test::run_test([]() -> Task<> {
        auto infos = co_await coring::getaddrinfo("localhost", 8080, AF_INET, SOCK_STREAM);
        REQUIRE(!infos.empty());
        CHECK(infos[0].address.to_string() == "127.0.0.1:8080");
        CHECK(coring::detail::LoopAccess::default_executor(coring::get_running_loop()) != nullptr);
        auto [host, service] = co_await coring::getnameinfo(infos[0].address, NI_NUMERICSERV);
        CHECK(!host.empty());
        CHECK(service == "8080");
        CO_CHECK_THROWS_AS(coring::getaddrinfo("no-such-host.invalid", 80, 0, SOCK_STREAM),
                           coring::GaiError);
    });
}

CORING_TEST_CASE("getnameinfo: numeric flags answer on the loop thread", "[net][address]") {
    auto [host, service] = co_await coring::getnameinfo(SocketAddress::ip("::1", 22),
                                                        NI_NUMERICHOST | NI_NUMERICSERV);
    CHECK(host == "::1");
    CHECK(service == "22");
    CHECK(!coring::detail::LoopAccess::default_executor(coring::get_running_loop()));
}
