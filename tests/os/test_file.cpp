// SPDX-License-Identifier: MIT
// Tests of File: round trips, positions and offsets, short reads at EOF, errors naming the
// path, cancellation of blocked operations, and a large copy in bounded memory.
// clang-format off
#include <coring/file.hpp> // first: it must compile on its own
// clang-format on

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::File;
using coring::Task;
using coring::test::run_test;

namespace {

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "coring-file-XXXXXX").string();
        char* p = ::mkdtemp(tmpl.data());
        REQUIRE(p != nullptr);
        path_ = p;
    }

    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }

    std::string operator/(const std::string& name) const { return (path_ / name).string(); }

    std::string str() const { return path_.string(); }

private:
    std::filesystem::path path_;
};

void write_file(const std::string& path, const std::string& content) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    ::close(fd);
}

// The whole file, read with plain blocking read(2).
std::string slurp(const std::string& path) {
    std::string out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return out;
    }
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

// What a co_await threw: std::system_error's code and what(), or nothing.
struct OsFailure {
    int code = 0;
    std::string what = "no exception";
};

template <class Aw>
Task<OsFailure> failure_of(Aw aw) {
    OsFailure f;
    try {
        static_cast<void>(co_await std::move(aw));
    } catch (const std::system_error& e) {
        f.code = e.code().value();
        f.what = e.what();
    }
    co_return f;
}

// Peak resident set size of this process, in KiB (VmHWM).
long peak_rss_kib() {
    std::string status = slurp("/proc/self/status");
    std::size_t at = status.find("VmHWM:");
    return at == std::string::npos ? -1 : std::strtol(status.c_str() + at + 6, nullptr, 10);
}

} // namespace

TEST_CASE("File: what is written is read back, and the position advances", "[os][file]") {
    TempDir dir;
    std::string path = dir / "round-trip";
    run_test([&]() -> Task<> {
        File out = co_await File::open(path, "w");
        CHECK(out.name() == path);
        std::size_t n = co_await out.write("hello world");
        CHECK(n == 11);
        CHECK(out.tell() == 11);
        co_await out.close();
        CHECK(out.closed());

        File in = co_await File::open(path); // "r"
        std::string head = co_await in.read(5);
        CHECK(head == "hello");
        CHECK(in.tell() == 5);
        std::string rest = co_await in.read_all();
        CHECK(rest == " world");
        std::string eof = co_await in.read(10);
        CHECK(eof.empty());
        CHECK(in.seek(-5, SEEK_END) == 6);
        std::string tail = co_await in.read_all();
        CHECK(tail == "world");
    });
    CHECK(slurp(path) == "hello world");
}

TEST_CASE("File: read(n) returns fewer bytes only at end of file, then empty", "[os][file]") {
    TempDir dir;
    std::string path = dir / "ten";
    write_file(path, "0123456789");
    run_test([&]() -> Task<> {
        File f = co_await File::open(path, "rb");
        std::vector<std::string> chunks;
        for (int i = 0; i < 4; ++i) {
            chunks.push_back(co_await f.read(4));
        }
        CHECK(chunks == std::vector<std::string>{"0123", "4567", "89", ""});

        f.seek(0);
        std::vector<char> buf(100);
        std::size_t n = co_await f.readinto(buf);
        CHECK(n == 10);
        CHECK(std::string(buf.data(), n) == "0123456789");
        std::size_t again = co_await f.readinto(buf);
        CHECK(again == 0);
    });
}

TEST_CASE("File: pread and pwrite work at offsets and leave the position alone", "[os][file]") {
    TempDir dir;
    std::string path = dir / "offsets";
    run_test([&]() -> Task<> {
        File f = co_await File::open(path, "w+");
        co_await f.write("0123456789");
        std::size_t w = co_await f.pwrite("ab", 3);
        CHECK(w == 2);
        CHECK(f.tell() == 10);
        std::string mid = co_await f.pread(4, 2);
        CHECK(mid == "2ab5");
        std::string end = co_await f.pread(10, 8);
        CHECK(end == "89"); // short: the file ends
        std::string past = co_await f.pread(4, 100);
        CHECK(past.empty());
        std::vector<char> buf(3);
        std::size_t n = co_await f.preadinto(buf, 0);
        CHECK(std::string(buf.data(), n) == "012");
        // A write past the end leaves a hole of zeros, as pwrite(2) does.
        co_await f.pwrite("Z", 12);
        std::string all = co_await f.pread(100, 0);
        CHECK(all == std::string("012ab56789\0\0Z", 13));
        CHECK(f.tell() == 10);
    });
}

