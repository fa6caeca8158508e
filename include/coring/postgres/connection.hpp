// SPDX-License-Identifier: MIT
// Connection: one PostgreSQL session driven by the event loop through libpq's non-blocking API
// (asyncpg.connect / asyncpg.Connection: execute, fetch, fetchrow, fetchval, prepare,
// executemany, transaction).
#pragma once

#include <coring/postgres/errors.hpp>
#include <coring/postgres/row.hpp>
#include <coring/postgres/types.hpp>
#include <coring/task.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace coring::postgres {

/// Options of connect() (asyncpg.connect's keyword arguments). Trivially destructible, so a
/// braced temporary is safe inside `co_await` with GCC 12 (docs/pitfalls.md).
struct ConnectOptions {
    /// How long connecting may take, name resolution included (asyncpg: timeout=60).
    std::chrono::milliseconds timeout{60'000};
    /// The default deadline of every query on the connection; zero: none (command_timeout).
    std::chrono::milliseconds command_timeout{0};
    /// How many statements the automatic statement cache keeps (LRU); 0 turns it off
    /// (statement_cache_size=100).
    std::uint32_t statement_cache_size = 100;
};

static_assert(std::is_trivially_destructible_v<ConnectOptions>);

/// A per-call deadline, given as the first argument of a query:
/// `co_await conn.fetch(CommandTimeout{2s}, "SELECT ...")` (asyncpg's timeout= argument).
struct CommandTimeout {
    std::chrono::milliseconds value;
};

/// Transaction isolation levels (asyncpg's isolation=).
enum class IsolationLevel { server_default, read_committed, repeatable_read, serializable };

/// Options of Connection::transaction (asyncpg.Connection.transaction's arguments). Ignored by
/// a nested transaction, which is a savepoint. Trivially destructible.
struct TransactionOptions {
    IsolationLevel isolation = IsolationLevel::server_default;
    bool readonly = false;
    bool deferrable = false;
};

static_assert(std::is_trivially_destructible_v<TransactionOptions>);

class Connection;

/// The outcome of one query of a Pipeline: its command status and its rows.
struct QueryResult {
    std::string status; ///< "SELECT 1", "INSERT 0 1", ...
    std::vector<Row> rows;
};

/// Statements to send together in libpq's pipeline mode (psycopg 3's pipeline; asyncpg has
/// none): Connection::run_pipeline sends them all, then one sync, then reads every result.
///
///     coring::postgres::Pipeline p;
///     p.add("INSERT INTO t VALUES ($1)", 1);
///     p.add("SELECT count(*) FROM t");
///     auto results = co_await conn.run_pipeline(std::move(p));
class Pipeline {
public:
    /// Queues sql with its parameters.
    template <class... Args>
    void add(std::string_view sql, const Args&... args);

    /// How many statements are queued.
    std::size_t size() const noexcept { return sqls_.size(); }

private:
    friend class Connection;
    std::vector<std::string> sqls_;
    std::vector<detail::Params> params_;
};

/// A NOTIFY received on a channel this connection LISTENs to (asyncpg's listener callback
/// arguments: pid, channel, payload).
struct Notification {
    std::string channel;
    std::string payload;
    int pid = 0; ///< the server process that sent it
};

/// Connects to a PostgreSQL server (asyncpg.connect). dsn is a libpq connection string, as a
/// URI ("postgresql://user:pw@host:5432/db?sslmode=require") or key=value pairs ("host=/run/
/// postgresql dbname=app"); TLS is libpq's (sslmode). A host name is resolved off the loop
/// with coring::getaddrinfo; everything else happens on fd readiness, never blocking the loop.
/// Throws: ConnectionError (refused, authentication failed, no such database: libpq's
/// message); TimeoutError after options.timeout; InterfaceError for a malformed dsn.
/// Cancellation: the half-made connection is closed.
[[nodiscard]] Task<Connection> connect(std::string dsn, ConnectOptions options = {});

namespace detail {
struct ConnState;

template <class... Args>
Params make_params(const Args&... args) {
    Params p;
    p.values.reserve(sizeof...(Args));
    (encode(p, args), ...);
    return p;
}

template <class Tuple>
Params tuple_params(const Tuple& t) {
    return std::apply([](const auto&... a) { return make_params(a...); }, t);
}
} // namespace detail

/// A statement prepared on the server (asyncpg.PreparedStatement), made by
/// Connection::prepare. Valid while its connection is open; the server keeps it until the
/// connection closes.
class PreparedStatement {
public:
    /// The statement's text.
    const std::string& query() const noexcept { return sql_; }

