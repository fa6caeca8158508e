// SPDX-License-Identifier: MIT
// libFuzzer target: the HTTP client's reading of a server's response head and body
// (Transfer::on_header / on_write, the callbacks curl hands the peer's header lines and body
// bytes to). Arbitrary lines, in arbitrary pieces: nothing may crash, the parsed status stays
// in 0..999, every header the client keeps came from the input, and body bytes arrive in order.
#include <coring/event_loop.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "client_internal.hpp"

namespace {

coring::EventLoop& loop() {
    static coring::EventLoop l;
    return l;
}

coring::http::detail::SessionState& session() {
    static coring::http::detail::SessionState s(loop(), coring::http::ClientOptions{});
    return s;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    using coring::http::detail::Transfer;
    Transfer t(session(), "GET", "http://fuzz.invalid/");
    t.follow_ = in.ConsumeBool();
    std::string everything; // what the header callback was given, for the containment check
    std::string body;
    int lines = in.ConsumeIntegralInRange(0, 64);
    for (int i = 0; i < lines && in.remaining_bytes() > 0; ++i) {
        // curl hands over one line at a time, with its CRLF; the input may lack or add some.
        std::string line = in.ConsumeRandomLengthString(512);
        everything += line;
        Transfer::on_header(line.data(), 1, line.size(), &t);
        if (t.status_ < 0 || t.status_ > 999) {
            std::abort();
        }
    }
    while (in.remaining_bytes() > 0) {
        std::string piece = in.ConsumeRandomLengthString(4096);
        std::size_t taken = Transfer::on_write(piece.data(), 1, piece.size(), &t);
        if (taken == piece.size()) {
            body += piece;
        } else if (taken != CURL_WRITEFUNC_PAUSE) {
            std::abort();
        }
    }
    for (const auto& [name, value] : t.headers_) {
        if (everything.find(name) == std::string::npos) {
            std::abort(); // a header name the server never sent
        }
        static_cast<void>(value); // values may be rebuilt from folded lines
    }
    std::string got = t.take(std::string::npos);
    if (got != body) {
        std::abort();
    }
    return 0;
}
