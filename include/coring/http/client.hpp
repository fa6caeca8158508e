// SPDX-License-Identifier: MIT
// ClientSession and ClientResponse: an HTTP(S) client as aiohttp's, on libcurl's multi-socket
// API driven by the event loop (HTTP/1.1 keep-alive, HTTP/2 multiplexing, TLS, redirects,
// cookies, gzip/br).
#pragma once

#include <coring/http/errors.hpp>
#include <coring/http/headers.hpp>
#include <coring/task.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace coring {
class EventLoop;
}

namespace coring::http {

namespace detail {
class SessionState;
class Transfer;
} // namespace detail

/// Time limits of a request (aiohttp.ClientTimeout). An unset field takes the session's value
/// (for a session: the default); a zero duration means no limit.
///  - total: the whole request, from sending it to the body's last byte (default 300 s);
///  - connect: name resolution, TCP connect and TLS handshake of a new connection (default none);
///  - sock_read: the longest pause between two pieces of the response from the server (default
///    none); time the body waits in the client because nobody reads it does not count.
/// Exceeding one throws coring::TimeoutError naming the request and the limit.
struct ClientTimeout {
    std::optional<std::chrono::milliseconds> total{};
    std::optional<std::chrono::milliseconds> connect{};
    std::optional<std::chrono::milliseconds> sock_read{};
};

/// TLS settings of a session. Verification is on by default, against the system's CA store.
struct SslOptions {
    /// false: accept any certificate and host name (aiohttp's ssl=False). For testing only.
    bool verify = true;
    /// A PEM file of CA certificates to verify servers against, instead of the system's store.
    std::string cafile{};
    /// A client certificate (PEM) and its key, sent to servers that ask for one.
    std::string certfile{};
    std::string keyfile{};
};

/// Session-wide settings (the arguments of aiohttp.ClientSession and its TCPConnector).
struct ClientOptions {
    /// Prefix for relative request URLs ("http://127.0.0.1:8080/api/" + "items" ->
    /// ".../api/items").
    std::string base_url{};
    /// Sent with every request; a request's own header of the same name replaces it.
    Headers headers{};
    ClientTimeout timeout{};
    /// Most connections open at once, over all hosts (TCPConnector limit); 0 means no limit.
    /// Requests beyond it wait for a connection.
    std::size_t limit = 100;
    /// Most connections open at once to one host and port (limit_per_host); 0 means no limit.
    std::size_t limit_per_host = 0;
    /// Follow redirects (301, 302, 303, 307, 308), at most max_redirects in a row.
    bool allow_redirects = true;
    int max_redirects = 10;
    /// Ask for gzip, deflate, br and zstd and decompress the body (auto_decompress).
    bool auto_decompress = true;
    /// Use HTTP/2 with servers that offer it over TLS (ALPN), many requests on one connection;
    /// HTTP/1.1 keep-alive otherwise.
    bool http2 = true;
    /// Use the proxies named by http_proxy, https_proxy, all_proxy and no_proxy (trust_env).
    bool trust_env = false;
    /// A proxy for every request ("http://proxy:3128"); overrides trust_env.
    std::string proxy{};
    SslOptions ssl{};
    /// The User-Agent header unless `headers` has one.
    std::string user_agent = "coring-http/0.1";
    /// Body bytes buffered per response before the transfer pauses until they are read.
    std::size_t read_buffer = 1 << 20;
};

/// One name/value pair written in place: `{"q", "coroutines"}`.
struct Field {
    std::string_view name{};
    std::string_view value{};
};

/// Header fields, query parameters or form fields of one request, written in place as a braced
/// list of pairs, `{{"q", "c++"}, {"page", "2"}}` (at most 16; a pair with an empty name ends
/// the list), or taken from a Headers or a vector built beforehand (Fields::of). It holds
/// views: the strings must live until the request call returns (the call copies them).
///
/// WORKAROUND(gcc-12): GCC 12 fails on a braced list that needs an array temporary inside a
/// `co_await` ("array used as initializer": std::vector, std::initializer_list, nlohmann::json
/// literals) and destroys a braced aggregate temporary with a non-trivial destructor twice; a
/// trivially destructible class with one defaulted parameter per pair needs neither.
class Fields {
public:
    static constexpr std::size_t max_inline = 16;

    constexpr Fields() noexcept = default;

