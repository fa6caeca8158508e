// SPDX-License-Identifier: MIT
// SocketAddress, and getaddrinfo/getnameinfo: numeric fast path on the loop thread, the real
// resolver on the default executor (asyncio's base_events._ipaddr_info and loop.getaddrinfo).
#include <coring/errors.hpp>
#include <coring/executor.hpp>
#include <coring/net/address.hpp>

#include <fmt/format.h>

#include <arpa/inet.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <memory>

namespace coring {

// ---- SocketAddress ----

SocketAddress::SocketAddress() noexcept : storage_{}, len_(0) {
    storage_.ss_family = AF_UNSPEC;
}

SocketAddress::SocketAddress(const sockaddr* addr, socklen_t len) : storage_{}, len_(len) {
    if (len > sizeof storage_) {
        throw ValueError(fmt::format("socket address of {} bytes is too large", len));
    }
    std::memcpy(&storage_, addr, len);
    if (len < sizeof(sa_family_t)) {
        storage_.ss_family = AF_UNSPEC;
    }
}

namespace {

bool parse_uint(std::string_view text, std::uint32_t max, std::uint32_t& out) noexcept {
    if (text.empty()) {
        return false;
    }
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc() && p == end && out <= max;
}

} // namespace

std::optional<SocketAddress> SocketAddress::parse(std::string_view host, std::uint16_t port) {
    if (host.empty() || host.size() >= INET6_ADDRSTRLEN + 16) {
        return std::nullopt;
    }
    char text[INET6_ADDRSTRLEN + 16];
    std::memcpy(text, host.data(), host.size());
    text[host.size()] = '\0';
    SocketAddress a;
    in_addr v4{};
    if (::inet_pton(AF_INET, text, &v4) == 1) {
        auto& sin = reinterpret_cast<sockaddr_in&>(a.storage_);
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        sin.sin_addr = v4;
        a.len_ = sizeof(sockaddr_in);
        return a;
    }
    // IPv6, optionally with a numeric zone ("fe80::1%2"); interface names need a lookup.
    std::uint32_t scope = 0;
    if (char* pct = std::strchr(text, '%')) {
        if (!parse_uint(std::string_view(pct + 1), 0xffffffffu, scope)) {
            return std::nullopt;
        }
        *pct = '\0';
    }
    in6_addr v6{};
    if (::inet_pton(AF_INET6, text, &v6) == 1) {
        auto& sin6 = reinterpret_cast<sockaddr_in6&>(a.storage_);
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port);
        sin6.sin6_addr = v6;
        sin6.sin6_scope_id = scope;
        a.len_ = sizeof(sockaddr_in6);
        return a;
    }
    return std::nullopt;
}

SocketAddress SocketAddress::ip(std::string_view host, std::uint16_t port) {
    if (auto a = parse(host, port)) {
        return *a;
    }
    throw ValueError(fmt::format("'{}' is not a numeric IPv4 or IPv6 address", host));
}

SocketAddress SocketAddress::ipv4(std::uint32_t host_order_address, std::uint16_t port) noexcept {
    SocketAddress a;
    auto& sin = reinterpret_cast<sockaddr_in&>(a.storage_);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(host_order_address);
    a.len_ = sizeof(sockaddr_in);
    return a;
}

SocketAddress SocketAddress::unix_path(std::string_view path) {
    SocketAddress a;
    auto& sun = reinterpret_cast<sockaddr_un&>(a.storage_);
    bool abstract = !path.empty() && path[0] == '\0';
    // A filesystem path keeps its terminating NUL inside sun_path; an abstract name need not.
    std::size_t limit = abstract ? sizeof sun.sun_path : sizeof sun.sun_path - 1;
    if (path.size() > limit) {
        throw ValueError(fmt::format(
                "Unix socket path of {} bytes is too long (at most {})", path.size(), limit));
    }
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, path.data(), path.size());
    a.len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                    (abstract ? 0 : 1));
    return a;
}

