// SPDX-License-Identifier: MIT
// HTTP/1.1 request-head parsing: coring's strict parser (http/parser.hpp) beside Node's former
// parser, Debian's http-parser (libhttp-parser-dev), on the same ~700-byte browser GET.
//
// Usage: bench_http_parser_bench [--case NAME]... [--list]
//
// Prints `BENCH <case> <ns> ns/op` (one operation: one request head parsed, headers and all)
// and `BENCH <case>_gbps <GB/s> GB/s` on stdout, both of the fastest of 50 laps
// (support.hpp says why).
//
// Cases:
//   http_parse_coring       parse_request_head into views, Connection/Content-Length and the
//                           other framing fields judged
//   http_parse_http_parser  http_parser_execute with no-op callbacks (it still finds every
//                           header's name and value, and Content-Length)
//   http_parse_coring_drip  the same head arriving 64 bytes at a time: parse_request_head
//                           on each longer prefix until done (one operation: the whole head)
#include <coring/http/parser.hpp>

// CMake defines CORING_BENCH_HAS_HTTP_PARSER when it finds http-parser's header and library.
#if defined(CORING_BENCH_HAS_HTTP_PARSER)
#include <http_parser.h>
#endif

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "support.hpp"

namespace {

// Chrome 119's request for a page (without cookies or a referer): 14 fields, 718 bytes.
constexpr std::string_view request =
        "GET /wiki/Hypertext_Transfer_Protocol?action=view&section=2 HTTP/1.1\r\n"
        "Host: en.wikipedia.org\r\n"
        "Connection: keep-alive\r\n"
        "sec-ch-ua: \"Google Chrome\";v=\"119\", \"Chromium\";v=\"119\", "
        "\"Not?A_Brand\";v=\"24\"\r\n"
        "sec-ch-ua-mobile: ?0\r\n"
        "sec-ch-ua-platform: \"Linux\"\r\n"
        "Upgrade-Insecure-Requests: 1\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/119.0.0.0 Safari/537.36\r\n"
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
        "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n"
        "Sec-Fetch-Site: same-origin\r\n"
        "Sec-Fetch-Mode: navigate\r\n"
        "Sec-Fetch-User: ?1\r\n"
        "Sec-Fetch-Dest: document\r\n"
        "Accept-Encoding: gzip, deflate, br\r\n"
        "Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
        "\r\n";

constexpr int laps = 50;

// Runs `op` (which returns true on success) in laps of `per_lap` operations after a warm-up,
// and prints the fastest lap as ns/op and as GB/s of request bytes.
template <typename Op>
void measure(const char* name, std::uint64_t per_lap, Op op) {
    for (std::uint64_t i = 0; i < per_lap; ++i) {
        if (!op()) {
            std::fprintf(stderr, "%s: the %zu-byte request did not parse\n", name, request.size());
            std::exit(1);
        }
    }
    per_lap = bench::scaled(per_lap);
    bench::Region region(name, per_lap * laps);
    double fastest = 1e30;
    for (int lap = 0; lap < laps; ++lap) {
        region.lap_start();
        const auto t0 = bench::Clock::now();
        for (std::uint64_t i = 0; i < per_lap; ++i) {
            if (!op()) {
                std::abort();
            }
        }
        const auto ns =
                std::chrono::duration_cast<std::chrono::nanoseconds>(bench::Clock::now() - t0);
        region.lap_end(per_lap);
        const double per_op = static_cast<double>(ns.count()) / static_cast<double>(per_lap);
        fastest = per_op < fastest ? per_op : fastest;
    }
    region.report_ns_per_op();
    std::printf("BENCH %s_gbps %.3f GB/s\n", name, static_cast<double>(request.size()) / fastest);
}

void coring_case() {
    std::array<coring::http::HeaderField, 64> storage{};
    coring::http::ParserLimits limits;
    measure("http_parse_coring", 20000, [&] {
        coring::http::RequestHead head;
        coring::http::ParseError error;
        // The buffer's address escapes, so the parse is not hoisted out of the loop.
        const char* data = request.data();
        asm volatile("" : "+r"(data));
        const auto status = coring::http::parse_request_head(
                std::string_view(data, request.size()), storage, limits, head, error);
        asm volatile("" : : "r"(head.headers.data()) : "memory");
        return status == coring::http::ParseStatus::done && head.headers.size() == 14;
    });
}

void coring_drip_case() {
    std::array<coring::http::HeaderField, 64> storage{};
    coring::http::ParserLimits limits;
    measure("http_parse_coring_drip", 2000, [&] {
        coring::http::RequestHead head;
        coring::http::ParseError error;
        for (std::size_t n = 64;; n += 64) {
            n = n < request.size() ? n : request.size();
            const char* data = request.data();
            asm volatile("" : "+r"(data));
            const auto status = coring::http::parse_request_head(
                    std::string_view(data, n), storage, limits, head, error);
            if (status != coring::http::ParseStatus::partial) {
                return status == coring::http::ParseStatus::done;
            }
        }
    });
}

#if defined(CORING_BENCH_HAS_HTTP_PARSER)
int no_op(http_parser*) {
    return 0;
}

int no_op_data(http_parser*, const char*, std::size_t) {
    return 0;
}

void http_parser_case() {
    http_parser_settings settings{};
    settings.on_message_begin = no_op;
    settings.on_url = no_op_data;
    settings.on_status = no_op_data;
    settings.on_header_field = no_op_data;
    settings.on_header_value = no_op_data;
    settings.on_headers_complete = no_op;
    settings.on_body = no_op_data;
    settings.on_message_complete = no_op;
    settings.on_chunk_header = no_op;
    settings.on_chunk_complete = no_op;
    http_parser parser{};
    measure("http_parse_http_parser", 20000, [&] {
        http_parser_init(&parser, HTTP_REQUEST);
        const char* data = request.data();
        asm volatile("" : "+r"(data));
        const std::size_t n = http_parser_execute(&parser, &settings, data, request.size());
        return n == request.size() && HTTP_PARSER_ERRNO(&parser) == HPE_OK;
    });
}
#endif

constexpr bench::Case cases[] = {
        {"http_parse_coring", coring_case},
#if defined(CORING_BENCH_HAS_HTTP_PARSER)
        {"http_parse_http_parser", http_parser_case},
#endif
        {"http_parse_coring_drip", coring_drip_case},
};

} // namespace

int main(int argc, char** argv) {
    return bench::main("bench_http_parser_bench", cases, argc, argv);
}
