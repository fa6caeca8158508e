// SPDX-License-Identifier: MIT
// wait_for with a timeout: the slow operation is cancelled, cleans up, and only then does
// TimeoutError reach the caller. Also shows the task dump of a program waiting on timeouts.
//
// The asyncio equivalent:
//
//     async def slow_query():
//         try:
//             await asyncio.sleep(10)
//             return "rows"
//         except asyncio.CancelledError:
//             print("query cancelled: rolling back")
//             await asyncio.sleep(0.02)       # cleanup still runs before wait_for returns
//             raise
//
//     async def main():
//         print(await asyncio.wait_for(asyncio.sleep(0.01, "quick"), timeout=1))
//         try:
//             await asyncio.wait_for(slow_query(), timeout=0.05)
//         except TimeoutError:
//             print("timed out after the cleanup")
//
//     asyncio.run(main())
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

using namespace std::chrono_literals;

static coring::Task<std::string> quick() {
    co_await coring::sleep(10ms);
    co_return "quick";
}

static coring::Task<std::string> slow_query() {
    std::exception_ptr cancelled;
    try {
        co_await coring::sleep(10s);
        co_return "rows";
    } catch (const coring::CancelledError&) {
        std::printf("query cancelled: rolling back\n");
        cancelled = std::current_exception();
    }
    co_await coring::sleep(20ms); // the cleanup still runs before wait_for returns
    std::printf("rollback done\n");
    std::rethrow_exception(cancelled);
}

static coring::Task<int> amain() {
    std::string r = co_await coring::wait_for(quick(), 1s);
    std::printf("in time: %s\n", r.c_str());

    // What a hung program would show: who waits on what.
    auto probe = coring::create_task(
            []() -> coring::Task<> {
                co_await coring::sleep(5ms);
                coring::dump_tasks(stdout);
            }(),
            "probe");
    auto start = coring::get_running_loop().time();
    try {
        co_await coring::wait_for(slow_query(), 50ms);
        co_return 1;
    } catch (const coring::TimeoutError& e) {
        auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                coring::get_running_loop().time() - start);
        std::printf("%s after %lld ms (50 ms timeout + 20 ms cleanup)\n",
                    e.what(),
                    static_cast<long long>(took.count()));
    }
    co_await probe;
    co_return 0;
}

int main() {
    return coring::run(amain());
}