    /// The server-side name.
    const std::string& name() const noexcept { return name_; }

    /// The number of $n parameters it takes.
    int parameter_count() const noexcept { return nparams_; }

    /// Runs it and returns its rows (PreparedStatement.fetch).
    template <class... Args>
    [[nodiscard]] Task<std::vector<Row>> fetch(const Args&... args) const;
    /// Runs it and returns the command status ("INSERT 0 1").
    template <class... Args>
    [[nodiscard]] Task<std::string> execute(const Args&... args) const;
    /// Runs it and returns the first row or std::nullopt (PreparedStatement.fetchrow).
    template <class... Args>
    [[nodiscard]] Task<std::optional<Row>> fetchrow(const Args&... args) const;

private:
    friend class Connection;

    PreparedStatement(Connection* conn, std::string name, std::string sql, int nparams)
        : conn_(conn), name_(std::move(name)), sql_(std::move(sql)), nparams_(nparams) {}

    Connection* conn_;
    std::string name_;
    std::string sql_;
    int nparams_;
};

/// One PostgreSQL connection (asyncpg.Connection), made by connect(). One operation at a time:
/// starting a second while one runs throws InterfaceError("another operation is in progress").
///
///     auto conn = co_await coring::postgres::connect("postgresql://user@localhost/db");
///     auto rows = co_await conn.fetch("SELECT id, name FROM items WHERE id > $1", 10);
///     for (const auto& row : rows) { use(row.get<int>("id"), row.get<std::string>("name")); }
///     co_await conn.close();
///
/// Cancellation: cancelling the task awaiting a query sends PostgreSQL's cancel request (on the
/// default executor: libpq 15's PQcancel blocks), waits until the server has finished with the
/// query, then lets CancelledError through; the connection stays usable.
/// Timeouts: a command timeout (ConnectOptions::command_timeout, or CommandTimeout as a query's
/// first argument) cancels the query the same way and throws coring::TimeoutError.
/// Connection loss: the await that notices it throws ConnectionError and the connection closes.
/// Thread safety: use a connection from its loop's thread only.
class Connection {
public:
    Connection(Connection&&) noexcept;
    Connection& operator=(Connection&&) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    /// Closes the connection if still open (without waiting).
    ~Connection();

    /// Whether close() ran or the connection was lost (Connection.is_closed()).
    bool is_closed() const noexcept;

    /// Closes the connection: sends Terminate and releases the socket (Connection.close()).
    [[nodiscard]] Task<> close();

    /// The server process serving this connection (Connection.get_server_pid()).
    int get_server_pid() const;

    /// How many statements the automatic cache holds now.
    std::size_t statement_cache_count() const noexcept;

    /// Runs sql with parameters $1.. bound from args and returns the command status ("INSERT 0
    /// 1", "SELECT 3"; Connection.execute). Without args, sql may hold several statements.
    /// Throws: PostgresError (or its subclass for the SQLSTATE); ConnectionError;
    /// InterfaceError; TimeoutError (command timeout); CancelledError.
    template <class... Args>
    [[nodiscard]] Task<std::string> execute(std::string_view sql, const Args&... args) {
        return execute_impl(std::string(sql), {}, detail::make_params(args...), std::nullopt);
    }

    /// execute() with a per-call deadline.
    template <class... Args>
    [[nodiscard]] Task<std::string>
    execute(CommandTimeout t, std::string_view sql, const Args&... args) {
        return execute_impl(std::string(sql), {}, detail::make_params(args...), t.value);
    }

    /// Runs a query and returns all its rows (Connection.fetch). Throws: as execute().
    template <class... Args>
    [[nodiscard]] Task<std::vector<Row>> fetch(std::string_view sql, const Args&... args) {
        return fetch_impl(std::string(sql), {}, detail::make_params(args...), std::nullopt);
    }

    /// fetch() with a per-call deadline.
    template <class... Args>
    [[nodiscard]] Task<std::vector<Row>>
    fetch(CommandTimeout t, std::string_view sql, const Args&... args) {
        return fetch_impl(std::string(sql), {}, detail::make_params(args...), t.value);
    }

    /// Runs a query and returns its first row, or std::nullopt (Connection.fetchrow).
    template <class... Args>
    [[nodiscard]] Task<std::optional<Row>> fetchrow(std::string_view sql, const Args&... args) {
        return fetchrow_impl(std::string(sql), {}, detail::make_params(args...), std::nullopt);
    }

