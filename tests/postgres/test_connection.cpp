// SPDX-License-Identifier: MIT
// coring::postgres connections against the fixture server: connect (Unix socket, TCP, host
// name), queries, errors with SQLSTATE, connection failures, statement cache, prepare,
// misuse, connection loss (asyncpg's Connection).
#include <coring/coring.hpp>
#include <coring/postgres.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <string>

#include "postgres/pg_support.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::Task;
namespace pg = coring::postgres;

using coring::test::what_of;

CORING_TEST_CASE("connect over the Unix socket, fetch, close", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    CHECK_FALSE(conn.is_closed());
    auto rows = co_await conn.fetch("SELECT g AS n, 'x' || g AS s FROM generate_series(1, 3) g");
    REQUIRE(rows.size() == 3);
    CHECK(rows[0].get<int>("n") == 1);
    CHECK(rows[2].get<std::string>("s") == "x3");
    CHECK(rows[1].get<std::int64_t>(0) == 2);
    CHECK(rows[0].column_name(1) == "s");
    CHECK(rows[0].size() == 2);
    co_await conn.close();
    CHECK(conn.is_closed());
}

CORING_TEST_CASE_REAL_TIME("connect over TCP, by address and by host name", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn_tcp());
    int one = co_await conn.fetchval<int>("SELECT 1");
    CHECK(one == 1);
    co_await conn.close();
    std::string by_name = "host=localhost port=" + std::to_string(coring::test::pg_port()) +
                          " user=postgres dbname=postgres";
    auto conn2 = co_await pg::connect(by_name);
    std::string addr = co_await conn2.fetchval<std::string>("SELECT inet_client_addr()::text");
    CHECK((addr == "127.0.0.1/32" || addr == "::1/128"));
    co_await conn2.close();
}

CORING_TEST_CASE("execute returns the command status, fetchrow and fetchval", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    std::string st = co_await conn.execute("CREATE TEMP TABLE t (id int PRIMARY KEY, name text)");
    CHECK(st == "CREATE TABLE");
    st = co_await conn.execute("INSERT INTO t VALUES ($1, $2), ($3, $4)", 1, "one", 2, "two");
    CHECK(st == "INSERT 0 2");
    auto row = co_await conn.fetchrow("SELECT id, name FROM t WHERE id = $1", 2);
    REQUIRE(row.has_value());
    CHECK(row->get<std::string>("name") == "two");
    auto none = co_await conn.fetchrow("SELECT id FROM t WHERE id = $1", 99);
    CHECK_FALSE(none.has_value());
    auto missing = co_await conn.fetchval<std::optional<int>>("SELECT id FROM t WHERE id = 99");
    CHECK_FALSE(missing.has_value());
    int n = co_await conn.fetchval<int>("SELECT $1::int + 1", 41);
    CHECK(n == 42);
    st = co_await conn.execute("UPDATE t SET name = 'x'; DELETE FROM t WHERE id = 1");
    CHECK(st == "DELETE 1");
    co_await conn.close();
}

CORING_TEST_CASE("server errors carry SQLSTATE, message, detail, position and their subclass",
                 "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    std::string st = co_await conn.execute("CREATE TEMP TABLE u (id int PRIMARY KEY)");
    st = co_await conn.execute("INSERT INTO u VALUES (1)");
    CO_CHECK_THROWS_AS(conn.execute("INSERT INTO u VALUES ($1)", 1), pg::UniqueViolation);
    bool caught = false;
    try {
        st = co_await conn.execute("INSERT INTO u VALUES (1)");
    } catch (const pg::PostgresError& e) {
        caught = true;
        CHECK(e.sqlstate() == "23505");
        CHECK(std::string(e.what()).find("duplicate key") != std::string::npos);
        CHECK(e.detail() == "Key (id)=(1) already exists.");
    }
    CHECK(caught);
    CO_CHECK_THROWS_AS(conn.fetch("SELECT * FROM no_such_table"), pg::UndefinedTable);
    caught = false;
    try {
        auto rows = co_await conn.fetch("SELECT 1 FROM no_such_table");
    } catch (const pg::UndefinedTable& e) {
        caught = true;
        CHECK(e.sqlstate() == "42P01");
        CHECK(e.position() == 15);
    }
    CHECK(caught);
    CO_CHECK_THROWS_AS(conn.execute("SELEC 1"), pg::SyntaxError);
    st = co_await conn.execute("CREATE TEMP TABLE parent (id int PRIMARY KEY)");
    st = co_await conn.execute("CREATE TEMP TABLE child (pid int REFERENCES parent (id))");
    CO_CHECK_THROWS_AS(conn.execute("INSERT INTO child VALUES ($1)", 5), pg::ForeignKeyViolation);
    caught = false;
    try {
        st = co_await conn.execute("DO $$ BEGIN RAISE EXCEPTION 'boom' USING HINT = 'try "
                                   "again', ERRCODE = '40001'; END $$");
    } catch (const pg::SerializationFailure& e) {
        caught = true;
        CHECK(e.hint() == "try again");
        CHECK(e.message() == "boom");
    }
    CHECK(caught);
    // The connection is still usable after errors.
    int one = co_await conn.fetchval<int>("SELECT 1");
    CHECK(one == 1);
    co_await conn.close();
}

