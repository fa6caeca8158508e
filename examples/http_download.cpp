// SPDX-License-Identifier: MIT
// Streaming a large download to disk with a progress line: the body is read in chunks as it
// arrives, so memory stays flat however big the file. Usage: http_download [URL FILE]
// (default: 32 MiB from a local test server into a temporary file, removed afterwards).
//
// The asyncio/aiohttp equivalent:
//
//     async with aiohttp.ClientSession() as session:
//         async with session.get(url) as resp:
//             resp.raise_for_status()
//             total = int(resp.headers.get("Content-Length", 0))
//             with open(path, "wb") as f:
//                 async for chunk in resp.content.iter_chunked(1 << 16):
//                     f.write(chunk)
//                     print(f"\r{f.tell()} / {total} bytes", end="")
#include <coring/coring.hpp>
#include <coring/http.hpp>

#include <cstdio>
#include <string>

namespace http = coring::http;

static constexpr std::size_t kDefaultSize = 32u << 20;

// The stand-in server: answers any request with kDefaultSize bytes, written in 1 MiB pieces.
static coring::Task<> serve(coring::StreamReader reader, coring::StreamWriter writer) {
    for (;;) { // the request line and headers, up to the blank line
        std::string line = co_await reader.readline();
        if (line.size() <= 2) {
            break;
        }
    }
    writer.write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kDefaultSize) +
                 "\r\nConnection: close\r\n\r\n");
    std::string piece(1u << 20, 'z');
    for (std::size_t sent = 0; sent < kDefaultSize; sent += piece.size()) {
        writer.write(piece);
        co_await writer.drain();
    }
    writer.close();
    co_await writer.wait_closed();
}

static coring::Task<int> amain(std::string url, std::string path) {
    coring::Server server;
    bool own = url.empty();
    if (own) {
        server = co_await coring::start_server(serve, "127.0.0.1", 0);
        url = "http://127.0.0.1:" + std::to_string(server.sockets().front().getsockname().port()) +
              "/big.bin";
        path = "http_download.tmp";
    }
    http::ClientSession session;
    auto resp = co_await session.get(url);
    resp.raise_for_status();
    std::string total(resp.headers.get("Content-Length").value_or("?"));
    coring::File file = co_await coring::File::open(path, "w");
    std::size_t written = 0;
    // One chunk at a time: at most ClientOptions::read_buffer bytes wait in memory.
    // (The co_await is not in the loop's condition: GCC 12 miscompiles that, docs/pitfalls.md.)
    for (;;) {
        std::string chunk = co_await resp.content.read(1 << 16); // "" at the end of the body
        if (chunk.empty()) {
            break;
        }
        co_await file.write(chunk);
        written += chunk.size();
        if (written % (4u << 20) < chunk.size()) {
            std::printf("\r%zu / %s bytes", written, total.c_str());
            std::fflush(stdout);
        }
    }
    co_await file.close();
    std::printf("\r%zu / %s bytes: saved to %s\n", written, total.c_str(), path.c_str());
    if (own) {
        std::remove(path.c_str());
        co_return written == kDefaultSize ? 0 : 1;
    }
    co_return 0;
}

int main(int argc, char** argv) {
    if (argc != 1 && argc != 3) {
        std::fprintf(stderr, "usage: %s [URL FILE]\n", argv[0]);
        return 2;
    }
    return coring::run(amain(argc == 3 ? argv[1] : "", argc == 3 ? argv[2] : ""));
}
