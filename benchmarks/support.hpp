// SPDX-License-Identifier: MIT
// Harness shared by coring's benchmark programs and their C++ peers: measured regions with
// callgrind markers, peak RSS, and the `--case NAME` / `--list` driver (benchmarks/README.md).
#pragma once

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
// Without valgrind's headers (scripts/deps.sh bench installs them) the markers do nothing,
// which is also what they do outside valgrind.
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(name) static_cast<void>(name)
#define RUNNING_ON_VALGRIND 0
#endif

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <span>
#include <string>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

/// Under valgrind everything runs ~50x slower: measure a tenth of the operations (the
/// instruction count per operation is the same once caches and queues are warm).
inline std::uint64_t scaled(std::uint64_t n) {
    return RUNNING_ON_VALGRIND ? n / 10 : n;
}

/// How many timed laps a case splits its operations into (see Region): 50, of about a
/// millisecond each; 5 under valgrind, where only the total counts.
inline int lap_count() {
    return RUNNING_ON_VALGRIND ? 5 : 50;
}

/// The measured part of a case. Zeroes callgrind's counters at the start and dumps them under
/// the case's name at the end, so that `valgrind --tool=callgrind` counts exactly this part,
/// and prints `ITERATIONS <name> <ops>` on stderr so that tools can divide by the operations.
///
/// Timing: the part is split into laps (lap_start/lap_end around each); the fastest lap is
/// reported. These machines are shared: other tenants' work can only ever add time to a lap,
/// so the fastest of many short laps is the best estimate of the cost on an idle core (the
/// median lap goes to stderr). run.sh then takes the median of that over several processes.
class Region {
public:
    Region(const char* name, std::uint64_t ops) : name_(name), ops_(ops) {
        CALLGRIND_ZERO_STATS;
        t0_ = Clock::now();
    }

    Region(const Region&) = delete;
    Region& operator=(const Region&) = delete;

    void lap_start() { lap_t0_ = Clock::now(); }

    /// Ends a lap of ops operations.
    void lap_end(std::uint64_t ops) {
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - lap_t0_);
        lap_ns_per_op_.push_back(static_cast<double>(ns.count()) / static_cast<double>(ops));
    }

    /// Ends the region; returns the elapsed nanoseconds since it began.
    double stop() {
        auto t1 = Clock::now();
        CALLGRIND_DUMP_STATS_AT(name_);
        std::fprintf(stderr, "ITERATIONS %s %llu\n", name_, static_cast<unsigned long long>(ops_));
        return static_cast<double>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0_).count());
    }

    /// Ends the region and prints `BENCH <name> <ns per operation> ns/op`: of the fastest lap,
    /// or of the whole region when it had no laps.
    void report_ns_per_op() {
        double ns = stop();
        if (lap_ns_per_op_.empty()) {
            std::printf("BENCH %s %.2f ns/op\n", name_, ns / static_cast<double>(ops_));
            return;
        }
        std::vector<double> v = lap_ns_per_op_;
        std::sort(v.begin(), v.end());
        std::fprintf(stderr,
                     "%s: %zu laps, fastest %.2f, median %.2f, whole region %.2f ns/op\n",
                     name_,
                     v.size(),
                     v.front(),
                     v[v.size() / 2],
                     ns / static_cast<double>(ops_));
        std::printf("BENCH %s %.2f ns/op\n", name_, v.front());
    }

private:
    const char* name_;
    std::uint64_t ops_;
    Clock::time_point t0_;
    Clock::time_point lap_t0_;
    std::vector<double> lap_ns_per_op_;
};

/// The process's peak resident set size in MiB (VmHWM from /proc/self/status), or -1.
inline double peak_rss_mib() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmHWM:", 0) == 0) {
            return std::strtod(line.c_str() + 6, nullptr) / 1024.0; // the value is in kB
        }
    }
    return -1;
}

/// CPU seconds (user + system) this process has used so far. Unlike wall time it does not grow
/// while other tenants of the machine hold the core.
inline double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto sec = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return sec(u.ru_utime) + sec(u.ru_stime);
}

/// CPU seconds (utime + stime, all threads) process pid has used so far, from /proc/PID/stat;
/// -1 if unreadable. For a process other than this one (a server the benchmark drives).
inline double process_cpu_seconds(int pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    std::FILE* f = std::fopen(path, "r");
    if (f == nullptr) {
        return -1;
    }
    char buf[1024];
    std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    const char* p = std::strrchr(buf, ')'); // the command name may hold spaces
    if (p == nullptr) {
        return -1;
    }
    ++p;
    for (int field = 3; field < 14; ++field) { // to field 14, utime
        p = std::strchr(p + 1, ' ');
        if (p == nullptr) {
            return -1;
        }
    }
    char* end = nullptr;
    unsigned long long utime = std::strtoull(p, &end, 10);
    unsigned long long stime = std::strtoull(end, nullptr, 10);
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// Busy CPU seconds of all cores (user, nice, system, irq, softirq and steal: steal is the time
/// the hypervisor gave to another guest), from /proc/stat; -1 if unreadable. The busy time of
/// a window minus that of the processes measured is what the rest of the machine took.
inline double machine_busy_seconds() {
    std::FILE* f = std::fopen("/proc/stat", "r");
    if (f == nullptr) {
        return -1;
    }
    unsigned long long v[8] = {};
    int n = std::fscanf(f,
                        "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
                        &v[0],
                        &v[1],
                        &v[2],
                        &v[3],
                        &v[4],
                        &v[5],
                        &v[6],
                        &v[7]);
    std::fclose(f);
    if (n != 8) {
        return -1;
    }
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return static_cast<double>(busy) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// One benchmark case: a name shared with the peers, and the function that runs it.
struct Case {
    const char* name;
    void (*run)();
};

/// The driver every benchmark program uses as its main():
///   --list        prints the case names, one per line
///   --case NAME   runs that case (repeatable), in this process
///   (nothing)     runs every case, each in a fresh process (this program with --case), so that
///                 a case's peak RSS is its own
inline int main(const char* program, std::span<const Case> cases, int argc, char** argv) {
    auto find = [&](const char* name) -> const Case* {
        for (const Case& c : cases) {
            if (std::strcmp(c.name, name) == 0) {
                return &c;
            }
        }
        return nullptr;
    };
    std::vector<const Case*> selected;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--list") == 0) {
            for (const Case& c : cases) {
                std::printf("%s\n", c.name);
            }
            return 0;
        }
        if (std::strcmp(argv[i], "--case") == 0 && i + 1 < argc) {
            const Case* c = find(argv[++i]);
            if (c == nullptr) {
                std::fprintf(stderr, "%s: unknown case '%s'\n", program, argv[i]);
                return 2;
            }
            selected.push_back(c);
        } else {
            std::fprintf(stderr, "usage: %s [--case NAME]... [--list]\n", program);
            return 2;
        }
    }
    if (selected.empty()) {
        int rc = 0;
        for (const Case& c : cases) {
            std::fflush(stdout);
            pid_t pid = fork();
            if (pid < 0) {
                std::perror("fork");
                return 1;
            }
            if (pid == 0) {
                execl("/proc/self/exe", program, "--case", c.name, static_cast<char*>(nullptr));
                std::perror("execl /proc/self/exe");
                _exit(127);
            }
            int status = 0;
            waitpid(pid, &status, 0);
            rc |= WIFEXITED(status) ? WEXITSTATUS(status) : 1;
        }
        return rc;
    }
    for (const Case* c : selected) {
        c->run();
        std::fflush(stdout);
    }
    return 0;
}

} // namespace bench
