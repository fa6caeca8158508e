// SPDX-License-Identifier: MIT
// libFuzzer target: the input is a program of create_task / cancel / await / sleep / wait_for /
// gather / shield / TaskGroup steps, run on a fresh loop under a virtual clock. Invariants:
// every task ends exactly once (done callbacks), a task is cancelled exactly when a cancel()
// that returned true reached it, results and errors match what each task was told to do, the
// loop ends, and nothing leaks (ASan).
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/gather.hpp>
#include <coring/shield.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/task_group.hpp>
#include <coring/testing.hpp>
#include <coring/wait.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace {

using namespace std::chrono_literals;
using coring::Task;

[[noreturn]] void violated(const char* what) {
    std::fprintf(stderr, "fuzz_scheduler: invariant violated: %s\n", what);
    std::abort();
}

void require(bool ok, const char* what) {
    if (!ok) {
        violated(what);
    }
}

/// Reads the input a byte at a time; zeros once it is used up.
struct Input {
    const std::uint8_t* data;
    std::size_t size;

    bool empty() const noexcept { return size == 0; }

    std::uint8_t next() noexcept {
        if (size == 0) {
            return 0;
        }
        --size;
        return *data++;
    }
};

/// What a worker is told to do, and what happened to it.
struct Spec {
    int delay_ms = 0;   // sleeps this long (virtual time)
    bool fails = false; // then throws std::runtime_error instead of returning value
    int value = 0;
    int ended = 0;            // done callbacks run
    bool cancel_took = false; // some cancel() on it returned true
    // When its sleep began (loop time). Virtual time still moves with the real clock, so on a
    // busy machine a worker may start a few ms after its creator asked for it.
    coring::EventLoop::time_point started{};
};

Task<int> worker(Spec& s) {
    s.started = coring::get_running_loop().time();
    co_await coring::sleep(std::chrono::milliseconds(s.delay_ms));
    if (s.fails) {
        throw std::runtime_error("worker failed");
    }
    co_return s.value;
}

/// Checks how a worker ended against its Spec.
void check_outcome(const Spec& s, const coring::TaskHandle<int>& t) {
    require(t.done(), "a task is not done at the end");
    require(t.cancelled() == s.cancel_took, "cancelled() differs from the cancel() requests");
    if (t.cancelled()) {
        return;
    }
    if (s.fails) {
        require(t.exception() != nullptr, "a failing worker has no exception");
    } else {
        require(t.exception() == nullptr, "a worker that returns has an exception");
        require(t.result() == s.value, "a worker's result is wrong");
    }
}

struct Program {
    Input in;
    std::vector<Spec> specs; // reserved up front: tasks refer to their Spec
    std::vector<coring::TaskHandle<int>> tasks;
    std::vector<Spec*> task_spec; // task_spec[i] is what tasks[i] was told to do
    static constexpr std::size_t max_tasks = 64;

    Spec& new_spec() {
        Spec& s = specs.emplace_back();
        std::uint8_t b = in.next();
        s.delay_ms = b % 8;
        s.fails = (b & 0x80) != 0;
        s.value = in.next();
        return s;
    }

    coring::TaskHandle<int>* pick() {
        if (tasks.empty()) {
            return nullptr;
        }
        return &tasks[in.next() % tasks.size()];
    }

