// SPDX-License-Identifier: MIT
// coring::postgres client throughput against a running PostgreSQL (the issue 15 cases, without
// the asyncpg/psycopg peers): queries or rows per second and client CPU per query or row.
//
// Usage: bench_pg_client "<dsn>" [case...]
//   cases: select1 (20,000 sequential SELECT 1), param (20,000 SELECT $1::int + 1),
//          executemany (50,000 rows of (int, text)), fetch (100,000 rows), pipeline (100,000
//          SELECT 1, 256 per sync), pool (64 tasks x 2,000 SELECT 1 through a Pool of 8;
//          CORING_PG_POOL_QUERIES sets the 2,000), cancel (20 cancelled pg_sleep(10)); all by
//          default.
// Start a server with tests/postgres/pg_server.sh start DIR and pass "$(cat DIR/dsn)" (Unix
// socket) or "$(cat DIR/dsn_tcp)" (loopback TCP).
#include <coring/coring.hpp>
#include <coring/postgres.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

#include "support.hpp"

namespace pg = coring::postgres;

namespace {

struct Figure {
    double wall;
    double cpu;
};

void report(const char* name, std::size_t n, const char* unit, Figure f) {
    std::printf("%-12s %8zu %s  %10.0f %s/s  %7.2f us CPU/%s\n",
                name,
                n,
                unit,
                static_cast<double>(n) / f.wall,
                unit,
                f.cpu * 1e6 / static_cast<double>(n),
                unit);
}

template <class Body>
coring::Task<Figure> timed(Body body) {
    auto t0 = std::chrono::steady_clock::now();
    double c0 = bench::cpu_seconds();
    co_await body();
    double c1 = bench::cpu_seconds();
    auto t1 = std::chrono::steady_clock::now();
    co_return Figure{std::chrono::duration<double>(t1 - t0).count(), c1 - c0};
}

coring::Task<int> run(std::string dsn, std::vector<std::string> cases) {
    auto conn = co_await pg::connect(dsn);
    auto wants = [&](const char* c) {
        if (cases.empty()) {
            return true;
        }
        for (const auto& x : cases) {
            if (x == c) {
                return true;
            }
        }
        return false;
    };
    if (wants("select1")) {
        constexpr int n = 20000;
        Figure f = co_await timed([&]() -> coring::Task<> {
            for (int i = 0; i < n; ++i) {
                int v = co_await conn.fetchval<int>("SELECT 1");
                (void)v;
            }
        });
        report("select1", n, "query", f);
    }
    if (wants("param")) {
        constexpr int n = 20000;
        Figure f = co_await timed([&]() -> coring::Task<> {
            for (int i = 0; i < n; ++i) {
                int v = co_await conn.fetchval<int>("SELECT $1::int + 1", i);
                (void)v;
            }
        });
        report("param", n, "query", f);
    }
    if (wants("executemany")) {
        constexpr int n = 50000;
        std::string st = co_await conn.execute("CREATE TEMP TABLE em (a int, b text)");
        std::vector<std::tuple<int, std::string>> rows;
        for (int i = 0; i < n; ++i) {
            rows.emplace_back(i, "row " + std::to_string(i));
        }
        Figure f = co_await timed([&]() -> coring::Task<> {
            co_await conn.executemany("INSERT INTO em VALUES ($1, $2)", rows);
        });
        report("executemany", n, "row", f);
    }
    if (wants("fetch")) {
        constexpr int n = 100000;
        Figure f = co_await timed([&]() -> coring::Task<> {
            auto rows = co_await conn.fetch(
                    "SELECT g AS a, 'row ' || g AS b FROM generate_series(1, 100000) g");
            std::int64_t sum = 0;
            for (const auto& r : rows) {
                sum += r.get<int>(0) + static_cast<std::int64_t>(r.get<std::string>(1).size());
            }
            if (sum == 0) {
                std::puts("impossible");
            }
        });
        report("fetch", n, "row", f);
    }
    if (wants("pipeline")) {
        constexpr int batches = 400;
        constexpr int per = 256;
        Figure f = co_await timed([&]() -> coring::Task<> {
            for (int b = 0; b < batches; ++b) {
                pg::Pipeline p;
                for (int i = 0; i < per; ++i) {
                    p.add("SELECT 1");
                }
                auto results = co_await conn.run_pipeline(std::move(p));
                (void)results;
            }
        });
        report("pipeline", static_cast<std::size_t>(batches) * per, "query", f);
    }
    if (wants("pool")) {
        // 64 tasks sharing a Pool of 8, each running its queries through pool.fetchval (one
        // acquire and release per query, as asyncpg's pool.fetchval).
        constexpr int tasks = 64;
        const char* env = std::getenv("CORING_PG_POOL_QUERIES");
        const int per = env != nullptr ? std::atoi(env) : 2000;
        pg::PoolOptions options;
        options.min_size = 8;
        options.max_size = 8;
        auto pool = co_await pg::Pool::create(dsn, options);
        Figure f = co_await timed([&]() -> coring::Task<> {
            auto worker = [&pool, per]() -> coring::Task<> {
                for (int i = 0; i < per; ++i) {
                    int v = co_await pool.fetchval<int>("SELECT 1");
                    (void)v;
                }
            };
            std::vector<coring::TaskHandle<>> workers;
            for (int t = 0; t < tasks; ++t) {
                workers.push_back(coring::create_task(worker()));
            }
            for (auto& w : workers) {
                co_await w;
            }
        });
        co_await pool.close();
        report("pool", static_cast<std::size_t>(tasks) * static_cast<std::size_t>(per), "query", f);
    }
    if (wants("cancel")) {
        // Cancelling a running pg_sleep(10): time from cancel() to the task's CancelledError
        // (cancel request on the executor, server stops, connection drained), then reuse.
        std::vector<double> ms;
        for (int i = 0; i < 20; ++i) {
            auto t = coring::create_task(conn.execute("SELECT pg_sleep(10)"));
            co_await coring::sleep(std::chrono::milliseconds(20));
            auto t0 = std::chrono::steady_clock::now();
            t.cancel();
            try {
                co_await t;
            } catch (const coring::CancelledError&) {
            }
            ms.push_back(
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                            .count());
            int v = co_await conn.fetchval<int>("SELECT 1");
            (void)v;
        }
        std::sort(ms.begin(), ms.end());
        std::printf(
                "cancel       %8zu runs   median %.2f ms  max %.2f ms (cancel -> CancelledError)\n",
                ms.size(),
                ms[ms.size() / 2],
                ms.back());
    }
    co_await conn.close();
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: bench_pg_client <dsn> [case...]\n");
        return 2;
    }
    std::vector<std::string> cases(argv + 2, argv + argc);
    try {
        return coring::run(run(argv[1], cases));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_pg_client: %s\n", e.what());
        return 1;
    }
}
