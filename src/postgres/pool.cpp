// SPDX-License-Identifier: MIT
// Pool: connections shared by tasks, bounded by a semaphore (asyncpg.pool).
#include <coring/errors.hpp>
#include <coring/event.hpp>
#include <coring/log.hpp>
#include <coring/postgres/pool.hpp>
#include <coring/semaphore.hpp>
#include <coring/timeout.hpp>

#include <fmt/format.h>

namespace coring::postgres {

namespace detail {

struct PoolEntry {
    Connection conn;
    std::chrono::steady_clock::time_point created;
    bool dirty = false; // handed out since its last reset
};

struct PoolState {
    std::string dsn;
    PoolOptions options;
    Semaphore slots; // one per connection that may be open: max_size
    std::vector<std::unique_ptr<PoolEntry>> idle;
    std::size_t open = 0;   // connections open, idle or leased
    std::size_t leased = 0; // connections handed out
    bool closing = false;
    Event drained; // set when closing and leased reaches 0

    PoolState(std::string d, PoolOptions o)
        : dsn(std::move(d)), options(o), slots(static_cast<std::ptrdiff_t>(o.max_size)) {}

    bool worn_out(const PoolEntry& e) const {
        if (e.conn.is_closed()) {
            return true;
        }
        if (options.max_queries != 0 && e.conn.query_count() >= options.max_queries) {
            return true;
        }
        return options.max_lifetime.count() > 0 &&
               std::chrono::steady_clock::now() - e.created >= options.max_lifetime;
    }

    // A lease comes back (noexcept: called from destructors).
    void give_back(std::unique_ptr<PoolEntry> e) noexcept {
        --leased;
        if (closing || worn_out(*e)) {
            --open; // the entry's destructor closes the connection
        } else {
            e->dirty = true;
            idle.push_back(std::move(e));
        }
        slots.release();
        if (closing && leased == 0) {
            drained.set();
        }
    }
};

} // namespace detail

using detail::PoolEntry;
using detail::PoolState;

// PooledConnection

PooledConnection::PooledConnection(std::shared_ptr<PoolState> pool,
                                   std::unique_ptr<PoolEntry> entry) noexcept
    : pool_(std::move(pool)), entry_(std::move(entry)) {
}

PooledConnection::PooledConnection(PooledConnection&&) noexcept = default;

PooledConnection& PooledConnection::operator=(PooledConnection&& o) noexcept {
    if (this != &o) {
        release();
        pool_ = std::move(o.pool_);
        entry_ = std::move(o.entry_);
    }
    return *this;
}

PooledConnection::~PooledConnection() {
    release();
}

Connection& PooledConnection::operator*() const noexcept {
    return entry_->conn;
}

Connection* PooledConnection::operator->() const noexcept {
    return &entry_->conn;
}

void PooledConnection::release() noexcept {
    if (pool_ && entry_) {
        pool_->give_back(std::move(entry_));
    }
    pool_.reset();
    entry_.reset();
}

// Pool

namespace {

// What asyncpg's reset does on release: end a transaction left open (only then: ROLLBACK
// outside one is a WARNING notice, logged on every acquire), free advisory locks, cursors,
// listeners and session settings.
constexpr const char* reset_sql =
        "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL";
constexpr const char* reset_sql_in_transaction =
        "ROLLBACK; SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL";

Task<std::unique_ptr<PoolEntry>> open_entry(std::string dsn, ConnectOptions options) {
    Connection conn = co_await connect(std::move(dsn), options);
    co_return std::make_unique<PoolEntry>(
            PoolEntry{std::move(conn), std::chrono::steady_clock::now(), false});
}

} // namespace

Task<Pool> Pool::create(std::string dsn, PoolOptions options) {
    if (options.max_size == 0 || options.min_size > options.max_size) {
        throw ValueError(fmt::format(
                "invalid pool sizes: min_size {} max_size {}", options.min_size, options.max_size));
    }
    auto state = std::make_shared<PoolState>(std::move(dsn), options);
    for (std::size_t i = 0; i < options.min_size; ++i) {
        auto entry = co_await open_entry(state->dsn, options.connect);
        state->idle.push_back(std::move(entry));
        ++state->open;
    }
    co_return Pool(std::move(state));
}

Task<PooledConnection> Pool::acquire() {
    return acquire(state_->options.acquire_timeout);
}

namespace {

// Runs the session reset; false when it failed (the connection is then broken or unusable).
// Kept apart from acquire()'s loop: no co_await sits in a try block there (GCC 12 mishandles
// exceptions around co_await in loops; docs/pitfalls.md).
Task<bool> reset_session(Connection& conn, bool in_transaction) {
    bool ok = true;
    const char* sql = in_transaction ? reset_sql_in_transaction : reset_sql;
    try {
        std::string st = co_await conn.execute(sql);
        (void)st;
    } catch (const std::exception&) {
        ok = false;
    }
    co_return ok && !conn.is_closed();
}

// Gives a semaphore slot back unless dismissed (a lease took it over).
struct SlotGuard {
    PoolState* state;
    bool armed = true;

