// SPDX-License-Identifier: MIT
// The real functions behind the syscall seam.
#include <coring/detail/sys.hpp>

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

} // namespace

Sys sys = {
        &::io_uring_queue_init_params,
        &::eventfd,
        &close_noting,
        &::signalfd,
        &::pthread_sigmask,
        &::sigaction,
        &::socket,
        &::socketpair,
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
