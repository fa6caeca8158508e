// SPDX-License-Identifier: MIT
// Copies a file through io_uring in 1 MiB chunks with one reused buffer, and prints the
// throughput. Usage: file_copy [SOURCE DEST]; without arguments it creates a 64 MiB file in
// /tmp, copies it and removes both.
//
// The asyncio equivalent (with the aiofiles package):
//
//     async def copy(src, dst):
//         async with aiofiles.open(src, "rb") as fin, aiofiles.open(dst, "wb") as fout:
//             while chunk := await fin.read(1 << 20):
//                 await fout.write(chunk)
//
//     asyncio.run(copy(sys.argv[1], sys.argv[2]))
#include <coring/coring.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

static coring::Task<std::uint64_t> copy(std::string src, std::string dst) {
    coring::File in = co_await coring::File::open(src, "rb");
    coring::File out = co_await coring::File::open(dst, "wb");
    std::vector<char> buffer(1 << 20);
    std::uint64_t total = 0;
    for (;;) {
        std::size_t n = co_await in.readinto(buffer);
        if (n == 0) {
            break;
        }
        co_await out.write(std::string_view(buffer.data(), n));
        total += n;
    }
    co_await out.close();
    co_await in.close();
    co_return total;
}

static coring::Task<int> amain(std::string src, std::string dst, bool temporary) {
    if (temporary) {
        coring::File f = co_await coring::File::open(src, "wb");
        std::string block(1 << 20, 'x');
        for (int i = 0; i < 64; ++i) {
            block[0] = static_cast<char>('a' + i % 26);
            co_await f.write(block);
        }
        co_await f.close();
        std::printf("created %s (64 MiB)\n", src.c_str());
    }
    auto start = std::chrono::steady_clock::now();
    std::uint64_t bytes = co_await copy(src, dst);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    coring::StatResult a = co_await coring::stat(src);
    coring::StatResult b = co_await coring::stat(dst);
    std::printf("copied %llu bytes %s -> %s in %.3f s (%.0f MiB/s)\n",
                static_cast<unsigned long long>(bytes),
                src.c_str(),
                dst.c_str(),
                secs,
                static_cast<double>(bytes) / (1 << 20) / secs);
    co_return a.st_size == b.st_size&& a.st_size == bytes ? 0 : 1;
}

int main(int argc, char** argv) {
    if (argc != 1 && argc != 3) {
        std::fprintf(stderr, "usage: %s [SOURCE DEST]\n", argv[0]);
        return 2;
    }
    bool temporary = argc == 1;
    std::string tag = std::to_string(::getpid());
    std::string src = temporary ? "/tmp/coring-file-copy-" + tag : argv[1];
    std::string dst = temporary ? src + ".copy" : argv[2];
    int status = 1;
    try {
        status = coring::run(amain(src, dst, temporary));
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "file_copy: %s\n", e.what()); // "open SOURCE: No such file ..."
    }
    if (temporary) {
        ::unlink(src.c_str());
        ::unlink(dst.c_str());
    }
    return status;
}