TEST_CASE("File: append mode writes at the end, x refuses an existing file", "[os][file]") {
    TempDir dir;
    std::string path = dir / "log";
    write_file(path, "one\n");
    run_test([&]() -> Task<> {
        File f = co_await File::open(path, "a");
        co_await f.write("two\n");
        co_await f.close();
        OsFailure exists = co_await failure_of(File::open(path, "x"));
        CHECK(exists.code == EEXIST);
        CHECK(exists.what == "open " + path + ": File exists");
        File fresh = co_await File::open(dir / "new", "xb");
        co_await fresh.write("x");
    });
    CHECK(slurp(path) == "one\ntwo\n");
    CHECK(slurp(dir / "new") == "x");
}

CORING_TEST_CASE("File: an invalid mode is ValueError", "[os][file]") {
    for (const char* mode : {"", "q", "rw", "r++", "wa", "rbb", "rt"}) {
        std::string what = "no exception";
        try {
            co_await File::open("/tmp/unused", mode);
        } catch (const coring::ValueError& e) {
            what = e.what();
        }
        CHECK(what == std::string("invalid mode: '") + mode + "'");
    }
    // The mode is checked by the call itself, so a temporary mode string may be passed.
    CHECK_THROWS_AS(static_cast<void>(File::open("/tmp/unused", std::string("q"))),
                    coring::ValueError);
}

TEST_CASE("File: a missing file is std::system_error naming the operation and the path",
          "[os][file]") {
    TempDir dir;
    std::string path = dir / "missing";
    run_test([&]() -> Task<> {
        OsFailure f = co_await failure_of(File::open(path));
        CHECK(f.code == ENOENT);
        CHECK(f.what == "open " + path + ": No such file or directory");
        OsFailure s = co_await failure_of(coring::stat(path));
        CHECK(s.what == "stat " + path + ": No such file or directory");
    });
}

CORING_TEST_CASE("File: permission denied names the path, also for root", "[os][file]") {
    // Root ignores file modes (chmod 000 stops nobody), but sysfs refuses to create files for
    // everyone.
    const std::string path = "/sys/coring-test-cannot-create";
    OsFailure f = co_await failure_of(File::open(path, "w"));
    CHECK(f.code == EACCES);
    CHECK(f.what == "open " + path + ": Permission denied");
}

TEST_CASE("File: errors of reads and writes name the operation", "[os][file]") {
    TempDir dir;
    std::string path = dir / "ro";
    write_file(path, "data");
    run_test([&]() -> Task<> {
        File d = co_await File::open(dir.str(), O_RDONLY | O_DIRECTORY);
        OsFailure r = co_await failure_of(d.read(10));
        CHECK(r.code == EISDIR);
        CHECK(r.what == "read " + dir.str() + ": Is a directory");

        File ro = co_await File::open(path, "r");
        OsFailure w = co_await failure_of(ro.write("x"));
        CHECK(w.code == EBADF);
        CHECK(w.what == "write " + path + ": Bad file descriptor");
        OsFailure pw = co_await failure_of(ro.pwrite("x", 0));
        CHECK(pw.what == "pwrite " + path + ": Bad file descriptor");
    });
}

TEST_CASE("File: stat and coring::stat report size, type and times", "[os][file]") {
    TempDir dir;
    std::string path = dir / "sized";
    write_file(path, std::string(1234, 'x'));
    run_test([&]() -> Task<> {
        File f = co_await File::open(path);
        coring::StatResult a = co_await f.stat();
        coring::StatResult b = co_await coring::stat(path);
        coring::StatResult d = co_await coring::stat(dir.str());
        CHECK(a.st_size == 1234);
        CHECK(S_ISREG(a.st_mode));
        CHECK(a.st_ino == b.st_ino);
        CHECK(a.st_dev == b.st_dev);
        CHECK(S_ISDIR(d.st_mode));
        struct stat ref {};
        ::stat(path.c_str(), &ref);
        CHECK(a.st_ino == ref.st_ino);
        CHECK(a.st_dev == ref.st_dev);
        CHECK(a.st_nlink == ref.st_nlink);
        auto age = std::chrono::system_clock::now() - a.st_mtim;
        CHECK(age < 1h);
        CHECK(age > -1h);
    });
}

TEST_CASE("File: fsync, fdatasync, close twice, and use after close", "[os][file]") {
    TempDir dir;
    std::string path = dir / "sync";
    run_test([&]() -> Task<> {
        File f = co_await File::open(path, "w");
        co_await f.write("durable");
        co_await f.fsync();
        co_await f.fdatasync();
        co_await f.close();
        co_await f.close(); // closing a closed file does nothing
        std::string what = "no exception";
        try {
            co_await f.read(1);
        } catch (const coring::ValueError& e) {
            what = e.what();
        }
        CHECK(what == "I/O operation on closed file (read " + path + ")");
    });
    CHECK(slurp(path) == "durable");
}