    Task<> run() {
        int steps = 0;
        while (!in.empty() && steps++ < 256) {
            std::uint8_t op = in.next() % 9;
            switch (op) {
            case 0: { // create_task
                if (specs.size() == max_tasks) {
                    break;
                }
                Spec& s = new_spec();
                tasks.push_back(coring::create_task(worker(s)));
                task_spec.push_back(&s);
                tasks.back().add_done_callback([&s](const auto&) { ++s.ended; });
                break;
            }
            case 1: { // cancel
                if (auto* t = pick()) {
                    Spec& s = *task_spec[static_cast<std::size_t>(t - tasks.data())];
                    bool was_done = t->done();
                    bool took = t->cancel();
                    require(!(was_done && took), "cancel() of a done task returned true");
                    s.cancel_took = s.cancel_took || took;
                }
                break;
            }
            case 2: { // await
                if (auto* t = pick()) {
                    Spec& s = *task_spec[static_cast<std::size_t>(t - tasks.data())];
                    try {
                        int v = co_await *t;
                        require(!s.fails && v == s.value, "await gave a wrong result");
                    } catch (const coring::CancelledError&) {
                        require(s.cancel_took, "await raised CancelledError without a cancel");
                    } catch (const std::runtime_error&) {
                        require(s.fails, "await raised for a worker that returns");
                    }
                }
                break;
            }
            case 3: // sleep
                co_await coring::sleep(std::chrono::milliseconds(in.next() % 8));
                break;
            case 4: { // wait_for on a fresh worker
                if (specs.size() == max_tasks) {
                    break;
                }
                Spec& s = new_spec();
                auto timeout = std::chrono::milliseconds(in.next() % 8);
                auto deadline = coring::get_running_loop().time() + timeout;
                // The worker's timer is due at started + delay; timers fire in deadline order.
                auto due = [&] {
                    return s.started + std::chrono::milliseconds(s.delay_ms);
                };
                try {
                    int v = co_await coring::wait_for(worker(s), timeout);
                    require(!s.fails && v == s.value, "wait_for gave a wrong result");
                    require(due() <= deadline, "wait_for returned after its timeout");
                } catch (const coring::TimeoutError&) {
                    // A worker due before the deadline may still lose when the loop was late
                    // and both timers came due in one iteration: the timeout cancels at once,
                    // the worker needs more passes to finish (asyncio behaves the same). So
                    // only a timeout that came while the worker was not due yet is early.
                    const auto now = coring::get_running_loop().time();
                    require(s.started == coring::EventLoop::time_point{} || due() >= deadline ||
                                    now >= due(),
                            "wait_for timed out before its timeout");
                } catch (const std::runtime_error&) {
                    require(s.fails && due() <= deadline, "wait_for raised wrongly");
                }
                break;
            }
            case 5: { // gather two fresh workers
                if (specs.size() + 2 > max_tasks) {
                    break;
                }
                Spec& a = new_spec();
                Spec& b = new_spec();
                try {
                    auto [x, y] = co_await coring::gather(worker(a), worker(b));
                    require(!a.fails && !b.fails, "gather succeeded though a worker failed");
                    require(x == a.value && y == b.value, "gather gave wrong results");
                } catch (const std::runtime_error&) {
                    require(a.fails || b.fails, "gather raised though no worker failed");
                }
                break;
            }
            case 6: { // shield an existing task from a wait_for timeout
                if (auto* t = pick()) {
                    Spec& s = *task_spec[static_cast<std::size_t>(t - tasks.data())];
                    bool was_cancelled = t->cancelled();
                    try {
                        int v = co_await coring::wait_for(coring::shield(*t), 1ms);
                        require(!s.fails && v == s.value, "shield gave a wrong result");
                    } catch (const coring::TimeoutError&) {
                        // The shielded task goes on: a timeout must not cancel it.
                        require(t->cancelled() == was_cancelled, "shield let a cancel through");
                    } catch (const coring::CancelledError&) {
                        require(s.cancel_took, "shield raised CancelledError without a cancel");
                    } catch (const std::runtime_error&) {
                        require(s.fails, "shield raised for a worker that returns");
                    }
                }
                break;
            }
            case 7: { // TaskGroup of up to three fresh workers
                int n = in.next() % 4;
                if (specs.size() + static_cast<std::size_t>(n) > max_tasks) {
                    break;
                }
                std::vector<Spec*> group;
                bool any_fails = false;
                for (int i = 0; i < n; ++i) {
                    group.push_back(&new_spec());
                    any_fails = any_fails || group.back()->fails;
                }
                try {
                    co_await coring::task_group([&](coring::TaskGroup& tg) -> Task<> {
                        for (Spec* s : group) {
                            tg.create_task(worker(*s));
                        }
                        co_return;
                    });
                    require(!any_fails, "a TaskGroup with a failing child succeeded");
                } catch (const coring::ExceptionGroup&) {
                    require(any_fails, "a TaskGroup without failing children raised");
                }
                break;
            }
            default: // yield
                co_await coring::sleep(0s);
                break;
            }
        }
        // The end of the program: cancel what the input says, await everything.
        for (std::size_t i = 0; i < tasks.size(); ++i) {
            if (in.next() & 1) {
                bool took = tasks[i].cancel();
                task_spec[i]->cancel_took = task_spec[i]->cancel_took || took;
            }
        }
        for (auto& t : tasks) {
            try {
                co_await t;
            } catch (...) {
                // checked below, from the handle
            }
        }
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Program p{Input{data, size}, {}, {}, {}};
    p.specs.reserve(Program::max_tasks);
    {
        coring::EventLoop loop;
        coring::testing::VirtualClock clock(loop);
        loop.run_until_complete(p.run());
        // gather leaves the other children running when one fails (as asyncio's does): let
        // them end. Every worker sleeps less than 8 ms of virtual time.
        loop.run_until_complete(coring::sleep(100ms));
        require(coring::all_tasks(loop).empty(), "a task is pending after the program");
    }
    for (std::size_t i = 0; i < p.tasks.size(); ++i) {
        check_outcome(*p.task_spec[i], p.tasks[i]);
    }
    for (const Spec& s : p.specs) {
        require(s.ended <= 1, "a task ended more than once");
    }
    // Only the workers created with create_task have done callbacks.
    for (const Spec* s : p.task_spec) {
        require(s->ended == 1, "a task's done callback did not run exactly once");
    }
    return 0;
}
