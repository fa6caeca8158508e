// SPDX-License-Identifier: MIT
// StreamTransport (asyncio's socket transport and StreamReaderProtocol), the StreamReader
// coroutines (asyncio.streams.StreamReader.readuntil & co.), open_connection and the pipes.
#include <coring/executor.hpp>
#include <coring/log.hpp>
#include <coring/streams.hpp>

#include <coring/detail/stream_transport.hpp>
#include <coring/detail/sys.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "server_state.hpp"

namespace coring {

namespace detail {

namespace {

// asyncio.constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES
constexpr std::size_t log_threshold_for_connlost_writes = 5;

// An idle send buffer larger than this goes back to the pool.
constexpr std::size_t keep_send_capacity = 256 * 1024;

} // namespace

void ignore_sigpipe() noexcept {
    static const bool done = [] {
        struct sigaction current {};

        if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL &&
            (current.sa_flags & SA_SIGINFO) == 0) {
            struct sigaction ignore {};

            ignore.sa_handler = SIG_IGN;
            ::sigaction(SIGPIPE, &ignore, nullptr);
        }
        return true;
    }();
    static_cast<void>(done);
}

// ---- construction ----

StreamTransport::StreamTransport(EventLoop& loop, int fd, TransportKind kind, std::size_t limit)
    : FlushNode(&StreamTransport::flush_entry), loop_(&loop), fd_(fd), kind_(kind), limit_(limit) {
    send_op_.complete = &StreamTransport::on_send;
    send_op_.self = this;
    shutdown_op_.complete = &StreamTransport::on_shutdown;
    shutdown_op_.self = this;
    close_op_.complete = &StreamTransport::on_close;
    close_op_.self = this;
    // IORING_RECVSEND_POLL_FIRST came with Linux 5.19, as IORING_OP_SOCKET did; older kernels
    // refuse a recv whose ioprio is not zero.
    poll_first_supported_ = kind == TransportKind::socket && loop.ring().supports(IORING_OP_SOCKET);
    loop.register_resource(*this);
}

StreamTransport::~StreamTransport() {
    detach_server();
    if (fd_ >= 0) {
        close_fd(fd_);
    }
}

void StreamTransport::last_release() noexcept {
    if (loop_ != nullptr && !closing_ && fd_ >= 0 && (!wbuf_.empty() || !sending_.empty())) {
        // Nobody holds the stream any more but bytes wait to go: send them, then close
        // (close() takes the reference that keeps this alive until then).
        close();
        return;
    }
    delete this;
}

void StreamTransport::on_loop_close() noexcept {
    // The kernel has handed every operation back (their completions were discarded): drop the
    // references they held. The transport now only closes its fd, synchronously, when the last
    // handle goes.
    loop_ = nullptr;
    FlushNode::unlink();
    closing_ = true;
    eof_ = true;
    read_op_ = nullptr;
    int held = 0;
    if (send_in_flight_) {
        send_in_flight_ = false;
        ++held;
    }
    if (shutdown_in_flight_) {
        shutdown_in_flight_ = false;
        ++held;
    }
    if (close_in_flight_) {
        // Submitted, so done: an IORING_OP_CLOSE runs when it is submitted.
        close_in_flight_ = false;
        closed_ = true;
        fd_ = -1;
        ++held;
    }
    if (closing_ref_) {
        closing_ref_ = false;
        ++held;
    }
    StreamTransport* self = this;
    while (held-- > 0) {
        self->release();
    }
}

// ---- reading ----

void StreamTransport::throw_concurrent_read(const char* func) {
    throw RuntimeError(fmt::format(
            "{}() called while another coroutine is already waiting for incoming data", func));
}

std::size_t StreamTransport::read_result_slow(int res) {
    if (res == 0) {
        eof_ = true;
        return 0;
    }
    if (res == -ECANCELED && (eof_ || read_error_)) {
        // Cancelled by close() or by an error on the connection, not by the task.
        throw_if_read_error();
        return 0;
    }
    fatal_error(-res, kind_ == TransportKind::socket ? "recv" : "read");
    std::rethrow_exception(read_error_);
}

std::size_t StreamTransport::take_into(std::span<char> buf) noexcept {
    std::size_t n = std::min(buf.size(), rbuf_.size());
    if (n > 0) {
        std::memcpy(buf.data(), rbuf_.data(), n);
        rbuf_.consume(n);
    }
    return n;
}

void StreamTransport::feed_data(std::string_view data) {
    if (eof_) {
        throw InvalidStateError("feed_data after feed_eof");
    }
    if (read_op_ != nullptr) {
        throw InvalidStateError("feed_data while a read is in flight");
    }
    if (data.empty()) {
        return;
    }
    rbuf_.append(data.data(), data.size());
    if (loop_ != nullptr) {
        feed_waiters_.notify_all();
    }
}

void StreamTransport::feed_eof() noexcept {
    eof_ = true;
    if (loop_ != nullptr) {
        feed_waiters_.notify_all();
    }
}

void StreamTransport::set_exception(std::exception_ptr e) noexcept {
    read_error_ = std::move(e);
    if (loop_ != nullptr) {
        feed_waiters_.notify_all();
    }
    cancel_read();
}

void StreamTransport::cancel_read() noexcept {
    if (read_op_ != nullptr && loop_ != nullptr) {
        try {
            loop_->ring().cancel(read_op_);
        } catch (...) {
            // A dead ring: the recv ends with the connection anyway.
        }
    }
}

// ---- writing ----

void StreamTransport::write_refused(std::size_t n) {
    if (eof_requested_) {
        throw RuntimeError("Cannot call write() after write_eof()");
    }
    static_cast<void>(n);
    // asyncio drops writes to a closed or lost connection and warns after a few.
    if (++lost_writes_ >= log_threshold_for_connlost_writes) {
        log(LogLevel::warning, "socket.send() raised exception.");
    }
}

void StreamTransport::throw_drain_error() const {
    throw_if_read_error();
    if (conn_lost_) {
        std::rethrow_exception(conn_lost_);
    }
    throw ConnectionResetError(ECONNRESET, "drain: connection lost");
}

void StreamTransport::set_write_buffer_limits(std::optional<std::size_t> high,
                                              std::optional<std::size_t> low) {
    std::size_t h = high ? *high : (low ? 4 * *low : default_high_water);
    std::size_t l = low ? *low : h / 4;
    if (h < l) {
        throw ValueError(fmt::format("high ({}) must be >= low ({}) must be >= 0", h, l));
    }
    high_water_ = h;
    low_water_ = l;
    if (!paused_ && write_buffer_size() > high_water_) {
        paused_ = true;
    } else {
        maybe_resume_writing();
    }
}

void StreamTransport::maybe_resume_writing() noexcept {
    if (paused_ && write_buffer_size() <= low_water_) {
        paused_ = false; // asyncio's _maybe_resume_protocol
        if (loop_ != nullptr) {
            drain_waiters_.notify_all();
        }
    }
}

void StreamTransport::write_eof() {
    if (closing_ || eof_requested_) {
        return;
    }
    eof_requested_ = true;
    if (loop_ != nullptr) {
        loop_->defer_flush(*this);
    }
}

void StreamTransport::close() noexcept {
    if (closing_) {
        return;
    }
    closing_ = true;
    eof_ = true; // the reader sees EOF, as connection_lost feeds it in asyncio
    if (loop_ == nullptr) {
        if (fd_ >= 0) {
            sys.close(fd_);
            fd_ = -1;
        }
        closed_ = true;
        detach_server();
        return;
    }
    add_ref(); // released once the fd is closed: the flush and the close need this alive
    closing_ref_ = true;
    feed_waiters_.notify_all();
    cancel_read();
    loop_->defer_flush(*this);
}

void StreamTransport::abort() noexcept {
    aborted_ = true;
    wbuf_.clear();
    if (!send_in_flight_) {
        sending_.clear();
    }
    if (send_in_flight_ && loop_ != nullptr) {
        try {
            loop_->ring().cancel(&send_op_);
        } catch (...) {
            // The send completes on its own.
        }
    }
    paused_ = false;
    close();
    if (loop_ != nullptr) {
        drain_waiters_.notify_all();
    }
}

void StreamTransport::flush_entry(FlushNode* node) noexcept {
    static_cast<StreamTransport*>(node)->flush();
}

void StreamTransport::flush() noexcept {
    if (loop_ == nullptr || send_in_flight_ || shutdown_in_flight_ || close_in_flight_ || closed_) {
        return;
    }
    if (!conn_lost_ && !aborted_) {
        if (sending_.empty() && !wbuf_.empty()) {
            sending_.swap(wbuf_); // wbuf_ takes the idle buffer; writes go on into it
        }
        if (!sending_.empty()) {
            submit_send();
            return;
        }
        if (eof_requested_ && !eof_sent_ && !closing_) {
            if (kind_ == TransportKind::socket) {
                start_shutdown();
            } else {
                start_close(); // a pipe's EOF is its close
            }
            return;
        }
    }
    if (closing_) {
        start_close();
    }
}

io_uring_sqe* StreamTransport::get_sqe_slow() noexcept {
    try {
        return loop_->ring().get_sqe(); // submits a full SQ and retries
    } catch (...) {
        return nullptr;
    }
}

void StreamTransport::submit_send() noexcept {
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) {
        fatal_error(EIO, "send");
        return;
    }
    std::size_t n = std::min(sending_.size(), max_io);
    if (kind_ == TransportKind::socket) {
        // MSG_WAITALL: on stream sockets io_uring retries a short send itself, so a large
        // buffer completes once, when the kernel has taken all of it.
        io_uring_prep_send(sqe, fd_, sending_.data(), n, MSG_NOSIGNAL | MSG_WAITALL);
    } else {
        io_uring_prep_write(sqe,
                            fd_,
                            sending_.data(),
                            static_cast<unsigned>(n),
                            static_cast<std::uint64_t>(-1));
    }
    loop_->ring().track(sqe, &send_op_);
    send_in_flight_ = true;
    add_ref();
}

