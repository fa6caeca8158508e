// SPDX-License-Identifier: MIT
// Syscall seam: the system calls coring makes, as replaceable function pointers for tests.
#pragma once

#include <liburing.h>

#include <signal.h>
#include <sys/socket.h>

namespace coring::detail {

/// Every system call coring may need to fail on purpose in a test goes through this table.
/// Tests swap an entry (see SysOverride) to inject EPERM, ENOSYS, ENOMEM, EMFILE, ...
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
    int (*setsockopt)(int fd, int level, int name, const void* value, socklen_t len);
    int (*bind)(int fd, const sockaddr* addr, socklen_t len);
    int (*listen)(int fd, int backlog);
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
