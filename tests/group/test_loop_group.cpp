// SPDX-License-Identifier: MIT
// Tests of LoopGroup / run_per_core (no asyncio equivalent): per-loop mains, failure and
// cancellation, run_on across loops, SO_REUSEPORT and round-robin servers, SIGTERM shutdown.
// Catch2 v2 assertions are not thread-safe: loop threads record, the test thread checks.
// clang-format off
#include <coring/loop_group.hpp> // first: it must compile on its own
// clang-format on

#include <coring/sleep.hpp>
#include <coring/streams.hpp>
#include <coring/task.hpp>
#include <coring/wait.hpp>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::LoopGroup;
using coring::Task;

extern char** environ;

namespace {

Task<int> index_main(LoopGroup& group, std::size_t i, std::vector<std::thread::id>& ids) {
    co_await coring::sleep(1ms);
    ids[i] = std::this_thread::get_id();
    co_return static_cast<int>(group.index() * 10 + i);
}

} // namespace

TEST_CASE("LoopGroup: every loop runs its own main on its own thread, results in loop order",
          "[group][threads]") {
    LoopGroup group({.loops = 3});
    REQUIRE(group.size() == 3);
    std::vector<std::thread::id> ids(3);
    std::vector<int> results = group.run([&](std::size_t i) { return index_main(group, i, ids); });
    CHECK(results == std::vector<int>{0, 11, 22});
    std::set<std::thread::id> distinct(ids.begin(), ids.end());
    CHECK(distinct.size() == 3);
    CHECK(distinct.count(std::this_thread::get_id()) == 0);
    CHECK_THROWS_AS(group.index(), coring::RuntimeError);
}

TEST_CASE("run_per_core: void mains, pinned loops", "[group][threads]") {
    std::atomic<int> ran{0};
    coring::run_per_core(2,
                         [&](std::size_t) -> Task<> {
                             ran.fetch_add(1);
                             co_return;
                         },
                         {.pin = true});
    CHECK(ran.load() == 2);
}

namespace {

Task<int> failing_main(std::size_t i, std::atomic<int>& cancelled) {
    if (i == 0) {
        co_await coring::sleep(5ms);
        throw std::invalid_argument("loop 0 failed");
    }
    try {
        co_await coring::sleep(1h);
    } catch (const coring::CancelledError&) {
        cancelled.fetch_add(1);
        throw;
    }
    co_return 1;
}

} // namespace

TEST_CASE("LoopGroup: the first failure is rethrown and the other mains are cancelled",
          "[group][threads]") {
    std::atomic<int> cancelled{0};
    LoopGroup group({.loops = 3});
    CHECK_THROWS_AS(group.run([&](std::size_t i) { return failing_main(i, cancelled); }),
                    std::invalid_argument);
    CHECK(cancelled.load() == 2);
    // The group can run again.
    std::vector<int> again =
            group.run([](std::size_t i) -> Task<int> { co_return static_cast<int>(i); });
    CHECK(again == std::vector<int>{0, 1, 2});
}

TEST_CASE("LoopGroup: cancel() from a loop cancels every main", "[group][threads]") {
    std::atomic<int> cancelled{0};
    std::atomic<bool> loop0_waiting{false};
    LoopGroup group({.loops = 2});
    auto main = [&](std::size_t i) -> Task<> {
        try {
            if (i == 1) {
                // Cancel only once loop 0's main is inside its try (a fixed delay raced with a
                // slow thread start under ASan on a loaded machine).
                while (!loop0_waiting.load()) {
                    co_await coring::sleep(1ms);
                }
                group.cancel();
            } else {
                loop0_waiting.store(true);
            }
            co_await coring::sleep(1h);
        } catch (const coring::CancelledError&) {
            cancelled.fetch_add(1);
            throw;
        }
    };
    CHECK_THROWS_AS(group.run(main), coring::CancelledError);
    CHECK(cancelled.load() == 2);
}

namespace {

struct Outcomes {
    std::mutex mutex;
    std::vector<std::string> lines;

