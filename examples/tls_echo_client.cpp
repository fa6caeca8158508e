// SPDX-License-Identifier: MIT
// TLS echo client: connects to 127.0.0.1:<port>, verifies the server against a CA file and a
// host name, sends lines and prints the replies.
//
// Usage: tls_echo_client <port> <ca.pem> <server_hostname> [line...]
//
// The asyncio equivalent:
//
//     async def main(port, cafile, hostname, lines):
//         ctx = ssl.create_default_context(cafile=cafile)
//         reader, writer = await asyncio.open_connection(
//             "127.0.0.1", port, ssl=ctx, server_hostname=hostname)
//         print(writer.get_extra_info("ssl_object").version())
//         for line in lines:
//             writer.write(line.encode() + b"\n")
//             print((await reader.readline()).decode(), end="")
//         writer.close()
//         await writer.wait_closed()
//
// Connecting to an address and naming the host separately is what a client does when it has
// resolved the name itself: SNI and the certificate check use server_hostname.
#include <coring/coring.hpp>
#include <coring/tls.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

static coring::Task<int> amain(std::uint16_t port,
                               std::string cafile,
                               std::string hostname,
                               std::vector<std::string> lines) {
    auto ctx = coring::tls::SslContext::client(); // verifies, checks the host name
    ctx.load_verify_locations(cafile);
    coring::ConnectOptions options;
    options.ssl = ctx;
    options.server_hostname = coring::HostName(hostname);
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port, options);
    auto tls = std::any_cast<coring::tls::SslObject>(writer.get_extra_info("ssl_object"));
    std::printf("connected: %s, %s\n", tls.version().c_str(), tls.cipher().c_str());

    int mismatches = 0;
    for (const std::string& line : lines) {
        writer.write(line + "\n");
        co_await writer.drain();
        std::string reply = co_await reader.readline();
        std::printf("%s", reply.c_str());
        mismatches += reply == line + "\n" ? 0 : 1;
    }
    writer.close(); // sends close_notify after what is buffered
    co_await writer.wait_closed();
    co_return mismatches == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s <port> <ca.pem> <server_hostname> [line...]\n", argv[0]);
        return 2;
    }
    auto port = static_cast<std::uint16_t>(std::strtoul(argv[1], nullptr, 10));
    std::vector<std::string> lines(argv + 4, argv + argc);
    if (lines.empty()) {
        lines = {"hello", "over TLS", "through io_uring"};
    }
    try {
        return coring::run(amain(port, argv[2], argv[3], std::move(lines)));
    } catch (const coring::tls::SslCertVerificationError& e) {
        std::fprintf(stderr, "tls_echo_client: untrusted server: %s\n", e.verify_message().c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tls_echo_client: %s\n", e.what());
    }
    return 1;
}
