// SPDX-License-Identifier: MIT
// SocketAddress (IPv4, IPv6, Unix) and awaitable getaddrinfo/getnameinfo run off the loop
// thread (asyncio's loop.getaddrinfo / loop.getnameinfo and the socket module's addresses).
#pragma once

#include <coring/task.hpp>

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace coring {

/// A socket address: IPv4, IPv6 or Unix domain (Python's address tuples and path strings).
/// Holds a sockaddr_storage, so it can be passed to the kernel as is.
///
///     auto a = coring::SocketAddress::ip("127.0.0.1", 8080);   // "127.0.0.1:8080"
///     auto b = coring::SocketAddress::ip("::1", 8080);         // "[::1]:8080"
///     auto c = coring::SocketAddress::unix_path("/tmp/app.sock");
class SocketAddress {
public:
    /// An empty address (AF_UNSPEC).
    SocketAddress() noexcept;

    /// A copy of a kernel address of len bytes. Throws: ValueError when len is too large.
    SocketAddress(const sockaddr* addr, socklen_t len);

    /// A numeric IPv4 or IPv6 address ("10.0.0.1", "::1", "fe80::1%2") and a port, or nullopt
    /// when host is not a numeric address. Never blocks.
    static std::optional<SocketAddress> parse(std::string_view host, std::uint16_t port);

    /// Like parse, but throws ValueError when host is not a numeric IPv4 or IPv6 address.
    static SocketAddress ip(std::string_view host, std::uint16_t port);

    /// The IPv4 address a.b.c.d given in host byte order, and a port.
    static SocketAddress ipv4(std::uint32_t host_order_address, std::uint16_t port) noexcept;

    /// A Unix domain socket path. A path starting with '\0' is in the abstract namespace (as in
    /// Python). Throws: ValueError when the path does not fit in sockaddr_un.
    static SocketAddress unix_path(std::string_view path);

    /// AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC when empty.
    int family() const noexcept { return storage_.ss_family; }

    bool is_ipv4() const noexcept { return family() == AF_INET; }

    bool is_ipv6() const noexcept { return family() == AF_INET6; }

    bool is_unix() const noexcept { return family() == AF_UNIX; }

    /// The address as the kernel takes it.
    const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }

    sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }

    /// Bytes of data() in use.
    socklen_t size() const noexcept { return len_; }

    /// Room for the kernel to write an address into data() (accept, recvfrom, getsockname):
    /// call with the length it wrote.
    void set_size(socklen_t len) noexcept { len_ = len; }

    static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }

    /// The numeric host of an IP address ("127.0.0.1", "::1", "fe80::1%2"); "" otherwise.
    std::string host() const;

    /// The port of an IP address; 0 otherwise.
    std::uint16_t port() const noexcept;

    /// The path of a Unix address ('\0' first for the abstract namespace; "" when unnamed).
    std::string path() const;

    /// "127.0.0.1:8080", "[::1]:8080", a Unix path ("@name" for the abstract namespace,
    /// "<unnamed>" for an unnamed socket), "<unspecified>" when empty.
    std::string to_string() const;

    friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

private:
    sockaddr_storage storage_;
    socklen_t len_;
};

/// A host name or numeric address held inline: owning, like a std::string, but trivially
/// destructible, so that option structs holding one are safe as braced temporaries inside
/// `co_await` with GCC 12 (docs/pitfalls.md). Converts from any string and to std::string_view.
class HostName {
public:
    /// The longest host accepted: a DNS name has at most 253 bytes, an IPv6 address with a zone
    /// far fewer.
    static constexpr std::size_t max_size = 255;

    /// The empty host.
    constexpr HostName() noexcept = default;

    /// A copy of host. Throws: ValueError when host is longer than max_size bytes.
    template <class S>

    requires(std::is_convertible_v<const S&, std::string_view> && !std::is_same_v<S, HostName>)
            HostName(
                    const S& host) { // NOLINT(google-explicit-constructor): a string, as in asyncio
        assign(std::string_view(host));
    }

