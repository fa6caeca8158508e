// SPDX-License-Identifier: MIT
// coring::postgres type round trips through the server (asyncpg's codecs): integers at their
// limits, floats with NaN and infinities, bool, text (empty, unicode), bytea (empty, every byte
// value, 1 MiB), time points, JSON, NULL through std::optional, and the wrong-type errors.
#include <coring/coring.hpp>
#include <coring/postgres.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "postgres/pg_support.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::Task;
namespace pg = coring::postgres;

using coring::test::what_of;

CORING_TEST_CASE("integers round trip at their limits", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    constexpr auto i64min = std::numeric_limits<std::int64_t>::min();
    constexpr auto i64max = std::numeric_limits<std::int64_t>::max();
    std::int64_t a = co_await conn.fetchval<std::int64_t>("SELECT $1::int8", i64min);
    std::int64_t b = co_await conn.fetchval<std::int64_t>("SELECT $1::int8", i64max);
    CHECK(a == i64min);
    CHECK(b == i64max);
    std::int32_t c = co_await conn.fetchval<std::int32_t>("SELECT $1::int4",
                                                          std::numeric_limits<std::int32_t>::min());
    CHECK(c == std::numeric_limits<std::int32_t>::min());
    std::int16_t d = co_await conn.fetchval<std::int16_t>("SELECT $1::int2", std::int16_t{-32768});
    CHECK(d == -32768);
    std::uint32_t o = co_await conn.fetchval<std::uint32_t>("SELECT 4294967295::oid");
    CHECK(o == 4294967295u);
    // A wider column read into a narrower integer: only if the value fits.
    int small = co_await conn.fetchval<int>("SELECT 7::int8");
    CHECK(small == 7);
    std::exception_ptr e;
    try {
        int big = co_await conn.fetchval<int>("SELECT 5000000000::int8");
        (void)big;
    } catch (...) {
        e = std::current_exception();
    }
    CHECK(what_of<pg::DataError>(e) ==
          "column \"int8\" value 5000000000 does not fit std::int32_t");
    co_await conn.close();
}

CORING_TEST_CASE("floats, bool and numeric round trip", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    double x = co_await conn.fetchval<double>("SELECT $1::float8", 0.1);
    CHECK(x == 0.1);
    double tiny = co_await conn.fetchval<double>("SELECT $1::float8",
                                                 std::numeric_limits<double>::denorm_min());
    CHECK(tiny == std::numeric_limits<double>::denorm_min());
    double nan = co_await conn.fetchval<double>("SELECT $1::float8",
                                                std::numeric_limits<double>::quiet_NaN());
    CHECK(std::isnan(nan));
    double inf = co_await conn.fetchval<double>("SELECT $1::float8",
                                                -std::numeric_limits<double>::infinity());
    CHECK(inf == -std::numeric_limits<double>::infinity());
    float f = co_await conn.fetchval<float>("SELECT $1::float4", 1.5f);
    CHECK(f == 1.5f);
    bool t = co_await conn.fetchval<bool>("SELECT $1::bool", true);
    bool fl = co_await conn.fetchval<bool>("SELECT $1::bool", false);
    CHECK(t);
    CHECK_FALSE(fl);
    std::string num = co_await conn.fetchval<std::string>("SELECT -12345678901234.5678::numeric");
    CHECK(num == "-12345678901234.5678");
    std::string small = co_await conn.fetchval<std::string>("SELECT 0.00012::numeric(10,6)");
    CHECK(small == "0.000120");
    double nd = co_await conn.fetchval<double>("SELECT 2.5::numeric");
    CHECK(nd == 2.5);
    co_await conn.close();
}

