// SPDX-License-Identifier: MIT
// StreamTransport: asyncio's socket transport and StreamReaderProtocol over io_uring, with an
// optional filter (TLS) between the fd and the streams.
#include <coring/log.hpp>

#include <coring/detail/stream_transport.hpp>
#include <coring/detail/sys.hpp>

#include <fmt/format.h>

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "server_state.hpp"

namespace coring::detail {

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
    // IORING_RECVSEND_POLL_FIRST came with Linux 5.19, as IORING_OP_SOCKET did; older kernels
    // refuse a recv whose ioprio is not zero.
    poll_first_supported_ = kind == TransportKind::socket &&
                            detail::LoopAccess::ring(loop).supports(IORING_OP_SOCKET);
    if (kind == TransportKind::memory) {
        flush_ = &StreamTransport::flush_memory_entry; // the socket's flush pays no test for it
    }
    detail::LoopAccess::register_resource(loop, *this);
}

StreamTransport::~StreamTransport() {
    unlink_memory();
    detach_server();
    if (fd_ >= 0) {
        close_fd(fd_);
    }
}

void StreamTransport::last_release() noexcept {
    if (loop_ != nullptr && close_ == CloseState::open &&
        (fd_ >= 0 || (mem_ != nullptr && mem_->peer != nullptr)) &&
        (!wbuf_.empty() || !sending_.empty())) {
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
    eof_ = true;
    read_op_ = nullptr;
    int held = 0;
    held += send_op_.forget() ? 1 : 0;
    held += shutdown_op_.forget() ? 1 : 0;
    held += filter_recv_op_.forget() ? 1 : 0;
    switch (close_) {
    case CloseState::open:
        close_ = CloseState::closing;
        break;
    case CloseState::closing:
        ++held; // close()'s reference
        break;
    case CloseState::closing_fd:
        // Submitted, so done: an IORING_OP_CLOSE runs when it is submitted.
        close_ = CloseState::closed;
        fd_ = -1;
        close_op_.forget();
        held += 2; // the operation's and close()'s
        break;
    case CloseState::closed:
        break;
    }
    StreamTransport* self = this;
    while (held-- > 0) {
        self->release();
    }
}

// ---- reading ----

void StreamTransport::throw_wrong_loop(const char* what) const {
    EventLoop* running = EventLoop::running();
    throw RuntimeError(fmt::format("{} is attached to a different loop (it belongs to {}, called "
                                   "on {})",
                                   what,
                                   loop_->describe(),
                                   running != nullptr ? running->describe() : "no loop"));
}

void StreamTransport::throw_concurrent_read(const char* func) {
    throw RuntimeError(fmt::format(
            "{}() called while another coroutine is already waiting for incoming data", func));
}

bool StreamTransport::begin_fed_read(ReadRequest& r, const char* what) {
    r.wait_.emplace(feed_waiters_, what);
    if (filter_ != nullptr) {
        start_filter_recv();
    } else if (mem_ != nullptr) {
        memory_wants_data(); // the peer's next piece, or its injected reset
    }
    return false;
}

void StreamTransport::reserve_read(ReadRequest& r, std::size_t want) {
    std::size_t room = want > min_read_room ? want : min_read_room;
    std::size_t ahead = rbuf_.size() > max_read_ahead ? rbuf_.size() : max_read_ahead;
    if (room > ahead) {
        room = ahead;
    }
    if (rbuf_.capacity() == 0 && room < first_read_capacity) {
        room = first_read_capacity;
    }
    rbuf_.reserve_tail(room);
    r.op_.p_ = rbuf_.tail();
    r.op_.n_ = rbuf_.room();
}

std::size_t StreamTransport::finish_read(ReadRequest& r) {
    reading_ = false;
    if (r.wait_) {
        r.wait_->await_resume(); // CancelledError
        throw_if_read_error();
        return r.dest_.empty() ? 0 : take_into(r.dest_);
    }
    read_op_ = nullptr;
    note_read_flags(r.op_.cqe_flags());
    std::size_t n = read_result(r.op_.result()); // CancelledError when the kernel saw the cancel
    if (r.dest_.empty()) {
        rbuf_.commit(n);
        throw_if_cancel_pending(); // the bytes stay in the buffer
        return 0;
    }
    if (r.op_.task().must_cancel()) [[unlikely]] {
        // The kernel completed the recv before it saw the cancel request: the bytes go back to
        // the reader's buffer (empty, or the recv would not have been made) for the next read,
        // and the read raises CancelledError (issue 10, defect 2).
        if (n > 0) {
            rbuf_.append(r.dest_.data(), n);
        }
        throw_if_cancel_pending();
    }
    return n;
}

void StreamTransport::abandon_read(ReadRequest& r) noexcept {
    reading_ = false;
    if (read_op_ == &r.op_) {
        read_op_ = nullptr;
    }
    if (r.wait_) {
        r.wait_->unlink(); // from feed_waiters_, if it waits there
    }
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
    if (read_op_ != nullptr || filter_recv_op_.in_flight()) {
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
    if (loop_ == nullptr) {
        return;
    }
    try {
        if (read_op_ != nullptr) {
            detail::LoopAccess::ring(*loop_).cancel(read_op_);
        }
        filter_recv_op_.cancel(detail::LoopAccess::ring(*loop_));
    } catch (...) {
        // A dead ring: the recv ends with the connection anyway.
    }
}

// ---- a filter (TLS) ----

void StreamTransport::set_filter(std::unique_ptr<StreamFilter> f,
                                 std::chrono::milliseconds shutdown_timeout) {
    filter_ = std::move(f);
    shutdown_timeout_ = shutdown_timeout;
    // What the reader buffered so far are wire bytes for the filter (they came after the
    // handshake's last message); decrypt what can be, now.
    if (!rbuf_.empty()) {
        wire_in_.swap(rbuf_);
    }
    filter_received();
}

void StreamTransport::start_filter_recv() noexcept {
    if (filter_recv_op_.in_flight() || read_finished() || close_ != CloseState::open ||
        loop_ == nullptr) {
        return;
    }
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) {
        fatal_error(EIO, "recv");
        return;
    }
    if (wire_in_.room() < min_read_room) {
        wire_in_.reserve_tail(wire_in_.capacity() == 0 ? first_read_capacity : min_read_room);
    }
    prep_read(sqe, wire_in_.tail(), wire_in_.room());
    filter_recv_op_.submit(detail::LoopAccess::ring(*loop_), sqe);
    add_ref();
}

void StreamTransport::on_filter_recv(int res, unsigned flags) noexcept {
    note_read_flags(flags);
    if (res > 0) {
        wire_in_.commit(static_cast<std::size_t>(res));
        filter_received();
    } else if (res == 0) {
        if (!eof_ && !read_error_) {
            read_error_ = filter_->unexpected_eof();
            feed_waiters_.notify_all();
        }
    } else if (res != -ECANCELED || !(eof_ || read_error_)) {
        fatal_error(-res, "recv");
    }
    release();
}

void StreamTransport::filter_received() noexcept {
    std::size_t before = rbuf_.size();
    bool clean_eof = false;
    try {
        clean_eof = filter_->decrypt(wire_in_, rbuf_);
    } catch (...) {
        filter_error(std::current_exception());
        return;
    }
    if (filter_->wants_write() && loop_ != nullptr) {
        detail::LoopAccess::defer_flush(*loop_, *this);
    }
    if (clean_eof) {
        eof_ = true;
    }
    if (rbuf_.size() > before || clean_eof) {
        if (loop_ != nullptr) {
            feed_waiters_.notify_all();
        }
    } else if (!feed_waiters_.empty()) {
        start_filter_recv(); // a record is half received: read its rest
    }
}

// The connection is gone: unsent bytes are dropped (the one in the kernel stays until its
// completion) and every waiter wakes to see why.
void StreamTransport::drop_writes_and_wake() noexcept {
    wbuf_.clear();
    if (!send_op_.in_flight()) {
        sending_.clear();
    }
    paused_ = false;
    if (loop_ != nullptr) {
        drain_waiters_.notify_all();
        feed_waiters_.notify_all();
    }
}

void StreamTransport::filter_error(std::exception_ptr e) noexcept {
    if (!read_error_) {
        read_error_ = e;
    }
    if (!conn_lost_) {
        conn_lost_ = std::move(e);
    }
    aborted_ = true; // nothing more goes out through a broken filter
    drop_writes_and_wake();
    close();
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
    if (close_ != CloseState::open || eof_requested_) {
        return;
    }
    if (filter_ != nullptr && !filter_->can_write_eof()) {
        throw RuntimeError("write_eof: SSL does not support half-closes");
    }
    eof_requested_ = true;
    if (loop_ != nullptr) {
        detail::LoopAccess::defer_flush(*loop_, *this);
    }
}

void StreamTransport::close() noexcept {
    if (close_ != CloseState::open) {
        return;
    }
    eof_ = true; // the reader sees EOF, as connection_lost feeds it in asyncio
    if (loop_ == nullptr) {
        if (fd_ >= 0) {
            sys.close(fd_);
            fd_ = -1;
        }
        close_ = CloseState::closed;
        detach_server();
        return;
    }
    close_ = CloseState::closing;
    add_ref(); // close()'s reference, released once the fd is closed (finish_close)
    feed_waiters_.notify_all();
    if (filter_ != nullptr) {
        // asyncio's ssl_shutdown_timeout: a peer that does not take the rest of the data and
        // the close_notify does not keep the connection open for ever.
        try {
            shutdown_timer_ = loop_->call_later(shutdown_timeout_, [this]() noexcept { abort(); });
        } catch (...) {
            // No timer: the close waits for the peer, as without TLS.
        }
    }
    cancel_read();
    detail::LoopAccess::defer_flush(*loop_, *this);
}

void StreamTransport::abort() noexcept {
    aborted_ = true;
    wbuf_.clear();
    if (!send_op_.in_flight()) {
        sending_.clear();
    }
    if (loop_ != nullptr) {
        send_op_.cancel(detail::LoopAccess::ring(*loop_));
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
    if (loop_ == nullptr || send_op_.in_flight() || shutdown_op_.in_flight() ||
        close_ >= CloseState::closing_fd) {
        return;
    }
    if (!conn_lost_ && !aborted_) {
        if (sending_.empty()) {
            if (filter_ != nullptr) [[unlikely]] {
                if (!flush_filter()) {
                    return;
                }
            } else if (!wbuf_.empty()) {
                sending_.swap(wbuf_); // wbuf_ takes the idle buffer; writes go on into it
            }
        }
        if (!sending_.empty()) {
            submit_send();
            return;
        }
        if (eof_requested_ && !eof_sent_ && close_ == CloseState::open) {
            if (kind_ == TransportKind::socket) {
                start_shutdown();
            } else {
                close(); // a pipe's EOF is its close
            }
            return;
        }
    }
    if (close_ == CloseState::closing) {
        start_close();
    }
}

bool StreamTransport::flush_filter() noexcept {
    try {
        if (!wbuf_.empty() || filter_->wants_write()) {
            filter_->encrypt(wbuf_, sending_);
        }
        if (close_ == CloseState::closing && !close_notify_sent_ && sending_.empty() &&
            wbuf_.empty()) {
            // close() sends close_notify after the data and does not wait for the peer's.
            close_notify_sent_ = true;
            filter_->close_notify(sending_);
        }
    } catch (...) {
        filter_error(std::current_exception());
        return false;
    }
    return true;
}

io_uring_sqe* StreamTransport::get_sqe_slow() noexcept {
    try {
        return detail::LoopAccess::ring(*loop_).get_sqe(); // submits a full SQ and retries
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
    send_op_.submit(detail::LoopAccess::ring(*loop_), sqe);
    add_ref();
}

// Inlined into send_op_'s completion function, its only caller: sends are on every request's path.
[[gnu::always_inline]] inline void StreamTransport::on_send(int res, unsigned) noexcept {
    if (res >= 0) {
        sending_.consume(static_cast<std::size_t>(res));
        if (sending_.empty()) {
            if (release_send_buffers_) {
                sending_.reset();
                if (wbuf_.empty()) {
                    wbuf_.reset(); // a filter's plaintext buffer, or the idle half
                }
            } else {
                sending_.shrink_if_idle(keep_send_capacity);
            }
        }
        if (aborted_) {
            sending_.clear();
        }
        maybe_resume_writing();
        if (!sending_.empty() || !wbuf_.empty() || eof_requested_ || close_ != CloseState::open) {
            // The rest, and whatever was written meanwhile, leave together with the next
            // io_uring_enter (which is also the earliest a new SQE would be submitted).
            detail::LoopAccess::defer_flush(*loop_, *this);
        }
    } else if (res == -ECANCELED && aborted_) {
        sending_.clear();
        detail::LoopAccess::defer_flush(*loop_, *this);
    } else {
        fatal_error(-res, kind_ == TransportKind::socket ? "send" : "write");
    }
    release();
}

void StreamTransport::start_shutdown() noexcept {
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) {
        eof_sent_ = true;
        return;
    }
    io_uring_prep_shutdown(sqe, fd_, SHUT_WR);
    shutdown_op_.submit(detail::LoopAccess::ring(*loop_), sqe);
    add_ref();
}

void StreamTransport::on_shutdown(int, unsigned) noexcept {
    // An error (ENOTCONN: the peer is gone) is the reader's business, as in asyncio where
    // the next recv reports it.
    eof_sent_ = true;
    if (close_ != CloseState::open || !wbuf_.empty()) {
        detail::LoopAccess::defer_flush(*loop_, *this);
    }
    release();
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
    close_op_.submit(detail::LoopAccess::ring(*loop_), sqe);
    closing_fd_ = fd_;
    fd_ = -1;
    close_ = CloseState::closing_fd;
    add_ref();
}

void StreamTransport::on_close(int, unsigned) noexcept {
    finish_close();
    release();
}

void StreamTransport::finish_close() noexcept {
    close_ = CloseState::closed;
    if (shutdown_timer_) {
        shutdown_timer_.cancel();
        shutdown_timer_ = TimerHandle();
    }
    eof_sent_ = true;
    wbuf_.reset();
    sending_.reset();
    paused_ = false;
    if (loop_ != nullptr) {
        close_waiters_.notify_all();
        drain_waiters_.notify_all();
    }
    detach_server();
    release(); // close()'s reference; may destroy this
}

void StreamTransport::fatal_error(int err, const char* op) noexcept {
    if (conn_lost_) {
        return;
    }
    std::exception_ptr e;
    try {
        e = make_os_error(err, target(op));
    } catch (...) {
        e = std::current_exception();
    }
    lose_connection(std::move(e), true);
}

void StreamTransport::lose_connection(std::exception_ptr e, bool fail_reader) noexcept {
    conn_lost_ = std::move(e);
    if (fail_reader && !read_error_) {
        read_error_ = conn_lost_; // asyncio: connection_lost(exc) sets the reader's exception
    }
    drop_writes_and_wake();
    cancel_read();
    close(); // asyncio's _force_close
    if (loop_ != nullptr) {
        // close() did nothing if it was closing already
        detail::LoopAccess::defer_flush(*loop_, *this);
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
    server_side_ = true;
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

} // namespace coring::detail
