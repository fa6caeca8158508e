// SPDX-License-Identifier: MIT
// libFuzzer target: the strict HTTP/1.1 request parser and the chunked body decoder
// (http/parser.hpp) on arbitrary bytes. The views must lie inside the input, a done head must
// really be CRLF-terminated and free of bare LFs and controls, every prefix must answer partial
// or exactly what the whole input answers, and the decoder must give the same body however the
// input is split.
#include <coring/http/parser.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace {

using coring::http::BodyFraming;
using coring::http::ChunkedDecoder;
using coring::http::HeaderField;
using coring::http::ParseError;
using coring::http::ParserLimits;
using coring::http::ParseStatus;
using coring::http::RequestHead;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "fuzz_http_parser: invariant violated: %s\n", what);
        std::abort();
    }
}

struct Result {
    std::array<HeaderField, 16> storage{};
    RequestHead head;
    ParseError error;
    ParseStatus status = ParseStatus::partial;
};

// Parses a copy of `data` in a buffer of exactly its size, so that ASan sees any read past it.
void parse(std::string_view data,
           const ParserLimits& limits,
           Result& r,
           std::unique_ptr<char[]>& copy) {
    copy = std::make_unique<char[]>(data.size() == 0 ? 1 : data.size());
    if (!data.empty()) {
        std::memcpy(copy.get(), data.data(), data.size());
    }
    const std::string_view view(copy.get(), data.size());
    r.status = coring::http::parse_request_head(view, r.storage, limits, r.head, r.error);
    if (r.status == ParseStatus::error) {
        const int s = r.error.status;
        check(s == 400 || s == 414 || s == 431 || s == 501 || s == 505, "error status");
        check(r.error.reason != nullptr && r.error.reason[0] != '\0', "error reason");
        return;
    }
    if (r.status != ParseStatus::done) {
        return;
    }
    const RequestHead& h = r.head;
    check(h.head_size >= 4 && h.head_size <= view.size(), "head_size within the input");
    check(h.head_size <= limits.max_head, "head_size within max_head");
    const std::string_view head = view.substr(0, h.head_size);
    check(head.substr(head.size() - 4) == "\r\n\r\n", "head ends with CRLF CRLF");
    for (std::size_t i = 0; i < head.size(); ++i) {
        const auto c = static_cast<unsigned char>(head[i]);
        if (c == '\n') {
            check(i > 0 && head[i - 1] == '\r', "no bare LF in a head");
        } else if (c == '\r') {
            check(i + 1 < head.size() && head[i + 1] == '\n', "no bare CR in a head");
        } else {
            check((c >= 0x20 && c != 0x7f) || c == '\t', "no control in a head");
        }
    }
    const auto inside = [&](std::string_view v) {
        return v.data() >= head.data() && v.data() + v.size() <= head.data() + head.size();
    };
    check(inside(h.method) && !h.method.empty(), "method inside the head");
    check(inside(h.target) && !h.target.empty(), "target inside the head");
    check(h.target.find(' ') == std::string_view::npos, "no SP in the target");
    check(h.version_minor == 0 || h.version_minor == 1, "version");
    check(h.headers.data() == r.storage.data() && h.headers.size() <= limits.max_headers,
          "headers in storage");
    for (const HeaderField& f : h.headers) {
        check(inside(f.name) && inside(f.value) && !f.name.empty(), "field inside the head");
        check(f.name.find_first_of(" \t:") == std::string_view::npos, "field name is a token");
        check(f.value.empty() || (f.value.front() != ' ' && f.value.front() != '\t' &&
                                  f.value.back() != ' ' && f.value.back() != '\t'),
              "value trimmed");
    }
    check(h.framing != BodyFraming::length || h.content_length <= INT64_MAX, "content length");
    check(h.framing == BodyFraming::length || h.content_length == 0, "length only with framing");
    check(!(h.framing == BodyFraming::chunked && h.version_minor == 0), "chunked in HTTP/1.0");
}