    /// fetchrow() with a per-call deadline.
    template <class... Args>
    [[nodiscard]] Task<std::optional<Row>>
    fetchrow(CommandTimeout t, std::string_view sql, const Args&... args) {
        return fetchrow_impl(std::string(sql), {}, detail::make_params(args...), t.value);
    }

    /// Runs a query and returns the first column of its first row as T (Connection.fetchval):
    /// `int n = co_await conn.fetchval<int>("SELECT $1::int + 1", 41);`. With T =
    /// std::optional<U>, NULL and "no row" give std::nullopt.
    /// Throws: as execute(); DataError when there is no row (or NULL) and T is not optional.
    template <class T, class... Args>
    [[nodiscard]] Task<T> fetchval(std::string_view sql, const Args&... args) {
        return fetchval_impl<T>(
                fetchrow_impl(std::string(sql), {}, detail::make_params(args...), std::nullopt));
    }

    /// fetchval() with a per-call deadline.
    template <class T, class... Args>
    [[nodiscard]] Task<T> fetchval(CommandTimeout t, std::string_view sql, const Args&... args) {
        return fetchval_impl<T>(
                fetchrow_impl(std::string(sql), {}, detail::make_params(args...), t.value));
    }

    /// Prepares sql on the server (Connection.prepare).
    /// Throws: PostgresError for a statement the server rejects; as execute().
    [[nodiscard]] Task<PreparedStatement> prepare(std::string sql);

    /// Runs sql once per element of rows, each a std::tuple (or pair) of the parameters, in
    /// libpq's pipeline mode: all executions are sent without waiting for each other and
    /// acknowledged by one sync (Connection.executemany). Atomic: outside a transaction the
    /// batch runs in an implicit one, so an error leaves no row of it behind.
    /// Throws: the first error of the batch; as execute().
    template <class Rows>
    [[nodiscard]] Task<> executemany(std::string_view sql, const Rows& rows) {
        std::vector<detail::Params> batch;
        for (const auto& r : rows) {
            batch.push_back(detail::tuple_params(r));
        }
        return executemany_impl(std::string(sql), std::move(batch), std::nullopt);
    }

    /// Sends every statement of pipeline without waiting for each other, one sync, then reads
    /// their results, in order. Like executemany, the statements run in one implicit
    /// transaction when no transaction() block is open: an error fails (and rolls back) them
    /// all, and the first error is thrown.
    /// Throws: as execute().
    [[nodiscard]] Task<std::vector<QueryResult>> run_pipeline(Pipeline pipeline) {
        return run_pipeline_impl(std::move(pipeline.sqls_), std::move(pipeline.params_));
    }

    /// Runs body, a callable returning Task<>, in a transaction (asyncpg's `async with
    /// conn.transaction():`): BEGIN with options, then COMMIT when body completes, ROLLBACK
    /// when it throws or is cancelled (and the exception goes on). Nested calls use savepoints.
    ///
    ///     co_await conn.transaction([&]() -> coring::Task<> {
    ///         co_await conn.execute("INSERT INTO t VALUES ($1)", 1);
    ///     });
    ///
    /// Throws: what body throws; PostgresError from BEGIN/COMMIT (e.g. SerializationFailure).
    template <class Body>
    [[nodiscard]] Task<> transaction(Body body) {
        return transaction(TransactionOptions{}, std::move(body));
    }
    /// transaction() with options: isolation level, read only, deferrable.
    template <class Body>
    [[nodiscard]] Task<> transaction(TransactionOptions options, Body body);

    /// Subscribes to channel: runs LISTEN with the name quoted (asyncpg's add_listener, without
    /// the callback: notifications are read with next_notification()).
    [[nodiscard]] Task<> listen(std::string channel);

    /// Runs UNLISTEN for channel.
    [[nodiscard]] Task<> unlisten(std::string channel);

    /// The next notification, waiting for one if none has arrived: notifications that arrive
    /// while other queries run are kept, in order, until read here. It is an operation like a
    /// query: a connection waiting here runs nothing else (dedicate one to listening).
    /// Cancellation: safe, nothing is lost (wrap in coring::wait_for for a deadline).
    /// Throws: ConnectionError; InterfaceError when another operation runs.
    [[nodiscard]] Task<Notification> next_notification();

