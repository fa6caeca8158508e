// SPDX-License-Identifier: MIT
// Zero-copy file bodies: a file's bytes go from the page cache to a socket through a pipe with
// io_uring's IORING_OP_SPLICE, never through user space (what sendfile(2) does for nginx).
#pragma once

#include <coring/streams.hpp>
#include <coring/task.hpp>

#include <cstdint>

namespace coring::http::detail {

/// Sends `size` bytes of the open regular file `file_fd`, from offset 0, to the plain TCP socket
/// under `writer`, after the bytes already written to it (it waits until the writer's buffer has
/// gone out, so nothing interleaves). Throws: std::system_error ("splice ...") on an I/O error
/// or a file that ended early; CancelledError. `progress` (if not null) counts the bytes
/// moved to the socket as they go.
[[nodiscard]] Task<> splice_file(StreamWriter& writer,
                                 int file_fd,
                                 std::uint64_t size,
                                 std::uint64_t* progress = nullptr);

} // namespace coring::http::detail
