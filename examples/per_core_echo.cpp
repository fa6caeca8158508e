// SPDX-License-Identifier: MIT
// Per-core echo server: one event loop per CPU (coring::LoopGroup), each with its own
// SO_REUSEPORT listener on the same port; loop 0 also runs a few clients, then everything
// shuts down. No asyncio equivalent (asyncio runs one loop per process).
#include <coring/loop_group.hpp>
#include <coring/sleep.hpp>
#include <coring/streams.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;

namespace {

std::atomic<std::uint16_t> g_port{0};
std::atomic<std::size_t> g_listening{0};
std::atomic<bool> g_done{false};

coring::Task<> echo(coring::StreamReader reader, coring::StreamWriter writer) {
    for (;;) {
        std::string line = co_await reader.readline();
        if (line.empty()) {
            break;
        }
        writer.write(line);
        co_await writer.drain();
    }
    writer.close();
    co_await writer.wait_closed();
}

coring::Task<int> client(int k) {
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", g_port.load());
    std::string msg = "hello " + std::to_string(k) + "\n";
    writer.write(msg);
    co_await writer.drain();
    std::string back = co_await reader.readline();
    writer.close();
    co_await writer.wait_closed();
    co_return back == msg ? 1 : 0;
}

// Wait on this loop until flag() is true, polling gently (the loops share nothing else).
template <class Pred>
coring::Task<> wait_until(Pred flag) {
    for (;;) {
        if (flag()) {
            co_return;
        }
        co_await coring::sleep(1ms);
    }
}

coring::Task<int> serve(coring::LoopGroup& group, std::size_t i) {
    coring::ServerOptions options{};
    options.reuse_port = true; // every loop listens on the same port; the kernel spreads
    if (i != 0) {
        co_await wait_until([] { return g_port.load() != 0; });
    }
    auto server = co_await coring::start_server(echo, "127.0.0.1", g_port.load(), options);
    if (i == 0) {
        g_port.store(server.sockets().front().getsockname().port());
    }
    g_listening.fetch_add(1);
    int ok = 0;
    if (i == 0) {
        co_await wait_until([&group] { return g_listening.load() == group.size(); });
        for (int k = 0; k < 20; ++k) {
            ok += co_await client(k);
        }
        g_done.store(true);
    } else {
        co_await wait_until([] { return g_done.load(); });
    }
    server.close();
    co_await server.wait_closed();
    co_return ok;
}

} // namespace

int main() {
    coring::LoopGroup group({.loops = 2, .pin = true});
    std::vector<int> ok = group.run([&group](std::size_t i) { return serve(group, i); });
    std::printf("%zu loops served port %u; %d of 20 echoes came back intact\n",
                group.size(),
                static_cast<unsigned>(g_port.load()),
                ok[0]);
    return ok[0] == 20 ? 0 : 1;
}
