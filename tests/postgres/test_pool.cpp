// SPDX-License-Identifier: MIT
// coring::postgres::Pool against the fixture server: shortcuts, exhaustion and the acquire
// timeout, 64 tasks sharing 8 connections, session reset on release, broken and worn-out
// connections replaced, close draining the leases (asyncpg.Pool).
#include <coring/coring.hpp>
#include <coring/postgres.hpp>
#include <coring/postgres/pool.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "postgres/pg_support.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::Task;
namespace pg = coring::postgres;

CORING_TEST_CASE("pool: create opens min_size, shortcuts run on a pooled connection",
                 "[postgres]") {
    pg::PoolOptions opts;
    opts.min_size = 2;
    opts.max_size = 4;
    auto pool = co_await pg::Pool::create(coring::test::pg_dsn(), opts);
    CHECK(pool.get_size() == 2);
    CHECK(pool.get_idle_size() == 2);
    int v = co_await pool.fetchval<int>("SELECT $1::int * 2", 21);
    CHECK(v == 42);
    auto rows = co_await pool.fetch("SELECT generate_series(1, 3) AS n");
    CHECK(rows.size() == 3);
    auto row = co_await pool.fetchrow("SELECT 'x' AS s");
    REQUIRE(row);
    CHECK(row->get<std::string>("s") == "x");
    std::string st = co_await pool.execute("SELECT 1");
    CHECK(st == "SELECT 1");
    CHECK(pool.get_size() == 2);
    co_await pool.close();
    CHECK(pool.get_size() == 0);
    CO_CHECK_THROWS_AS(pool.acquire(), pg::InterfaceError);
    pg::PoolOptions bad;
    bad.min_size = 3;
    bad.max_size = 2;
    CO_CHECK_THROWS_AS(pg::Pool::create(coring::test::pg_dsn(), bad), coring::ValueError);
}

CORING_TEST_CASE("pool: exhaustion waits, the acquire timeout throws TimeoutError", "[postgres]") {
    pg::PoolOptions opts;
    opts.min_size = 0;
    opts.max_size = 2;
    auto pool = co_await pg::Pool::create(coring::test::pg_dsn(), opts);
    auto a = co_await pool.acquire();
    auto b = co_await pool.acquire();
    CHECK(pool.get_size() == 2);
    CO_CHECK_THROWS_AS(pool.acquire(50ms), coring::TimeoutError);
    // A release hands the connection to the next waiter.
    auto waiter = coring::create_task(pool.acquire(5s));
    co_await coring::sleep(20ms);
    CHECK_FALSE(waiter.done());
    int pid = a->get_server_pid();
    a.release();
    auto c = co_await std::move(waiter);
    CHECK(c->get_server_pid() == pid);
    CHECK(pool.get_size() == 2);
    c.release();
    b.release();
    co_await pool.close();
}

CORING_TEST_CASE("pool: 64 tasks share a pool of 8", "[postgres]") {
    pg::PoolOptions opts;
    opts.min_size = 8;
    opts.max_size = 8;
    auto pool = co_await pg::Pool::create(coring::test::pg_dsn(), opts);
    std::set<int> pids;
    int done = 0;
    auto worker = [&](int id) -> Task<> {
        for (int i = 0; i < 20; ++i) {
            auto c = co_await pool.acquire();
            pids.insert(c->get_server_pid());
            int v = co_await c->fetchval<int>("SELECT $1::int + $2::int", id, i);
            CHECK(v == id + i);
        }
        ++done;
    };
    std::vector<coring::TaskHandle<>> tasks;
    for (int i = 0; i < 64; ++i) {
        tasks.push_back(coring::create_task(worker(i)));
    }
    for (auto& t : tasks) {
        co_await t;
    }
    CHECK(done == 64);
    CHECK(pids.size() <= 8);
    CHECK(pool.get_size() <= 8);
    co_await pool.close();
}

CORING_TEST_CASE("pool: the session is reset on release", "[postgres]") {
    pg::PoolOptions opts;
    opts.min_size = 1;
    opts.max_size = 1;
    auto pool = co_await pg::Pool::create(coring::test::pg_dsn(), opts);
    {
        auto c = co_await pool.acquire();
        std::string st = co_await c->execute("SET application_name = 'dirty'");
        st = co_await c->execute("BEGIN");
        st = co_await c->execute("CREATE TEMP TABLE leftover (v int)");
    }
    auto c = co_await pool.acquire();
    std::string name = co_await c->fetchval<std::string>("SHOW application_name");
    CHECK(name.empty());
    // The transaction left open was rolled back.
    auto exists = co_await c->fetchval<std::optional<std::string>>(
            "SELECT to_regclass('pg_temp.leftover')::text");
    CHECK_FALSE(exists.has_value());
    c.release();
    co_await pool.close();
}

namespace {
std::atomic<int> rollback_warnings{0};

void count_rollback_warnings(coring::LogLevel, std::string_view message) noexcept {
    if (message.find("no transaction in progress") != std::string_view::npos) {
        rollback_warnings.fetch_add(1);
    }
}
} // namespace

