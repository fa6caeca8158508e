// SPDX-License-Identifier: MIT
// StreamTransport: the state StreamReader and StreamWriter share over one fd (asyncio's
// _SelectorSocketTransport, StreamReaderProtocol and the reader's buffer in one object), and
// ReadRequest, through which the reader's awaiters read from it. Reads are pulled: a recv is
// submitted only while a task waits for data, straight into the reader's buffer or the caller's
// span.
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/net/address.hpp>

#include <coring/detail/byte_buffer.hpp>
#include <coring/detail/frame_allocator.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/io_operation.hpp>
#include <coring/detail/owned_op.hpp>
#include <coring/detail/ref.hpp>
#include <coring/detail/task_base.hpp>
#include <coring/detail/wait_queue.hpp>

#include <liburing.h>

#include <any>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace coring::detail {

class ServerState;

struct ServerConnTag {};

/// How a transport moves bytes.
/// Kinds before `socket` have no fd and read what is fed (begin_read tests `kind < socket`).
enum class TransportKind : std::uint8_t {
    none,   // no fd: bytes arrive through feed_data (a StreamReader built by hand)
    memory, // no fd: one end of an in-memory pair; writes feed the peer's reader (link_memory)
    socket, // recv / send with MSG_NOSIGNAL; write_eof is shutdown(SHUT_WR)
    pipe,   // read / write (pipes, FIFOs, character devices); write_eof closes the fd
};

/// How one end of an in-memory pair delivers what is written to it to the other end's reader
/// (testing::open_stream_pair).
struct MemoryLinkOptions {
    /// What an injected failure does once `budget` bytes were delivered.
    enum class Failure : std::uint8_t {
        none,
        reset_reader, // the receiving reader's next wait for data fails with ConnectionResetError
        drop_peer,    // the receiving end goes away: its reader sees EOF, it closes
    };

    /// Largest piece delivered at once; the next piece goes when the reader waits for more.
    /// 0: as much as the receiving buffer takes.
    std::size_t chunk = 0;
    /// Bytes delivered before `failure` happens.
    std::size_t budget = static_cast<std::size_t>(-1);
    Failure failure = Failure::none;
};

/// The state behind a StreamReader / StreamWriter pair: the fd, the reader's buffer and limit,
/// the writer's buffers and flow control, the close state. Reference counted (loop thread only)
/// by the reader and writer handles, by awaiters while they wait, and by every operation in
/// flight that no coroutine frame owns (a send, a shutdown, a close).
///
/// Memory behind in-flight operations:
/// * a recv writes into rbuf_'s tail or into the awaiting caller's span; the awaiter holds a
///   reference, and nothing else touches rbuf_'s storage while reading_ is set;
/// * a send reads sending_, which nobody modifies until its completion; write() appends to
///   wbuf_, which no SQE references. The two swap when a send starts (double buffering);
/// * the transport stays alive while any of its operations is in flight (each holds a
///   reference), and from close() until the fd is closed; if the loop closes first,
///   on_loop_close() drops those references after the kernel has handed the operations back.
///   When the last handle goes with bytes still unsent, the transport closes itself after
///   sending them, as asyncio's transport outlives a dropped StreamWriter.
class ReadRequest;
class ReadOperation;

/// A byte transformation between the socket and the streams (TLS): the transport receives and
/// sends wire bytes through io_uring, the filter turns them into the reader's bytes and the
/// writer's bytes into wire bytes. It never touches the fd. Implemented by coring::tls.
class StreamFilter {
public:
    virtual ~StreamFilter() = default;

    /// Consumes the wire bytes in `in`, appending the bytes they carry to `out`. Returns true
    /// when the peer ended the stream cleanly (TLS close_notify). Throws the protocol error.
    virtual bool decrypt(ByteBuffer& in, ByteBuffer& out) = 0;

    /// Consumes `in` whole, appending wire bytes to `out`, together with any wire bytes the
    /// filter has to send for its own sake (a reply produced while decrypting). Throws the
    /// protocol error.
    virtual void encrypt(ByteBuffer& in, ByteBuffer& out) = 0;

