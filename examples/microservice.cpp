// SPDX-License-Identifier: MIT
// A JSON microservice: coring::http::App serving items stored in PostgreSQL through a
// coring::postgres::Pool (FastAPI + asyncpg's job) on 127.0.0.1:<port> until SIGINT or SIGTERM;
// --self-test serves on a free port, checks its API with a ClientSession, exits 0 if all is right.
// Usage: microservice [--self-test] [<dsn> [<port>]]   (dsn defaults to $DATABASE_URL; try
//        curl -d '{"name":"pen","price":1.5}' 127.0.0.1:<port>/items; curl 127.0.0.1:<port>/items)
//
// The FastAPI + asyncpg equivalent:
//
//     app = FastAPI()  # startup: pool = await asyncpg.create_pool(dsn, min_size=1, max_size=8)
//                      #          await pool.execute("CREATE TABLE IF NOT EXISTS items (...)")
//
//     @app.get("/items")
//     async def list_items():
//         return [dict(r) for r in await pool.fetch("SELECT * FROM items ORDER BY id")]
//
//     @app.get("/items/{item_id}")
//     async def read_item(item_id: int):
//         row = await pool.fetchrow("SELECT * FROM items WHERE id = $1", item_id)
//         if row is None:
//             raise HTTPException(status_code=404, detail="Item not found")
//         return dict(row)
//
//     @app.post("/items", status_code=201)
//     async def create_item(item: Item):  # pydantic: name: str, price: float
//         return dict(await pool.fetchrow("INSERT INTO items (name, price) VALUES ($1, $2) "
//                                         "RETURNING *", item.name, item.price))
#include <coring/coring.hpp>
#include <coring/http/client.hpp>
#include <coring/http/server.hpp>
#include <coring/postgres.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace http = coring::http;
namespace pg = coring::postgres;
using coring::Task;
using nlohmann::json;

static json to_json(const pg::Row& r) {
    return json{{"id", r.get<int>("id")},
                {"name", r.get<std::string>("name")},
                {"price", r.get<double>("price")}};
}

static int item_id(const http::Request& req) {
    std::string text = req.param("id");
    char* end = nullptr;
    long id = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || id <= 0 || id > 2147483647) {
        throw http::HttpError(422, "item id must be a positive integer, not '" + text + "'");
    }
    return static_cast<int>(id);
}

// The service's own requests (--self-test): every answer must be the expected one.
static Task<bool> self_test(std::uint16_t port) {
    http::ClientSession session;
    std::string base = "http://127.0.0.1:" + std::to_string(port) + "/items";
    json item = {{"name", "coring mug"}, {"price", 12.5}};
    auto created = co_await session.post(base, {.json = item});
    json got = co_await created.json();
    bool ok = created.status == 201 && got["name"] == "coring mug" && got["price"] == 12.5;
    std::string url = base + "/" + std::to_string(got.value("id", 0));
    auto one = co_await session.get(url);
    json fetched = co_await one.json();
    ok = ok && one.status == 200 && fetched == got;
    auto all = co_await session.get(base);
    json list = co_await all.json();
    ok = ok && all.status == 200 && list.is_array() && !list.empty() && list.back() == got;
    std::string missing_url = base + "/2147483000";
    auto missing = co_await session.get(missing_url);
    ok = ok && missing.status == 404;
    json bad = {{"name", 7}};
    auto rejected = co_await session.post(base, {.json = bad});
    ok = ok && rejected.status == 422;
    std::printf("self-test: %s (%zu items listed)\n", ok ? "ok" : "FAILED", list.size());
    co_await session.close();
    co_return ok;
}

static Task<int> amain(std::string dsn, std::uint16_t port, bool test) {
    coring::Event stop; // before the pool: threads started later inherit the blocked signals
    coring::add_signal_handler(coring::get_running_loop(), SIGINT, [&stop] { stop.set(); });
    coring::add_signal_handler(coring::get_running_loop(), SIGTERM, [&stop] { stop.set(); });
    pg::PoolOptions options{.min_size = 1, .max_size = 8};
    auto pool = co_await pg::Pool::create(dsn, options);
    std::string created = co_await pool.execute(
            "CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, name text NOT NULL, "
            "price float8 NOT NULL)");
    http::App app;
    app.get("/items", [&pool](http::Request&) -> Task<json> {
        auto rows = co_await pool.fetch("SELECT id, name, price FROM items ORDER BY id");
        json all = json::array();
        for (const auto& r : rows) {
            all.push_back(to_json(r));
        }
        co_return all;
    });
    app.get("/items/{id}", [&pool](http::Request& req) -> Task<json> {
        int id = item_id(req);
        auto row = co_await pool.fetchrow("SELECT id, name, price FROM items WHERE id = $1", id);
        if (!row) {
            throw http::HttpError(404, "Item not found");
        }
        co_return to_json(*row);
    });
    app.post("/items", [&pool](http::Request& req) -> Task<http::Response> {
        json item = co_await req.json(); // 400 on malformed JSON
        if (!item.is_object() || !item["name"].is_string() || !item["price"].is_number()) {
            throw http::HttpError(422, "an item is {\"name\": string, \"price\": number}");
        }
        auto name = item["name"].get<std::string>();
        auto price = item["price"].get<double>();
        auto row = co_await pool.fetchrow(
                "INSERT INTO items (name, price) VALUES ($1, $2) RETURNING id, name, price",
                name,
                price);
        co_return http::Response::json(to_json(*row), 201);
    });

    auto server = co_await http::HttpServer::start(app, "127.0.0.1", test ? 0 : port);
    std::printf("listening on 127.0.0.1:%u\n", static_cast<unsigned>(server.port()));
    std::fflush(stdout);
    bool ok = true;
    if (test) {
        ok = co_await self_test(server.port());
    } else {
        static_cast<void>(co_await stop.wait());
    }
    co_await server.shutdown(); // finishes requests in flight
    co_await pool.close();
    co_return ok ? 0 : 1;
}

int main(int argc, char** argv) {
    bool test = argc > 1 && std::string(argv[1]) == "--self-test";
    int first = test ? 2 : 1;
    const char* env = std::getenv("DATABASE_URL");
    std::string dsn = argc > first ? argv[first] : (env != nullptr ? env : "");
    if (dsn.empty() || argc > first + 2) {
        std::fprintf(stderr, "usage: microservice [--self-test] [<dsn> [<port>]]\n");
        return 2;
    }
    auto port = static_cast<std::uint16_t>(argc > first + 1 ? std::atoi(argv[first + 1]) : 8000);
    return coring::run(amain(dsn, port, test));
}
