// SPDX-License-Identifier: MIT
// Load generator of the TLS benchmark (benchmarks/tls_run.sh): plain OpenSSL on non-blocking
// sockets and one epoll, so that every server is driven by the same client whatever it runs on.
//
// Usage: bench_tls_loadgen --port P --mode echo|bulk|handshake [--connections N] [--size S]
//                          [--bulk-mib M] [--warmup SEC] [--duration SEC | --requests N]
//                          [--server-pid PID] [--at-start CMD] [--at-end CMD] [--timeout SEC]
//
// Modes (TLS 1.3 only, key exchange X25519 only, server certificate not verified: the client's
// cost is not what is measured, and in TLS 1.3 the client checks the CertificateVerify
// signature anyway):
//   echo       N connections are opened and handshaken first; then each sends S bytes, waits
//              for all S bytes to come back, and repeats. Requests per second, latency.
//   bulk       one connection (after its handshake) sends M MiB (default 256) in 16 KiB writes
//              while it reads the echo back; the window is the whole transfer. MiB/s is the
//              payload of one direction over the window.
//   handshake  N slots; each connects, handshakes, sends S bytes, reads them back, sends
//              close_notify, closes, and starts again: one new connection per request.
// After --warmup seconds (echo, handshake) a --duration window is measured, or with
// --requests N exactly N requests (handshakes) between two quiet points, running --at-start /
// --at-end there (callgrind_control --zero / --dump on the server). bulk runs the hooks
// around its transfer.
//
// Output (benchmarks/README.md): `BENCH <metric> <value> <unit>`:
//   echo/handshake: req_per_s ops/s (handshakes per second in handshake mode), latency_p50 and
//   latency_p99 ns/op, server_cpu_per_req ns/op; bulk: mib_per_s, server_cpu_per_mib ns/MiB;
//   all: server_cpu_util %, loadgen_cpu_util %, others_cpu_util % (the rest of the machine).
// Server CPU is utime + stime from /proc/PID/stat at the window's edges. The program always
// stops by itself (--timeout, and 10 s without progress).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

using Clock = std::chrono::steady_clock;

enum class Mode { echo, bulk, handshake };

struct Options {
    int port = 0;
    Mode mode = Mode::echo;
    int connections = 64;
    std::size_t size = 64;
    std::uint64_t bulk_mib = 256;
    double warmup = 1.0;
    double duration = 3.0;
    std::uint64_t requests = 0;
    int server_pid = 0;
    std::string at_start;
    std::string at_end;
    double timeout = 0;
};

[[noreturn]] void die(const char* what, const char* detail) {
    std::fprintf(stderr, "tls_loadgen: %s: %s\n", what, detail);
    std::exit(1);
}

[[noreturn]] void die_errno(const char* what, int err) {
    die(what, std::strerror(err));
}

[[noreturn]] void die_ssl(const char* what) {
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    die(what, buf);
}

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: bench_tls_loadgen --port P --mode echo|bulk|handshake [--connections N]\n"
                 "       [--size S] [--bulk-mib M] [--warmup SEC] [--duration SEC | --requests N]\n"
                 "       [--server-pid PID] [--at-start CMD] [--at-end CMD] [--timeout SEC]\n");
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) {
            usage();
        }
        std::string v = argv[++i];
        if (a == "--port") {
            o.port = std::atoi(v.c_str());
        } else if (a == "--mode") {
            if (v == "echo") {
                o.mode = Mode::echo;
            } else if (v == "bulk") {
                o.mode = Mode::bulk;
            } else if (v == "handshake") {
                o.mode = Mode::handshake;
            } else {
                usage();
            }
        } else if (a == "--connections") {
            o.connections = std::atoi(v.c_str());
        } else if (a == "--size") {
            o.size = std::strtoul(v.c_str(), nullptr, 10);
        } else if (a == "--bulk-mib") {
            o.bulk_mib = std::strtoull(v.c_str(), nullptr, 10);
        } else if (a == "--warmup") {
            o.warmup = std::strtod(v.c_str(), nullptr);
        } else if (a == "--duration") {
            o.duration = std::strtod(v.c_str(), nullptr);
        } else if (a == "--requests") {
            o.requests = std::strtoull(v.c_str(), nullptr, 10);
        } else if (a == "--server-pid") {
            o.server_pid = std::atoi(v.c_str());
        } else if (a == "--at-start") {
            o.at_start = v;
        } else if (a == "--at-end") {
            o.at_end = v;
        } else if (a == "--timeout") {
            o.timeout = std::strtod(v.c_str(), nullptr);
        } else {
            usage();
        }
    }
    if (o.mode == Mode::bulk) {
        o.connections = 1;
    }
    if (o.port <= 0 || o.connections <= 0 || o.size == 0 || o.bulk_mib == 0) {
        usage();
    }
    return o;
}

