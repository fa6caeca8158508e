// SPDX-License-Identifier: MIT
// Tests of coring/testing/stream_pair.hpp: both directions, chunking, injected read and write
// failures, backpressure, half-close and close, and that the pair holds no fd and no task.
// clang-format off
#include <coring/testing/stream_pair.hpp> // first: it must compile on its own
// clang-format on

#include <coring/debug.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

using coring::testing::open_stream_pair;
using coring::testing::StreamPairOptions;

CORING_TEST_CASE("stream pair: bytes flow both ways", "[testing][stream-pair]") {
    auto pair = co_await open_stream_pair();
    pair.peer_writer.write("ping\n");
    std::string got = co_await pair.reader.readline();
    CHECK(got == "ping\n");
    pair.writer.write("pong\n");
    co_await pair.writer.drain();
    std::string answer = co_await pair.peer_reader.readline();
    CHECK(answer == "pong\n");

    pair.peer_writer.close(); // EOF to the code under test
    std::string rest = co_await pair.reader.read();
    CHECK(rest.empty());
    CHECK(pair.reader.at_eof());
    pair.writer.close();
    co_await pair.writer.wait_closed();
    co_await pair.peer_writer.wait_closed();
}

CORING_TEST_CASE("stream pair: chunk_size splits what the reader receives",
                 "[testing][stream-pair]") {
    StreamPairOptions options;
    options.chunk_size = 3;
    auto pair = co_await open_stream_pair(options);
    pair.peer_writer.write("abcdefgh");
    pair.peer_writer.close();
    std::vector<std::string> pieces;
    for (;;) {
        std::string piece = co_await pair.reader.read(100);
        if (piece.empty()) {
            break;
        }
        pieces.push_back(piece);
    }
    CHECK(pieces == std::vector<std::string>{"abc", "def", "gh"});
    pair.writer.close();
    co_await pair.writer.wait_closed();
}

CORING_TEST_CASE("stream pair: a line parser fed byte by byte", "[testing][stream-pair]") {
    StreamPairOptions options;
    options.chunk_size = 1;
    auto pair = co_await open_stream_pair(options);
    pair.peer_writer.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    std::vector<std::string> lines;
    for (int i = 0; i < 3; ++i) {
        std::string line = co_await pair.reader.readline();
        lines.push_back(line);
    }
    CHECK(lines == std::vector<std::string>{"GET / HTTP/1.1\r\n", "Host: x\r\n", "\r\n"});
    pair.peer_writer.close();
    pair.writer.close();
    co_await pair.writer.wait_closed();
}

CORING_TEST_CASE("stream pair: fail_reads_after resets the connection mid-message",
                 "[testing][stream-pair]") {
    StreamPairOptions options;
    options.fail_reads_after = 5;
    auto pair = co_await open_stream_pair(options);
    pair.peer_writer.write("0123456789\n");
    std::string first = co_await pair.reader.readexactly(5);
    CHECK(first == "01234");
    CORING_CO_CHECK_THROWS_AS(pair.reader.readline(), coring::ConnectionResetError);
    pair.peer_writer.close();
    pair.writer.close();
    co_await pair.writer.wait_closed();
}

CORING_TEST_CASE("stream pair: fail_writes_after makes later writes fail",
                 "[testing][stream-pair]") {
    StreamPairOptions options;
    options.fail_writes_after = 4;
    auto pair = co_await open_stream_pair(options);
    pair.writer.write("abcd");
    co_await pair.writer.drain();
    std::string got = co_await pair.peer_reader.read();
    CHECK(got == "abcd");
    CHECK(pair.peer_reader.at_eof());
    co_await pair.peer_writer.wait_closed();
    bool failed = false;
    for (int i = 0; i < 100 && !failed; ++i) { // a write's error shows once its send completed
        try {
            pair.writer.write("more");
            co_await pair.writer.drain();
            co_await coring::sleep(std::chrono::seconds(0)); // the send leaves on the next pass
        } catch (const coring::ConnectionError&) {
            failed = true;
        }
    }
    CHECK(failed);
    pair.writer.close();
    try {
        co_await pair.writer.wait_closed(); // may report the same broken pipe again
    } catch (const coring::ConnectionError&) {
    }
}

