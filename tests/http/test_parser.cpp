// SPDX-License-Identifier: MIT
// Tests of http/parser.hpp: the strict HTTP/1.1 request parser (RFC 9112) and the chunked body
// decoder, including the request-smuggling cases (CL+TE, duplicate CL, bad chunk sizes).
#include <coring/http/parser.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace {

using coring::http::BodyFraming;
using coring::http::ChunkedDecoder;
using coring::http::HeaderField;
using coring::http::ParseError;
using coring::http::ParserLimits;
using coring::http::ParseStatus;
using coring::http::RequestHead;

// One parse of `data`, with storage for 100 fields.
struct Parsed {
    std::array<HeaderField, 100> storage{};
    RequestHead head;
    ParseError error;
    ParseStatus status = ParseStatus::partial;

    explicit Parsed(std::string_view data, const ParserLimits& limits = {}) {
        status = coring::http::parse_request_head(data, storage, limits, head, error);
    }
};

// The status a malformed request is rejected with (0 when it is not rejected).
int rejected_with(std::string_view data, const ParserLimits& limits = {}) {
    const Parsed p(data, limits);
    return p.status == ParseStatus::error ? p.error.status : 0;
}

// Feeds `body` to a fresh decoder in pieces of `step` bytes.
struct Decoded {
    ChunkedDecoder::Status status = ChunkedDecoder::Status::more;
    std::string body;
    std::size_t consumed = 0; // of the whole input, when done
};

Decoded
decode(std::string_view in, std::size_t step = 0, ChunkedDecoder decoder = ChunkedDecoder{}) {
    Decoded d;
    if (step == 0) {
        step = in.size() == 0 ? 1 : in.size();
    }
    std::size_t pos = 0;
    while (pos < in.size()) {
        const std::string_view piece = in.substr(pos, step);
        std::size_t used = 0;
        d.status = decoder.decode(piece, used, d.body);
        if (d.status != ChunkedDecoder::Status::more) {
            d.consumed = pos + used;
            return d;
        }
        REQUIRE(used == piece.size());
        pos += piece.size();
    }
    return d;
}

} // namespace

TEST_CASE("RequestParser: a simple GET is parsed into views of the buffer", "[http][parser]") {
    const std::string req = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n"
                            "User-Agent:  curl/8.0 \t\r\nAccept: */*\r\n\r\nNEXT";
    const Parsed p(req);
    REQUIRE(p.status == ParseStatus::done);
    CHECK(p.head.method == "GET");
    CHECK(p.head.target == "/index.html?q=1");
    CHECK(p.head.version_minor == 1);
    REQUIRE(p.head.headers.size() == 3);
    CHECK(p.head.headers[0].name == "Host");
    CHECK(p.head.headers[0].value == "example.com");
    CHECK(p.head.headers[1].name == "User-Agent");
    CHECK(p.head.headers[1].value == "curl/8.0"); // trimmed both ends
    CHECK(p.head.headers[2].value == "*/*");
    CHECK(p.head.framing == BodyFraming::none);
    CHECK(p.head.keep_alive);
    CHECK_FALSE(p.head.expect_continue);
    CHECK(p.head.head_size == req.size() - 4);
    // Zero-copy: the views point into the request.
    CHECK(p.head.method.data() == req.data());
    CHECK(p.head.headers[0].value.data() == req.data() + req.find("example.com"));
}

TEST_CASE("RequestParser: header names keep their case and empty values are allowed",
          "[http][parser]") {
    const Parsed p("POST / HTTP/1.1\r\nX-MiXeD: a b\r\nX-Empty:\r\nX-Blank:   \r\n\r\n");
    REQUIRE(p.status == ParseStatus::done);
    REQUIRE(p.head.headers.size() == 3);
    CHECK(p.head.headers[0].name == "X-MiXeD");
    CHECK(p.head.headers[0].value == "a b");
    CHECK(p.head.headers[1].value.empty());
    CHECK(p.head.headers[2].value.empty());
}

TEST_CASE("RequestParser: obs-text in a value is allowed", "[http][parser]") {
    const Parsed p("GET / HTTP/1.1\r\nX-Name: caf\xc3\xa9\r\n\r\n");
    REQUIRE(p.status == ParseStatus::done);
    CHECK(p.head.headers[0].value == "caf\xc3\xa9");
}

