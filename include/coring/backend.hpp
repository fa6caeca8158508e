// SPDX-License-Identifier: MIT
// The I/O backend under an EventLoop: io_uring or epoll (asyncio's proactor vs selector loops).
#pragma once

namespace coring {

/// Which kernel interface an EventLoop drives its I/O through. Every public API works on both.
enum class Backend {
    /// io_uring: operations are submitted to the kernel and complete there (a proactor).
    uring,
    /// epoll: readiness plus non-blocking system calls, files on a small thread pool (a
    /// selector loop). Chosen where io_uring is refused (seccomp, kernel.io_uring_disabled).
    epoll,
};

} // namespace coring