TEST_CASE("File: the destructor closes the descriptor, release() gives it up", "[os][file]") {
    TempDir dir;
    std::string path = dir / "raii";
    write_file(path, "x");
    run_test([&]() -> Task<> {
        int fd = -1;
        {
            File f = co_await File::open(path);
            fd = f.fileno();
            CHECK(::fcntl(fd, F_GETFD) >= 0);
            File moved = std::move(f);
            CHECK(f.closed());
            CHECK(moved.fileno() == fd);
        }
        CHECK(::fcntl(fd, F_GETFD) == -1);
        File g = co_await File::open(path);
        int kept = g.release();
        CHECK(g.closed());
        CHECK(::fcntl(kept, F_GETFD) >= 0);
        ::close(kept);
    });
}

CORING_TEST_CASE("File: read_all reads files whose size stat does not know", "[os][file]") {
    File f = co_await File::open("/proc/self/status");
    coring::StatResult st = co_await f.stat();
    std::string text = co_await f.read_all();
    CHECK(st.st_size == 0);
    CHECK(text.find("VmHWM:") != std::string::npos);
}

TEST_CASE("File: cancelling a task blocked reading a FIFO cancels the read in the kernel",
          "[os][file][cancel]") {
    TempDir dir;
    std::string fifo = dir / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    run_test([&]() -> Task<> {
        // O_RDWR: opening a FIFO for both ends does not wait for a partner.
        File f = co_await File::open(fifo, O_RDWR);
        std::vector<char> buf(16);
        auto reader =
                coring::create_task([](File& file, std::vector<char>& b) -> Task<std::size_t> {
                    co_return co_await file.readinto(b);
                }(f, buf));
        co_await coring::sleep(0s);
        co_await coring::sleep(0s);
        CHECK(coring::get_running_loop().io_in_flight() == 1);
        reader.cancel();
        CO_CHECK_THROWS_AS(reader, coring::CancelledError);
        CHECK(coring::get_running_loop().io_in_flight() == 0);
        // The cancelled read consumed nothing: the next one gets the data.
        co_await f.write("after");
        std::size_t n = co_await f.readinto(buf);
        CHECK(std::string(buf.data(), n) == "after");
    });
}

TEST_CASE("File: cancelling a task blocked opening a FIFO with no writer", "[os][file][cancel]") {
    TempDir dir;
    std::string fifo = dir / "lonely";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    run_test([&]() -> Task<> {
        // open(O_RDONLY) of a FIFO waits for a writer; the kernel interrupts it when cancelled.
        auto opener = coring::create_task(File::open(fifo, "r"));
        co_await coring::sleep(10ms);
        CHECK(!opener.done());
        opener.cancel();
        CO_CHECK_THROWS_AS(opener, coring::CancelledError);
        CHECK(coring::get_running_loop().io_in_flight() == 0);
    });
}

TEST_CASE("File: a 256 MiB file is copied in 1 MiB chunks with bounded memory",
          "[os][file][slow]") {
    TempDir dir;
    std::string src = dir / "big";
    std::string dst = dir / "big.copy";
    constexpr std::size_t chunk = 1 << 20;
    constexpr std::size_t chunks = 256;
    long rss_before = peak_rss_kib();
    std::uint64_t written_sum = 0;
    std::uint64_t copied_sum = 0;
    std::size_t copied = 0;
    run_test([&]() -> Task<> {
        std::vector<char> buf(chunk);
        {
            File out = co_await File::open(src, "w");
            for (std::size_t i = 0; i < chunks; ++i) {
                for (std::size_t k = 0; k < chunk; k += 4096) {
                    buf[k] = static_cast<char>(i + k / 4096); // a different page each time
                    written_sum += static_cast<unsigned char>(buf[k]);
                }
                co_await out.write(std::string_view(buf.data(), buf.size()));
            }
            co_await out.close();
        }
        File in = co_await File::open(src, "r");
        File out = co_await File::open(dst, "w");
        const char* const reused = buf.data();
        for (;;) {
            std::size_t n = co_await in.readinto(buf);
            if (n == 0) {
                break;
            }
            for (std::size_t k = 0; k < n; k += 4096) {
                copied_sum += static_cast<unsigned char>(buf[k]);
            }
            copied += co_await out.write(std::string_view(buf.data(), n));
        }
        co_await out.close();
        CHECK(buf.data() == reused);
        coring::StatResult st = co_await coring::stat(dst);
        CHECK(st.st_size == chunk * chunks);
    });
    long rss_after = peak_rss_kib();
    CHECK(copied == chunk * chunks);
    CHECK(copied_sum == written_sum);
    // 512 MiB went through the process; its peak grew by a few buffers at most (the page cache
    // is not part of the RSS). Generous bound for sanitizer builds.
    INFO("peak RSS before " << rss_before << " KiB, after " << rss_after << " KiB");
    CHECK(rss_after - rss_before < 64 * 1024);
}
