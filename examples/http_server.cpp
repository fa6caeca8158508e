// SPDX-License-Identifier: MIT
// A minimal HTTP/1.1 server: GET / answers a small JSON document; connections are kept alive
// unless the client asks to close. Serves until SIGINT or SIGTERM.
//
// Usage: http_server <port>      (port 0 picks a free port; try `curl 127.0.0.1:<port>/`)
//
// The asyncio equivalent:
//
//     async def handle(reader, writer):
//         while True:
//             try:
//                 head = await reader.readuntil(b"\r\n\r\n")
//             except asyncio.IncompleteReadError:
//                 break
//             method, path, _ = head.split(b"\r\n")[0].split(b" ")
//             body = b'{"message": "hello from coring"}' if path == b"/" else b'{"error": ...}'
//             writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" ...)
//             await writer.drain()
//             if b"connection: close" in head.lower():
//                 break
//         writer.close()
#include <coring/coring.hpp>

#include <sys/signalfd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>

static std::size_t served = 0;

static std::string response(const std::string& head) {
    std::string line = head.substr(0, head.find("\r\n"));
    std::size_t sp1 = line.find(' ');
    std::size_t sp2 = line.find(' ', sp1 + 1);
    std::string method = line.substr(0, sp1);
    std::string path = sp1 == std::string::npos ? "" : line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string status = "200 OK";
    std::string body;
    if (method != "GET") {
        status = "405 Method Not Allowed";
        body = R"({"error": "only GET is served"})";
    } else if (path != "/") {
        status = "404 Not Found";
        body = R"({"error": "not found", "path": ")" + path + "\"}";
    } else {
        body = R"({"message": "hello from coring", "request": )" + std::to_string(++served) + "}";
    }
    return "HTTP/1.1 " + status +
           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
}

static coring::Task<> handle(coring::StreamReader reader, coring::StreamWriter writer) {
    try {
        for (;;) {
            std::string head = co_await reader.readuntil("\r\n\r\n"); // request line + headers
            writer.write(response(head));
            co_await writer.drain();
            std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) {
                return static_cast<char>(std::tolower(c));
            });
            if (head.find("\r\nconnection: close") != std::string::npos) {
                break;
            }
        }
    } catch (const coring::IncompleteReadError&) {
        // The client closed the connection between requests.
    } catch (const coring::LimitOverrunError&) {
        writer.write("HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n");
    } catch (const std::system_error&) {
        // A reset connection.
    }
    writer.close();
}

static coring::Task<int> amain(std::uint16_t port, int signal_fd) {
    coring::StreamReader signals = coring::connect_read_pipe(signal_fd);
    auto server = co_await coring::start_server(handle, "127.0.0.1", port);
    std::printf("listening on %s\n", server.sockets().at(0).getsockname().to_string().c_str());
    std::fflush(stdout);
    static_cast<void>(co_await signals.readexactly(sizeof(signalfd_siginfo)));
    server.close();
    std::printf("served %zu requests\n", served);
    co_return 0;
}

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <port>\n", argv[0]);
        return 2;
    }
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, nullptr); // received through a signalfd, as in echo_server
    int signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (signal_fd < 0) {
        std::perror("signalfd");
        return 1;
    }
    return coring::run(amain(static_cast<std::uint16_t>(std::atoi(argv[1])), signal_fd));
}
