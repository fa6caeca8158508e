// SPDX-License-Identifier: MIT
// Server: listening sockets, multishot accept with a single-shot fallback, one task per
// connection, close and wait_closed (asyncio.base_events.Server, selector_events'
// _accept_connection, streams.start_server).
#include <coring/config.hpp>
#include <coring/log.hpp>
#include <coring/server.hpp>

#include <coring/detail/deadline.hpp>
#include <coring/detail/sys.hpp>

#include <fmt/format.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "server_state.hpp"
#include "streams_internal.hpp"

namespace coring {

namespace detail {

namespace {

// Set once a kernel answered EINVAL to a multishot accept: use single accepts from then on.
std::atomic<bool> multishot_refused{false};

// Cleared by tests to exercise the single-accept path.
std::atomic<bool> multishot_allowed{true};

bool use_multishot(EventLoop& loop) noexcept {
#if CORING_HAS_MULTISHOT_ACCEPT
    // Multishot accept came with Linux 5.19, as IORING_OP_SOCKET did (the probe cannot see
    // flags of an opcode, so the newer opcode stands for it).
    // relaxed: a stale false only costs one refused attempt.
    return detail::LoopAccess::ring(loop).supports(IORING_OP_SOCKET) &&
           !multishot_refused.load(std::memory_order_relaxed) &&
           multishot_allowed.load(std::memory_order_relaxed);
#else
    static_cast<void>(loop);
    return false;
#endif
}

/// An owning reference to a ServerState (an object reference, not a Server handle).
using ServerRef = Ref<ServerState>;

/// A TLS server's connection: the handshake, then the callback. A failed handshake closes the
/// connection without calling it; asyncio reports it only in debug mode.
Task<> serve_tls(std::shared_ptr<const TlsProvider> ssl,
                 ClientConnectedCallback callback,
                 StreamReader reader,
                 StreamWriter writer,
                 std::chrono::milliseconds handshake_timeout,
                 std::chrono::milliseconds shutdown_timeout) {
    try {
        co_await ssl->wrap(
                reader, writer, TlsRole::server, {}, handshake_timeout, shutdown_timeout);
    } catch (const std::exception& e) {
        writer.abort();
        if (get_running_loop().get_debug()) {
            log(LogLevel::debug, fmt::format("SSL handshake failed: {}", e.what()));
        }
        co_return;
    }
    co_await callback(std::move(reader), std::move(writer));
}

} // namespace

void set_multishot_accept(bool enabled) noexcept {
    // relaxed: read by servers armed later on this or another thread; no data depends on it.
    multishot_allowed.store(enabled, std::memory_order_relaxed);
}

ServerState::Listener::Listener(ServerState& s, int listen_fd) noexcept
    : TimerNode(&ServerState::on_retry), server(&s), fd(listen_fd) {
}

ServerState::ServerState(EventLoop& loop,
                         ClientConnectedCallback callback,
                         const ServerOptions& options,
                         std::vector<Socket> sockets)
    : loop_(&loop), sockets_(std::move(sockets)), callback_(std::move(callback)),
      options_(options) {
    if (options.ssl) {
        ssl_ = options.ssl.get()->retain();
        options_.ssl = *ssl_;
    }
    listeners_.reserve(sockets_.size());
    for (const Socket& s : sockets_) {
        listeners_.push_back(std::make_unique<Listener>(*this, s.fd()));
    }
    listeners_open_ = sockets_.size();
    detail::LoopAccess::register_resource(loop, *this);
}

ServerState::~ServerState() {
    connections_.clear();
}

void ServerState::release_handle() noexcept {
    if (--handles_ == 0) {
        close();
        release();
    }
}

void ServerState::start_serving() {
    if (closed_) {
        throw RuntimeError("Server is closed");
    }
    if (serving_) {
        return;
    }
    serving_ = true;
    arm_idle_listeners();
}

bool ServerState::below_limit() const noexcept {
    return options_.max_connections == 0 ||
           open_connections_ + accepts_in_flight_ < options_.max_connections;
}

void ServerState::arm_idle_listeners() noexcept {
    for (auto& l : listeners_) {
        if (!below_limit()) {
            return; // paused: the backlog holds the next connections until one closes
        }
        if (!l->accept_op.in_flight() && !l->retry_pending) {
            arm(*l);
        }
    }
}

void ServerState::arm(Listener& l) noexcept {
    if (loop_ == nullptr) {
        return;
    }
    io_uring_sqe* sqe = nullptr;
    try {
        sqe = detail::LoopAccess::ring(*loop_).get_sqe();
    } catch (...) {
        report("could not queue an accept", EIO);
        return;
    }
    // With a connection limit every accept is single: a multishot accept could hand over
    // more connections than the limit leaves room for before its cancel reached the kernel.
    bool multishot = options_.max_connections == 0 && use_multishot(*loop_);
#if CORING_HAS_MULTISHOT_ACCEPT
    if (multishot) {
        io_uring_prep_multishot_accept(sqe, l.fd, nullptr, nullptr, SOCK_CLOEXEC);
    } else {
        io_uring_prep_accept(sqe, l.fd, nullptr, nullptr, SOCK_CLOEXEC);
    }
#else
    io_uring_prep_accept(sqe, l.fd, nullptr, nullptr, SOCK_CLOEXEC);
#endif
    l.accept_op.submit(detail::LoopAccess::ring(*loop_), sqe);
    l.multishot = multishot;
    ++accepts_in_flight_;
    add_ref();
}

void ServerState::Listener::on_accept(int res, unsigned flags) noexcept {
    ServerState& s = *server;
    bool ended = !(flags & IORING_CQE_F_MORE); // the accept (multishot or single) has ended
    if (ended) {
        --s.accepts_in_flight_;
    }
    if (res >= 0) {
        if (s.serving_) {
            s.accepted(res);
        } else {
            close_fd(res); // accepted while the server was closing
        }
    } else if (s.serving_) {
        s.accept_failed(*this, -res);
    }
    // An error while not serving is close() ending the accept (ECANCELED, or EINVAL from the
    // shutdown of its socket): nothing to report, and no reason to give up multishot accepts.
    if (ended) {
        // Arm the next, unless what ran above did already (a connection that closed at once),
        // or finish closing.
        if (s.serving_) {
            if (!accept_op.in_flight() && !retry_pending && s.below_limit()) {
                s.arm(*this); // (at max_connections, connection_closed arms it again)
            }
        } else if (s.closed_) {
            s.listener_done(*this);
        }
        s.release();
    }
}

void ServerState::accepted(int fd) noexcept {
    StreamTransport* t = nullptr;
    try {
        t = new StreamTransport(*loop_, fd, TransportKind::socket, options_.limit);
    } catch (...) {
        close_fd(fd);
        loop_->call_exception_handler({"Error creating the transport of an accepted connection",
                                       std::current_exception(),
                                       {},
                                       {}});
        return;
    }
    t->attach_server(*this);
    ++open_connections_;
    TransportRef reader_ref(adopt_ref, t);
    TransportRef writer_ref(retain_ref, t);
    try {
        // asyncio runs client_connected_cb as a task per connection; the handle is dropped,
        // the task runs on, and an exception it ends with is reported when it finishes.
        if (ssl_) {
            loop_->create_task(serve_tls(ssl_,
                                         callback_,
                                         StreamReader(std::move(reader_ref)),
                                         StreamWriter(std::move(writer_ref)),
                                         options_.ssl_handshake_timeout,
                                         options_.ssl_shutdown_timeout));
            return;
        }
        loop_->create_task(callback_(StreamReader(std::move(reader_ref)),
                                     StreamWriter(std::move(writer_ref))));
    } catch (...) {
        loop_->call_exception_handler(
                {"Error in client_connected_cb", std::current_exception(), {}, {}});
    }
}

void ServerState::accept_failed(Listener& l, int err) noexcept {
    switch (err) {
    case ECANCELED:
        return; // close()
    case EAGAIN:
    case EINTR:
    case ECONNABORTED:
        // asyncio ignores these: a connection reset before it was accepted, a spurious wake-up.
        return;
    case EINVAL:
        if (l.multishot) {
            // relaxed: see use_multishot.
            multishot_refused.store(true, std::memory_order_relaxed);
            return; // the single accept that replaces it is armed by the caller
        }
        break;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
        // asyncio: log, stop accepting, try again after ACCEPT_RETRY_DELAY. The connection
        // waits in the listen backlog meanwhile.
        report("socket.accept() out of system resource", err);
        break;
    default:
        report("Error on accepting a connection", err);
        break;
    }
    if (!l.retry_pending && loop_ != nullptr) {
        try {
            detail::LoopAccess::add_timer(*loop_,
                                          l,
                                          detail::deadline_after(detail::LoopAccess::now_ns(*loop_),
                                                                 options_.accept_retry_delay));
        } catch (...) {
            return; // no memory for the timer: the next accept is armed at once instead
        }
        l.retry_pending = true;
        add_ref();
    }
}

void ServerState::on_retry(TimerNode* node, bool discard) noexcept {
    auto& l = static_cast<Listener&>(*node);
    ServerState& s = *l.server;
    l.retry_pending = false;
    if (!discard && s.serving_ && !l.accept_op.in_flight() && s.below_limit()) {
        s.arm(l);
    }
    s.release();
}

void ServerState::report(const char* message, int err) noexcept {
    if (loop_ == nullptr) {
        return;
    }
    try {
        std::string where = sockets_.empty()
                                    ? std::string("accept")
                                    : "accept " + sockets_.front().getsockname().to_string();
        loop_->call_exception_handler({message, make_os_error(err, where), {}, {}});
    } catch (...) {
        loop_->call_exception_handler({message, std::current_exception(), {}, {}});
    }
}

void ServerState::close() noexcept {
    if (closed_) {
        return;
    }
    closed_ = true;
    serving_ = false;
    // Stop accepting: cancel the accepts in flight; each listening socket is closed once its
    // accept is back from the kernel (an fd must outlive the operations using it).
    for (std::size_t i = 0; i < listeners_.size(); ++i) {
        Listener& l = *listeners_[i];
        l.closing = std::move(sockets_[i]);
        // Refuse connections now, as asyncio's close(2) of the socket does. Neither the cancel
        // nor a close of the fd can: both are queued until the next io_uring_enter, and the
        // accept holds a reference to the socket until the kernel hands it back. shutdown(2)
        // is synchronous and needs no last reference: a TCP listener leaves LISTEN (connects
        // are refused, those in the backlog reset), a Unix one refuses connects. It also ends
        // the accept in flight with EINVAL on TCP, and a single accept on Unix (Linux 6.x);
        // a multishot accept on a Unix socket stays armed until the cancel below ends it.
        ::shutdown(l.closing.fd(), SHUT_RDWR);
        if (l.retry_pending && loop_ != nullptr) {
            detail::LoopAccess::remove_timer(*loop_, l);
            l.retry_pending = false;
            release(); // the timer's reference; a handle or the caller still holds one
        }
        if (l.accept_op.in_flight() && loop_ != nullptr) {
            // Without an SQE for the cancel, the accept stays armed until the ring goes; its
            // completions close what they accept.
            l.accept_op.cancel(detail::LoopAccess::ring(*loop_));
        } else {
            listener_done(l);
        }
    }
    sockets_.clear();
    if (!unix_path_.empty()) {
        // asyncio 3.13 (cleanup_socket): remove the socket file if it is still ours.
        struct stat st {};

        if (::stat(unix_path_.c_str(), &st) == 0 && st.st_dev == unix_dev_ &&
            st.st_ino == unix_ino_) {
            ::unlink(unix_path_.c_str());
        }
        unix_path_.clear();
    }
    if (loop_ != nullptr) {
        forever_waiters_.notify_all();
    }
    maybe_wake_closed();
}

void ServerState::listener_done(Listener& l) noexcept {
    if (l.closing) {
        // close(2), not the ring's asynchronous close: wait_closed() must find the socket
        // closed, and closing a listening socket does not block.
        sys.close(l.closing.release());
        --listeners_open_;
    }
    maybe_wake_closed();
}

void ServerState::close_clients() noexcept {
    connections_.for_each([](StreamTransport& t) { t.close(); });
}

void ServerState::abort_clients() noexcept {
    connections_.for_each([](StreamTransport& t) { t.abort(); });
}

void ServerState::connection_closed(StreamTransport&) noexcept {
    --open_connections_;
    if (serving_ && options_.max_connections > 0) {
        arm_idle_listeners(); // accepting resumes below max_connections
    }
    maybe_wake_closed();
}

void ServerState::maybe_wake_closed() noexcept {
    if (loop_ != nullptr && fully_closed()) {
        closed_waiters_.notify_all();
    }
}

void ServerState::on_loop_close() noexcept {
    // Accepts in flight were drained (their completions discarded) and retry timers fired
    // with discard: drop the references the accepts held.
    loop_ = nullptr;
    serving_ = false;
    int held = 0;
    for (auto& l : listeners_) {
        if (l->accept_op.forget()) {
            --accepts_in_flight_;
            ++held;
        }
    }
    ServerState* self = this;
    while (held-- > 0) {
        self->release();
    }
}

// ---- the coroutines behind Server ----

namespace {

Task<> wait_closed_impl(ServerRef ref) {
    ServerState& s = *ref;
    if (s.fully_closed()) {
        co_return;
    }
    co_await WaitNode(s.closed_waiters_, "Server.wait_closed");
}

Task<> serve_forever_impl(ServerRef ref) {
    ServerState& s = *ref;
    if (s.serving_forever_) {
        throw RuntimeError("server is already being awaited on serve_forever()");
    }
    if (s.closed_) {
        throw RuntimeError("Server is closed");
    }
    s.start_serving();
    s.serving_forever_ = true;
    std::exception_ptr cancelled;
    try {
        co_await WaitNode(s.forever_waiters_, "Server.serve_forever");
    } catch (const CancelledError&) {
        cancelled = std::current_exception();
    }
    s.serving_forever_ = false;
    if (cancelled) {
        // asyncio: cancelled, serve_forever closes the server and waits for it.
        s.close();
        co_await wait_closed_impl(ref);
        std::rethrow_exception(cancelled);
    }
    // close() was called: asyncio cancels serve_forever's future, so it raises CancelledError.
    throw CancelledError();
}

Task<> start_serving_impl(ServerRef ref) {
    ref->start_serving();
    co_return;
}

Server make_server(ClientConnectedCallback cb,
                   const ServerOptions& options,
                   std::vector<Socket> sockets,
                   const struct stat* unix_file = nullptr,
                   const std::string& unix_path = {}) {
    auto* s = new ServerState(get_running_loop(), std::move(cb), options, std::move(sockets));
    Server server(s);
    if (unix_file != nullptr) {
        s->set_unix_path(unix_path, unix_file->st_dev, unix_file->st_ino);
    }
    if (options.start_serving) {
        s->start_serving();
    }
    return server;
}

} // namespace

} // namespace detail

// ---- Server ----

void detail::ServerHandleCount::add_ref(ServerState* s) noexcept {
    s->add_handle();
}

void detail::ServerHandleCount::release(ServerState* s) noexcept {
    s->release_handle();
}

Server::Server(detail::ServerState* state) noexcept : s_(detail::adopt_ref, state) {
}

Server::Server(const Server& other) noexcept = default;

Server::~Server() = default;

const std::vector<Socket>& Server::sockets() const noexcept {
    static const std::vector<Socket> none;
    return s_ != nullptr ? s_->sockets_ : none;
}

void Server::close() noexcept {
    if (s_ != nullptr) {
        s_->close();
    }
}

void Server::close_clients() noexcept {
    if (s_ != nullptr) {
        s_->close_clients();
    }
}

void Server::abort_clients() noexcept {
    if (s_ != nullptr) {
        s_->abort_clients();
    }
}

Task<> Server::wait_closed() {
    return detail::wait_closed_impl(detail::ServerRef(detail::retain_ref, s_.get()));
}

Task<> Server::serve_forever() {
    return detail::serve_forever_impl(detail::ServerRef(detail::retain_ref, s_.get()));
}

Task<> Server::start_serving() {
    return detail::start_serving_impl(detail::ServerRef(detail::retain_ref, s_.get()));
}

bool Server::is_serving() const noexcept {
    return s_ != nullptr && s_->serving_;
}

std::size_t Server::connection_count() const noexcept {
    return s_ != nullptr ? s_->connections_.size() : 0;
}

EventLoop& Server::get_loop() const {
    if (s_ == nullptr || s_->loop_ == nullptr) {
        throw RuntimeError("Event loop is closed");
    }
    return *s_->loop_;
}

// ---- start_server ----

namespace {

void prepare_listener(Socket& sock, int family, const ServerOptions& options) {
    if (options.reuse_address) {
        sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
    }
    if (options.reuse_port) {
        sock.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1);
    }
    if (family == AF_INET6) {
        // As asyncio: an IPv6 wildcard must not take the IPv4 port too.
        sock.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1);
    }
    if (family == AF_INET || family == AF_INET6) {
        // Accepted sockets inherit TCP_NODELAY from the listener (asyncio sets it on each).
        sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
    }
}

} // namespace

