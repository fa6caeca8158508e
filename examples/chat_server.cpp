// SPDX-License-Identifier: MIT
// A line-based chat server: the first line a client sends is its name; every later line is
// broadcast to everyone else as "name: line". Serves until SIGINT or SIGTERM.
//
// Usage: chat_server <port>      (port 0 picks a free port; try it with `nc 127.0.0.1 <port>`)
//
// The asyncio equivalent:
//
//     clients = {}
//     async def member(reader, writer):
//         name = (await reader.readline()).decode().strip()
//         broadcast(f"* {name} joined\n"); clients[writer] = name
//         writer.write(f"* welcome {name} ({len(clients)} online)\n".encode())
//         while line := await reader.readline():
//             broadcast(f"{name}: {line.decode()}", but_not=writer)
//         del clients[writer]; broadcast(f"* {name} left\n"); writer.close()
#include <coring/coring.hpp>

#include <sys/signalfd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <memory>
#include <string>
#include <system_error>

struct Room {
    std::list<coring::StreamWriter> members;

    void broadcast(const std::string& line, const coring::StreamWriter* except = nullptr) {
        for (auto& w : members) {
            if (&w != except) {
                w.write(line); // buffered; a slow member does not hold up the others
            }
        }
    }
};

static coring::Task<>
member(std::shared_ptr<Room> room, coring::StreamReader reader, coring::StreamWriter writer) {
    std::string name = co_await reader.readline();
    while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) {
        name.pop_back();
    }
    if (name.empty()) {
        writer.close();
        co_return;
    }
    room->broadcast("* " + name + " joined\n");
    auto self = room->members.insert(room->members.end(), writer);

    struct Leave { // also when the task is cancelled at shutdown
        Room& room;
        std::list<coring::StreamWriter>::iterator it;

        ~Leave() { room.members.erase(it); }
    } leave{*room, self};

    std::printf("%s joined (%zu online)\n", name.c_str(), room->members.size());
    writer.write("* welcome " + name + " (" + std::to_string(room->members.size()) + " online)\n");
    try {
        for (;;) {
            std::string line = co_await reader.readline();
            if (line.empty()) {
                break; // EOF: the member left
            }
            room->broadcast(name + ": " + line, &*self);
        }
    } catch (const std::exception&) {
        // A reset connection or an over-long line: the member leaves.
    }
    room->broadcast("* " + name + " left\n", &*self);
    std::printf("%s left (%zu online)\n", name.c_str(), room->members.size() - 1);
    writer.close();
}

static coring::Task<int> amain(std::uint16_t port, int signal_fd) {
    coring::StreamReader signals = coring::connect_read_pipe(signal_fd);
    auto room = std::make_shared<Room>();
    // Named before the co_await: GCC 12 destroys a lambda written inside one twice (it would
    // release `room` twice), so coring refuses that form with GCC (docs/pitfalls.md).
    auto on_connect = [room](coring::StreamReader r, coring::StreamWriter w) {
        return member(room, std::move(r), std::move(w));
    };
    auto server = co_await coring::start_server(on_connect, "127.0.0.1", port);
    std::printf("listening on %s\n", server.sockets().at(0).getsockname().to_string().c_str());
    std::fflush(stdout);
    static_cast<void>(co_await signals.readexactly(sizeof(signalfd_siginfo)));
    server.close();
    std::printf("stopped with %zu members online\n", room->members.size());
    co_return 0;
}

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <port>\n", argv[0]);
        return 2;
    }
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
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
