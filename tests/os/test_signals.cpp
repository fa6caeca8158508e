// SPDX-License-Identifier: MIT
// Tests of signal handlers and run()'s Ctrl-C handling (asyncio test_unix_events
// add_signal_handler / remove_signal_handler, test_runners SIGINT cases).
// clang-format off
#include <coring/signals.hpp> // first: it must compile on its own
// clang-format on

#include <coring/future.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing.hpp>
#include <coring/testing/catch2.hpp>

#include <coring/detail/sys.hpp>

#include <catch2/catch.hpp>

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::EventLoop;
using coring::Future;
using coring::Task;
using coring::test::run_test;

namespace {

// A latch other threads wait on; the loop thread opens it.
class Gate {
public:
    void open() {
        {
            std::lock_guard lock(m_);
            open_ = true;
        }
        cv_.notify_all();
    }

    void wait() {
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return open_; });
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    bool open_ = false;
};

bool blocked_here(int sig) {
    sigset_t set;
    pthread_sigmask(SIG_BLOCK, nullptr, &set);
    return sigismember(&set, sig) == 1;
}

using Handler = void (*)(int);

Handler disposition(int sig) {
    struct sigaction sa {};

    sigaction(sig, nullptr, &sa);
    return sa.sa_handler;
}

bool pending(int sig) {
    sigset_t set;
    sigpending(&set);
    return sigismember(&set, sig) == 1;
}

} // namespace

TEST_CASE("Signals: a handler runs as a loop callback when the signal arrives", "[os][signals]") {
    run_test([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        Future<int> got(loop);
        bool on_loop = false;
        coring::add_signal_handler(loop, SIGUSR1, [&] {
            on_loop = EventLoop::running() == &loop;
            got.set_result(SIGUSR1);
        });
        CHECK(blocked_here(SIGUSR1));
        CHECK(disposition(SIGUSR1) != SIG_DFL);
        CHECK(loop.io_in_flight() == 0); // the signalfd read is the loop's own, not pending work
        ::raise(SIGUSR1);
        int sig = co_await got;
        CHECK(sig == SIGUSR1);
        CHECK(on_loop);
        CHECK(coring::remove_signal_handler(loop, SIGUSR1));
    });
    CHECK(!blocked_here(SIGUSR1));
    CHECK(disposition(SIGUSR1) == SIG_DFL);
}

CORING_TEST_CASE("Signals: each arrival schedules the callback with its arguments, after what is "
                 "already ready",
                 "[os][signals]") {
    EventLoop& loop = coring::get_running_loop();
    std::vector<std::string> log;
    Future<> second(loop);
    coring::add_signal_handler(
            loop,
            SIGUSR2,
            [&](const std::string& tag, int n) {
                log.push_back(tag + std::to_string(n));
                if (log.size() == 3) {
                    second.set_result();
                }
            },
            std::string("usr2-"),
            2);
    ::raise(SIGUSR2);
    co_await coring::sleep(5ms); // the first one is read and handled meanwhile
    log.push_back("between");
    ::raise(SIGUSR2);
    co_await second;
    CHECK(log == std::vector<std::string>{"usr2-2", "between", "usr2-2"});
    CHECK(coring::remove_signal_handler(loop, SIGUSR2));
}

CORING_TEST_CASE("Signals: adding a handler again replaces the callback", "[os][signals]") {
    EventLoop& loop = coring::get_running_loop();
    int first = 0;
    Future<> done(loop);
    coring::add_signal_handler(loop, SIGUSR1, [&] { ++first; });
    coring::add_signal_handler(loop, SIGUSR1, [&] { done.set_result(); });
    ::raise(SIGUSR1);
    co_await done;
    CHECK(first == 0);
    CHECK(coring::remove_signal_handler(loop, SIGUSR1));
}

TEST_CASE("Signals: remove_signal_handler returns true once, then false", "[os][signals]") {
    EventLoop loop;
    CHECK(!coring::remove_signal_handler(loop, SIGUSR1));
    coring::add_signal_handler(loop, SIGUSR1, [] {});
    CHECK(coring::remove_signal_handler(loop, SIGUSR1));
    CHECK(!coring::remove_signal_handler(loop, SIGUSR1));
    CHECK(!coring::remove_signal_handler(loop, SIGKILL)); // valid, never handled
}

