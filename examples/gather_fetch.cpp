// SPDX-License-Identifier: MIT
// Concurrent "fetches" with gather: once failing fast, once collecting every outcome.
//
// The asyncio equivalent:
//
//     async def fetch(url, delay, ok=True):
//         await asyncio.sleep(delay)          # pretend to talk to a server
//         if not ok:
//             raise ConnectionError(f"{url}: connection refused")
//         return f"<html>{url}</html>"
//
//     async def main():
//         pages = await asyncio.gather(fetch("a", 0.05), fetch("b", 0.03))
//         results = await asyncio.gather(fetch("a", 0.05), fetch("down", 0.01, ok=False),
//                                        fetch("c", 0.02), return_exceptions=True)
//         for r in results:
//             print("error:" if isinstance(r, Exception) else "page:", r)
//
//     asyncio.run(main())
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

static coring::Task<std::string>
fetch(std::string url, std::chrono::milliseconds delay, bool ok = true) {
    std::printf("fetch %s: started\n", url.c_str());
    co_await coring::sleep(delay); // pretend to talk to a server
    if (!ok) {
        throw std::runtime_error(url + ": connection refused");
    }
    std::printf(
            "fetch %s: done after %lld ms\n", url.c_str(), static_cast<long long>(delay.count()));
    co_return "<html>" + url + "</html>";
}

static coring::Task<int> amain() {
    // All at once; results come back in argument order, not completion order.
    auto [a, b] = co_await coring::gather(fetch("a", 50ms), fetch("b", 30ms));
    std::printf("gather: %s %s\n", a.c_str(), b.c_str());

    // Without return_exceptions the first error is raised at once.
    try {
        co_await coring::gather(fetch("slow", 80ms), fetch("down", 10ms, false));
    } catch (const std::exception& e) {
        std::printf("gather raised: %s (the slow fetch keeps running)\n", e.what());
    }

    // With return_exceptions every outcome comes back in place.
    std::vector<coring::Task<std::string>> jobs;
    jobs.push_back(fetch("x", 40ms));
    jobs.push_back(fetch("down", 10ms, false));
    jobs.push_back(fetch("y", 20ms));
    auto outcomes = co_await coring::gather(coring::return_exceptions, std::move(jobs));
    int failures = 0;
    for (const auto& o : outcomes) {
        if (o) {
            std::printf("page: %s\n", o->c_str());
        } else {
            ++failures;
            std::printf("error: %s\n", coring::describe_exception(o.exception()).c_str());
        }
    }
    co_await coring::sleep(100ms); // let the slow fetch from above finish
    co_return failures == 1 ? 0 : 1;
}

int main() {
    return coring::run(amain());
}
