// SPDX-License-Identifier: MIT
// DatagramEndpoint and create_datagram_endpoint (asyncio.base_events.create_datagram_endpoint).
#include <coring/net/datagram.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <vector>

namespace coring {

namespace detail {

void DatagramState::close() noexcept {
    if (closed_) {
        return;
    }
    closed_ = true;
    // Cancel the receives first: a recvmsg in the kernel holds the socket open, and would wait
    // for a datagram that nobody reads any more.
    receiving_.for_each([](DatagramRecvBase& r) { r.cancel_for_close(); });
    sock_.reset();
}

void throw_datagram_closed() {
    throw std::system_error(EBADF, std::system_category(), "recvfrom: the endpoint is closed");
}

void throw_datagram_error(int err, int fd) {
    throw_os_error(err, fd_target("recvfrom", fd));
}

} // namespace detail

DatagramEndpoint::DatagramEndpoint(Socket sock, std::optional<SocketAddress> peer)
    : s_(detail::adopt_ref, new detail::DatagramState(std::move(sock), std::move(peer))) {
}

SockSendToAwaiter DatagramEndpoint::sendto(std::string_view data, const SocketAddress& address) {
    if (s_->peer_ && !(*s_->peer_ == address)) {
        throw ValueError(
                fmt::format("Invalid address: must be None or {}", s_->peer_->to_string()));
    }
    return SockSendToAwaiter(s_->sock_.fd(), data, s_->peer_ ? nullptr : &address);
}

SockSendToAwaiter DatagramEndpoint::sendto(std::string_view data) {
    if (!s_->peer_) {
        throw ValueError("sendto without an address needs a connected endpoint (remote_addr)");
    }
    return SockSendToAwaiter(s_->sock_.fd(), data, nullptr);
}

std::any DatagramEndpoint::get_extra_info(std::string_view name, std::any default_value) const {
    if (s_ == nullptr || s_->closed_) {
        return default_value;
    }
    if (name == "sockname") {
        return s_->sock_.getsockname();
    }
    if (name == "peername" && s_->peer_) {
        return *s_->peer_;
    }
    if (name == "socket") {
        return s_->sock_.fd();
    }
    return default_value;
}

Task<DatagramEndpoint> create_datagram_endpoint(DatagramOptions options) {
    if (!options.local_addr && !options.remote_addr && options.family == AF_UNSPEC) {
        throw ValueError("unexpected address family: give local_addr, remote_addr or family");
    }
    std::vector<AddrInfo> local;
    std::vector<AddrInfo> remote;
    if (options.local_addr) {
        local = co_await getaddrinfo(options.local_addr->host.str(),
                                     options.local_addr->port,
                                     options.family,
                                     SOCK_DGRAM,
                                     options.proto,
                                     options.flags | AI_PASSIVE);
    }
    if (options.remote_addr) {
        remote = co_await getaddrinfo(options.remote_addr->host.str(),
                                      options.remote_addr->port,
                                      options.family,
                                      SOCK_DGRAM,
                                      options.proto,
                                      options.flags);
    }

    // The (family, local, remote) combinations to try, as asyncio pairs them by family.
    struct Candidate {
        int family;
        const AddrInfo* local;
        const AddrInfo* remote;
    };

    std::vector<Candidate> candidates;
    if (!remote.empty()) {
        for (const AddrInfo& r : remote) {
            const AddrInfo* l = nullptr;
            for (const AddrInfo& li : local) {
                if (li.family == r.family) {
                    l = &li;
                    break;
                }
            }
            if (options.local_addr && l == nullptr) {
                continue;
            }
            candidates.push_back({r.family, l, &r});
        }
    } else if (!local.empty()) {
        for (const AddrInfo& l : local) {
            candidates.push_back({l.family, &l, nullptr});
        }
    } else {
        candidates.push_back({options.family, nullptr, nullptr});
    }
    if (candidates.empty()) {
        throw ValueError("local_addr and remote_addr have no address family in common");
    }
    std::exception_ptr last;
    for (const Candidate& c : candidates) {
        Socket sock;
        bool ready = false;
        try {
            sock = Socket(c.family, SOCK_DGRAM, options.proto);
            if (options.reuse_port) {
                sock.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1);
            }
            if (options.allow_broadcast) {
                sock.setsockopt(SOL_SOCKET, SO_BROADCAST, 1);
            }
            if (c.local != nullptr) {
                sock.bind(c.local->address);
            }
            ready = true;
        } catch (const std::system_error&) {
            last = std::current_exception();
        }
        if (!ready) {
            continue;
        }
        if (c.remote == nullptr) {
            co_return DatagramEndpoint(std::move(sock));
        }
        bool connected = false;
        try {
            co_await sock_connect(sock, c.remote->address);
            connected = true;
        } catch (const std::system_error&) {
            last = std::current_exception();
        }
        if (connected) {
            co_return DatagramEndpoint(std::move(sock), c.remote->address);
        }
    }
    std::rethrow_exception(last);
}

} // namespace coring
