// SPDX-License-Identifier: MIT
// The per-core benchmark's echo server (benchmarks/per_core_run.sh): examples/echo_server's
// handler on N loops of a coring::LoopGroup, either with an SO_REUSEPORT listener per loop or
// with loop 0 accepting and handing connections round robin (serve_round_robin). Runs until
// SIGTERM/SIGINT. No asyncio equivalent.
//
// Usage: bench_per_core_server --port P [--loops N] [--layout reuseport|roundrobin] [--pin]
#include <coring/loop_group.hpp>
#include <coring/sleep.hpp>
#include <coring/streams.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

namespace {

coring::Task<> echo(coring::StreamReader reader, coring::StreamWriter writer) {
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
        // the client reset the connection
    }
    writer.close();
}

coring::Task<> serve(coring::LoopGroup& group, std::size_t i, std::uint16_t port, bool rr) {
    if (rr) {
        if (i == 0) {
            co_await coring::serve_round_robin(group, echo, "127.0.0.1", port, [](std::uint16_t) {
                std::printf("listening\n");
                std::fflush(stdout);
            });
        } else {
            co_await coring::sleep(std::chrono::hours(24 * 365));
        }
        co_return;
    }
    coring::ServerOptions options{};
    options.reuse_port = true;
    options.backlog = 1024;
    coring::Server server = co_await coring::start_server(echo, "127.0.0.1", port, options);
    std::printf("listening\n");
    std::fflush(stdout);
    co_await server.serve_forever();
}

} // namespace

int main(int argc, char** argv) {
    std::uint16_t port = 0;
    unsigned loops = 1;
    bool rr = false;
    bool pin = false;
    for (int a = 1; a < argc; ++a) {
        std::string arg = argv[a];
        if (arg == "--port" && a + 1 < argc) {
            port = static_cast<std::uint16_t>(std::atoi(argv[++a]));
        } else if (arg == "--loops" && a + 1 < argc) {
            loops = static_cast<unsigned>(std::atoi(argv[++a]));
        } else if (arg == "--layout" && a + 1 < argc) {
            rr = std::strcmp(argv[++a], "roundrobin") == 0;
        } else if (arg == "--pin") {
            pin = true;
        } else {
            std::fprintf(stderr,
                         "usage: bench_per_core_server --port P [--loops N] "
                         "[--layout reuseport|roundrobin] [--pin]\n");
            return 2;
        }
    }
    if (port == 0) {
        std::fprintf(stderr, "bench_per_core_server: --port is required\n");
        return 2;
    }
    coring::LoopGroup group({.loops = loops, .pin = pin});
    try {
        group.run([&](std::size_t i) { return serve(group, i, port, rr); });
    } catch (const coring::SignalShutdown&) {
        return 0;
    } catch (const coring::KeyboardInterrupt&) {
        return 0;
    }
    return 0;
}
