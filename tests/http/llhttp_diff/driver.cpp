// SPDX-License-Identifier: MIT
// The coring side of the differential test: reads the cases that dump.js wrote (name LF length
// LF bytes, repeated) and prints coring's outcome for each in llhttp.js's format: name TAB
// ACCEPT TAB method target version TAB headers (JSON) TAB body (JSON), or name TAB REJECT TAB
// #status reason, or name TAB INCOMPLETE.
#include <coring/http/parser.hpp>

#include <array>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <string_view>

namespace {

using namespace coring::http;

// JSON.stringify of a string whose characters are the bytes (Node's latin1), as UTF-8.
std::string json(std::string_view s) {
    std::string out = "\"";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else if (c >= 0x80) {
                out += static_cast<char>(0xc0 | (c >> 6));
                out += static_cast<char>(0x80 | (c & 0x3f));
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    return out + "\"";
}

std::string outcome(std::string_view data) {
    std::array<HeaderField, 100> storage{};
    RequestHead head;
    ParseError error;
    const ParseStatus status = parse_request_head(data, storage, ParserLimits{}, head, error);
    if (status == ParseStatus::partial) {
        return "INCOMPLETE";
    }
    if (status == ParseStatus::error) {
        return "REJECT\t#" + std::to_string(error.status) + " " + error.reason;
    }
    std::string_view rest = data.substr(head.head_size);
    std::string body;
    if (head.framing == BodyFraming::length) {
        if (rest.size() < head.content_length) {
            return "INCOMPLETE";
        }
        body = rest.substr(0, head.content_length);
    } else if (head.framing == BodyFraming::chunked) {
        ChunkedDecoder decoder;
        std::size_t used = 0;
        switch (decoder.decode(rest, used, body)) {
        case ChunkedDecoder::Status::more:
            return "INCOMPLETE";
        case ChunkedDecoder::Status::error:
            return "REJECT\t#chunked body";
        case ChunkedDecoder::Status::done:
            break;
        }
    }
    std::string headers = "[";
    for (const HeaderField& f : head.headers) {
        headers += (headers.size() > 1 ? ",[" : "[") + json(f.name) + "," + json(f.value) + "]";
    }
    headers += "]";
    return "ACCEPT\t" + std::string(head.method) + " " + std::string(head.target) + " 1." +
           std::to_string(head.version_minor) + "\t" + headers + "\t" + json(body);
}

} // namespace

int main() {
    const std::string in{std::istreambuf_iterator<char>(std::cin),
                         std::istreambuf_iterator<char>()};
    std::size_t pos = 0;
    while (pos < in.size()) {
        const std::size_t nl = in.find('\n', pos);
        const std::string name = in.substr(pos, nl - pos);
        const std::size_t nl2 = in.find('\n', nl + 1);
        const std::size_t len = std::stoul(in.substr(nl + 1, nl2 - nl - 1));
        const std::string_view data = std::string_view(in).substr(nl2 + 1, len);
        std::cout << name << '\t' << outcome(data) << '\n';
        pos = nl2 + 1 + len;
    }
}
