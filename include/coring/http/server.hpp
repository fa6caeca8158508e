// SPDX-License-Identifier: MIT
// The HTTP/1.1 server: an App of routes (FastAPI's and aiohttp.web's habits) served over
// coring's streams with keep-alive, pipelining, strict parsing, limits and graceful shutdown.
#pragma once

#include <coring/http/headers.hpp>
#include <coring/http/parser.hpp>
#include <coring/net/address.hpp>
#include <coring/streams.hpp>
#include <coring/task.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace coring::http {

namespace detail {
class Connection;
class RouterImpl;
struct HttpServerState;
} // namespace detail

/// A handler's way to answer with an error status (FastAPI's HTTPException): the server
/// answers `{"detail": detail}` as JSON with that status.
class HttpError : public std::runtime_error {
public:
    HttpError(int status, std::string detail)
        : std::runtime_error(std::to_string(status) + ": " + detail), status_(status),
          detail_(std::move(detail)) {}

    int status() const noexcept { return status_; }

    const std::string& detail() const noexcept { return detail_; }

private:
    int status_;
    std::string detail_;
};

/// Read-only header fields of a request: views into the connection's buffer, valid while the
/// handler runs. Lookup ignores case; repeated names are kept in order.
class RequestHeaders {
public:
    RequestHeaders() = default;

    explicit RequestHeaders(std::span<const HeaderField> fields) noexcept : fields_(fields) {}

    /// The first value of name, or nullopt.
    std::optional<std::string_view> get(std::string_view name) const noexcept;
    /// Every value of name, in order.
    std::vector<std::string_view> get_all(std::string_view name) const;

    bool contains(std::string_view name) const noexcept { return get(name).has_value(); }

    std::size_t size() const noexcept { return fields_.size(); }

    const HeaderField* begin() const noexcept { return fields_.data(); }

    const HeaderField* end() const noexcept { return fields_.data() + fields_.size(); }

private:
    std::span<const HeaderField> fields_;
};

/// An HTTP request as a handler sees it (FastAPI's / aiohttp's Request). Its views (method,
/// target, path, headers, path parameters) are valid while the handler runs; copy what must
/// outlive it. Thread safety: the connection's loop only.
class Request {
public:
    std::string_view method;
    /// The request-target as sent: "/items/7?full=1".
    std::string_view target;
    /// The target's path, percent-encoded as sent: "/items/7".
    std::string_view path;
    /// The query string without '?': "full=1".
    std::string_view query_string;
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    int version_minor = 1;
    RequestHeaders headers;

    /// A path parameter of the matched route ("/items/{id}" -> param("id")), percent-decoded.
    /// Throws: HttpError(500) when the route has no such parameter.
    std::string param(std::string_view name) const;

    /// The first value of a query parameter, percent-decoded ('+' is a space), or nullopt.
    std::optional<std::string> query(std::string_view name) const;

    /// The whole body, read on first call (lazily: a handler that does not call it does not
    /// wait for it) and at most ServeOptions::max_body bytes: a larger one is a 413 answer.
    /// Chunked bodies are decoded. Throws: HttpError(413), HttpError(400) on a malformed
    /// chunked body, HttpError(408) when the body stops arriving (body_timeout).
    [[nodiscard]] Task<std::string> body();

    /// body() parsed as JSON. Throws: HttpError(400) with the parser's message on bad JSON.
    [[nodiscard]] Task<nlohmann::json> json();

    /// The client's address.
    const SocketAddress& peer() const noexcept { return *peer_; }

private:
    friend class detail::Connection;
    friend class detail::RouterImpl;
    detail::Connection* conn_ = nullptr;
    const SocketAddress* peer_ = nullptr;
    std::vector<std::pair<std::string_view, std::string_view>> params_;
};

/// A coroutine that writes a streamed (chunked) response body: `co_await out.write(bytes)`.
class BodyWriter {
public:
    /// Sends one chunk (waits while the client is slow to read). An empty piece is skipped.
    [[nodiscard]] Task<> write(std::string_view piece);

private:
    friend class detail::Connection;

    explicit BodyWriter(StreamWriter& w) noexcept : w_(&w) {}

    StreamWriter* w_;
    bool chunked_ = true; // false for an HTTP/1.0 client: the body ends with the connection
};

/// What a handler answers (FastAPI's / aiohttp.web's Response). Content-Length, Date and
/// Connection are set by the server.
class Response {
public:
    using StreamFn = std::function<Task<>(BodyWriter&)>;

    Response() = default;
    /// 200 text/plain; charset=utf-8 (a handler may return a string).
    Response(std::string text); // NOLINT(google-explicit-constructor): as FastAPI's str return

    Response(const char* text) : Response(std::string(text)) {} // NOLINT

