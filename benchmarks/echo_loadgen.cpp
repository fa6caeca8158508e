// SPDX-License-Identifier: MIT
// Load generator of the echo benchmark (benchmarks/echo_run.sh): N ping-pong connections on
// loopback over liburing, reporting requests per second, latency and the server's CPU time.
//
// Usage: bench_echo_loadgen --port P [--connections N] [--size S] [--warmup SEC]
//                           [--duration SEC | --requests N] [--server-pid PID]
//                           [--at-start CMD] [--at-end CMD] [--timeout SEC]
//
// Each connection sends S bytes, waits for all S bytes to come back, and repeats (one request
// in flight per connection; N connections, N requests in flight). After --warmup seconds:
//   --duration SEC  (default) a timed window: the requests completed in it, the latency of each,
//                   and the server's CPU time over it (utime + stime from /proc/PID/stat at the
//                   window's edges), divided by the requests;
//   --requests N    an exact count: the connections first go quiet (no request in flight), then
//                   --at-start runs (e.g. `callgrind_control --zero PID`), exactly N requests
//                   are made, the connections go quiet again and --at-end runs
//                   (`callgrind_control --dump PID`). Prints `ITERATIONS echo N` on stderr.
//
// Output (benchmarks/README.md): `BENCH <metric> <value> <unit>` on stdout:
//   req_per_s ops/s, latency_p50 and latency_p99 ns/op (send to full echo, per request),
//   server_cpu_per_req ns/op and server_cpu_util % (with --server-pid), loadgen_cpu_util %,
//   and others_cpu_util % (with --server-pid): the CPU time the rest of the machine used over
//   the window (busy time of all cores from /proc/stat, steal included, minus the server's and
//   the load generator's), the interference of a shared machine.
//
// One thread, one ring, at most two operations per connection in flight (a send and a recv,
// submitted together); every completion reaped in a batch shares one clock read, taken when
// the batch arrives, as the end of the requests it completes and the start of the next ones.
// The program always stops by itself: --timeout (default: the planned time + 60 s) and a stall
// of 10 s without any completion end it with an error.
#include <liburing.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

struct Options {
    int port = 0;
    int connections = 64;
    std::uint32_t size = 64;
    double warmup = 1.0;
    double duration = 3.0;
    std::uint64_t requests = 0; // nonzero: --requests mode
    int server_pid = 0;
    std::string at_start;
    std::string at_end;
    double timeout = 0; // 0: planned time + 60 s
};

[[noreturn]] void die(const char* what, int err) {
    std::fprintf(stderr, "echo_loadgen: %s: %s\n", what, std::strerror(err));
    std::exit(1);
}

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: bench_echo_loadgen --port P [--connections N] [--size S] [--warmup SEC]\n"
                 "       [--duration SEC | --requests N] [--server-pid PID] [--at-start CMD]\n"
                 "       [--at-end CMD] [--timeout SEC]\n");
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) {
            usage();
        }
        const char* v = argv[++i];
        if (a == "--port") {
            o.port = std::atoi(v);
        } else if (a == "--connections") {
            o.connections = std::atoi(v);
        } else if (a == "--size") {
            o.size = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10));
        } else if (a == "--warmup") {
            o.warmup = std::strtod(v, nullptr);
        } else if (a == "--duration") {
            o.duration = std::strtod(v, nullptr);
        } else if (a == "--requests") {
            o.requests = std::strtoull(v, nullptr, 10);
        } else if (a == "--server-pid") {
            o.server_pid = std::atoi(v);
        } else if (a == "--at-start") {
            o.at_start = v;
        } else if (a == "--at-end") {
            o.at_end = v;
        } else if (a == "--timeout") {
            o.timeout = std::strtod(v, nullptr);
        } else {
            usage();
        }
    }
    if (o.port <= 0 || o.connections <= 0 || o.size == 0) {
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
        std::fprintf(stderr, "echo_loadgen: '%s' exited with status %d\n", cmd.c_str(), rc);
        std::exit(1);
    }
}

struct Conn {
    int fd = -1;
    std::uint32_t sent = 0;
    std::uint32_t received = 0;
    bool sending = false;   // a send is in flight
    bool receiving = false; // a recv is in flight
    bool busy = false;      // a request is under way (started, echo not complete)
    Clock::time_point started;
    std::vector<char> rbuf;
};

