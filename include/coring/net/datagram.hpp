// SPDX-License-Identifier: MIT
// DatagramEndpoint: an awaitable UDP endpoint, coring's form of asyncio's
// loop.create_datagram_endpoint (recvfrom / sendto instead of protocol callbacks).
#pragma once

#include <coring/errors.hpp>
#include <coring/net/address.hpp>
#include <coring/net/socket.hpp>
#include <coring/task.hpp>

#include <coring/detail/frame_allocator.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/io_operation.hpp>
#include <coring/detail/ref.hpp>

#include <liburing.h>

#include <sys/socket.h>
#include <sys/uio.h>

#include <any>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace coring {

/// One datagram and its sender.
struct Datagram {
    std::string data;
    SocketAddress address;
};

namespace detail {

struct DatagramTag {};

class DatagramRecvBase;

/// What a DatagramEndpoint's copies share: the socket, the connected peer, the receives in
/// flight (cancelled by close()). Reference counted, loop thread only.
class DatagramState : public FrameAllocated {
public:
    DatagramState(Socket sock, std::optional<SocketAddress> peer) noexcept
        : sock_(std::move(sock)), peer_(std::move(peer)) {}

    void add_ref() noexcept { ++refs_; }

    void release() noexcept {
        if (--refs_ == 0) {
            delete this;
        }
    }

    /// Closes the socket; receives in flight end with an error.
    void close() noexcept;

    Socket sock_;
    std::optional<SocketAddress> peer_;
    IntrusiveList<DatagramRecvBase, DatagramTag> receiving_;
    std::uint32_t refs_ = 1;
    bool closed_ = false;
};

/// A receive in flight on a DatagramEndpoint, listed so that close() can cancel it.
class DatagramRecvBase : public ListHook<DatagramTag> {
public:
    /// Cancels the receive in the kernel (close()).
    virtual void cancel_for_close() noexcept = 0;

protected:
    ~DatagramRecvBase() = default;
};

/// Throws the error a receive cancelled by close() raises: "recvfrom: endpoint is closed".
[[noreturn]] void throw_datagram_closed();

/// Throws the error of a failed recvmsg.
[[noreturn]] void throw_datagram_error(int err, int fd);

} // namespace detail

/// Awaiter of DatagramEndpoint::recvfrom (Owned: the datagram in a string it allocates) and
/// recvfrom_into (into the caller's span): one IORING_OP_RECVMSG.
template <bool Owned>
class [[nodiscard]] DatagramRecvAwaiter final
    : public detail::IoOperation<DatagramRecvAwaiter<Owned>>,
      public detail::DatagramRecvBase {
public:
    using Result = std::conditional_t<Owned, Datagram, std::pair<std::size_t, SocketAddress>>;

    DatagramRecvAwaiter(detail::DatagramState& s, std::size_t max_size) requires Owned
        : s_(&s),
          data_(max_size, '\0'),
          buf_(data_.data(), data_.size()) {
        s.add_ref();
    }

    DatagramRecvAwaiter(detail::DatagramState& s, std::span<char> buf) requires(!Owned)
        : s_(&s), buf_(buf) {
        s.add_ref();
    }

    /// Awaiters are moved only before they are awaited (create_task(ep.recvfrom())).
    DatagramRecvAwaiter(DatagramRecvAwaiter&& other) noexcept
        : detail::IoOperation<DatagramRecvAwaiter>(std::move(other)), s_(other.s_),
          data_(std::move(other.data_)), buf_(other.buf_) {
        if constexpr (Owned) {
            buf_ = std::span<char>(data_.data(), data_.size());
        }
        s_->add_ref();
    }

    DatagramRecvAwaiter& operator=(const DatagramRecvAwaiter&) = delete;

    ~DatagramRecvAwaiter() {
        unlink(); // from the state's list, before the state may go
        s_->release();
    }

    bool await_ready() const {
        if (s_->closed_) {
            detail::throw_datagram_closed();
        }
        return false;
    }

    void prepare(io_uring_sqe* sqe) noexcept {
        detail::prep_recvfrom(sqe, s_->sock_.fd(), buf_.data(), buf_.size(), from_, iov_, msg_);
        s_->receiving_.push_back(*this);
    }

    const char* op_name() const noexcept { return "DatagramEndpoint.recvfrom"; }

    void cancel_for_close() noexcept override {
        unlink();
        closed_ = true;
        try {
            detail::LoopAccess::ring(this->loop()).cancel(this);
        } catch (...) {
            // A dead ring: the receive ends with it.
        }
    }

    /// Throws: std::system_error; std::system_error(EBADF) when the endpoint was closed
    /// while waiting; CancelledError.
    Result await_resume() {
        unlink();
        int res = this->result();
        if (res < 0) {
            if (closed_ && res == -ECANCELED) {
                detail::throw_datagram_closed();
            }
            detail::throw_datagram_error(-res, s_->sock_.fd());
        }
        from_.set_size(msg_.msg_namelen);
        if constexpr (Owned) {
            data_.resize(static_cast<std::size_t>(res));
            return Datagram{std::move(data_), from_};
        } else {
            return {static_cast<std::size_t>(res), from_};
        }
    }

private:
    detail::DatagramState* s_;
    std::string data_;
    std::span<char> buf_;
    SocketAddress from_;
    iovec iov_{};
    msghdr msg_{};
    bool closed_ = false;
};