namespace {

// Bytes that show where they came from: position i holds ('a' + i % 23).
std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>('a' + i % 23);
    }
    return s;
}

} // namespace

CORING_TEST_CASE("stream pair: no socket, no descriptor, no task", "[testing][stream-pair]") {
    const auto fds_before = coring::testing::open_fds();
    auto pair = co_await open_stream_pair();
    CHECK(coring::testing::open_fds() == fds_before);
    const std::string tasks = coring::format_tasks();
    CHECK(tasks.rfind("1 pending task", 0) == 0); // only this test's main
    CHECK(tasks.find("stream-pair") == std::string::npos);
    CHECK_FALSE(pair.writer.get_extra_info("peername").has_value());
    CHECK(pair.writer.can_write_eof());
    pair.peer_writer.write("x");
    CORING_CO_CHECK(pair.reader.read(10) == std::string("x"));
    // Left open on purpose: the pair needs no closing for the leak checks to pass.
}

CORING_TEST_CASE("stream pair: a write arrives at the next iteration, not before",
                 "[testing][stream-pair]") {
    auto pair = co_await open_stream_pair();
    pair.writer.write("abc");
    CHECK(pair.peer_reader.buffered() == 0);
    co_await coring::sleep(std::chrono::seconds(0));
    co_await coring::sleep(std::chrono::seconds(0));
    CHECK(pair.peer_reader.buffered() == 3);
}

CORING_TEST_CASE("stream pair: 1 MiB each way arrives whole and in order, with drain waiting",
                 "[testing][stream-pair]") {
    StreamPairOptions options;
    options.limit = 4096; // buffers take 8 KiB: most of the 1 MiB waits in the writers
    auto pair = co_await open_stream_pair(options);
    const std::string data = pattern(1 << 20);
    pair.writer.write(data);
    pair.peer_writer.write(data);
    CHECK(pair.writer.get_write_buffer_size() > 64 * 1024); // above the high-water mark
    auto drain = [&]() -> coring::Task<> {
        co_await pair.writer.drain(); // waits until the peer has read most of it
    };
    auto drained = coring::create_task(drain());
    co_await coring::sleep(std::chrono::seconds(0));
    co_await coring::sleep(std::chrono::seconds(0));
    CHECK_FALSE(drained.done()); // nobody reads yet: drain is still waiting
    std::string got = co_await pair.peer_reader.readexactly(data.size());
    CHECK(got == data);
    co_await drained;
    std::string back = co_await pair.reader.readexactly(data.size()); // more than twice the limit
    CHECK(back == data);
    pair.writer.close();
    pair.peer_writer.close();
    co_await pair.writer.wait_closed();
    co_await pair.peer_writer.wait_closed();
}

