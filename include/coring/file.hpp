// SPDX-License-Identifier: MIT
// Asynchronous file I/O through io_uring: File (the aiofiles use case; Python's io.FileIO and
// os.pread/pwrite/fsync/stat semantics).
#pragma once

#include <coring/task.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace coring {

/// What stat() returns (os.stat_result's common fields), from statx(2).
struct StatResult {
    std::uint32_t st_mode = 0;    ///< file type and permissions (S_ISREG(st_mode), ...)
    std::uint64_t st_ino = 0;     ///< inode number
    std::uint64_t st_dev = 0;     ///< device (makedev(major, minor))
    std::uint32_t st_nlink = 0;   ///< number of hard links
    std::uint32_t st_uid = 0;     ///< owner
    std::uint32_t st_gid = 0;     ///< group
    std::uint64_t st_size = 0;    ///< size in bytes
    std::uint32_t st_blksize = 0; ///< preferred I/O block size
    std::uint64_t st_blocks = 0;  ///< 512-byte blocks allocated
    // The times carry POSIX's st_atim/st_mtim/st_ctim names: <sys/stat.h> defines st_atime,
    // st_mtime and st_ctime as macros.
    std::chrono::system_clock::time_point st_atim; ///< last access (Python's st_atime)
    std::chrono::system_clock::time_point st_mtim; ///< last modification (st_mtime)
    std::chrono::system_clock::time_point st_ctim; ///< last status change (st_ctime)
};

/// An open file whose operations run in the loop's io_uring, so the loop never blocks on the
/// disk (what aiofiles gives asyncio, without a thread per call). Data is bytes: reads return
/// std::string, writes take std::string_view. Move-only; the destructor closes the descriptor
/// with close(2) if close() was not awaited.
///
///     coring::File f = co_await coring::File::open("/tmp/data", "w");
///     co_await f.write("hello\n");
///     co_await f.close();
///
/// Positions: read, readinto and write use and advance the file position (the kernel's, as
/// os.read/os.write do); pread, preadinto and pwrite take an offset and leave it alone. Do not
/// run two position-based operations on one File at once; pread/pwrite may overlap freely.
///
/// Buffers: a buffer or string_view passed in must stay valid until the co_await ends; the
/// kernel writes into it while the operation is in flight.
///
/// Cancellation: cancelling the awaiting task cancels the operation in the kernel and waits
/// for it to be handed back. An operation the kernel cannot interrupt (a read of a regular file
/// already under way) finishes first; its result is kept and the cancellation is raised at the
/// task's next suspension point. Reads of pipes and FIFOs, and opens blocked on a FIFO, are
/// interrupted. A multi-step call (read(n), write) cancelled part-way leaves the position
/// after the bytes already transferred.
///
/// Errors: std::system_error with the errno, its what() naming the operation and the path:
/// "open /tmp/x: No such file or directory".
class File {
public:
    /// A File that is not open.
    File() noexcept = default;

    /// Takes ownership of an open descriptor; name is used in error messages.
    File(int fd, std::string name) noexcept : fd_(fd), name_(std::move(name)) {}

