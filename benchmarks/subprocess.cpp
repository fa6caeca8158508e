// SPDX-License-Identifier: MIT
// Subprocess benchmarks: spawning `true` and waiting for it, one at a time and in concurrent
// batches (peers in subprocess_asyncio.py do the same with asyncio and uvloop).
//
// Usage: bench_subprocess [--case NAME]... [--list]
//
// Prints `BENCH <case> <value> <unit>` on stdout (benchmarks/README.md) and, on stderr,
// `ITERATIONS <case> <n>`. Without --case every case runs in a fresh process of its own.
//
// Cases (one operation in brackets):
//   spawn_wait_seq       1,000 times: create_subprocess_exec("true"), then wait() [one child]
//   spawn_wait_batch50   1,000 children in batches of 50: spawn 50, then gather their
//                        wait()s [one child]
//   spawn_wait_blocking  1,000 times: posix_spawn("/bin/true") then waitpid, no event loop: the
//                        kernel's and glibc's share of the cost [one child] (coring only)
#include <coring/gather.hpp>
#include <coring/run.hpp>
#include <coring/subprocess.hpp>
#include <coring/task.hpp>

#include <spawn.h>
#include <sys/wait.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "support.hpp"

using bench::Region;
using bench::scaled;
using coring::Process;
using coring::Task;

namespace {

constexpr std::uint64_t children = 1000;
constexpr std::size_t batch = 50;

void check(int code) {
    if (code != 0) {
        std::fprintf(stderr, "true exited with %d\n", code);
        std::exit(1);
    }
}

Task<> spawn_wait_seq() {
    std::uint64_t n = scaled(children);
    Region r("spawn_wait_seq", n);
    for (std::uint64_t i = 0; i < n; ++i) {
        Process p = co_await coring::create_subprocess_exec("/bin/true");
        check(co_await p.wait());
    }
    r.report_ns_per_op();
}

Task<int> run_one() {
    Process p = co_await coring::create_subprocess_exec("/bin/true");
    co_return co_await p.wait();
}

Task<> spawn_wait_batch50() {
    std::uint64_t n = scaled(children);
    Region r("spawn_wait_batch50", n);
    for (std::uint64_t done = 0; done < n; done += batch) {
        std::vector<Task<int>> jobs;
        for (std::size_t i = 0; i < batch; ++i) {
            jobs.push_back(run_one());
        }
        for (int code : co_await coring::gather(std::move(jobs))) {
            check(code);
        }
    }
    r.report_ns_per_op();
}

void spawn_wait_blocking() {
    std::uint64_t n = scaled(children);
    char arg0[] = "/bin/true";
    char* argv[] = {arg0, nullptr};
    Region r("spawn_wait_blocking", n);
    for (std::uint64_t i = 0; i < n; ++i) {
        pid_t pid = 0;
        if (::posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ) != 0) {
            std::exit(1);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        check(WEXITSTATUS(status));
    }
    r.report_ns_per_op();
}

const bench::Case cases[] = {
        {"spawn_wait_seq",
         [] {
             coring::run(spawn_wait_seq());
         }},
        {"spawn_wait_batch50",
         [] {
             coring::run(spawn_wait_batch50());
         }},
        {"spawn_wait_blocking", spawn_wait_blocking},
};

} // namespace

int main(int argc, char** argv) {
    return bench::main("bench_subprocess", cases, argc, argv);
}