    /// Whether the filter has wire bytes of its own to send (encrypt() would produce some).
    virtual bool wants_write() const noexcept = 0;

    /// Appends the closing message (TLS close_notify) to `out`.
    virtual void close_notify(ByteBuffer& out) noexcept = 0;

    /// The error for a peer that closed the connection without the closing message.
    virtual std::exception_ptr unexpected_eof() noexcept = 0;

    /// get_extra_info for the names the filter knows; an empty any for the others.
    virtual std::any extra_info(std::string_view name) const = 0;

    /// Whether write_eof (a half-close) is possible through the filter.
    virtual bool can_write_eof() const noexcept { return false; }
};

/// The state behind a StreamReader / StreamWriter pair: the fd, the reader's buffer and limit,
/// the writer's buffers and flow control, the close state. Reference counted (loop thread only)
/// by the reader and writer handles, by read requests while they wait, and by every operation
/// in flight that no coroutine frame owns (a send, a shutdown, a close, a filter's recv).
///
/// Reading has one owner: the transport. A reader's awaiter starts a read with begin_read
/// (a recv straight into the caller's span or into the reader's buffer, or, for a transport
/// without fd or with a filter, a wait for bytes to be fed), ends it with finish_read and, if
/// its task is destroyed while suspended, abandons it with abandon_read. The byte algorithms
/// (readline, readexactly ...) see only the buffer: buffered(), consume(), eof_received().
///
/// Memory behind in-flight operations:
/// * a recv writes into rbuf_'s tail or into the awaiting caller's span; the request holds a
///   reference, and nothing else touches rbuf_'s storage while a read is in flight;
/// * a send reads sending_, which nobody modifies until its completion; write() appends to
///   wbuf_, which no SQE references. The two swap when a send starts (double buffering);
/// * the transport stays alive while any of its operations is in flight (each holds a
///   reference), and from close() until the fd is closed; if the loop closes first,
///   on_loop_close() drops those references after the kernel has handed the operations back.
///   When the last handle goes with bytes still unsent, the transport closes itself after
///   sending them, as asyncio's transport outlives a dropped StreamWriter.
class StreamTransport final : public LoopResource,
                              public FlushNode,
                              public ListHook<ServerConnTag>,
                              public FrameAllocated {
public:
    static constexpr std::size_t default_limit = 64 * 1024;
    static constexpr std::size_t default_high_water = 64 * 1024;
    static constexpr std::size_t first_read_capacity = 16 * 1024;
    static constexpr std::size_t min_read_room = 4 * 1024;
    /// The most a read reserves ahead of the data it has: max(this, bytes buffered). Sizes a
    /// peer can influence (readexactly(n)) or a huge limit (read() to EOF reads blocks of
    /// limit) never allocate ahead of the data; the buffer grows as bytes arrive, doubling at
    /// most (issue 10, defect 4).
    static constexpr std::size_t max_read_ahead = 64 * 1024;
    static constexpr std::size_t max_io = 1u << 30; // bytes per recv/send SQE (len is 32-bit)

    /// A transport over fd (taken over; closed by the transport), or without fd for kind none.
    StreamTransport(EventLoop& loop, int fd, TransportKind kind, std::size_t limit);

    StreamTransport(const StreamTransport&) = delete;
    StreamTransport& operator=(const StreamTransport&) = delete;

    void add_ref() noexcept { ++refs_; }

    void release() noexcept {
        if (--refs_ == 0) {
            last_release();
        } else if (refs_ == 1 && filter_recv_op_.in_flight()) [[unlikely]] {
            // Only the filter's own recv holds the transport: every handle is gone (the task of
            // a waiting read was cancelled, say) and nobody will read what it brings. Close, as
            // last_release does, rather than keep the socket open until the peer sends or
            // closes (issue 12).
            close();
        }
    }

    // ---- the reader's buffer (what the byte algorithms see) ----

    /// The bytes received and not consumed yet.
    std::string_view buffered() const noexcept { return rbuf_.view(); }

    /// Drops the first n buffered bytes (n <= buffered().size()).
    void consume(std::size_t n) noexcept { rbuf_.consume(n); }

    /// Takes every buffered byte.
    std::string take_buffered() {
        std::string out(rbuf_.view());
        rbuf_.reset();
        return out;
    }

    /// Copies up to buf.size() buffered bytes into buf and consumes them.
    std::size_t take_into(std::span<char> buf) noexcept;

    /// Whether EOF was received (or fed, or the transport closed: asyncio's connection_lost
    /// feeds EOF).
    bool eof_received() const noexcept { return eof_; }

    /// Whether a read has nothing more to wait for: EOF seen or an error stored.
    bool read_finished() const noexcept { return eof_ || read_error_ != nullptr; }

    /// The reader's stored exception, or null.
    const std::exception_ptr& read_error() const noexcept { return read_error_; }

    /// Rethrows the stored read error, if any.
    void throw_if_read_error() const {
        if (read_error_) [[unlikely]] {
            std::rethrow_exception(read_error_);
        }
    }

    /// Throws CancelledError (and withdraws the pending cancellation) when the running task has
    /// a cancellation pending. Every read calls it before it consumes buffered bytes and right
    /// after a recv has added some, so that a cancelled read leaves its bytes in the buffer for
    /// the next read, as asyncio's _wait_for_data does (issue 10, defect 2): a recv the kernel
    /// completed before it saw the cancel request leaves the cancellation pending (the result
    /// wins), and a read returning its bytes then would have them dropped by its task.
    void throw_if_cancel_pending() const {
        // The running loop's task, not loop_'s: a read from another loop's thread must not read
        // loop_'s state before begin_read refuses it (they are the same loop otherwise).
        if (EventLoop* loop = EventLoop::running()) [[likely]] {
            if (TaskBase* task = loop->current_task()) {
                task->throw_if_cancel_pending();
            }
        }
    }

    /// Throws RuntimeError when another task already waits for data (asyncio's
    /// _wait_for_data check).
    void check_single_reader(const char* func) const {
        if (reading_) {
            throw_concurrent_read(func);
        }
    }

    // ---- the read interface (used by ReadRequest) ----

    /// Starts a read for r: into dest, or into the reader's buffer when dest is empty (with room
    /// for at least `want` bytes, within max_read_ahead). Returns true when r's recv is to be
    /// submitted, false when r waits for bytes to be fed (no fd, or a filter).
    bool begin_read(ReadRequest& r, std::span<char> dest, std::size_t want, const char* what);

    /// Records that r is suspended (its recv submitted, or it waits in the feed queue).
    void read_started() noexcept { reading_ = true; }

    /// Ends r's read: the bytes delivered into dest (0 when reading into the buffer, or at EOF).
    /// Bytes the kernel delivered to a task with a cancellation pending go to the buffer first.
    /// Throws: the read error; CancelledError.
    std::size_t finish_read(ReadRequest& r);

    /// Forgets r's read (its awaiter is destroyed while suspended: its task went with the loop).
    void abandon_read(ReadRequest& r) noexcept;

private:
    // begin_read's out-of-line parts: a read that waits to be fed, room in the reader's buffer.
    bool begin_fed_read(ReadRequest& r, const char* what);
    void reserve_read(ReadRequest& r, std::size_t want);

public:
    /// asyncio's StreamReader.feed_data / feed_eof / set_exception.
    void feed_data(std::string_view data);
    void feed_eof() noexcept;
    void set_exception(std::exception_ptr e) noexcept;

    // ---- writing ----

    /// Appends data to the write buffer; it leaves with the next iteration's io_uring_enter.
    /// After close() or a lost connection the data is dropped (see write_refused).
    /// Throws: RuntimeError after write_eof().
    void write(const char* p, std::size_t n) {
        if (n == 0) {
            return;
        }
        if (eof_requested_ || close_ != CloseState::open || conn_lost_) [[unlikely]] {
            write_refused(n);
            return;
        }
        wbuf_.append(p, n);
        if (!send_op_.in_flight()) {
            if (loop_->get_debug() && EventLoop::running() != loop_) [[unlikely]] {
                throw_wrong_loop("StreamWriter.write"); // debug mode only: writes are hot
            }
            detail::LoopAccess::defer_flush(*loop_, *this);
        }
        if (!paused_ && write_buffer_size() > high_water_) {
            paused_ = true; // asyncio's _maybe_pause_protocol
        }
    }

    /// Bytes written but not yet accepted by the kernel.
    std::size_t write_buffer_size() const noexcept { return wbuf_.size() + sending_.size(); }

    /// Whether drain() has to wait: the buffer went above the high-water mark and has not come
    /// back to the low-water mark yet, and the connection is still open.
    bool drain_must_wait() const noexcept {
        return paused_ && close_ == CloseState::open && !conn_lost_ && !read_error_;
    }

    /// Throws what drain() must throw: the reader's or the connection's error, or
    /// ConnectionResetError from close() on, however long the fd's close still takes (asyncio's
    /// drain after close raises "Connection lost").
    void check_drain() const {
        if (read_error_ || conn_lost_ || close_ != CloseState::open) [[unlikely]] {
            throw_drain_error();
        }
    }

    void set_write_buffer_limits(std::optional<std::size_t> high, std::optional<std::size_t> low);

    /// Whether the send buffers go back to the pool as soon as everything written is sent
    /// (instead of keeping up to 256 KiB for the next write): for servers with many idle
    /// keep-alive connections (coring::http's). The next write takes a buffer again.
    void set_release_send_buffers(bool on) noexcept { release_send_buffers_ = on; }

    std::size_t high_water() const noexcept { return high_water_; }

    std::size_t low_water() const noexcept { return low_water_; }

    /// Half-closes after the buffered data is sent (shutdown(SHUT_WR), or closing a pipe).
    /// Throws: RuntimeError through a filter that cannot half-close (TLS).
    void write_eof();

    bool can_write_eof() const noexcept {
        return kind_ != TransportKind::none && (filter_ == nullptr || filter_->can_write_eof());
    }

    /// Stops reading (a waiting read sees EOF), sends what is buffered (and the filter's
    /// closing message), then closes the fd. Idempotent.
    void close() noexcept;

    /// Closes at once, dropping buffered data (transport.abort()).
    void abort() noexcept;

    bool is_closing() const noexcept { return close_ != CloseState::open; }

    /// Whether the fd is closed (asyncio: connection_lost was called).
    bool closed() const noexcept { return close_ == CloseState::closed; }

    /// The error that ended the connection, or null.
    const std::exception_ptr& connection_error() const noexcept { return conn_lost_; }

    /// The writer's waiters: drain() and wait_closed().
    WaitQueue& drain_waiters() noexcept { return drain_waiters_; }

    WaitQueue& close_waiters() noexcept { return close_waiters_; }

    // ---- a filter (TLS) ----

    /// Puts f between the fd and the streams, from now on: bytes already buffered count as wire
    /// bytes for it. The caller has drained the writer (nothing unsent). From close() on, the
    /// connection is aborted if it has not closed within shutdown_timeout.
    void set_filter(std::unique_ptr<StreamFilter> f, std::chrono::milliseconds shutdown_timeout);

    StreamFilter* filter() const noexcept { return filter_.get(); }

    // ---- an in-memory pair (kind memory) ----

    /// Connects two transports of kind memory on one loop: what a's writer writes, b's reader
    /// reads (as a_to_b says), and the other way round. A receiving buffer takes up to twice
    /// its limit (asyncio pauses reading there) and more while its reader waits. Closing one end
    /// is EOF for the other; writing to an end that has closed fails with BrokenPipeError.
    /// Throws: ValueError when a transport is not of kind memory, is linked already, or the two
    /// are on different loops.
    static void link_memory(StreamTransport& a,
                            StreamTransport& b,
                            const MemoryLinkOptions& a_to_b,
                            const MemoryLinkOptions& b_to_a);

    // ---- information ----

    int fd() const noexcept { return fd_; }

    TransportKind kind() const noexcept { return kind_; }

    std::size_t limit() const noexcept { return limit_; }

    EventLoop* loop() const noexcept { return loop_; }

    /// The peer's address: known from connect, else getpeername (cached); nullopt when it
    /// cannot be had (not a socket, not connected).
    std::optional<SocketAddress> peername();

    /// The local address (getsockname, cached).
    std::optional<SocketAddress> sockname();

    /// Records the peer's address (known when we connected).
    void set_peername(const SocketAddress& a) { peer_ = a; }

    /// Counts the transport as one of server's connections until it closes.
    void attach_server(ServerState& server) noexcept;

    /// Whether the connection was accepted by a server (the server side of a TLS handshake).
    bool server_side() const noexcept { return server_side_; }

    void on_loop_close() noexcept override;

private:
    friend class ReadOperation;
    friend class ReadRequest;

    /// The close sequence.
    enum class CloseState : std::uint8_t {
        open,
        closing,    // close() (or an error): no more reads; the fd closes after the flush.
                    // close() holds a reference until the fd is closed.
        closing_fd, // the IORING_OP_CLOSE is in the kernel (close_op_)
        closed,     // the fd is closed
    };

    ~StreamTransport();

    void last_release() noexcept;
    [[noreturn]] void throw_drain_error() const;
    [[noreturn]] static void throw_concurrent_read(const char* func);
    [[noreturn]] void throw_wrong_loop(const char* what) const;
    std::size_t read_result_slow(int res);
    void write_refused(std::size_t n);

    /// Fills an SQE that reads up to n bytes at p: recv for sockets (waiting for readiness
    /// first when the last recv drained the socket), read for pipes.
    void prep_read(io_uring_sqe* sqe, char* p, std::size_t n) noexcept {
        unsigned len = n > max_io ? static_cast<unsigned>(max_io) : static_cast<unsigned>(n);
        if (kind_ == TransportKind::socket) {
            io_uring_prep_recv(sqe, fd_, p, len, 0);
            if (poll_first_) {
                sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
            }
        } else {
            io_uring_prep_read(sqe, fd_, p, len, static_cast<std::uint64_t>(-1));
        }
    }

    /// After a recv: whether the kernel said more data was waiting. When it did not, the next
    /// recv polls first (the data is not there yet, so an immediate attempt would only fail).
    void note_read_flags(unsigned cqe_flags) noexcept {
        poll_first_ = poll_first_supported_ && !(cqe_flags & IORING_CQE_F_SOCK_NONEMPTY);
    }

    /// The outcome of a recv: bytes (> 0), or 0 at EOF (recorded). A read cancelled because
    /// the transport closed counts as EOF. Errors end the connection and are thrown (asyncio's
    /// _fatal_error: the reader's exception, the writer's drain and wait_closed all raise it).
    std::size_t read_result(int res) {
        if (res > 0) [[likely]] {
            return static_cast<std::size_t>(res);
        }
        return read_result_slow(res);
    }

    static void flush_entry(FlushNode* node) noexcept;
    void flush() noexcept;
    bool flush_filter() noexcept;
    void submit_send() noexcept;
    void start_shutdown() noexcept;
    void start_close() noexcept;
    void cancel_read() noexcept;
    void finish_close() noexcept;
    void fatal_error(int err, const char* op) noexcept;
    /// Ends the connection with e (asyncio's _force_close): unsent bytes are dropped, drain()
    /// and wait_closed() raise e, and, with fail_reader, the reader too.
    void lose_connection(std::exception_ptr e, bool fail_reader) noexcept;
    void drop_writes_and_wake() noexcept;
    void filter_error(std::exception_ptr e) noexcept;
    void maybe_resume_writing() noexcept;
    void detach_server() noexcept;
    void start_filter_recv() noexcept;
    void filter_received() noexcept;
    static void flush_memory_entry(FlushNode* node) noexcept;
    void flush_memory() noexcept;
    bool deliver_memory(StreamTransport& to) noexcept;
    void memory_wants_data() noexcept;
    void memory_peer_gone() noexcept;
    void unlink_memory() noexcept;
    std::string target(const char* op);

    /// A free SQE, or null when the ring cannot give one (it is dead).
    io_uring_sqe* get_sqe() noexcept {
        if (io_uring_sqe* sqe = detail::LoopAccess::ring(*loop_).try_get_sqe()) [[likely]] {
            return sqe;
        }
        return get_sqe_slow();
    }

    io_uring_sqe* get_sqe_slow() noexcept;

    void on_send(int res, unsigned flags) noexcept;
    void on_shutdown(int res, unsigned flags) noexcept;
    void on_close(int res, unsigned flags) noexcept;
    void on_filter_recv(int res, unsigned flags) noexcept;

    EventLoop* loop_;     // null once the loop has closed
    int fd_;              // -1 once closed (or for kind none)
    int closing_fd_ = -1; // the fd being closed, for messages
    std::uint32_t refs_ = 1;
    TransportKind kind_;
    CloseState close_ = CloseState::open;
    std::size_t limit_;

    // The reader's state.
    ByteBuffer rbuf_;                  // received, not yet consumed
    ReadOperation* read_op_ = nullptr; // the reader's recv in flight
    WaitQueue feed_waiters_;           // readers waiting for bytes to be fed (no fd, or filter)
    std::exception_ptr read_error_;
    bool reading_ = false; // a task waits for data (one at a time, as asyncio)
    bool eof_ = false;     // EOF received (or fed)
    bool poll_first_ = false;
    bool poll_first_supported_ = false;

    // The writer's state.
    ByteBuffer wbuf_;    // written, not yet handed to the kernel
    ByteBuffer sending_; // handed to the kernel by the send in flight (or its unsent rest)
    std::size_t high_water_ = default_high_water;
    std::size_t low_water_ = default_high_water / 4;
    std::size_t lost_writes_ = 0;
    std::exception_ptr conn_lost_;
    WaitQueue drain_waiters_;
    WaitQueue close_waiters_;
    OwnedOp<StreamTransport, &StreamTransport::on_send> send_op_{this};
    OwnedOp<StreamTransport, &StreamTransport::on_shutdown> shutdown_op_{this};
    OwnedOp<StreamTransport, &StreamTransport::on_close> close_op_{this};

    bool paused_ = false;               // above the high-water mark: drain() waits
    bool aborted_ = false;              // abort(): buffered data is dropped, not sent
    bool eof_requested_ = false;        // write_eof() was called
    bool eof_sent_ = false;             // the shutdown (or pipe close) was done
    bool release_send_buffers_ = false; // set_release_send_buffers

    // A filter (TLS): the transport's own recv of wire bytes, made while a reader waits.
    std::unique_ptr<StreamFilter> filter_;
    ByteBuffer wire_in_; // wire bytes received, not yet decrypted
    OwnedOp<StreamTransport, &StreamTransport::on_filter_recv> filter_recv_op_{this};
    bool close_notify_sent_ = false;
    bool server_side_ = false;
    std::chrono::milliseconds shutdown_timeout_{0};
    TimerHandle shutdown_timer_; // aborts a close that takes longer than shutdown_timeout_

    std::optional<SocketAddress> peer_;
    std::optional<SocketAddress> local_;
    ServerState* server_ = nullptr;

    // An in-memory pair (kind memory): the other end (null once either end closed) and how
    // this end's writes reach it.
    struct MemoryLink {
        StreamTransport* peer = nullptr;
        MemoryLinkOptions options;
        bool failed = false; // the injected failure happened
        bool wanted = false; // the peer's reader waited for data since the last delivery
    };

    std::unique_ptr<MemoryLink> mem_;
};

