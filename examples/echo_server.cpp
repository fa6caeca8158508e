// SPDX-License-Identifier: MIT
// A TCP echo server on 127.0.0.1:<port> that serves until SIGINT or SIGTERM.
//
// Usage: echo_server <port>      (port 0 picks a free port)
// Prints "listening on 127.0.0.1:<port>" on stdout once it accepts connections.
//
// The asyncio equivalent:
//
//     async def echo(reader, writer):
//         while data := await reader.read(16384):
//             writer.write(data)
//             await writer.drain()
//         writer.close()
//
//     async def main(port):
//         server = await asyncio.start_server(echo, "127.0.0.1", port)
//         print("listening on", server.sockets[0].getsockname())
//         loop = asyncio.get_running_loop()
//         stop = loop.create_future()
//         for sig in (signal.SIGINT, signal.SIGTERM):
//             loop.add_signal_handler(sig, stop.set_result, None)
//         await stop
//         server.close()
//
// Signals: add_signal_handler reads SIGINT and SIGTERM from a signalfd through io_uring, so an
// idle server sleeps in io_uring_enter and wakes on the signal.
#include <coring/coring.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

// One task per connection. read_into receives straight into buf (no allocation); write copies
// into the writer's buffer, and the send leaves with the loop's next io_uring_enter.
static coring::Task<> echo(coring::StreamReader reader, coring::StreamWriter writer) {
    char buf[16384];
    try {
        for (;;) {
            std::size_t n = co_await reader.read_into(buf);
            if (n == 0) {
                break;
            }
            writer.write(std::string_view(buf, n));
            co_await writer.drain();
        }
    } catch (const std::system_error&) {
        // The client reset the connection: nothing to report.
    }
    writer.close();
}

static coring::Task<int> amain(std::uint16_t port) {
    coring::EventLoop& loop = coring::get_running_loop();
    coring::Future<int> stop(loop);
    for (int sig : {SIGINT, SIGTERM}) {
        coring::add_signal_handler(loop, sig, [stop, sig] {
            if (!stop.done()) {
                stop.set_result(sig);
            }
        });
    }
    coring::ServerOptions options;
    options.backlog = 1024; // load generators open many connections at once
    coring::Server server = co_await coring::start_server(echo, "127.0.0.1", port, options);
    std::printf("listening on %s\n", server.sockets().at(0).getsockname().to_string().c_str());
    std::fflush(stdout);

    int sig = co_await stop;
    std::fprintf(stderr, "echo_server: %s, stopping\n", strsignal(sig));
    server.close(); // run() then cancels the connections' tasks
    co_return 0;
}

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <port>\n", argv[0]);
        return 2;
    }
    auto port = static_cast<std::uint16_t>(std::strtoul(argv[1], nullptr, 10));
    return coring::run(amain(port));
}