    /// The host.
    std::string_view view() const noexcept { return {data_.data(), size_}; }

    operator std::string_view() const noexcept { return view(); } // NOLINT: a string

    /// The host as a std::string.
    std::string str() const { return std::string(view()); }

    bool empty() const noexcept { return size_ == 0; }

    friend bool operator==(const HostName& a, const HostName& b) noexcept {
        return a.view() == b.view();
    }

private:
    void assign(std::string_view host);

    std::array<char, max_size> data_{};
    std::uint8_t size_ = 0;
};

/// A host and a port, as asyncio's (host, port) tuples (local_addr=, remote_addr=). Trivially
/// destructible, so `{.local_addr = coring::HostPort{"127.0.0.1", 0}}` is safe as a braced
/// temporary inside `co_await` with GCC 12.
struct HostPort {
    HostName host;
    std::uint16_t port = 0;
};

static_assert(std::is_trivially_destructible_v<HostPort>);

/// One result of getaddrinfo (Python's 5-tuple (family, type, proto, canonname, sockaddr)).
struct AddrInfo {
    int family = 0;
    int type = 0;
    int protocol = 0;
    /// Set for the first result when AI_CANONNAME was asked for.
    std::string canonname;
    SocketAddress address;
};

/// The error category of getaddrinfo's EAI_* codes (messages from gai_strerror).
const std::error_category& gai_category() noexcept;

/// getaddrinfo or getnameinfo failed (Python's socket.gaierror): code() holds the EAI_* value
/// in gai_category(); what() names the call and the host ("getaddrinfo no.such.host:80: Name or
/// service not known").
class GaiError : public std::system_error {
public:
    GaiError(int eai_code, const std::string& what)
        : std::system_error(eai_code, gai_category(), what) {}
};

/// Resolves host and port into addresses (asyncio's loop.getaddrinfo). Numeric hosts and ports
/// resolve at once on the loop thread (with AI_NUMERICHOST a non-numeric host fails there too);
/// anything else runs ::getaddrinfo on the default executor (coring::to_thread). host "" is
/// Python's None (the wildcard with AI_PASSIVE, loopback otherwise); family, type, proto and
/// flags are getaddrinfo's hints.
/// Throws: GaiError; std::system_error for EAI_SYSTEM.
/// Cancellation: the lookup thread, if started, finishes on its own and its result is dropped.
[[nodiscard]] Task<std::vector<AddrInfo>> getaddrinfo(std::string host,
                                                      std::string port,
                                                      int family = 0,
                                                      int type = 0,
                                                      int proto = 0,
                                                      int flags = 0);

/// getaddrinfo with a numeric port.
[[nodiscard]] Task<std::vector<AddrInfo>> getaddrinfo(std::string host,
                                                      std::uint16_t port,
                                                      int family = 0,
                                                      int type = 0,
                                                      int proto = 0,
                                                      int flags = 0);

/// The host and service names of address (asyncio's loop.getnameinfo). With NI_NUMERICHOST and
/// NI_NUMERICSERV it answers on the loop thread; otherwise on the default executor.
/// Throws: GaiError.
[[nodiscard]] Task<std::pair<std::string, std::string>> getnameinfo(SocketAddress address,
                                                                    int flags = 0);

namespace detail {

/// The numeric fast path of getaddrinfo: results when host and port are numeric (or when
/// AI_NUMERICHOST makes a non-numeric host an immediate error, thrown), nullopt when the real
/// resolver must run.
std::optional<std::vector<AddrInfo>> resolve_numeric(const std::string& host,
                                                     const std::string& port,
                                                     int family,
                                                     int type,
                                                     int proto,
                                                     int flags);

/// ::getaddrinfo, blocking; converts its results and errors. Runs on an executor thread.
std::vector<AddrInfo> resolve_blocking(const std::string& host,
                                       const std::string& port,
                                       int family,
                                       int type,
                                       int proto,
                                       int flags);

} // namespace detail

} // namespace coring
