// SPDX-License-Identifier: MIT
// splice_file: file -> pipe -> socket with IORING_OP_SPLICE.
#include "splice.hpp"

#include <coring/errors.hpp>

#include <coring/detail/io_operation.hpp>
#include <coring/detail/sys.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace coring::http::detail {

namespace {

constexpr std::size_t kPiece = 64 * 1024; // a default pipe's capacity

// One splice between two descriptors; off -1: the descriptor's own position (a pipe's).
Task<std::size_t> splice_once(int in, std::int64_t off_in, int out, std::size_t len) {
    int res = co_await coring::detail::io_op("splice", [&](io_uring_sqe* sqe) {
        io_uring_prep_splice(sqe, in, off_in, out, -1, static_cast<unsigned>(len), SPLICE_F_MOVE);
    });
    if (res < 0) {
        throw std::system_error(-res, std::system_category(), "splice");
    }
    co_return static_cast<std::size_t>(res);
}

struct Pipe {
    int fd[2] = {-1, -1};

    ~Pipe() {
        if (fd[0] >= 0) {
            coring::detail::sys.close(fd[0]);
            coring::detail::sys.close(fd[1]);
        }
    }
};

} // namespace

Task<> splice_file(StreamWriter& writer, int file_fd, std::uint64_t size, std::uint64_t* progress) {
    // Let what is buffered (the response's head) leave first: drain waits until the buffer is
    // at the low-water mark, here 0.
    auto [low, high] = writer.get_write_buffer_limits();
    writer.set_write_buffer_limits(0, 0);
    co_await writer.drain();
    writer.set_write_buffer_limits(high, low);

    Pipe pipe;
    if (coring::detail::sys.pipe2(pipe.fd, O_CLOEXEC) != 0) {
        throw std::system_error(errno, std::system_category(), "pipe2");
    }
    int sock = writer.fd();
    std::uint64_t offset = 0;
    while (offset < size) {
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kPiece, size - offset));
        std::size_t in_pipe =
                co_await splice_once(file_fd, static_cast<std::int64_t>(offset), pipe.fd[1], want);
        if (in_pipe == 0) {
            throw std::system_error(EIO, std::system_category(), "splice: the file ended early");
        }
        offset += in_pipe;
        while (in_pipe > 0) {
            std::size_t sent = co_await splice_once(pipe.fd[0], -1, sock, in_pipe);
            if (sent == 0) {
                throw std::system_error(EPIPE, std::system_category(), "splice to the socket");
            }
            in_pipe -= sent;
            if (progress != nullptr) {
                *progress += sent;
            }
        }
    }
}

} // namespace coring::http::detail
