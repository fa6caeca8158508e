// SPDX-License-Identifier: MIT
// Streams over TCP, Unix sockets and pipes: StreamReader, StreamWriter, open_connection,
// open_unix_connection, the pipe streams (asyncio.streams). Server, start_server and
// start_unix_server are in coring/server.hpp, which this header includes at its end.
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/net/address.hpp>
#include <coring/net/socket.hpp>
#include <coring/task.hpp>

#include <coring/detail/ref.hpp>
#include <coring/detail/stream_transport.hpp>
#include <coring/detail/task_base.hpp>

#include <any>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

// The machinery of the streams (the awaiters that read_into, drain and wait_closed return, the
// TLS hook, Server's reference policy), which the API below uses.
#include <coring/detail/streams_impl.hpp>

namespace coring {

/// The default limit of a StreamReader: 64 KiB (asyncio.streams._DEFAULT_LIMIT). It bounds the
/// line readline and readuntil may return, and so what a peer can make the reader buffer.
inline constexpr std::size_t default_stream_limit = detail::StreamTransport::default_limit;

/// The `ssl=` argument of open_connection, start_server and start_tls: a coring::tls::SslContext
/// (from `#include <coring/tls.hpp>`, component tls) converts to it. Null means plain TCP.
/// It refers to the context for the duration of the call; a server keeps its own reference.
class SslContextRef {
public:
    constexpr SslContextRef() noexcept = default;

    SslContextRef(const detail::TlsProvider& context) noexcept // NOLINT: as asyncio's ssl=ctx
        : p_(&context) {}

    const detail::TlsProvider* get() const noexcept { return p_; }

