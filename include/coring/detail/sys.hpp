// SPDX-License-Identifier: MIT
// Syscall seam: the system calls coring makes, as replaceable function pointers for tests.
#pragma once

#include <liburing.h>

#include <signal.h>
#include <sys/socket.h>

#include <cstddef>

namespace coring::detail {

/// Every system call coring may need to fail on purpose in a test goes through this table: the
/// one fault seam. Tests swap an entry (see SysOverride) to inject EPERM, ENOSYS, ENOMEM,
/// EMFILE, errors of io_uring_enter, rewritten completion results, a missing opcode or a failed
/// allocation.
///
/// Cost when unused: every entry sits on a path that makes a system call or calls malloc anyway
/// (setup, probing, io_uring_enter, sockets, a frame-cache miss), where one indirect call is
/// noise; nothing is tested on the hot path (SQE preparation, reaping, frame-cache hits).
/// Completion results need no entry of their own: the ring is set up with DEFER_TASKRUN where
/// the kernel has it, so completions are posted only inside io_uring_enter, and an enter entry
/// can rewrite the res of the CQEs the call posted before the loop reaps them.
/// Not thread-safe: change it only while no loop runs.
struct Sys {
    int (*io_uring_queue_init_params)(unsigned entries, io_uring* ring, io_uring_params* p);
    int (*eventfd)(unsigned initval, int flags);
    int (*close)(int fd);
    // Signals (signals.hpp): the signalfd, the calling thread's mask, the process's disposition.
    int (*signalfd)(int fd, const sigset_t* mask, int flags);
    int (*pthread_sigmask)(int how, const sigset_t* set, sigset_t* old);
    int (*sigaction)(int sig, const struct sigaction* action, struct sigaction* old);
    int (*socket)(int domain, int type, int protocol);
    int (*socketpair)(int domain, int type, int protocol, int fds[2]);
    int (*pipe2)(int fds[2], int flags);
    int (*setsockopt)(int fd, int level, int name, const void* value, socklen_t len);
    int (*bind)(int fd, const sockaddr* addr, socklen_t len);
    int (*listen)(int fd, int backlog);
    // Ring (ring.cpp): the probe of supported opcodes, and every io_uring_enter. A test can
    // return a probe without an opcode; return -EINTR/-EAGAIN/-EBUSY from a submit (the SQ then
    // stays full, so get_sqe finds no free entry after its flush and must retry); shorten the
    // len of queued SQEs (a real short transfer); rewrite the res of the CQEs a call posted.
    io_uring_probe* (*io_uring_get_probe_ring)(io_uring* ring);
    int (*io_uring_submit)(io_uring* ring);
    int (*io_uring_submit_and_wait)(io_uring* ring, unsigned wait_nr);
    int (*io_uring_submit_and_wait_timeout)(io_uring* ring,
                                            io_uring_cqe** cqe,
                                            unsigned wait_nr,
                                            __kernel_timespec* ts,
                                            sigset_t* sigmask);
    int (*io_uring_submit_and_get_events)(io_uring* ring);
    /// Where the frame allocator gets memory (::operator new): cache misses and blocks too large
    /// to recycle. Throws std::bad_alloc on failure. See frame_cache_bypass to send every frame
    /// allocation here.
    void* (*allocate)(std::size_t size);
};

/// The live table; starts out pointing at the real functions.
extern Sys sys;

/// Replaces one entry of the table for its lifetime (test helper).
template <class Fn>
class SysOverride {
public:
    SysOverride(Fn Sys::*entry, Fn replacement) noexcept : entry_(entry), saved_(sys.*entry) {
        sys.*entry = replacement;
    }

    SysOverride(const SysOverride&) = delete;
    SysOverride& operator=(const SysOverride&) = delete;

    ~SysOverride() { sys.*entry_ = saved_; }

private:
    Fn Sys::*entry_;
    Fn saved_;
};

} // namespace coring::detail