TEST_CASE("RequestParser: every prefix of a request is partial, then done", "[http][parser]") {
    const std::string req = "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    const std::size_t head_size = req.find("hello");
    for (std::size_t n = 0; n < head_size; ++n) {
        INFO("prefix of " << n << " bytes");
        CHECK(Parsed(std::string_view(req).substr(0, n)).status == ParseStatus::partial);
    }
    const Parsed p(req);
    REQUIRE(p.status == ParseStatus::done);
    CHECK(p.head.head_size == head_size);
    CHECK(p.head.framing == BodyFraming::length);
    CHECK(p.head.content_length == 5);
}

TEST_CASE("RequestParser: leading empty lines are skipped and counted in head_size",
          "[http][parser]") {
    const std::string req = "\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    const Parsed p(req);
    REQUIRE(p.status == ParseStatus::done);
    CHECK(p.head.method == "GET");
    CHECK(p.head.head_size == req.size());
    CHECK(rejected_with("\nGET / HTTP/1.1\r\n\r\n") == 400);
    // A few only: each call would walk them all again.
    std::string many;
    for (int i = 0; i < 8; ++i) {
        many += "\r\n";
    }
    CHECK(Parsed(many + "GET / HTTP/1.1\r\n\r\n").status == ParseStatus::done);
    CHECK(rejected_with(many + "\r\nGET / HTTP/1.1\r\n\r\n") == 400);
}

TEST_CASE("RequestParser: a 16 KiB head drip-fed byte by byte is parsed once complete",
          "[http][parser]") {
    std::string req = "GET / HTTP/1.1\r\n";
    while (req.size() < 16 * 1024 - 64) {
        req += "X-Some-Header: some value here\r\n";
    }
    req += "\r\n";
    std::vector<HeaderField> storage(1000);
    ParserLimits limits;
    limits.max_headers = 1000;
    RequestHead head;
    ParseError error;
    // Every partial call is a SIMD scan for CRLF CRLF or a bare LF, not a parse.
    for (std::size_t n = 0; n < req.size(); ++n) {
        REQUIRE(coring::http::parse_request_head(
                        std::string_view(req).substr(0, n), storage, limits, head, error) ==
                ParseStatus::partial);
    }
    REQUIRE(coring::http::parse_request_head(req, storage, limits, head, error) ==
            ParseStatus::done);
    CHECK(head.head_size == req.size());
}

TEST_CASE("RequestParser: HTTP/1.0 and HTTP/1.1 keep-alive defaults", "[http][parser]") {
    CHECK(Parsed("GET / HTTP/1.1\r\n\r\n").head.keep_alive);
    CHECK_FALSE(Parsed("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").head.keep_alive);
    CHECK_FALSE(Parsed("GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n").head.keep_alive);
    CHECK_FALSE(
            Parsed("GET / HTTP/1.1\r\nConnection: x\r\nConnection: close\r\n\r\n").head.keep_alive);
    CHECK(Parsed("GET / HTTP/1.1\r\nConnection: closed\r\n\r\n").head.keep_alive);
    const Parsed old("GET / HTTP/1.0\r\n\r\n");
    REQUIRE(old.status == ParseStatus::done);
    CHECK(old.head.version_minor == 0);
    CHECK_FALSE(old.head.keep_alive);
    CHECK(Parsed("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").head.keep_alive);
    CHECK_FALSE(Parsed("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").head.keep_alive);
}

