// SPDX-License-Identifier: MIT
// The HTTP client's reading of response heads (Transfer::on_header), fed directly: the cases
// the fuzzer (fuzz/fuzz_http_client_headers.cpp) found, and the head shapes curl passes on.
#include <coring/event_loop.hpp>

#include <catch2/catch.hpp>

#include <string>

#include "http/client_internal.hpp"

using coring::http::detail::SessionState;
using coring::http::detail::Transfer;

namespace {

void feed(Transfer& t, std::string line) {
    CHECK(Transfer::on_header(line.data(), 1, line.size(), &t) == line.size());
}

} // namespace

TEST_CASE("HTTP client heads: a status that is not three digits is read as none",
          "[http][client-heads]") {
    coring::EventLoop loop;
    {
        SessionState s(loop, coring::http::ClientOptions{});
        Transfer t(s, "GET", "http://h.invalid/");
        feed(t, "HTTP/1.1 -4* nope\r\n"); // found by the fuzzer: once parsed as -4
        CHECK(t.status_ == 0);
        feed(t, "HTTP/1.1 20 short\r\n");
        CHECK(t.status_ == 0);
        feed(t, "HTTP/2 204 \r\n");
        CHECK(t.status_ == 204);
        CHECK(t.version_ == "HTTP/2");
    }
    loop.close();
}

TEST_CASE("HTTP client heads: folded lines join the previous value, blank folds add nothing",
          "[http][client-heads]") {
    coring::EventLoop loop;
    {
        SessionState s(loop, coring::http::ClientOptions{});
        Transfer t(s, "GET", "http://h.invalid/");
        feed(t, "HTTP/1.1 200 OK\r\n");
        feed(t, "X-Long: one\r\n");
        feed(t, "   two\r\n");
        feed(t, "  \t \r\n"); // found by the fuzzer: threw std::out_of_range from a noexcept
        feed(t, "Set-Cookie: a=1\r\n");
        feed(t, "set-cookie: b=2\r\n");
        CHECK(t.headers_.get("x-long") == std::optional<std::string_view>("one two"));
        CHECK(t.headers_.get_all("Set-Cookie").size() == 2);
        CHECK(t.reason_ == "OK");
    }
    loop.close();
}