    /// The pairs written in place, in order.
    constexpr Fields(Field f0,
                     Field f1 = {},
                     Field f2 = {},
                     Field f3 = {},
                     Field f4 = {},
                     Field f5 = {},
                     Field f6 = {},
                     Field f7 = {},
                     Field f8 = {},
                     Field f9 = {},
                     Field f10 = {},
                     Field f11 = {},
                     Field f12 = {},
                     Field f13 = {},
                     Field f14 = {},
                     Field f15 = {}) noexcept // NOLINT: implicit, as a list
        : inline_{f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15} {
        while (size_ < max_inline && !inline_[size_].name.empty()) {
            ++size_;
        }
    }

    /// The fields of a Headers object.
    Fields(const Headers& headers) noexcept : headers_(&headers) {} // NOLINT: implicit

    /// The pairs of a vector built at run time.
    static Fields of(const std::vector<std::pair<std::string, std::string>>& pairs) noexcept {
        Fields f;
        f.pairs_ = &pairs;
        return f;
    }

    /// Calls fn(name, value) for each pair, in order.
    template <class Fn>
    void for_each(Fn&& fn) const {
        for (std::size_t i = 0; i < size_; ++i) {
            fn(inline_[i].name, inline_[i].value);
        }
        if (headers_ != nullptr) {
            for (const auto& [n, v] : *headers_) {
                fn(std::string_view(n), std::string_view(v));
            }
        }
        if (pairs_ != nullptr) {
            for (const auto& [n, v] : *pairs_) {
                fn(std::string_view(n), std::string_view(v));
            }
        }
    }

    bool empty() const noexcept {
        return size_ == 0 && (headers_ == nullptr || headers_->empty()) &&
               (pairs_ == nullptr || pairs_->empty());
    }

private:
    std::array<Field, max_inline> inline_{};
    std::size_t size_ = 0;
    const Headers* headers_ = nullptr;
    const std::vector<std::pair<std::string, std::string>>* pairs_ = nullptr;
};

/// A JSON scalar written in place (a string, number, bool or nullptr), or a nlohmann::json
/// built beforehand (for arrays and nested objects).
class JsonValue {
public:
    constexpr JsonValue() noexcept = default;

    constexpr JsonValue(std::nullptr_t) noexcept {} // NOLINT: implicit, as a JSON literal

    constexpr JsonValue(bool b) noexcept : kind_(Kind::boolean), i_(b ? 1 : 0) {} // NOLINT

    constexpr JsonValue(int i) noexcept : kind_(Kind::integer), i_(i) {} // NOLINT

    constexpr JsonValue(long i) noexcept : kind_(Kind::integer), i_(i) {} // NOLINT

    constexpr JsonValue(long long i) noexcept : kind_(Kind::integer), i_(i) {} // NOLINT

    constexpr JsonValue(unsigned i) noexcept : kind_(Kind::integer), i_(i) {} // NOLINT

    constexpr JsonValue(double d) noexcept : kind_(Kind::number), d_(d) {} // NOLINT

    constexpr JsonValue(const char* s) noexcept : kind_(Kind::string), s_(s) {} // NOLINT

    constexpr JsonValue(std::string_view s) noexcept : kind_(Kind::string), s_(s) {} // NOLINT

    JsonValue(const std::string& s) noexcept : kind_(Kind::string), s_(s) {} // NOLINT
    /// A json value built beforehand (an array, an object); it must live until the call
    /// returns.
    template <class J>
    requires std::same_as<J, nlohmann::json> JsonValue(const J& value)
    noexcept : kind_(Kind::json), j_(&value) {} // NOLINT

    /// The value as nlohmann::json.
    nlohmann::json get() const;

private:
    enum class Kind : std::uint8_t { null, boolean, integer, number, string, json };
    Kind kind_ = Kind::null;
    long long i_ = 0;
    double d_ = 0;
    std::string_view s_{};
    const nlohmann::json* j_ = nullptr;
};

/// One member of a JSON object written in place: `{"stars", 5}`.
struct JsonMember {
    std::string_view key{};
    JsonValue value{};
};

/// A JSON request body: an object written in place, `{{"name", "coring"}, {"stars", 5}}` (at
/// most 16 members; nested values are JsonValue: scalars, or a nlohmann::json built first), or
/// any nlohmann::json built beforehand. Views, like Fields (same GCC 12 workaround).
class JsonBody {
public:
    constexpr JsonBody() noexcept = default;

    /// An object of the members written in place, in order.
    constexpr JsonBody(JsonMember m0,
                       JsonMember m1 = {},
                       JsonMember m2 = {},
                       JsonMember m3 = {},
                       JsonMember m4 = {},
                       JsonMember m5 = {},
                       JsonMember m6 = {},
                       JsonMember m7 = {},
                       JsonMember m8 = {},
                       JsonMember m9 = {},
                       JsonMember m10 = {},
                       JsonMember m11 = {},
                       JsonMember m12 = {},
                       JsonMember m13 = {},
                       JsonMember m14 = {},
                       JsonMember m15 = {}) noexcept // NOLINT: implicit, as a JSON literal
        : members_{m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15} {
        while (size_ < members_.size() && !members_[size_].key.empty()) {
            ++size_;
        }
        object_ = true;
    }

