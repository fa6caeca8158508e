// SPDX-License-Identifier: MIT
// A loop's objects stay on their loop (asyncio: "... attached to a different loop"): awaiting a
// Future, a TaskHandle, an Event, a Lock, a Queue or a stream of loop 0 from a task of loop 1
// raises RuntimeError naming the object and both loops. Catch2 v2 assertions are not
// thread-safe: loop threads record, the test thread checks.
#include <coring/event.hpp>
#include <coring/future.hpp>
#include <coring/lock.hpp>
#include <coring/loop_group.hpp>
#include <coring/queue.hpp>
#include <coring/sleep.hpp>
#include <coring/streams.hpp>
#include <coring/task.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>

using namespace std::chrono_literals;
using coring::LoopGroup;
using coring::Task;

namespace {

// Loop 0 makes the objects (and waits on the primitives, binding them), loop 1 awaits each
// and records the error; then loop 0 releases its own waits.
struct Shared {
    std::optional<coring::Future<int>> future;
    std::optional<coring::TaskHandle<int>> task;
    coring::Event event;
    coring::Lock lock;
    coring::Queue<int> queue;
    std::optional<coring::StreamReader> reader;
    std::optional<coring::StreamWriter> writer;
    std::optional<coring::Server> server;
    std::atomic<int> stage{0};
    std::string future_error, task_error, event_error, lock_error, queue_error, stream_error;
};

Task<> noop_connection(coring::StreamReader, coring::StreamWriter w) {
    co_await coring::sleep(50ms);
    w.close();
}

Task<int> slow_value() {
    co_await coring::sleep(100ms);
    co_return 1;
}

template <class Aw>
Task<std::string> error_of(Aw&& aw) {
    std::string what = "no exception";
    try {
        co_await std::forward<Aw>(aw);
    } catch (const coring::RuntimeError& e) {
        what = e.what();
    }
    co_return what;
}

Task<> wait_for_stage(Shared& s, int n) {
    while (s.stage.load() < n) {
        co_await coring::sleep(1ms);
    }
}

Task<> loop0(Shared& s) {
    s.future.emplace();
    s.task.emplace(coring::create_task(slow_value(), "slow"));
    s.server.emplace(co_await coring::start_server(noop_connection, "127.0.0.1", 0));
    std::uint16_t port = s.server->sockets().front().getsockname().port();
    auto [r, w] = co_await coring::open_connection("127.0.0.1", port);
    s.reader.emplace(std::move(r));
    s.writer.emplace(std::move(w));
    // Bind the primitives to this loop: wait on each.
    auto event_wait = coring::create_task(s.event.wait());
    co_await s.lock.acquire();
    auto lock_wait = coring::create_task([](coring::Lock& l) -> Task<> {
        co_await l.acquire();
        l.release();
    }(s.lock));
    auto queue_wait = coring::create_task(s.queue.get());
    co_await coring::sleep(0ms);
    s.stage.store(1); // loop 1 awaits them now
    co_await wait_for_stage(s, 2);
    s.event.set();
    s.lock.release();
    s.queue.put_nowait(1);
    co_await event_wait;
    co_await lock_wait;
    co_await queue_wait;
    s.future->set_result(1);
    co_await *s.task;
    s.writer->close();
    s.server->close();
    // Everything of this loop is dropped here, on this loop.
    s.future.reset();
    s.task.reset();
    s.reader.reset();
    s.writer.reset();
    s.server.reset();
}

Task<> loop1(Shared& s) {
    coring::get_running_loop();
    co_await wait_for_stage(s, 1);
    s.future_error = co_await error_of(*s.future);
    s.task_error = co_await error_of(*s.task);
    s.event_error = co_await error_of(s.event.wait());
    s.lock_error = co_await error_of(s.lock.acquire());
    s.queue_error = co_await error_of(s.queue.get());
    s.stream_error = co_await error_of(s.reader->read(10));
    s.stage.store(2);
}

} // namespace

TEST_CASE("Wrong loop: awaiting loop 0's objects from loop 1 raises RuntimeError naming the "
          "object and both loops",
          "[group][threads]") {
    Shared s;
    LoopGroup group({.loops = 2});
    group.run([&](std::size_t i) { return i == 0 ? loop0(s) : loop1(s); });
    const std::string loops = "(it belongs to loop 'LoopGroup loop 0', awaited on loop "
                              "'LoopGroup loop 1')";
    CHECK(s.future_error == "Future is attached to a different loop " + loops);
    CHECK(s.task_error == "Task 'slow' is attached to a different loop " + loops);
    using Catch::Contains;
    using Catch::StartsWith;
    CHECK_THAT(s.event_error,
               StartsWith("<coring::Event> is bound to a different event loop (it belongs to "
                          "loop 0x") &&
                       Contains("awaited on loop 'LoopGroup loop 1'"));
    CHECK_THAT(s.lock_error, StartsWith("<coring::Lock> is bound to a different event loop"));
    CHECK_THAT(s.queue_error, StartsWith("<coring::Queue> is bound to a different event loop"));
    CHECK_THAT(s.stream_error,
               Contains("is attached to a different loop (it belongs to loop 'LoopGroup loop "
                        "0', called on loop 'LoopGroup loop 1')"));
}
