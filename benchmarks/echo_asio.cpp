// SPDX-License-Identifier: MIT
// Peer of the echo benchmark in standalone Asio (C++20 coroutines), the form of Asio's own
// cpp20 coroutine echo example. Built twice: bench_echo_asio on the io_uring backend
// (ASIO_HAS_IO_URING, ASIO_DISABLE_EPOLL) and bench_echo_asio_epoll on the default epoll one.
//
// Usage: bench_echo_asio[_epoll] <port>   (port 0 picks a free port)
// Prints "listening on 127.0.0.1:<port>" on stdout; serves until SIGINT or SIGTERM.
//
// One coroutine per connection: async_read_some into a 16 KiB buffer, async_write of what
// arrived; a single-threaded io_context(1).
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>

using asio::ip::tcp;

namespace {

asio::awaitable<void> echo(tcp::socket socket) {
    char buf[16384];
    try {
        for (;;) {
            std::size_t n = co_await socket.async_read_some(asio::buffer(buf), asio::use_awaitable);
            co_await asio::async_write(socket, asio::buffer(buf, n), asio::use_awaitable);
        }
    } catch (const std::exception&) {
        // EOF or a reset connection: the coroutine ends and closes the socket.
    }
}

asio::awaitable<void> listen(tcp::acceptor& acceptor) {
    for (;;) {
        tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
        socket.set_option(tcp::no_delay(true));
        asio::co_spawn(acceptor.get_executor(), echo(std::move(socket)), asio::detached);
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <port>\n", argv[0]);
        return 2;
    }
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
        std::fprintf(stderr, "echo_asio: signal %d, stopping\n", signo);
        io.stop();
    });
    asio::co_spawn(io, listen(acceptor), [](std::exception_ptr e) {
        if (e) {
            std::rethrow_exception(e);
        }
    });
    io.run();
    return 0;
}
