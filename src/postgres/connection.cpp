// SPDX-License-Identifier: MIT
// Connection: libpq's non-blocking connect, query, pipeline and cancel protocols driven by fd
// readiness on the loop (asyncpg.connection; psycopg 3's waiting functions).
#include <coring/errors.hpp>
#include <coring/executor.hpp>
#include <coring/log.hpp>
#include <coring/net/address.hpp>
#include <coring/postgres/connection.hpp>
#include <coring/readiness.hpp>
#include <coring/timeout.hpp>

#include <fmt/format.h>

#include <libpq-fe.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <list>
#include <unordered_map>

namespace coring::postgres {

namespace detail {

struct ConnState {
    PGconn* conn = nullptr;
    ConnectOptions options;
    std::uint64_t queries = 0; // operations run (BusyGuard counts them)
    bool busy = false;         // an operation runs (asyncpg: "another operation is in progress")
    int tx_depth = 0;          // running transaction() blocks: 0 none, 1 BEGIN, >1 savepoints
    std::uint64_t next_name = 0;

    // The statement cache: most recently used first; by SQL text.
    struct Entry {
        std::string sql;
        std::string name;
    };

    std::list<Entry> lru;
    std::unordered_map<std::string, std::list<Entry>::iterator> cache;
    std::deque<Notification> notifications; // received, not yet read by next_notification

    ConnState() = default;
    ConnState(const ConnState&) = delete;
    ConnState& operator=(const ConnState&) = delete;

    ~ConnState() { finish(); }

    void finish() noexcept {
        if (conn != nullptr) {
            PQfinish(conn);
            conn = nullptr;
        }
        lru.clear();
        cache.clear();
    }
};

} // namespace detail

namespace {

using detail::ConnState;
using detail::ResultPtr;
using ms = std::chrono::milliseconds;

std::string trimmed(const char* text) {
    std::string s = text != nullptr ? text : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
        s.pop_back();
    }
    return s;
}

// The connection is gone: close it and throw.
[[noreturn]] void lost(ConnState& s, const std::string& why) {
    std::string msg = trimmed(s.conn != nullptr ? PQerrorMessage(s.conn) : "");
    s.finish();
    throw ConnectionError(msg.empty() ? why : why + ": " + msg);
}

void check_open(ConnState& s) {
    if (s.conn == nullptr) {
        throw ConnectionError("the connection is closed");
    }
}

ResultPtr own(PGresult* r) {
    return ResultPtr(r, [](pg_result* p) { PQclear(p); });
}

// Moves the notifications libpq has parsed into the connection's queue.
void collect_notifies(ConnState& s) {
    while (PGnotify* n = PQnotifies(s.conn)) {
        s.notifications.push_back(Notification{n->relname, n->extra, n->be_pid});
        PQfreemem(n);
    }
}

std::string field(const PGresult* r, int code) {
    const char* v = PQresultErrorField(r, code);
    return v != nullptr ? v : "";
}

std::exception_ptr error_of(const PGresult* r) {
    ErrorFields f;
    f.sqlstate = field(r, PG_DIAG_SQLSTATE);
    f.severity = field(r, PG_DIAG_SEVERITY);
    f.message = field(r, PG_DIAG_MESSAGE_PRIMARY);
    if (f.message.empty()) {
        f.message = trimmed(PQresultErrorMessage(r));
    }
    f.detail = field(r, PG_DIAG_MESSAGE_DETAIL);
    f.hint = field(r, PG_DIAG_MESSAGE_HINT);
    std::string pos = field(r, PG_DIAG_STATEMENT_POSITION);
    f.position = pos.empty() ? 0 : std::atoi(pos.c_str());
    return detail::make_postgres_error(std::move(f));
}

// Notices (RAISE NOTICE, warnings) go to coring's log at debug level instead of stderr.
void on_notice(void*, const char* message) {
    coring::log(LogLevel::debug, "postgres: " + trimmed(message));
}

// Sends what libpq has buffered, reading while waiting so the server never blocks on a full
// socket towards us (libpq's PQflush contract).
Task<> flush_all(ConnState& s) {
    for (;;) {
        int r = PQflush(s.conn);
        if (r == 0) {
            co_return;
        }
        if (r < 0) {
            lost(s, "send failed");
        }
        int ev = co_await ReadinessAwaiter(PQsocket(s.conn), POLLIN | POLLOUT);
        if ((ev & (POLLIN | POLLERR | POLLHUP)) != 0 && PQconsumeInput(s.conn) == 0) {
            lost(s, "connection lost");
        }
    }
}

// Reads every result of the current command until libpq says it is done. Returns the last
// result (rows or command status); throws the first error.
Task<ResultPtr> read_results(ConnState& s) {
    ResultPtr last;
    std::exception_ptr error;
    // Parse what is buffered first and wait only when libpq needs more: right after sending,
    // that saves a recv() that could only fail with EAGAIN.
    for (;;) {
        bool done = false;
        while (PQisBusy(s.conn) == 0) {
            PGresult* r = PQgetResult(s.conn);
            if (r == nullptr) {
                done = true;
                break;
            }
            ResultPtr owned = own(r);
            switch (PQresultStatus(r)) {
            case PGRES_FATAL_ERROR:
                if (!error) {
                    error = error_of(r);
                }
                break;
            case PGRES_COPY_IN:
            case PGRES_COPY_OUT:
            case PGRES_COPY_BOTH:
                s.finish();
                throw InterfaceError("COPY is not supported by this call");
            default:
                last = std::move(owned);
                break;
            }
        }
        if (done) {
            break;
        }
        int ev = co_await wait_readable(PQsocket(s.conn));
        (void)ev;
        if (PQconsumeInput(s.conn) == 0) {
            lost(s, "connection lost");
        }
    }
    collect_notifies(s);
    if (PQstatus(s.conn) == CONNECTION_BAD) {
        std::string why = "connection lost";
        if (error) {
            try {
                std::rethrow_exception(error);
            } catch (const PostgresError& e) {
                why = fmt::format("connection lost ({} {})", e.sqlstate(), e.message());
            }
        }
        lost(s, why);
    }
    if (error) {
        std::rethrow_exception(error);
    }
    co_return last;
}

// After a cancellation: asks the server to cancel (PQcancel blocks, so on the executor), then
// reads until the connection is idle again. A second cancellation meanwhile closes it.
Task<> cancel_and_drain(ConnState& s) {
    if (s.conn == nullptr) {
        co_return;
    }
    try {
        PGcancel* pc = PQgetCancel(s.conn);
        if (pc != nullptr) {
            co_await to_thread([pc] {
                char buf[256];
                PQcancel(pc, buf, sizeof buf);
                PQfreeCancel(pc);
            });
        }
        co_await flush_all(s);
        try {
            ResultPtr ignored = co_await read_results(s);
        } catch (const PostgresError&) {
            // 57014 query_canceled, or the query's own error: the task sees CancelledError.
        }
    } catch (const CancelledError&) {
        s.finish();
        throw;
    }
}

struct BusyGuard {
    ConnState& s;