    /// 200 application/json (a handler may return a json value).
    Response(const nlohmann::json& value); // NOLINT(google-explicit-constructor)

    /// A body with a content type.
    static Response text(std::string body,
                         int status = 200,
                         std::string content_type = "text/plain; charset=utf-8");
    /// `value` serialised as application/json.
    static Response json(const nlohmann::json& value, int status = 200);
    /// A file sent from the kernel's page cache to the socket without passing through user
    /// space (splice through io_uring); 404 when it cannot be opened. content_type empty:
    /// guessed from the extension.
    static Response file(std::string path, std::string content_type = {});
    /// A body produced as it is sent, in chunks (Transfer-Encoding: chunked).
    static Response stream(StreamFn producer,
                           std::string content_type = "application/octet-stream");

    int status = 200;
    Headers headers;
    std::string body;

private:
    friend class detail::Connection;
    StreamFn stream_;
    std::string file_;
};

/// A route's handler: a coroutine from the request to what to answer.
using Handler = std::function<Task<Response>(Request&)>;
/// Middleware: wraps the rest of the chain (`co_await next(req)`), as FastAPI's
/// @app.middleware("http") and aiohttp's middlewares.
using Next = std::function<Task<Response>(Request&)>;
using Middleware = std::function<Task<Response>(Request&, const Next&)>;

/// Routes, middleware and lifespan hooks (FastAPI()'s / aiohttp.web.Application's role).
///
///     coring::http::App app;
///     app.get("/", [](coring::http::Request&) -> coring::Task<nlohmann::json> {
///         co_return nlohmann::json{{"Hello", "World"}};
///     });
///     co_await coring::http::serve(app, "127.0.0.1", 8000);
///
/// Paths: static segments and `{name}` parameters ("/items/{id}"); a static route wins over a
/// parameter one. A path that matches no route is a 404; one whose routes have other methods
/// a 405 with Allow. HEAD is answered by the GET route without the body. Handlers may return
/// Response, std::string or nlohmann::json (Task<...> of them). The App must outlive serving.
class App {
public:
    App();
    App(App&&) noexcept;
    App& operator=(App&&) noexcept;
    ~App();

    /// Adds a route. Throws: ValueError for a malformed pattern or a duplicate route.
    template <class F>
    App& route(std::string method, std::string pattern, F handler) {
        add_route(std::move(method), std::move(pattern), to_handler(std::move(handler)));
        return *this;
    }

    template <class F>
    App& get(std::string pattern, F h) {
        return route("GET", std::move(pattern), std::move(h));
    }

    template <class F>
    App& post(std::string pattern, F h) {
        return route("POST", std::move(pattern), std::move(h));
    }

    template <class F>
    App& put(std::string pattern, F h) {
        return route("PUT", std::move(pattern), std::move(h));
    }

    template <class F>
    App& patch(std::string pattern, F h) {
        return route("PATCH", std::move(pattern), std::move(h));
    }

    template <class F>
    App& delete_(std::string pattern, F h) {
        return route("DELETE", std::move(pattern), std::move(h));
    }

    /// Adds middleware; the first added is the outermost.
    App& use(Middleware m);

    /// Lifespan: startup hooks run once, in the order added, before the server accepts;
    /// shutdown hooks after it stopped, in reverse order (of all the hooks added).
    ///
    /// When a startup hook throws (or the server cannot listen), HttpServer::start and serve()
    /// rethrow that error after the shutdown hooks that release what succeeded: every
    /// on_shutdown hook (aiohttp's on_shutdown/on_cleanup, which run after a failed startup
    /// too: write them to cope with a resource that was never opened) and the shutdown half
    /// of each lifespan() pair whose startup half completed. An error a shutdown hook throws
    /// then is logged, not thrown.
    App& on_startup(std::function<Task<>()> hook);
    App& on_shutdown(std::function<Task<>()> hook);
    /// A startup hook and the shutdown hook that undoes it (aiohttp's cleanup_ctx, Starlette's
    /// lifespan context): the shutdown half runs only when the startup half completed.
    App& lifespan(std::function<Task<>()> startup, std::function<Task<>()> shutdown);

    /// Runs the request through middleware and routing (what the server does per request;
    /// also useful in tests). Errors become responses: HttpError its status, anything else 500.
    [[nodiscard]] Task<Response> handle(Request& request) const;

private:
    friend class detail::Connection;
    friend class HttpServer;
    friend struct detail::HttpServerState;

    template <class F>
    static Handler to_handler(F f) {
        using R = std::invoke_result_t<F&, Request&>;
        if constexpr (std::is_same_v<R, Task<Response>>) {
            return Handler(std::move(f));
        } else {
            // Task<std::string>, Task<nlohmann::json>, ...: converted to a Response.
            return [f = std::move(f)](Request& req) -> Task<Response> {
                co_return Response(co_await f(req));
            };
        }
    }

