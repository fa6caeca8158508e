// SPDX-License-Identifier: MIT
// coring::postgres transactions and executemany: commit, rollback on an exception and on a
// cancellation, savepoints, isolation options; executemany in pipeline mode (asyncpg's
// Connection.transaction and executemany).
#include <coring/coring.hpp>
#include <coring/postgres.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "postgres/pg_support.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::Task;
namespace pg = coring::postgres;

namespace {

Task<std::int64_t> count_rows(pg::Connection& conn) {
    std::int64_t n = co_await conn.fetchval<std::int64_t>("SELECT count(*) FROM tx");
    co_return n;
}

} // namespace

CORING_TEST_CASE("transaction commits when the block completes, rolls back when it throws",
                 "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    std::string st = co_await conn.execute("CREATE TEMP TABLE tx (v int)");
    co_await conn.transaction([&]() -> Task<> {
        CHECK(conn.is_in_transaction());
        std::string s = co_await conn.execute("INSERT INTO tx VALUES ($1)", 1);
        (void)s;
    });
    CHECK_FALSE(conn.is_in_transaction());
    std::int64_t n = co_await count_rows(conn);
    CHECK(n == 1);
    bool thrown = false;
    try {
        co_await conn.transaction([&]() -> Task<> {
            std::string s = co_await conn.execute("INSERT INTO tx VALUES ($1)", 2);
            (void)s;
            throw std::runtime_error("abort");
        });
    } catch (const std::runtime_error& e) {
        thrown = std::string(e.what()) == "abort";
    }
    CHECK(thrown);
    n = co_await count_rows(conn);
    CHECK(n == 1);
    // A server error inside the block rolls back too, and the error goes on.
    CO_CHECK_THROWS_AS(conn.transaction([&]() -> Task<> {
        std::string s = co_await conn.execute("INSERT INTO tx VALUES ($1)", 3);
        s = co_await conn.execute("INSERT INTO tx VALUES ('not a number')");
    }),
                       pg::PostgresError);
    n = co_await count_rows(conn);
    CHECK(n == 1);
    co_await conn.close();
}

CORING_TEST_CASE("transaction rolls back on cancellation and the connection stays usable",
                 "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    std::string st = co_await conn.execute("CREATE TEMP TABLE tx (v int)");
    auto body = [](pg::Connection& c) -> Task<> {
        co_await c.transaction([&]() -> Task<> {
            std::string s = co_await c.execute("INSERT INTO tx VALUES ($1)", 1);
            s = co_await c.execute("SELECT pg_sleep(10)");
        });
    };
    auto t = coring::create_task(body(conn));
    co_await coring::sleep(100ms);
    t.cancel();
    CO_CHECK_THROWS_AS(t, coring::CancelledError);
    CHECK_FALSE(conn.is_in_transaction());
    std::int64_t n = co_await count_rows(conn);
    CHECK(n == 0);
    // Not inside a transaction block any more: SAVEPOINT is refused (25P01).
    bool outside = false;
    try {
        std::string s = co_await conn.execute("SAVEPOINT probe");
    } catch (const pg::PostgresError& e) {
        outside = e.sqlstate() == "25P01";
    }
    CHECK(outside);
    co_await conn.close();
}

CORING_TEST_CASE("nested transactions are savepoints", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    std::string st = co_await conn.execute("CREATE TEMP TABLE tx (v int)");
    co_await conn.transaction([&]() -> Task<> {
        std::string s = co_await conn.execute("INSERT INTO tx VALUES (1)");
        try {
            co_await conn.transaction([&]() -> Task<> {
                std::string s2 = co_await conn.execute("INSERT INTO tx VALUES (2)");
                (void)s2;
                throw std::runtime_error("inner");
            });
        } catch (const std::runtime_error&) {
        }
        co_await conn.transaction([&]() -> Task<> {
            std::string s3 = co_await conn.execute("INSERT INTO tx VALUES (3)");
            (void)s3;
        });
    });
    auto rows = co_await conn.fetch("SELECT v FROM tx ORDER BY v");
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].get<int>(0) == 1);
    CHECK(rows[1].get<int>(0) == 3);
    co_await conn.close();
}