/// An owning reference to a StreamTransport.
using TransportRef = Ref<StreamTransport>;

/// The recv (or read) of one ReadRequest, into the span the transport gave it.
class [[nodiscard]] ReadOperation final : public IoOperation<ReadOperation> {
public:
    explicit ReadOperation(StreamTransport& t) noexcept : t_(&t) {}

    ReadOperation(ReadOperation&& other) noexcept : IoOperation(std::move(other)), t_(other.t_) {}

    void prepare(io_uring_sqe* sqe) noexcept {
        t_->prep_read(sqe, p_, n_);
        t_->read_op_ = this;
    }

    const char* op_name() const noexcept {
        return t_->kind() == TransportKind::socket ? "StreamReader recv" : "StreamReader read";
    }

private:
    friend class StreamTransport;

    StreamTransport* t_;
    char* p_ = nullptr;
    std::size_t n_ = 0;
};

/// One wait for data by a reader's task, the common core of the reader's awaiters: a recv into
/// a span or into the reader's buffer, or a wait in the transport's feed queue. Holds a
/// reference to the transport while suspended.
class ReadRequest {
public:
    explicit ReadRequest(StreamTransport& t) noexcept : t_(&t), op_(t) {}

    /// Requests are moved only before they start (no wait node yet).
    ReadRequest(ReadRequest&& other) noexcept : t_(other.t_), op_(std::move(other.op_)) {}