// CPU time of a process, of this one, and of the whole machine: benchmarks/support.hpp.
using bench::cpu_seconds;
using bench::machine_busy_seconds;
using bench::process_cpu_seconds;

void run_hook(const std::string& cmd) {
    if (cmd.empty()) {
        return;
    }
    int rc = std::system(cmd.c_str());
    if (rc != 0) {
        std::fprintf(stderr, "tls_loadgen: '%s' exited with status %d\n", cmd.c_str(), rc);
        std::exit(1);
    }
}

// A connection's state: connecting (TCP connect in progress), handshaking, ready (handshaken,
// no request under way; echo mode between phases), busy (a request under way).
enum class State { idle, connecting, handshaking, ready, busy };

struct Conn {
    int fd = -1;
    SSL* ssl = nullptr;
    State state = State::idle;
    std::size_t sent = 0;
    std::size_t received = 0;
    Clock::time_point started;
};

enum class Phase { warmup, measure, quiesce_before, counted, done };

class LoadGen {
public:
    explicit LoadGen(const Options& o) : o_(o), conns_(static_cast<std::size_t>(o.connections)) {
        ctx_ = SSL_CTX_new(TLS_client_method());
        if (ctx_ == nullptr) {
            die_ssl("SSL_CTX_new");
        }
        SSL_CTX_set_min_proto_version(ctx_, TLS1_3_VERSION);
        SSL_CTX_set_max_proto_version(ctx_, TLS1_3_VERSION);
        if (SSL_CTX_set1_groups_list(ctx_, "X25519") != 1) {
            die_ssl("SSL_CTX_set1_groups_list X25519");
        }
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
        // No resumption: every handshake in handshake mode is a full one.
        SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx_, SSL_OP_NO_TICKET);
        SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE);
        SSL_CTX_set_read_ahead(ctx_, 1); // one read(2) per record, not two: a cheaper client
        std::size_t chunk = o.mode == Mode::bulk ? 16384 : o.size;
        sbuf_.resize(chunk);
        for (std::size_t i = 0; i < chunk; ++i) {
            sbuf_[i] = static_cast<char>('a' + i % 26);
        }
        rbuf_.resize(std::max<std::size_t>(chunk, 16384));
        total_ = o.mode == Mode::bulk ? o.bulk_mib << 20 : o.size;
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        if (ep_ < 0) {
            die_errno("epoll_create1", errno);
        }
        addr_.sin_family = AF_INET;
        addr_.sin_port = htons(static_cast<std::uint16_t>(o.port));
        addr_.sin_addr.s_addr = htonl(INADDR_LOOPBACK); // 127.0.0.1, never a name
    }

    int run() {
        auto t_begin = Clock::now();
        now_ = t_begin;
        double planned = o_.warmup + (o_.requests || o_.mode == Mode::bulk ? 120.0 : o_.duration);
        deadline_ = t_begin + to_duration(o_.timeout > 0 ? o_.timeout : planned + 60.0);
        last_progress_ = now_;
        if (o_.mode == Mode::handshake) {
            phase_ = Phase::warmup;
            start_all(); // a connection is a request
        } else {
            for (std::size_t i = 0; i < conns_.size(); ++i) {
                open(i);
            }
            // echo, bulk: all connections handshaken before anything is measured.
            while (handshaken_ < conns_.size()) {
                poll_once();
            }
            if (o_.mode == Mode::bulk) {
                run_hook(o_.at_start);
                begin_window();
                phase_ = Phase::counted;
                start_request(0);
                while (phase_ != Phase::done) {
                    poll_once();
                    if (conns_[0].state == State::ready) {
                        end_window();
                        run_hook(o_.at_end);
                        phase_ = Phase::done;
                    }
                }
                report();
                return 0;
            }
            start_all();
        }
        warmup_end_ = Clock::now() + to_duration(o_.warmup);
        phase_ = Phase::warmup;
        while (phase_ != Phase::done) {
            poll_once();
            advance_phase();
        }
        report();
        return 0;
    }

