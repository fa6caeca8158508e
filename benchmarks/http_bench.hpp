// SPDX-License-Identifier: MIT
// What the HTTP client benchmark's C++ clients share (benchmarks/http_client_run.sh): their
// command line and the measured window. bench_http_client (coring's ClientSession) and
// bench_http_curl_epoll (the floor: curl_multi on epoll) both take
//
//   --url URL             the page to GET (http:// or https://)
//   --http 1.1|2          HTTP/1.1 (keep-alive), or HTTP/2 over TLS (multiplexed; ALPN)
//   --cafile PEM          the CA to verify the server against (https)
//   --requests N          measured GETs (default 20000; a tenth under valgrind)
//   --concurrency C       requests in flight (default 64)
//   --warmup N            GETs before the window, which open the connections (default 2000)
//   --expect-bytes B      every body must have B bytes (default: not checked)
//   --server-pid PID      the server's process (nginx's worker): its CPU over the window
//
// and print (benchmarks/README.md) `BENCH req_per_s <v> ops/s`, `client_cpu_per_req <v> ns/op`
// (this process's user + system time over the window, all threads, ÷ requests),
// `client_sys_per_req ns/op` (its system part), `client_cpu_util %`, `server_cpu_per_req ns/op`,
// `server_cpu_util %` and `others_cpu_util %` (the rest of the machine: other tenants, steal). The
// window is wrapped in bench::Region (callgrind's zero / dump markers, "ITERATIONS http_get N" on
// stderr).
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "support.hpp"

namespace httpbench {

struct Options {
    std::string url;
    std::string cafile;
    bool http2 = false;
    std::uint64_t requests = 20000;
    int concurrency = 64;
    std::uint64_t warmup = 2000;
    long long expect_bytes = -1;
    int server_pid = 0;
};

[[noreturn]] inline void usage(const char* program) {
    std::fprintf(stderr,
                 "usage: %s --url URL [--http 1.1|2] [--cafile PEM] [--requests N] "
                 "[--concurrency C] [--warmup N] [--expect-bytes B] [--server-pid PID]\n",
                 program);
    std::exit(2);
}

inline Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        auto arg = [&]() -> const char* {
            if (i + 1 >= argc) {
                usage(argv[0]);
            }
            return argv[++i];
        };
        if (std::strcmp(argv[i], "--url") == 0) {
            o.url = arg();
        } else if (std::strcmp(argv[i], "--http") == 0) {
            const char* v = arg();
            if (std::strcmp(v, "2") == 0) {
                o.http2 = true;
            } else if (std::strcmp(v, "1.1") != 0) {
                usage(argv[0]);
            }
        } else if (std::strcmp(argv[i], "--cafile") == 0) {
            o.cafile = arg();
        } else if (std::strcmp(argv[i], "--requests") == 0) {
            o.requests = std::strtoull(arg(), nullptr, 10);
        } else if (std::strcmp(argv[i], "--concurrency") == 0) {
            o.concurrency = std::atoi(arg());
        } else if (std::strcmp(argv[i], "--warmup") == 0) {
            o.warmup = std::strtoull(arg(), nullptr, 10);
        } else if (std::strcmp(argv[i], "--expect-bytes") == 0) {
            o.expect_bytes = std::atoll(arg());
        } else if (std::strcmp(argv[i], "--server-pid") == 0) {
            o.server_pid = std::atoi(arg());
        } else {
            usage(argv[0]);
        }
    }
    if (o.url.empty() || o.concurrency <= 0 || o.requests == 0) {
        usage(argv[0]);
    }
    o.requests = bench::scaled(o.requests);
    return o;
}

/// How many sockets this process has open (its connections, at the end of the window: 64 over
/// HTTP/1.1, 1 over HTTP/2 when the pool works), from /proc/self/fd.
inline int open_sockets() {
    DIR* d = opendir("/proc/self/fd");
    if (d == nullptr) {
        return -1;
    }
    int n = 0;
    while (dirent* e = readdir(d)) {
        char path[300];
        char target[64];
        std::snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len > 0) {
            target[len] = '\0';
            n += std::strncmp(target, "socket:", 7) == 0 ? 1 : 0;
        }
    }
    closedir(d);
    return n;
}

/// The measured window: CPU times and the wall clock at its edges.
class Window {
public:
    explicit Window(const Options& o) : o_(o) {}

    void start() {
        self0_ = bench::cpu_seconds();
        sys0_ = sys_seconds();
        server0_ = o_.server_pid ? bench::process_cpu_seconds(o_.server_pid) : -1;
        busy0_ = bench::machine_busy_seconds();
        region_ = std::make_unique<bench::Region>("http_get", o_.requests);
    }

    /// Ends the window and prints its BENCH lines.
    void stop() {
        double ns = region_->stop();
        double self1 = bench::cpu_seconds();
        double sys1 = sys_seconds();
        double server1 = o_.server_pid ? bench::process_cpu_seconds(o_.server_pid) : -1;
        double busy1 = bench::machine_busy_seconds();
        auto n = static_cast<double>(o_.requests);
        double seconds = ns / 1e9;
        double self = self1 - self0_;
        std::printf("BENCH req_per_s %.0f ops/s\n", n / seconds);
        std::printf("BENCH client_cpu_per_req %.0f ns/op\n", self * 1e9 / n);
        std::printf("BENCH client_sys_per_req %.0f ns/op\n", (sys1 - sys0_) * 1e9 / n);
        std::printf("BENCH client_cpu_util %.1f %%\n", 100.0 * self / seconds);
        double server = 0;
        if (server0_ >= 0 && server1 >= 0) {
            server = server1 - server0_;
            std::printf("BENCH server_cpu_per_req %.0f ns/op\n", server * 1e9 / n);
            std::printf("BENCH server_cpu_util %.1f %%\n", 100.0 * server / seconds);
        }
        if (busy0_ >= 0 && busy1 >= 0) {
            double others = std::max(0.0, (busy1 - busy0_) - self - server);
            std::printf("BENCH others_cpu_util %.1f %%\n", 100.0 * others / seconds);
        }
        std::fflush(stdout);
        std::fprintf(stderr, "sockets open at the end of the window: %d\n", open_sockets());
    }

private:
    /// The system (kernel) part of this process's CPU time.
    static double sys_seconds() {
        rusage u{};
        getrusage(RUSAGE_SELF, &u);
        return static_cast<double>(u.ru_stime.tv_sec) +
               static_cast<double>(u.ru_stime.tv_usec) / 1e6;
    }

    const Options& o_;
    double self0_ = 0, sys0_ = 0, server0_ = -1, busy0_ = -1;
    std::unique_ptr<bench::Region> region_;
};

} // namespace httpbench