    ReadRequest& operator=(const ReadRequest&) = delete;

    ~ReadRequest() {
        if (suspended_) {
            t_->abandon_read(*this);
            t_->release(); // last: the members do not touch the transport
        }
    }

    /// Suspends h until bytes arrive in dest (or, when dest is empty, in the reader's buffer).
    /// what: shown in task dumps while the request waits to be fed ("StreamReader.read_into").
    template <class Promise>
    void suspend(std::coroutine_handle<Promise> h,
                 std::span<char> dest,
                 std::size_t want,
                 const char* what) {
        if (t_->begin_read(*this, dest, want, what)) {
            op_.await_suspend(h);
        } else {
            wait_->await_suspend(h);
        }
        t_->read_started();
        t_->add_ref(); // the transport must outlive the recv writing through it
        suspended_ = true;
    }

    bool suspended() const noexcept { return suspended_; }

    StreamTransport& transport() const noexcept { return *t_; }

    /// After the resumption: the bytes delivered into dest (see StreamTransport::finish_read).
    std::size_t resume() {
        suspended_ = false;
        TransportRef hold(adopt_ref, t_); // the reference suspend took
        return t_->finish_read(*this);
    }

private:
    friend class StreamTransport;

    StreamTransport* t_;
    ReadOperation op_;
    std::optional<WaitNode> wait_; // engaged: the read waits to be fed, not for its own recv
    std::span<char> dest_;
    bool suspended_ = false;
};

// Inline: the common read (a recv into the caller's span) costs no call.
inline bool StreamTransport::begin_read(ReadRequest& r,
                                        std::span<char> dest,
                                        std::size_t want,
                                        const char* what) {
    // A stream stays on its loop: a read from another loop's task would submit into a ring
    // another thread owns (asyncio: "attached to a different loop"). Suspending reads only.
    if (loop_ != nullptr && EventLoop::running() != loop_) [[unlikely]] {
        throw_wrong_loop(what);
    }
    r.dest_ = dest;
    if (kind_ < TransportKind::socket || filter_ != nullptr) [[unlikely]] {
        return begin_fed_read(r, what);
    }
    if (dest.empty()) {
        reserve_read(r, want);
    } else {
        r.op_.p_ = dest.data();
        r.op_.n_ = dest.size();
    }
    return true;
}

/// Sets SIGPIPE to SIG_IGN once per process if it is still SIG_DFL (Python does so at start-up),
/// so writing to a pipe whose reader is gone fails with EPIPE instead of killing the program.
/// connect_write_pipe and the subprocess functions call it. Thread safety: any thread.
void ignore_sigpipe() noexcept;

} // namespace coring::detail
