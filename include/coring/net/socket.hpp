// SPDX-License-Identifier: MIT
// Socket, an RAII socket fd, and the low-level socket operations of asyncio's loop
// (sock_accept, sock_connect, sock_recv, sock_recv_into, sock_sendall, sock_sendto,
// sock_recvfrom), each one io_uring operation.
#pragma once

#include <coring/errors.hpp>
#include <coring/net/address.hpp>
#include <coring/task.hpp>

#include <coring/detail/io_operation.hpp>

#include <liburing.h>

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace coring {

class Socket;

namespace detail {

/// Closes fd without a blocking system call when it can: through the io_uring of the loop
/// running on this thread (an untracked IORING_OP_CLOSE submitted with the loop's next
/// io_uring_enter), with close(2) when no loop runs here. Never throws.
void close_fd(int fd) noexcept;

/// "recv fd 7": the target of an error on a socket whose peer is not known.
std::string fd_target(const char* op, int fd);

/// Prepares a recvmsg of n bytes at p that also records the sender in from.
inline void prep_recvfrom(io_uring_sqe* sqe,
                          int fd,
                          char* p,
                          std::size_t n,
                          SocketAddress& from,
                          iovec& iov,
                          msghdr& msg) noexcept {
    iov = {p, n};
    msg = {};
    msg.msg_name = from.data();
    msg.msg_namelen = SocketAddress::capacity();
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    io_uring_prep_recvmsg(sqe, fd, &msg, 0);
}

} // namespace detail

/// Awaiter of Socket::close(): an io_uring close; yields nothing.
class [[nodiscard]] SocketCloseAwaiter final : public detail::IoOperation<SocketCloseAwaiter> {
public:
    explicit SocketCloseAwaiter(int fd) noexcept : fd_(fd) {}

    bool await_ready() const noexcept { return fd_ < 0; }

    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_close(sqe, fd_); }

    const char* op_name() const noexcept { return "Socket.close"; }

    /// Throws: std::system_error from close(2) (the fd is gone either way).
    void await_resume();

private:
    int fd_;
};

/// Awaiter of Socket::shutdown(): an io_uring shutdown.
class [[nodiscard]] SocketShutdownAwaiter final
    : public detail::IoOperation<SocketShutdownAwaiter> {
public:
    SocketShutdownAwaiter(int fd, int how) noexcept : fd_(fd), how_(how) {}

    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_shutdown(sqe, fd_, how_); }

    const char* op_name() const noexcept { return "Socket.shutdown"; }

    /// Throws: std::system_error (ENOTCONN, ...).
    void await_resume();

private:
    int fd_;
    int how_;
};

/// An owned socket file descriptor (Python's socket.socket, always used through the loop).
/// Move-only. Created with SOCK_CLOEXEC; the blocking mode does not matter to io_uring, so
/// sockets are left blocking (asyncio makes them non-blocking for its selector).
///
/// Closing: `co_await sock.close()` closes through io_uring and reports errors. The destructor
/// closes an fd still open without blocking: through the io_uring of the loop running on this
/// thread (the close is submitted with the loop's next io_uring_enter), or with close(2) when
/// no loop runs on this thread.
class Socket {
public:
    /// No socket (fd -1).
    Socket() noexcept = default;

    /// socket(family, type | SOCK_CLOEXEC, protocol).
    /// Throws: std::system_error "socket" (EMFILE, EAFNOSUPPORT, ...).
    Socket(int family, int type, int protocol = 0);

    /// Takes ownership of fd.
    static Socket from_fd(int fd) noexcept {
        Socket s;
        s.fd_ = fd;
        return s;
    }

    Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

    Socket& operator=(Socket&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }

    ~Socket() { reset(); }

    /// The file descriptor, or -1.
    int fd() const noexcept { return fd_; }

    explicit operator bool() const noexcept { return fd_ >= 0; }

    /// Gives up ownership: returns the fd, leaves this empty.
    int release() noexcept { return std::exchange(fd_, -1); }

