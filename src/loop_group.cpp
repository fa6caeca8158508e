// SPDX-License-Identifier: MIT
// LoopGroup (loop_group.hpp): the threads of per-core loops, their shutdown on SIGINT/SIGTERM,
// and the accept-and-hand-over server layout. No asyncio equivalent.
#include <coring/log.hpp>
#include <coring/loop_group.hpp>
#include <coring/net/address.hpp>
#include <coring/net/socket.hpp>

#include <fmt/format.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <latch>
#include <mutex>
#include <system_error>
#include <thread>

namespace coring {

namespace {

thread_local const LoopGroup* tl_group = nullptr;
thread_local std::size_t tl_index = 0;

unsigned default_loop_count() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) {
            return static_cast<unsigned>(n);
        }
    }
    unsigned hc = std::thread::hardware_concurrency();
    return hc == 0 ? 1 : hc;
}

// Pins the calling thread to the (i mod count)-th CPU of the process's affinity mask.
void pin_to_cpu(std::size_t i) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (::sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
        return;
    }
    int count = CPU_COUNT(&allowed);
    if (count <= 0) {
        return;
    }
    auto want = static_cast<int>(i % static_cast<std::size_t>(count));
    for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &allowed)) {
            if (seen == want) {
                cpu_set_t one;
                CPU_ZERO(&one);
                CPU_SET(cpu, &one);
                if (::sched_setaffinity(0, sizeof(one), &one) != 0) {
                    log(LogLevel::warning,
                        fmt::format("coring::LoopGroup: cannot pin loop {} to CPU {}: {}",
                                    i,
                                    cpu,
                                    std::system_category().message(errno)));
                }
                return;
            }
            ++seen;
        }
    }
}

} // namespace

struct LoopGroup::Lock {
    std::mutex mutex;
};

LoopGroup::LoopGroup(LoopGroupOptions options)
    : options_(options), lock_(std::make_unique<Lock>()) {
    unsigned n = options_.loops == 0 ? default_loop_count() : options_.loops;
    slots_.reserve(n);
    for (unsigned i = 0; i < n; ++i) {
        slots_.push_back(std::make_unique<Slot>());
    }
}

LoopGroup::~LoopGroup() = default;

std::size_t LoopGroup::index() const {
    if (tl_group != this) {
        throw RuntimeError("LoopGroup::index(): this thread runs no loop of the group");
    }
    return tl_index;
}

std::shared_ptr<detail::ThreadsafeQueue> LoopGroup::queue(std::size_t i) const {
    if (i >= slots_.size()) {
        throw RuntimeError(fmt::format(
                "LoopGroup: loop {} does not exist (the group has {})", i, slots_.size()));
    }
    std::lock_guard lock(lock_->mutex);
    if (!slots_[i]->queue) {
        throw RuntimeError(fmt::format("LoopGroup: loop {} is not running", i));
    }
    return slots_[i]->queue;
}

void LoopGroup::cancel_main(Slot& slot) noexcept {
    // Once per run: a main that is cleaning up after the first cancellation (awaiting in its
    // handler) is not interrupted by the failures and signals that follow.
    if (slot.cancel_requested) {
        return;
    }
    slot.cancel_requested = true;
    if (slot.main && !slot.main.done()) {
        slot.main.cancel();
    }
}

void LoopGroup::cancel() noexcept {
    std::lock_guard lock(lock_->mutex);
    for (auto& slot : slots_) {
        if (!slot->queue) {
            continue;
        }
        try {
            Slot* s = slot.get();
            slot->queue->call_soon([s] { cancel_main(*s); });
        } catch (...) {
            // that loop is closing: its main is finished
        }
    }
}

