// SPDX-License-Identifier: MIT
// A TLS echo server on 127.0.0.1:<port> that serves until SIGINT or SIGTERM.
//
// Usage: tls_echo_server <port> <cert.pem> <key.pem>     (port 0 picks a free port)
// Prints "listening on 127.0.0.1:<port>" on stdout once it accepts connections.
// examples/run/make_certs.sh makes a throwaway CA and a certificate for 127.0.0.1.
//
// The asyncio equivalent:
//
//     async def echo(reader, writer):
//         while data := await reader.read(16384):
//             writer.write(data)
//             await writer.drain()
//         writer.close()
//
//     async def main(port, cert, key):
//         ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
//         ctx.load_cert_chain(cert, key)
//         server = await asyncio.start_server(echo, "127.0.0.1", port, ssl=ctx)
//         ...  # as echo_server: print the address, wait for SIGINT/SIGTERM, close
//
// Each connection is handshaken before echo() runs; a failed handshake only closes it. The
// reader and writer carry plaintext: OpenSSL works on memory buffers, the ring moves the bytes.
#include <coring/coring.hpp>
#include <coring/tls.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>

static coring::Task<> echo(coring::StreamReader reader, coring::StreamWriter writer) {
    char buf[16384];
    try {
        for (;;) {
            std::size_t n = co_await reader.read_into(buf);
            if (n == 0) {
                break; // the client's close_notify
            }
            writer.write(std::string_view(buf, n));
            co_await writer.drain();
        }
    } catch (const std::system_error&) {
        // A reset, or SslEofError (closed without close_notify): nothing to report.
    }
    writer.close();
}

static coring::Task<int> amain(std::uint16_t port, std::string cert, std::string key) {
    coring::EventLoop& loop = coring::get_running_loop();
    coring::Future<int> stop(loop);
    for (int sig : {SIGINT, SIGTERM}) {
        coring::add_signal_handler(loop, sig, [stop, sig] {
            if (!stop.done()) {
                stop.set_result(sig);
            }
        });
    }
    auto ctx = coring::tls::SslContext::server(cert, key);
    coring::ServerOptions options;
    options.backlog = 1024;
    options.ssl = ctx; // the server keeps its own reference
    coring::Server server = co_await coring::start_server(echo, "127.0.0.1", port, options);
    std::printf("listening on %s\n", server.sockets().at(0).getsockname().to_string().c_str());
    std::fflush(stdout);

    int sig = co_await stop;
    std::fprintf(stderr, "tls_echo_server: %s, stopping\n", strsignal(sig));
    server.close();
    co_return 0;
}

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s <port> <cert.pem> <key.pem>\n", argv[0]);
        return 2;
    }
    auto port = static_cast<std::uint16_t>(std::strtoul(argv[1], nullptr, 10));
    try {
        return coring::run(amain(port, argv[2], argv[3]));
    } catch (const std::exception& e) { // a missing or unreadable certificate file
        std::fprintf(stderr, "tls_echo_server: %s\n", e.what());
        return 1;
    }
}
