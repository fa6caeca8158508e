// SPDX-License-Identifier: MIT
// TLS streams (coring::tls) at scale (issue 12): 1,000 TLS connections open at once between a
// coring client and a coring server, each with a round trip; 64 MiB each way through one
// connection with drain back-pressure, verified by checksum. Tagged [slow]: they still run in
// the tls label (CTest), in a few seconds.
#include <coring/coring.hpp>
#include <coring/testing/catch2.hpp>
#include <coring/tls.hpp>

#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "net/net_helpers.hpp"
#include "support/test_support.hpp"
#include "tls/tls_certs.hpp"

using namespace std::chrono_literals;
using coring::StreamReader;
using coring::StreamWriter;
using coring::Task;
using coring::tls::SslContext;

namespace {

using coring::test::client_ctx;
using coring::test::localhost;
using coring::test::server_ctx;

// Bounds the waits of a test that, when all goes well, ends in a few seconds.
constexpr auto guard = 50s;

/// Raises RLIMIT_NOFILE's soft limit towards the hard one for its lifetime.
class FdLimit {
public:
    explicit FdLimit(rlim_t want) {
        ::getrlimit(RLIMIT_NOFILE, &old_);
        rlimit raised = old_;
        if (raised.rlim_cur < want) {
            raised.rlim_cur = std::min(want, raised.rlim_max);
            ::setrlimit(RLIMIT_NOFILE, &raised);
        }
        ::getrlimit(RLIMIT_NOFILE, &now_);
    }

    FdLimit(const FdLimit&) = delete;
    FdLimit& operator=(const FdLimit&) = delete;

    ~FdLimit() { ::setrlimit(RLIMIT_NOFILE, &old_); }

    rlim_t soft() const noexcept { return now_.rlim_cur; }

    rlim_t hard() const noexcept { return now_.rlim_max; }

private:
    rlimit old_{};
    rlimit now_{};
};

/// What the clients and the server of the crowd test count.
struct Crowd {
    std::size_t size = 0;
    std::size_t connected = 0;  // clients past the handshake (or failed)
    std::size_t matched = 0;    // round trips that came back right
    std::size_t served_now = 0; // server connections in their callback
    std::size_t served_max = 0; // the most at once
    std::vector<std::string> errors;
    coring::Event all_connected; // every client is connected: the round trips start
};

Task<> crowd_server(Crowd& crowd, StreamReader r, StreamWriter w) {
    crowd.served_max = std::max(crowd.served_max, ++crowd.served_now);
    try {
        std::string line = co_await r.readline();
        w.write(line);
        static_cast<void>(co_await r.read()); // until the client closes
        w.close();
        co_await w.wait_closed();
    } catch (const coring::ConnectionError&) {
        // A TLS 1.3 client that closes without reading its session tickets resets.
    } catch (const coring::tls::SslError&) {
    }
    --crowd.served_now;
}

void arrived(Crowd& crowd) {
    if (++crowd.connected == crowd.size) {
        crowd.all_connected.set();
    }
}

Task<> crowd_client(SslContext& ctx, std::uint16_t port, std::size_t i, Crowd& crowd) {
    std::string line = "client " + std::to_string(i) + "\n";
    try {
        auto [reader, writer] = co_await coring::open_connection(
                "127.0.0.1", port, {.ssl = ctx, .server_hostname = localhost});
        arrived(crowd);
        co_await crowd.all_connected.wait(); // all 1,000 are open now
        writer.write(line);
        std::string back = co_await reader.readline();
        if (back == line) {
            ++crowd.matched;
        }
        writer.close();
        co_await writer.wait_closed();
    } catch (const std::exception& e) {
        if (crowd.connected < crowd.size) {
            arrived(crowd);
        }
        if (crowd.errors.size() < 5) {
            crowd.errors.push_back(line + ": " + e.what());
        }
    }
}

// The connections open at once. All 1,000 in sanitizer builds too: there they take about 7 s
// (the handshakes' cryptography runs in the uninstrumented libcrypto), well inside CTest's 60 s.
constexpr std::size_t crowd_size = 1000;

/// FNV-1a, 64 bits.
struct Checksum {
    std::uint64_t value = 0xcbf29ce484222325ULL;

    void add(std::string_view data) noexcept {
        for (char c : data) {
            value = (value ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
        }
    }
};

/// xorshift64: the bytes the client sends.
struct Stream {
    std::uint64_t state = 0x9e3779b97f4a7c15ULL;