    explicit SlotGuard(PoolState* s) noexcept : state(s) {}

    SlotGuard(const SlotGuard&) = delete;
    SlotGuard& operator=(const SlotGuard&) = delete;

    ~SlotGuard() {
        if (armed) {
            state->slots.release();
        }
    }
};

// Counts a connection being opened as open, until it turns out it could not be.
struct OpeningGuard {
    PoolState* state;
    bool armed = true;

    explicit OpeningGuard(PoolState* s) noexcept : state(s) { ++state->open; }

    OpeningGuard(const OpeningGuard&) = delete;
    OpeningGuard& operator=(const OpeningGuard&) = delete;

    ~OpeningGuard() {
        if (armed) {
            --state->open;
        }
    }
};

} // namespace

Task<PooledConnection> Pool::acquire(std::chrono::milliseconds timeout) {
    std::shared_ptr<PoolState> s = state_;
    if (s->closing) {
        throw InterfaceError("the pool is closing");
    }
    if (timeout.count() > 0) {
        Timeout scope = coring::timeout(timeout);
        auto wait = [&]() -> Task<> {
            bool got = co_await s->slots.acquire();
            (void)got;
        };
        co_await scope.run(wait);
    } else {
        bool got = co_await s->slots.acquire();
        (void)got;
    }
    SlotGuard slot(s.get()); // holding a slot from here on: back on every way out but a lease
    std::unique_ptr<PoolEntry> entry;
    while (!entry && !s->idle.empty()) {
        std::unique_ptr<PoolEntry> e = std::move(s->idle.back());
        s->idle.pop_back();
        bool usable = e->conn.check_idle() && !s->worn_out(*e);
        if (usable && e->dirty) {
            bool in_transaction = !e->conn.server_transaction_idle();
            usable = co_await reset_session(e->conn, in_transaction);
        }
        if (usable) {
            e->dirty = false;
            entry = std::move(e);
        } else {
            --s->open; // closed by e's destructor; replaced below if no other is idle
        }
    }
    if (!entry) {
        OpeningGuard opening(s.get());
        entry = co_await open_entry(s->dsn, s->options.connect);
        opening.armed = false;
    }
    ++s->leased;
    slot.armed = false;
    co_return PooledConnection(s, std::move(entry));
}

Task<std::string> Pool::execute_impl(std::string sql, detail::Params params) {
    PooledConnection c = co_await acquire();
    // The call outside the co_await: its argument temporaries stay out of it (GCC 12).
    Task<std::string> query = c->execute_impl(std::move(sql), {}, std::move(params), std::nullopt);
    std::string st = co_await std::move(query);
    co_return st;
}

Task<std::vector<Row>> Pool::fetch_impl(std::string sql, detail::Params params) {
    PooledConnection c = co_await acquire();
    Task<std::vector<Row>> query =
            c->fetch_impl(std::move(sql), {}, std::move(params), std::nullopt);
    std::vector<Row> rows = co_await std::move(query);
    co_return rows;
}

Task<std::optional<Row>> Pool::fetchrow_impl(std::string sql, detail::Params params) {
    PooledConnection c = co_await acquire();
    Task<std::optional<Row>> query =
            c->fetchrow_impl(std::move(sql), {}, std::move(params), std::nullopt);
    std::optional<Row> row = co_await std::move(query);
    co_return row;
}

Task<> Pool::close() {
    std::shared_ptr<PoolState> s = state_;
    s->closing = true;
    if (s->leased > 0) {
        bool done = co_await s->drained.wait();
        (void)done;
    }
    s->open -= s->idle.size();
    s->idle.clear(); // closes them
}

std::size_t Pool::get_size() const noexcept {
    return state_->open;
}

std::size_t Pool::get_idle_size() const noexcept {
    return state_->idle.size();
}

} // namespace coring::postgres