TEST_CASE("RequestParser: Expect: 100-continue is recognised in HTTP/1.1 only", "[http][parser]") {
    CHECK(Parsed("POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
                  .head.expect_continue);
    CHECK_FALSE(Parsed("POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n").head.expect_continue);
    CHECK_FALSE(Parsed("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").head.expect_continue);
}

TEST_CASE("RequestParser: a bare LF is rejected with 400", "[http][parser]") {
    CHECK(rejected_with("GET / HTTP/1.1\nHost: a\n\n") == 400);
    CHECK(rejected_with("GET / HTTP/1.1\r\nHost: a\n\r\n") == 400);
    CHECK(rejected_with("GET / HTTP/1.1\r\nHost: a\r\n\n") == 400);
    CHECK(rejected_with("GET / HTTP/1.1\r\nHost\n\r\n\r\n") == 400);
    CHECK(rejected_with("GET\n") == 400);
    // Found without waiting for the end of the head.
    CHECK(rejected_with("GET / HTTP/1.1\nHost: a") == 400);
}

TEST_CASE("RequestParser: a CR without LF is rejected with 400", "[http][parser]") {
    CHECK(rejected_with("GET / HTTP/1.1\rHost: a\r\n\r\n") == 400);
    CHECK(rejected_with("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n") == 400);
    CHECK(rejected_with("GET / HTTP/1.1\r\nHost: a\r\n\rX\r\n\r\n") == 400);
}

TEST_CASE("RequestParser: obs-fold is rejected with 400", "[http][parser]") {
    CHECK(rejected_with("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n") == 400);
    CHECK(rejected_with("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n") == 400);
    // Whitespace before the first field line (RFC 9112 2.2).
    CHECK(rejected_with("GET / HTTP/1.1\r\n Host: a\r\n\r\n") == 400);
}

TEST_CASE("RequestParser: whitespace between a field name and the colon is rejected with 400",
          "[http][parser]") {
    CHECK(rejected_with("GET / HTTP/1.1\r\nHost : a\r\n\r\n") == 400);
    CHECK(rejected_with("GET / HTTP/1.1\r\nContent-Length\t: 0\r\n\r\n") == 400);
}

TEST_CASE("RequestParser: invalid field names are rejected with 400", "[http][parser]") {
    CHECK(rejected_with("GET / HTTP/1.1\r\n: a\r\n\r\n") == 400);
    CHECK(rejected_with("GET / HTTP/1.1\r\nX(y): a\r\n\r\n") == 400);
    CHECK(rejected_with("GET / HTTP/1.1\r\nX\"y: a\r\n\r\n") == 400);
    CHECK(rejected_with("GET / HTTP/1.1\r\nNoColon\r\n\r\n") == 400);
    CHECK(rejected_with("GET / HTTP/1.1\r\nX\xc3\xa9: a\r\n\r\n") == 400);
}

TEST_CASE("RequestParser: control characters in a value are rejected with 400", "[http][parser]") {
    CHECK(rejected_with(std::string("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 27)) == 400);
    CHECK(rejected_with("GET / HTTP/1.1\r\nX: a\x01"
                        "b\r\n\r\n") == 400);
    CHECK(rejected_with("GET / HTTP/1.1\r\nX: a\x7f"
                        "b\r\n\r\n") == 400);
    CHECK(rejected_with("GET / HTTP/1.1\r\nX: a\x1b"
                        "b\r\n\r\n") == 400);
    const Parsed tab("GET / HTTP/1.1\r\nX: a\tb\r\n\r\n");
    REQUIRE(tab.status == ParseStatus::done);
    CHECK(tab.head.headers[0].value == "a\tb");
}

TEST_CASE("RequestParser: invalid methods are rejected with 400", "[http][parser]") {
    CHECK(rejected_with(" GET / HTTP/1.1\r\n\r\n") == 400);
    CHECK(rejected_with("G(T / HTTP/1.1\r\n\r\n") == 400);
    CHECK(rejected_with("GET\t/ HTTP/1.1\r\n\r\n") == 400);
    CHECK(rejected_with("G\x01T / HTTP/1.1\r\n\r\n") == 400);
    // Any token is a method; the server decides which it supports.
    CHECK(Parsed("M-SEARCH * HTTP/1.1\r\n\r\n").status == ParseStatus::done);
}

TEST_CASE("RequestParser: a request-target with spaces or controls is rejected with 400",
          "[http][parser]") {
    CHECK(rejected_with("GET /a b HTTP/1.1\r\n\r\n") == 400);
    CHECK(rejected_with("GET  / HTTP/1.1\r\n\r\n") == 400);
    CHECK(rejected_with("GET /\t HTTP/1.1\r\n\r\n") == 400);
    CHECK(rejected_with("GET /\x7f HTTP/1.1\r\n\r\n") == 400);
    CHECK(rejected_with("GET /\xc3\xa9 HTTP/1.1\r\n\r\n") == 400);
    CHECK(rejected_with("GET / HTTP/1.1 \r\n\r\n") == 400);
    CHECK(rejected_with("GET /\r\n\r\n") == 400); // HTTP/0.9
    const Parsed p("OPTIONS * HTTP/1.1\r\n\r\n");
    REQUIRE(p.status == ParseStatus::done);
    CHECK(p.head.target == "*");
}

TEST_CASE("RequestParser: versions other than HTTP/1.0 and 1.1 are rejected", "[http][parser]") {
    CHECK(rejected_with("GET / HTTP/1.2\r\n\r\n") == 505);
    CHECK(rejected_with("GET / HTTP/2.0\r\n\r\n") == 505);
    CHECK(rejected_with("GET / HTTP/0.9\r\n\r\n") == 505);
    CHECK(rejected_with("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == 505); // the HTTP/2 preface
    CHECK(rejected_with("GET / HTTP/1.10\r\n\r\n") == 400);
    CHECK(rejected_with("GET / http/1.1\r\n\r\n") == 400);
    CHECK(rejected_with("GET / HTTP/1\r\n\r\n") == 400);
    CHECK(rejected_with("GET / HTTPS/1.1\r\n\r\n") == 400);
}

TEST_CASE("RequestParser: Content-Length with Transfer-Encoding is rejected with 400",
          "[http][parser]") {
    CHECK(rejected_with(
                  "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n") ==
          400);
    CHECK(rejected_with(
                  "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n") ==
          400);
}

TEST_CASE("RequestParser: duplicate Content-Length is rejected with 400, even equal values",
          "[http][parser]") {
    CHECK(rejected_with("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n") ==
          400);
    CHECK(rejected_with("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n") ==
          400);
    CHECK(rejected_with("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n") == 400);
}

TEST_CASE("RequestParser: malformed Content-Length is rejected with 400", "[http][parser]") {
    for (const char* v : {"",
                          "+5",
                          "-1",
                          "5a",
                          "0x10",
                          "5 5",
                          "1.0",
                          "99999999999999999999",
                          "9223372036854775808",
                          "18446744073709551616"}) {
        INFO("Content-Length: " << v);
        CHECK(rejected_with(std::string("POST / HTTP/1.1\r\nContent-Length: ") + v + "\r\n\r\n") ==
              400);
    }
    const Parsed big("POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n");
    REQUIRE(big.status == ParseStatus::done);
    CHECK(big.head.content_length == 9223372036854775807ULL);
    const Parsed zero("POST / HTTP/1.1\r\nContent-Length: 000\r\n\r\n");
    REQUIRE(zero.status == ParseStatus::done);
    CHECK(zero.head.framing == BodyFraming::length);
    CHECK(zero.head.content_length == 0);
}

TEST_CASE("RequestParser: Transfer-Encoding must end in a single chunked", "[http][parser]") {
    const auto te = [](std::string_view codings) {
        return std::string("POST / HTTP/1.1\r\nTransfer-Encoding: ") + std::string(codings) +
               "\r\n\r\n";
    };
    const Parsed ok(te("Chunked"));
    REQUIRE(ok.status == ParseStatus::done);
    CHECK(ok.head.framing == BodyFraming::chunked);
    CHECK(rejected_with(te("chunked, gzip")) == 400);    // chunked not last
    CHECK(rejected_with(te("chunked, chunked")) == 400); // applied twice
    CHECK(rejected_with(te("gzip, chunked")) == 501);    // a coding we do not implement
    CHECK(rejected_with(te("gzip")) == 501);
    CHECK(rejected_with(te("identity")) == 501);
    CHECK(rejected_with(te("")) == 400);
    CHECK(rejected_with(te("chunked x")) == 400);
    CHECK(rejected_with(te("\"chunked\"")) == 400);
    CHECK(rejected_with("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n") == 400);
    CHECK(rejected_with("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                        "Transfer-Encoding: gzip\r\n\r\n") == 400);
    // RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 request has faulty framing.
    CHECK(rejected_with("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == 400);
}

TEST_CASE("RequestParser: duplicate Host is rejected with 400", "[http][parser]") {
    CHECK(rejected_with("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n") == 400);
}

TEST_CASE("RequestParser: a request line over max_request_line is a 414", "[http][parser]") {
    ParserLimits limits;
    limits.max_request_line = 32;
    const std::string fits = "GET /" + std::string(18, 'a') + " HTTP/1.1"; // 32 bytes
    REQUIRE(fits.size() == 32);
    CHECK(Parsed(fits + "\r\n\r\n", limits).status == ParseStatus::done);
    const std::string over = "GET /" + std::string(19, 'a') + " HTTP/1.1";
    CHECK(rejected_with(over + "\r\n\r\n", limits) == 414);
    // Without waiting for the end of the line.
    CHECK(rejected_with("GET /" + std::string(100, 'a'), limits) == 414);
    // SIZE_MAX: no limit (but max_head's).
    limits.max_request_line = SIZE_MAX;
    CHECK(Parsed("GET /" + std::string(10000, 'a') + " HTTP/1.1\r\n\r\n", limits).status ==
          ParseStatus::done);
}

TEST_CASE("RequestParser: a head over max_head is a 431", "[http][parser]") {
    ParserLimits limits;
    limits.max_head = 64;
    const std::string start = "GET / HTTP/1.1\r\nX: ";
    const std::string fits = start + std::string(64 - start.size() - 4, 'v') + "\r\n\r\n";
    REQUIRE(fits.size() == 64);
    CHECK(Parsed(fits, limits).status == ParseStatus::done);
    const std::string over = start + std::string(64 - start.size() - 3, 'v') + "\r\n\r\n";
    CHECK(rejected_with(over, limits) == 431);
    CHECK(rejected_with(start + std::string(100, 'v'), limits) == 431); // no end in sight
}

TEST_CASE("RequestParser: too many header fields is a 431", "[http][parser]") {
    ParserLimits limits;
    limits.max_headers = 3;
    CHECK(Parsed("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits).status ==
          ParseStatus::done);
    CHECK(rejected_with("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", limits) == 431);
    // The storage is a limit too.
    std::array<HeaderField, 2> small{};
    RequestHead head;
    ParseError error;
    CHECK(coring::http::parse_request_head("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
                                           small,
                                           ParserLimits{},
                                           head,
                                           error) == ParseStatus::error);
    CHECK(error.status == 431);
}

TEST_CASE("RequestParser: an error in a prefix stays an error as more bytes arrive",
          "[http][parser]") {
    // Found by fuzz_http_parser: the pre-scan parsed a long first line without a LF, but
    // answered partial once a (well-formed) LF arrived later in the line's place.
    ParserLimits limits;
    limits.max_request_line = 16;
    const std::string start = "GET /a\x01" + std::string(20, 'b');
    CHECK(rejected_with(start, limits) == 400);
    CHECK(rejected_with(start + " HTTP/1.1\r\nHost: a\r\n", limits) == 400);
}

TEST_CASE("RequestParser: a drip-fed head gives the same result as the whole", "[http][parser]") {
    const std::string req =
            "\r\nPOST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
            "Connection: close\r\nExpect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    const Parsed whole(req);
    REQUIRE(whole.status == ParseStatus::done);
    for (std::size_t n = 0; n <= req.size(); ++n) {
        const Parsed part(std::string_view(req).substr(0, n));
        if (part.status == ParseStatus::partial) {
            continue;
        }
        REQUIRE(part.status == ParseStatus::done);
        CHECK(part.head.head_size == whole.head.head_size);
        CHECK(part.head.framing == BodyFraming::chunked);
        CHECK_FALSE(part.head.keep_alive);
        CHECK(part.head.expect_continue);
    }
}

TEST_CASE("ChunkedDecoder: decodes a body in any split, with extensions and trailers",
          "[http][parser]") {
    const std::string body = "5;name=\"v\"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                             "0 ; last\r\nTrailer: x\r\nOther: y\r\n\r\nNEXT";
    for (std::size_t step = 1; step <= body.size(); ++step) {
        INFO("pieces of " << step);
        const Decoded d = decode(body, step);
        REQUIRE(d.status == ChunkedDecoder::Status::done);
        CHECK(d.body == "helloabcdefghijklmnopqrstuvwxyz");
        CHECK(d.consumed == body.size() - 4);
    }
}

TEST_CASE("ChunkedDecoder: reports more until the last chunk", "[http][parser]") {
    ChunkedDecoder decoder;
    std::string out;
    std::size_t used = 0;
    CHECK(decoder.decode("4\r\nwi", used, out) == ChunkedDecoder::Status::more);
    CHECK(used == 5);
    CHECK(decoder.decode("ki\r\n", used, out) == ChunkedDecoder::Status::more);
    CHECK(decoder.decode("0\r\n\r\n", used, out) == ChunkedDecoder::Status::done);
    CHECK(used == 5);
    CHECK(out == "wiki");
    CHECK(decoder.body_size() == 4);
}

TEST_CASE("ChunkedDecoder: bad chunk sizes are errors", "[http][parser]") {
    for (const char* in : {"\r\n",
                           "g\r\n",
                           "-1\r\n",
                           "+1\r\n",
                           " 1\r\n",
                           "0x1\r\n",
                           "1 \r\n",
                           "8000000000000000\r\n",
                           "ffffffffffffffffff\r\n",
                           "10000000000000000\r\n"}) {
        INFO(in);
        CHECK(decode(in).status == ChunkedDecoder::Status::error);
    }
    // 2^63 - 1 is the largest size.
    CHECK(decode("7fffffffffffffff\r\nabc").status == ChunkedDecoder::Status::more);
}

TEST_CASE("ChunkedDecoder: a missing CRLF after chunk data is an error", "[http][parser]") {
    CHECK(decode("3\r\nabcd\r\n0\r\n\r\n").status == ChunkedDecoder::Status::error);
    CHECK(decode("3\r\nabc\n0\r\n\r\n").status == ChunkedDecoder::Status::error);
    CHECK(decode("3\r\nabc\r0\r\n\r\n").status == ChunkedDecoder::Status::error);
    CHECK(decode("3\nabc\r\n0\r\n\r\n").status == ChunkedDecoder::Status::error);
    CHECK(decode("0\r\n\n").status == ChunkedDecoder::Status::error);
}

TEST_CASE("ChunkedDecoder: extensions and trailers over their limits are errors",
          "[http][parser]") {
    CHECK(decode("1;" + std::string(8, 'x') + "\r\na\r\n0\r\n\r\n", 0, ChunkedDecoder(9, 100))
                  .status == ChunkedDecoder::Status::done);
    CHECK(decode("1;" + std::string(9, 'x') + "\r\na\r\n0\r\n\r\n", 0, ChunkedDecoder(9, 100))
                  .status == ChunkedDecoder::Status::error);
    CHECK(decode("0\r\nX: " + std::string(100, 'y') + "\r\n\r\n", 0, ChunkedDecoder(100, 50))
                  .status == ChunkedDecoder::Status::error);
    CHECK(decode("1;a\x01\r\na\r\n0\r\n\r\n").status == ChunkedDecoder::Status::error);
    // Trailers: no obs-fold, no bare LF, no controls.
    CHECK(decode("0\r\nX: a\r\n b\r\n\r\n").status == ChunkedDecoder::Status::error);
    CHECK(decode("0\r\nX: a\n\r\n").status == ChunkedDecoder::Status::error);
}

TEST_CASE("ChunkedDecoder: after done or error it stays there", "[http][parser]") {
    ChunkedDecoder decoder;
    std::string out;
    std::size_t used = 0;
    REQUIRE(decoder.decode("0\r\n\r\nGET", used, out) == ChunkedDecoder::Status::done);
    CHECK(used == 5);
    CHECK(decoder.decode("1\r\na\r\n", used, out) == ChunkedDecoder::Status::done);
    CHECK(used == 0);
    ChunkedDecoder bad;
    REQUIRE(bad.decode("z", used, out) == ChunkedDecoder::Status::error);
    CHECK(bad.decode("0\r\n\r\n", used, out) == ChunkedDecoder::Status::error);
}