    explicit BusyGuard(ConnState& state) : s(state) {
        check_open(s);
        if (s.busy) {
            throw InterfaceError("cannot perform operation: another operation is in progress");
        }
        s.busy = true;
        ++s.queries;
    }

    BusyGuard(const BusyGuard&) = delete;
    BusyGuard& operator=(const BusyGuard&) = delete;

    ~BusyGuard() { s.busy = false; }
};

struct ParamArrays {
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;
    std::vector<Oid> types;

    explicit ParamArrays(const detail::Params& p) {
        for (const auto& v : p.values) {
            values.push_back(v.null ? nullptr : v.data.data());
            lengths.push_back(static_cast<int>(v.data.size()));
            formats.push_back(v.binary ? 1 : 0);
            types.push_back(v.oid);
        }
    }

    int count() const { return static_cast<int>(values.size()); }
};

// Prepares sql under a new name, or finds it in the statement cache; evicts the least recently
// used statement past the cache size.
Task<std::string> cached_statement(ConnState& s, const std::string& sql) {
    auto it = s.cache.find(sql);
    if (it != s.cache.end()) {
        s.lru.splice(s.lru.begin(), s.lru, it->second);
        co_return it->second->name;
    }
    std::string name = fmt::format("coring_s{}", s.next_name++);
    if (PQsendPrepare(s.conn, name.c_str(), sql.c_str(), 0, nullptr) == 0) {
        lost(s, "send failed");
    }
    co_await flush_all(s);
    ResultPtr prepared = co_await read_results(s);
    s.lru.push_front({sql, name});
    s.cache.emplace(sql, s.lru.begin());
    while (s.lru.size() > s.options.statement_cache_size) {
        std::string old = "DEALLOCATE " + s.lru.back().name;
        s.cache.erase(s.lru.back().sql);
        s.lru.pop_back();
        if (PQsendQuery(s.conn, old.c_str()) == 0) {
            lost(s, "send failed");
        }
        co_await flush_all(s);
        ResultPtr ignored = co_await read_results(s);
    }
    co_return name;
}

// One query: simple protocol (no parameters, execute(): several statements allowed), a named
// statement, or the statement cache; results in binary format.
Task<ResultPtr> exchange(ConnState& s,
                         const std::string& sql,
                         const std::string& prepared,
                         const detail::Params& params,
                         bool simple) {
    ResultPtr result;
    std::exception_ptr cancelled;
    try {
        int ok = 0;
        if (simple) {
            ok = PQsendQuery(s.conn, sql.c_str());
        } else {
            ParamArrays a(params);
            std::string name = prepared;
            if (name.empty() && s.options.statement_cache_size > 0) {
                name = co_await cached_statement(s, sql);
            }
            if (!name.empty()) {
                ok = PQsendQueryPrepared(s.conn,
                                         name.c_str(),
                                         a.count(),
                                         a.values.data(),
                                         a.lengths.data(),
                                         a.formats.data(),
                                         1);
            } else {
                ok = PQsendQueryParams(s.conn,
                                       sql.c_str(),
                                       a.count(),
                                       a.types.data(),
                                       a.values.data(),
                                       a.lengths.data(),
                                       a.formats.data(),
                                       1);
            }
        }
        if (ok == 0) {
            std::string msg = trimmed(PQerrorMessage(s.conn));
            if (PQstatus(s.conn) == CONNECTION_BAD) {
                lost(s, "send failed");
            }
            throw InterfaceError(msg);
        }
        co_await flush_all(s);
        result = co_await read_results(s);
    } catch (const CancelledError&) {
        cancelled = std::current_exception();
    }
    if (cancelled) {
        co_await cancel_and_drain(s);
        std::rethrow_exception(cancelled);
    }
    co_return result;
}

std::optional<ms> effective_timeout(const ConnState& s, std::optional<ms> timeout) {
    if (timeout) {
        return timeout;
    }
    if (s.options.command_timeout.count() > 0) {
        return s.options.command_timeout;
    }
    return std::nullopt;
}

// exchange() under the busy flag and the command timeout.
Task<ResultPtr> run_query(ConnState& s,
                          std::string sql,
                          std::string prepared,
                          detail::Params params,
                          std::optional<ms> timeout,
                          bool simple) {
    BusyGuard guard(s);
    std::optional<ms> t = effective_timeout(s, timeout);
    if (!t) {
        ResultPtr r = co_await exchange(s, sql, prepared, params, simple);
        co_return r;
    }
    Timeout scope = coring::timeout(*t);
    auto body = [&]() -> Task<ResultPtr> {
        return exchange(s, sql, prepared, params, simple);
    };
    ResultPtr r = co_await scope.run(body);
    co_return r;
}

std::vector<Row> rows_of(const ResultPtr& r) {
    std::vector<Row> rows;
    if (!r) {
        return rows;
    }
    int n = PQntuples(r.get());
    rows.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        rows.emplace_back(r, i);
    }
    return rows;
}

