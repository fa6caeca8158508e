// SPDX-License-Identifier: MIT
// File operations as io_uring requests (openat, read, write, fsync, statx, close); errors named
// after the operation and the path.
#include <coring/errors.hpp>
#include <coring/file.hpp>

#include <coring/detail/io_operation.hpp>
#include <coring/detail/sys.hpp>

#include <fmt/format.h>
#include <liburing.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace coring {

namespace {

// One io_uring read or write moves at most this much (the kernel's own limit is just under
// 2 GiB); longer requests loop.
constexpr std::size_t max_chunk = std::size_t{1} << 30;

// Offset -1: use and advance the file position (IORING_FEAT_RW_CUR_POS, Linux 5.6).
constexpr std::uint64_t at_position = ~std::uint64_t{0};

[[noreturn]] void throw_os_error(int err, const char* op, const std::string& path) {
    throw std::system_error(err, std::system_category(), fmt::format("{} {}", op, path));
}

int mode_flags(std::string_view mode) {
    int creating = 0; // how many of r, w, a, x
    bool plus = false;
    bool binary = false;
    int flags = 0;
    for (char c : mode) {
        switch (c) {
        case 'r':
            ++creating;
            flags = O_RDONLY;
            break;
        case 'w':
            ++creating;
            flags = O_WRONLY | O_CREAT | O_TRUNC;
            break;
        case 'a':
            ++creating;
            flags = O_WRONLY | O_CREAT | O_APPEND;
            break;
        case 'x':
            ++creating;
            flags = O_WRONLY | O_CREAT | O_EXCL;
            break;
        case '+':
            if (plus) {
                creating = 2; // invalid
            }
            plus = true;
            break;
        case 'b':
            if (binary) {
                creating = 2;
            }
            binary = true;
            break;
        default:
            creating = 2;
            break;
        }
    }
    if (creating != 1) {
        throw ValueError(fmt::format("invalid mode: '{}'", mode));
    }
    if (plus) {
        flags = (flags & ~O_ACCMODE) | O_RDWR;
    }
    return flags;
}

StatResult to_stat_result(const struct statx& s) {
    auto at = [](const statx_timestamp& t) {
        return std::chrono::system_clock::time_point(
                std::chrono::duration_cast<std::chrono::system_clock::duration>(
                        std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec)));
    };
    StatResult r;
    r.st_mode = s.stx_mode;
    r.st_ino = s.stx_ino;
    r.st_dev = makedev(s.stx_dev_major, s.stx_dev_minor);
    r.st_nlink = s.stx_nlink;
    r.st_uid = s.stx_uid;
    r.st_gid = s.stx_gid;
    r.st_size = s.stx_size;
    r.st_blksize = s.stx_blksize;
    r.st_blocks = s.stx_blocks;
    r.st_atim = at(s.stx_atime);
    r.st_mtim = at(s.stx_mtime);
    r.st_ctim = at(s.stx_ctime);
    return r;
}

// One read of up to buffer.size() bytes at offset (or at the position): bytes read, 0 at EOF.
Task<std::size_t> read_once(int fd,
                            std::span<char> buffer,
                            std::uint64_t offset,
                            const char* op,
                            const std::string& path) {
    auto len = static_cast<unsigned>(std::min(buffer.size(), max_chunk));
    int res = co_await detail::io_op(op, [&](io_uring_sqe* sqe) {
        io_uring_prep_read(sqe, fd, buffer.data(), len, offset);
    });
    if (res < 0) {
        throw_os_error(-res, op, path);
    }
    co_return static_cast<std::size_t>(res);
}

// Reads until buffer is full or EOF; returns the bytes read.
Task<std::size_t> read_full(int fd,
                            std::span<char> buffer,
                            std::uint64_t offset,
                            const char* op,
                            const std::string& path) {
    std::size_t done = 0;
    while (done < buffer.size()) {
        std::uint64_t at = offset == at_position ? at_position : offset + done;
        std::size_t n = co_await read_once(fd, buffer.subspan(done), at, op, path);
        if (n == 0) {
            break;
        }
        done += n;
    }
    co_return done;
}

// Writes all of data at offset (or at the position / the end in append mode).
Task<std::size_t> write_all(int fd,
                            std::string_view data,
                            std::uint64_t offset,
                            const char* op,
                            const std::string& path) {
    std::size_t done = 0;
    while (done < data.size()) {
        auto len = static_cast<unsigned>(std::min(data.size() - done, max_chunk));
        std::uint64_t at = offset == at_position ? at_position : offset + done;
        const char* p = data.data() + done;
        int res = co_await detail::io_op(
                op, [&](io_uring_sqe* sqe) { io_uring_prep_write(sqe, fd, p, len, at); });
        if (res < 0) {
            throw_os_error(-res, op, path);
        }
        if (res == 0) {
            throw_os_error(EIO, op, path); // a regular file never accepts 0 of n > 0 bytes
        }
        done += static_cast<std::size_t>(res);
    }
    co_return done;
}

Task<StatResult> statx_at(int dirfd, const char* path, int flags, const std::string& name) {
    struct statx buf {};

    int res = co_await detail::io_op("stat", [&](io_uring_sqe* sqe) {
        io_uring_prep_statx(sqe, dirfd, path, flags, STATX_BASIC_STATS, &buf);
    });
    if (res < 0) {
        throw_os_error(-res, "stat", name);
    }
    co_return to_stat_result(buf);
}

} // namespace