Task<Server> start_server(ClientConnectedCallback client_connected_cb,
                          std::string host,
                          std::uint16_t port,
                          ServerOptions options) {
    std::vector<AddrInfo> infos = co_await getaddrinfo(
            host, port, options.family, SOCK_STREAM, 0, options.flags | AI_PASSIVE);
    std::vector<Socket> sockets;
    std::vector<SocketAddress> bound;
    for (const AddrInfo& ai : infos) {
        bool duplicate = false;
        for (const SocketAddress& b : bound) {
            duplicate = duplicate || b == ai.address;
        }
        if (duplicate) {
            continue;
        }
        Socket sock;
        try {
            sock = Socket(ai.family, SOCK_STREAM, ai.protocol);
        } catch (const std::system_error& e) {
            if (e.code().value() == EAFNOSUPPORT) {
                continue; // asyncio skips a family the system lacks (no IPv6)
            }
            throw;
        }
        prepare_listener(sock, ai.family, options);
        sock.bind(ai.address);
        sock.listen(options.backlog);
        bound.push_back(ai.address);
        sockets.push_back(std::move(sock));
    }
    if (sockets.empty()) {
        throw std::system_error(EADDRNOTAVAIL,
                                std::system_category(),
                                fmt::format("start_server {}:{}: no address to listen on",
                                            host.empty() ? "<any>" : host,
                                            port));
    }
    co_return detail::make_server(std::move(client_connected_cb), options, std::move(sockets));
}

