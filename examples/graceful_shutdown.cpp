// SPDX-License-Identifier: MIT
// A worker-style program that shuts down cleanly on SIGINT or SIGTERM: the signal handler asks
// for shutdown, main cancels the workers, each one finishes its clean-up, then the program
// exits 0. examples/run/graceful_shutdown.sh sends it SIGTERM after a short while.
//
// The asyncio equivalent:
//
//     async def worker(n):
//         try:
//             while True:
//                 await asyncio.sleep(0.1)       # one job
//         except asyncio.CancelledError:
//             print(f"worker {n}: cleaning up")
//             await asyncio.sleep(0.05)          # flush, close, say goodbye
//             raise
//
//     async def main():
//         loop = asyncio.get_running_loop()
//         stop = loop.create_future()
//         for sig in (signal.SIGINT, signal.SIGTERM):
//             loop.add_signal_handler(sig, lambda s=sig: stop.done() or stop.set_result(s))
//         workers = [asyncio.create_task(worker(n)) for n in range(3)]
//         sig = await stop
//         for w in workers: w.cancel()
//         await asyncio.gather(*workers, return_exceptions=True)
//
//     asyncio.run(main())
#include <coring/coring.hpp>

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <vector>

using namespace std::chrono_literals;

static coring::Task<> worker(int n, int& cleaned_up) {
    int jobs = 0;
    try {
        for (;;) {
            co_await coring::sleep(100ms); // one unit of work
            ++jobs;
        }
    } catch (const coring::CancelledError&) {
        std::printf("worker %d: cancelled after %d jobs, cleaning up\n", n, jobs);
    }
    // Clean-up may await too: the cancellation was delivered once and is not repeated.
    co_await coring::sleep(50ms);
    std::printf("worker %d: clean\n", n);
    ++cleaned_up;
    throw coring::CancelledError(); // end as cancelled, as the asyncio version re-raises
}

static coring::Task<int> amain() {
    coring::EventLoop& loop = coring::get_running_loop();
    coring::Future<int> stop(loop);
    for (int sig : {SIGINT, SIGTERM}) {
        coring::add_signal_handler(loop, sig, [stop, sig] {
            if (!stop.done()) {
                stop.set_result(sig);
            }
        });
    }
    // So that a bare run ends too: give up waiting for a signal after 10 s.
    auto deadline = loop.call_later(10s, [stop] {
        if (!stop.done()) {
            stop.set_result(0);
        }
    });
    std::printf("pid %d: 3 workers running; send SIGINT or SIGTERM to stop\n",
                static_cast<int>(::getpid()));
    std::fflush(stdout);

    int cleaned_up = 0;
    std::vector<coring::TaskHandle<>> workers;
    for (int n = 1; n <= 3; ++n) {
        workers.push_back(coring::create_task(worker(n, cleaned_up)));
    }
    int sig = co_await stop;
    deadline.cancel();
    if (sig == 0) {
        std::printf("no signal within 10 s; shutting down anyway\n");
    } else {
        std::printf("received SIG%s: shutting down\n", ::sigabbrev_np(sig));
    }
    for (auto& w : workers) {
        w.cancel();
    }
    for (auto& w : workers) {
        try {
            co_await w;
        } catch (const coring::CancelledError&) {
            // each worker ends cancelled
        }
    }
    std::printf("%d of 3 workers stopped cleanly\n", cleaned_up);
    co_return sig != 0 && cleaned_up == 3 ? 0 : 1;
}

int main() {
    return coring::run(amain());
}