void File::close_now() noexcept {
    if (fd_ >= 0) {
        detail::sys.close(std::exchange(fd_, -1));
    }
}

void File::check_open(const char* op) const {
    if (fd_ < 0) {
        throw ValueError(fmt::format("I/O operation on closed file ({} {})", op, name_));
    }
}

Task<File> File::open(std::string path, std::string_view mode, mode_t permissions) {
    // Not a coroutine: the mode is parsed now, so the view need not outlive the call.
    return open(std::move(path), mode_flags(mode), permissions);
}

Task<File> File::open(std::string path, int flags, mode_t permissions) {
    int res = co_await detail::io_op("open", [&](io_uring_sqe* sqe) {
        io_uring_prep_openat(sqe, AT_FDCWD, path.c_str(), flags | O_CLOEXEC, permissions);
        if ((flags & O_NONBLOCK) == 0) {
            // Inline, io_uring first tries the open with O_NONBLOCK added, which changes what
            // open(2) means for FIFOs (a reader no longer waits for a writer, then reads EOF)
            // and terminals. Going straight to an io-wq worker keeps open(2)'s blocking
            // semantics, for a few microseconds more per open.
            io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
        }
    });
    if (res < 0) {
        throw_os_error(-res, "open", path);
    }
    co_return File(res, std::move(path));
}

Task<std::string> File::read(std::size_t n) {
    check_open("read");
    std::string out(n, '\0');
    std::size_t got = co_await read_full(fd_, out, at_position, "read", name_);
    out.resize(got);
    co_return out;
}

Task<std::string> File::read_all() {
    check_open("read");
    // Size the buffer from the file's size, as io.FileIO.readall does, then grow while the file
    // does (or for pipes, whose size is 0).
    StatResult st = co_await stat();
    off_t pos = ::lseek(fd_, 0, SEEK_CUR);
    std::size_t expected = 0;
    if (pos >= 0 && st.st_size > static_cast<std::uint64_t>(pos)) {
        expected = static_cast<std::size_t>(st.st_size - static_cast<std::uint64_t>(pos));
    }
    std::string out(std::max<std::size_t>(expected + 1, 64 * 1024), '\0');
    std::size_t used = 0;
    for (;;) {
        if (used == out.size()) {
            out.resize(out.size() * 2);
        }
        std::size_t n = co_await read_once(
                fd_, std::span<char>(out).subspan(used), at_position, "read", name_);
        if (n == 0) {
            break;
        }
        used += n;
    }
    out.resize(used);
    co_return out;
}

Task<std::size_t> File::readinto(std::span<char> buffer) {
    check_open("read");
    co_return co_await read_once(fd_, buffer, at_position, "read", name_);
}

Task<std::size_t> File::write(std::string_view data) {
    check_open("write");
    co_return co_await write_all(fd_, data, at_position, "write", name_);
}

Task<std::string> File::pread(std::size_t n, std::uint64_t offset) {
    check_open("pread");
    std::string out(n, '\0');
    std::size_t got = co_await read_full(fd_, out, offset, "pread", name_);
    out.resize(got);
    co_return out;
}

Task<std::size_t> File::preadinto(std::span<char> buffer, std::uint64_t offset) {
    check_open("pread");
    co_return co_await read_once(fd_, buffer, offset, "pread", name_);
}

Task<std::size_t> File::pwrite(std::string_view data, std::uint64_t offset) {
    check_open("pwrite");
    co_return co_await write_all(fd_, data, offset, "pwrite", name_);
}

Task<> File::fsync() {
    check_open("fsync");
    int fd = fd_;
    int res = co_await detail::io_op("fsync",
                                     [fd](io_uring_sqe* sqe) { io_uring_prep_fsync(sqe, fd, 0); });
    if (res < 0) {
        throw_os_error(-res, "fsync", name_);
    }
}

Task<> File::fdatasync() {
    check_open("fdatasync");
    int fd = fd_;
    int res = co_await detail::io_op("fdatasync", [fd](io_uring_sqe* sqe) {
        io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
    });
    if (res < 0) {
        throw_os_error(-res, "fdatasync", name_);
    }
}

Task<StatResult> File::stat() {
    check_open("stat");
    co_return co_await statx_at(fd_, "", AT_EMPTY_PATH, name_);
}

Task<> File::close() {
    if (fd_ < 0) {
        co_return;
    }
    int fd = fd_;
    int res = co_await detail::io_op("close",
                                     [fd](io_uring_sqe* sqe) { io_uring_prep_close(sqe, fd); });
    // Linux releases the descriptor even when close reports an error.
    fd_ = -1;
    if (res < 0) {
        throw_os_error(-res, "close", name_);
    }
}

std::uint64_t File::seek(std::int64_t offset, int whence) {
    check_open("seek");
    off_t pos = ::lseek(fd_, static_cast<off_t>(offset), whence);
    if (pos < 0) {
        throw_os_error(errno, "seek", name_);
    }
    return static_cast<std::uint64_t>(pos);
}

std::uint64_t File::tell() const {
    check_open("seek");
    off_t pos = ::lseek(fd_, 0, SEEK_CUR);
    if (pos < 0) {
        throw_os_error(errno, "seek", name_);
    }
    return static_cast<std::uint64_t>(pos);
}

Task<StatResult> stat(std::string path) {
    co_return co_await statx_at(AT_FDCWD, path.c_str(), 0, path);
}

} // namespace coring