TEST_CASE("Signals: invalid signals raise ValueError, uncatchable ones RuntimeError",
          "[os][signals]") {
    EventLoop loop;
    auto noop = [] {
    };
    CHECK_THROWS_MATCHES(coring::add_signal_handler(loop, 0, noop),
                         coring::ValueError,
                         Catch::Message("invalid signal number 0"));
    CHECK_THROWS_MATCHES(coring::add_signal_handler(loop, NSIG, noop),
                         coring::ValueError,
                         Catch::Message("invalid signal number " + std::to_string(NSIG)));
    CHECK_THROWS_MATCHES(coring::add_signal_handler(loop, -1, noop),
                         coring::ValueError,
                         Catch::Message("invalid signal number -1"));
    CHECK_THROWS_MATCHES(coring::add_signal_handler(loop, SIGKILL, noop),
                         coring::RuntimeError,
                         Catch::Message("sig 9 cannot be caught"));
    CHECK_THROWS_MATCHES(coring::add_signal_handler(loop, SIGSTOP, noop),
                         coring::RuntimeError,
                         Catch::Message("sig 19 cannot be caught"));
    CHECK_THROWS_MATCHES(coring::remove_signal_handler(loop, 4096),
                         coring::ValueError,
                         Catch::Message("invalid signal number 4096"));
    loop.close();
    CHECK_THROWS_MATCHES(coring::add_signal_handler(loop, SIGUSR1, noop),
                         coring::RuntimeError,
                         Catch::Message("Event loop is closed"));
    CHECK(disposition(SIGUSR1) == SIG_DFL);
}

CORING_TEST_CASE("Signals: an exception thrown by a handler goes to the exception handler",
                 "[os][signals]") {
    EventLoop& loop = coring::get_running_loop();
    Future<std::string> reported(loop);
    loop.set_exception_handler([&](EventLoop&, const coring::ExceptionContext& ctx) {
        reported.set_result(ctx.message + " / " + coring::describe_exception(ctx.exception));
    });
    coring::add_signal_handler(loop, SIGUSR1, [] { throw std::runtime_error("boom"); });
    ::raise(SIGUSR1);
    std::string text = co_await reported;
    CHECK_THAT(text, Catch::StartsWith("Exception in signal handler for SIGUSR1"));
    CHECK_THAT(text, Catch::EndsWith("std::runtime_error: boom"));
    CHECK(coring::remove_signal_handler(loop, SIGUSR1));
}

TEST_CASE("Signals: removing the last handler restores the previous disposition and mask",
          "[os][signals]") {
    struct sigaction ignore {};

    ignore.sa_handler = SIG_IGN;

    struct sigaction saved {};

    sigaction(SIGUSR1, &ignore, &saved);
    {
        EventLoop loop;
        coring::add_signal_handler(loop, SIGUSR1, [] {});
        CHECK(disposition(SIGUSR1) != SIG_IGN); // an ignored signal would never reach the fd
        CHECK(blocked_here(SIGUSR1));
        CHECK(coring::remove_signal_handler(loop, SIGUSR1));
        CHECK(disposition(SIGUSR1) == SIG_IGN);
        CHECK(!blocked_here(SIGUSR1));
    }
    sigaction(SIGUSR1, &saved, nullptr);

    // A signal blocked before stays blocked after.
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &only, nullptr);
    {
        EventLoop loop;
        coring::add_signal_handler(loop, SIGUSR2, [] {});
        CHECK(coring::remove_signal_handler(loop, SIGUSR2));
        CHECK(blocked_here(SIGUSR2));
    }
    pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
}

TEST_CASE("Signals: an instance not read before removal is discarded, not delivered",
          "[os][signals]") {
    // SIGUSR1's default action ends the process: if removal unblocked it while pending, this
    // test would die.
    EventLoop loop;
    coring::add_signal_handler(loop, SIGUSR1, [] { FAIL("the handler must not run"); });
    ::raise(SIGUSR1); // the loop never runs: it stays pending
    CHECK(pending(SIGUSR1));
    CHECK(coring::remove_signal_handler(loop, SIGUSR1));
    CHECK(!pending(SIGUSR1));
    CHECK(!blocked_here(SIGUSR1));
    loop.run_until_complete(coring::sleep(1ms)); // the cancelled read comes back harmlessly
}