enum class Phase { warmup, measure, quiesce_before, counted, quiesce_after, done };

class LoadGen {
public:
    explicit LoadGen(const Options& o) : o_(o), sbuf_(o.size), conns_(o.connections) {
        for (std::uint32_t i = 0; i < o.size; ++i) {
            sbuf_[i] = static_cast<char>('a' + i % 26);
        }
        unsigned entries = 8;
        while (entries < 2u * static_cast<unsigned>(o.connections) + 8u) {
            entries *= 2;
        }
        io_uring_params p{};
        p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
        int rc = io_uring_queue_init_params(entries, &ring_, &p);
        if (rc < 0) { // older kernels: no deferred task work
            p = io_uring_params{};
            rc = io_uring_queue_init_params(entries, &ring_, &p);
        }
        if (rc < 0) {
            die("io_uring_queue_init_params", -rc);
        }
    }

    void connect_all() {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(o_.port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        for (Conn& c : conns_) {
            c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (c.fd < 0) {
                die("socket", errno);
            }
            int one = 1;
            setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (connect(c.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0) {
                die("connect", errno);
            }
            c.rbuf.resize(o_.size);
        }
    }

    int run() {
        auto t_begin = Clock::now();
        double planned = o_.warmup + (o_.requests ? 60.0 : o_.duration);
        auto deadline = t_begin + to_duration(o_.timeout > 0 ? o_.timeout : planned + 60.0);
        auto warmup_end = t_begin + to_duration(o_.warmup);
        phase_ = Phase::warmup;
        now_ = t_begin;
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            start_request(i);
        }
        auto last_progress = now_;
        while (phase_ != Phase::done) {
            __kernel_timespec ts{0, 100'000'000};
            io_uring_cqe* cqe = nullptr;
            int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
            if (rc < 0 && rc != -ETIME && rc != -EINTR) {
                die("io_uring_submit_and_wait_timeout", -rc);
            }
            now_ = Clock::now();
            unsigned head = 0, seen = 0;
            io_uring_for_each_cqe(&ring_, head, cqe) {
                ++seen;
                complete(cqe->user_data, cqe->res);
            }
            io_uring_cq_advance(&ring_, seen);
            if (seen > 0) {
                last_progress = now_;
            } else if (now_ - last_progress > std::chrono::seconds(10)) {
                std::fprintf(stderr, "echo_loadgen: no completion for 10 s, giving up\n");
                return 1;
            }
            if (now_ > deadline) {
                std::fprintf(stderr, "echo_loadgen: timeout, giving up\n");
                return 1;
            }
            advance_phase(warmup_end);
        }
        report();
        return 0;
    }

private:
    static Clock::duration to_duration(double seconds) {
        return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    }

    io_uring_sqe* sqe() {
        io_uring_sqe* s = io_uring_get_sqe(&ring_);
        if (s == nullptr) {
            io_uring_submit(&ring_);
            s = io_uring_get_sqe(&ring_);
            if (s == nullptr) {
                die("io_uring_get_sqe", EBUSY);
            }
        }
        return s;
    }

    void prep_send(std::size_t i) {
        Conn& c = conns_[i];
        io_uring_sqe* s = sqe();
        io_uring_prep_send(s, c.fd, sbuf_.data() + c.sent, o_.size - c.sent, MSG_NOSIGNAL);
        io_uring_sqe_set_data64(s, i << 1);
        c.sending = true;
    }

    void prep_recv(std::size_t i) {
        Conn& c = conns_[i];
        io_uring_sqe* s = sqe();
        io_uring_prep_recv(s, c.fd, c.rbuf.data() + c.received, o_.size - c.received, 0);
        io_uring_sqe_set_data64(s, (i << 1) | 1);
        c.receiving = true;
    }

    /// Whether the current phase lets a connection start another request.
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

    void start_request(std::size_t i) {
        Conn& c = conns_[i];
        c.sent = 0;
        c.received = 0;
        c.busy = true;
        ++in_flight_;
        c.started = now_;
        prep_send(i);
        prep_recv(i);
    }

    void complete(std::uint64_t data, int res) {
        std::size_t i = data >> 1;
        Conn& c = conns_[i];
        if (data & 1) {
            c.receiving = false;
            if (res <= 0) {
                std::fprintf(stderr,
                             "echo_loadgen: recv: %s\n",
                             res == 0 ? "the server closed the connection" : std::strerror(-res));
                std::exit(1);
            }
            c.received += static_cast<std::uint32_t>(res);
            if (c.received < o_.size) {
                prep_recv(i);
                return;
            }
        } else {
            c.sending = false;
            if (res < 0) {
                die("send", -res);
            }
            c.sent += static_cast<std::uint32_t>(res);
            if (c.sent < o_.size) {
                prep_send(i);
                return;
            }
        }
        if (c.sending || c.receiving || c.sent < o_.size || c.received < o_.size) {
            return; // the other half of the request is still under way
        }
        c.busy = false;
        --in_flight_;
        if (phase_ == Phase::measure || phase_ == Phase::counted) {
            ++completed_;
            if (latencies_.size() < max_samples) {
                auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now_ - c.started);
                latencies_.push_back(
                        static_cast<std::uint32_t>(std::min<std::int64_t>(ns.count(), UINT32_MAX)));
            }
        }
        if (may_start()) {
            start_request(i);
        }
    }