    /// Closes the fd now, without waiting (see the class comment); leaves this empty.
    void reset() noexcept { detail::close_fd(std::exchange(fd_, -1)); }

    /// Closes the fd through io_uring (socket.close()); this is empty at once.
    /// Throws: std::system_error from close(2).
    [[nodiscard]] SocketCloseAwaiter close() noexcept { return SocketCloseAwaiter(release()); }

    /// Shuts down one or both directions through io_uring (socket.shutdown(how)); how is
    /// SHUT_RD, SHUT_WR or SHUT_RDWR. Throws: std::system_error.
    [[nodiscard]] SocketShutdownAwaiter shutdown(int how) noexcept {
        return SocketShutdownAwaiter(fd_, how);
    }

    /// bind(2). Throws: std::system_error "bind <address>" (EADDRINUSE, ...).
    void bind(const SocketAddress& address);

    /// listen(2). Throws: std::system_error.
    void listen(int backlog = 100);

    /// setsockopt(2) with an int value. Throws: std::system_error.
    void setsockopt(int level, int name, int value);

    /// getsockopt(2) of an int option. Throws: std::system_error.
    int getsockopt(int level, int name) const;

    /// The local address (getsockname). Throws: std::system_error.
    SocketAddress getsockname() const;

    /// The peer's address (getpeername). Throws: std::system_error (ENOTCONN).
    SocketAddress getpeername() const;

    /// SO_DOMAIN: AF_INET, AF_INET6, AF_UNIX, ...
    int family() const { return getsockopt(SOL_SOCKET, SO_DOMAIN); }

    /// SO_TYPE: SOCK_STREAM, SOCK_DGRAM, ...
    int type() const { return getsockopt(SOL_SOCKET, SO_TYPE); }

private:
    int fd_ = -1;
};

/// A pair of connected sockets (socket.socketpair()).
/// Throws: std::system_error.
std::pair<Socket, Socket> socketpair(int family = AF_UNIX, int type = SOCK_STREAM, int proto = 0);

// ---- awaiters of the sock_* operations ----

/// Awaiter of sock_recv_into and sock_recv: one IORING_OP_RECV.
class [[nodiscard]] SockRecvIntoAwaiter final : public detail::IoOperation<SockRecvIntoAwaiter> {
public:
    SockRecvIntoAwaiter(int fd, std::span<char> buf, int flags) noexcept
        : fd_(fd), buf_(buf), flags_(flags) {}

    bool await_ready() const noexcept { return buf_.empty(); }

    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_recv(sqe, fd_, buf_.data(), buf_.size(), flags_);
    }

    const char* op_name() const noexcept { return "sock_recv"; }

    /// Bytes received; 0 at EOF. Throws: std::system_error "recv fd N".
    std::size_t await_resume();

private:
    int fd_;
    std::span<char> buf_;
    int flags_;
};

/// Awaiter of sock_recv: receives into a string it owns, yields it.
class [[nodiscard]] SockRecvAwaiter final : public detail::IoOperation<SockRecvAwaiter> {
public:
    SockRecvAwaiter(int fd, std::size_t n) : fd_(fd), data_(n, '\0') {}

    bool await_ready() const noexcept { return data_.empty(); }

    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_recv(sqe, fd_, data_.data(), data_.size(), 0);
    }

    const char* op_name() const noexcept { return "sock_recv"; }

    /// The bytes received; empty at EOF. Throws: std::system_error "recv fd N".
    std::string await_resume();

private:
    int fd_;
    std::string data_;
};

/// Awaiter of sock_send: one IORING_OP_SEND with MSG_NOSIGNAL.
class [[nodiscard]] SockSendAwaiter final : public detail::IoOperation<SockSendAwaiter> {
public:
    SockSendAwaiter(int fd, std::string_view data, int flags) noexcept
        : fd_(fd), data_(data), flags_(flags) {}

    bool await_ready() const noexcept { return data_.empty(); }

    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_send(sqe, fd_, data_.data(), data_.size(), flags_ | MSG_NOSIGNAL);
    }

    const char* op_name() const noexcept { return "sock_send"; }

    /// Bytes sent. Throws: std::system_error "send fd N" (BrokenPipeError, ...).
    std::size_t await_resume();