CORING_TEST_CASE("text round trips: empty, unicode, long, and uuid as text", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    std::string empty = co_await conn.fetchval<std::string>("SELECT $1::text", "");
    CHECK(empty.empty());
    std::string uni = "héllo wörld, 日本語, 🐘";
    std::string back = co_await conn.fetchval<std::string>("SELECT $1::text", uni);
    CHECK(back == uni);
    std::string_view view = "a view";
    back = co_await conn.fetchval<std::string>("SELECT $1::varchar", view);
    CHECK(back == "a view");
    std::string longs(100000, 'z');
    back = co_await conn.fetchval<std::string>("SELECT $1::text", longs);
    CHECK(back == longs);
    std::string len = co_await conn.fetchval<std::string>("SELECT length($1)::text", uni);
    CHECK(len == "19"); // characters, not bytes: the server decoded UTF-8
    std::string u = co_await conn.fetchval<std::string>(
            "SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid");
    CHECK(u == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    co_await conn.close();
}

CORING_TEST_CASE("bytea round trips: empty, every byte, 1 MiB", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    pg::Bytes none;
    pg::Bytes got = co_await conn.fetchval<pg::Bytes>("SELECT $1::bytea", none);
    CHECK(got.empty());
    pg::Bytes all;
    for (int i = 0; i < 256; ++i) {
        all.push_back(static_cast<std::byte>(i));
    }
    got = co_await conn.fetchval<pg::Bytes>("SELECT $1::bytea", all);
    CHECK(got == all);
    pg::Bytes big(1 << 20);
    for (std::size_t i = 0; i < big.size(); ++i) {
        big[i] = static_cast<std::byte>((i * 7919) & 0xff);
    }
    got = co_await conn.fetchval<pg::Bytes>("SELECT $1::bytea", big);
    CHECK(got == big);
    int n = co_await conn.fetchval<int>("SELECT length($1::bytea)", big);
    CHECK(n == (1 << 20));
    co_await conn.close();
}

CORING_TEST_CASE("time points round trip through timestamptz and timestamp", "[postgres]") {
    using std::chrono::system_clock;
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    auto now = std::chrono::time_point_cast<std::chrono::microseconds>(system_clock::now());
    auto back = co_await conn.fetchval<system_clock::time_point>("SELECT $1::timestamptz", now);
    CHECK(back == now);
    system_clock::time_point epoch{};
    back = co_await conn.fetchval<system_clock::time_point>("SELECT $1::timestamp", epoch);
    CHECK(back == epoch);
    auto before = system_clock::time_point(std::chrono::seconds(-86400 * 365 * 50 - 1) +
                                           std::chrono::microseconds(250));
    back = co_await conn.fetchval<system_clock::time_point>("SELECT $1::timestamptz", before);
    CHECK(back == before);
    auto known = co_await conn.fetchval<system_clock::time_point>(
            "SELECT '2000-01-01 00:00:01+00'::timestamptz");
    CHECK(known == system_clock::time_point(std::chrono::seconds(946684801)));
    CO_CHECK_THROWS_AS(conn.fetchval<system_clock::time_point>("SELECT 'infinity'::timestamptz"),
                       pg::DataError);
    co_await conn.close();
}

CORING_TEST_CASE("timestamps beyond a time point's range are a DataError, not an overflow",
                 "[postgres]") {
    using std::chrono::system_clock;
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    // PostgreSQL's last timestamp: its microseconds since 1970 overflow int64 when moved
    // from PostgreSQL's 2000 epoch, and it is far past system_clock's nanoseconds (~2262).
    CO_CHECK_THROWS_AS(
            conn.fetchval<system_clock::time_point>("SELECT '294276-12-31 23:59:59'::timestamp"),
            pg::DataError);
    CO_CHECK_THROWS_AS(conn.fetchval<system_clock::time_point>("SELECT '3000-01-01'::timestamp"),
                       pg::DataError);
    using Micros = std::chrono::sys_time<std::chrono::microseconds>;
    auto far = co_await conn.fetchval<Micros>("SELECT '3000-01-01 00:00:00'::timestamp");
    CHECK(far.time_since_epoch().count() == 32503680000LL * 1'000'000);
    auto early = co_await conn.fetchval<Micros>("SELECT '1600-01-01 00:00:00'::timestamp");
    CHECK(early.time_since_epoch().count() == -11676096000LL * 1'000'000);
    co_await conn.close();
}

CORING_TEST_CASE("a numeric a double cannot hold is a DataError (PostgreSQL's own cast refuses it)",
                 "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    CO_CHECK_THROWS_AS(conn.fetchval<double>("SELECT 1e400::numeric"), pg::DataError);
    CO_CHECK_THROWS_AS(conn.fetchval<double>("SELECT -1e400::numeric"), pg::DataError);
    CO_CHECK_THROWS_AS(conn.fetchval<double>("SELECT 1e-400::numeric"), pg::DataError);
    double big = co_await conn.fetchval<double>("SELECT 1e300::numeric");
    CHECK(big == 1e300);
    double nan = co_await conn.fetchval<double>("SELECT 'NaN'::numeric");
    CHECK(std::isnan(nan));
    co_await conn.close();
}

CORING_TEST_CASE("JSON round trips through json and jsonb", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    nlohmann::json doc = {{"a", 1}, {"b", {true, nullptr, "é"}}};
    auto j = co_await conn.fetchval<nlohmann::json>("SELECT $1::jsonb", doc);
    CHECK(j == doc);
    j = co_await conn.fetchval<nlohmann::json>("SELECT $1::json", doc);
    CHECK(j == doc);
    std::string field = co_await conn.fetchval<std::string>("SELECT $1::jsonb ->> 'a'", doc);
    CHECK(field == "1");
    // text is accepted as JSON, but text that is not JSON is a DataError naming the column
    CO_CHECK_THROWS_AS(conn.fetchval<nlohmann::json>("SELECT 'not json'::text AS doc"),
                       pg::DataError);
    // valid JSON that nlohmann::json cannot hold (a number past a double's range)
    CO_CHECK_THROWS_AS(conn.fetchval<nlohmann::json>("SELECT '4E888'::json"), pg::DataError);
    co_await conn.close();
}

CORING_TEST_CASE("NULL: std::optional both ways, an error for a non-optional value", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    std::optional<int> none;
    auto v = co_await conn.fetchval<std::optional<int>>("SELECT $1::int", none);
    CHECK_FALSE(v.has_value());
    std::optional<int> some = 5;
    v = co_await conn.fetchval<std::optional<int>>("SELECT $1::int", some);
    CHECK(v == 5);
    auto s = co_await conn.fetchval<std::optional<std::string>>("SELECT $1::text", nullptr);
    CHECK_FALSE(s.has_value());
    auto row = co_await conn.fetchrow("SELECT NULL::int AS id, 1 AS one");
    REQUIRE(row);
    CHECK(row->is_null(0));
    CHECK_FALSE(row->is_null(1));
    std::exception_ptr e;
    try {
        int id = row->get<int>("id");
        (void)id;
    } catch (...) {
        e = std::current_exception();
    }
    CHECK(what_of<pg::DataError>(e) ==
          "column \"id\" is NULL, requested std::int32_t (use std::optional)");
    co_await conn.close();
}

CORING_TEST_CASE("wrong-type access names the column and both types", "[postgres]") {
    auto conn = co_await pg::connect(coring::test::pg_dsn());
    auto row = co_await conn.fetchrow("SELECT 1::int4 AS id, 'x'::text AS name, 1.5::float8 AS f");
    REQUIRE(row);
    std::exception_ptr e;
    try {
        std::string s = row->get<std::string>("id");
        (void)s;
    } catch (...) {
        e = std::current_exception();
    }
    CHECK(what_of<pg::DataError>(e) == "column \"id\" is int4, requested std::string");
    e = nullptr;
    try {
        int n = row->get<int>("name");
        (void)n;
    } catch (...) {
        e = std::current_exception();
    }
    CHECK(what_of<pg::DataError>(e) == "column \"name\" is text, requested std::int32_t");
    e = nullptr;
    try {
        bool b = row->get<bool>(2);
        (void)b;
    } catch (...) {
        e = std::current_exception();
    }
    CHECK(what_of<pg::DataError>(e) == "column \"f\" is float8, requested bool");
    CHECK_THROWS_AS(row->get<int>("nope"), std::out_of_range);
    CHECK_THROWS_AS(row->get<int>(7), std::out_of_range);
    co_await conn.close();
}