CORING_TEST_CASE("connection failures: refused, bad password, no such database, bad dsn",
                 "[postgres]") {
    std::exception_ptr e;
    try {
        auto c = co_await pg::connect("postgresql://postgres@127.0.0.1:1/postgres");
    } catch (...) {
        e = std::current_exception();
    }
    std::string w = what_of<pg::ConnectionError>(e);
    INFO(w);
    CHECK(w.find("Connection refused") != std::string::npos);

    std::string port = std::to_string(coring::test::pg_port());
    e = nullptr;
    try {
        auto c = co_await pg::connect("postgresql://coring_pw:wrong@127.0.0.1:" + port +
                                      "/postgres");
    } catch (...) {
        e = std::current_exception();
    }
    w = what_of<pg::ConnectionError>(e);
    INFO(w);
    CHECK(w.find("password authentication failed for user \"coring_pw\"") != std::string::npos);

    auto good = co_await pg::connect("postgresql://coring_pw:coring-secret@127.0.0.1:" + port +
                                     "/postgres");
    std::string user = co_await good.fetchval<std::string>("SELECT current_user::text");
    CHECK(user == "coring_pw");
    co_await good.close();

    e = nullptr;
    try {
        auto c = co_await pg::connect(coring::test::pg_dsn() + " dbname=no_such_db");
    } catch (...) {
        e = std::current_exception();
    }
    w = what_of<pg::ConnectionError>(e);
    INFO(w);
    CHECK(w.find("database \"no_such_db\" does not exist") != std::string::npos);

    CO_CHECK_THROWS_AS(pg::connect("this is not = = a dsn"), pg::InterfaceError);
    CO_CHECK_THROWS_AS(pg::connect("host=no-such-host.invalid"), std::exception);
}

CORING_TEST_CASE("a second operation while one runs is an InterfaceError", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    auto slow = coring::create_task(conn.execute("SELECT pg_sleep(0.2)"));
    co_await coring::sleep(20ms);
    std::exception_ptr e;
    try {
        auto rows = co_await conn.fetch("SELECT 1");
    } catch (...) {
        e = std::current_exception();
    }
    CHECK(what_of<pg::InterfaceError>(e) ==
          "cannot perform operation: another operation is in progress");
    std::string st = co_await slow;
    CHECK(st == "SELECT 1");
    co_await conn.close();
    CO_CHECK_THROWS_AS(conn.fetch("SELECT 1"), pg::ConnectionError);
}

CORING_TEST_CASE("pg_terminate_backend: the next await throws ConnectionError, no hang",
                 "[postgres]") {
    auto victim = co_await pg::connect(coring::test::pg_dsn());
    auto admin = co_await pg::connect(coring::test::pg_dsn());
    int pid = victim.get_server_pid();
    bool done = co_await admin.fetchval<bool>("SELECT pg_terminate_backend($1)", pid);
    CHECK(done);
    co_await coring::sleep(50ms);
    CO_CHECK_THROWS_AS(victim.fetch("SELECT 1"), pg::ConnectionError);
    CHECK(victim.is_closed());
    CO_CHECK_THROWS_AS(victim.fetch("SELECT 1"), pg::ConnectionError);
    // A victim killed in the middle of a query.
    auto victim2 = co_await pg::connect(coring::test::pg_dsn());
    int pid2 = victim2.get_server_pid();
    auto killer = [](pg::Connection& a, int p) -> Task<> {
        co_await coring::sleep(100ms);
        bool ok = co_await a.fetchval<bool>("SELECT pg_terminate_backend($1)", p);
        CHECK(ok);
    };
    auto k = coring::create_task(killer(admin, pid2));
    CO_CHECK_THROWS_AS(victim2.execute("SELECT pg_sleep(10)"), pg::ConnectionError);
    co_await k;
    co_await admin.close();
}

CORING_TEST_CASE("statement cache: reused by SQL, LRU-bounded, off with size 0", "[postgres]") {
    pg::ConnectOptions opts;
    opts.statement_cache_size = 2;
    auto conn = co_await pg::connect(coring::test::pg_dsn(), opts);
    for (int i = 0; i < 3; ++i) {
        int v = co_await conn.fetchval<int>("SELECT $1::int * 2", i);
        CHECK(v == 2 * i);
    }
    CHECK(conn.statement_cache_count() == 1);
    std::int64_t prepared =
            co_await conn.fetchval<std::int64_t>("SELECT count(*) FROM pg_prepared_statements");
    CHECK(prepared == 2); // the two statements above
    int a = co_await conn.fetchval<int>("SELECT $1::int + 100", 1);
    int b = co_await conn.fetchval<int>("SELECT $1::int + 200", 1);
    CHECK(a + b == 302);
    CHECK(conn.statement_cache_count() == 2);
    prepared = co_await conn.fetchval<std::int64_t>("SELECT count(*) FROM pg_prepared_statements");
    CHECK(prepared == 2); // evicted ones were deallocated
    co_await conn.close();

    opts.statement_cache_size = 0;
    auto plain = co_await pg::connect(coring::test::pg_dsn(), opts);
    int v = co_await plain.fetchval<int>("SELECT $1::int * 3", 3);
    CHECK(v == 9);
    CHECK(plain.statement_cache_count() == 0);
    co_await plain.close();
}

CORING_TEST_CASE("prepare: a named statement with fetch, fetchrow, execute", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    auto stmt = co_await conn.prepare("SELECT $1::int + $2::int AS s");
    CHECK(stmt.parameter_count() == 2);
    auto rows = co_await stmt.fetch(1, 2);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].get<int>("s") == 3);
    auto row = co_await stmt.fetchrow(10, 20);
    REQUIRE(row);
    CHECK(row->get<int>(0) == 30);
    std::string st = co_await stmt.execute(0, 0);
    CHECK(st == "SELECT 1");
    CO_CHECK_THROWS_AS(conn.prepare("SELECT FROM WHERE"), pg::SyntaxError);
    co_await conn.close();
}
