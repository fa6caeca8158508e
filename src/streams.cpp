// SPDX-License-Identifier: MIT
// The StreamReader coroutines (asyncio.streams.StreamReader.readuntil & co.), StreamWriter's
// extra info, open_connection and the pipes.
#include <coring/executor.hpp>
#include <coring/streams.hpp>

#include <coring/detail/stream_transport.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "streams_internal.hpp"

namespace coring {

namespace detail {

// ---- the reader's coroutines ----
//
// Cancellation (issue 10, defect 2): a read never consumes bytes while its task has a
// cancellation pending. Each coroutine checks on entry, and FillAwaiter, their only suspension
// point, throws a cancellation that arrived together with the bytes after adding them to the
// buffer; between those checks and the consumption nothing suspends, so no cancellation can
// come in between. A cancelled read thus leaves everything it received in the buffer, where
// asyncio's _wait_for_data leaves it too.

namespace {

/// Waits until the reader's buffer has grown, EOF or an error (asyncio's _wait_for_data); the
/// coroutines below loop on it. With an fd it is one recv into the buffer's free room (made at
/// least want bytes, within max_read_ahead); otherwise a wait for bytes to be fed.
class [[nodiscard]] FillAwaiter {
public:
    FillAwaiter(StreamTransport& t, const char* func, std::size_t want) noexcept
        : t_(&t), req_(t), func_(func), want_(want) {}

    bool await_ready() const {
        t_->check_single_reader(func_);
        return t_->read_finished();
    }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        req_.suspend(h, {}, want_, "StreamReader waiting for data");
    }

    /// Throws: the stored read error; CancelledError.
    void await_resume() {
        if (req_.suspended()) {
            req_.resume();
            return;
        }
        t_->throw_if_read_error();
    }

private:
    StreamTransport* t_;
    ReadRequest req_;
    const char* func_;
    std::size_t want_;
};

Task<std::string> read_impl(TransportRef ref, std::ptrdiff_t n) {
    StreamTransport& t = *ref;
    t.throw_if_read_error();
    t.throw_if_cancel_pending();
    if (n == 0) {
        co_return std::string();
    }
    if (n < 0) {
        // asyncio reads blocks of `limit` until EOF; reading them all into the buffer and
        // taking it at once gives the same bytes with one copy.
        while (!t.read_finished()) {
            co_await FillAwaiter(t, "read", t.limit());
        }
        t.throw_if_read_error();
        co_return t.take_buffered();
    }
    // A filter may deliver no bytes for a wire read (half a record): wait until it does.
    while (t.buffered().empty() && !t.read_finished()) {
        co_await FillAwaiter(t, "read", 0);
    }
    t.throw_if_read_error();
    std::string_view buf = t.buffered();
    std::string out(buf.substr(0, static_cast<std::size_t>(n)));
    t.consume(out.size());
    co_return out;
}

Task<std::string> readexactly_impl(TransportRef ref, std::size_t n) {
    StreamTransport& t = *ref;
    if (n > static_cast<std::size_t>(PTRDIFF_MAX)) {
        // asyncio's readexactly raises ValueError for a negative size, which is what such a
        // size_t is as a signed length (a length from the peer minus a header, underflowed).
        // Smaller sizes are read as asyncio does: until n bytes or EOF, the buffer growing only
        // as bytes arrive (issue 10, defect 4).
        throw ValueError(fmt::format(
                "readexactly size can not be less than zero (got {}, {} as a signed size)",
                n,
                static_cast<std::ptrdiff_t>(n)));
    }
    t.throw_if_read_error();
    t.throw_if_cancel_pending();
    if (n == 0) {
        co_return std::string();
    }
    while (t.buffered().size() < n) {
        if (t.eof_received()) {
            throw IncompleteReadError(t.take_buffered(), n);
        }
        co_await FillAwaiter(t, "readexactly", n - t.buffered().size());
    }
    std::string out(t.buffered().substr(0, n));
    t.consume(n);
    co_return out;
}

// asyncio's readuntil, and readline on top of it when line_mode is set (one frame for both).
Task<std::string> readuntil_impl(TransportRef ref, std::string separator, bool line_mode) {
    StreamTransport& t = *ref;
    std::size_t seplen = separator.size();
    if (seplen == 0) {
        throw ValueError("Separator should be at least one-byte string");
    }
    t.throw_if_read_error();
    t.throw_if_cancel_pending();
    // offset: how far from the start of the buffer the separator cannot begin.
    std::size_t offset = 0;
    std::size_t isep = 0;
    for (;;) {
        std::string_view buf = t.buffered();
        if (buf.size() - offset >= seplen) {
            std::size_t pos = buf.find(separator, offset);
            if (pos != std::string_view::npos) {
                isep = pos;
                break;
            }
            offset = buf.size() + 1 - seplen;
            if (offset > t.limit()) {
                if (line_mode) {
                    t.consume(buf.size()); // asyncio's readline drops the buffer, raises ValueError
                    throw ValueError("Separator is not found, and chunk exceed the limit");
                }
                throw LimitOverrunError("Separator is not found, and chunk exceed the limit",
                                        offset);
            }
        }
        // A separator may have arrived together with EOF: look before giving up.
        if (t.eof_received()) {
            std::string chunk = t.take_buffered();
            if (line_mode) {
                co_return chunk;
            }
            throw IncompleteReadError(std::move(chunk), std::nullopt);
        }
        co_await FillAwaiter(t, line_mode ? "readline" : "readuntil", 0);
    }
    if (isep > t.limit()) {
        if (line_mode) {
            t.consume(isep + seplen); // the whole line goes, as in asyncio's readline
            throw ValueError("Separator is found, but chunk is longer than limit");
        }
        throw LimitOverrunError("Separator is found, but chunk is longer than limit", isep);
    }
    std::string out(t.buffered().substr(0, isep + seplen));
    t.consume(isep + seplen);
    co_return out;
}

} // namespace

} // namespace detail