void LoopGroup::run_threads(const std::function<void(std::size_t)>& body) {
    if (EventLoop::running() != nullptr) {
        throw RuntimeError("LoopGroup::run() cannot be called from a running event loop");
    }
    {
        std::lock_guard lock(lock_->mutex);
        if (running_) {
            throw RuntimeError("LoopGroup::run(): the group is running already");
        }
        running_ = true;
    }
    signal_.store(0, std::memory_order_relaxed);
    const std::size_t n = slots_.size();
    for (auto& slot : slots_) {
        slot->loop = nullptr;
        slot->main = {};
        slot->cancel_requested = false;
    }

    // Signals: blocked here before the threads start, so that every loop thread inherits the
    // mask and the signalfd below is the only reader.
    sigset_t handled;
    sigset_t old_mask;
    sigemptyset(&handled);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGTERM);
    int sig_fd = -1;
    if (options_.handle_signals) {
        ::pthread_sigmask(SIG_BLOCK, &handled, &old_mask);
        sig_fd = ::signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
    }
    int done_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (done_fd < 0) {
        int err = errno;
        if (sig_fd >= 0) {
            ::close(sig_fd);
            ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
        }
        std::lock_guard lock(lock_->mutex);
        running_ = false;
        throw std::system_error(err, std::system_category(), "eventfd");
    }

    std::latch created(static_cast<std::ptrdiff_t>(n));
    std::latch first_created(1); // loop 0 exists (or failed): the others may attach to it
    std::atomic<int> first_ring_fd{-1};
    std::atomic<bool> creation_failed{false};
    std::atomic<std::size_t> finished{0};
    std::mutex failure_mutex;
    std::exception_ptr failure;
    auto fail = [&](std::exception_ptr e) {
        {
            std::lock_guard lock(failure_mutex);
            if (!failure) {
                failure = e;
            }
        }
        cancel();
    };

    std::vector<std::thread> threads;
    threads.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
            tl_group = this;
            tl_index = i;
            if (options_.pin) {
                pin_to_cpu(i);
            }
            Slot& slot = *slots_[i];
            std::optional<Runner> runner;
            if (i != 0) {
                first_created.wait();
            }
            try {
                int attach = i != 0 && options_.share_kernel_workers ? first_ring_fd.load() : -1;
                runner.emplace(RunOptions{options_.debug, options_.ring_entries, attach});
                EventLoop& loop = runner->get_loop();
                loop.set_msg_ring(options_.msg_ring);
                loop.set_name(fmt::format("LoopGroup loop {}", i));
                slot.loop = &loop;
                if (i == 0) {
                    first_ring_fd.store(detail::LoopAccess::ring(loop).fd());
                }
                std::lock_guard lock(lock_->mutex);
                slot.queue = detail::LoopAccess::threadsafe_queue(loop);
            } catch (...) {
                creation_failed.store(true);
                fail(std::current_exception());
            }
            if (i == 0) {
                first_created.count_down();
            }
            created.arrive_and_wait();
            if (runner && !creation_failed.load()) {
                try {
                    body(i);
                } catch (...) {
                    fail(std::current_exception());
                }
            }
            slot.main = {};
            if (runner) {
                try {
                    runner->close();
                } catch (...) {
                    fail(std::current_exception());
                }
            }
            {
                std::lock_guard lock(lock_->mutex);
                slot.queue.reset();
            }
            slot.loop = nullptr;
            runner.reset();
            tl_group = nullptr;
            if (finished.fetch_add(1) + 1 == n) {
                std::uint64_t one = 1;
                [[maybe_unused]] auto w = ::write(done_fd, &one, sizeof(one));
            }
        });
    }

    int received = 0;
    while (finished.load() < n) {
        pollfd fds[2] = {{done_fd, POLLIN, 0}, {sig_fd, POLLIN, 0}};
        int r = ::poll(fds, sig_fd >= 0 ? 2 : 1, -1);
        if (r < 0) {
            continue; // EINTR
        }
        if (sig_fd >= 0 && (fds[1].revents & POLLIN) != 0) {
            signalfd_siginfo info{};
            while (::read(sig_fd, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
                ++received;
                if (received == 1) {
                    signal_.store(static_cast<int>(info.ssi_signo), std::memory_order_relaxed);
                    cancel();
                } else {
                    // A second signal: stop every loop at once, as a second Ctrl-C does.
                    std::lock_guard lock(lock_->mutex);
                    for (auto& slot : slots_) {
                        if (slot->queue) {
                            try {
                                slot->queue->call_soon([] { EventLoop::running()->stop(); });
                            } catch (...) {
                                // closing already
                            }
                        }
                    }
                }
            }
        }
    }
    for (auto& t : threads) {
        t.join();
    }
    ::close(done_fd);
    if (sig_fd >= 0) {
        // A signal that came after the last loop finished counts as received; reading it here
        // keeps it from killing the process when the mask is restored.
        signalfd_siginfo info{};
        while (::read(sig_fd, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
            if (signal_.load(std::memory_order_relaxed) == 0) {
                signal_.store(static_cast<int>(info.ssi_signo), std::memory_order_relaxed);
            }
        }
        ::close(sig_fd);
        ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    }
    {
        std::lock_guard lock(lock_->mutex);
        running_ = false;
    }

    int signo = signal_.load(std::memory_order_relaxed);
    if (signo != 0) {
        bool signal_failure = !failure;
        if (failure) {
            try {
                std::rethrow_exception(failure);
            } catch (const CancelledError&) {
                signal_failure = true;
            } catch (const RuntimeError&) {
                signal_failure = received > 1; // run_until_complete stopped by the 2nd signal
            } catch (...) {
            }
        }
        if (signal_failure && (failure || received > 0)) {
            if (signo == SIGINT) {
                throw KeyboardInterrupt();
            }
            throw SignalShutdown(signo);
        }
    }
    if (failure) {
        std::rethrow_exception(failure);
    }
}

// ---- serve_round_robin ----

namespace {

// Owns an accepted fd until a loop adopts it; closes it if the hand-over never runs.
struct HandedFd {
    int fd = -1;

    explicit HandedFd(int f) noexcept : fd(f) {}

    HandedFd(HandedFd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}

    HandedFd(const HandedFd&) = delete;
    HandedFd& operator=(const HandedFd&) = delete;
    HandedFd& operator=(HandedFd&&) = delete;

    ~HandedFd() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

Task<> adopt_connection(int fd, std::shared_ptr<ClientConnectedCallback> cb) {
    Socket sock = Socket::from_fd(fd);
    try {
        auto streams = co_await open_connection(std::move(sock));
        auto work = (*cb)(std::move(streams.first), std::move(streams.second));
        co_await std::move(work);
    } catch (const CancelledError&) {
        throw;
    } catch (...) {
        get_running_loop().call_exception_handler(
                {"serve_round_robin: unhandled exception in a connection's callback",
                 std::current_exception(),
                 {},
                 {}});
    }
}

} // namespace

Task<> serve_round_robin(LoopGroup& group,
                         ClientConnectedCallback client_connected_cb,
                         std::string host,
                         std::uint16_t port,
                         std::function<void(std::uint16_t)> on_listening) {
    auto cb = std::make_shared<ClientConnectedCallback>(std::move(client_connected_cb));
    SocketAddress address = SocketAddress::ip(host, port);
    Socket listener(address.family(), SOCK_STREAM);
    listener.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
    // Accepted sockets inherit TCP_NODELAY from the listener (start_server sets it too).
    listener.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
    listener.bind(address);
    listener.listen(1024);
    if (on_listening) {
        on_listening(listener.getsockname().port());
    }
    std::size_t next = 0;
    for (;;) {
        auto accepted = co_await sock_accept(listener);
        HandedFd handed(accepted.first.release());
        std::size_t target = next++ % group.size();
        try {
            group.post(target, [h = std::move(handed), cb]() mutable {
                create_task(adopt_connection(std::exchange(h.fd, -1), cb));
            });
        } catch (const RuntimeError&) {
            // that loop has finished: the connection is closed with the lambda
        }
    }
}

} // namespace coring
