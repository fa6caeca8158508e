// SPDX-License-Identifier: MIT
// The floor of the TLS benchmark (benchmarks/tls_run.sh): a hand-written C-style TLS echo
// server, OpenSSL straight on non-blocking sockets (SSL_set_fd) and one edge-triggered epoll.
// No runtime, no buffers but one per connection for a write the socket did not take.
//
// Usage: bench_tls_epoll <port> <cert.pem> <key.pem>   (port 0 picks a free port)
// Prints "listening on 127.0.0.1:<port>" on stdout; serves until SIGINT or SIGTERM.
//
// Each connection: SSL_accept until done, then SSL_read into a 16 KiB buffer and SSL_write of
// what arrived; while a write is pending (the socket is full), reading stops. Context settings
// are OpenSSL's defaults, as the other servers' (TLS 1.2 and 1.3, two session tickets after a
// TLS 1.3 handshake), but for read-ahead.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

// A connection's state: handshaking (SSL_accept not done), echoing.
struct Conn {
    int fd = -1;
    SSL* ssl = nullptr;
    bool handshaking = true;
    std::size_t pending = 0; // bytes of buf an SSL_write must still take (retried as is)
    char buf[16384];
};

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "tls_epoll: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

void close_conn(Conn* c, bool clean) {
    if (clean) {
        SSL_shutdown(c->ssl); // our close_notify, not waiting for the peer's
    }
    SSL_free(c->ssl);
    close(c->fd);
    delete c;
}

/// Advances c as far as it goes without blocking; false when it is finished (closed).
bool drive(Conn* c) {
    ERR_clear_error();
    if (c->handshaking) {
        int rc = SSL_accept(c->ssl);
        if (rc != 1) {
            int err = SSL_get_error(c->ssl, rc);
            return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
        }
        c->handshaking = false;
    }
    for (;;) {
        if (c->pending > 0) {
            std::size_t n = 0;
            int rc = SSL_write_ex(c->ssl, c->buf, c->pending, &n);
            if (rc != 1) {
                int err = SSL_get_error(c->ssl, rc);
                return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
            }
            c->pending = 0;
        }
        std::size_t n = 0;
        int rc = SSL_read_ex(c->ssl, c->buf, sizeof c->buf, &n);
        if (rc != 1) {
            int err = SSL_get_error(c->ssl, rc);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                return true;
            }
            return false; // close_notify, EOF, reset or a protocol error
        }
        c->pending = n;
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s <port> <cert.pem> <key.pem>\n", argv[0]);
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr || SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    // One read(2) per record (or several records) instead of two (header, then body): what a
    // server on SSL_set_fd that cares about syscalls sets.
    SSL_CTX_set_read_ahead(ctx, 1);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[1])));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 || listen(lfd, 1024) < 0) {
        die("bind/listen 127.0.0.1");
    }
    socklen_t len = sizeof addr;
    getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
    std::printf("listening on 127.0.0.1:%u\n", ntohs(addr.sin_port));
    std::fflush(stdout);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &lfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.ptr = &sfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);

    std::vector<epoll_event> events(256);
    for (;;) {
        int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_wait");
        }
        for (int k = 0; k < n; ++k) {
            void* p = events[static_cast<std::size_t>(k)].data.ptr;
            if (p == &sfd) {
                std::fprintf(stderr, "tls_epoll: signal, stopping\n");
                return 0;
            }
            if (p == &lfd) {
                for (;;) {
                    int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) {
                        break; // EAGAIN (or a transient error: the next event retries)
                    }
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    auto* c = new Conn;
                    c->fd = fd;
                    c->ssl = SSL_new(ctx);
                    SSL_set_fd(c->ssl, fd);
                    epoll_event cev{};
                    cev.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP;
                    cev.data.ptr = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                    if (!drive(c)) {
                        close_conn(c, false);
                    }
                }
                continue;
            }
            auto* c = static_cast<Conn*>(p);
            if (!drive(c)) {
                close_conn(c, !c->handshaking);
            }
        }
    }
}
