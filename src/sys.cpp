// SPDX-License-Identifier: MIT
// The real functions behind the syscall seam.
#include <coring/detail/sys.hpp>

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace coring::detail {

Sys sys = {
        &::io_uring_queue_init_params,
        &::eventfd,
        &::close,
        &::signalfd,
        &::pthread_sigmask,
        &::sigaction,
        &::socket,
        &::socketpair,
        &::setsockopt,
        &::bind,
        &::listen,
};

} // namespace coring::detail
