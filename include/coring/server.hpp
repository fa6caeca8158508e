// SPDX-License-Identifier: MIT
// Stream servers: start_server, start_unix_server and Server (asyncio.start_server,
// asyncio.Server). Every connection gets a StreamReader / StreamWriter pair (coring/streams.hpp).
#pragma once

#include <coring/net/socket.hpp>
#include <coring/streams.hpp>
#include <coring/task.hpp>

#include <coring/detail/await_temporary.hpp>
#include <coring/detail/ref.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace coring {

/// The coroutine start_server runs as a new task for every connection.
using ClientConnectedCallback = std::function<Task<>(StreamReader, StreamWriter)>;

/// Options of start_server (asyncio's keyword arguments).
struct ServerOptions {
    /// The StreamReader limit of every connection.
    std::size_t limit = default_stream_limit;
    /// AF_UNSPEC, AF_INET or AF_INET6: which addresses of host to listen on.
    int family = AF_UNSPEC;
    /// getaddrinfo flags (AI_PASSIVE is always added).
    int flags = 0;
    /// listen(2) backlog.
    int backlog = 100;
    /// SO_REUSEADDR (asyncio's default on POSIX: true).
    bool reuse_address = true;
    /// SO_REUSEPORT.
    bool reuse_port = false;
    /// Start accepting at once; otherwise call start_serving() or serve_forever().
    bool start_serving = true;
    /// After running out of file descriptors or memory, how long to wait before accepting
    /// again (asyncio's ACCEPT_RETRY_DELAY: 1 s).
    std::chrono::milliseconds accept_retry_delay{1000};
    /// TLS: every connection is handshaken with this context before the callback runs; a
    /// failed handshake closes the connection (logged at debug level, as asyncio does).
    SslContextRef ssl{};
    std::chrono::milliseconds ssl_handshake_timeout = default_ssl_handshake_timeout;
    std::chrono::milliseconds ssl_shutdown_timeout = default_ssl_shutdown_timeout;
    /// At most this many accepted connections open at once (0: no limit). At the limit the
    /// server stops accepting (new connections wait in the listen backlog) and accepts again
    /// when one closes; accepts are then single, not multishot, so the limit is never passed.
    std::size_t max_connections = 0;
};

/// A listening server (asyncio.Server). Copies share the server; when the last copy goes, the
/// server is closed. Connections are accepted with multishot accept where the kernel has it
/// (one SQE for any number of connections), with single accepts otherwise.
///
///     auto server = co_await coring::start_server(handle, "127.0.0.1", 8888);
///     co_await server.serve_forever();
class Server {
public:
    Server() noexcept = default;
    explicit Server(detail::ServerState* state) noexcept; // adopts a handle reference
    Server(const Server& other) noexcept;
    Server(Server&& other) noexcept = default;

    Server& operator=(Server other) noexcept {
        s_.swap(other.s_);
        return *this;
    }

    /// Closes the server when this is the last copy.
    ~Server();

    /// The listening sockets; empty once closed.
    const std::vector<Socket>& sockets() const noexcept;

    /// Stops listening at once: when close() returns, a connect to the server's addresses is
    /// refused (the listening sockets are shut down; their fds are closed once the kernel has
    /// handed their accepts back). Connections stay open (close_clients closes them). A pending
    /// serve_forever() raises CancelledError, as in asyncio.
    void close() noexcept;

    /// Closes every connection the server accepted (asyncio 3.13's close_clients).
    void close_clients() noexcept;

    /// Aborts every connection the server accepted (asyncio 3.13's abort_clients).
    void abort_clients() noexcept;

    /// Waits until the server is closed, its listening sockets are closed in the kernel and all
    /// its connections are closed (asyncio 3.12).
    [[nodiscard]] Task<> wait_closed();

    /// Starts accepting (if not yet) and waits until the server is closed; cancelled, it closes
    /// the server and waits for it. Throws: RuntimeError when closed or already serving
    /// forever; CancelledError when cancelled or when close() is called.
    [[nodiscard]] Task<> serve_forever();

    /// Starts accepting connections if it does not already (asyncio's start_serving).
    /// Throws: RuntimeError when the server is closed.
    [[nodiscard]] Task<> start_serving();