// Connecting: PQconnectPoll on readiness, PQsocket re-read at each step (it changes when libpq
// tries the next address or host).
Task<> connect_steps(ConnState& s, std::string dsn) {
    char* err = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(dsn.c_str(), &err);
    if (parsed == nullptr) {
        std::string msg = err != nullptr ? trimmed(err) : "out of memory";
        PQfreemem(err);
        throw InterfaceError("invalid connection string: " + msg);
    }
    std::vector<std::string> keys;
    std::vector<std::string> values;
    std::string host;
    std::string port;
    bool has_hostaddr = false;
    for (PQconninfoOption* o = parsed; o->keyword != nullptr; ++o) {
        if (o->val == nullptr || *o->val == '\0') {
            continue;
        }
        keys.emplace_back(o->keyword);
        values.emplace_back(o->val);
        if (keys.back() == "host") {
            host = o->val;
        } else if (keys.back() == "port") {
            port = o->val;
        } else if (keys.back() == "hostaddr") {
            has_hostaddr = true;
        }
    }
    PQconninfoFree(parsed);
    // libpq would resolve a host name inside PQconnectPoll, blocking the loop: resolve it here,
    // off the loop, and hand libpq the address (host stays for TLS and .pgpass).
    if (!host.empty() && !has_hostaddr && host[0] != '/' && host[0] != '@' &&
        host.find(',') == std::string::npos) {
        std::string service = port.empty() ? "5432" : port;
        auto infos = co_await coring::getaddrinfo(host, service, 0, SOCK_STREAM);
        if (infos.empty()) {
            throw ConnectionError("could not resolve " + host);
        }
        // Every address, in getaddrinfo's order, as libpq tries a name's addresses itself
        // ("localhost" may be ::1 first while the server listens on 127.0.0.1 only): hostaddr
        // lists them and host repeats the name once per address, as libpq requires.
        std::string addrs;
        std::string hosts;
        std::vector<std::string> seen;
        for (const auto& info : infos) {
            std::string a = info.address.host();
            if (std::find(seen.begin(), seen.end(), a) != seen.end()) {
                continue;
            }
            seen.push_back(a);
            addrs += (addrs.empty() ? "" : ",") + a;
            hosts += (hosts.empty() ? "" : ",") + host;
        }
        for (std::size_t i = 0; i < keys.size(); ++i) {
            if (keys[i] == "host") {
                values[i] = hosts;
            }
        }
        keys.emplace_back("hostaddr");
        values.emplace_back(addrs);
    }
    std::vector<const char*> k;
    std::vector<const char*> v;
    for (std::size_t i = 0; i < keys.size(); ++i) {
        k.push_back(keys[i].c_str());
        v.push_back(values[i].c_str());
    }
    k.push_back(nullptr);
    v.push_back(nullptr);
    s.conn = PQconnectStartParams(k.data(), v.data(), 0);
    if (s.conn == nullptr) {
        throw std::bad_alloc();
    }
    if (PQstatus(s.conn) == CONNECTION_BAD) {
        lost(s, "connection failed");
    }
    PQsetNoticeProcessor(s.conn, on_notice, nullptr);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    for (;;) {
        if (st == PGRES_POLLING_OK) {
            break;
        }
        if (st == PGRES_POLLING_FAILED) {
            std::string msg = trimmed(PQerrorMessage(s.conn));
            s.finish();
            throw ConnectionError(msg);
        }
        int fd = PQsocket(s.conn);
        if (st == PGRES_POLLING_READING) {
            int ev = co_await wait_readable(fd);
            (void)ev;
        } else {
            int ev = co_await wait_writable(fd);
            (void)ev;
        }
        st = PQconnectPoll(s.conn);
    }
    if (PQsetnonblocking(s.conn, 1) != 0) {
        lost(s, "PQsetnonblocking failed");
    }
}

} // namespace