Task<Server>
start_server(ClientConnectedCallback client_connected_cb, Socket sock, ServerOptions options) {
    if (sock.getsockopt(SOL_SOCKET, SO_ACCEPTCONN) == 0) {
        sock.listen(options.backlog);
    }
    std::vector<Socket> sockets;
    sockets.push_back(std::move(sock));
    co_return detail::make_server(std::move(client_connected_cb), options, std::move(sockets));
}

Task<Server> start_unix_server(ClientConnectedCallback client_connected_cb,
                               std::string path,
                               ServerOptions options) {
    SocketAddress address = SocketAddress::unix_path(path);
    bool abstract = !path.empty() && path[0] == '\0';
    if (!abstract) {
        // A socket file left by an earlier run would make bind fail: replace it (asyncio).
        struct stat st {};

        if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
            ::unlink(path.c_str());
        }
    }
    Socket sock(AF_UNIX, SOCK_STREAM);
    sock.bind(address);
    sock.listen(options.backlog);

    struct stat st {};

    bool have_stat = !abstract && ::stat(path.c_str(), &st) == 0;
    std::vector<Socket> sockets;
    sockets.push_back(std::move(sock));
    co_return detail::make_server(std::move(client_connected_cb),
                                  options,
                                  std::move(sockets),
                                  have_stat ? &st : nullptr,
                                  path);
}

} // namespace coring
