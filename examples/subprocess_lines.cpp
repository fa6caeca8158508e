// SPDX-License-Identifier: MIT
// Runs a child process and prints its output line by line as it arrives (each line stamped
// with the time since the start, to show it is not buffered until the end), then its exit
// code; then feeds a second child through communicate().
//
// The asyncio equivalent:
//
//     async def main():
//         proc = await asyncio.create_subprocess_exec(
//             "sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.05; done; exit 2",
//             stdout=asyncio.subprocess.PIPE)
//         while line := await proc.stdout.readline():
//             print(line.decode(), end="")
//         print("exit code", await proc.wait())
//
//         proc = await asyncio.create_subprocess_exec(
//             "tr", "a-z", "A-Z", stdin=PIPE, stdout=PIPE)
//         out, _ = await proc.communicate(b"shout this\n")
//
//     asyncio.run(main())
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <string>

using coring::Process;
using coring::SubprocessOptions;
using coring::Task;

static Task<int> amain() {
    auto start = std::chrono::steady_clock::now();
    Process proc = co_await coring::create_subprocess_exec(
            "sh",
            "-c",
            "for i in 1 2 3; do echo line $i; sleep 0.05; done; exit 2",
            SubprocessOptions{.stdout_ = coring::PIPE});
    std::printf("started pid %d\n", static_cast<int>(proc.pid()));
    for (;;) {
        std::string line = co_await proc.stdout_->readline();
        if (line.empty()) {
            break; // EOF: the child closed its stdout
        }
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start);
        std::printf("[%4lld ms] %s", static_cast<long long>(ms.count()), line.c_str());
    }
    int code = co_await proc.wait();
    std::printf("exit code %d\n", code);

    // Input and output at once: communicate() writes, closes stdin and reads to EOF.
    Process upper = co_await coring::create_subprocess_exec(
            "tr", "a-z", "A-Z", SubprocessOptions{.stdin_ = coring::PIPE, .stdout_ = coring::PIPE});
    auto [out, err] = co_await upper.communicate("shout this\n");
    std::printf("tr said: %s", out->c_str());
    co_return code == 2 && *out == "SHOUT THIS\n" ? 0 : 1;
}

int main() {
    return coring::run(amain());
}