    void add(std::string s) {
        std::lock_guard lock(mutex);
        lines.push_back(std::move(s));
    }
};

Task<int> remote_add(int a, int b) {
    co_await coring::sleep(1ms);
    co_return a + b;
}

Task<int> remote_fail() {
    co_await coring::sleep(1ms);
    throw std::out_of_range("remote coroutine failed");
}

// Loop 0 calls into loop 1 and records what it saw; loop 1 serves until loop 0 is done.
Task<> caller_main(LoopGroup& group,
                   std::size_t i,
                   Outcomes& out,
                   std::atomic<bool>& done,
                   std::atomic<bool>& remote_cancelled) {
    if (i == 1) {
        for (;;) {
            if (done.load()) {
                co_return;
            }
            co_await coring::sleep(1ms);
        }
    }
    // A function: its value, and the thread it ran on.
    auto tid = co_await group.run_on(1, [] { return std::this_thread::get_id(); });
    out.add(tid != std::this_thread::get_id() ? "other thread" : "same thread");
    std::size_t where = co_await group.run_on(1, [&group] { return group.index(); });
    out.add("index " + std::to_string(where));
    // A function's exception.
    try {
        co_await group.run_on(1, []() -> int { throw std::length_error("remote function"); });
        out.add("no exception");
    } catch (const std::length_error& e) {
        out.add(std::string("caught ") + e.what());
    }
    // A void function.
    std::atomic<int> touched{0};
    co_await group.run_on(1, [&touched] { touched.store(7); });
    out.add("touched " + std::to_string(touched.load()));
    // A coroutine: its value and its exception.
    int sum = co_await group.run_on(1, [] { return remote_add(2, 3); });
    out.add("sum " + std::to_string(sum));
    try {
        co_await group.run_on(1, [] { return remote_fail(); });
        out.add("no exception");
    } catch (const std::out_of_range& e) {
        out.add(std::string("caught ") + e.what());
    }
    // Cancelling the awaiting task cancels the coroutine running on loop 1.
    auto forever = [&remote_cancelled]() -> Task<int> {
        try {
            co_await coring::sleep(1h);
        } catch (const coring::CancelledError&) {
            remote_cancelled.store(true);
            throw;
        }
        co_return 0;
    };
    auto call = coring::create_task(group.run_on(1, forever));
    co_await coring::sleep(5ms);
    call.cancel();
    try {
        co_await call;
        out.add("not cancelled");
    } catch (const coring::CancelledError&) {
        out.add("cancelled");
    }
    for (int k = 0; k < 1000; ++k) {
        if (remote_cancelled.load()) {
            break;
        }
        co_await coring::sleep(1ms);
    }
    // Out of range.
    try {
        co_await group.run_on(5, [] { return 0; });
        out.add("no exception");
    } catch (const coring::RuntimeError&) {
        out.add("out of range");
    }
    done.store(true);
}

} // namespace

TEST_CASE("LoopGroup::run_on: results, exceptions, coroutines, cancellation", "[group][threads]") {
    Outcomes out;
    std::atomic<bool> done{false};
    std::atomic<bool> remote_cancelled{false};
    LoopGroup group({.loops = 2});
    group.run([&](std::size_t i) { return caller_main(group, i, out, done, remote_cancelled); });
    CHECK(out.lines == std::vector<std::string>{"other thread",
                                                "index 1",
                                                "caught remote function",
                                                "touched 7",
                                                "sum 5",
                                                "caught remote coroutine failed",
                                                "cancelled",
                                                "out of range"});
    CHECK(remote_cancelled.load());
}

TEST_CASE("LoopGroup::run_on: a loop that has finished refuses calls", "[group][threads]") {
    std::atomic<int> refused{0};
    LoopGroup group({.loops = 2});
    group.run([&](std::size_t i) -> Task<> {
        if (i == 0) {
            co_return; // finishes at once
        }
        for (int k = 0; k < 2000; ++k) {
            try {
                co_await group.run_on(0, [] { return 1; });
            } catch (const coring::RuntimeError&) {
                refused.fetch_add(1);
                co_return;
            }
            co_await coring::sleep(1ms);
        }
    });
    CHECK(refused.load() == 1);
}

TEST_CASE("LoopGroup::run_on: 8 loops calling each other under load", "[group][threads]") {
    constexpr std::size_t loops = 8;
    constexpr int calls = 300;
    std::atomic<long> total{0};
    std::atomic<std::size_t> finished{0};
    std::array<std::atomic<long>, loops> served{};
    LoopGroup group({.loops = loops});
    group.run([&](std::size_t i) -> Task<> {
        long sum = 0;
        for (int k = 0; k < calls; ++k) {
            std::size_t target = (i + 1 + static_cast<std::size_t>(k) % (loops - 1)) % loops;
            if (k % 2 == 0) {
                sum += co_await group.run_on(target, [&served, target, k] {
                    served[target].fetch_add(1);
                    return static_cast<long>(k);
                });
            } else {
                sum += co_await group.run_on(target, [&served, target, k]() -> Task<long> {
                    served[target].fetch_add(1);
                    co_await coring::sleep(0ms);
                    co_return static_cast<long>(k);
                });
            }
        }
        total.fetch_add(sum);
        // Stay until every loop is done calling, so no call meets a finished loop.
        finished.fetch_add(1);
        for (;;) {
            if (finished.load() == loops) {
                break;
            }
            co_await coring::sleep(1ms);
        }
    });
    CHECK(total.load() == static_cast<long>(loops) * (calls * (calls - 1) / 2));
    long all = 0;
    for (auto& s : served) {
        all += s.load();
    }
    CHECK(all == static_cast<long>(loops) * calls);
}