private:
    static Clock::duration to_duration(double seconds) {
        return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    }

    void poll_once() {
        epoll_event events[256];
        int n = epoll_wait(ep_, events, 256, 100);
        if (n < 0 && errno != EINTR) {
            die_errno("epoll_wait", errno);
        }
        now_ = Clock::now();
        progressed_ = false;
        for (int k = 0; k < n; ++k) {
            drive(events[k].data.u64);
        }
        if (progressed_) {
            last_progress_ = now_;
        } else if (now_ - last_progress_ > std::chrono::seconds(10)) {
            die("stalled", "no progress for 10 s");
        }
        if (now_ > deadline_) {
            die("timeout", "giving up");
        }
    }

    /// Starts a new TCP connection in slot i (non-blocking connect).
    void open(std::size_t i) {
        Conn& c = conns_[i];
        c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c.fd < 0) {
            die_errno("socket", errno);
        }
        int one = 1;
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) < 0 &&
            errno != EINPROGRESS) {
            die_errno("connect 127.0.0.1", errno);
        }
        c.ssl = SSL_new(ctx_);
        SSL_set_fd(c.ssl, c.fd);
        SSL_set_connect_state(c.ssl);
        c.state = State::connecting;
        c.started = now_;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
        ev.data.u64 = i;
        if (epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) < 0) {
            die_errno("epoll_ctl", errno);
        }
    }

    /// Ends the connection in slot i: close_notify (not waiting for the server's), close.
    void close_conn(std::size_t i) {
        Conn& c = conns_[i];
        SSL_shutdown(c.ssl);
        SSL_free(c.ssl);
        close(c.fd); // also removes it from the epoll set
        c.ssl = nullptr;
        c.fd = -1;
        c.state = State::idle;
    }

    [[noreturn]] void ssl_failed(const char* what, Conn& c, int rc) {
        int err = SSL_get_error(c.ssl, rc);
        if (err == SSL_ERROR_SYSCALL) {
            die(what, errno != 0 ? std::strerror(errno) : "unexpected EOF");
        }
        if (err == SSL_ERROR_ZERO_RETURN) {
            die(what, "the server closed the connection");
        }
        die_ssl(what);
    }

    /// Whether rc from an SSL call is "would block".
    bool would_block(Conn& c, int rc) {
        int err = SSL_get_error(c.ssl, rc);
        return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
    }

    void start_request(std::size_t i) {
        Conn& c = conns_[i];
        c.sent = 0;
        c.received = 0;
        c.state = State::busy;
        c.started = now_;
        ++in_flight_;
        drive(i);
    }

    /// Advances connection i as far as it goes without blocking (edge-triggered epoll).
    void drive(std::size_t i) {
        Conn& c = conns_[i];
        if (c.state == State::connecting) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                die_errno("connect 127.0.0.1", err);
            }
            c.state = State::handshaking;
        }
        if (c.state == State::handshaking) {
            int rc = SSL_do_handshake(c.ssl);
            if (rc != 1) {
                if (!would_block(c, rc)) {
                    ssl_failed("handshake", c, rc);
                }
                return;
            }
            progressed_ = true;
            ++handshaken_;
            if (o_.mode != Mode::handshake) {
                c.state = State::ready;
                return;
            }
            c.state = State::busy; // handshake mode: the request follows on the same connection
            c.sent = 0;
            c.received = 0;
        }
        if (c.state != State::busy) {
            return;
        }
        for (;;) {
            bool moved = false;
            if (c.sent < total_) {
                std::size_t chunk = std::min(sbuf_.size(), total_ - c.sent);
                std::size_t n = 0;
                int rc = SSL_write_ex(c.ssl, sbuf_.data(), chunk, &n);
                if (rc == 1) {
                    c.sent += n;
                    moved = true;
                } else if (!would_block(c, rc)) {
                    ssl_failed("write", c, rc);
                }
            }
            if (c.received < total_) {
                std::size_t n = 0;
                std::size_t want = std::min(rbuf_.size(), total_ - c.received);
                int rc = SSL_read_ex(c.ssl, rbuf_.data(), want, &n);
                if (rc == 1) {
                    c.received += n;
                    moved = true;
                } else if (!would_block(c, rc)) {
                    ssl_failed("read", c, rc);
                }
            }
            if (c.sent == total_ && c.received == total_) {
                progressed_ = true;
                finish(i);
                return;
            }
            if (!moved) {
                return;
            }
            progressed_ = true;
        }
    }

    /// A request (echo, bulk) or a connection (handshake mode) completed in slot i.
    void finish(std::size_t i) {
        Conn& c = conns_[i];
        --in_flight_;
        if (phase_ == Phase::measure || phase_ == Phase::counted) {
            ++completed_;
            if (latencies_.size() < max_samples) {
                auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now_ - c.started);
                latencies_.push_back(
                        static_cast<std::uint32_t>(std::min<std::int64_t>(ns.count(), UINT32_MAX)));
            }
        }
        if (o_.mode == Mode::handshake) {
            close_conn(i);
        } else {
            c.state = State::ready;
        }
        if (o_.mode != Mode::bulk && may_start()) {
            if (o_.mode == Mode::handshake) {
                ++in_flight_;
                open(i);
            } else {
                start_request(i);
            }
        }
    }

    bool may_start() {
        switch (phase_) {
        case Phase::warmup:
        case Phase::measure:
            return true;
        case Phase::counted:
            if (issued_ < o_.requests) {
                ++issued_;
                return true;
            }
            return false;
        default:
            return false;
        }
    }

    void start_all() {
        for (std::size_t i = 0; i < conns_.size() && may_start(); ++i) {
            if (o_.mode == Mode::handshake) {
                ++in_flight_;
                open(i);
            } else {
                start_request(i);
            }
        }
    }

    void begin_window() {
        completed_ = 0;
        latencies_.clear();
        latencies_.reserve(std::min<std::size_t>(max_samples, 1u << 20));
        window_start_ = Clock::now();
        self_cpu0_ = cpu_seconds();
        busy0_ = machine_busy_seconds();
        server_cpu0_ = o_.server_pid ? process_cpu_seconds(o_.server_pid) : -1;
    }

    void end_window() {
        window_end_ = Clock::now();
        self_cpu1_ = cpu_seconds();
        busy1_ = machine_busy_seconds();
        server_cpu1_ = o_.server_pid ? process_cpu_seconds(o_.server_pid) : -1;
    }

    void advance_phase() {
        switch (phase_) {
        case Phase::warmup:
            if (now_ < warmup_end_) {
                return;
            }
            if (o_.requests == 0) {
                begin_window();
                phase_ = Phase::measure;
            } else {
                phase_ = Phase::quiesce_before;
                advance_phase();
            }
            return;
        case Phase::measure:
            if (now_ - window_start_ >= to_duration(o_.duration)) {
                end_window();
                phase_ = Phase::done;
            }
            return;
        case Phase::quiesce_before:
            if (in_flight_ > 0) {
                return;
            }
            run_hook(o_.at_start);
            begin_window();
            phase_ = Phase::counted;
            now_ = Clock::now();
            issued_ = 0;
            start_all();
            return;
        case Phase::counted:
            if (issued_ < o_.requests || in_flight_ > 0) {
                return;
            }
            end_window();
            run_hook(o_.at_end);
            phase_ = Phase::done;
            return;
        default:
            return;
        }
    }

    void report() {
        double seconds = std::chrono::duration<double>(window_end_ - window_start_).count();
        auto n = static_cast<double>(completed_);
        if (completed_ == 0 || seconds <= 0) {
            die("report", "no request completed in the window");
        }
        double cpu = server_cpu1_ - server_cpu0_;
        bool have_server = server_cpu0_ >= 0 && server_cpu1_ >= 0;
        if (o_.mode == Mode::bulk) {
            double mib = static_cast<double>(o_.bulk_mib);
            std::printf("BENCH mib_per_s %.1f MiB/s\n", mib / seconds);
            if (have_server) {
                std::printf("BENCH server_cpu_per_mib %.0f ns/MiB\n", cpu * 1e9 / mib);
            }
        } else {
            std::printf("BENCH req_per_s %.0f ops/s\n", n / seconds);
            if (!latencies_.empty()) {
                auto pct = [&](double q) {
                    auto k = static_cast<std::size_t>(q *
                                                      static_cast<double>(latencies_.size() - 1));
                    std::nth_element(latencies_.begin(),
                                     latencies_.begin() + static_cast<long>(k),
                                     latencies_.end());
                    return static_cast<double>(latencies_[k]);
                };
                std::printf("BENCH latency_p50 %.0f ns/op\n", pct(0.50));
                std::printf("BENCH latency_p99 %.0f ns/op\n", pct(0.99));
            }
            if (have_server) {
                std::printf("BENCH server_cpu_per_req %.1f ns/op\n", cpu * 1e9 / n);
            }
        }
        if (have_server) {
            std::printf("BENCH server_cpu_util %.1f %%\n", 100.0 * cpu / seconds);
        }
        double self_cpu = self_cpu1_ - self_cpu0_;
        std::printf("BENCH loadgen_cpu_util %.1f %%\n", 100.0 * self_cpu / seconds);
        if (busy0_ >= 0 && busy1_ >= 0 && have_server) {
            double others = (busy1_ - busy0_) - cpu - self_cpu;
            std::printf("BENCH others_cpu_util %.1f %%\n", std::max(0.0, 100.0 * others / seconds));
        }
        std::fflush(stdout);
        std::fprintf(stderr,
                     "tls_loadgen: %llu %s in %.3f s\n",
                     static_cast<unsigned long long>(completed_),
                     o_.mode == Mode::bulk ? "transfers" : "requests",
                     seconds);
        if (o_.requests != 0 || o_.mode == Mode::bulk) {
            std::fprintf(stderr,
                         "ITERATIONS tls_%s %llu\n",
                         o_.mode == Mode::echo        ? "echo"
                         : o_.mode == Mode::handshake ? "handshake"
                                                      : "bulk_mib",
                         static_cast<unsigned long long>(o_.mode == Mode::bulk ? o_.bulk_mib
                                                                               : completed_));
        }
    }

    static constexpr std::size_t max_samples = 1u << 24;

    Options o_;
    SSL_CTX* ctx_ = nullptr;
    int ep_ = -1;
    sockaddr_in addr_{};
    std::vector<char> sbuf_;
    std::vector<char> rbuf_;
    std::size_t total_ = 0; // bytes of one request (echo, handshake) or of the transfer (bulk)
    std::vector<Conn> conns_;
    Phase phase_ = Phase::warmup;
    Clock::time_point now_, deadline_, last_progress_, warmup_end_;
    bool progressed_ = false;
    std::size_t handshaken_ = 0;
    std::uint64_t in_flight_ = 0;
    std::uint64_t issued_ = 0;
    std::uint64_t completed_ = 0;
    std::vector<std::uint32_t> latencies_;
    Clock::time_point window_start_, window_end_;
    double self_cpu0_ = 0, self_cpu1_ = 0;
    double busy0_ = -1, busy1_ = -1;
    double server_cpu0_ = -1, server_cpu1_ = -1;
};

} // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    LoadGen gen(o);
    return gen.run();
}