/// Options of create_datagram_endpoint (asyncio's keyword arguments), designed for designated
/// initialisers: `{.local_addr = coring::HostPort{"127.0.0.1", 0}}`.
struct DatagramOptions {
    /// Bind to this address (port 0: any free port).
    std::optional<HostPort> local_addr{};
    /// Connect to this address: sendto(data) and recvfrom talk to it only.
    std::optional<HostPort> remote_addr{};
    /// AF_UNSPEC, AF_INET or AF_INET6.
    int family = AF_UNSPEC;
    int proto = 0;
    /// getaddrinfo flags.
    int flags = 0;
    /// SO_REUSEPORT.
    bool reuse_port = false;
    /// SO_BROADCAST.
    bool allow_broadcast = false;
};

// WORKAROUND(gcc-12): trivially destructible, so a braced temporary inside co_await is safe
// (GCC 12 destroys its members twice otherwise; see ConnectOptions).
static_assert(std::is_trivially_destructible_v<DatagramOptions>);

/// A UDP endpoint (asyncio's DatagramTransport with the protocol turned into awaitables).
/// Copies share the endpoint; when the last goes, the socket is closed.
///
///     auto ep = co_await coring::create_datagram_endpoint(
///             {.local_addr = coring::HostPort{"127.0.0.1", 9999}});
///     auto [data, from] = co_await ep.recvfrom();
///     co_await ep.sendto(data, from);
class DatagramEndpoint {
public:
    DatagramEndpoint() noexcept = default;

    /// An endpoint over a datagram socket; peer is the address it is connected to, if any.
    explicit DatagramEndpoint(Socket sock, std::optional<SocketAddress> peer = std::nullopt);

    /// Sends one datagram to address (transport.sendto(data, addr)); yields the bytes sent.
    /// data must stay alive until the co_await returns.
    /// Throws: ValueError when the endpoint is connected to another address;
    /// std::system_error "sendto <address>".
    [[nodiscard]] SockSendToAwaiter sendto(std::string_view data, const SocketAddress& address);

    /// Sends one datagram to the connected peer (transport.sendto(data)).
    /// Throws: ValueError when not connected; std::system_error.
    [[nodiscard]] SockSendToAwaiter sendto(std::string_view data);

    /// Receives one datagram of at most max_size bytes (longer ones are truncated), with its
    /// sender (protocol.datagram_received).
    /// Throws: std::system_error (ECONNREFUSED after an ICMP error on a connected endpoint:
    /// asyncio's error_received); std::system_error(EBADF) when closed while waiting.
    [[nodiscard]] DatagramRecvAwaiter<true> recvfrom(std::size_t max_size = 65536) {
        return DatagramRecvAwaiter<true>(*s_, max_size);
    }

    /// Receives one datagram into buf; yields (bytes, sender). No allocation.
    [[nodiscard]] DatagramRecvAwaiter<false> recvfrom_into(std::span<char> buf) {
        return DatagramRecvAwaiter<false>(*s_, buf);
    }

    /// Closes the socket; receives waiting end with std::system_error(EBADF). Idempotent.
    void close() noexcept {
        if (s_ != nullptr) {
            s_->close();
        }
    }

    /// Whether close() was called.
    bool is_closing() const noexcept { return s_ == nullptr || s_->closed_; }

    /// "sockname", "peername" (SocketAddress), "socket" (the fd, int); default_value otherwise.
    std::any get_extra_info(std::string_view name, std::any default_value = {}) const;

    /// The local address.
    SocketAddress sockname() const { return s_->sock_.getsockname(); }

    /// The connected peer, if any.
    const std::optional<SocketAddress>& peername() const noexcept { return s_->peer_; }

    /// The socket, for options.
    Socket& socket() const noexcept { return s_->sock_; }

    explicit operator bool() const noexcept { return static_cast<bool>(s_); }

private:
    detail::Ref<detail::DatagramState> s_;
};

/// Creates a UDP endpoint (asyncio's loop.create_datagram_endpoint): resolves local_addr
/// and remote_addr, binds and/or connects the socket.
/// Throws: GaiError; std::system_error "bind ..." / "connect ..."; ValueError when neither
/// address nor family is given.
[[nodiscard]] Task<DatagramEndpoint> create_datagram_endpoint(DatagramOptions options);

} // namespace coring