TEST_CASE("pool: a reset outside a transaction sends no ROLLBACK (no warning logged)",
          "[postgres]") {
    coring::LogSink previous = coring::set_log_sink(&count_rollback_warnings);
    coring::test::run_test([]() -> Task<> {
        pg::PoolOptions opts;
        opts.min_size = 1;
        opts.max_size = 1;
        auto pool = co_await pg::Pool::create(coring::test::pg_dsn(), opts);
        for (int i = 0; i < 3; ++i) {
            int v = co_await pool.fetchval<int>("SELECT 1");
            CHECK(v == 1);
        }
        co_await pool.close();
    });
    coring::set_log_sink(previous);
    CHECK(rollback_warnings.load() == 0);
}

CORING_TEST_CASE("pool: a terminated connection is replaced, worn-out ones too", "[postgres]") {
    pg::PoolOptions opts;
    opts.min_size = 1;
    opts.max_size = 1;
    opts.max_queries = 5;
    auto pool = co_await pg::Pool::create(coring::test::pg_dsn(), opts);
    auto admin = co_await pg::connect(coring::test::pg_dsn());
    int pid = 0;
    {
        auto c = co_await pool.acquire();
        pid = c->get_server_pid();
    }
    bool killed = co_await admin.fetchval<bool>("SELECT pg_terminate_backend($1)", pid);
    CHECK(killed);
    co_await coring::sleep(50ms);
    // The reset on acquire finds it dead; the pool opens a new one.
    auto c = co_await pool.acquire();
    int pid2 = c->get_server_pid();
    CHECK(pid2 != pid);
    int one = co_await c->fetchval<int>("SELECT 1");
    CHECK(one == 1);
    // A connection that dies while leased is not returned to the pool.
    bool killed2 = co_await admin.fetchval<bool>("SELECT pg_terminate_backend($1)", pid2);
    CHECK(killed2);
    co_await coring::sleep(50ms);
    CO_CHECK_THROWS_AS(c->fetch("SELECT 1"), pg::ConnectionError);
    c.release();
    CHECK(pool.get_size() == 0);
    // max_queries: after 5 operations the connection is replaced on release.
    auto d = co_await pool.acquire();
    int pid3 = d->get_server_pid();
    for (int i = 0; i < 5; ++i) {
        int v = co_await d->fetchval<int>("SELECT 1");
        (void)v;
    }
    d.release();
    auto e = co_await pool.acquire();
    CHECK(e->get_server_pid() != pid3);
    e.release();
    co_await admin.close();
    co_await pool.close();
}

CORING_TEST_CASE("pool: close waits for the acquired connections", "[postgres]") {
    pg::PoolOptions opts;
    opts.min_size = 1;
    opts.max_size = 2;
    auto pool = co_await pg::Pool::create(coring::test::pg_dsn(), opts);
    auto c = co_await pool.acquire();
    auto closing = coring::create_task(pool.close());
    co_await coring::sleep(20ms);
    CHECK_FALSE(closing.done());
    CO_CHECK_THROWS_AS(pool.acquire(), pg::InterfaceError);
    int v = co_await c->fetchval<int>("SELECT 7");
    CHECK(v == 7);
    c.release();
    co_await closing;
    CHECK(pool.get_size() == 0);
}

TEST_CASE("pool: the server restarts in the middle, the pool recovers", "[postgres]") {
    // A server of its own: restarting the shared fixture would break the tests running beside.
    std::string script = coring::test::pg_script();
    char dir_template[] = "/tmp/coring-pg-restart.XXXXXX";
    REQUIRE(::mkdtemp(dir_template) != nullptr);
    std::string info = dir_template;

    // Stops the server and removes its files however the test ends.
    struct ServerGuard {
        std::string script;
        std::string info;

        ~ServerGuard() {
            std::string stop = "bash '" + script + "' stop '" + info + "'";
            if (std::system(stop.c_str()) != 0) {
                WARN("could not stop the restart test's server: " << info);
            }
            ::rmdir(info.c_str());
        }
    } guard{script, info};

    std::string start = "bash '" + script + "' start '" + info + "' >/dev/null";
    REQUIRE(std::system(start.c_str()) == 0);
    std::string dsn = coring::test::read_line(info + "/dsn");
    coring::test::run_test([&]() -> Task<> {
        pg::PoolOptions opts;
        opts.min_size = 2;
        opts.max_size = 2;
        auto pool = co_await pg::Pool::create(dsn, opts);
        int v = co_await pool.fetchval<int>("SELECT 1");
        CHECK(v == 1);
        auto leased = co_await pool.acquire();
        std::string restart = "bash '" + script + "' restart '" + info + "'";
        // A named closure: GCC 12 destroys a lambda temporary holding a std::string twice when
        // it sits inside the co_await expression (docs/pitfalls.md).
        auto run_restart = [restart] {
            return std::system(restart.c_str());
        };
        int rc = co_await coring::to_thread(run_restart);
        REQUIRE(rc == 0);
        // The leased connection is gone: its next query says so, and it is not reused.
        CO_CHECK_THROWS_AS(leased->fetch("SELECT 1"), pg::ConnectionError);
        leased.release();
        // The idle one is dead too: acquire finds out on its reset and opens new connections.
        for (int i = 0; i < 4; ++i) {
            int w = co_await pool.fetchval<int>("SELECT $1::int", i);
            CHECK(w == i);
        }
        CHECK(pool.get_size() <= 2);
        co_await pool.close();
    });
}
