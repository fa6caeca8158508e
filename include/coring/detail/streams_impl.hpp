// SPDX-License-Identifier: MIT
// The machinery behind <coring/streams.hpp> (asyncio.streams): the awaiters of
// StreamReader::read_into, StreamWriter::drain and StreamWriter::wait_closed, the interface a TLS
// context offers the streams, and Server's reference policy. Users include <coring/streams.hpp>,
// which includes this header before its API.
#pragma once

#include <coring/task.hpp>

#include <coring/detail/stream_transport.hpp>
#include <coring/detail/wait_queue.hpp>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

namespace coring {

class StreamReader;
class StreamWriter;

namespace detail {

/// Which end of a TLS connection a handshake plays.
enum class TlsRole : std::uint8_t { client, server };

/// What the streams need from an SSL context (coring::tls::SslContext implements it), so the
/// core needs no TLS library: the handshake over an open reader/writer pair, after which the
/// transport encrypts and decrypts through a filter.
class TlsProvider {
public:
    /// Runs the handshake (within handshake_timeout: TimeoutError) and puts the TLS filter on
    /// the pair's transport. server_hostname: SNI and the name to verify; empty for neither.
    [[nodiscard]] virtual Task<> wrap(StreamReader& reader,
                                      StreamWriter& writer,
                                      TlsRole role,
                                      std::string_view server_hostname,
                                      std::chrono::milliseconds handshake_timeout,
                                      std::chrono::milliseconds shutdown_timeout) const = 0;

    /// A reference that keeps the context alive (for servers, which outlive the call).
    virtual std::shared_ptr<const TlsProvider> retain() const = 0;

protected:
    ~TlsProvider() = default;
};

} // namespace detail

/// Awaiter of StreamReader::read_into. With nothing buffered it is one recv straight into the
/// caller's span: no copy, no allocation.
class [[nodiscard]] ReadIntoAwaiter {
public:
    ReadIntoAwaiter(detail::StreamTransport& t, std::span<char> buf) noexcept
        : req_(t), buf_(buf) {}

    /// Awaiters are moved only before they start.
    ReadIntoAwaiter(ReadIntoAwaiter&& other) noexcept
        : req_(std::move(other.req_)), buf_(other.buf_) {}

    ReadIntoAwaiter& operator=(const ReadIntoAwaiter&) = delete;

    bool await_ready() const {
        detail::StreamTransport& t = req_.transport();
        t.check_single_reader("read_into");
        return !t.buffered().empty() || buf_.empty() || t.read_finished();
    }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        req_.suspend(h, buf_, buf_.size(), "StreamReader.read_into");
    }

    /// The bytes read, 0 at EOF. Throws: the read error; CancelledError.
    std::size_t await_resume() {
        if (req_.suspended()) {
            return req_.resume();
        }
        detail::StreamTransport& t = req_.transport();
        t.throw_if_read_error();
        t.throw_if_cancel_pending(); // before taking bytes (issue 10, defect 2)
        return t.take_into(buf_);
    }

private:
    detail::ReadRequest req_;
    std::span<char> buf_;
};

/// Awaiter of StreamWriter::drain: ready at once below the high-water mark.
class [[nodiscard]] DrainAwaiter {
public:
    explicit DrainAwaiter(detail::StreamTransport& t) noexcept : t_(&t) {}

    /// Awaiters are moved only before they are awaited (create_task(writer.drain())).
    DrainAwaiter(DrainAwaiter&& other) noexcept : t_(other.t_) {}

    DrainAwaiter& operator=(const DrainAwaiter&) = delete;

    ~DrainAwaiter() {
        if (suspended_) {
            wait_.reset(); // its list lives in the transport
            t_->release();
        }
    }

    bool await_ready() const noexcept { return !t_->drain_must_wait(); }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        wait_.emplace(t_->drain_waiters(), "StreamWriter.drain");
        wait_->await_suspend(h);
        t_->add_ref();
        suspended_ = true;
    }

    /// Throws: the connection's error (ConnectionResetError, BrokenPipeError, ...);
    /// ConnectionResetError when the transport is closed; CancelledError.
    void await_resume() {
        if (suspended_) {
            wait_->await_resume();
        }
        t_->check_drain();
    }

private:
    detail::StreamTransport* t_;
    std::optional<detail::WaitNode> wait_; // only when drain has to wait
    bool suspended_ = false;
};

/// Awaiter of StreamWriter::wait_closed.
class [[nodiscard]] WaitClosedAwaiter {
public:
    explicit WaitClosedAwaiter(detail::StreamTransport& t) noexcept
        : t_(&t), wait_(t.close_waiters(), "StreamWriter.wait_closed") {
        t.add_ref();
    }

    /// Awaiters are moved only before they are awaited (create_task(writer.wait_closed())).
    WaitClosedAwaiter(WaitClosedAwaiter&& other) noexcept
        : t_(std::exchange(other.t_, nullptr)), wait_(std::move(other.wait_)) {}

    WaitClosedAwaiter& operator=(const WaitClosedAwaiter&) = delete;

    ~WaitClosedAwaiter() {
        if (t_ != nullptr) {
            wait_.unlink(); // its list lives in the transport
            t_->release();
        }
    }

    bool await_ready() const noexcept { return t_->closed(); }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        wait_.await_suspend(h);
        suspended_ = true;
    }

    /// Throws: the error that ended the connection, if one did; CancelledError.
    void await_resume() {
        if (suspended_) {
            wait_.await_resume();
        }
        if (t_->connection_error()) {
            std::rethrow_exception(t_->connection_error());
        }
    }

private:
    detail::StreamTransport* t_;
    detail::WaitNode wait_;
    bool suspended_ = false;
};

namespace detail {
class ServerState;

/// Server's Ref policy: a Server counts in the state's handle count (the last one closes the
/// server), which together holds one reference to the state.
struct ServerHandleCount {
    static void add_ref(ServerState* s) noexcept;
    static void release(ServerState* s) noexcept;
};
} // namespace detail

} // namespace coring