CORING_TEST_CASE("Signals: a callback already scheduled still runs after removal",
                 "[os][signals]") {
    // asyncio schedules the handler's Handle when the signal is read; removing the handler
    // does not cancel it.
    EventLoop& loop = coring::get_running_loop();
    int ran = 0;
    coring::add_signal_handler(loop, SIGUSR1, [&] { ++ran; });
    ::raise(SIGUSR1);
    // Poll until the read completed and scheduled the callback, without running it: the
    // callback is queued behind this task's wake-up in the same iteration at the earliest.
    for (int i = 0; i < 1000 && ran == 0; ++i) {
        if (loop.ready_count() > 0) {
            break;
        }
        co_await coring::sleep(0s);
    }
    int ran_before_removal = ran;
    bool removed = coring::remove_signal_handler(loop, SIGUSR1);
    co_await coring::sleep(0s);
    co_await coring::sleep(0s);
    CHECK(ran_before_removal == 0);
    CHECK(removed);
    CHECK(ran == 1);
}

TEST_CASE("Signals: closing the loop removes its handlers", "[os][signals]") {
    {
        EventLoop loop;
        coring::add_signal_handler(loop, SIGUSR1, [] {});
        coring::add_signal_handler(loop, SIGUSR2, [] {});
        loop.run_until_complete(coring::sleep(1ms)); // the read is in the kernel now
        CHECK(blocked_here(SIGUSR2));
        loop.close();
        CHECK(!blocked_here(SIGUSR1));
        CHECK(!blocked_here(SIGUSR2));
        CHECK(disposition(SIGUSR1) == SIG_DFL);
        CHECK(!coring::detail::signal_has_handler(SIGUSR1));
    }
    // Another loop may take the signal now.
    EventLoop other;
    coring::add_signal_handler(other, SIGUSR1, [] {});
    CHECK(coring::remove_signal_handler(other, SIGUSR1));
}

TEST_CASE("Signals: a handler does not stop virtual time", "[os][signals]") {
    EventLoop loop;
    coring::testing::VirtualClock clock(loop);
    coring::add_signal_handler(loop, SIGUSR1, [] {});
    auto start = std::chrono::steady_clock::now();
    loop.run_until_complete(coring::sleep(1h));
    CHECK(std::chrono::steady_clock::now() - start < 10s);
    CHECK(coring::remove_signal_handler(loop, SIGUSR1));
}

namespace {

int fail_emfile(int, const sigset_t*, int) {
    errno = EMFILE;
    return -1;
}

int fail_einval(int, const struct sigaction*, struct sigaction*) {
    errno = EINVAL;
    return -1;
}

} // namespace

TEST_CASE("Signals: when signalfd fails nothing is changed", "[os][signals]") {
    using coring::detail::Sys;
    using SignalfdFn = int (*)(int, const sigset_t*, int);
    EventLoop loop;
    {
        coring::detail::SysOverride<SignalfdFn> guard(&Sys::signalfd, &fail_emfile);
        CHECK_THROWS_MATCHES(coring::add_signal_handler(loop, SIGUSR1, [] {}),
                             std::system_error,
                             Catch::Message("signalfd for SIGUSR1: Too many open files"));
    }
    CHECK(!blocked_here(SIGUSR1));
    CHECK(disposition(SIGUSR1) == SIG_DFL);
    CHECK(!coring::remove_signal_handler(loop, SIGUSR1));
    coring::add_signal_handler(loop, SIGUSR1, [] {}); // works once signalfd does
    CHECK(coring::remove_signal_handler(loop, SIGUSR1));
}

TEST_CASE("Signals: sigaction refusing the signal is RuntimeError 'cannot be caught'",
          "[os][signals]") {
    using coring::detail::Sys;
    using SigactionFn = int (*)(int, const struct sigaction*, struct sigaction*);
    EventLoop loop;
    coring::detail::SysOverride<SigactionFn> guard(&Sys::sigaction, &fail_einval);
    CHECK_THROWS_MATCHES(coring::add_signal_handler(loop, SIGUSR1, [] {}),
                         coring::RuntimeError,
                         Catch::Message("sig 10 cannot be caught"));
    CHECK(!blocked_here(SIGUSR1));
}