namespace {

// One connection: tell the client which loop took it, then close.
Task<> tell_loop(LoopGroup& group, coring::StreamReader, coring::StreamWriter writer) {
    std::string line = std::to_string(group.index()) + "\n";
    writer.write(line);
    co_await writer.drain();
    writer.close();
    co_await writer.wait_closed();
}

// Loop 0 also runs the clients: n connections, each reads the serving loop's index.
Task<> clients(std::uint16_t port, int n, std::vector<int>& per_loop) {
    for (int k = 0; k < n; ++k) {
        auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port);
        std::string line = co_await reader.readline();
        std::size_t idx = std::stoul(line);
        if (idx < per_loop.size()) {
            ++per_loop[idx];
        }
        writer.close();
        co_await writer.wait_closed();
    }
}

Task<> reuse_port_main(LoopGroup& group,
                       std::size_t i,
                       std::atomic<std::uint16_t>& port,
                       std::atomic<std::size_t>& listening,
                       std::atomic<bool>& done,
                       std::vector<int>& per_loop) {
    coring::ServerOptions options{};
    options.reuse_port = true;
    coring::ClientConnectedCallback cb = [&group](coring::StreamReader r, coring::StreamWriter w) {
        return tell_loop(group, std::move(r), std::move(w));
    };
    if (i != 0) {
        for (;;) {
            if (port.load() != 0) {
                break;
            }
            co_await coring::sleep(1ms);
        }
    }
    coring::Server server = co_await coring::start_server(cb, "127.0.0.1", port.load(), options);
    if (i == 0) {
        port.store(server.sockets().front().getsockname().port());
    }
    listening.fetch_add(1);
    if (i == 0) {
        for (;;) {
            if (listening.load() == group.size()) {
                break;
            }
            co_await coring::sleep(1ms);
        }
        co_await clients(port.load(), 64, per_loop);
        done.store(true);
    } else {
        for (;;) {
            if (done.load()) {
                break;
            }
            co_await coring::sleep(1ms);
        }
    }
    server.close();
    co_await server.wait_closed();
}

} // namespace

TEST_CASE("LoopGroup: SO_REUSEPORT servers on every loop share a port, connections spread",
          "[group][threads][net]") {
    for (unsigned loops : {2U, 4U}) {
        std::atomic<std::uint16_t> port{0};
        std::atomic<std::size_t> listening{0};
        std::atomic<bool> done{false};
        std::vector<int> per_loop(loops, 0);
        LoopGroup group({.loops = loops});
        group.run([&](std::size_t i) {
            return reuse_port_main(group, i, port, listening, done, per_loop);
        });
        int total = 0;
        int busy = 0;
        for (int c : per_loop) {
            total += c;
            busy += c > 0 ? 1 : 0;
        }
        INFO("loops " << loops);
        CHECK(total == 64);
        // The kernel hashes each connection's addresses over the listeners: with 64
        // connections every loop gets some except with negligible probability.
        CHECK(busy == static_cast<int>(loops));
    }
}

TEST_CASE("serve_round_robin: one loop accepts, connections are handed to every loop in turn",
          "[group][threads][net]") {
    constexpr unsigned loops = 3;
    std::atomic<std::uint16_t> port{0};
    std::atomic<bool> done{false};
    std::vector<int> per_loop(loops, 0);
    LoopGroup group({.loops = loops});
    group.run([&](std::size_t i) -> Task<> {
        if (i != 0) {
            for (;;) {
                if (done.load()) {
                    break;
                }
                co_await coring::sleep(1ms);
            }
            co_return;
        }
        coring::ClientConnectedCallback cb = [&group](coring::StreamReader r,
                                                      coring::StreamWriter w) {
            return tell_loop(group, std::move(r), std::move(w));
        };
        auto acceptor = coring::create_task(coring::serve_round_robin(
                group, cb, "127.0.0.1", 0, [&port](std::uint16_t p) { port.store(p); }));
        for (;;) {
            if (port.load() != 0) {
                break;
            }
            co_await coring::sleep(1ms);
        }
        co_await clients(port.load(), 30, per_loop);
        acceptor.cancel();
        try {
            co_await acceptor;
        } catch (const coring::CancelledError&) {
        }
        done.store(true);
    });
    CHECK(per_loop == std::vector<int>{10, 10, 10});
}