    /// Whether the server accepts connections.
    bool is_serving() const noexcept;

    /// Connections accepted and not closed yet.
    std::size_t connection_count() const noexcept;

    /// The loop the server runs on. Throws: RuntimeError when that loop has closed.
    EventLoop& get_loop() const;

    explicit operator bool() const noexcept { return static_cast<bool>(s_); }

private:
    detail::Ref<detail::ServerState, detail::ServerHandleCount> s_;
};

// WORKAROUND(gcc-12): trivially destructible, as ConnectOptions (coring/streams.hpp).
static_assert(std::is_trivially_destructible_v<ServerOptions>);

/// Listens on host:port and runs client_connected_cb(reader, writer) as a new task for every
/// connection (asyncio.start_server). host "" listens on every interface; port 0 picks a free
/// port (see sockets()). The callback (and what a lambda captures) lives as long as the server
/// or any of its connections. An exception escaping a connection's task is reported through
/// the loop's exception handler; it never affects the server or other connections.
/// Throws: GaiError; std::system_error "bind 127.0.0.1:8080" (EADDRINUSE, ...).
[[nodiscard]] Task<Server> start_server(ClientConnectedCallback client_connected_cb,
                                        std::string host,
                                        std::uint16_t port,
                                        ServerOptions options = {});

/// Serves on a socket that is bound already (asyncio.start_server(sock=...)); listens on it if
/// it does not yet.
[[nodiscard]] Task<Server>
start_server(ClientConnectedCallback client_connected_cb, Socket sock, ServerOptions options = {});

/// Listens on the Unix socket path (asyncio.start_unix_server). A stale socket file at path is
/// replaced; the file is removed when the server closes (asyncio 3.13's cleanup_socket).
/// A path starting with '\0' is in the abstract namespace.
/// Throws: std::system_error "bind /path".
[[nodiscard]] Task<Server> start_unix_server(ClientConnectedCallback client_connected_cb,
                                             std::string path,
                                             ServerOptions options = {});

namespace detail {
/// A callable other than ClientConnectedCallback itself that converts to one.
template <class F>
concept ConnectionCallable = !std::is_same_v<std::remove_cvref_t<F>, ClientConnectedCallback> &&
                             std::is_constructible_v<ClientConnectedCallback, F>;
} // namespace detail

/// start_server with any callable (a lambda, a function): the natural call form
///
///     auto server = co_await coring::start_server(
///             [state](coring::StreamReader r, coring::StreamWriter w) -> coring::Task<> {...},
///             "127.0.0.1", 0);
///
/// compiles with Clang. With GCC, a lambda that owns resources must be named first and passed
/// by name (`co_await coring::start_server(cb, "127.0.0.1", 0)`): GCC destroys it twice when it
/// is written inside the co_await, so that form is a compile error there (docs/pitfalls.md).
template <detail::ConnectionCallable F>
[[nodiscard]] Task<Server> start_server(F&& client_connected_cb,
                                        std::string host,
                                        std::uint16_t port,
                                        ServerOptions options = {}) {
    static_assert(!detail::unsafe_await_closure<F>, CORING_AWAIT_CLOSURE_MESSAGE);
    return start_server(ClientConnectedCallback(std::forward<F>(client_connected_cb)),
                        std::move(host),
                        port,
                        options);
}

/// start_server over a bound socket with any callable (see above).
template <detail::ConnectionCallable F>
[[nodiscard]] Task<Server>
start_server(F&& client_connected_cb, Socket sock, ServerOptions options = {}) {
    static_assert(!detail::unsafe_await_closure<F>, CORING_AWAIT_CLOSURE_MESSAGE);
    return start_server(ClientConnectedCallback(std::forward<F>(client_connected_cb)),
                        std::move(sock),
                        options);
}

/// start_unix_server with any callable (see start_server).
template <detail::ConnectionCallable F>
[[nodiscard]] Task<Server>
start_unix_server(F&& client_connected_cb, std::string path, ServerOptions options = {}) {
    static_assert(!detail::unsafe_await_closure<F>, CORING_AWAIT_CLOSURE_MESSAGE);
    return start_unix_server(ClientConnectedCallback(std::forward<F>(client_connected_cb)),
                             std::move(path),
                             options);
}

} // namespace coring