private:
    int fd_;
    std::string_view data_;
    int flags_;
};

/// Awaiter of sock_connect: one IORING_OP_CONNECT.
class [[nodiscard]] SockConnectAwaiter final : public detail::IoOperation<SockConnectAwaiter> {
public:
    SockConnectAwaiter(int fd, const SocketAddress& address) noexcept
        : fd_(fd), address_(address) {}

    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_connect(sqe, fd_, address_.data(), address_.size());
    }

    const char* op_name() const noexcept { return "sock_connect"; }

    /// Throws: std::system_error "connect <address>" (ConnectionRefusedError, ...).
    void await_resume();

private:
    int fd_;
    SocketAddress address_;
};

/// Awaiter of sock_accept: one IORING_OP_ACCEPT (SOCK_CLOEXEC).
class [[nodiscard]] SockAcceptAwaiter final : public detail::IoOperation<SockAcceptAwaiter> {
public:
    explicit SockAcceptAwaiter(int fd) noexcept : fd_(fd) {}

    void prepare(io_uring_sqe* sqe) noexcept {
        len_ = SocketAddress::capacity();
        io_uring_prep_accept(sqe, fd_, peer_.data(), &len_, SOCK_CLOEXEC);
    }

    const char* op_name() const noexcept { return "sock_accept"; }

    /// The new connection and the peer's address. Throws: std::system_error "accept fd N".
    std::pair<Socket, SocketAddress> await_resume();

private:
    int fd_;
    socklen_t len_ = 0;
    SocketAddress peer_;
};

/// Awaiter of sock_sendto: one IORING_OP_SENDMSG with the destination in msg_name.
class [[nodiscard]] SockSendToAwaiter final : public detail::IoOperation<SockSendToAwaiter> {
public:
    SockSendToAwaiter(int fd, std::string_view data, const SocketAddress* to) noexcept
        : fd_(fd), data_(data), to_(to != nullptr ? *to : SocketAddress()) {}

    void prepare(io_uring_sqe* sqe) noexcept {
        iov_ = {const_cast<char*>(data_.data()), data_.size()};
        msg_ = {};
        if (to_.family() != AF_UNSPEC) {
            msg_.msg_name = to_.data();
            msg_.msg_namelen = to_.size();
        }
        msg_.msg_iov = &iov_;
        msg_.msg_iovlen = 1;
        io_uring_prep_sendmsg(sqe, fd_, &msg_, MSG_NOSIGNAL);
    }

    const char* op_name() const noexcept { return "sock_sendto"; }

    /// Bytes sent. Throws: std::system_error "sendto <address>".
    std::size_t await_resume();

private:
    int fd_;
    std::string_view data_;
    SocketAddress to_;
    iovec iov_{};
    msghdr msg_{};
};

/// Awaiter of sock_recvfrom_into: one IORING_OP_RECVMSG that also yields the sender.
class [[nodiscard]] SockRecvFromIntoAwaiter final
    : public detail::IoOperation<SockRecvFromIntoAwaiter> {
public:
    SockRecvFromIntoAwaiter(int fd, std::span<char> buf) noexcept : fd_(fd), buf_(buf) {}

    void prepare(io_uring_sqe* sqe) noexcept {
        detail::prep_recvfrom(sqe, fd_, buf_.data(), buf_.size(), from_, iov_, msg_);
    }

    const char* op_name() const noexcept { return "sock_recvfrom"; }

    /// Bytes received and the sender. Throws: std::system_error "recvfrom fd N".
    std::pair<std::size_t, SocketAddress> await_resume();

private:
    int fd_;
    std::span<char> buf_;
    SocketAddress from_;
    iovec iov_{};
    msghdr msg_{};
};

/// Awaiter of sock_recvfrom: receives into a string it owns.
class [[nodiscard]] SockRecvFromAwaiter final : public detail::IoOperation<SockRecvFromAwaiter> {
public:
    SockRecvFromAwaiter(int fd, std::size_t n) : fd_(fd), data_(n, '\0') {}

