// SPDX-License-Identifier: MIT
// coring/testing/stream_pair.hpp: a socketpair with a chunking, failure-injecting pump per
// direction.
#include <coring/errors.hpp>
#include <coring/net/socket.hpp>
#include <coring/sleep.hpp>
#include <coring/testing/stream_pair.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <exception>
#include <string>
#include <utility>

namespace coring::testing {

namespace {

constexpr std::size_t kernel_piece = 64 * 1024; // chunk_size 0: what one read may return

// Moves bytes from a socket stream to a fed reader, in pieces of at most chunk, one piece per
// loop iteration. After fail_after bytes: fails the reader (reset = true) or ends the direction
// and closes the peer's socket (reset = false, the write-failure injection).
Task<> pump(StreamReader from,
            StreamReader to,
            std::size_t chunk,
            std::size_t fail_after,
            bool reset,
            StreamWriter close_on_failure) {
    std::size_t passed = 0;
    for (;;) {
        const std::size_t want = std::min(chunk == 0 ? kernel_piece : chunk, fail_after - passed);
        if (want == 0) {
            if (reset) {
                to.set_exception(std::make_exception_ptr(ConnectionResetError(
                        ECONNRESET, "recv (StreamPairOptions::fail_reads_after)")));
            } else {
                to.feed_eof();
                close_on_failure.close();
            }
            co_return;
        }
        std::string data;
        try {
            data = co_await from.read(static_cast<std::ptrdiff_t>(want));
        } catch (const CancelledError&) {
            throw;
        } catch (...) {
            to.set_exception(std::current_exception()); // the socket's own error, passed on
            co_return;
        }
        if (data.empty()) {
            to.feed_eof();
            co_return;
        }
        passed += data.size();
        to.feed_data(data);
        co_await sleep(std::chrono::seconds(0)); // the reader sees this piece before the next
    }
}

} // namespace

Task<StreamPair> open_stream_pair(StreamPairOptions options) {
    auto [code_sock, test_sock] = socketpair(AF_UNIX, SOCK_STREAM);
    auto [code_in, code_out] = co_await open_connection(std::move(code_sock), options.limit);
    auto [test_in, test_out] = co_await open_connection(std::move(test_sock), options.limit);
    StreamReader code_reader(options.limit);
    StreamReader test_reader(options.limit);
    // test -> code: chunked, optionally reset after fail_reads_after bytes.
    create_task(pump(code_in,
                     code_reader,
                     options.chunk_size,
                     options.fail_reads_after,
                     true,
                     code_out),
                "stream-pair pump (to the code under test)");
    // code -> test: chunked; after fail_writes_after bytes the test's end goes away.
    create_task(pump(test_in,
                     test_reader,
                     options.chunk_size,
                     options.fail_writes_after,
                     false,
                     test_out),
                "stream-pair pump (to the test)");
    co_return StreamPair{std::move(code_reader),
                         std::move(code_out),
                         std::move(test_reader),
                         std::move(test_out)};
}

} // namespace coring::testing