    void fill(std::string& chunk) noexcept {
        for (std::size_t i = 0; i + 8 <= chunk.size(); i += 8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            std::memcpy(chunk.data() + i, &state, 8);
        }
    }
};

Task<> echo_with_drain(StreamReader r, StreamWriter w) {
    std::string buf(64 * 1024, '\0');
    try {
        for (;;) {
            std::size_t n = co_await r.read_into(buf);
            if (n == 0) {
                break;
            }
            w.write(std::string_view(buf.data(), n));
            co_await w.drain();
        }
        w.close();
        co_await w.wait_closed();
    } catch (const coring::ConnectionError&) {
    }
}

} // namespace

TEST_CASE("TLS scale: 1,000 TLS connections open at once, each with a round trip", "[tls][slow]") {
    // Each connection takes two descriptors here (client and server side).
    const rlim_t need = 2 * crowd_size + 100;
    FdLimit limit(need);
    if (limit.soft() < need) {
        CORING_SKIP("RLIMIT_NOFILE is " << limit.soft() << " (hard limit " << limit.hard()
                                        << "), below the " << need << " descriptors " << crowd_size
                                        << " TLS connections need");
    }
    coring::test::run_test([]() -> Task<> {
        Crowd crowd;
        crowd.size = crowd_size;
        SslContext sctx = server_ctx();
        auto server = co_await coring::start_server(
                [&crowd](StreamReader r, StreamWriter w) { return crowd_server(crowd, r, w); },
                "127.0.0.1",
                0,
                {.backlog = 1024, .ssl = sctx});
        SslContext cctx = client_ctx();
        std::uint16_t port = coring::test::port_of(server);
        std::vector<coring::TaskHandle<void>> clients;
        clients.reserve(crowd_size);
        for (std::size_t i = 0; i < crowd_size; ++i) {
            clients.push_back(coring::create_task(crowd_client(cctx, port, i, crowd)));
        }
        for (auto& c : clients) {
            co_await coring::wait_for(c, guard);
        }
        INFO("first errors: " << (crowd.errors.empty() ? "none" : crowd.errors.front()));
        CHECK(crowd.errors.empty());
        CHECK(crowd.matched == crowd_size);
        CHECK(crowd.served_max == crowd_size); // all were open at the same time
        server.close();
        co_await server.wait_closed();
    });
}

CORING_TEST_CASE("TLS scale: 64 MiB each way through one connection with drain back-pressure",
                 "[tls][slow]") {
    SslContext sctx = server_ctx();
    auto server = co_await coring::start_server(echo_with_drain, "127.0.0.1", 0, {.ssl = sctx});
    SslContext cctx = client_ctx();
    auto [reader, writer] =
            co_await coring::open_connection("127.0.0.1",
                                             coring::test::port_of(server),
                                             {.ssl = cctx, .server_hostname = localhost});
    constexpr std::size_t total = std::size_t{64} << 20;
    constexpr std::size_t chunk_size = 256 * 1024;

    struct Sent {
        Checksum sum;
        std::size_t paused = 0;           // drains that had to wait: above the high mark
        std::size_t most_after_drain = 0; // the largest write buffer a drain returned with
    } sent;

    auto sender = coring::create_task([](StreamWriter w, Sent& s) -> Task<> {
        Stream stream;
        std::string chunk(chunk_size, '\0');
        for (std::size_t n = 0; n < total; n += chunk.size()) {
            stream.fill(chunk);
            s.sum.add(chunk);
            w.write(chunk);
            if (w.get_write_buffer_size() > w.get_write_buffer_limits().second) {
                ++s.paused;
            }
            co_await w.drain();
            s.most_after_drain = std::max(s.most_after_drain, w.get_write_buffer_size());
        }
    }(writer, sent));

    Checksum received;
    std::size_t got = 0;
    while (got < total) {
        std::string part = co_await coring::wait_for(reader.read(256 * 1024), guard);
        REQUIRE_FALSE(part.empty());
        received.add(part);
        got += part.size();
    }
    co_await coring::wait_for(sender, guard);
    CHECK(got == total);
    CHECK(received.value == sent.sum.value);
    // Every 256 KiB write went above the 64 KiB high-water mark, and drain let the writer
    // go on only once the buffer was back at the low-water mark.
    CHECK(sent.paused == total / chunk_size);
    CHECK(sent.most_after_drain <= writer.get_write_buffer_limits().first);
    writer.close();
    co_await writer.wait_closed();
    server.close();
    co_await server.wait_closed();
}