void StreamTransport::on_send(Completion* c, int res, unsigned) noexcept {
    StreamTransport& t = *static_cast<OpCompletion*>(c)->self;
    t.send_in_flight_ = false;
    if (res >= 0) {
        t.sending_.consume(static_cast<std::size_t>(res));
        if (t.sending_.empty()) {
            t.sending_.shrink_if_idle(keep_send_capacity);
        }
        if (t.aborted_) {
            t.sending_.clear();
        }
        t.maybe_resume_writing();
        if (!t.sending_.empty() || !t.wbuf_.empty() || t.eof_requested_ || t.closing_) {
            // The rest, and whatever was written meanwhile, leave together with the next
            // io_uring_enter (which is also the earliest a new SQE would be submitted).
            t.loop_->defer_flush(t);
        }
    } else if (res == -ECANCELED && t.aborted_) {
        t.sending_.clear();
        t.loop_->defer_flush(t);
    } else {
        t.fatal_error(-res, t.kind_ == TransportKind::socket ? "send" : "write");
    }
    t.release();
}

void StreamTransport::start_shutdown() noexcept {
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) {
        eof_sent_ = true;
        return;
    }
    io_uring_prep_shutdown(sqe, fd_, SHUT_WR);
    loop_->ring().track(sqe, &shutdown_op_);
    shutdown_in_flight_ = true;
    add_ref();
}