    void add_route(std::string method, std::string pattern, Handler h);

    std::unique_ptr<detail::RouterImpl> r_;
};

/// Options of serve() and HttpServer::start (uvicorn's settings).
struct ServeOptions {
    /// TLS (a coring::tls::SslContext::server(...)); null for plain HTTP.
    SslContextRef ssl{};
    ParserLimits limits{};
    /// The largest request body accepted (413 past it).
    std::size_t max_body = 1 << 20;
    /// A handler that answers without reading the whole body: the server skips at most this
    /// many more bytes of it, after the answer and within body_timeout, to keep the connection;
    /// a larger (or slower) body closes it instead.
    std::size_t max_discard = 64 * 1024;
    /// Closing with a request body still arriving, the server half-closes, then reads and
    /// drops what comes for at most this long before closing (nginx's lingering close), so
    /// that the client reads the answer instead of a reset. 0: close at once.
    std::chrono::milliseconds linger_timeout{2'000};
    /// Time to receive a request's head once its first byte is in (408 and close past it: the
    /// slowloris defence).
    std::chrono::milliseconds header_timeout{10'000};
    /// How long an idle keep-alive connection stays open (uvicorn's timeout_keep_alive: 5 s).
    std::chrono::milliseconds keepalive_timeout{5'000};
    /// The longest pause while a body is read (408 past it).
    std::chrono::milliseconds body_timeout{30'000};
    /// How long sending a response may make no progress while the client reads nothing (a
    /// slow-read attack) before the connection is aborted (nginx's send_timeout; 0: no limit).
    std::chrono::milliseconds send_timeout{60'000};
    /// Connections open at once; past it accepting pauses until one closes (0: no limit).
    std::size_t max_connections = 10'000;
    /// Graceful shutdown: how long in-flight requests may take before their connections are
    /// aborted.
    std::chrono::milliseconds shutdown_timeout{10'000};
    /// One line per request ("127.0.0.1:5000 "GET / HTTP/1.1" 200 17") through coring's log
    /// sink at info level; off by default.
    bool access_log = false;
    /// The Server header; empty for none. A view: the string must live until start() returns
    /// (the server keeps a copy).
    std::string_view server_header = "coring";
    /// serve(): stop on SIGINT and SIGTERM (graceful shutdown).
    bool handle_signals = true;
    /// listen(2) backlog; SO_REUSEPORT.
    int backlog = 1024;
    bool reuse_port = false;
};

// WORKAROUND(gcc-12): a braced aggregate temporary with a non-trivial destructor inside a
// co_await expression is destroyed twice, after its frame slot may have been reused (it broke
// `co_await HttpServer::start(app, host, port)`, whose `options = {}` is such a temporary): the
// options hold only trivially destructible members, as ConnectOptions and ServerOptions do.
static_assert(std::is_trivially_destructible_v<ServeOptions>);

/// A running HTTP server (what start_server's Server is to streams).
class HttpServer {
public:
    /// Runs the startup hooks, then listens on host:port. Throws what they throw; bind errors.
    [[nodiscard]] static Task<HttpServer>
    start(const App& app, std::string host, std::uint16_t port, ServeOptions options = {});

    HttpServer(HttpServer&&) noexcept;
    HttpServer& operator=(HttpServer&&) noexcept;
    ~HttpServer();

    /// The port listened on (useful with port 0).
    std::uint16_t port() const;
    /// The listening sockets.
    const std::vector<Socket>& sockets() const;

    /// Graceful shutdown: stops accepting, lets in-flight requests finish (at most
    /// shutdown_timeout, then aborts their connections), closes idle connections, runs the
    /// shutdown hooks. Idempotent.
    [[nodiscard]] Task<> shutdown();
    /// Waits until shutdown() has completed.
    [[nodiscard]] Task<> wait_closed();
    /// Serves until cancelled (then shuts down gracefully).
    [[nodiscard]] Task<> serve_forever();

    /// Open connections.
    std::size_t connection_count() const noexcept;

private:
    explicit HttpServer(std::shared_ptr<detail::HttpServerState> s) noexcept : s_(std::move(s)) {}

    // start()'s second half: listens and starts the timeout sweep.
    [[nodiscard]] static Task<HttpServer>
    listen(const App& app, std::string host, std::uint16_t port, ServeOptions options);

    std::shared_ptr<detail::HttpServerState> s_;
};

/// Serves app on host:port until SIGINT or SIGTERM (when options.handle_signals) or
/// cancellation, then shuts down gracefully (uvicorn.run's role, inside a running loop).
[[nodiscard]] Task<>
serve(const App& app, std::string host, std::uint16_t port, ServeOptions options = {});

} // namespace coring::http