CORING_TEST_CASE("Signals: kill() from another thread reaches the handler",
                 "[os][signals][threads]") {
    EventLoop& loop = coring::get_running_loop();
    Future<> got(loop);
    coring::add_signal_handler(loop, SIGUSR1, [&] { got.set_result(); });
    std::thread sender([] { ::kill(::getpid(), SIGUSR1); }); // started after: blocks it too
    co_await got;
    sender.join();
    CHECK(coring::remove_signal_handler(loop, SIGUSR1));
}

TEST_CASE("Signals: an instance delivered to a thread that does not block it is redirected to "
          "the loop",
          "[os][signals][threads]") {
    Gate go;
    std::atomic<bool> was_blocked{true};
    // Started before the handler exists, so it does not block SIGUSR1.
    std::thread other([&] {
        go.wait();
        was_blocked = blocked_here(SIGUSR1);
        ::raise(SIGUSR1); // directed at this very thread
    });
    run_test([&]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        Future<> got(loop);
        coring::add_signal_handler(loop, SIGUSR1, [&] { got.set_result(); });
        go.open();
        co_await got;
        CHECK(coring::remove_signal_handler(loop, SIGUSR1));
    });
    other.join();
    CHECK(!was_blocked);
}

TEST_CASE("Signals: one loop per signal, loops on two threads handle different signals",
          "[os][signals][threads]") {
    EventLoop main_loop;
    coring::add_signal_handler(main_loop, SIGUSR1, [] {});
    std::string refused;
    bool got_usr2 = false;
    std::thread worker([&] {
        EventLoop loop;
        try {
            coring::add_signal_handler(loop, SIGUSR1, [] {});
        } catch (const coring::RuntimeError& e) {
            refused = e.what();
        }
        Future<> got(loop);
        coring::add_signal_handler(loop, SIGUSR2, [&] { got.set_result(); });
        // Process-directed: the kernel may pick the main thread (which does not block SIGUSR2);
        // coring's disposition sends it on to this loop's thread.
        ::kill(::getpid(), SIGUSR2);
        loop.run_until_complete(got);
        got_usr2 = true;
        coring::remove_signal_handler(loop, SIGUSR2);
    });
    worker.join();
    CHECK(refused == "SIGUSR1 already has a handler on another event loop (one loop per signal)");
    CHECK(got_usr2);
    CHECK(coring::remove_signal_handler(main_loop, SIGUSR1));
}

// ---- run() and Ctrl-C ----

namespace {

// Catch2 installs its own SIGINT handler around each test; a program's SIGINT starts out with
// the default disposition, which is what run() looks for.
class DefaultSigint {
public:
    DefaultSigint() {
        struct sigaction dfl {};

        dfl.sa_handler = SIG_DFL;
        sigaction(SIGINT, &dfl, &saved_);
    }

    DefaultSigint(const DefaultSigint&) = delete;
    DefaultSigint& operator=(const DefaultSigint&) = delete;

    ~DefaultSigint() { sigaction(SIGINT, &saved_, nullptr); }

private:
    struct sigaction saved_ {};
};

struct Shutdown {
    Gate sleeping; // the main task is about to wait
    std::atomic<int> cancelled{0};
};

Task<> worker(Shutdown& s) {
    try {
        co_await coring::sleep(60s);
    } catch (const coring::CancelledError&) {
        ++s.cancelled;
        throw;
    }
}

Task<int> long_main(Shutdown& s) {
    std::vector<coring::TaskHandle<>> workers;
    for (int i = 0; i < 3; ++i) {
        workers.push_back(coring::create_task(worker(s)));
    }
    co_await coring::sleep(0s); // the workers start
    s.sleeping.open();
    try {
        co_await coring::sleep(60s);
    } catch (const coring::CancelledError&) {
        ++s.cancelled;
        throw;
    }
    co_return 0;
}

} // namespace

TEST_CASE("run: SIGINT cancels the main task, every task is cancelled, run throws "
          "KeyboardInterrupt",
          "[os][signals][run][threads]") {
    DefaultSigint sigint_default;
    Shutdown s;
    std::thread sender([&] {
        s.sleeping.wait();
        ::kill(::getpid(), SIGINT);
    });
    auto start = std::chrono::steady_clock::now();
    bool interrupted = false;
    try {
        coring::run(long_main(s));
    } catch (const coring::KeyboardInterrupt&) {
        interrupted = true;
    }
    sender.join();
    CHECK(interrupted);
    CHECK(s.cancelled == 4); // main and its three workers
    CHECK(std::chrono::steady_clock::now() - start < 10s);
    CHECK(disposition(SIGINT) == SIG_DFL);
    CHECK(!blocked_here(SIGINT));
}