    /// A json value built beforehand; it must live until the call returns.
    template <class J>
    requires std::same_as<J, nlohmann::json> JsonBody(const J& value)
    noexcept : value_(&value) {} // NOLINT: implicit

    /// Whether a body was given.
    bool has_value() const noexcept { return object_ || value_ != nullptr; }

    /// The body as nlohmann::json.
    nlohmann::json get() const;

private:
    std::array<JsonMember, 16> members_{};
    std::size_t size_ = 0;
    bool object_ = false;
    const nlohmann::json* value_ = nullptr;
};

/// What one request sends, beyond the method and URL. At most one of data, json and form. It
/// holds views (strings, lists) that need to live only until the request call returns: the
/// call copies what it needs, so the options may be temporaries.
///
///     co_await session.post(url, {.json = {{"name", "coring"}, {"stars", 5}}});
///     co_await session.get(url, {.params = {{"q", "c++ coroutines"}}, .timeout = {.total = 2s}});
struct RequestOptions {
    /// Added to the session's headers, replacing those of the same name.
    Fields headers{};
    /// Query parameters, URL-encoded and appended to the URL's query.
    Fields params{};
    /// A raw body (Content-Type as the headers say).
    std::optional<std::string_view> data{};
    /// A JSON body (Content-Type: application/json).
    JsonBody json{};
    /// A form body (application/x-www-form-urlencoded).
    Fields form{};
    /// Limits for this request; unset fields take the session's.
    ClientTimeout timeout{};
    /// Overrides the session's allow_redirects.
    std::optional<bool> allow_redirects{};
};

// WORKAROUND(gcc-12): see Fields; a braced RequestOptions inside co_await must not need
// destroying.
static_assert(std::is_trivially_destructible_v<RequestOptions>);

namespace detail {

/// RequestOptions copied into owned storage when the request is called.
struct RequestSpec {
    Headers headers;
    std::vector<std::pair<std::string, std::string>> params;
    std::optional<std::string> data;
    std::optional<std::string> json;
    std::vector<std::pair<std::string, std::string>> form;
    ClientTimeout timeout;
    std::optional<bool> allow_redirects;

    static RequestSpec from(const RequestOptions& o);
};

} // namespace detail

/// A response's body as a stream (aiohttp's resp.content, a StreamReader): it arrives while the
/// caller reads it, at most ClientOptions::read_buffer bytes ahead, so a large download needs
/// little memory. Reading a body that broke off throws ClientPayloadError (or TimeoutError)
/// once what arrived before the break has been read. Cancelling a read loses no data.
class ResponseContent {
public:
    /// Up to n bytes, as soon as any are there; all the rest when n is npos; "" at the end.
    [[nodiscard]] Task<std::string> read(std::size_t n = npos);

    /// Up to n bytes as they arrived (no waiting for more than the first piece); "" at the end.
    [[nodiscard]] Task<std::string> readany(std::size_t n = 64 * 1024) { return read(n); }

    /// Exactly n bytes. Throws: IncompleteReadError when the body ends first.
    [[nodiscard]] Task<std::string> readexactly(std::size_t n);
    /// One line, with its "\n"; the rest of the body when it has no more newline; "" at the end.
    [[nodiscard]] Task<std::string> readline();
    /// Whether the whole body has been read.
    bool at_eof() const noexcept;

    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

private:
    friend class ClientResponse;
    detail::Transfer* t_ = nullptr;
};

/// The status and headers of a response, and its body still to be read (aiohttp.ClientResponse).
/// Returned by ClientSession's request methods once the headers are in. Destroying it before the
/// body is read stops the transfer and closes its connection (a half-read connection is never
/// reused); reading the body to its end returns the connection to the session's pool.
/// Thread safety: loop thread only.
class ClientResponse {
public:
    ClientResponse(ClientResponse&&) noexcept;
    ClientResponse& operator=(ClientResponse&&) noexcept;
    ~ClientResponse();

    /// HTTP status code and reason phrase ("OK"; empty over HTTP/2, which has none).
    int status = 0;
    std::string reason;
    /// "HTTP/1.1", "HTTP/2", "HTTP/1.0".
    std::string version;
    std::string method;
    /// The final URL, after redirects.
    std::string url;
    Headers headers;
    /// How many redirects were followed to get here.
    int redirects = 0;
    /// The body, as a stream.
    ResponseContent content;

