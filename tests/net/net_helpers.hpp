// SPDX-License-Identifier: MIT
// Helpers shared by the net tests: IPv6 detection, temporary directories, free ports.
#pragma once

#include <coring/net/socket.hpp>
#include <coring/streams.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace coring::test {

/// Whether ::1 can be bound (some CI containers have no IPv6).
inline bool ipv6_available() {
    int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

/// A fresh directory under $TMPDIR, removed with its contents at destruction.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "coring-test-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        path_ = tmpl;
    }

    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }

    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

/// A loopback port nothing listens on (bound, then closed again).
inline std::uint16_t unused_port() {
    Socket s(AF_INET, SOCK_STREAM);
    s.bind(SocketAddress::ip("127.0.0.1", 0));
    std::uint16_t port = s.getsockname().port();
    ::close(s.release());
    return port;
}

/// The port a server listens on.
inline std::uint16_t port_of(const Server& server) {
    return server.sockets().at(0).getsockname().port();
}

} // namespace coring::test
