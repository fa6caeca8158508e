// SPDX-License-Identifier: MIT
// coring's client in the HTTP client benchmark (benchmarks/http_client_run.sh): one
// coring::http::ClientSession, C worker tasks each looping `get` + `read` of the body until N
// GETs are done, the idiomatic shape (aiohttp's `async with session.get(url) as r: await
// r.read()` in http_client_aiohttp.py).
//
// Usage: bench_http_client --url URL [--http 1.1|2] [--cafile PEM] [--requests N]
//                          [--concurrency C] [--warmup N] [--expect-bytes B]
//                          [--server-pid PID]        (see http_bench.hpp)
//
// Session options, the same as the floor's (http_curl_epoll.cpp) curl options: keep-alive,
// HTTP/2 multiplexing over TLS with `--http 2` (ClientOptions::http2; HTTP/1.1 otherwise), no
// Accept-Encoding (auto_decompress off), TLS verified against --cafile, at most 100 connections
// (the default limit).
//
// The asyncio equivalent:
//
//     async def worker(session, url, state):
//         while state.issued < state.total:
//             state.issued += 1
//             async with session.get(url) as r:
//                 body = await r.read()
//
//     await asyncio.gather(*(worker(session, url, state) for _ in range(64)))
#include <coring/coring.hpp>
#include <coring/http.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "http_bench.hpp"

namespace {

struct Phase {
    std::uint64_t total = 0;
    std::uint64_t issued = 0;
    std::uint64_t failed = 0;
};

void failure(Phase& p, const std::string& what) {
    if (p.failed++ < 5) {
        std::fprintf(stderr, "http_client: request failed: %s\n", what.c_str());
    }
}

coring::Task<> worker(coring::http::ClientSession& session, const httpbench::Options& o, Phase& p) {
    while (p.issued < p.total) {
        ++p.issued;
        try {
            auto r = co_await session.get(o.url); // a ClientResponse
            std::string body = co_await r.read();
            if (r.status != 200 ||
                (o.expect_bytes >= 0 && body.size() != static_cast<std::size_t>(o.expect_bytes))) {
                failure(p,
                        "status " + std::to_string(r.status) + ", " + std::to_string(body.size()) +
                                " B");
            }
        } catch (const std::exception& e) {
            failure(p, e.what());
        }
    }
}

// Runs `total` GETs, o.concurrency at a time; returns the failures.
coring::Task<std::uint64_t>
run_phase(coring::http::ClientSession& session, const httpbench::Options& o, std::uint64_t total) {
    Phase p{.total = total};
    std::vector<coring::Task<>> workers;
    for (int i = 0; i < o.concurrency && static_cast<std::uint64_t>(i) < total; ++i) {
        workers.push_back(worker(session, o, p));
    }
    co_await coring::gather(std::move(workers));
    co_return p.failed;
}

coring::Task<int> amain(const httpbench::Options& o) {
    coring::http::ClientOptions options;
    options.http2 = o.http2;
    options.auto_decompress = false;
    options.ssl.cafile = o.cafile;
    coring::http::ClientSession session(std::move(options));
    std::uint64_t failed = 0;
    if (o.warmup > 0) {
        failed += co_await run_phase(session, o, o.warmup);
    }
    httpbench::Window window(o);
    window.start();
    failed += co_await run_phase(session, o, o.requests);
    window.stop();
    co_await session.close();
    std::fprintf(stderr,
                 "http_client: %llu + %llu requests, %llu failed\n",
                 static_cast<unsigned long long>(o.warmup),
                 static_cast<unsigned long long>(o.requests),
                 static_cast<unsigned long long>(failed));
    co_return failed == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    httpbench::Options o = httpbench::parse(argc, argv);
    return coring::run(amain(o));
}