    /// Whether status < 400 (aiohttp's `ok`).
    bool ok() const noexcept { return status < 400; }

    /// Throws ClientResponseError (with status, reason and URL) when status >= 400.
    void raise_for_status() const;

    /// The whole body (what is left of it). Throws: ClientPayloadError, TimeoutError.
    [[nodiscard]] Task<std::string> read();

    /// The body as text (the bytes, assumed UTF-8 as aiohttp assumes for unknown charsets).
    [[nodiscard]] Task<std::string> text() { return read(); }

    /// The body parsed as JSON. Throws: ContentTypeError when the Content-Type is not JSON and
    /// check_content_type; nlohmann::json::parse_error on bad JSON.
    [[nodiscard]] Task<nlohmann::json> json(bool check_content_type = true);

    /// Stops the transfer if the body is not read yet (the connection is closed, not reused).
    void close() noexcept;

private:
    friend class ClientSession;
    explicit ClientResponse(std::unique_ptr<detail::Transfer> t);
    std::unique_ptr<detail::Transfer> t_;
};

/// An HTTP client with a connection pool, cookies and defaults (aiohttp.ClientSession), on
/// libcurl: one curl multi handle per session, driven by the loop's fd readiness and one timer.
///
///     coring::http::ClientSession session;
///     auto resp = co_await session.get("https://example.org/");
///     resp.raise_for_status();
///     std::string page = co_await resp.text();
///
/// Requests run concurrently (gather them); connections are kept alive and reused, HTTP/2
/// multiplexes. Cancellation: cancelling a request's task stops its transfer at once and closes
/// its connection. Thread safety: a session belongs to the loop it was made on (the running
/// loop); use it from that loop's thread only.
class ClientSession {
public:
    /// A session on the running loop. Throws: RuntimeError when no loop is running.
    explicit ClientSession(ClientOptions options = {});
    /// A session on `loop`.
    ClientSession(EventLoop& loop, ClientOptions options);
    ClientSession(const ClientSession&) = delete;
    ClientSession& operator=(const ClientSession&) = delete;
    /// Closes the session (as close()).
    ~ClientSession();

    /// Sends a request and returns the response once its headers are in (the body is read from
    /// the ClientResponse). Throws: InvalidUrl; ClientConnectorError (and its TLS subclasses),
    /// ServerDisconnectedError, TooManyRedirects, ClientResponseError for a malformed response,
    /// TimeoutError; ClientError after close().
    [[nodiscard]] Task<ClientResponse>
    request(std::string method, std::string url, const RequestOptions& options = {}) {
        return send(std::move(method), std::move(url), detail::RequestSpec::from(options));
    }

    [[nodiscard]] Task<ClientResponse> get(std::string url, const RequestOptions& options = {}) {
        return request("GET", std::move(url), options);
    }

    [[nodiscard]] Task<ClientResponse> post(std::string url, const RequestOptions& options = {}) {
        return request("POST", std::move(url), options);
    }

    [[nodiscard]] Task<ClientResponse> put(std::string url, const RequestOptions& options = {}) {
        return request("PUT", std::move(url), options);
    }

    [[nodiscard]] Task<ClientResponse> patch(std::string url, const RequestOptions& options = {}) {
        return request("PATCH", std::move(url), options);
    }

    /// DELETE (`delete` is a C++ keyword).
    [[nodiscard]] Task<ClientResponse> delete_(std::string url,
                                               const RequestOptions& options = {}) {
        return request("DELETE", std::move(url), options);
    }

    /// HEAD: status and headers, no body. Redirects are not followed unless asked, as aiohttp.
    [[nodiscard]] Task<ClientResponse> head(std::string url, const RequestOptions& options = {});

    /// Stops every transfer (their awaiters and body readers get ClientError "session closed"),
    /// closes the connections; later requests throw ClientError. Idempotent. A coroutine as in
    /// aiohttp; it does not suspend.
    [[nodiscard]] Task<> close();

    bool closed() const noexcept;

    /// The cookies the session holds, one per line in the Netscape cookie-file format.
    std::vector<std::string> cookies() const;

    const ClientOptions& options() const noexcept;

    /// Transfers started and not yet finished or stopped (for tests and metrics).
    std::size_t active_transfers() const noexcept;

private:
    [[nodiscard]] Task<ClientResponse>
    send(std::string method, std::string url, detail::RequestSpec spec);

    std::unique_ptr<detail::SessionState> s_;
};

} // namespace coring::http