TEST_CASE("run: raise(SIGINT) in the loop thread is handled the same way", "[os][signals][run]") {
    DefaultSigint sigint_default;
    bool interrupted = false;
    try {
        coring::run([]() -> Task<> {
            ::raise(SIGINT);
            co_await coring::sleep(60s);
        }());
    } catch (const coring::KeyboardInterrupt& e) {
        interrupted = std::string(e.what()) == "KeyboardInterrupt";
    }
    CHECK(interrupted);
    CHECK(!std::is_base_of_v<std::exception, coring::KeyboardInterrupt>);
}

TEST_CASE("run: a main task that swallows the cancellation returns its value",
          "[os][signals][run]") {
    DefaultSigint sigint_default;
    int v = coring::run([]() -> Task<int> {
        ::raise(SIGINT);
        try {
            co_await coring::sleep(60s);
        } catch (const coring::CancelledError&) {
            co_return 7;
        }
        co_return 0;
    }());
    CHECK(v == 7);
}

TEST_CASE("run: a second SIGINT throws KeyboardInterrupt without waiting for the main task",
          "[os][signals][run]") {
    DefaultSigint sigint_default;
    bool cleanup_cancelled = false;
    auto start = std::chrono::steady_clock::now();
    bool interrupted = false;
    try {
        coring::run([](bool& cleanup) -> Task<> {
            ::raise(SIGINT);
            bool first_cancelled = false;
            try {
                co_await coring::sleep(60s);
            } catch (const coring::CancelledError&) {
                first_cancelled = true;
            }
            if (first_cancelled) {
                // A clean-up that hangs: the user presses Ctrl-C again.
                ::raise(SIGINT);
                try {
                    co_await coring::sleep(60s);
                } catch (const coring::CancelledError&) {
                    cleanup = true; // run()'s close cancels it
                    throw;
                }
            }
        }(cleanup_cancelled));
    } catch (const coring::KeyboardInterrupt&) {
        interrupted = true;
    }
    CHECK(interrupted);
    CHECK(cleanup_cancelled);
    CHECK(std::chrono::steady_clock::now() - start < 10s);
}

TEST_CASE("run: a main task cancelled by its own code raises CancelledError, not "
          "KeyboardInterrupt",
          "[os][signals][run]") {
    DefaultSigint sigint_default;
    bool cancelled = false;
    try {
        coring::run([]() -> Task<> {
            coring::current_task().cancel();
            co_await coring::sleep(60s);
        }());
    } catch (const coring::CancelledError&) {
        cancelled = true;
    }
    CHECK(cancelled);
}

TEST_CASE("run: SIGINT is left alone when the user installed a disposition or a handler",
          "[os][signals][run]") {
    DefaultSigint sigint_default;

    struct sigaction ignore {};

    ignore.sa_handler = SIG_IGN;

    struct sigaction saved {};

    sigaction(SIGINT, &ignore, &saved);
    coring::run([]() -> Task<> {
        CHECK(disposition(SIGINT) == SIG_IGN);
        CHECK(!blocked_here(SIGINT));
        co_return;
    }());
    sigaction(SIGINT, &saved, nullptr);

    // A handler the user adds during run() replaces run()'s and outlives it until close().
    coring::Runner runner;
    int got = runner.run([]() -> Task<int> {
        EventLoop& loop = coring::get_running_loop();
        Future<int> f(loop);
        coring::add_signal_handler(loop, SIGINT, [f] { f.set_result(SIGINT); });
        ::raise(SIGINT);
        co_return co_await f;
    }());
    CHECK(got == SIGINT);
    CHECK(coring::detail::signal_has_handler(SIGINT));
    runner.close();
    CHECK(!coring::detail::signal_has_handler(SIGINT));
    CHECK(disposition(SIGINT) == SIG_DFL);
}

TEST_CASE("run: no SIGINT handling off the main thread", "[os][signals][run][threads]") {
    DefaultSigint sigint_default;
    bool handled = true;
    std::thread t([&] {
        coring::run([](bool& h) -> Task<> {
            h = coring::detail::signal_has_handler(SIGINT) || blocked_here(SIGINT);
            co_return;
        }(handled));
    });
    t.join();
    CHECK(!handled);
}