// ---- StreamReader ----

StreamReader::StreamReader(std::size_t limit) {
    if (limit == 0) {
        throw ValueError("Limit cannot be <= 0");
    }
    t_ = detail::TransportRef(detail::adopt_ref,
                              new detail::StreamTransport(
                                      get_running_loop(), -1, detail::TransportKind::none, limit));
}

Task<std::string> StreamReader::read(std::ptrdiff_t n) {
    return detail::read_impl(t_, n);
}

Task<std::string> StreamReader::readline() {
    return detail::readuntil_impl(t_, "\n", true);
}

Task<std::string> StreamReader::readuntil(std::string separator) {
    return detail::readuntil_impl(t_, std::move(separator), false);
}

Task<std::string> StreamReader::readexactly(std::size_t n) {
    return detail::readexactly_impl(t_, n);
}

// ---- StreamWriter ----

std::any StreamWriter::get_extra_info(std::string_view name, std::any default_value) const {
    detail::StreamTransport& t = *t_;
    if (detail::StreamFilter* f = t.filter()) {
        std::any v = f->extra_info(name);
        if (v.has_value()) {
            return v;
        }
    }
    if (name == "peername") {
        if (auto a = t.peername()) {
            return *a;
        }
    } else if (name == "sockname") {
        if (auto a = t.sockname()) {
            return *a;
        }
    } else if (name == "socket") {
        if (t.kind() == detail::TransportKind::socket && t.fd() >= 0) {
            return t.fd();
        }
    } else if (name == "pipe") {
        if (t.kind() == detail::TransportKind::pipe && t.fd() >= 0) {
            return t.fd();
        }
    }
    return default_value;
}

Task<> StreamWriter::start_tls(SslContextRef ssl, StartTlsOptions options) {
    if (!ssl) {
        throw ValueError("start_tls needs an SSL context");
    }
    detail::TransportRef t = t_;
    if (t->filter() != nullptr) {
        throw RuntimeError("start_tls: the connection already uses TLS");
    }
    if (t->is_closing()) {
        throw ConnectionResetError(ECONNRESET, "start_tls: the connection is closing");
    }
    co_await drain();
    // The plaintext written so far must be out before the handshake's first message.
    StreamReader reader(t);
    StreamWriter writer(t);
    co_await ssl.get()->wrap(reader,
                             writer,
                             t->server_side() ? detail::TlsRole::server : detail::TlsRole::client,
                             options.server_hostname.view(),
                             options.ssl_handshake_timeout,
                             options.ssl_shutdown_timeout);
}

// ---- connections ----

namespace {

std::pair<StreamReader, StreamWriter> make_streams(EventLoop& loop,
                                                   Socket& sock,
                                                   detail::TransportKind kind,
                                                   std::size_t limit,
                                                   const SocketAddress* peer) {
    if (limit == 0) {
        throw ValueError("Limit cannot be <= 0");
    }
    auto* t = new detail::StreamTransport(loop, sock.fd(), kind, limit);
    sock.release(); // the transport owns the fd now
    detail::TransportRef reader_ref(detail::adopt_ref, t);
    if (peer != nullptr) {
        t->set_peername(*peer);
    }
    detail::TransportRef writer_ref(detail::retain_ref, t);
    return {StreamReader(std::move(reader_ref)), StreamWriter(std::move(writer_ref))};
}

void set_nodelay(Socket& sock, int family) {
    if (family == AF_INET || family == AF_INET6) {
        sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
    }
}

// What open_connection raises when every address failed (asyncio's create_connection): the
// only error, or one error when all have the same errno, or a list of all of them.
[[noreturn]] void throw_connect_errors(const std::vector<std::exception_ptr>& errors,
                                       const std::string& target) {
    if (errors.size() == 1) {
        std::rethrow_exception(errors.front());
    }
    int first = 0;
    bool same = true;
    std::string list;
    for (const auto& e : errors) {
        try {
            std::rethrow_exception(e);
        } catch (const std::system_error& se) {
            if (first == 0) {
                first = se.code().value();
            } else if (se.code().value() != first) {
                same = false;
            }
            if (!list.empty()) {
                list += ", ";
            }
            list += se.what();
        } catch (...) {
            same = false;
        }
    }
    if (same && first != 0) {
        throw_os_error(first, "connect " + target + " (every address)");
    }
    throw std::system_error(
            first != 0 ? first : EIO, std::system_category(), "Multiple exceptions: " + list);
}

void clear_nonblock(int fd) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK)) {
        ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    }
}

} // namespace