// Connection

Connection::Connection(std::unique_ptr<detail::ConnState> state) noexcept
    : state_(std::move(state)) {
}

Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;
Connection::~Connection() = default;

bool Connection::is_closed() const noexcept {
    return !state_ || state_->conn == nullptr;
}

Task<> Connection::close() {
    if (state_ && state_->conn != nullptr) {
        if (state_->busy) {
            // An operation is waiting on the socket: closing it under that wait would leave the
            // wait hanging. Shut the socket down instead; the operation sees the hang-up, throws
            // ConnectionError and closes the connection itself.
            ::shutdown(PQsocket(state_->conn), SHUT_RDWR);
        } else {
            state_->finish();
        }
    }
    co_return;
}

int Connection::get_server_pid() const {
    if (is_closed()) {
        throw ConnectionError("the connection is closed");
    }
    return PQbackendPID(state_->conn);
}

std::size_t Connection::statement_cache_count() const noexcept {
    return state_ ? state_->lru.size() : 0;
}

bool Connection::server_transaction_idle() const noexcept {
    return state_ && state_->conn != nullptr && PQtransactionStatus(state_->conn) == PQTRANS_IDLE;
}

bool Connection::check_idle() noexcept {
    if (is_closed()) {
        return false;
    }
    ConnState& s = *state_;
    if (s.busy) {
        return true;
    }
    // Read while there is something: a terminated session is a FATAL message, then EOF, which
    // only the next read sees.
    for (int i = 0; i < 8; ++i) {
        pollfd p{PQsocket(s.conn), POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0) {
            break;
        }
        if (PQconsumeInput(s.conn) == 0 || PQstatus(s.conn) == CONNECTION_BAD) {
            s.finish();
            return false;
        }
        collect_notifies(s);
    }
    return true;
}

std::uint64_t Connection::query_count() const noexcept {
    return state_ ? state_->queries : 0;
}

bool Connection::is_in_transaction() const noexcept {
    return state_ && state_->tx_depth > 0;
}

Task<std::string> Connection::execute_impl(std::string sql,
                                           std::string prepared,
                                           detail::Params params,
                                           std::optional<ms> timeout) {
    if (!state_) {
        throw ConnectionError("the connection is closed");
    }
    bool simple = prepared.empty() && params.values.empty();
    ResultPtr r = co_await run_query(
            *state_, std::move(sql), std::move(prepared), std::move(params), timeout, simple);
    co_return r ? std::string(PQcmdStatus(r.get())) : std::string();
}

Task<std::vector<Row>> Connection::fetch_impl(std::string sql,
                                              std::string prepared,
                                              detail::Params params,
                                              std::optional<ms> timeout) {
    if (!state_) {
        throw ConnectionError("the connection is closed");
    }
    ResultPtr r = co_await run_query(
            *state_, std::move(sql), std::move(prepared), std::move(params), timeout, false);
    co_return rows_of(r);
}

