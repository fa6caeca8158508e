// SPDX-License-Identifier: MIT
// Tests of coring/testing/stream_pair.hpp: both directions, chunking, injected read and write
// failures, and that the pumps end (CORING_TEST_CASE fails on a pending task).
// clang-format off
#include <coring/testing/stream_pair.hpp> // first: it must compile on its own
// clang-format on

#include <coring/errors.hpp>
#include <coring/sleep.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <chrono>
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