// ---- SIGTERM: run in a child process (the [.] tag keeps it out of normal runs) ----

TEST_CASE("LoopGroup SIGTERM child", "[.group-sigterm-child]") {
    constexpr unsigned loops = 3;
    std::atomic<std::size_t> started{0};
    std::atomic<std::size_t> cleaned{0};
    int code = 1;
    try {
        coring::run_per_core(loops, [&](std::size_t) -> Task<> {
            if (started.fetch_add(1) + 1 == loops) {
                std::printf("ready\n");
                std::fflush(stdout);
            }
            bool was_cancelled = false;
            try {
                co_await coring::sleep(1h);
            } catch (const coring::CancelledError&) {
                was_cancelled = true;
            }
            if (was_cancelled) {
                co_await coring::sleep(1ms); // cleanup that awaits still runs
                cleaned.fetch_add(1);
                throw coring::CancelledError();
            }
        });
        std::printf("returned normally\n");
    } catch (const coring::SignalShutdown& e) {
        std::printf("SignalShutdown %d, loops cleaned up: %zu\n", e.signal(), cleaned.load());
        code = 0;
    }
    std::fflush(stdout);
    CHECK(code == 0);
}

TEST_CASE("run_per_core: SIGTERM cancels every loop's main and run throws SignalShutdown",
          "[group][threads][signals]") {
    int out_pipe[2];
    REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    char exe[] = "/proc/self/exe";
    char spec[] = "[.group-sigterm-child]";
    char* argv[] = {exe, spec, nullptr};
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, exe, &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out_pipe[1]);
    REQUIRE(rc == 0);
    std::string output;
    char buf[512];
    bool sent = false;
    for (;;) {
        ssize_t n = ::read(out_pipe[0], buf, sizeof(buf));
        if (n <= 0) {
            break;
        }
        output.append(buf, static_cast<std::size_t>(n));
        if (!sent && output.find("ready\n") != std::string::npos) {
            ::kill(pid, SIGTERM);
            sent = true;
        }
    }
    ::close(out_pipe[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    INFO(output);
    CHECK(sent);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(output.find("SignalShutdown 15, loops cleaned up: 3") != std::string::npos);
}

TEST_CASE("LoopGroup: the loops' rings share loop 0's kernel worker pool (ATTACH_WQ)",
          "[group][threads]") {
    if (coring::EventLoop().backend() == coring::Backend::epoll) {
        CORING_SKIP("io_uring only: ATTACH_WQ shares io_uring's kernel workers");
    }
    for (bool share : {true, false}) {
        LoopGroup group({.loops = 3, .share_kernel_workers = share});
        std::vector<bool> attached = group.run([](std::size_t) -> Task<bool> {
            co_return (coring::detail::LoopAccess::ring(coring::get_running_loop()).setup_flags() &
                       IORING_SETUP_ATTACH_WQ) != 0;
        });
        INFO("share " << share);
        CHECK(attached == std::vector<bool>{false, share, share});
    }
}

TEST_CASE("EventLoopOptions::attach_wq_fd: a fd that is no ring gives a pool of the loop's own",
          "[group]") {
    if (coring::EventLoop().backend() == coring::Backend::epoll) {
        CORING_SKIP("io_uring only: ATTACH_WQ shares io_uring's kernel workers");
    }
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    coring::EventLoopOptions options{};
    options.attach_wq_fd = fds[0];
    {
        coring::EventLoop loop(options);
        CHECK((coring::detail::LoopAccess::ring(loop).setup_flags() & IORING_SETUP_ATTACH_WQ) == 0);
        coring::EventLoopOptions attached{};
        attached.attach_wq_fd = coring::detail::LoopAccess::ring(loop).fd();
        coring::EventLoop second(attached);
        CHECK((coring::detail::LoopAccess::ring(second).setup_flags() & IORING_SETUP_ATTACH_WQ) !=
              0);
    }
    ::close(fds[0]);
    ::close(fds[1]);
}
