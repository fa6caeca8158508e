// SPDX-License-Identifier: MIT
// coring/testing/stream_pair.hpp: two StreamTransports of kind memory, linked (no socket).
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/testing/stream_pair.hpp>

#include <coring/detail/stream_transport.hpp>

#include <limits>
#include <utility>

namespace coring::testing {

namespace {

detail::MemoryLinkOptions
direction(std::size_t chunk, std::size_t fail_after, detail::MemoryLinkOptions::Failure failure) {
    detail::MemoryLinkOptions o;
    o.chunk = chunk;
    if (fail_after != std::numeric_limits<std::size_t>::max()) {
        o.budget = fail_after;
        o.failure = failure;
    }
    return o;
}

} // namespace

Task<StreamPair> open_stream_pair(StreamPairOptions options) {
    if (options.limit == 0) {
        throw ValueError("Limit cannot be <= 0");
    }
    EventLoop& loop = get_running_loop();
    using detail::TransportKind;
    using detail::TransportRef;
    TransportRef code(detail::adopt_ref,
                      new detail::StreamTransport(loop, -1, TransportKind::memory, options.limit));
    TransportRef test(detail::adopt_ref,
                      new detail::StreamTransport(loop, -1, TransportKind::memory, options.limit));
    using Failure = detail::MemoryLinkOptions::Failure;
    detail::StreamTransport::link_memory(
            *code,
            *test,
            direction(options.chunk_size, options.fail_writes_after, Failure::drop_peer),
            direction(options.chunk_size, options.fail_reads_after, Failure::reset_reader));
    co_return StreamPair{
            StreamReader(code), StreamWriter(code), StreamReader(test), StreamWriter(test)};
}

} // namespace coring::testing