void StreamTransport::on_shutdown(Completion* c, int, unsigned) noexcept {
    // An error (ENOTCONN: the peer is gone) is the reader's business, as in asyncio where
    // the next recv reports it.
    StreamTransport& t = *static_cast<OpCompletion*>(c)->self;
    t.shutdown_in_flight_ = false;
    t.eof_sent_ = true;
    if (t.closing_ || !t.wbuf_.empty()) {
        t.loop_->defer_flush(t);
    }
    t.release();
}

void StreamTransport::start_close() noexcept {
    if (fd_ < 0) {
        finish_close();
        return;
    }
    cancel_read();
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) {
        sys.close(fd_);
        fd_ = -1;
        finish_close();
        return;
    }
    io_uring_prep_close(sqe, fd_);
    loop_->ring().track(sqe, &close_op_);
    closing_fd_ = fd_;
    fd_ = -1;
    close_in_flight_ = true;
    add_ref();
}

void StreamTransport::on_close(Completion* c, int, unsigned) noexcept {
    StreamTransport& t = *static_cast<OpCompletion*>(c)->self;
    t.close_in_flight_ = false;
    t.finish_close();
    t.release();
}

void StreamTransport::finish_close() noexcept {
    closed_ = true;
    eof_sent_ = true;
    wbuf_.reset();
    sending_.reset();
    paused_ = false;
    if (loop_ != nullptr) {
        close_waiters_.notify_all();
        drain_waiters_.notify_all();
    }
    detach_server();
    if (closing_ref_) {
        closing_ref_ = false;
        release(); // may destroy this
    }
}

void StreamTransport::fatal_error(int err, const char* op) noexcept {
    if (conn_lost_) {
        return;
    }
    try {
        conn_lost_ = make_os_error(err, target(op));
    } catch (...) {
        conn_lost_ = std::current_exception();
    }
    if (!read_error_) {
        read_error_ = conn_lost_; // asyncio: connection_lost(exc) sets the reader's exception
    }
    wbuf_.clear();
    if (!send_in_flight_) {
        sending_.clear();
    }
    paused_ = false;
    if (loop_ != nullptr) {
        drain_waiters_.notify_all();
        feed_waiters_.notify_all();
    }
    cancel_read();
    close(); // asyncio's _force_close
    if (loop_ != nullptr) {
        loop_->defer_flush(*this); // close() did nothing if it was closing already
    }
}

