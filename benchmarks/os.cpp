// SPDX-License-Identifier: MIT
// OS-layer benchmarks: call_soon_threadsafe from another thread, to_thread round trips, and
// sequential file reads through io_uring beside a plain blocking read() loop (peers in
// os_asyncio.py do the same work with asyncio and uvloop).
//
// Usage: bench_os [--case NAME]... [--list]
//
// Prints `BENCH <case> <value> <unit>` on stdout (benchmarks/README.md) and, on stderr,
// `ITERATIONS <case> <n>`: how many operations the measured part of <case> ran, so that
// callgrind's instruction count for the dump named <case> can be divided into instr/op.
// Without --case every case runs in a fresh process of its own.
//
// Cases (one operation in brackets):
//   call_soon_threadsafe        another thread posts 1,000,000 callbacks
//                               [posted there and run on the loop]
//   to_thread                   co_await to_thread(noop), one at a time [round trip]
//   file_read_seq_warm          File::readinto over a 256 MiB file in /tmp, 1 MiB buffer, the
//                               file in the page cache [1 MiB read]
//   file_read_blocking_warm     the same with read(2) in a loop on this thread [1 MiB read]
//   file_read_seq_cold          File::readinto after posix_fadvise(DONTNEED) dropped the file
//                               from the page cache [1 MiB read from the device]
//   file_read_blocking_cold     the same with read(2) [1 MiB read from the device]
//   file_read_qd4_cold          File::preadinto with four 1 MiB reads in flight (four tasks
//                               reading interleaved chunks), cold cache [1 MiB read] (coring only)
//   add_reader_eventfd_ping     an add_reader callback on an eventfd reads it and writes it
//                               again, 200,000 times [write, wake-up, callback, read]
#include <coring/executor.hpp>
#include <coring/file.hpp>
#include <coring/future.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using bench::Region;
using bench::scaled;
using coring::Task;
using Clock = std::chrono::steady_clock;

namespace {

// ---- call_soon_threadsafe ----

void bench_call_soon_threadsafe() {
    const std::uint64_t n = scaled(1'000'000);
    coring::EventLoop loop;
    coring::Future<> all_run(loop);
    std::uint64_t ran = 0;
    auto callback = [&ran, &all_run, n] {
        if (++ran == n) {
            all_run.set_result();
        }
    };
    // Warm-up: the loop's wake-up read is armed and the queue has its capacity.
    std::thread([&] {
        for (int i = 0; i < 1000; ++i) {
            loop.call_soon_threadsafe([] {});
        }
    }).join();
    loop.run_until_complete(coring::sleep(std::chrono::milliseconds(1)));

    Region r("call_soon_threadsafe", n);
    std::thread producer([&] {
        for (std::uint64_t i = 0; i < n; ++i) {
            loop.call_soon_threadsafe(callback);
        }
    });
    loop.run_until_complete(all_run);
    r.report_ns_per_op();
    producer.join();
}

// ---- to_thread ----

Task<> to_thread_loop(std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
        co_await coring::to_thread([] {});
    }
}

