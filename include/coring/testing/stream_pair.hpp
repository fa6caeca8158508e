// SPDX-License-Identifier: MIT
// A connected pair of streams for testing protocol code, with controllable chunking and injected
// failures (the role of asyncio tests' fake transports; built on a socketpair).
#pragma once

#include <coring/streams.hpp>
#include <coring/task.hpp>

#include <cstddef>
#include <limits>
#include <type_traits>

namespace coring::testing {

/// How open_stream_pair delivers bytes. Trivially destructible, so a braced temporary may be
/// passed at a co_await (docs/pitfalls.md).
struct StreamPairOptions {
    /// Largest piece delivered to a reader at once, one piece per loop iteration, in both
    /// directions: 1 feeds a parser byte by byte. 0: whatever the kernel hands over.
    std::size_t chunk_size = 0;
    /// After this many bytes have reached `reader`, its next read fails with
    /// ConnectionResetError (a peer that reset the connection mid-message). max(): never.
    std::size_t fail_reads_after = std::numeric_limits<std::size_t>::max();
    /// After this many bytes written to `writer` have reached `peer_reader`, the test's end of
    /// the connection goes away: `peer_reader` sees EOF, `peer_writer` is closed, and further
    /// writes and drains of `writer` fail with a ConnectionError (BrokenPipeError). max(): never.
    std::size_t fail_writes_after = std::numeric_limits<std::size_t>::max();
    /// The readers' buffer limit (readline / readuntil), as open_connection's.
    std::size_t limit = default_stream_limit;
};

static_assert(std::is_trivially_destructible_v<StreamPairOptions>);

/// Two connected ends: `reader`/`writer` for the code under test, `peer_reader`/`peer_writer`
/// for the test playing the other side.
struct StreamPair {
    StreamReader reader;
    StreamWriter writer;
    StreamReader peer_reader;
    StreamWriter peer_writer;
};

/// Opens a connected StreamPair on the running loop. What it is, honestly: a Unix socketpair
/// whose two ends are ordinary socket streams, plus one small pump task per direction
/// ("stream-pair pump") that reads from the socket in pieces of at most chunk_size and feeds a
/// transport-less StreamReader (the two readers handed out), injecting the failures the options
/// ask for. The writers are the sockets' own StreamWriters (backpressure and drain behave as on
/// a real connection). A pump ends at EOF of its direction: close both writers (or let a failure
/// end them) before the test ends, or CORING_TEST_CASE reports the pumps as pending tasks.
/// Throws: std::system_error when socketpair fails; RuntimeError without a running loop.
[[nodiscard]] Task<StreamPair> open_stream_pair(StreamPairOptions options = {});

} // namespace coring::testing
