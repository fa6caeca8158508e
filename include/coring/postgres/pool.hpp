// SPDX-License-Identifier: MIT
// Pool: a bounded set of connections shared by tasks (asyncpg.create_pool / asyncpg.Pool):
// acquire with a timeout, release with a session reset, broken and worn-out connections
// replaced, close draining the leases.
#pragma once

#include <coring/postgres/connection.hpp>
#include <coring/task.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace coring::postgres {

/// Options of Pool::create (asyncpg.create_pool's arguments). Trivially destructible.
struct PoolOptions {
    /// Connections opened by create() and kept open (min_size=10).
    std::size_t min_size = 10;
    /// The most connections open at once (max_size=10).
    std::size_t max_size = 10;
    /// A connection that has run this many queries is closed on release and replaced
    /// (max_queries=50000); 0: never.
    std::uint64_t max_queries = 50'000;
    /// A connection older than this is closed on release and replaced; zero: never.
    std::chrono::milliseconds max_lifetime{0};
    /// How long acquire() waits for a free connection; zero: forever (asyncpg's acquire
    /// timeout=None).
    std::chrono::milliseconds acquire_timeout{0};
    /// How each connection is made.
    ConnectOptions connect{};
};

static_assert(std::is_trivially_destructible_v<PoolOptions>);

namespace detail {
struct PoolState;
struct PoolEntry;
} // namespace detail

/// A connection taken from a Pool (asyncpg's `async with pool.acquire() as conn`). Gives the
/// connection back when destroyed or release()d; the pool resets its session (ROLLBACK, CLOSE
/// ALL, UNLISTEN *, RESET ALL, advisory locks) before handing it out again. Move-only.
class PooledConnection {
public:
    PooledConnection(PooledConnection&&) noexcept;
    PooledConnection& operator=(PooledConnection&&) noexcept;
    PooledConnection(const PooledConnection&) = delete;
    PooledConnection& operator=(const PooledConnection&) = delete;
    ~PooledConnection();

    Connection& operator*() const noexcept;
    Connection* operator->() const noexcept;

    /// Gives the connection back now (Pool.release()); afterwards this holds nothing.
    void release() noexcept;

private:
    friend class Pool;
    PooledConnection(std::shared_ptr<detail::PoolState> pool,
                     std::unique_ptr<detail::PoolEntry> entry) noexcept;

    std::shared_ptr<detail::PoolState> pool_;
    std::unique_ptr<detail::PoolEntry> entry_;
};

/// A pool of connections to one server (asyncpg.Pool). Tasks share it: acquire() hands out an
/// idle connection, opens a new one below max_size, or waits. Connections found closed (a
/// lost connection, pg_terminate_backend) are never handed out again; a new one replaces them.
/// Copies of a Pool share the same pool. Thread safety: use it from its loop's thread only.
///
///     coring::postgres::PoolOptions options;
///     options.max_size = 8;
///     auto pool = co_await coring::postgres::Pool::create(dsn, options);
///     auto rows = co_await pool.fetch("SELECT * FROM items WHERE id = $1", 7);
///     {
///         auto conn = co_await pool.acquire();
///         co_await conn->transaction([&]() -> coring::Task<> { ... });
///     }                                                  // back to the pool
///     co_await pool.close();
class Pool {
public:
    /// Opens options.min_size connections to dsn (asyncpg.create_pool).
    /// Throws: what connect() throws; ValueError for min_size > max_size or max_size 0.
    [[nodiscard]] static Task<Pool> create(std::string dsn, PoolOptions options = {});

    /// Takes a connection (Pool.acquire()), waiting up to options.acquire_timeout.
    /// Throws: TimeoutError; InterfaceError when the pool is closing; what connect() throws.
    /// Cancellation: nothing is taken.
    [[nodiscard]] Task<PooledConnection> acquire();

    /// acquire() with its own timeout.
    [[nodiscard]] Task<PooledConnection> acquire(std::chrono::milliseconds timeout);

    /// Connection::execute on a connection acquired for the call (Pool.execute).
    template <class... Args>
    [[nodiscard]] Task<std::string> execute(std::string_view sql, const Args&... args) {
        return execute_impl(std::string(sql), detail::make_params(args...));
    }

    /// Connection::fetch on a connection acquired for the call (Pool.fetch).
    template <class... Args>
    [[nodiscard]] Task<std::vector<Row>> fetch(std::string_view sql, const Args&... args) {
        return fetch_impl(std::string(sql), detail::make_params(args...));
    }

    /// Connection::fetchrow on a connection acquired for the call (Pool.fetchrow).
    template <class... Args>
    [[nodiscard]] Task<std::optional<Row>> fetchrow(std::string_view sql, const Args&... args) {
        return fetchrow_impl(std::string(sql), detail::make_params(args...));
    }

    /// Connection::fetchval on a connection acquired for the call (Pool.fetchval).
    template <class T, class... Args>
    [[nodiscard]] Task<T> fetchval(std::string_view sql, const Args&... args) {
        return Connection::fetchval_impl<T>(
                fetchrow_impl(std::string(sql), detail::make_params(args...)));
    }

    /// Stops handing out connections, waits until every acquired one is back, closes them all
    /// (Pool.close()).
    [[nodiscard]] Task<> close();

    /// Connections open now, idle or acquired (Pool.get_size()).
    std::size_t get_size() const noexcept;
    /// Idle connections (Pool.get_idle_size()).
    std::size_t get_idle_size() const noexcept;

private:
    explicit Pool(std::shared_ptr<detail::PoolState> state) noexcept : state_(std::move(state)) {}

    Task<std::string> execute_impl(std::string sql, detail::Params params);
    Task<std::vector<Row>> fetch_impl(std::string sql, detail::Params params);
    Task<std::optional<Row>> fetchrow_impl(std::string sql, detail::Params params);

    std::shared_ptr<detail::PoolState> state_;
};

} // namespace coring::postgres