void bench_to_thread() {
    const std::uint64_t n = scaled(50'000);
    coring::Runner runner;
    runner.run(to_thread_loop(1000)); // the pool's thread exists
    Region r("to_thread", n);
    runner.run(to_thread_loop(n));
    r.report_ns_per_op();
}

// ---- add_reader ----

// One eventfd whose reader callback reads it and writes it again: each round is one readiness
// event going through the loop (completion, ready entry, callback, re-check of the file).
void bench_add_reader_eventfd_ping() {
    const std::uint64_t n = scaled(200'000);
    coring::EventLoop loop;
    int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) {
        std::perror("eventfd");
        std::exit(1);
    }
    auto ping = [efd] {
        std::uint64_t one = 1;
        if (::write(efd, &one, sizeof one) != static_cast<ssize_t>(sizeof one)) {
            std::perror("write");
            std::exit(1);
        }
    };
    std::uint64_t rounds = 0;
    std::uint64_t target = 0;
    coring::Future<>* done = nullptr;
    loop.add_reader(efd, [&] {
        std::uint64_t v = 0;
        if (::read(efd, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) {
            return;
        }
        if (++rounds == target) {
            done->set_result();
            return;
        }
        ping();
    });
    auto phase = [&](std::uint64_t count) {
        coring::Future<> finished(loop);
        rounds = 0;
        target = count;
        done = &finished;
        ping();
        loop.run_until_complete(finished);
    };
    phase(1000); // warm-up: the poll is armed, the queues have their capacity
    std::uint64_t enters = coring::detail::LoopAccess::ring(loop).enter_count();
    std::uint64_t iterations = loop.iteration_count();
    Region r("add_reader_eventfd_ping", n);
    phase(n);
    r.report_ns_per_op();
    std::fprintf(
            stderr,
            "add_reader_eventfd_ping: %.2f io_uring_enter and %.2f loop iterations per op\n",
            static_cast<double>(coring::detail::LoopAccess::ring(loop).enter_count() - enters) /
                    static_cast<double>(n),
            static_cast<double>(loop.iteration_count() - iterations) / static_cast<double>(n));
    loop.remove_reader(efd);
    loop.close();
    ::close(efd);
}

// ---- sequential file reads ----

constexpr std::size_t chunk = std::size_t{1} << 20;
constexpr std::size_t file_chunks = 256;

// A 256 MiB file of this process in /tmp, written with plain write(2) and fsync'd (so its
// pages are clean and can be dropped from the cache); removed by the destructor.
class BenchFile {
public:
    BenchFile() : path_("/tmp/coring-bench-os-" + std::to_string(::getpid())) {
        int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        std::vector<char> block(chunk);
        for (std::size_t i = 0; i < file_chunks; ++i) {
            std::memset(block.data(), static_cast<int>('a' + i % 26), block.size());
            if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) {
                std::perror("write");
                std::exit(1);
            }
        }
        ::fsync(fd);
        ::close(fd);
    }

    BenchFile(const BenchFile&) = delete;
    BenchFile& operator=(const BenchFile&) = delete;

    ~BenchFile() { ::unlink(path_.c_str()); }

    const std::string& path() const { return path_; }

    // Drops the file's (clean) pages from the page cache.
    void evict() const {
        int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
    }

private:
    std::string path_;
};

std::uint64_t read_blocking(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    std::vector<char> buf(chunk);
    std::uint64_t total = 0;
    for (ssize_t n; (n = ::read(fd, buf.data(), buf.size())) > 0;) {
        total += static_cast<std::uint64_t>(n);
    }
    ::close(fd);
    return total;
}

Task<std::uint64_t> read_coring(std::string path) {
    coring::File f = co_await coring::File::open(path, "rb");
    std::vector<char> buf(chunk);
    std::uint64_t total = 0;
    for (;;) {
        std::size_t n = co_await f.readinto(buf);
        if (n == 0) {
            break;
        }
        total += n;
    }
    co_await f.close();
    co_return total;
}

// Four reads in flight: task k reads chunks k, k+4, k+8, ... with preadinto at their offsets,
// each into its own buffer (what io_uring allows and a blocking read loop cannot).
Task<std::uint64_t> read_stripe(coring::File& f, std::size_t first, std::size_t step) {
    std::vector<char> buf(chunk);
    std::uint64_t total = 0;
    for (std::size_t i = first; i < file_chunks; i += step) {
        total += co_await f.preadinto(buf, i * chunk);
    }
    co_return total;
}

Task<std::uint64_t> read_coring_qd4(std::string path) {
    coring::File f = co_await coring::File::open(path, "rb");
    std::vector<coring::TaskHandle<std::uint64_t>> stripes;
    for (std::size_t k = 0; k < 4; ++k) {
        stripes.push_back(coring::create_task(read_stripe(f, k, 4)));
    }
    std::uint64_t total = 0;
    for (auto& t : stripes) {
        total += co_await t;
    }
    co_await f.close();
    co_return total;
}

void check_size(std::uint64_t bytes) {
    if (bytes != chunk * file_chunks) {
        std::fprintf(stderr,
                     "read %llu bytes, expected %zu\n",
                     static_cast<unsigned long long>(bytes),
                     chunk * file_chunks);
        std::exit(1);
    }
}

enum class Reader { coring, coring_qd4, blocking };

std::uint64_t read_once(Reader reader, coring::Runner& runner, const std::string& path) {
    switch (reader) {
    case Reader::coring:
        return runner.run(read_coring(path));
    case Reader::coring_qd4:
        return runner.run(read_coring_qd4(path));
    case Reader::blocking:
        break;
    }
    return read_blocking(path);
}

void bench_file_read(const char* name, Reader reader, bool warm) {
    BenchFile file;
    const int passes = warm ? 4 : 1;
    if (warm) {
        check_size(read_blocking(file.path())); // every page in the cache
    } else {
        file.evict();
    }
    coring::Runner runner;
    runner.get_loop(); // the ring exists before the measurement
    Region r(name, file_chunks * static_cast<std::uint64_t>(passes));
    for (int p = 0; p < passes; ++p) {
        std::uint64_t bytes = read_once(reader, runner, file.path());
        check_size(bytes);
    }
    r.report_ns_per_op();
}

void file_read_seq_warm() {
    bench_file_read("file_read_seq_warm", Reader::coring, true);
}

void file_read_blocking_warm() {
    bench_file_read("file_read_blocking_warm", Reader::blocking, true);
}

void file_read_seq_cold() {
    bench_file_read("file_read_seq_cold", Reader::coring, false);
}

void file_read_blocking_cold() {
    bench_file_read("file_read_blocking_cold", Reader::blocking, false);
}

void file_read_qd4_cold() {
    bench_file_read("file_read_qd4_cold", Reader::coring_qd4, false);
}

const bench::Case cases[] = {
        {"call_soon_threadsafe", &bench_call_soon_threadsafe},
        {"to_thread", &bench_to_thread},
        {"file_read_seq_warm", &file_read_seq_warm},
        {"file_read_blocking_warm", &file_read_blocking_warm},
        {"file_read_seq_cold", &file_read_seq_cold},
        {"file_read_blocking_cold", &file_read_blocking_cold},
        {"file_read_qd4_cold", &file_read_qd4_cold},
        {"add_reader_eventfd_ping", &bench_add_reader_eventfd_ping},
};

} // namespace

int main(int argc, char** argv) {
    return bench::main("bench_os", cases, argc, argv);
}