namespace detail {

Task<std::pair<StreamReader, StreamWriter>> connect_first(std::vector<AddrInfo> addresses,
                                                          std::vector<AddrInfo> local,
                                                          std::string target,
                                                          ConnectOptions options) {
    std::vector<std::exception_ptr> errors;
    for (const AddrInfo& ai : addresses) {
        Socket sock;
        bool ready = false;
        try {
            sock = Socket(ai.family, SOCK_STREAM, ai.protocol);
            set_nodelay(sock, ai.family);
            if (options.local_addr) {
                bool bound = false;
                for (const AddrInfo& la : local) {
                    if (la.family != ai.family) {
                        continue;
                    }
                    sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
                    sock.bind(la.address);
                    bound = true;
                    break;
                }
                if (!bound) {
                    throw std::system_error(
                            EADDRNOTAVAIL,
                            std::system_category(),
                            fmt::format("no local address of the family of {} to bind to",
                                        ai.address.to_string()));
                }
            }
            ready = true;
        } catch (const std::system_error&) {
            errors.push_back(std::current_exception());
        }
        if (!ready) {
            continue;
        }
        bool connected = false;
        try {
            co_await sock_connect(sock, ai.address);
            connected = true;
        } catch (const std::system_error&) {
            errors.push_back(std::current_exception());
        }
        if (connected) {
            co_return make_streams(
                    get_running_loop(), sock, TransportKind::socket, options.limit, &ai.address);
        }
    }
    if (errors.empty()) {
        throw std::system_error(EADDRNOTAVAIL,
                                std::system_category(),
                                "connect " + target + ": no address to connect to");
    }
    throw_connect_errors(errors, target);
}

} // namespace detail

Task<std::pair<StreamReader, StreamWriter>>
open_connection(std::string host, std::uint16_t port, ConnectOptions options) {
    std::vector<AddrInfo> infos =
            co_await getaddrinfo(host, port, options.family, SOCK_STREAM, 0, options.flags);
    std::vector<AddrInfo> local;
    if (options.local_addr) {
        local = co_await getaddrinfo(options.local_addr->host.str(),
                                     options.local_addr->port,
                                     options.family,
                                     SOCK_STREAM,
                                     0,
                                     options.flags);
    }
    auto streams = co_await detail::connect_first(
            std::move(infos), std::move(local), fmt::format("{}:{}", host, port), options);
    if (options.ssl) {
        // asyncio's server_hostname: the host connected to unless given ('' for none).
        std::string_view name = options.server_hostname ? options.server_hostname->view() : host;
        co_await options.ssl.get()->wrap(streams.first,
                                         streams.second,
                                         detail::TlsRole::client,
                                         name,
                                         options.ssl_handshake_timeout,
                                         options.ssl_shutdown_timeout);
    }
    co_return streams;
}

Task<std::pair<StreamReader, StreamWriter>> open_connection(Socket sock, std::size_t limit) {
    if (sock.type() == SOCK_STREAM) {
        set_nodelay(sock, sock.family()); // asyncio's transports set it on every TCP socket
    }
    co_return make_streams(get_running_loop(), sock, detail::TransportKind::socket, limit, nullptr);
}

Task<std::pair<StreamReader, StreamWriter>> open_unix_connection(std::string path,
                                                                 std::size_t limit) {
    SocketAddress address = SocketAddress::unix_path(path);
    Socket sock(AF_UNIX, SOCK_STREAM);
    co_await sock_connect(sock, address);
    co_return make_streams(
            get_running_loop(), sock, detail::TransportKind::socket, limit, &address);
}

StreamReader connect_read_pipe(int fd, std::size_t limit) {
    EventLoop& loop = get_running_loop();
    clear_nonblock(fd);
    Socket holder = Socket::from_fd(fd);
    return make_streams(loop, holder, detail::TransportKind::pipe, limit, nullptr).first;
}

StreamWriter connect_write_pipe(int fd) {
    EventLoop& loop = get_running_loop();
    detail::ignore_sigpipe();
    clear_nonblock(fd);
    Socket holder = Socket::from_fd(fd);
    return make_streams(loop, holder, detail::TransportKind::pipe, default_stream_limit, nullptr)
            .second;
}

} // namespace coring