Task<std::optional<Row>> Connection::fetchrow_impl(std::string sql,
                                                   std::string prepared,
                                                   detail::Params params,
                                                   std::optional<ms> timeout) {
    if (!state_) {
        throw ConnectionError("the connection is closed");
    }
    ResultPtr r = co_await run_query(
            *state_, std::move(sql), std::move(prepared), std::move(params), timeout, false);
    if (!r || PQntuples(r.get()) == 0) {
        co_return std::nullopt;
    }
    co_return Row(r, 0);
}

Task<PreparedStatement> Connection::prepare(std::string sql) {
    if (!state_) {
        throw ConnectionError("the connection is closed");
    }
    ConnState& s = *state_;
    BusyGuard guard(s);
    std::string name = fmt::format("coring_p{}", s.next_name++);
    std::exception_ptr cancelled;
    int nparams = 0;
    try {
        if (PQsendPrepare(s.conn, name.c_str(), sql.c_str(), 0, nullptr) == 0) {
            lost(s, "send failed");
        }
        co_await flush_all(s);
        ResultPtr made = co_await read_results(s);
        if (PQsendDescribePrepared(s.conn, name.c_str()) == 0) {
            lost(s, "send failed");
        }
        co_await flush_all(s);
        ResultPtr described = co_await read_results(s);
        nparams = described ? PQnparams(described.get()) : 0;
    } catch (const CancelledError&) {
        cancelled = std::current_exception();
    }
    if (cancelled) {
        co_await cancel_and_drain(s);
        std::rethrow_exception(cancelled);
    }
    co_return PreparedStatement(this, std::move(name), std::move(sql), nparams);
}

namespace {

// Pipeline bookkeeping of executemany: results are read as they come, while sending.
struct PipelineState {
    std::size_t unfinished = 0; // queries whose end (a null PQgetResult) was not read yet
    bool synced = false;        // the PGRES_PIPELINE_SYNC result was read
    std::exception_ptr error;
    std::vector<ResultPtr>* results = nullptr; // where to keep each query's result, if anywhere
};

void consume_pipeline(ConnState& s, PipelineState& p) {
    if (PQconsumeInput(s.conn) == 0) {
        lost(s, "connection lost");
    }
    while (!p.synced && PQisBusy(s.conn) == 0) {
        PGresult* r = PQgetResult(s.conn);
        if (r == nullptr) {
            if (p.unfinished == 0) {
                break;
            }
            --p.unfinished;
            continue;
        }
        collect_notifies(s);
        ResultPtr owned = own(r);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            p.synced = true;
        } else if (st == PGRES_FATAL_ERROR) {
            if (!p.error) {
                p.error = error_of(r);
            }
        } else if (p.results != nullptr && st != PGRES_PIPELINE_ABORTED) {
            p.results->push_back(std::move(owned));
        }
    }
}

Task<> finish_pipeline(ConnState& s, PipelineState& p, bool sync_sent) {
    if (!sync_sent && PQpipelineSync(s.conn) == 0) {
        lost(s, "send failed");
    }
    co_await flush_all(s);
    for (;;) {
        consume_pipeline(s, p);
        if (p.synced) {
            break;
        }
        if (PQstatus(s.conn) == CONNECTION_BAD) {
            lost(s, "connection lost");
        }
        int ev = co_await wait_readable(PQsocket(s.conn));
        (void)ev;
    }
    PQexitPipelineMode(s.conn);
}

// Runs count queries in pipeline mode, send_one(i) sending the i-th; one sync at the end.
// Results are read whenever the socket is full; with results, every query's result is kept.
template <class SendOne>
Task<>
pipelined(ConnState& s, std::size_t count, SendOne send_one, std::vector<ResultPtr>* results) {
    if (PQenterPipelineMode(s.conn) == 0) {
        lost(s, "could not enter pipeline mode");
    }
    PipelineState p;
    p.results = results;
    bool sync_sent = false;
    std::exception_ptr cancelled;
    try {
        for (std::size_t i = 0; i < count;) {
            if (send_one(i) == 0) {
                lost(s, "send failed");
            }
            ++p.unfinished;
            if (++i % 64 != 0) {
                continue;
            }
            // Send what is buffered; when the socket is full, read results meanwhile so the
            // server is never stuck writing to us while we are stuck writing to it.
            for (;;) {
                int r = PQflush(s.conn);
                if (r == 0) {
                    break;
                }
                if (r < 0) {
                    lost(s, "send failed");
                }
                int ev = co_await ReadinessAwaiter(PQsocket(s.conn), POLLIN | POLLOUT);
                if ((ev & (POLLIN | POLLERR | POLLHUP)) != 0) {
                    consume_pipeline(s, p);
                }
            }
            consume_pipeline(s, p);
        }
        if (PQpipelineSync(s.conn) == 0) {
            lost(s, "send failed");
        }
        sync_sent = true;
        co_await finish_pipeline(s, p, true);
    } catch (const CancelledError&) {
        cancelled = std::current_exception();
    }
    if (cancelled) {
        if (s.conn != nullptr) {
            try {
                PGcancel* pc = PQgetCancel(s.conn);
                if (pc != nullptr) {
                    co_await to_thread([pc] {
                        char buf[256];
                        PQcancel(pc, buf, sizeof buf);
                        PQfreeCancel(pc);
                    });
                }
                co_await finish_pipeline(s, p, sync_sent);
            } catch (const CancelledError&) {
                s.finish();
                throw;
            }
        }
        std::rethrow_exception(cancelled);
    }
    if (p.error) {
        std::rethrow_exception(p.error);
    }
}

