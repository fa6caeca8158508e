// SPDX-License-Identifier: MIT
// A TaskGroup where one task fails: the others are cancelled, and the errors come out
// together as an ExceptionGroup once every task has finished.
//
// The asyncio equivalent:
//
//     async def worker(name, delay):
//         try:
//             await asyncio.sleep(delay)
//             print(f"{name} finished")
//         except asyncio.CancelledError:
//             print(f"{name} cancelled, cleaning up")
//             raise
//
//     async def broken():
//         await asyncio.sleep(0.05)
//         raise ValueError("broken worker")
//
//     async def main():
//         try:
//             async with asyncio.TaskGroup() as tg:
//                 tg.create_task(worker("fast", 0.01))
//                 tg.create_task(worker("slow", 10))
//                 tg.create_task(broken())
//         except* ValueError as eg:
//             print("TaskGroup raised:", eg.exceptions)
//
//     asyncio.run(main())
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

static coring::Task<> worker(std::string name, std::chrono::milliseconds delay) {
    try {
        co_await coring::sleep(delay);
        std::printf("%s finished\n", name.c_str());
    } catch (const coring::CancelledError&) {
        std::printf("%s cancelled, cleaning up\n", name.c_str());
        throw;
    }
}

static coring::Task<> broken() {
    co_await coring::sleep(50ms);
    std::printf("broken: failing\n");
    throw std::invalid_argument("broken worker");
}

static coring::Task<int> amain() {
    auto start = coring::get_running_loop().time();
    try {
        co_await coring::task_group([](coring::TaskGroup& tg) -> coring::Task<> {
            tg.create_task(worker("fast", 10ms), "fast");
            tg.create_task(worker("slow", 10s), "slow");
            tg.create_task(broken(), "broken");
            co_return;
        });
        std::printf("no error?\n");
        co_return 1;
    } catch (const coring::ExceptionGroup& eg) {
        std::printf("TaskGroup raised: %s\n", eg.what());
        for (const auto& e : eg.exceptions()) {
            std::printf("  %s\n", coring::describe_exception(e).c_str());
        }
    }
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
            coring::get_running_loop().time() - start);
    std::printf("done after %lld ms: the slow worker did not hold the group up\n",
                static_cast<long long>(took.count()));
    co_return took < 5s ? 0 : 1;
}

int main() {
    return coring::run(amain());
}