    explicit operator bool() const noexcept { return p_ != nullptr; }

private:
    const detail::TlsProvider* p_ = nullptr;
};

/// asyncio's defaults: 60 s for the TLS handshake, 30 s for the TLS shutdown.
inline constexpr std::chrono::milliseconds default_ssl_handshake_timeout{60'000};
inline constexpr std::chrono::milliseconds default_ssl_shutdown_timeout{30'000};

/// Options of StreamWriter::start_tls (asyncio 3.11's keyword arguments).
struct StartTlsOptions {
    /// SNI and the host name the certificate must match (client side); empty for neither.
    HostName server_hostname{};
    std::chrono::milliseconds ssl_handshake_timeout = default_ssl_handshake_timeout;
    std::chrono::milliseconds ssl_shutdown_timeout = default_ssl_shutdown_timeout;
};

/// Reads from a stream (asyncio.StreamReader). Copies share the same reader, as Python
/// references do. Reading is pulled: a recv is in the kernel only while a task waits in one of
/// the read functions, and it lands straight in the reader's buffer (or, for read_into, in the
/// caller's span). Only one task may wait for data at a time (RuntimeError otherwise).
///
///     auto [reader, writer] = co_await coring::open_connection("127.0.0.1", 8888);
///     std::string line = co_await reader.readline();
class StreamReader {
public:
    /// A reader without a transport, fed with feed_data / feed_eof (asyncio.StreamReader()).
    /// Throws: ValueError when limit is 0; RuntimeError when no loop is running.
    explicit StreamReader(std::size_t limit = default_stream_limit);

    /// A reader over a transport (for coring's own layers).
    explicit StreamReader(detail::TransportRef transport) noexcept : t_(std::move(transport)) {}

    /// Reads up to n bytes, waiting only if nothing is buffered; "" at EOF. n = -1 reads until
    /// EOF. Throws: the connection's error (ConnectionResetError, ...); CancelledError (a
    /// cancelled read takes nothing from the buffer).
    [[nodiscard]] Task<std::string> read(std::ptrdiff_t n = -1);

    /// Reads up to buf.size() bytes into buf, waiting only if nothing is buffered; yields the
    /// count, 0 at EOF. The zero-copy read: with nothing buffered, the recv writes into buf.
    /// Throws: the connection's error; CancelledError (the recv is cancelled in the kernel;
    /// bytes it delivered anyway go to the reader's buffer, not to buf).
    [[nodiscard]] ReadIntoAwaiter read_into(std::span<char> buf) noexcept {
        return ReadIntoAwaiter(*t_, buf);
    }

    /// Reads one line, up to and including "\n"; at EOF the incomplete rest, "" when nothing is
    /// left. Throws: ValueError when the limit is reached without a newline (the line, or the
    /// buffer, is dropped, as asyncio does); the connection's error; CancelledError.
    /// Cancellation (every read): a read whose task has a cancellation pending consumes nothing;
    /// what it received stays in the buffer for the next read.
    [[nodiscard]] Task<std::string> readline();

    /// Reads up to and including separator. Throws: IncompleteReadError (with the bytes
    /// read, which leave the buffer) at EOF before the separator; LimitOverrunError when the
    /// limit is reached first (the data stays in the buffer); ValueError for an empty
    /// separator; the connection's error; CancelledError.
    [[nodiscard]] Task<std::string> readuntil(std::string separator = "\n");

    /// Reads exactly n bytes. The buffer grows as bytes arrive, never ahead of them, so any n
    /// is safe to ask for. Throws: IncompleteReadError with the partial bytes at EOF;
    /// ValueError when n > PTRDIFF_MAX (a negative size for asyncio, as an underflowed length
    /// is), before reading anything; the connection's error; CancelledError (the bytes read so
    /// far stay in the buffer).
    [[nodiscard]] Task<std::string> readexactly(std::size_t n);

    /// Whether EOF was received and the buffer is empty.
    bool at_eof() const noexcept { return t_->eof_received() && t_->buffered().empty(); }

    /// The error the reader raises, or null.
    std::exception_ptr exception() const noexcept { return t_->read_error(); }

    /// Makes every read raise e (wakes a waiting reader).
    void set_exception(std::exception_ptr e) noexcept { t_->set_exception(std::move(e)); }

    /// Appends data to the buffer (for readers without a transport).
    /// Throws: InvalidStateError after feed_eof or while a recv is in flight.
    void feed_data(std::string_view data) { t_->feed_data(data); }

    /// Marks EOF (wakes a waiting reader).
    void feed_eof() noexcept { t_->feed_eof(); }

    /// The limit given at creation.
    std::size_t limit() const noexcept { return t_->limit(); }

    /// Bytes buffered and not yet read.
    std::size_t buffered() const noexcept { return t_->buffered().size(); }

    /// The transport, for coring's own layers.
    detail::StreamTransport& transport() const noexcept { return *t_; }

private:
    detail::TransportRef t_;
};

/// Writes to a stream (asyncio.StreamWriter). Copies share the same writer.
///
/// write() only copies into a buffer; what all the writes of one loop iteration put there
/// leaves in one send, submitted with the loop's next io_uring_enter, and there is never more
/// than one send in flight per writer. drain() applies backpressure: it waits while more than
/// the high-water mark (64 KiB) is unsent, until it falls to the low-water mark (16 KiB).
///
///     writer.write("hello\n");
///     co_await writer.drain();
///     writer.close();
///     co_await writer.wait_closed();
class StreamWriter {
public:
    /// A writer over a transport (for coring's own layers).
    explicit StreamWriter(detail::TransportRef transport) noexcept : t_(std::move(transport)) {}

    /// Queues data; never blocks, never fails for lack of room. After close() or once the
    /// connection is lost, data is dropped, with a warning logged from the fifth such write on
    /// (asyncio's transport does the same). Throws: RuntimeError after write_eof().
    void write(std::string_view data) { t_->write(data.data(), data.size()); }

    /// Queues raw bytes.
    void write(std::span<const std::byte> data) {
        t_->write(reinterpret_cast<const char*>(data.data()), data.size());
    }

    /// Queues every element of lines (anything convertible to std::string_view).
    template <class Range>
    void writelines(const Range& lines) {
        for (const auto& line : lines) {
            write(std::string_view(line));
        }
    }

    /// Waits until the buffer is below the high-water mark again (at once if it is).
    /// Throws: the connection's error (ConnectionResetError, BrokenPipeError, ...);
    /// ConnectionResetError from close() on, at once, even while the fd's close is still in
    /// the kernel (asyncio: "Connection lost"); CancelledError.
    [[nodiscard]] DrainAwaiter drain() noexcept { return DrainAwaiter(*t_); }

    /// Whether write_eof() is possible (sockets and pipes: yes).
    bool can_write_eof() const noexcept { return t_->can_write_eof(); }

    /// Half-closes once the buffered data is sent: shutdown(SHUT_WR) for sockets, close for
    /// pipes. The peer reads EOF; this side can still read.
    void write_eof() { t_->write_eof(); }

    /// Closes the stream. At once: is_closing() is true, drain() raises ConnectionResetError,
    /// write() drops its data, reading stops (a waiting read sees EOF). Then the data written
    /// before close() is sent, and the fd is closed through io_uring (see wait_closed()).
    /// Idempotent.
    void close() noexcept { t_->close(); }

    /// Closes at once, dropping what is buffered (asyncio's transport.abort()).
    void abort() noexcept { t_->abort(); }

    /// Whether close() was called or the connection was lost.
    bool is_closing() const noexcept { return t_->is_closing(); }

    /// Waits until the fd is closed in the kernel: the data written before close() has been
    /// sent and the close has completed, so the peer can read EOF. Throws: the error that
    /// ended the connection, if any.
    [[nodiscard]] WaitClosedAwaiter wait_closed() noexcept { return WaitClosedAwaiter(*t_); }

    /// asyncio's get_extra_info: "peername" and "sockname" (SocketAddress), "socket" (the
    /// socket's fd, int), "pipe" (a pipe's fd, int); default_value for anything else.
    std::any get_extra_info(std::string_view name, std::any default_value = {}) const;

    /// The peer's address, when it can be had (typed get_extra_info("peername")).
    std::optional<SocketAddress> peername() const { return t_->peername(); }

    /// The local address (typed get_extra_info("sockname")).
    std::optional<SocketAddress> sockname() const { return t_->sockname(); }

    /// The file descriptor, -1 once closed.
    int fd() const noexcept { return t_->fd(); }

    /// Bytes written and not yet accepted by the kernel (transport.get_write_buffer_size()).
    std::size_t get_write_buffer_size() const noexcept { return t_->write_buffer_size(); }

    /// Sets the flow-control marks (transport.set_write_buffer_limits): high defaults to
    /// 64 KiB (4 × low when only low is given), low to high / 4.
    /// Throws: ValueError unless high >= low.
    void set_write_buffer_limits(std::optional<std::size_t> high = std::nullopt,
                                 std::optional<std::size_t> low = std::nullopt) {
        t_->set_write_buffer_limits(high, low);
    }

    /// (low, high), as transport.get_write_buffer_limits().
    std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept {
        return {t_->low_water(), t_->high_water()};
    }

    /// The transport, for coring's own layers.
    detail::StreamTransport& transport() const noexcept { return *t_; }

    /// Upgrades the open connection to TLS (asyncio 3.11's StreamWriter.start_tls): drains,
    /// runs the handshake (as the server when the streams came from start_server), and from
    /// then on this connection's reader and writer carry plaintext over TLS.
    /// Throws: coring::tls::SslError / SslCertVerificationError, TimeoutError after
    /// ssl_handshake_timeout, ConnectionError; RuntimeError when TLS is on already.
    [[nodiscard]] Task<> start_tls(SslContextRef ssl, StartTlsOptions options = {});

private:
    detail::TransportRef t_;
};

/// Options of open_connection (asyncio's keyword arguments), designed for designated
/// initialisers: `co_await open_connection(host, port, {.local_addr = coring::HostPort{"::1",
/// 0}})`.
struct ConnectOptions {
    /// The StreamReader limit.
    std::size_t limit = default_stream_limit;
    /// AF_UNSPEC, AF_INET or AF_INET6.
    int family = AF_UNSPEC;
    /// getaddrinfo flags.
    int flags = 0;
    /// Bind the socket to this local address before connecting.
    std::optional<HostPort> local_addr{};
    /// TLS: handshake with this context before returning the streams.
    SslContextRef ssl{};
    /// SNI and the name the server's certificate must match; by default the host connected
    /// to; empty for neither (asyncio's server_hostname='').
    std::optional<HostName> server_hostname{};
    std::chrono::milliseconds ssl_handshake_timeout = default_ssl_handshake_timeout;
    std::chrono::milliseconds ssl_shutdown_timeout = default_ssl_shutdown_timeout;
};

// WORKAROUND(gcc-12): GCC 12 destroys the members of a braced aggregate temporary that is an
// argument inside a co_await expression twice (a double free for a std::string member), so the
// option structs are trivially destructible (HostPort holds its host inline).
static_assert(std::is_trivially_destructible_v<ConnectOptions>);
static_assert(std::is_trivially_destructible_v<StartTlsOptions>);

/// Connects to host:port and returns its (reader, writer) (asyncio.open_connection). Every
/// address host resolves to is tried in turn until one accepts (no happy-eyeballs racing).
/// TCP_NODELAY is set, as asyncio does. A connect timeout is wait_for around this call.
/// Throws: GaiError; std::system_error "connect 127.0.0.1:8080" (ConnectionRefusedError, ...),
/// naming every address tried when all failed differently.
/// Cancellation: the connect in flight is cancelled in the kernel and its socket closed.
[[nodiscard]] Task<std::pair<StreamReader, StreamWriter>>
open_connection(std::string host, std::uint16_t port, ConnectOptions options = {});

/// Streams over a connected socket (asyncio.open_connection(sock=...)).
[[nodiscard]] Task<std::pair<StreamReader, StreamWriter>>
open_connection(Socket sock, std::size_t limit = default_stream_limit);

/// Connects to the Unix socket at path (asyncio.open_unix_connection).
/// Throws: std::system_error "connect /path" (FileNotFoundError's ENOENT, ECONNREFUSED, ...).
[[nodiscard]] Task<std::pair<StreamReader, StreamWriter>>
open_unix_connection(std::string path, std::size_t limit = default_stream_limit);

/// A StreamReader over the read end of a pipe, or any fd read(2) and poll work on (a FIFO, a
/// character device, a signalfd); it takes ownership of fd (asyncio: loop.connect_read_pipe
/// with a StreamReaderProtocol). O_NONBLOCK is cleared on fd: io_uring waits for data itself,
/// and would report EAGAIN for a non-blocking fd.
/// Throws: RuntimeError when no loop is running.
StreamReader connect_read_pipe(int fd, std::size_t limit = default_stream_limit);

/// A StreamWriter over the write end of a pipe (asyncio: loop.connect_write_pipe); takes
/// ownership of fd and clears O_NONBLOCK. write_eof() closes the pipe. Writing to a pipe whose
/// reader is gone fails with BrokenPipeError: send's MSG_NOSIGNAL does not exist for pipes, so
/// the first call sets the process's SIGPIPE disposition to SIG_IGN if it is still SIG_DFL, as
/// Python does at start-up (a handler or SIG_IGN set by the program is left alone).
StreamWriter connect_write_pipe(int fd);

} // namespace coring

// start_server and Server (asyncio.streams' server half), for code that includes only this header.
#include <coring/server.hpp>