Task<>
pipeline_batch(ConnState& s, const std::string& sql, const std::vector<detail::Params>& batch) {
    std::string name;
    if (s.options.statement_cache_size > 0) {
        name = co_await cached_statement(s, sql);
    } else {
        name = fmt::format("coring_m{}", s.next_name++);
        if (PQsendPrepare(s.conn, name.c_str(), sql.c_str(), 0, nullptr) == 0) {
            lost(s, "send failed");
        }
        co_await flush_all(s);
        ResultPtr made = co_await read_results(s);
    }
    auto send_one = [&](std::size_t i) {
        ParamArrays a(batch[i]);
        return PQsendQueryPrepared(s.conn,
                                   name.c_str(),
                                   a.count(),
                                   a.values.data(),
                                   a.lengths.data(),
                                   a.formats.data(),
                                   0);
    };
    co_await pipelined(s, batch.size(), send_one, nullptr);
}

} // namespace

Task<std::vector<QueryResult>> Connection::run_pipeline_impl(std::vector<std::string> sqls,
                                                             std::vector<detail::Params> params) {
    if (!state_) {
        throw ConnectionError("the connection is closed");
    }
    ConnState& s = *state_;
    BusyGuard guard(s);
    std::vector<QueryResult> out;
    if (sqls.empty()) {
        co_return out;
    }
    std::vector<ResultPtr> results;
    results.reserve(sqls.size());
    auto send_one = [&](std::size_t i) {
        ParamArrays a(params[i]);
        return PQsendQueryParams(s.conn,
                                 sqls[i].c_str(),
                                 a.count(),
                                 a.types.data(),
                                 a.values.data(),
                                 a.lengths.data(),
                                 a.formats.data(),
                                 1);
    };
    std::optional<ms> t = effective_timeout(s, std::nullopt);
    if (!t) {
        co_await pipelined(s, sqls.size(), send_one, &results);
    } else {
        Timeout scope = coring::timeout(*t);
        auto body = [&]() -> Task<> {
            return pipelined(s, sqls.size(), send_one, &results);
        };
        co_await scope.run(body);
    }
    out.reserve(results.size());
    for (auto& r : results) {
        out.push_back(QueryResult{PQcmdStatus(r.get()), rows_of(r)});
    }
    co_return out;
}

Task<> Connection::executemany_impl(std::string sql,
                                    std::vector<detail::Params> batch,
                                    std::optional<ms> timeout) {
    if (!state_) {
        throw ConnectionError("the connection is closed");
    }
    ConnState& s = *state_;
    BusyGuard guard(s);
    if (batch.empty()) {
        co_return;
    }
    std::optional<ms> t = effective_timeout(s, timeout);
    if (!t) {
        co_await pipeline_batch(s, sql, batch);
        co_return;
    }
    Timeout scope = coring::timeout(*t);
    auto body = [&]() -> Task<> {
        return pipeline_batch(s, sql, batch);
    };
    co_await scope.run(body);
}

Task<> Connection::begin_transaction(TransactionOptions options) {
    if (!state_) {
        throw ConnectionError("the connection is closed");
    }
    std::string sql;
    int depth = state_->tx_depth;
    if (depth == 0) {
        sql = "BEGIN";
        switch (options.isolation) {
        case IsolationLevel::server_default:
            break;
        case IsolationLevel::read_committed:
            sql += " ISOLATION LEVEL READ COMMITTED";
            break;
        case IsolationLevel::repeatable_read:
            sql += " ISOLATION LEVEL REPEATABLE READ";
            break;
        case IsolationLevel::serializable:
            sql += " ISOLATION LEVEL SERIALIZABLE";
            break;
        }
        if (options.readonly) {
            sql += " READ ONLY";
        }
        if (options.deferrable) {
            sql += " DEFERRABLE";
        }
    } else {
        sql = fmt::format("SAVEPOINT coring_sp_{}", depth);
    }
    std::string status = co_await execute(sql); // no braced temporaries inside co_await (GCC 12)
    (void)status;
    ++state_->tx_depth;
}