std::string StreamTransport::target(const char* op) {
    if (!peer_ && kind_ == TransportKind::socket) {
        peername();
    }
    if (peer_) {
        return fmt::format("{} {}", op, peer_->to_string());
    }
    return fmt::format("{} fd {}", op, fd_ >= 0 ? fd_ : closing_fd_);
}

// ---- information ----

std::optional<SocketAddress> StreamTransport::peername() {
    if (!peer_ && kind_ == TransportKind::socket && fd_ >= 0) {
        SocketAddress a;
        socklen_t len = SocketAddress::capacity();
        if (::getpeername(fd_, a.data(), &len) == 0) {
            a.set_size(len);
            peer_ = a;
        }
    }
    return peer_;
}

std::optional<SocketAddress> StreamTransport::sockname() {
    if (!local_ && kind_ == TransportKind::socket && fd_ >= 0) {
        SocketAddress a;
        socklen_t len = SocketAddress::capacity();
        if (::getsockname(fd_, a.data(), &len) == 0) {
            a.set_size(len);
            local_ = a;
        }
    }
    return local_;
}

void StreamTransport::attach_server(ServerState& server) noexcept {
    server_ = &server;
    server.add_ref();
    server.connections_.push_back(*this);
}

void StreamTransport::detach_server() noexcept {
    if (ServerState* s = std::exchange(server_, nullptr)) {
        ListHook<ServerConnTag>::unlink();
        s->connection_closed(*this);
        s->release();
    }
}

// ---- the reader's coroutines ----
//
// Cancellation (issue 10, defect 2): a read never consumes bytes while its task has a
// cancellation pending. Each coroutine checks on entry, and FillAwaiter, their only suspension
// point, throws a cancellation that arrived together with the bytes after adding them to the
// buffer; between those checks and the consumption nothing suspends, so no cancellation can
// come in between. A cancelled read thus leaves everything it received in the buffer, where
// asyncio's _wait_for_data leaves it too.

namespace {

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
        std::string out(t.rbuf_.view());
        t.rbuf_.reset();
        co_return out;
    }
    if (t.rbuf_.empty() && !t.read_finished()) {
        co_await FillAwaiter(t, "read", 0);
    }
    t.throw_if_read_error();
    std::size_t k = std::min(static_cast<std::size_t>(n), t.rbuf_.size());
    std::string out(t.rbuf_.data(), k);
    t.rbuf_.consume(k);
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
    while (t.rbuf_.size() < n) {
        if (t.eof_) {
            std::string partial(t.rbuf_.view());
            t.rbuf_.clear();
            throw IncompleteReadError(std::move(partial), n);
        }
        co_await FillAwaiter(t, "readexactly", n - t.rbuf_.size());
    }
    std::string out(t.rbuf_.data(), n);
    t.rbuf_.consume(n);
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
        std::string_view buf = t.rbuf_.view();
        if (buf.size() - offset >= seplen) {
            std::size_t pos = buf.find(separator, offset);
            if (pos != std::string_view::npos) {
                isep = pos;
                break;
            }
            offset = buf.size() + 1 - seplen;
            if (offset > t.limit()) {
                if (line_mode) {
                    t.rbuf_.clear(); // asyncio's readline drops the buffer and raises ValueError
                    throw ValueError("Separator is not found, and chunk exceed the limit");
                }
                throw LimitOverrunError("Separator is not found, and chunk exceed the limit",
                                        offset);
            }
        }
        // A separator may have arrived together with EOF: look before giving up.
        if (t.eof_) {
            std::string chunk(buf);
            t.rbuf_.clear();
            if (line_mode) {
                co_return chunk;
            }
            throw IncompleteReadError(std::move(chunk), std::nullopt);
        }
        co_await FillAwaiter(t, line_mode ? "readline" : "readuntil", 0);
    }
    if (isep > t.limit()) {
        if (line_mode) {
            t.rbuf_.consume(isep + seplen); // the whole line goes, as in asyncio's readline
            throw ValueError("Separator is found, but chunk is longer than limit");
        }
        throw LimitOverrunError("Separator is found, but chunk is longer than limit", isep);
    }
    std::string out(t.rbuf_.data(), isep + seplen);
    t.rbuf_.consume(isep + seplen);
    co_return out;
}

} // namespace

} // namespace detail

// ---- StreamReader ----

StreamReader::StreamReader(std::size_t limit) {
    if (limit == 0) {
        throw ValueError("Limit cannot be <= 0");
    }
    t_ = detail::TransportRef(new detail::StreamTransport(
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
    detail::TransportRef reader_ref(t);
    if (peer != nullptr) {
        t->set_peername(*peer);
    }
    t->add_ref();
    detail::TransportRef writer_ref(t);
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
    co_return co_await detail::connect_first(
            std::move(infos), std::move(local), fmt::format("{}:{}", host, port), options);
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
