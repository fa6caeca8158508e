// SPDX-License-Identifier: MIT
// Soak client for an echo server (examples/echo_server): many connections for a while, with
// mixed echo and readline traffic, reads cancelled by short wait_for deadlines, and random
// disconnects; it checks every byte that comes back (issue 10's soak).
//
// Usage: soak_client <port> <clients> <seconds> [seed]
// Prints one summary line and exits 0 only when no byte was lost, duplicated or reordered.
//
// The asyncio equivalent of one client round (readline mode):
//
//     writer.write(b"".join(lines)); await writer.drain()
//     for want in lines:
//         while True:
//             try: got = await asyncio.wait_for(reader.readline(), 0.0005); break
//             except TimeoutError: pass          # the cancelled read must lose nothing
//         assert got == want
#include <coring/coring.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <system_error>

using namespace std::chrono_literals;

namespace {

struct Totals {
    std::uint64_t rounds = 0;
    std::uint64_t bytes_checked = 0;
    std::uint64_t lines_checked = 0;
    std::uint64_t timeouts = 0;    // reads cancelled by wait_for
    std::uint64_t disconnects = 0; // connections dropped on purpose mid-round
    std::uint64_t connections = 0;
    std::uint64_t errors = 0;     // unexpected connection errors
    std::uint64_t mismatches = 0; // bytes lost, duplicated or reordered
};

Totals totals;

// One round of raw echo: a random blob, read back with a mix of read_into and readexactly.
coring::Task<bool> echo_round(coring::StreamReader& reader,
                              coring::StreamWriter& writer,
                              std::mt19937& rng,
                              std::uint64_t tag) {
    std::string blob(std::uniform_int_distribution<std::size_t>(1, 32768)(rng), '\0');
    for (std::size_t i = 0; i < blob.size(); ++i) {
        blob[i] = static_cast<char>('a' + (tag + i * 7) % 26);
    }
    writer.write(blob);
    co_await writer.drain();
    std::size_t got = 0;
    char buf[4096];
    while (got < blob.size()) {
        if (rng() % 2 == 0) {
            std::size_t n = co_await reader.read_into(buf);
            if (n == 0 || blob.compare(got, n, buf, n) != 0) {
                co_return false;
            }
            got += n;
        } else {
            std::size_t want = std::min<std::size_t>(blob.size() - got, 1 + rng() % 3000);
            std::string part = co_await reader.readexactly(want);
            if (blob.compare(got, want, part) != 0) {
                co_return false;
            }
            got += want;
        }
    }
    totals.bytes_checked += got;
    co_return true;
}

// One round of lines, each read by readline under a deadline short enough to expire often.
coring::Task<bool> line_round(coring::StreamReader& reader,
                              coring::StreamWriter& writer,
                              std::mt19937& rng,
                              std::uint64_t tag) {
    const int count = 1 + static_cast<int>(rng() % 50);
    std::string all;
    for (int i = 0; i < count; ++i) {
        all += "line " + std::to_string(tag) + " " + std::to_string(i) + "\n";
    }
    writer.write(all);
    co_await writer.drain();
    std::size_t pos = 0;
    for (int i = 0; i < count; ++i) {
        const std::size_t end = all.find('\n', pos) + 1;
        std::string line;
        // A line that never comes was lost: give up on it after 10,000 expiries (about 5 s).
        for (int expired = 0; expired < 10000; ++expired) {
            try {
                line = co_await coring::wait_for(reader.readline(), 500us);
                break;
            } catch (const coring::TimeoutError&) {
                ++totals.timeouts;
            }
        }
        if (all.compare(pos, end - pos, line) != 0) {
            co_return false;
        }
        totals.bytes_checked += line.size();
        ++totals.lines_checked;
        pos = end;
    }
    co_return true;
}

coring::Task<> client(std::uint16_t port,
                      std::uint32_t id,
                      coring::EventLoop::time_point deadline,
                      std::uint32_t seed) {
    std::mt19937 rng(seed * 7919 + id);
    coring::EventLoop& loop = coring::get_running_loop();
    std::uint64_t tag = static_cast<std::uint64_t>(id) << 32;
    while (loop.time() < deadline) {
        bool failed = false;
        try {
            auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port);
            ++totals.connections;
            const int rounds = 1 + static_cast<int>(rng() % 20);
            for (int r = 0; r < rounds && loop.time() < deadline; ++r) {
                if (rng() % 100 < 3) {
                    // Drop the connection with data still on the way, as a crashed client would.
                    writer.write("abandoned line\n");
                    ++totals.disconnects;
                    break;
                }
                const bool ok = rng() % 2 == 0 ? co_await echo_round(reader, writer, rng, ++tag)
                                               : co_await line_round(reader, writer, rng, ++tag);
                if (!ok) {
                    ++totals.mismatches;
                    break;
                }
                ++totals.rounds;
            }
            writer.close();
            co_await writer.wait_closed();
        } catch (const std::system_error& e) {
            ++totals.errors;
            std::fprintf(stderr, "soak_client %u: %s\n", id, e.what());
            failed = true;
        } catch (const coring::IncompleteReadError& e) {
            ++totals.errors;
            std::fprintf(stderr, "soak_client %u: %s\n", id, e.what());
            failed = true;
        }
        if (failed) {
            co_await coring::sleep(10ms); // not inside the handler: C++ forbids co_await there
        }
    }
}

coring::Task<int>
amain(std::uint16_t port, std::uint32_t clients, int seconds, std::uint32_t seed) {
    coring::EventLoop& loop = coring::get_running_loop();
    const auto deadline = loop.time() + std::chrono::seconds(seconds);
    std::vector<coring::Task<>> all;
    all.reserve(clients);
    for (std::uint32_t i = 0; i < clients; ++i) {
        all.push_back(client(port, i, deadline, seed));
    }
    co_await coring::gather(std::move(all));
    std::printf("soak: %u clients, %d s: %llu connections, %llu rounds, %llu bytes and %llu lines "
                "checked, %llu reads cancelled by timeouts, %llu disconnects, %llu errors, %llu "
                "mismatches\n",
                clients,
                seconds,
                static_cast<unsigned long long>(totals.connections),
                static_cast<unsigned long long>(totals.rounds),
                static_cast<unsigned long long>(totals.bytes_checked),
                static_cast<unsigned long long>(totals.lines_checked),
                static_cast<unsigned long long>(totals.timeouts),
                static_cast<unsigned long long>(totals.disconnects),
                static_cast<unsigned long long>(totals.errors),
                static_cast<unsigned long long>(totals.mismatches));
    co_return totals.mismatches == 0 && totals.errors == 0 && totals.rounds > 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s <port> <clients> <seconds> [seed]\n", argv[0]);
        return 2;
    }
    const auto port = static_cast<std::uint16_t>(std::strtoul(argv[1], nullptr, 10));
    const auto clients = static_cast<std::uint32_t>(std::strtoul(argv[2], nullptr, 10));
    const int seconds = std::atoi(argv[3]);
    const auto seed = static_cast<std::uint32_t>(argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 1);
    return coring::run(amain(port, clients, seconds, seed));
}