Task<> Connection::end_transaction(bool commit) {
    int depth = --state_->tx_depth;
    std::string sql;
    if (depth == 0) {
        sql = commit ? "COMMIT" : "ROLLBACK";
    } else {
        sql = fmt::format(
                "{} coring_sp_{}", commit ? "RELEASE SAVEPOINT" : "ROLLBACK TO SAVEPOINT", depth);
    }
    if (commit) {
        std::string status =
                co_await execute(sql); // no braced temporaries inside co_await (GCC 12)
        (void)status;
        co_return;
    }
    if (is_closed()) {
        co_return; // nothing to roll back: the server did when the connection went
    }
    std::exception_ptr failed;
    try {
        std::string status =
                co_await execute(sql); // no braced temporaries inside co_await (GCC 12)
        (void)status;
    } catch (const std::exception&) {
        failed = std::current_exception(); // the body's exception is the one to report
    }
    if (failed) {
        coring::log(LogLevel::debug, "postgres: rollback failed");
    }
}

namespace {

std::string quote_identifier(ConnState& s, const std::string& name) {
    char* q = PQescapeIdentifier(s.conn, name.c_str(), name.size());
    if (q == nullptr) {
        throw InterfaceError("invalid identifier: " + trimmed(PQerrorMessage(s.conn)));
    }
    std::string out = q;
    PQfreemem(q);
    return out;
}

// Sends a COPY statement and waits for the server's CopyInResponse / CopyOutResponse (want);
// an error instead (e.g. no such table) is read to the end and thrown.
Task<> start_copy(ConnState& s, const std::string& sql, ExecStatusType want) {
    if (PQsendQuery(s.conn, sql.c_str()) == 0) {
        lost(s, "send failed");
    }
    co_await flush_all(s);
    PGresult* start = nullptr;
    for (;;) {
        if (PQconsumeInput(s.conn) == 0) {
            lost(s, "connection lost");
        }
        if (PQisBusy(s.conn) == 0) {
            start = PQgetResult(s.conn);
            break;
        }
        int ev = co_await wait_readable(PQsocket(s.conn));
        (void)ev;
    }
    if (start == nullptr || PQresultStatus(start) != want) {
        ResultPtr owned = start != nullptr ? own(start) : nullptr;
        std::exception_ptr e = owned && PQresultStatus(owned.get()) == PGRES_FATAL_ERROR
                                       ? error_of(owned.get())
                                       : nullptr;
        ResultPtr rest = co_await read_results(s);
        if (e) {
            std::rethrow_exception(e);
        }
        throw InterfaceError("COPY did not start");
    }
    PQclear(start);
}

// COPY FROM STDIN: start, send data in chunks (waiting for writability when libpq's buffer is
// full), end, read the status.
Task<ResultPtr> copy_in(ConnState& s, const std::string& sql, const std::string& data) {
    co_await start_copy(s, sql, PGRES_COPY_IN);
    std::size_t off = 0;
    std::exception_ptr cancelled;
    try {
        while (off < data.size()) {
            std::size_t n = std::min<std::size_t>(data.size() - off, 1 << 16);
            int r = PQputCopyData(s.conn, data.data() + off, static_cast<int>(n));
            if (r < 0) {
                lost(s, "send failed");
            }
            if (r == 0) {
                int ev = co_await ReadinessAwaiter(PQsocket(s.conn), POLLIN | POLLOUT);
                if ((ev & POLLIN) != 0 && PQconsumeInput(s.conn) == 0) {
                    lost(s, "connection lost");
                }
                continue;
            }
            off += n;
            if (PQflush(s.conn) < 0) {
                lost(s, "send failed");
            }
        }
    } catch (const CancelledError&) {
        cancelled = std::current_exception();
    }
    // Ending the COPY with an error message makes the server abort it (and roll it back).
    for (;;) {
        int r = PQputCopyEnd(s.conn, cancelled ? "cancelled by the client" : nullptr);
        if (r < 0) {
            lost(s, "send failed");
        }
        if (r == 1) {
            break;
        }
        int ev = co_await wait_writable(PQsocket(s.conn));
        (void)ev;
    }
    co_await flush_all(s);
    if (cancelled) {
        try {
            ResultPtr ignored = co_await read_results(s);
        } catch (const PostgresError&) {
        }
        std::rethrow_exception(cancelled);
    }
    ResultPtr r = co_await read_results(s);
    co_return r;
}

// COPY TO STDOUT: collects the rows as they arrive.
Task<std::string> copy_out(ConnState& s, const std::string& sql) {
    co_await start_copy(s, sql, PGRES_COPY_OUT);
    std::string out;
    std::exception_ptr cancelled;
    bool cancel_sent = false;
    for (;;) {
        char* buf = nullptr;
        int n = PQgetCopyData(s.conn, &buf, 1);
        if (n > 0) {
            if (!cancelled) {
                out.append(buf, static_cast<std::size_t>(n));
            }
            PQfreemem(buf);
            continue;
        }
        if (n == -1) {
            break; // done: the final status follows
        }
        if (n == -2) {
            lost(s, "COPY failed");
        }
        if (cancelled && !cancel_sent) {
            cancel_sent = true;
            PGcancel* pc = PQgetCancel(s.conn);
            if (pc != nullptr) {
                co_await to_thread([pc] {
                    char err[256];
                    PQcancel(pc, err, sizeof err);
                    PQfreeCancel(pc);
                });
            }
        }
        try {
            int ev = co_await wait_readable(PQsocket(s.conn));
            (void)ev;
        } catch (const CancelledError&) {
            if (cancelled) {
                s.finish();
                throw;
            }
            cancelled = std::current_exception();
        }
        if (PQconsumeInput(s.conn) == 0) {
            lost(s, "connection lost");
        }
    }
    if (cancelled) {
        try {
            ResultPtr ignored = co_await read_results(s);
        } catch (const PostgresError&) {
        }
        std::rethrow_exception(cancelled);
    }
    ResultPtr r = co_await read_results(s);
    co_return out;
}

} // namespace

