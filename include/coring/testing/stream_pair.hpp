// SPDX-License-Identifier: MIT
// A connected pair of streams for testing protocol code, with controllable chunking and injected
// failures (the role of asyncio tests' fake transports). In memory: no socket, no fd.
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
    /// Largest piece delivered to a reader at once, in both directions: 1 feeds a parser byte by
    /// byte. The next piece goes when the reader has taken the last one and waits for more.
    /// 0: as much as the reader's buffer takes (twice its limit, and more while it waits).
    std::size_t chunk_size = 0;
    /// After this many bytes have reached `reader`, its next wait for more data fails with
    /// ConnectionResetError (a peer that reset the connection mid-message); what `peer_writer`
    /// writes from then on is lost. max(): never.
    std::size_t fail_reads_after = std::numeric_limits<std::size_t>::max();
    /// After this many bytes written to `writer` have reached `peer_reader`, the test's end of
    /// the connection goes away: `peer_reader` sees EOF after those bytes, `peer_writer` closes
    /// (so `reader` sees EOF too), and later writes to `writer` fail: drain() and wait_closed()
    /// raise BrokenPipeError. max(): never.
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

/// Opens a connected StreamPair on the running loop, in memory: a write reaches the other end's
/// reader at the start of the next loop iteration (as a socket's send would leave then), with no
/// socket and no task in between. A reader's buffer takes up to twice its limit; beyond that a
/// writer keeps the bytes and drain() waits (high-water mark as on a socket) until the reader
/// reads. Closing one end (close, abort, or dropping its handles) is EOF for the other; writing
/// to an end that has closed fails with BrokenPipeError. Both ends belong to the running loop;
/// nothing is left running when the test ends, closed or not. write_eof half-closes.
/// get_extra_info knows no addresses ("peername" and "sockname" are empty).
/// Throws: ValueError when limit is 0; RuntimeError without a running loop.
[[nodiscard]] Task<StreamPair> open_stream_pair(StreamPairOptions options = {});

} // namespace coring::testing