bool same(const Result& a, const Result& b) {
    if (a.status != b.status) {
        return false;
    }
    if (a.status == ParseStatus::error) {
        return a.error.status == b.error.status && std::strcmp(a.error.reason, b.error.reason) == 0;
    }
    const RequestHead& x = a.head;
    const RequestHead& y = b.head;
    if (x.method != y.method || x.target != y.target || x.version_minor != y.version_minor ||
        x.headers.size() != y.headers.size() || x.framing != y.framing ||
        x.content_length != y.content_length || x.keep_alive != y.keep_alive ||
        x.expect_continue != y.expect_continue || x.head_size != y.head_size) {
        return false;
    }
    for (std::size_t i = 0; i < x.headers.size(); ++i) {
        if (x.headers[i].name != y.headers[i].name || x.headers[i].value != y.headers[i].value) {
            return false;
        }
    }
    return true;
}

struct Decoded {
    ChunkedDecoder::Status status = ChunkedDecoder::Status::more;
    std::string body;
    std::size_t consumed = 0;
    std::uint64_t body_size = 0;
};

Decoded decode(std::string_view in, std::size_t step, std::size_t max_ext, std::size_t max_tr) {
    ChunkedDecoder decoder(max_ext, max_tr);
    Decoded d;
    std::size_t pos = 0;
    while (pos < in.size()) {
        const std::string_view piece = in.substr(pos, step);
        auto copy = std::make_unique<char[]>(piece.size());
        std::memcpy(copy.get(), piece.data(), piece.size());
        std::size_t used = 0;
        d.status = decoder.decode(std::string_view(copy.get(), piece.size()), used, d.body);
        check(used <= piece.size(), "consumed within the piece");
        if (d.status != ChunkedDecoder::Status::more) {
            d.consumed = pos + used;
            break;
        }
        check(used == piece.size(), "more consumes everything");
        pos += piece.size();
    }
    d.body_size = decoder.body_size();
    check(d.body_size == d.body.size(), "body_size counts the body");
    return d;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    // Byte 0: the split step; byte 1: tight limits or not. The rest is the request.
    const std::size_t step = 1 + bytes[0] % 23;
    ParserLimits limits;
    if ((bytes[1] & 1) != 0) {
        limits.max_request_line = 16 + bytes[1] % 64;
        limits.max_head = 32 + bytes[1];
        limits.max_headers = bytes[1] % 8;
    }
    const std::string_view data(reinterpret_cast<const char*>(bytes + 2), size - 2);

    std::unique_ptr<char[]> whole_copy;
    Result whole;
    parse(data, limits, whole, whole_copy);
    for (std::size_t n = 0; n < data.size(); n += step) {
        std::unique_ptr<char[]> copy;
        Result part;
        parse(data.substr(0, n), limits, part, copy);
        // Monotone: once a prefix gets an answer, every longer input gets the same one.
        if (part.status != ParseStatus::partial) {
            check(same(part, whole), "a prefix answers partial or what the whole answers");
        }
    }

    // The body decoder: the bytes after a chunked head, or the whole input.
    std::string_view body = data;
    if (whole.status == ParseStatus::done && whole.head.framing == BodyFraming::chunked) {
        body = data.substr(whole.head.head_size);
    }
    const std::size_t max_ext = (bytes[1] & 2) != 0 ? 8 : 1024;
    const std::size_t max_tr = (bytes[1] & 4) != 0 ? 16 : 16 * 1024;
    const Decoded all = decode(body, body.size() == 0 ? 1 : body.size(), max_ext, max_tr);
    const Decoded split = decode(body, step, max_ext, max_tr);
    check(all.status == split.status, "decoder status independent of the split");
    check(all.body == split.body, "decoded body independent of the split");
    // On error too: the failing byte is found wherever the pieces are cut.
    check(all.consumed == split.consumed, "decoder end independent of the split");
    if (all.status == ChunkedDecoder::Status::done) {
        check(all.consumed >= 5 && body.substr(all.consumed - 4, 4) == "\r\n\r\n",
              "the body ends with CRLF CRLF");
    }
    return 0;
}