CORING_TEST_CASE("stream pair: chunk_size pieces of a large write keep every byte",
                 "[testing][stream-pair]") {
    StreamPairOptions options;
    options.chunk_size = 7;
    auto pair = co_await open_stream_pair(options);
    const std::string data = pattern(10'000);
    pair.peer_writer.write(data);
    pair.peer_writer.close();
    std::string got;
    std::size_t pieces = 0;
    for (;;) {
        std::string piece = co_await pair.reader.read(1000);
        if (piece.empty()) {
            break;
        }
        CHECK(piece.size() <= 7);
        got += piece;
        ++pieces;
    }
    CHECK(got == data);
    CHECK(pieces == (10'000 + 6) / 7);
    co_await pair.peer_writer.wait_closed();
}

CORING_TEST_CASE("stream pair: write_eof half-closes, the other direction still works",
                 "[testing][stream-pair]") {
    auto pair = co_await open_stream_pair();
    pair.peer_writer.write("request");
    pair.peer_writer.write_eof();
    std::string request = co_await pair.reader.read(); // to EOF
    CHECK(request == "request");
    CHECK(pair.reader.at_eof());
    pair.writer.write("answer");
    pair.writer.close();
    std::string answer = co_await pair.peer_reader.read();
    CHECK(answer == "answer");
    co_await pair.writer.wait_closed();
    CHECK_THROWS_AS(pair.peer_writer.write("more"), coring::RuntimeError); // after write_eof
}

CORING_TEST_CASE("stream pair: after the peer closes, what it wrote is still read, then writes "
                 "fail with BrokenPipeError",
                 "[testing][stream-pair]") {
    auto pair = co_await open_stream_pair();
    pair.peer_writer.write("last words");
    pair.peer_writer.close();
    co_await pair.peer_writer.wait_closed();
    std::string got = co_await pair.reader.read();
    CHECK(got == "last words");
    CORING_CO_CHECK(pair.reader.read() == std::string()); // EOF
    pair.writer.write("too late");
    co_await coring::sleep(std::chrono::seconds(0));
    CORING_CO_CHECK_THROWS_AS(pair.writer.drain(), coring::BrokenPipeError);
    CHECK(pair.writer.is_closing());
    CORING_CO_CHECK_THROWS_AS(pair.writer.wait_closed(), coring::BrokenPipeError);
}

CORING_TEST_CASE("stream pair: dropping an end's handles is EOF after its unsent bytes",
                 "[testing][stream-pair]") {
    StreamPairOptions options;
    options.chunk_size = 4; // the bytes are still in the dropped writer when it goes
    auto pair = co_await open_stream_pair(options);
    {
        auto gone_reader = std::move(pair.peer_reader);
        auto gone_writer = std::move(pair.peer_writer);
        gone_writer.write("0123456789");
    }
    std::string got = co_await pair.reader.read(); // to EOF
    CHECK(got == "0123456789");
    CHECK(pair.reader.at_eof());
}

CORING_TEST_CASE("stream pair: abort drops unsent bytes, the peer sees EOF",
                 "[testing][stream-pair]") {
    StreamPairOptions options;
    options.chunk_size = 2;
    auto pair = co_await open_stream_pair(options);
    pair.peer_writer.write("abcdef");
    co_await coring::sleep(std::chrono::seconds(0)); // "ab" arrives
    pair.peer_writer.abort();
    std::string got = co_await pair.reader.read();
    CHECK(got == "ab");
    CORING_CO_CHECK(pair.reader.read() == std::string());
}

CORING_TEST_CASE("stream pair: fail_reads_after fails the wait for the byte after the budget",
                 "[testing][stream-pair]") {
    StreamPairOptions options;
    options.fail_reads_after = 3;
    auto pair = co_await open_stream_pair(options);
    pair.peer_writer.write("abc"); // exactly the budget: nothing more is written
    std::string first = co_await pair.reader.readexactly(3);
    CHECK(first == "abc");
    CORING_CO_CHECK_THROWS_AS(pair.reader.read(1), coring::ConnectionResetError);
    pair.peer_writer.write("lost");
    co_await pair.peer_writer.drain(); // accepted and dropped, as a reset connection would
    pair.writer.write("the other way still works");
    std::string back = co_await pair.peer_reader.readexactly(25);
    CHECK(back == "the other way still works");
}

CORING_TEST_CASE("stream pair: fail_writes_after 0 makes the first write fail",
                 "[testing][stream-pair]") {
    StreamPairOptions options;
    options.fail_writes_after = 0;
    auto pair = co_await open_stream_pair(options);
    pair.writer.write("x");
    co_await coring::sleep(std::chrono::seconds(0));
    co_await coring::sleep(std::chrono::seconds(0));
    CORING_CO_CHECK_THROWS_AS(pair.writer.drain(), coring::BrokenPipeError);
    CORING_CO_CHECK(pair.peer_reader.read() == std::string()); // EOF, nothing arrived
    CORING_CO_CHECK(pair.reader.read() == std::string());      // the test's end closed
}

CORING_TEST_CASE("stream pair: a cancelled read loses no byte", "[testing][stream-pair]") {
    auto pair = co_await open_stream_pair();
    auto reading = coring::create_task(pair.reader.readexactly(10));
    co_await coring::sleep(std::chrono::seconds(0));
    pair.peer_writer.write("01234");
    co_await coring::sleep(std::chrono::seconds(0));
    reading.cancel();
    CORING_CO_CHECK_THROWS_AS(reading, coring::CancelledError);
    pair.peer_writer.write("56789");
    std::string got = co_await pair.reader.readexactly(10);
    CHECK(got == "0123456789");
}

CORING_TEST_CASE("stream pair: limit 0 is refused", "[testing][stream-pair]") {
    StreamPairOptions options;
    options.limit = 0;
    CORING_CO_CHECK_THROWS_AS(open_stream_pair(options), coring::ValueError);
}
