// SPDX-License-Identifier: MIT
// fd readiness for code that does its own I/O (C libraries with their own sockets): the
// awaitables wait_readable / wait_writable, and how EventLoop::add_reader / add_writer (asyncio's
// selector-loop API, declared in event_loop.hpp) treat a watched fd that gets closed.
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>

#include <coring/detail/io_operation.hpp>

#include <liburing.h>

#include <poll.h>

#include <string>

namespace coring {

// Readiness callbacks: EventLoop::add_reader(fd, callback, args...), add_writer, remove_reader,
// remove_writer (event_loop.hpp). They behave as asyncio's selector loop: level-triggered,
// re-adding replaces the callback, remove returns whether one was registered, callbacks are
// scheduled like call_soon callbacks and their exceptions go to the exception handler.
//
// Closing a watched fd. The kernel watches the open file, not the fd number, and holds a
// reference to it while a registration exists. So, as with asyncio, call remove_reader /
// remove_writer before closing the fd. If the fd is closed first:
//  - the registration stays: the file stays open in the kernel (a socket's peer sees no EOF)
//    and the callback still runs for events of that old file, until it is removed;
//  - a new file that reuses the fd number never runs the old callback: its readiness is not
//    what the old registration watches;
//  - add_reader / add_writer on the reused number replaces the stale registration with one that
//    watches the new file;
//  - remove_reader / remove_writer on the number still returns true and drops the kernel's
//    reference to the old file (the socket is then really closed and the peer sees EOF).
// Loop close removes every registration.

namespace detail {

/// "wait_readable fd 7": the target named by a readiness error.
std::string readiness_target(const char* op, int fd);

} // namespace detail

/// Awaiter of wait_readable and wait_writable: one poll of an fd; yields the poll(2) revents.
class [[nodiscard]] ReadinessAwaiter final : public detail::IoOperation<ReadinessAwaiter> {
public:
    ReadinessAwaiter(int fd, unsigned events) noexcept : fd_(fd), events_(events) {}

    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_poll_add(sqe, fd_, events_); }

    const char* op_name() const noexcept {
        return events_ == POLLIN ? "wait_readable" : "wait_writable";
    }

    /// The revents mask: POLLIN or POLLOUT, with POLLERR, POLLHUP or POLLRDHUP when those hold.
    /// Throws: CancelledError; std::system_error (EBADF, ...).
    int await_resume() {
        int res = this->result();
        if (res < 0) {
            throw_os_error(-res, detail::readiness_target(op_name(), fd_));
        }
        return res;
    }

private:
    int fd_;
    unsigned events_;
};

/// Waits until fd is readable (or has an error or hang-up, which poll(2) always reports) and
/// returns the revents mask: `int ev = co_await coring::wait_readable(fd);`. Level-triggered: it
/// returns at once when fd is readable already. Cancelling the task cancels the wait.
/// Throws: CancelledError; std::system_error (EBADF when fd is not open).
[[nodiscard]] inline ReadinessAwaiter wait_readable(int fd) noexcept {
    return ReadinessAwaiter(fd, POLLIN);
}

/// Like wait_readable, until fd is writable.
[[nodiscard]] inline ReadinessAwaiter wait_writable(int fd) noexcept {
    return ReadinessAwaiter(fd, POLLOUT);
}

} // namespace coring
