// SPDX-License-Identifier: MIT
// Socket: creation and options through the syscall seam, closing through io_uring, and the
// results of the sock_* awaiters turned into exceptions.
#include <coring/event_loop.hpp>
#include <coring/net/socket.hpp>

#include <coring/detail/sys.hpp>

#include <fmt/format.h>

#include <cerrno>

namespace coring {

namespace detail {

void close_fd(int fd) noexcept {
    if (fd < 0) {
        return;
    }
    EventLoop* loop = EventLoop::running();
    if (loop != nullptr && detail::LoopAccess::ring(*loop).supports(IORING_OP_CLOSE)) {
        try {
            io_uring_sqe* sqe = detail::LoopAccess::ring(*loop).get_sqe();
            io_uring_prep_close(sqe, fd);
            io_uring_sqe_set_data64(sqe, ignored_user_data);
            return;
        } catch (...) {
            // The ring is unusable: fall back to close(2).
        }
    }
    sys.close(fd);
}

std::string fd_target(const char* op, int fd) {
    return fmt::format("{} fd {}", op, fd);
}

} // namespace detail

Socket::Socket(int family, int type, int protocol)
    : fd_(detail::sys.socket(family, type | SOCK_CLOEXEC, protocol)) {
    if (fd_ < 0) {
        throw_os_error(errno, "socket");
    }
}

void Socket::bind(const SocketAddress& address) {
    if (detail::sys.bind(fd_, address.data(), address.size()) != 0) {
        throw_os_error(errno, "bind " + address.to_string());
    }
}

void Socket::listen(int backlog) {
    if (detail::sys.listen(fd_, backlog) != 0) {
        throw_os_error(errno, detail::fd_target("listen", fd_));
    }
}

void Socket::setsockopt(int level, int name, int value) {
    if (detail::sys.setsockopt(fd_, level, name, &value, sizeof value) != 0) {
        throw_os_error(errno, fmt::format("setsockopt({}, {}) fd {}", level, name, fd_));
    }
}

int Socket::getsockopt(int level, int name) const {
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(fd_, level, name, &value, &len) != 0) {
        throw_os_error(errno, fmt::format("getsockopt({}, {}) fd {}", level, name, fd_));
    }
    return value;
}

SocketAddress Socket::getsockname() const {
    SocketAddress a;
    socklen_t len = SocketAddress::capacity();
    if (::getsockname(fd_, a.data(), &len) != 0) {
        throw_os_error(errno, detail::fd_target("getsockname", fd_));
    }
    a.set_size(len);
    return a;
}

SocketAddress Socket::getpeername() const {
    SocketAddress a;
    socklen_t len = SocketAddress::capacity();
    if (::getpeername(fd_, a.data(), &len) != 0) {
        throw_os_error(errno, detail::fd_target("getpeername", fd_));
    }
    a.set_size(len);
    return a;
}

std::pair<Socket, Socket> socketpair(int family, int type, int proto) {
    int fds[2];
    if (detail::sys.socketpair(family, type | SOCK_CLOEXEC, proto, fds) != 0) {
        throw_os_error(errno, "socketpair");
    }
    return {Socket::from_fd(fds[0]), Socket::from_fd(fds[1])};
}

// ---- awaiter results ----

void SocketCloseAwaiter::await_resume() {
    int res = result();
    if (res < 0) {
        throw_os_error(-res, detail::fd_target("close", fd_));
    }
}

void SocketShutdownAwaiter::await_resume() {
    int res = result();
    if (res < 0) {
        throw_os_error(-res, detail::fd_target("shutdown", fd_));
    }
}

std::size_t SockRecvIntoAwaiter::await_resume() {
    if (buf_.empty()) {
        return 0;
    }
    int res = result();
    if (res < 0) {
        throw_os_error(-res, detail::fd_target("recv", fd_));
    }
    return static_cast<std::size_t>(res);
}

std::string SockRecvAwaiter::await_resume() {
    if (data_.empty()) {
        return {};
    }
    int res = result();
    if (res < 0) {
        throw_os_error(-res, detail::fd_target("recv", fd_));
    }
    data_.resize(static_cast<std::size_t>(res));
    return std::move(data_);
}

std::size_t SockSendAwaiter::await_resume() {
    if (data_.empty()) {
        return 0;
    }
    int res = result();
    if (res < 0) {
        throw_os_error(-res, detail::fd_target("send", fd_));
    }
    return static_cast<std::size_t>(res);
}

void SockConnectAwaiter::await_resume() {
    int res = result();
    if (res < 0) {
        throw_os_error(-res, "connect " + address_.to_string());
    }
}

std::pair<Socket, SocketAddress> SockAcceptAwaiter::await_resume() {
    int res = result();
    if (res < 0) {
        throw_os_error(-res, detail::fd_target("accept", fd_));
    }
    Socket conn = Socket::from_fd(res);
    peer_.set_size(len_);
    return {std::move(conn), peer_};
}

std::size_t SockSendToAwaiter::await_resume() {
    int res = result();
    if (res < 0) {
        throw_os_error(-res,
                       to_.family() != AF_UNSPEC ? "sendto " + to_.to_string()
                                                 : detail::fd_target("send", fd_));
    }
    return static_cast<std::size_t>(res);
}

std::pair<std::size_t, SocketAddress> SockRecvFromIntoAwaiter::await_resume() {
    int res = result();
    if (res < 0) {
        throw_os_error(-res, detail::fd_target("recvfrom", fd_));
    }
    from_.set_size(msg_.msg_namelen);
    return {static_cast<std::size_t>(res), from_};
}

std::pair<std::string, SocketAddress> SockRecvFromAwaiter::await_resume() {
    int res = result();
    if (res < 0) {
        throw_os_error(-res, detail::fd_target("recvfrom", fd_));
    }
    from_.set_size(msg_.msg_namelen);
    data_.resize(static_cast<std::size_t>(res));
    return {std::move(data_), from_};
}

Task<> sock_sendall(Socket& sock, std::string_view data) {
    while (!data.empty()) {
        // MSG_WAITALL: on stream sockets io_uring keeps sending until all of it is queued.
        std::size_t n = co_await SockSendAwaiter(sock.fd(), data, MSG_WAITALL);
        data.remove_prefix(n);
    }
}

} // namespace coring
