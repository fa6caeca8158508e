// SPDX-License-Identifier: MIT
// A concurrent HTTP/1.1 client: fetches http://127.0.0.1:<port>/ N times at once, one
// connection per request, and prints each status and body.
//
// Usage: http_client <port> [N=10]
//
// The asyncio equivalent:
//
//     async def fetch(port, i):
//         reader, writer = await asyncio.open_connection("127.0.0.1", port)
//         writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
//         head = await reader.readuntil(b"\r\n\r\n")
//         length = int(re.search(rb"content-length: *(\d+)", head.lower())[1])
//         body = await reader.readexactly(length)
//         writer.close()
//         return head.split(b"\r\n")[0], body
//
//     results = await asyncio.gather(*(fetch(port, i) for i in range(n)))
#include <coring/coring.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

struct Response {
    std::string status;
    std::string body;
};

static coring::Task<Response> fetch(std::uint16_t port) {
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port);
    writer.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    std::string head = co_await reader.readuntil("\r\n\r\n");
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) {
        return static_cast<char>(std::tolower(c));
    });
    std::size_t at = lower.find("\r\ncontent-length:");
    std::size_t length =
            at == std::string::npos ? 0 : std::strtoul(lower.c_str() + at + 17, nullptr, 10);
    std::string body = co_await reader.readexactly(length);
    writer.close();
    co_return Response{head.substr(0, head.find("\r\n")), std::move(body)};
}

static coring::Task<int> amain(std::uint16_t port, int n) {
    std::vector<coring::TaskHandle<Response>> tasks;
    for (int i = 0; i < n; ++i) {
        tasks.push_back(coring::create_task(fetch(port)));
    }
    int ok = 0;
    for (int i = 0; i < n; ++i) { // the requests run concurrently; collect them in order
        Response r = co_await std::move(tasks[static_cast<std::size_t>(i)]);
        std::printf("#%d %s %s\n", i, r.status.c_str(), r.body.c_str());
        ok += r.status == "HTTP/1.1 200 OK" ? 1 : 0;
    }
    std::printf("%d/%d requests succeeded\n", ok, n);
    co_return ok == n ? 0 : 1;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s <port> [N]\n", argv[0]);
        return 2;
    }
    int n = argc > 2 ? std::atoi(argv[2]) : 10;
    return coring::run(amain(static_cast<std::uint16_t>(std::atoi(argv[1])), n));
}
