// SPDX-License-Identifier: MIT
// coring::postgres cancellation and timeouts: a cancelled query is cancelled on the server
// and the connection stays usable; command_timeout per connection and per call; the connect
// timeout (asyncpg's timeout= and command_timeout=).
#include <coring/coring.hpp>
#include <coring/postgres.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "postgres/pg_support.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::Task;
namespace pg = coring::postgres;

CORING_TEST_CASE("cancelling pg_sleep(10) returns quickly and the connection is reusable",
                 "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    auto t = coring::create_task(conn.execute("SELECT pg_sleep(10) AS cancel_marker_1"));
    co_await coring::sleep(50ms);
    auto start = std::chrono::steady_clock::now();
    t.cancel();
    CO_CHECK_THROWS_AS(t, coring::CancelledError);
    auto took = std::chrono::steady_clock::now() - start;
    INFO("cancel took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                        << " ms");
    CHECK(took < 2s); // generous: the issue asks 100 ms, a loaded CI machine gets slack
    CHECK_FALSE(conn.is_closed());
    int one = co_await conn.fetchval<int>("SELECT 1");
    CHECK(one == 1);
    // The server really stopped: the query is not active anywhere (other tests run
    // pg_sleep(10) at the same time, hence the marker).
    std::int64_t active = co_await conn.fetchval<std::int64_t>(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%cancel_marker_1' "
            "AND pid <> pg_backend_pid()");
    CHECK(active == 0);
    co_await conn.close();
}

CORING_TEST_CASE("cancellation during a fetch with parameters and during prepare", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    for (int i = 0; i < 3; ++i) {
        auto t = coring::create_task(conn.fetch("SELECT pg_sleep($1::float8), $2::int", 10.0, i));
        co_await coring::sleep(std::chrono::milliseconds(5 + 10 * i));
        t.cancel();
        CO_CHECK_THROWS_AS(t, coring::CancelledError);
        int v = co_await conn.fetchval<int>("SELECT $1::int", i);
        CHECK(v == i);
    }
    co_await conn.close();
}

CORING_TEST_CASE("command_timeout per connection and per call throws TimeoutError", "[postgres]") {
    pg::ConnectOptions opts;
    opts.command_timeout = 200ms;
    auto conn = co_await pg::connect(coring::test::pg_dsn(), opts);
    auto start = std::chrono::steady_clock::now();
    CO_CHECK_THROWS_AS(conn.execute("SELECT pg_sleep(10)"), coring::TimeoutError);
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    int one = co_await conn.fetchval<int>("SELECT 1");
    CHECK(one == 1);
    co_await conn.close();

    auto conn2 = co_await pg::connect(coring::test::pg_dsn());
    CO_CHECK_THROWS_AS(conn2.fetch(pg::CommandTimeout{100ms}, "SELECT pg_sleep($1)", 10),
                       coring::TimeoutError);
    CO_CHECK_THROWS_AS(conn2.fetchval<int>(pg::CommandTimeout{100ms}, "SELECT 1 FROM pg_sleep(10)"),
                       coring::TimeoutError);
    auto rows = co_await conn2.fetch(pg::CommandTimeout{5s}, "SELECT 1");
    CHECK(rows.size() == 1);
    co_await conn2.close();
}

TEST_CASE("the connect timeout: a server that never answers", "[postgres]") {
    // A listening socket that never accepts: the TCP handshake completes (backlog) but no reply
    // to the startup message ever comes.
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 8) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    int port = ntohs(addr.sin_port);
    coring::test::run_test([port]() -> Task<> {
        pg::ConnectOptions opts;
        opts.timeout = 200ms;
        auto start = std::chrono::steady_clock::now();
        CO_CHECK_THROWS_AS(
                pg::connect("host=127.0.0.1 user=postgres port=" + std::to_string(port), opts),
                coring::TimeoutError);
        CHECK(std::chrono::steady_clock::now() - start < 5s);
    });
    ::close(fd);
}