    /// Bulk-loads rows, a range of tuples, into table with COPY ... FROM STDIN (asyncpg's
    /// copy_records_to_table); columns names the target columns, all of them when empty.
    /// Values are encoded as for query parameters, NULL included. Returns the status ("COPY
    /// 1000"). Throws: as execute(). Cancellation: the COPY is aborted, the connection stays
    /// usable.
    template <class Rows>
    [[nodiscard]] Task<std::string> copy_records_to_table(std::string_view table,
                                                          const Rows& rows,
                                                          std::vector<std::string> columns = {}) {
        std::string data;
        for (const auto& r : rows) {
            detail::append_copy_row(data, detail::tuple_params(r));
        }
        return copy_in_impl(std::string(table), std::move(columns), std::move(data));
    }

    /// Runs COPY (sql) TO STDOUT and returns its output in COPY's text format, one line per row
    /// (asyncpg's copy_from_query, collected in memory). Throws: as execute().
    [[nodiscard]] Task<std::string> copy_from_query(std::string sql);

    /// Whether a transaction() block of this connection is running.
    bool is_in_transaction() const noexcept;

    /// How many queries (operations) the connection has run; a Pool's max_queries counts them.
    std::uint64_t query_count() const noexcept;

private:
    friend class PreparedStatement;
    friend class Pool;
    friend Task<Connection> connect(std::string dsn, ConnectOptions options);
    explicit Connection(std::unique_ptr<detail::ConnState> state) noexcept;

    // For a Pool, on an idle connection: reads whatever the server sent meanwhile without
    // waiting (a FATAL termination, EOF) and says whether the connection is still usable; a
    // dead one is closed.
    bool check_idle() noexcept;

    // For a Pool: whether the server's session is outside any transaction block (libpq's
    // PQTRANS_IDLE), so that its reset needs no ROLLBACK.
    bool server_transaction_idle() const noexcept;

    // prepared: the name of a statement made by prepare(), or empty for sql through the
    // statement cache.
    Task<std::string> execute_impl(std::string sql,
                                   std::string prepared,
                                   detail::Params params,
                                   std::optional<std::chrono::milliseconds> timeout);
    Task<std::vector<Row>> fetch_impl(std::string sql,
                                      std::string prepared,
                                      detail::Params params,
                                      std::optional<std::chrono::milliseconds> timeout);
    Task<std::optional<Row>> fetchrow_impl(std::string sql,
                                           std::string prepared,
                                           detail::Params params,
                                           std::optional<std::chrono::milliseconds> timeout);
    Task<> executemany_impl(std::string sql,
                            std::vector<detail::Params> batch,
                            std::optional<std::chrono::milliseconds> timeout);
    Task<std::string>
    copy_in_impl(std::string table, std::vector<std::string> columns, std::string data);
    Task<std::vector<QueryResult>> run_pipeline_impl(std::vector<std::string> sqls,
                                                     std::vector<detail::Params> params);
    Task<> begin_transaction(TransactionOptions options);
    Task<> end_transaction(bool commit);

    template <class T>
    static Task<T> fetchval_impl(Task<std::optional<Row>> query);

    std::unique_ptr<detail::ConnState> state_;
};

// Implementation

template <class T>
Task<T> Connection::fetchval_impl(Task<std::optional<Row>> query) {
    std::optional<Row> row = co_await std::move(query);
    if constexpr (detail::is_optional<T>::value) {
        if (!row) {
            co_return std::nullopt;
        }
    } else {
        if (!row) {
            throw DataError("fetchval: the query returned no row");
        }
    }
    co_return row->template get<T>(0);
}

template <class Body>
Task<> Connection::transaction(TransactionOptions options, Body body) {
    co_await begin_transaction(options);
    std::exception_ptr error;
    try {
        co_await body();
    } catch (...) {
        error = std::current_exception();
    }
    if (!error) {
        co_await end_transaction(true);
        co_return;
    }
    co_await end_transaction(false);
    std::rethrow_exception(error);
}

template <class... Args>
void Pipeline::add(std::string_view sql, const Args&... args) {
    sqls_.emplace_back(sql);
    params_.push_back(detail::make_params(args...));
}

template <class... Args>
Task<std::vector<Row>> PreparedStatement::fetch(const Args&... args) const {
    return conn_->fetch_impl(sql_, name_, detail::make_params(args...), std::nullopt);
}

template <class... Args>
Task<std::string> PreparedStatement::execute(const Args&... args) const {
    return conn_->execute_impl(sql_, name_, detail::make_params(args...), std::nullopt);
}

template <class... Args>
Task<std::optional<Row>> PreparedStatement::fetchrow(const Args&... args) const {
    return conn_->fetchrow_impl(sql_, name_, detail::make_params(args...), std::nullopt);
}

} // namespace coring::postgres
