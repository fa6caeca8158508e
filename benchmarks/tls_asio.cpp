// SPDX-License-Identifier: MIT
// Peer of the TLS benchmark (benchmarks/tls_run.sh) in standalone Asio: asio::ssl::stream over
// a tcp::socket, C++20 coroutines, on the io_uring backend (ASIO_HAS_IO_URING,
// ASIO_DISABLE_EPOLL), the twin of echo_asio.cpp.
//
// Usage: bench_tls_asio <port> <cert.pem> <key.pem>   (port 0 picks a free port)
// Prints "listening on 127.0.0.1:<port>" on stdout; serves until SIGINT or SIGTERM.
//
// One coroutine per connection: async_handshake, then async_read_some into a 16 KiB buffer and
// async_write of what arrived, the coroutine ends at the client's close_notify; a
// single-threaded io_context(1). ssl::context::tls_server with OpenSSL's defaults otherwise.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/ssl.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>

using asio::ip::tcp;

namespace {

asio::awaitable<void> echo(asio::ssl::stream<tcp::socket> stream) {
    char buf[16384];
    try {
        co_await stream.async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
        for (;;) {
            std::size_t n = co_await stream.async_read_some(asio::buffer(buf), asio::use_awaitable);
            co_await asio::async_write(stream, asio::buffer(buf, n), asio::use_awaitable);
        }
    } catch (const std::exception&) {
        // The client's close_notify (asio::ssl::error::stream_truncated or eof), a reset, or a
        // failed handshake: the coroutine ends and closes the socket.
    }
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, asio::ssl::context& ctx) {
    for (;;) {
        tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
        socket.set_option(tcp::no_delay(true));
        asio::co_spawn(acceptor.get_executor(),
                       echo(asio::ssl::stream<tcp::socket>(std::move(socket), ctx)),
                       asio::detached);
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s <port> <cert.pem> <key.pem>\n", argv[0]);
        return 2;
    }
    asio::ssl::context ctx(asio::ssl::context::tls_server);
    ctx.use_certificate_chain_file(argv[2]);
    ctx.use_private_key_file(argv[3], asio::ssl::context::pem);

    asio::io_context io(1);
    tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"),
                           static_cast<std::uint16_t>(std::atoi(argv[1])));
    tcp::acceptor acceptor(io);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(1024);
    std::printf("listening on 127.0.0.1:%u\n", acceptor.local_endpoint().port());
    std::fflush(stdout);

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const asio::error_code&, int signo) {
        std::fprintf(stderr, "tls_asio: signal %d, stopping\n", signo);
        io.stop();
    });
    asio::co_spawn(io, listen(acceptor, ctx), [](std::exception_ptr e) {
        if (e) {
            std::rethrow_exception(e);
        }
    });
    io.run();
    return 0;
}