    void prepare(io_uring_sqe* sqe) noexcept {
        detail::prep_recvfrom(sqe, fd_, data_.data(), data_.size(), from_, iov_, msg_);
    }

    const char* op_name() const noexcept { return "sock_recvfrom"; }

    /// The datagram (or stream bytes) and the sender. Throws: std::system_error.
    std::pair<std::string, SocketAddress> await_resume();

private:
    int fd_;
    std::string data_;
    SocketAddress from_;
    iovec iov_{};
    msghdr msg_{};
};

// ---- the sock_* operations (asyncio's loop.sock_*) ----

/// Receives up to buf.size() bytes into buf (loop.sock_recv_into); yields the count, 0 at EOF.
/// Throws: std::system_error "recv fd N" (ConnectionResetError, ...).
/// Cancellation: the recv is cancelled in the kernel; bytes it had already received win.
[[nodiscard]] inline SockRecvIntoAwaiter sock_recv_into(Socket& sock, std::span<char> buf) {
    return SockRecvIntoAwaiter(sock.fd(), buf, 0);
}

/// Receives up to n bytes (loop.sock_recv); yields them, "" at EOF.
/// Throws: std::system_error. Cancellation: as sock_recv_into.
[[nodiscard]] inline SockRecvAwaiter sock_recv(Socket& sock, std::size_t n) {
    return SockRecvAwaiter(sock.fd(), n);
}

/// Sends what one send(2) takes of data (socket.send through the loop); yields the count.
/// data must stay alive until the co_await returns.
/// Throws: std::system_error "send fd N" (BrokenPipeError, ConnectionResetError, ...).
[[nodiscard]] inline SockSendAwaiter sock_send(Socket& sock, std::string_view data) {
    return SockSendAwaiter(sock.fd(), data, 0);
}

/// Sends all of data (loop.sock_sendall), as few sends as the kernel allows.
/// Throws: std::system_error. Cancellation: part of data may have been sent.
[[nodiscard]] Task<> sock_sendall(Socket& sock, std::string_view data);

/// Connects to address (loop.sock_connect).
/// Throws: std::system_error "connect <address>" (ConnectionRefusedError, ...).
/// Cancellation: the connect is cancelled in the kernel; the socket is then unusable.
[[nodiscard]] inline SockConnectAwaiter sock_connect(Socket& sock, const SocketAddress& address) {
    return SockConnectAwaiter(sock.fd(), address);
}

/// Accepts a connection on a listening socket (loop.sock_accept); yields (connection, address).
/// Throws: std::system_error "accept fd N" (EMFILE, ...).
/// Cancellation: the accept is cancelled in the kernel; nothing is accepted.
[[nodiscard]] inline SockAcceptAwaiter sock_accept(Socket& sock) {
    return SockAcceptAwaiter(sock.fd());
}

/// Sends one datagram to address (loop.sock_sendto); yields the bytes sent.
/// Throws: std::system_error "sendto <address>".
[[nodiscard]] inline SockSendToAwaiter
sock_sendto(Socket& sock, std::string_view data, const SocketAddress& address) {
    return SockSendToAwaiter(sock.fd(), data, &address);
}

/// Receives one datagram of at most n bytes (loop.sock_recvfrom); yields (data, sender).
/// Throws: std::system_error "recvfrom fd N".
[[nodiscard]] inline SockRecvFromAwaiter sock_recvfrom(Socket& sock, std::size_t n) {
    return SockRecvFromAwaiter(sock.fd(), n);
}

/// Receives one datagram into buf (loop.sock_recvfrom_into); yields (bytes, sender).
/// Throws: std::system_error "recvfrom fd N".
[[nodiscard]] inline SockRecvFromIntoAwaiter sock_recvfrom_into(Socket& sock, std::span<char> buf) {
    return SockRecvFromIntoAwaiter(sock.fd(), buf);
}

} // namespace coring
