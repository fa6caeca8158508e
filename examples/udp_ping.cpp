// SPDX-License-Identifier: MIT
// UDP ping: an echoing endpoint and a client endpoint in one program; the client sends five
// pings and prints each round-trip time.
//
// The asyncio equivalent (with protocols instead of awaitable endpoints):
//
//     class Echo(asyncio.DatagramProtocol):
//         def connection_made(self, transport): self.transport = transport
//         def datagram_received(self, data, addr): self.transport.sendto(data, addr)
//
//     echo, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
//     client, proto = await loop.create_datagram_endpoint(
//         Pinger, remote_addr=echo.get_extra_info("sockname"))
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <string>

static coring::Task<> echo(coring::DatagramEndpoint ep) {
    for (;;) {
        auto [data, from] = co_await ep.recvfrom();
        co_await ep.sendto(data, from);
    }
}

static coring::Task<int> amain() {
    coring::DatagramOptions server_options;
    server_options.local_addr = coring::HostPort{"127.0.0.1", 0};
    auto server = co_await coring::create_datagram_endpoint(server_options);
    auto address = server.sockname();
    std::printf("echo endpoint on %s\n", address.to_string().c_str());
    auto echoing = coring::create_task(echo(server));

    coring::DatagramOptions client_options;
    client_options.remote_addr = coring::HostPort{address.host(), address.port()};
    auto client = co_await coring::create_datagram_endpoint(client_options);
    int answered = 0;
    for (int seq = 1; seq <= 5; ++seq) {
        std::string ping = "ping " + std::to_string(seq);
        auto start = std::chrono::steady_clock::now();
        co_await client.sendto(ping);
        auto [pong, from] = co_await client.recvfrom();
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
        std::printf("%s from %s: %lld us\n",
                    pong.c_str(),
                    from.to_string().c_str(),
                    static_cast<long long>(us));
        answered += pong == ping ? 1 : 0;
    }
    echoing.cancel(); // the echo loop runs forever otherwise
    client.close();
    server.close();
    co_return answered == 5 ? 0 : 1;
}

int main() {
    return coring::run(amain());
}
