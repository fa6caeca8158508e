// SPDX-License-Identifier: MIT
// coring::postgres COPY (copy_records_to_table, copy_from_query), LISTEN/NOTIFY, and close()
// while an operation runs (asyncpg's copy API and listeners).
#include <coring/coring.hpp>
#include <coring/postgres.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "postgres/pg_support.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::Task;
namespace pg = coring::postgres;

CORING_TEST_CASE("copy_records_to_table loads 1,000,000 rows and copy_from_query reads them back",
                 "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    std::string st = co_await conn.execute("CREATE TEMP TABLE big (id int, s text)");
    std::vector<std::tuple<int, std::string>> rows;
    rows.reserve(1'000'000);
    for (int i = 0; i < 1'000'000; ++i) {
        rows.emplace_back(i, "r" + std::to_string(i));
    }
    st = co_await conn.copy_records_to_table("big", rows);
    CHECK(st == "COPY 1000000");
    std::int64_t sum = co_await conn.fetchval<std::int64_t>("SELECT sum(id) FROM big");
    CHECK(sum == 999'999LL * 1'000'000LL / 2);
    std::string out =
            co_await conn.copy_from_query("SELECT id, s FROM big WHERE id < 3 ORDER BY id");
    CHECK(out == "0\tr0\n1\tr1\n2\tr2\n");
    std::string all = co_await conn.copy_from_query("SELECT id FROM big");
    CHECK(std::count(all.begin(), all.end(), '\n') == 1'000'000);
    co_await conn.close();
}

CORING_TEST_CASE("COPY escapes: tabs, newlines, backslashes, NULL, bytea, unicode, named columns",
                 "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    std::string st =
            co_await conn.execute("CREATE TEMP TABLE esc (a text, b bytea, c int DEFAULT 7)");
    pg::Bytes bytes{std::byte{0}, std::byte{'\\'}, std::byte{0xff}};
    std::vector<std::tuple<std::optional<std::string>, pg::Bytes>> rows{
            {"tab\there\nnew\\line \\N é", bytes}, {std::nullopt, pg::Bytes{}}};
    std::vector<std::string> columns{"a", "b"};
    st = co_await conn.copy_records_to_table("esc", rows, columns);
    CHECK(st == "COPY 2");
    auto got = co_await conn.fetch("SELECT a, b, c FROM esc ORDER BY a NULLS LAST");
    REQUIRE(got.size() == 2);
    CHECK(got[0].get<std::string>("a") == "tab\there\nnew\\line \\N é");
    CHECK(got[0].get<pg::Bytes>("b") == bytes);
    CHECK(got[0].get<int>("c") == 7);
    CHECK_FALSE(got[1].get<std::optional<std::string>>("a").has_value());
    CHECK(got[1].get<pg::Bytes>("b").empty());
    // Errors: no such table, a bad value (the whole COPY is rolled back).
    CO_CHECK_THROWS_AS(conn.copy_records_to_table("no_such_table", rows), pg::UndefinedTable);
    std::vector<std::tuple<std::string, std::string>> bad{{"x", "not bytea \\"}};
    CO_CHECK_THROWS_AS(conn.copy_records_to_table("esc", bad, columns), pg::PostgresError);
    std::int64_t n = co_await conn.fetchval<std::int64_t>("SELECT count(*) FROM esc");
    CHECK(n == 2);
    CO_CHECK_THROWS_AS(conn.copy_from_query("SELECT * FROM no_such_table"), pg::UndefinedTable);
    co_await conn.close();
}

CORING_TEST_CASE("LISTEN/NOTIFY: notifications in order, also those that arrive during queries",
                 "[postgres]") {
    auto listener = co_await pg::connect(coring::test::pg_dsn());
    auto sender = co_await pg::connect(coring::test::pg_dsn());
    co_await listener.listen("coring chan");
    std::string st = co_await sender.execute("SELECT pg_notify('coring chan', 'one')");
    st = co_await sender.execute("SELECT pg_notify('coring chan', 'two')");
    pg::Notification a = co_await listener.next_notification();
    CHECK(a.channel == "coring chan");
    CHECK(a.payload == "one");
    CHECK(a.pid == sender.get_server_pid());
    // Sent while the listener runs a query: kept until asked for.
    auto late = [](pg::Connection& s) -> Task<> {
        co_await coring::sleep(50ms);
        std::string r = co_await s.execute("SELECT pg_notify('coring chan', 'three')");
        (void)r;
    };
    auto t = coring::create_task(late(sender));
    st = co_await listener.execute("SELECT pg_sleep(0.2)");
    co_await t;
    pg::Notification b = co_await listener.next_notification();
    CHECK(b.payload == "two");
    pg::Notification c = co_await listener.next_notification();
    CHECK(c.payload == "three");
    // Waiting, then a notification arrives.
    auto later = [](pg::Connection& s) -> Task<> {
        co_await coring::sleep(50ms);
        std::string r = co_await s.execute("SELECT pg_notify('coring chan', 'four')");
        (void)r;
    };
    auto t2 = coring::create_task(later(sender));
    pg::Notification d = co_await listener.next_notification();
    CHECK(d.payload == "four");
    co_await t2;
    // Cancelling the wait loses nothing and leaves the connection usable.
    CO_CHECK_THROWS_AS(coring::wait_for(listener.next_notification(), 50ms), coring::TimeoutError);
    co_await listener.unlisten("coring chan");
    int one = co_await listener.fetchval<int>("SELECT 1");
    CHECK(one == 1);
    co_await listener.close();
    co_await sender.close();
}

CORING_TEST_CASE("close() while a query runs: the query throws ConnectionError, no hang",
                 "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    auto t = coring::create_task(conn.execute("SELECT pg_sleep(10)"));
    co_await coring::sleep(50ms);
    co_await conn.close();
    CO_CHECK_THROWS_AS(t, pg::ConnectionError);
    CHECK(conn.is_closed());
}