Task<std::string>
Connection::copy_in_impl(std::string table, std::vector<std::string> columns, std::string data) {
    if (!state_) {
        throw ConnectionError("the connection is closed");
    }
    ConnState& s = *state_;
    BusyGuard guard(s);
    std::string sql = "COPY " + quote_identifier(s, table);
    if (!columns.empty()) {
        sql += " (";
        for (std::size_t i = 0; i < columns.size(); ++i) {
            sql += (i != 0 ? ", " : "") + quote_identifier(s, columns[i]);
        }
        sql += ")";
    }
    sql += " FROM STDIN";
    ResultPtr r = co_await copy_in(s, sql, data);
    co_return r ? std::string(PQcmdStatus(r.get())) : std::string();
}

Task<std::string> Connection::copy_from_query(std::string sql) {
    if (!state_) {
        throw ConnectionError("the connection is closed");
    }
    ConnState& s = *state_;
    BusyGuard guard(s);
    std::string copy = "COPY (" + sql + ") TO STDOUT";
    std::string out = co_await copy_out(s, copy);
    co_return out;
}

Task<> Connection::listen(std::string channel) {
    if (!state_ || state_->conn == nullptr) {
        throw ConnectionError("the connection is closed");
    }
    std::string sql = "LISTEN " + quote_identifier(*state_, channel);
    std::string status = co_await execute(sql); // no braced temporaries inside co_await (GCC 12)
    (void)status;
}

Task<> Connection::unlisten(std::string channel) {
    if (!state_ || state_->conn == nullptr) {
        throw ConnectionError("the connection is closed");
    }
    std::string sql = "UNLISTEN " + quote_identifier(*state_, channel);
    std::string status = co_await execute(sql); // no braced temporaries inside co_await (GCC 12)
    (void)status;
}

Task<Notification> Connection::next_notification() {
    if (!state_) {
        throw ConnectionError("the connection is closed");
    }
    ConnState& s = *state_;
    BusyGuard guard(s);
    for (;;) {
        if (!s.notifications.empty()) {
            Notification n = std::move(s.notifications.front());
            s.notifications.pop_front();
            co_return n;
        }
        if (PQconsumeInput(s.conn) == 0) {
            lost(s, "connection lost");
        }
        collect_notifies(s);
        if (!s.notifications.empty()) {
            continue;
        }
        int ev = co_await wait_readable(PQsocket(s.conn));
        (void)ev;
    }
}

Task<Connection> connect(std::string dsn, ConnectOptions options) {
    auto state = std::make_unique<ConnState>();
    state->options = options;
    ConnState& s = *state;
    Timeout scope = coring::timeout(options.timeout);
    auto body = [&]() -> Task<> {
        return connect_steps(s, dsn);
    };
    co_await scope.run(body);
    co_return Connection(std::move(state));
}

} // namespace coring::postgres
