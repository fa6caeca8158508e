// SPDX-License-Identifier: MIT
// Tests of ServerOptions::max_connections (streams.hpp): at the limit the Server stops
// accepting, the listen backlog holds the next connections, and accepting resumes when one
// closes (what asyncio's loop does with _stop_serving / _start_serving on a full server).
#include <coring/sleep.hpp>
#include <coring/streams.hpp>
#include <coring/testing/catch2.hpp>
#include <coring/wait.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "net/net_helpers.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::StreamReader;
using coring::StreamWriter;
using coring::Task;
using coring::test::port_of;

namespace {

// Says "hi\n" when accepted, then echoes lines until EOF.
Task<> greeter(StreamReader reader, StreamWriter writer) {
    writer.write("hi\n");
    for (;;) {
        std::string line = co_await reader.readline();
        if (line.empty()) {
            break;
        }
        writer.write(line);
    }
    writer.close();
}

// Whether a line arrives within `wait`.
Task<bool> greeted(StreamReader& reader, std::chrono::milliseconds wait) {
    bool got = false;
    try {
        std::string line = co_await coring::wait_for(reader.readline(), wait);
        got = line == "hi\n";
    } catch (const coring::TimeoutError&) {
    }
    co_return got;
}

} // namespace

CORING_TEST_CASE("Server: max_connections pauses accepting until a connection closes",
                 "[net][streams][server]") {
    coring::ServerOptions o;
    o.max_connections = 3;
    auto server = co_await coring::start_server(greeter, "127.0.0.1", 0, o);
    std::uint16_t port = port_of(server);
    std::vector<std::pair<StreamReader, StreamWriter>> clients;
    for (int i = 0; i < 5; ++i) {
        auto c = co_await coring::open_connection("127.0.0.1", port); // the backlog takes it
        clients.push_back(std::move(c));
    }
    for (int i = 0; i < 3; ++i) {
        bool got = co_await greeted(clients[i].first, 5s);
        CHECK(got);
    }
    bool fourth = co_await greeted(clients[3].first, 300ms);
    CHECK(!fourth); // waits in the backlog, not accepted
    CHECK(server.connection_count() == 3);
    // One closes: exactly one more is accepted.
    clients[0].second.close();
    bool got4 = co_await greeted(clients[3].first, 5s);
    CHECK(got4);
    bool fifth = co_await greeted(clients[4].first, 300ms);
    CHECK(!fifth);
    CHECK(server.connection_count() == 3);
    clients[1].second.close();
    bool got5 = co_await greeted(clients[4].first, 5s);
    CHECK(got5);
    CHECK(server.connection_count() == 3);
    for (auto& c : clients) {
        c.second.close();
    }
    server.close();
    co_await server.wait_closed();
    CHECK(server.connection_count() == 0);
}
