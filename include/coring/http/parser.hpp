// SPDX-License-Identifier: MIT
// The HTTP/1.1 request parser of the http server (RFC 9112): strict, zero-copy (views into the
// caller's buffer), incremental (called again with more bytes), after picohttpparser's design.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace coring::http {

/// One header field, as views into the parsed buffer (name as sent; value without the
/// surrounding spaces and tabs).
struct HeaderField {
    std::string_view name;
    std::string_view value;
};

/// Size limits of a request head; exceeding one is an error with the status to answer.
struct ParserLimits {
    std::size_t max_request_line = 8 * 1024; ///< 414 URI Too Long past it
    std::size_t max_head = 16 * 1024;        ///< the whole head; 431 past it
    std::size_t max_headers = 100;           ///< header fields; 431 past it
};

/// How the body of a request is framed (RFC 9112 section 6.3).
enum class BodyFraming : std::uint8_t {
    none,    ///< no body
    length,  ///< Content-Length bytes
    chunked, ///< Transfer-Encoding ending in chunked
};

/// A parsed request head. The views point into the buffer given to parse_request_head.
struct RequestHead {
    std::string_view method;
    std::string_view target;              ///< as sent: "/path?query"
    int version_minor = 1;                ///< HTTP/1.0 -> 0, HTTP/1.1 -> 1
    std::span<const HeaderField> headers; ///< a prefix of the storage passed in
    BodyFraming framing = BodyFraming::none;
    std::uint64_t content_length = 0; ///< when framing is length
    bool keep_alive = true;       ///< HTTP/1.1 without "Connection: close", or 1.0 with keep-alive
    bool expect_continue = false; ///< "Expect: 100-continue"
    std::size_t head_size = 0;    ///< bytes of the head, through its final CRLF CRLF
};

/// Why a request was rejected: the status to answer with and a short reason for the log.
struct ParseError {
    int status = 400; ///< 400, 414, 431, 501 (a Transfer-Encoding other than chunked), 505
    const char* reason = "";
};

enum class ParseStatus : std::uint8_t {
    done,    ///< head parsed into RequestHead
    partial, ///< the head is not complete yet: call again when more bytes are in
    error,   ///< the request is malformed or over a limit: see ParseError
};

/// Parses the request head at the start of `data`. Strict (RFC 9112): a bare LF, obs-fold, a
/// space before the colon, a non-token character in the method or a field name, a control
/// character in a value, a Content-Length together with Transfer-Encoding, a duplicate or
/// malformed Content-Length, a Transfer-Encoding whose last coding is not chunked, and a
/// version other than HTTP/1.0 and HTTP/1.1 are errors. `storage` holds the header fields;
/// more fields than limits.max_headers (or than storage holds) is a 431. Re-entrant: after
/// `partial`, call again with the same bytes and more. noexcept, no allocation.
///
/// Details: empty lines (CRLF) before the request line are skipped (RFC 9112 2.2) and counted
/// in head_size. Transfer codings: only chunked is implemented, so any other coding is a 501;
/// chunked listed twice or not last, and Transfer-Encoding in an HTTP/1.0 request, are 400s. A
/// second Host line is a 400 (a missing Host is left to the server). framing is length
/// whenever Content-Length is present, 0 included; lengths and chunk sizes must be below 2^63.
/// The answer for a longer input never contradicts a non-partial answer for its prefix. A call
/// that can only answer partial costs a SIMD scan of `data`, not a parse: parsing starts once
/// `data` holds CRLF CRLF or a bare LF (or goes past a limit). After partial or error the
/// contents of `head` are unspecified.
ParseStatus parse_request_head(std::string_view data,
                               std::span<HeaderField> storage,
                               const ParserLimits& limits,
                               RequestHead& head,
                               ParseError& error) noexcept;

/// Decodes a chunked body (RFC 9112 section 7.1) as it arrives, piece by piece.
class ChunkedDecoder {
public:
    enum class Status : std::uint8_t {
        more,  ///< all input consumed; the body goes on
        done,  ///< the last chunk and the trailers are consumed; `consumed` tells where the
               ///< next request starts
        error, ///< malformed: a bad chunk size, a missing CRLF, an extension or trailer
               ///< section over its limit
    };

    /// max_extensions: bytes of chunk extensions allowed per chunk; max_trailers: bytes of the
    /// trailer section (trailers are read and dropped).
    explicit ChunkedDecoder(std::size_t max_extensions = 1024,
                            std::size_t max_trailers = 16 * 1024) noexcept
        : max_extensions_(max_extensions), max_trailers_(max_trailers) {}

    /// Consumes bytes of `in`, appending the body's bytes to `out`; `consumed` is set to how
    /// many bytes of `in` were used (all of them unless done or error; on error, the offset of
    /// the offending byte). Once done or error it stays so, consuming nothing.
    Status decode(std::string_view in, std::size_t& consumed, std::string& out);

    /// The body bytes decoded so far.
    std::uint64_t body_size() const noexcept { return body_size_; }

private:
    std::size_t max_extensions_;
    std::size_t max_trailers_;
    std::uint64_t body_size_ = 0;
    std::uint64_t chunk_left_ = 0;
    std::size_t count_ = 0;  // digits of the size, bytes of the extensions, or trailer bytes
    std::uint8_t state_ = 0; // a State of parser.cpp: size_first, size_digits, ... failed
};

} // namespace coring::http