CORING_TEST_CASE("transaction options: isolation level, read only", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    std::string st = co_await conn.execute("CREATE TEMP TABLE tx (v int)");
    pg::TransactionOptions opts;
    opts.isolation = pg::IsolationLevel::serializable;
    opts.readonly = true;
    std::string level;
    std::string readonly;
    co_await conn.transaction(opts, [&]() -> Task<> {
        level = co_await conn.fetchval<std::string>("SHOW transaction_isolation");
        readonly = co_await conn.fetchval<std::string>("SHOW transaction_read_only");
        CO_CHECK_THROWS_AS(conn.execute("CREATE TABLE not_in_read_only (v int)"),
                           pg::PostgresError);
    });
    CHECK(level == "serializable");
    CHECK(readonly == "on");
    level = co_await conn.fetchval<std::string>("SHOW transaction_isolation");
    CHECK(level == "read committed");
    co_await conn.close();
}

CORING_TEST_CASE("executemany sends a batch in pipeline mode", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    std::string st = co_await conn.execute("CREATE TEMP TABLE m (id int PRIMARY KEY, s text)");
    std::vector<std::tuple<int, std::string>> rows;
    for (int i = 0; i < 20000; ++i) {
        rows.emplace_back(i, "row " + std::to_string(i));
    }
    co_await conn.executemany("INSERT INTO m VALUES ($1, $2)", rows);
    std::int64_t n = co_await conn.fetchval<std::int64_t>("SELECT count(*) FROM m");
    CHECK(n == 20000);
    std::string s = co_await conn.fetchval<std::string>("SELECT s FROM m WHERE id = 19999");
    CHECK(s == "row 19999");
    // An error in the middle: the first error is thrown, the batch is all or nothing.
    std::vector<std::tuple<int, std::string>> dup{{100000, "a"}, {5, "dup"}, {100001, "b"}};
    CO_CHECK_THROWS_AS(conn.executemany("INSERT INTO m VALUES ($1, $2)", dup), pg::UniqueViolation);
    n = co_await conn.fetchval<std::int64_t>("SELECT count(*) FROM m");
    CHECK(n == 20000);
    std::vector<std::tuple<int, std::string>> none;
    co_await conn.executemany("INSERT INTO m VALUES ($1, $2)", none);
    co_await conn.close();
}

CORING_TEST_CASE("executemany cancelled mid-batch leaves a usable connection", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    std::vector<std::tuple<double>> sleeps(50, std::tuple<double>{0.05});
    auto t = coring::create_task(conn.executemany("SELECT pg_sleep($1)", sleeps));
    co_await coring::sleep(100ms);
    t.cancel();
    CO_CHECK_THROWS_AS(t, coring::CancelledError);
    int one = co_await conn.fetchval<int>("SELECT 1");
    CHECK(one == 1);
    co_await conn.close();
}

CORING_TEST_CASE("run_pipeline: N statements, one sync, N results in order", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    std::string st = co_await conn.execute("CREATE TEMP TABLE p (v int)");
    pg::Pipeline p;
    p.add("INSERT INTO p VALUES ($1)", 1);
    p.add("INSERT INTO p VALUES ($1), ($2)", 2, 3);
    p.add("SELECT sum(v)::int AS s FROM p");
    for (int i = 0; i < 1000; ++i) {
        p.add("SELECT $1::int AS i", i);
    }
    CHECK(p.size() == 1003);
    auto results = co_await conn.run_pipeline(std::move(p));
    REQUIRE(results.size() == 1003);
    CHECK(results[0].status == "INSERT 0 1");
    CHECK(results[1].status == "INSERT 0 2");
    REQUIRE(results[2].rows.size() == 1);
    CHECK(results[2].rows[0].get<int>("s") == 6);
    CHECK(results[1002].rows[0].get<int>("i") == 999);
    // An error fails the whole pipeline (one implicit transaction).
    pg::Pipeline bad;
    bad.add("INSERT INTO p VALUES (100)");
    bad.add("SELECT 1/0");
    bad.add("INSERT INTO p VALUES (200)");
    CO_CHECK_THROWS_AS(conn.run_pipeline(std::move(bad)), pg::PostgresError);
    int sum = co_await conn.fetchval<int>("SELECT sum(v)::int FROM p");
    CHECK(sum == 6);
    co_await conn.close();
}