std::string SocketAddress::host() const {
    char text[INET6_ADDRSTRLEN + 16];
    if (is_ipv4()) {
        const auto& sin = reinterpret_cast<const sockaddr_in&>(storage_);
        ::inet_ntop(AF_INET, &sin.sin_addr, text, sizeof text);
        return text;
    }
    if (is_ipv6()) {
        const auto& sin6 = reinterpret_cast<const sockaddr_in6&>(storage_);
        ::inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof text);
        std::string out = text;
        if (sin6.sin6_scope_id != 0) {
            out += fmt::format("%{}", sin6.sin6_scope_id);
        }
        return out;
    }
    return {};
}

std::uint16_t SocketAddress::port() const noexcept {
    if (is_ipv4()) {
        return ntohs(reinterpret_cast<const sockaddr_in&>(storage_).sin_port);
    }
    if (is_ipv6()) {
        return ntohs(reinterpret_cast<const sockaddr_in6&>(storage_).sin6_port);
    }
    return 0;
}

std::string SocketAddress::path() const {
    if (!is_unix() || len_ <= offsetof(sockaddr_un, sun_path)) {
        return {};
    }
    const auto& sun = reinterpret_cast<const sockaddr_un&>(storage_);
    std::size_t n = len_ - offsetof(sockaddr_un, sun_path);
    if (sun.sun_path[0] == '\0') {
        return std::string(sun.sun_path, n);
    }
    return std::string(sun.sun_path, ::strnlen(sun.sun_path, n));
}

std::string SocketAddress::to_string() const {
    switch (family()) {
    case AF_INET:
        return fmt::format("{}:{}", host(), port());
    case AF_INET6:
        return fmt::format("[{}]:{}", host(), port());
    case AF_UNIX: {
        std::string p = path();
        if (p.empty()) {
            return "<unnamed>";
        }
        if (p[0] == '\0') {
            p[0] = '@';
        }
        return p;
    }
    default:
        return "<unspecified>";
    }
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
    return a.len_ == b.len_ && a.family() == b.family() &&
           std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
}

// ---- errors ----

namespace {

class GaiCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "getaddrinfo"; }

    std::string message(int ev) const override { return ::gai_strerror(ev); }
};

[[noreturn]] void throw_gai(int code, int saved_errno, const std::string& what) {
    if (code == EAI_SYSTEM) {
        throw_os_error(saved_errno, what);
    }
    throw GaiError(code, what);
}

std::string describe_target(const std::string& host, const std::string& port) {
    return fmt::format("{}:{}", host.empty() ? "<none>" : host, port.empty() ? "<none>" : port);
}

} // namespace

void HostName::assign(std::string_view host) {
    if (host.size() > max_size) {
        throw ValueError(fmt::format(
                "host name of {} bytes: at most {} are allowed", host.size(), max_size));
    }
    std::memcpy(data_.data(), host.data(), host.size());
    size_ = static_cast<std::uint8_t>(host.size());
}

const std::error_category& gai_category() noexcept {
    static const GaiCategory category;
    return category;
}

// ---- resolution ----