    void begin_window() {
        completed_ = 0;
        latencies_.clear();
        latencies_.reserve(max_samples);
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

    void advance_phase(Clock::time_point warmup_end) {
        switch (phase_) {
        case Phase::warmup:
            if (now_ < warmup_end) {
                return;
            }
            if (o_.requests == 0) {
                begin_window();
                phase_ = Phase::measure;
            } else {
                phase_ = Phase::quiesce_before;
                advance_phase(warmup_end);
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
            for (std::size_t i = 0; i < conns_.size() && may_start(); ++i) {
                start_request(i);
            }
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
            std::fprintf(stderr, "echo_loadgen: no request completed in the window\n");
            std::exit(1);
        }
        std::printf("BENCH req_per_s %.0f ops/s\n", n / seconds);
        if (!latencies_.empty()) {
            auto pct = [&](double q) {
                auto k = static_cast<std::size_t>(q * static_cast<double>(latencies_.size() - 1));
                std::nth_element(latencies_.begin(),
                                 latencies_.begin() + static_cast<long>(k),
                                 latencies_.end());
                return static_cast<double>(latencies_[k]);
            };
            std::printf("BENCH latency_p50 %.0f ns/op\n", pct(0.50));
            std::printf("BENCH latency_p99 %.0f ns/op\n", pct(0.99));
        }
        if (server_cpu0_ >= 0 && server_cpu1_ >= 0) {
            double cpu = server_cpu1_ - server_cpu0_;
            std::printf("BENCH server_cpu_per_req %.1f ns/op\n", cpu * 1e9 / n);
            std::printf("BENCH server_cpu_util %.1f %%\n", 100.0 * cpu / seconds);
        }
        double self_cpu = self_cpu1_ - self_cpu0_;
        std::printf("BENCH loadgen_cpu_util %.1f %%\n", 100.0 * self_cpu / seconds);
        if (busy0_ >= 0 && busy1_ >= 0 && server_cpu0_ >= 0 && server_cpu1_ >= 0) {
            // Everything else the machine did meanwhile: other tenants, steal. It competes
            // with the server and the load generator for the two cores.
            double others = (busy1_ - busy0_) - (server_cpu1_ - server_cpu0_) - self_cpu;
            std::printf("BENCH others_cpu_util %.1f %%\n", std::max(0.0, 100.0 * others / seconds));
        }
        std::fflush(stdout);
        std::fprintf(stderr,
                     "echo_loadgen: %llu requests in %.3f s (%d connections, %u B)\n",
                     static_cast<unsigned long long>(completed_),
                     seconds,
                     o_.connections,
                     o_.size);
        if (o_.requests != 0) {
            std::fprintf(
                    stderr, "ITERATIONS echo %llu\n", static_cast<unsigned long long>(completed_));
        }
    }

    static constexpr std::size_t max_samples = 1u << 24; // 64 MiB of samples at most

    Options o_;
    io_uring ring_{};
    std::vector<char> sbuf_;
    std::vector<Conn> conns_;
    Phase phase_ = Phase::warmup;
    Clock::time_point now_;
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
    gen.connect_all();
    return gen.run();
}
