// SPDX-License-Identifier: MIT
// Echo client: several connections to 127.0.0.1:<port>, each sending messages one at a time
// and checking every echo.
//
// Usage: echo_client <port> [connections=4] [messages=1000] [size=64]
//
// The asyncio equivalent:
//
//     async def client(port, messages, size):
//         reader, writer = await asyncio.open_connection("127.0.0.1", port)
//         payload = b"x" * size
//         for _ in range(messages):
//             writer.write(payload)
//             await writer.drain()
//             assert await reader.readexactly(size) == payload
//         writer.close()
//         await writer.wait_closed()
//
//     async def main(port, connections, messages, size):
//         await asyncio.gather(*(client(port, messages, size) for _ in range(connections)))
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

static coring::Task<std::size_t>
client(std::uint16_t port, int id, int messages, std::size_t size) {
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port);
    std::string payload(size, static_cast<char>('a' + id % 26));
    std::size_t ok = 0;
    for (int i = 0; i < messages; ++i) {
        writer.write(payload);
        co_await writer.drain();
        std::string back = co_await reader.readexactly(size);
        ok += back == payload ? 1 : 0;
    }
    writer.close();
    co_await writer.wait_closed();
    co_return ok;
}

static coring::Task<int>
amain(std::uint16_t port, int connections, int messages, std::size_t size) {
    auto start = std::chrono::steady_clock::now();
    std::vector<coring::TaskHandle<std::size_t>> tasks;
    for (int c = 0; c < connections; ++c) {
        tasks.push_back(coring::create_task(client(port, c, messages, size)));
    }
    std::size_t ok = 0;
    for (auto& t : tasks) { // gather(*tasks), one after the other
        ok += co_await t;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::size_t expected =
            static_cast<std::size_t>(connections) * static_cast<std::size_t>(messages);
    std::printf("%zu/%zu echoes correct over %d connections in %.3f s (%.0f round trips/s)\n",
                ok,
                expected,
                connections,
                secs,
                static_cast<double>(ok) / secs);
    co_return ok == expected ? 0 : 1;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s <port> [connections] [messages] [size]\n", argv[0]);
        return 2;
    }
    auto port = static_cast<std::uint16_t>(std::strtoul(argv[1], nullptr, 10));
    int connections = argc > 2 ? std::atoi(argv[2]) : 4;
    int messages = argc > 3 ? std::atoi(argv[3]) : 1000;
    std::size_t size = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 64;
    return coring::run(amain(port, connections, messages, size));
}