namespace detail {

std::optional<std::vector<AddrInfo>> resolve_numeric(const std::string& host,
                                                     const std::string& port,
                                                     int family,
                                                     int type,
                                                     int proto,
                                                     int flags) {
    std::uint32_t port_number = 0;
    if (!port.empty() && !parse_uint(port, 65535, port_number)) {
        if (flags & AI_NUMERICSERV) {
            throw_gai(EAI_NONAME, 0, "getaddrinfo " + describe_target(host, port));
        }
        return std::nullopt; // a service name: /etc/services must be read
    }
    if (host.empty()) {
        return std::nullopt; // the wildcard or loopback: let the system pick and order them
    }
    std::optional<SocketAddress> address =
            SocketAddress::parse(host, static_cast<std::uint16_t>(port_number));
    if (!address) {
        if (flags & AI_NUMERICHOST) {
            throw_gai(EAI_NONAME, 0, "getaddrinfo " + describe_target(host, port));
        }
        return std::nullopt;
    }
    if (family != AF_UNSPEC && family != address->family()) {
        return std::nullopt; // AI_V4MAPPED and the errors for a mismatch are the system's
    }

    struct Kind {
        int type;
        int proto;
    };

    Kind kinds[3];
    std::size_t count = 0;
    if (type == 0) {
        // What glibc answers for a numeric host without a socket type.
        kinds[count++] = {SOCK_STREAM, IPPROTO_TCP};
        kinds[count++] = {SOCK_DGRAM, IPPROTO_UDP};
        kinds[count++] = {SOCK_RAW, 0};
        if (proto != 0) {
            return std::nullopt;
        }
    } else if (type == SOCK_STREAM) {
        kinds[count++] = {SOCK_STREAM, proto != 0 ? proto : IPPROTO_TCP};
    } else if (type == SOCK_DGRAM) {
        kinds[count++] = {SOCK_DGRAM, proto != 0 ? proto : IPPROTO_UDP};
    } else {
        return std::nullopt;
    }
    std::vector<AddrInfo> out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        AddrInfo info;
        info.family = address->family();
        info.type = kinds[i].type;
        info.protocol = kinds[i].proto;
        info.address = *address;
        if (i == 0 && (flags & AI_CANONNAME)) {
            info.canonname = host;
        }
        out.push_back(std::move(info));
    }
    return out;
}

std::vector<AddrInfo> resolve_blocking(const std::string& host,
                                       const std::string& port,
                                       int family,
                                       int type,
                                       int proto,
                                       int flags) {
    addrinfo hints{};
    hints.ai_family = family;
    hints.ai_socktype = type;
    hints.ai_protocol = proto;
    hints.ai_flags = flags;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(),
                           port.empty() ? nullptr : port.c_str(),
                           &hints,
                           &res);
    if (rc != 0) {
        throw_gai(rc, errno, "getaddrinfo " + describe_target(host, port));
    }
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, &::freeaddrinfo);
    std::vector<AddrInfo> out;
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        AddrInfo info;
        info.family = ai->ai_family;
        info.type = ai->ai_socktype;
        info.protocol = ai->ai_protocol;
        if (ai->ai_canonname != nullptr) {
            info.canonname = ai->ai_canonname;
        }
        info.address = SocketAddress(ai->ai_addr, ai->ai_addrlen);
        out.push_back(std::move(info));
    }
    return out;
}

} // namespace detail

Task<std::vector<AddrInfo>>
getaddrinfo(std::string host, std::string port, int family, int type, int proto, int flags) {
    if (auto fast = detail::resolve_numeric(host, port, family, type, proto, flags)) {
        co_return std::move(*fast);
    }
    co_return co_await to_thread(&detail::resolve_blocking,
                                 std::move(host),
                                 std::move(port),
                                 family,
                                 type,
                                 proto,
                                 flags);
}

Task<std::vector<AddrInfo>>
getaddrinfo(std::string host, std::uint16_t port, int family, int type, int proto, int flags) {
    return getaddrinfo(std::move(host), std::to_string(port), family, type, proto, flags);
}

namespace {

std::pair<std::string, std::string> name_info_blocking(const SocketAddress& address, int flags) {
    char host[NI_MAXHOST];
    char service[NI_MAXSERV];
    int rc = ::getnameinfo(
            address.data(), address.size(), host, sizeof host, service, sizeof service, flags);
    if (rc != 0) {
        throw_gai(rc, errno, "getnameinfo " + address.to_string());
    }
    return {host, service};
}

} // namespace

Task<std::pair<std::string, std::string>> getnameinfo(SocketAddress address, int flags) {
    if ((flags & NI_NUMERICHOST) && (flags & NI_NUMERICSERV)) {
        co_return name_info_blocking(address, flags); // numeric: no lookup, no I/O
    }
    co_return co_await to_thread(&name_info_blocking, address, flags);
}

} // namespace coring
