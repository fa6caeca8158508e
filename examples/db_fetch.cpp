// SPDX-License-Identifier: MIT
// The seeds' asyncpg example: connect to PostgreSQL, fetch the rows of a table, print them,
// close (coring::postgres).
//
// Usage: db_fetch "<dsn>"   (a libpq connection string: "postgresql://user@host/db" or
//                            "host=/run/postgresql dbname=app")
//
// The asyncpg equivalent:
//
//     conn = await asyncpg.connect(dsn)
//     await conn.execute("CREATE TEMP TABLE table_name (id int, name text)")
//     await conn.executemany("INSERT INTO table_name VALUES ($1, $2)", rows)
//     values = await conn.fetch("SELECT * FROM table_name")
//     await conn.close()
#include <coring/coring.hpp>
#include <coring/postgres.hpp>

#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

namespace pg = coring::postgres;

static coring::Task<int> run(std::string dsn) {
    auto conn = co_await pg::connect(dsn);
    std::string status = co_await conn.execute(
            "CREATE TEMP TABLE table_name (id int PRIMARY KEY, name text, score float8)");
    std::vector<std::tuple<int, std::string, double>> rows{
            {1, "alice", 9.5}, {2, "bob", 7.25}, {3, "carol", 8.0}};
    co_await conn.executemany("INSERT INTO table_name VALUES ($1, $2, $3)", rows);
    auto values = co_await conn.fetch("SELECT * FROM table_name ORDER BY id");
    for (const auto& row : values) {
        std::printf("id=%d name=%s score=%.2f\n",
                    row.get<int>("id"),
                    row.get<std::string>("name").c_str(),
                    row.get<double>("score"));
    }
    int n = co_await conn.fetchval<int>("SELECT count(*)::int FROM table_name WHERE score > $1",
                                        8.0);
    std::printf("%d rows, %d with score > 8 (%s)\n",
                static_cast<int>(values.size()),
                n,
                status.c_str());
    co_await conn.close();
    co_return values.size() == 3 && n == 1 ? 0 : 1;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: db_fetch <dsn>\n");
        return 2;
    }
    try {
        return coring::run(run(argv[1]));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "db_fetch: %s\n", e.what());
        return 1;
    }
}
