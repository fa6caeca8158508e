// SPDX-License-Identifier: MIT
// Peer of the echo benchmark: the raw liburing echo loop a user would write by hand, C-style.
//
// Usage: bench_echo_liburing <port>   (port 0 picks a free port)
// Prints "listening on 127.0.0.1:<port>" on stdout; serves until SIGINT or SIGTERM.
//
// One ring, plain single-shot operations: an accept always pending; per connection a recv into
// a 16 KiB buffer, then a send of what arrived (resubmitted until all of it is sent), then the
// next recv. One io_uring_submit_and_wait per loop iteration, every ready completion handled.
// The ring has no setup flags: the simplest loop. (coring's ring sets SINGLE_ISSUER and
// DEFER_TASKRUN; `ECHO_LIBURING_FLAGS=defer` gives this loop the same, to compare.)
#include <liburing.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

constexpr unsigned buffer_size = 16384;
constexpr unsigned ring_entries = 2048;

enum : std::uint64_t { op_accept = 0, op_recv = 1, op_send = 2 };

struct Conn {
    int fd;
    unsigned len;  // bytes received by the last recv
    unsigned sent; // bytes of them sent so far
    char buf[buffer_size];
};

volatile std::sig_atomic_t stop_requested = 0;

void on_signal(int signo) {
    stop_requested = signo;
}

io_uring ring;
int listen_fd;

// user_data: the connection's address with the operation in its low bits (Conn is 8-aligned).
std::uint64_t tag(Conn* c, std::uint64_t op) {
    return reinterpret_cast<std::uintptr_t>(c) | op;
}

io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == nullptr) {
        io_uring_submit(&ring); // the SQ is full: make room
        sqe = io_uring_get_sqe(&ring);
        if (sqe == nullptr) {
            std::abort();
        }
    }
    return sqe;
}

void submit_accept() {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_accept(sqe, listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, op_accept);
}

void submit_recv(Conn* c) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_recv(sqe, c->fd, c->buf, buffer_size, 0);
    io_uring_sqe_set_data64(sqe, tag(c, op_recv));
}

void submit_send(Conn* c) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_send(sqe, c->fd, c->buf + c->sent, c->len - c->sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag(c, op_send));
}

void close_conn(Conn* c) {
    close(c->fd);
    std::free(c);
}

void handle(std::uint64_t data, int res) {
    std::uint64_t op = data & 3;
    Conn* c = reinterpret_cast<Conn*>(data & ~std::uint64_t{3});
    switch (op) {
    case op_accept:
        if (res >= 0) {
            c = static_cast<Conn*>(std::malloc(sizeof(Conn)));
            c->fd = res;
            int one = 1;
            setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            submit_recv(c);
        }
        submit_accept();
        break;
    case op_recv:
        if (res <= 0) { // EOF or error
            close_conn(c);
            break;
        }
        c->len = static_cast<unsigned>(res);
        c->sent = 0;
        submit_send(c);
        break;
    case op_send:
        if (res < 0) {
            close_conn(c);
            break;
        }
        c->sent += static_cast<unsigned>(res);
        if (c->sent < c->len) {
            submit_send(c);
        } else {
            submit_recv(c);
        }
        break;
    default:
        break;
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <port>\n", argv[0]);
        return 2;
    }

    struct sigaction sa {};

    sa.sa_handler = on_signal; // no SA_RESTART: the wait returns -EINTR
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[1])));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 ||
        listen(listen_fd, 1024) < 0 ||
        getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
        std::perror("echo_liburing: bind/listen");
        return 1;
    }

    io_uring_params params{};
    const char* flags = std::getenv("ECHO_LIBURING_FLAGS");
    if (flags != nullptr && std::strcmp(flags, "defer") == 0) {
        params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    }
    int rc = io_uring_queue_init_params(ring_entries, &ring, &params);
    if (rc < 0) {
        std::fprintf(stderr, "echo_liburing: io_uring_queue_init: %s\n", std::strerror(-rc));
        return 1;
    }
    std::printf("listening on 127.0.0.1:%u\n", ntohs(addr.sin_port));
    std::fflush(stdout);

    submit_accept();
    while (!stop_requested) {
        rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0 && rc != -EINTR) {
            std::fprintf(
                    stderr, "echo_liburing: io_uring_submit_and_wait: %s\n", std::strerror(-rc));
            return 1;
        }
        io_uring_cqe* cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            ++seen;
            handle(cqe->user_data, cqe->res);
        }
        io_uring_cq_advance(&ring, seen);
    }
    std::fprintf(
            stderr, "echo_liburing: %s, stopping\n", strsignal(static_cast<int>(stop_requested)));
    io_uring_queue_exit(&ring);
    close(listen_fd);
    return 0;
}
