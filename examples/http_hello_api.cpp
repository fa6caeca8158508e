// SPDX-License-Identifier: MIT
// The seeds' FastAPI example and a small JSON CRUD API with path parameters, on
// coring::http::App. Serves on 127.0.0.1:<port> until SIGINT or SIGTERM (graceful shutdown).
// Usage: http_hello_api <port>   (0 picks a free port; try `curl 127.0.0.1:<port>/items/1`)
//
// The FastAPI equivalent:
//
//     app = FastAPI()
//     items = {}
//
//     @app.get("/")
//     async def read_root():
//         return {"Hello": "World"}
//
//     @app.post("/items", status_code=201)
//     async def create_item(item: dict):
//         item_id = len(items) + 1
//         items[item_id] = item
//         return {"id": item_id, **item}
//
//     @app.get("/items/{item_id}")
//     async def read_item(item_id: int):
//         if item_id not in items:
//             raise HTTPException(status_code=404, detail="Item not found")
//         return {"id": item_id, **items[item_id]}
//
//     uvicorn.run(app, port=port)
#include <coring/coring.hpp>
#include <coring/http/server.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

namespace http = coring::http;
using coring::Task;
using nlohmann::json;

static int item_id(const http::Request& req) {
    std::string text = req.param("id");
    char* end = nullptr;
    long id = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || id <= 0) {
        throw http::HttpError(422, "item id must be a positive integer, not '" + text + "'");
    }
    return static_cast<int>(id);
}

static Task<int> amain(std::uint16_t port) {
    std::map<int, json> items; // lives as long as the server: the handlers capture it
    http::App app;
    app.get("/", [](http::Request&) -> Task<json> { co_return json{{"Hello", "World"}}; });
    app.get("/items", [&items](http::Request&) -> Task<json> {
        json all = json::array();
        for (const auto& [id, item] : items) {
            all.push_back(item);
        }
        co_return all;
    });
    app.post("/items", [&items](http::Request& req) -> Task<http::Response> {
        json item = co_await req.json(); // 400 on malformed JSON
        if (!item.is_object()) {
            throw http::HttpError(422, "an item is a JSON object");
        }
        int id = items.empty() ? 1 : items.rbegin()->first + 1;
        item["id"] = id;
        items[id] = item;
        co_return http::Response::json(item, 201);
    });
    app.get("/items/{id}", [&items](http::Request& req) -> Task<json> {
        auto it = items.find(item_id(req));
        if (it == items.end()) {
            throw http::HttpError(404, "Item not found");
        }
        co_return it->second;
    });
    app.put("/items/{id}", [&items](http::Request& req) -> Task<json> {
        int id = item_id(req);
        json item = co_await req.json();
        item["id"] = id;
        items[id] = item;
        co_return item;
    });
    app.delete_("/items/{id}", [&items](http::Request& req) -> Task<http::Response> {
        if (items.erase(item_id(req)) == 0) {
            throw http::HttpError(404, "Item not found");
        }
        co_return http::Response::text("", 204);
    });

    auto server = co_await http::HttpServer::start(app, "127.0.0.1", port);
    std::printf("listening on 127.0.0.1:%u\n", static_cast<unsigned>(server.port()));
    std::fflush(stdout);
    coring::Event stop;
    coring::add_signal_handler(coring::get_running_loop(), SIGINT, [&stop] { stop.set(); });
    coring::add_signal_handler(coring::get_running_loop(), SIGTERM, [&stop] { stop.set(); });
    static_cast<void>(co_await stop.wait());
    co_await server.shutdown(); // finishes requests in flight, closes idle connections
    std::printf("served; %zu items stored\n", items.size());
    co_return 0;
}

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <port>\n", argv[0]);
        return 2;
    }
    return coring::run(amain(static_cast<std::uint16_t>(std::atoi(argv[1]))));
}
