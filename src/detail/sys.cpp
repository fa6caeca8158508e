// SPDX-License-Identifier: MIT
// The real functions behind the syscall seam.
#include <coring/detail/sys.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <new>

#include "epoll.hpp"

namespace coring::detail {

namespace {

// close(2), remembered so the epoll backend does not trust a registration for a reused number.
int close_noting(int fd) {
    note_fd_closed(fd);
    return ::close(fd);
}

// The creators: a new file under a number the engine may remember (closed behind coring's back,
// as libcurl and libpq close their sockets with close(2)) must not inherit what it knew.
int socket_noting(int domain, int type, int protocol) {
    int fd = ::socket(domain, type, protocol);
    note_fd_closed(fd);
    return fd;
}

int socketpair_noting(int domain, int type, int protocol, int fds[2]) {
    int r = ::socketpair(domain, type, protocol, fds);
    if (r == 0) {
        note_fd_closed(fds[0]);
        note_fd_closed(fds[1]);
    }
    return r;
}

int pipe2_noting(int fds[2], int flags) {
    int r = ::pipe2(fds, flags);
    if (r == 0) {
        note_fd_closed(fds[0]);
        note_fd_closed(fds[1]);
    }
    return r;
}

int eventfd_noting(unsigned initval, int flags) {
    int fd = ::eventfd(initval, flags);
    note_fd_closed(fd);
    return fd;
}

} // namespace

Sys sys = {
        &::io_uring_queue_init_params,
        &eventfd_noting,
        &close_noting,
        &::signalfd,
        &::pthread_sigmask,
        &::sigaction,
        &socket_noting,
        &socketpair_noting,
        &pipe2_noting,
        &::setsockopt,
        &::bind,
        &::listen,
        &::io_uring_get_probe_ring,
        &::io_uring_submit,
        &::io_uring_submit_and_wait,
        &::io_uring_submit_and_wait_timeout,
        &::io_uring_submit_and_get_events,
        &::operator new,
};

} // namespace coring::detail