    File(File&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)), name_(std::move(other.name_)) {}

    File& operator=(File&& other) noexcept {
        if (this != &other) {
            close_now();
            fd_ = std::exchange(other.fd_, -1);
            name_ = std::move(other.name_);
        }
        return *this;
    }

    File(const File&) = delete;
    File& operator=(const File&) = delete;

    /// Closes the descriptor with close(2) if it is still open.
    ~File() { close_now(); }

    /// Opens path with a Python open() mode (IORING_OP_OPENAT): "r", "w", "a", "x", each with
    /// an optional "+" (read and write) and "b" (accepted; files are always binary). New files
    /// get permissions & ~umask.
    /// Throws: ValueError("invalid mode: 'q'") at once, from the call; std::system_error("open
    /// path: ...") from the co_await.
    [[nodiscard]] static Task<File>
    open(std::string path, std::string_view mode = "r", mode_t permissions = 0666);

    /// Opens path with open(2) flags (O_RDONLY, O_WRONLY | O_CREAT, ...); O_CLOEXEC is added.
    /// Throws: std::system_error("open path: ...").
    [[nodiscard]] static Task<File> open(std::string path, int flags, mode_t permissions = 0666);

    /// Reads up to n bytes at the current position (io.BufferedReader.read(n)): fewer only at
    /// end of file, an empty string at end of file. Throws: std::system_error("read path: ...").
    [[nodiscard]] Task<std::string> read(std::size_t n);

    /// Reads from the current position to the end of the file (read() with no size).
    /// Throws: std::system_error("read path: ...").
    [[nodiscard]] Task<std::string> read_all();

    /// One read into buffer at the current position (io.FileIO.readinto): returns the number
    /// of bytes read, which may be fewer than buffer.size() (at end of file, or from a pipe);
    /// 0 at end of file. Throws: std::system_error("read path: ...").
    [[nodiscard]] Task<std::size_t> readinto(std::span<char> buffer);

    /// Writes all of data at the current position (or the end, in append mode), and returns
    /// data.size(). Throws: std::system_error("write path: ...").
    [[nodiscard]] Task<std::size_t> write(std::string_view data);

    /// Reads up to n bytes at offset without moving the position (os.pread): fewer only at end
    /// of file, empty at or past it. Throws: std::system_error("pread path: ...").
    [[nodiscard]] Task<std::string> pread(std::size_t n, std::uint64_t offset);

    /// One read into buffer at offset (os.preadv with one buffer); returns the bytes read.
    /// Throws: std::system_error("pread path: ...").
    [[nodiscard]] Task<std::size_t> preadinto(std::span<char> buffer, std::uint64_t offset);

    /// Writes all of data at offset without moving the position (os.pwrite, repeated until
    /// everything is written); returns data.size(). Throws: std::system_error("pwrite path:
    /// ...").
    [[nodiscard]] Task<std::size_t> pwrite(std::string_view data, std::uint64_t offset);

    /// Flushes the file's data and metadata to the device (os.fsync, IORING_OP_FSYNC).
    /// Throws: std::system_error("fsync path: ...").
    [[nodiscard]] Task<> fsync();

    /// Flushes the file's data, and only the metadata needed to read it (os.fdatasync).
    /// Throws: std::system_error("fdatasync path: ...").
    [[nodiscard]] Task<> fdatasync();

    /// The open file's status (os.fstat, IORING_OP_STATX).
    /// Throws: std::system_error("stat path: ...").
    [[nodiscard]] Task<StatResult> stat();

    /// Closes the file (IORING_OP_CLOSE). Closing a closed File does nothing. The descriptor is
    /// released even when an error is reported (as close(2) does on Linux).
    /// Throws: std::system_error("close path: ...").
    [[nodiscard]] Task<> close();

    /// Moves the position (io.FileIO.seek: SEEK_SET, SEEK_CUR, SEEK_END) and returns the new
    /// one. lseek(2) only updates the descriptor: it never waits for the disk.
    /// Throws: std::system_error("seek path: ...").
    std::uint64_t seek(std::int64_t offset, int whence = 0);

    /// The current position (io.FileIO.tell). Throws: std::system_error("seek path: ...").
    std::uint64_t tell() const;

    /// The descriptor, or -1 when closed (fileno()).
    int fileno() const noexcept { return fd_; }

    /// Whether the file is closed.
    bool closed() const noexcept { return fd_ < 0; }

    /// The path it was opened with (the name attribute).
    const std::string& name() const noexcept { return name_; }

    /// Gives up ownership of the descriptor and returns it; the File is closed afterwards.
    int release() noexcept { return std::exchange(fd_, -1); }

private:
    void close_now() noexcept;
    void check_open(const char* op) const;

    int fd_ = -1;
    std::string name_;
};

/// The status of path, following symbolic links (os.stat, IORING_OP_STATX).
/// Throws: std::system_error("stat path: ...").
[[nodiscard]] Task<StatResult> stat(std::string path);

} // namespace coring
