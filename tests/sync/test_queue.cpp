// SPDX-License-Identifier: MIT
// Tests of Queue, LifoQueue and PriorityQueue (asyncio test_queues, with Python 3.13's shutdown
// tests), plus move-only items, FIFO among blocked tasks and a randomized stress test.
// clang-format off
#include <coring/queue.hpp> // first: it must compile on its own
// clang-format on

#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::CancelledError;
using coring::LifoQueue;
using coring::PriorityQueue;
using coring::Queue;
using coring::QueueEmpty;
using coring::QueueFull;
using coring::QueueShutDown;
using coring::Task;
using coring::TaskHandle;
using coring::test::run_test;

namespace {

template <class Q>
Task<typename Q::value_type> get_one(Q& q) {
    co_return co_await q.get();
}

template <class Q>
Task<> put_one(Q& q, typename Q::value_type item) {
    co_await q.put(std::move(item));
}

template <class Q>
Task<> get_and_record(Q& q, std::vector<typename Q::value_type>& out) {
    out.push_back(co_await q.get());
}

} // namespace

CORING_TEST_CASE("Queue: empty, full, qsize and maxsize", "[sync][queue]") {
    // asyncio test_empty, test_full
    Queue<int> q;
    CHECK(q.empty());
    CHECK_FALSE(q.full());
    CHECK(q.maxsize() == 0);
    co_await q.put(1);
    CHECK_FALSE(q.empty());
    CHECK(q.qsize() == 1);
    int v = co_await q.get();
    CHECK(v == 1);
    CHECK(q.empty());

    Queue<int> bounded(1);
    CHECK(bounded.maxsize() == 1);
    co_await bounded.put(1);
    CHECK(bounded.full());
    Queue<int> negative(-1); // asyncio: maxsize <= 0 is unbounded
    for (int i = 0; i < 100; ++i) {
        negative.put_nowait(i);
    }
    CHECK_FALSE(negative.full());
}

CORING_TEST_CASE("Queue: items come out first in, first out", "[sync][queue]") {
    // asyncio test_order
    Queue<int> q;
    for (int i : {1, 3, 2}) {
        co_await q.put(i);
    }
    std::vector<int> items;
    for (int i = 0; i < 3; ++i) {
        items.push_back(co_await q.get());
    }
    CHECK(items == std::vector<int>{1, 3, 2});
}

CORING_TEST_CASE("LifoQueue: items come out last in, first out", "[sync][queue]") {
    // asyncio LifoQueueTests.test_order
    LifoQueue<int> q;
    for (int i : {1, 3, 2}) {
        co_await q.put(i);
    }
    std::vector<int> items;
    for (int i = 0; i < 3; ++i) {
        items.push_back(co_await q.get());
    }
    CHECK(items == std::vector<int>{2, 3, 1});
}

CORING_TEST_CASE("PriorityQueue: the smallest item comes out first", "[sync][queue]") {
    // asyncio PriorityQueueTests.test_order
    PriorityQueue<int> q;
    for (int i : {1, 3, 2, 7, 0, 5}) {
        co_await q.put(i);
    }
    std::vector<int> items;
    while (!q.empty()) {
        items.push_back(co_await q.get());
    }
    CHECK(items == std::vector<int>{0, 1, 2, 3, 5, 7});

    PriorityQueue<int, std::greater<int>> largest_first;
    for (int i : {1, 3, 2}) {
        largest_first.put_nowait(i);
    }
    CHECK(largest_first.get_nowait() == 3);
    CHECK(largest_first.get_nowait() == 2);
    CHECK(largest_first.get_nowait() == 1);
}

TEST_CASE("PriorityQueue: (priority, data) pairs and a custom comparator", "[sync][queue]") {
    PriorityQueue<std::pair<int, std::string>> jobs;
    jobs.put_nowait({2, "write"});
    jobs.put_nowait({1, "read"});
    jobs.put_nowait({3, "close"});
    CHECK(jobs.get_nowait().second == "read");
    CHECK(jobs.get_nowait().second == "write");
    CHECK(jobs.get_nowait().second == "close");

    auto by_length = [](const std::string& a, const std::string& b) {
        return a.size() < b.size();
    };
    PriorityQueue<std::string, decltype(by_length)> words(0, by_length);
    for (const char* w : {"ccc", "a", "bb"}) {
        words.put_nowait(w);
    }
    CHECK(words.get_nowait() == "a");
    CHECK(words.get_nowait() == "bb");
    CHECK(words.get_nowait() == "ccc");
}

CORING_TEST_CASE("Queue: a full queue blocks the putter until a get", "[sync][queue]") {
    // asyncio test_maxsize
    Queue<int> q(2);
    std::vector<int> have_been_put;
    auto putter = [&]() -> Task<bool> {
        for (int i = 0; i < 3; ++i) {
            co_await q.put(i);
            have_been_put.push_back(i);
        }
        co_return true;
    };
    auto t = coring::create_task(putter());
    for (int i = 0; i < 2; ++i) {
        co_await coring::sleep(0s);
    }
    CHECK(have_been_put == std::vector<int>{0, 1});
    int first = co_await q.get();
    CHECK(first == 0);
    co_await coring::sleep(0s);
    CHECK(have_been_put == std::vector<int>{0, 1, 2});
    int second = co_await q.get();
    int third = co_await q.get();
    CHECK(second == 1);
    CHECK(third == 2);
    REQUIRE(t.done());
    CHECK(t.result());
}

TEST_CASE("Queue: get_nowait() and put_nowait() throw instead of waiting", "[sync][queue]") {
    // asyncio test_nonblocking_get, test_nonblocking_get_exception, test_nonblocking_put*
    Queue<int> q(1);
    CHECK_THROWS_AS(q.get_nowait(), QueueEmpty);
    q.put_nowait(1);
    CHECK_THROWS_AS(q.put_nowait(2), QueueFull);
    CHECK(q.get_nowait() == 1);
    CHECK_THROWS_AS(q.get_nowait(), QueueEmpty);
}

TEST_CASE("Queue: a blocked getter gets an item put later", "[sync][queue]") {
    // asyncio test_blocking_get_wait, on a virtual clock
    run_test(
            []() -> Task<> {
                Queue<int> q;
                bool finished = false;
                auto queue_get = [&]() -> Task<int> {
                    int r = co_await q.get();
                    finished = true;
                    co_return r;
                };
                auto t = coring::create_task(queue_get());
                co_await coring::sleep(0s);
                CHECK_FALSE(finished);
                coring::get_running_loop().call_later(10ms, [&] { q.put_nowait(1); });
                int res = co_await t;
                CHECK(finished);
                CHECK(res == 1);
            },
            [](coring::EventLoop& loop) { loop.set_virtual_time(true); });
}

TEST_CASE("Queue: a blocked putter finishes once there is room", "[sync][queue]") {
    // asyncio test_blocking_put_wait
    run_test(
            []() -> Task<> {
                Queue<int> q(1);
                bool finished = false;
                auto queue_put = [&]() -> Task<> {
                    co_await q.put(1);
                    co_await q.put(2);
                    finished = true;
                };
                coring::get_running_loop().call_later(10ms, [&] { q.get_nowait(); });
                auto t = coring::create_task(queue_put());
                co_await coring::sleep(0s);
                CHECK_FALSE(finished);
                co_await t;
                CHECK(finished);
                CHECK(q.get_nowait() == 2);
            },
            [](coring::EventLoop& loop) { loop.set_virtual_time(true); });
}

CORING_TEST_CASE("Queue: a cancelled getter does not take the item meant for the next",
                 "[sync][queue]") {
    // asyncio test_get_cancelled_race
    Queue<std::string> q;
    auto t1 = coring::create_task(get_one(q));
    auto t2 = coring::create_task(get_one(q));
    co_await coring::sleep(0s);
    t1.cancel();
    co_await coring::sleep(0s);
    CHECK(t1.done());
    co_await q.put("a");
    co_await coring::sleep(0s);
    std::string got = co_await t2;
    CHECK(got == "a");
}

CORING_TEST_CASE("Queue: get() takes items from blocked putters in order", "[sync][queue]") {
    // asyncio test_get_with_waiting_putters
    Queue<std::string> q(1);
    auto a = coring::create_task(put_one(q, std::string("a")));
    auto b = coring::create_task(put_one(q, std::string("b")));
    std::string first = co_await q.get();
    std::string second = co_await q.get();
    CHECK(first == "a");
    CHECK(second == "b");
    co_await a;
    co_await b;
}

CORING_TEST_CASE("Queue: a producer and a consumer through a queue of one", "[sync][queue]") {
    // asyncio test_why_are_getters_waiting
    Queue<int> q(1);
    std::vector<int> got;
    auto producer = [&]() -> Task<> {
        for (int i = 0; i < 5; ++i) {
            co_await q.put(i);
        }
    };
    auto consumer = [&]() -> Task<> {
        for (int i = 0; i < 5; ++i) {
            got.push_back(co_await q.get());
        }
    };
    auto p = coring::create_task(producer());
    auto c = coring::create_task(consumer());
    co_await p;
    co_await c;
    CHECK(got == std::vector<int>{0, 1, 2, 3, 4});
}

CORING_TEST_CASE("Queue: a getter cancelled after it was woken leaves the item in the queue",
                 "[sync][queue]") {
    // asyncio test_get_cancel_drop_one_pending_reader: if we get 2, item 1 was dropped.
    Queue<int> q;
    auto reader = coring::create_task(get_one(q));
    co_await coring::sleep(0s);
    q.put_nowait(1);
    q.put_nowait(2);
    CHECK(reader.cancel());
    int result = 0;
    try {
        result = co_await reader;
    } catch (const CancelledError&) {
        result = -1;
    }
    if (result == -1) {
        auto again = coring::create_task(get_one(q));
        result = co_await again;
    }
    CHECK(result == 1);
    CHECK(q.qsize() == 1);
}

CORING_TEST_CASE("Queue: cancelling one of several woken getters drops no item", "[sync][queue]") {
    // asyncio test_get_cancel_drop_many_pending_readers
    Queue<int> q;
    auto r1 = coring::create_task(get_one(q));
    auto r2 = coring::create_task(get_one(q));
    auto r3 = coring::create_task(get_one(q));
    co_await coring::sleep(0s);
    q.put_nowait(1);
    q.put_nowait(2);
    r1.cancel();
    CO_CHECK_THROWS_AS(r1, CancelledError);
    int v3 = co_await r3; // r1 passed its wake-up on to r3
    int v2 = co_await r2;
    std::vector<int> got{v2, v3};
    std::sort(got.begin(), got.end());
    CHECK(got == std::vector<int>{1, 2});
}

CORING_TEST_CASE("Queue: a putter cancelled after a slot freed up adds nothing", "[sync][queue]") {
    // asyncio test_put_cancel_drop
    Queue<int> q(1);
    q.put_nowait(1);
    auto writer = coring::create_task(put_one(q, 2));
    co_await coring::sleep(0s);
    CHECK(q.get_nowait() == 1);
    writer.cancel();
    bool cancelled = false;
    try {
        co_await writer;
    } catch (const CancelledError&) {
        cancelled = true;
    }
    CHECK(cancelled);
    CHECK(q.empty()); // the cancelled put added nothing
    auto again = coring::create_task(put_one(q, 2));
    co_await again;
    CHECK(q.get_nowait() == 2);
    CHECK(q.qsize() == 0);
}

CORING_TEST_CASE("Queue: a cancelled putter is skipped by the next get", "[sync][queue]") {
    // asyncio test_put_cancelled_race
    Queue<std::string> q(1);
    auto put_a = coring::create_task(put_one(q, std::string("a")));
    auto put_b = coring::create_task(put_one(q, std::string("b")));
    auto put_c = coring::create_task(put_one(q, std::string("X")));
    co_await coring::sleep(0s);
    CHECK(put_a.done());
    CHECK_FALSE(put_b.done());
    put_c.cancel();
    co_await coring::sleep(0s);
    CHECK(put_c.done());
    CHECK(q.get_nowait() == "a");
    co_await coring::sleep(0s);
    CHECK(q.get_nowait() == "b");
    co_await put_b;
    CHECK(q.empty());
}

CORING_TEST_CASE("Queue: put() hands an item to a blocked getter", "[sync][queue]") {
    // asyncio test_put_with_waiting_getters, test_put_cancelled
    Queue<std::string> q;
    auto t = coring::create_task(get_one(q));
    co_await coring::sleep(0s);
    co_await q.put("a");
    std::string got = co_await t;
    CHECK(got == "a");
}

CORING_TEST_CASE("Queue: a getter emptying the queue releases every blocked putter",
                 "[sync][queue]") {
    // asyncio test_why_are_putters_waiting
    Queue<int> q(2);
    auto getter = [&]() -> Task<> {
        co_await coring::sleep(0s);
        std::size_t n = q.qsize();
        for (std::size_t i = 0; i < n; ++i) {
            q.get_nowait();
        }
    };
    auto g = coring::create_task(getter());
    std::vector<TaskHandle<>> putters;
    for (int i = 0; i < 4; ++i) {
        putters.push_back(coring::create_task(put_one(q, i)));
    }
    co_await g;
    for (auto& p : putters) {
        co_await p;
    }
    CHECK(q.qsize() == 2);
    CHECK(q.get_nowait() == 2);
    CHECK(q.get_nowait() == 3);
}

CORING_TEST_CASE("Queue: a putter cancelled after get_nowait() woke it throws CancelledError",
                 "[sync][queue]") {
    // asyncio test_cancelled_puts_not_being_held_in_self_putters,
    // test_cancelled_put_silence_value_error_exception
    Queue<int> q(1);
    q.put_nowait(1);
    auto put_task = coring::create_task(put_one(q, 2));
    co_await coring::sleep(0s);
    put_task.cancel();
    CO_CHECK_THROWS_AS(put_task, CancelledError);
    q.get_nowait(); // the cancelled putter is gone: this wakes nobody
    CHECK(q.empty());

    q.put_nowait(1);
    auto second = coring::create_task(put_one(q, 2));
    co_await coring::sleep(0s);
    q.get_nowait();  // wakes the putter...
    second.cancel(); // ...which is cancelled before it runs
    CO_CHECK_THROWS_AS(second, CancelledError);
    CHECK(q.empty());
}

CORING_TEST_CASE("Queue: blocked getters and putters are served in FIFO order", "[sync][queue]") {
    Queue<int> q(1);
    std::vector<int> got;
    std::vector<TaskHandle<>> getters;
    for (int i = 0; i < 20; ++i) {
        getters.push_back(coring::create_task(get_and_record(q, got)));
    }
    co_await coring::sleep(0s);
    std::vector<TaskHandle<>> putters;
    for (int i = 0; i < 40; ++i) {
        putters.push_back(coring::create_task(put_one(q, i)));
    }
    for (auto& g : getters) {
        co_await g;
    }
    std::vector<int> expected;
    for (int i = 0; i < 20; ++i) {
        expected.push_back(i);
    }
    CHECK(got == expected); // getter k got item k: both sides kept their order
    std::vector<int> rest;
    for (int i = 0; i < 20; ++i) {
        rest.push_back(co_await q.get());
    }
    for (auto& p : putters) {
        co_await p;
    }
    for (int i = 0; i < 20; ++i) {
        CHECK(rest[static_cast<std::size_t>(i)] == 20 + i);
    }
}

CORING_TEST_CASE("Queue: a woken getter whose item was taken keeps its turn", "[sync][queue]") {
    // asyncio re-queues such a getter at the back; coring keeps it in front of later getters.
    Queue<std::string> q;
    std::vector<std::string> first;
    std::vector<std::string> second;
    auto g1 = coring::create_task(get_and_record(q, first));
    co_await coring::sleep(0s);
    auto g2 = coring::create_task(get_and_record(q, second));
    co_await coring::sleep(0s);
    q.put_nowait("a");            // wakes g1
    CHECK(q.get_nowait() == "a"); // but someone else takes the item first
    co_await coring::sleep(0s);   // g1 finds the queue empty and waits again
    CHECK_FALSE(g1.done());
    q.put_nowait("b");
    co_await coring::sleep(0s);
    CHECK(first == std::vector<std::string>{"b"}); // g1, not g2, got the next item
    CHECK(second.empty());
    q.put_nowait("c");
    co_await g1;
    co_await g2;
    CHECK(second == std::vector<std::string>{"c"});
}

CORING_TEST_CASE("Queue: a woken putter whose slot was taken keeps its turn", "[sync][queue]") {
    Queue<int> q(1);
    q.put_nowait(0);
    auto p1 = coring::create_task(put_one(q, 1));
    co_await coring::sleep(0s);
    auto p2 = coring::create_task(put_one(q, 2));
    co_await coring::sleep(0s);
    CHECK(q.get_nowait() == 0); // wakes p1
    q.put_nowait(9);            // but someone else fills the slot first
    co_await coring::sleep(0s);
    CHECK_FALSE(p1.done());
    CHECK(q.get_nowait() == 9);
    co_await coring::sleep(0s);
    CHECK(p1.done()); // p1 went before p2
    CHECK_FALSE(p2.done());
    CHECK(q.get_nowait() == 1);
    co_await p2;
    CHECK(q.get_nowait() == 2);
}

CORING_TEST_CASE("Queue: get() on a non-empty queue does not suspend", "[sync][queue]") {
    Queue<int> q(4);
    auto iterations = coring::get_running_loop().iteration_count();
    for (int i = 0; i < 4; ++i) {
        co_await q.put(i);
    }
    int sum = 0;
    for (int i = 0; i < 4; ++i) {
        sum += co_await q.get();
    }
    CHECK(sum == 6);
    CHECK(coring::get_running_loop().iteration_count() == iterations);
}

CORING_TEST_CASE("Queue: move-only items go through put, get and their _nowait forms",
                 "[sync][queue]") {
    Queue<std::unique_ptr<int>> q(1);
    co_await q.put(std::make_unique<int>(1));
    auto putter = coring::create_task(put_one(q, std::make_unique<int>(2)));
    co_await coring::sleep(0s);
    CHECK_FALSE(putter.done()); // holds its item in its frame
    std::unique_ptr<int> a = co_await q.get();
    co_await putter;
    std::unique_ptr<int> b = q.get_nowait();
    REQUIRE(a);
    REQUIRE(b);
    CHECK(*a == 1);
    CHECK(*b == 2);

    auto deref_less = [](const std::unique_ptr<int>& x, const std::unique_ptr<int>& y) {
        return *x < *y;
    };
    PriorityQueue<std::unique_ptr<int>, decltype(deref_less)> pq(0, deref_less);
    LifoQueue<std::unique_ptr<int>> lq;
    for (int i : {3, 1, 2}) {
        pq.put_nowait(std::make_unique<int>(i));
        lq.put_nowait(std::make_unique<int>(i));
    }
    CHECK(*pq.get_nowait() == 1);
    CHECK(*lq.get_nowait() == 2);
}

TEST_CASE("Queue: items are destroyed with the queue, by shutdown and by cancelled puts",
          "[sync][queue]") {
    using coring::test::Counted;
    Counted::reset();
    run_test([]() -> Task<> {
        {
            Queue<Counted> q;
            for (int i = 0; i < 40; ++i) { // forces the ring buffer to grow twice
                q.put_nowait(Counted(i));
            }
            CHECK(Counted::alive == 40);
            CHECK(q.get_nowait().value == 0);
            CHECK(Counted::alive == 39);
        }
        CHECK(Counted::alive == 0);
        {
            Queue<Counted> q(1);
            q.put_nowait(Counted(1));
            {
                auto putter = coring::create_task(put_one(q, Counted(2)));
                co_await coring::sleep(0s);
                CHECK(Counted::alive > 1); // the putter's frame holds its item
                putter.cancel();
                CO_CHECK_THROWS_AS(putter, CancelledError);
            } // the finished task's frame (and its parameter copies) goes with the last handle
            CHECK(Counted::alive == 1); // the cancelled put's item was not added
            q.shutdown(true);
            CHECK(Counted::alive == 0);
        }
    });
    CHECK(Counted::alive == 0);
}

TEST_CASE("Queue: task_done() more often than items were put throws ValueError", "[sync][queue]") {
    // asyncio test_task_done_underflow
    Queue<int> q;
    CHECK_THROWS_WITH(q.task_done(), "task_done() called too many times");
    q.put_nowait(1);
    q.get_nowait();
    q.task_done();
    CHECK_THROWS_AS(q.task_done(), coring::ValueError);
}

TEMPLATE_TEST_CASE("Queue: join() waits until every item is marked done",
                   "[sync][queue]",
                   Queue<int>,
                   LifoQueue<int>,
                   PriorityQueue<int>) {
    // asyncio test_task_done, test_join_empty_queue
    run_test([]() -> Task<> {
        TestType q;
        co_await q.join(); // nothing put: returns at once
        co_await q.join();
        for (int i = 0; i < 100; ++i) {
            q.put_nowait(i);
        }
        int accumulator = 0;
        bool running = true;
        auto worker = [&]() -> Task<> {
            while (running) {
                int item = co_await q.get();
                accumulator += item;
                q.task_done();
            }
        };
        auto w1 = coring::create_task(worker());
        auto w2 = coring::create_task(worker());
        co_await q.join();
        CHECK(accumulator == 4950);
        running = false;
        q.put_nowait(0);
        q.put_nowait(0);
        co_await w1;
        co_await w2;
    });
}

TEMPLATE_TEST_CASE("Queue: shutdown() of an empty queue fails blocked and later gets",
                   "[sync][queue][shutdown]",
                   Queue<std::string>,
                   LifoQueue<std::string>,
                   PriorityQueue<std::string>) {
    // Python 3.13 test_shutdown_empty
    run_test([]() -> Task<> {
        TestType q;
        auto get_task = coring::create_task(get_one(q));
        co_await coring::sleep(0s);
        q.shutdown();
        CHECK(q.qsize() == 0);
        co_await q.join();
        co_await coring::sleep(0s);
        CHECK(get_task.done());
        CO_CHECK_THROWS_AS(get_task, QueueShutDown);
        CO_CHECK_THROWS_AS(q.put("data"), QueueShutDown);
        CHECK_THROWS_AS(q.put_nowait("data"), QueueShutDown);
        CO_CHECK_THROWS_AS(q.get(), QueueShutDown);
        CHECK_THROWS_AS(q.get_nowait(), QueueShutDown);
    });
}

TEMPLATE_TEST_CASE("Queue: after shutdown() the queued items can still be got",
                   "[sync][queue][shutdown]",
                   Queue<std::string>,
                   LifoQueue<std::string>,
                   PriorityQueue<std::string>) {
    // Python 3.13 test_shutdown_nonempty
    run_test([]() -> Task<> {
        TestType q(1);
        q.put_nowait("data");
        auto join_task = coring::create_task(q.join());
        auto put_task = coring::create_task(put_one(q, std::string("data2")));
        co_await coring::sleep(0s);
        CHECK_FALSE(put_task.done());
        q.shutdown(false);
        CHECK(q.qsize() == 1);
        co_await coring::sleep(0s);
        CHECK(put_task.done());
        CO_CHECK_THROWS_AS(put_task, QueueShutDown);

        std::string item = co_await q.get();
        CHECK(item == "data");
        co_await coring::sleep(0s);
        CHECK_FALSE(join_task.done());

        CO_CHECK_THROWS_AS(q.put("data"), QueueShutDown);
        CHECK_THROWS_AS(q.put_nowait("data"), QueueShutDown);
        CO_CHECK_THROWS_AS(q.get(), QueueShutDown);
        CHECK_THROWS_AS(q.get_nowait(), QueueShutDown);

        q.task_done();
        co_await coring::sleep(0s);
        CHECK(join_task.done());
        co_await join_task;
        CHECK_THROWS_AS(q.task_done(), coring::ValueError);
    });
}

TEMPLATE_TEST_CASE("Queue: shutdown(true) drops the items and releases join()",
                   "[sync][queue][shutdown]",
                   Queue<std::string>,
                   LifoQueue<std::string>,
                   PriorityQueue<std::string>) {
    // Python 3.13 test_shutdown_immediate
    run_test([]() -> Task<> {
        TestType q;
        q.put_nowait("data");
        auto join_task = coring::create_task(q.join());
        q.shutdown(true);
        CHECK(q.qsize() == 0);
        co_await coring::sleep(0s);
        CHECK(join_task.done());
        co_await join_task;
        CO_CHECK_THROWS_AS(q.put("data"), QueueShutDown);
        CHECK_THROWS_AS(q.put_nowait("data"), QueueShutDown);
        CO_CHECK_THROWS_AS(q.get(), QueueShutDown);
        CHECK_THROWS_AS(q.get_nowait(), QueueShutDown);
        CHECK_THROWS_AS(q.task_done(), coring::ValueError);
    });
}

TEMPLATE_TEST_CASE("Queue: shutdown(true) counts only the dropped items as done",
                   "[sync][queue][shutdown]",
                   Queue<std::string>,
                   LifoQueue<std::string>,
                   PriorityQueue<std::string>) {
    // Python 3.13 test_shutdown_immediate_with_unfinished
    run_test([]() -> Task<> {
        TestType q;
        q.put_nowait("data");
        q.put_nowait("data");
        auto join_task = coring::create_task(q.join());
        std::string item = co_await q.get();
        CHECK(item == "data");
        q.shutdown(true);
        CHECK(q.qsize() == 0);
        co_await coring::sleep(0s);
        CHECK_FALSE(join_task.done());
        CO_CHECK_THROWS_AS(q.put("data"), QueueShutDown);
        CO_CHECK_THROWS_AS(q.get(), QueueShutDown);
        q.task_done();
        CHECK_THROWS_AS(q.task_done(), coring::ValueError);
        co_await coring::sleep(0s);
        CHECK(join_task.done());
        co_await join_task;
    });
}

CORING_TEST_CASE("Queue: shutdown() wakes every blocked getter and putter",
                 "[sync][queue][shutdown]") {
    Queue<int> empty;
    std::vector<TaskHandle<int>> getters;
    for (int i = 0; i < 3; ++i) {
        getters.push_back(coring::create_task(get_one(empty)));
    }
    Queue<int> full(1);
    full.put_nowait(0);
    std::vector<TaskHandle<>> putters;
    for (int i = 0; i < 3; ++i) {
        putters.push_back(coring::create_task(put_one(full, i)));
    }
    co_await coring::sleep(0s);
    empty.shutdown();
    full.shutdown();
    for (auto& g : getters) {
        CO_CHECK_THROWS_AS(g, QueueShutDown);
    }
    for (auto& p : putters) {
        CO_CHECK_THROWS_AS(p, QueueShutDown);
    }
    CHECK(full.get_nowait() == 0); // what was queued before stays gettable
}

CORING_TEST_CASE("Queue: the task dump names the queue operation", "[sync][queue]") {
    Queue<int> q(1);
    auto g = coring::create_task(get_one(q));
    co_await coring::sleep(0s);
    CHECK(g.get_stack().find("waiting on Queue get (0 items)") != std::string::npos);
    q.put_nowait(1);
    co_await g;
    q.put_nowait(1);
    auto p = coring::create_task(put_one(q, 2));
    co_await coring::sleep(0s);
    CHECK(p.get_stack().find("waiting on Queue put (1 of 1 items)") != std::string::npos);
    q.get_nowait();
    co_await p;
}

CORING_TEST_CASE(
        "Queue: randomized producers, consumers and cancellations lose and duplicate nothing",
        "[sync][queue][stress]") {
    Queue<int> q(3);
    std::mt19937 rng(42);
    std::vector<int> put_ok;
    std::vector<int> got;
    auto producer = [&](int base, int n) -> Task<> {
        for (int i = 0; i < n; ++i) {
            co_await q.put(base + i);
            put_ok.push_back(base + i); // only reached when the put took effect
            if (i % 3 == 0) {
                co_await coring::sleep(0s);
            }
        }
    };
    auto consumer = [&]() -> Task<> {
        for (;;) {
            int item = co_await q.get();
            got.push_back(item);
            q.task_done();
            if (item % 2 == 0) {
                co_await coring::sleep(0s);
            }
        }
    };
    std::vector<TaskHandle<>> producers;
    std::vector<TaskHandle<>> consumers;
    for (int p = 0; p < 30; ++p) {
        producers.push_back(coring::create_task(producer(p * 1000, 40)));
    }
    for (int c = 0; c < 10; ++c) {
        consumers.push_back(coring::create_task(consumer()));
    }
    for (int step = 0; step < 500; ++step) {
        co_await coring::sleep(0s);
        if (rng() % 5 == 0) {
            auto& victim = producers[rng() % producers.size()];
            victim.cancel();
        }
        if (rng() % 7 == 0) {
            // replace a consumer by a fresh one (the cancelled one may have been woken)
            auto& victim = consumers[rng() % consumers.size()];
            victim.cancel();
            consumers.push_back(coring::create_task(consumer()));
        }
    }
    int cancelled_producers = 0;
    for (auto& p : producers) {
        try {
            co_await p;
        } catch (const CancelledError&) {
            ++cancelled_producers;
        }
    }
    co_await q.join(); // every item put was got and marked done
    for (auto& c : consumers) {
        c.cancel();
        try {
            co_await c;
        } catch (const CancelledError&) {
        }
    }
    CHECK(cancelled_producers > 0);
    CHECK(q.empty());
    std::sort(put_ok.begin(), put_ok.end());
    std::sort(got.begin(), got.end());
    CHECK(std::adjacent_find(got.begin(), got.end()) == got.end()); // nothing duplicated
    CHECK(got == put_ok);                                           // nothing lost
    CHECK(got.size() > 500);
}

TEST_CASE("PriorityQueue: items that compare equal leave in std::pop_heap's order",
          "[sync][queue]") {
    // The heap is coring's own (no <algorithm> in the headers): it must give exactly the order
    // std::push_heap / std::pop_heap give, ties included, so that nothing changed for users.
    using Item = std::pair<int, int>; // (priority, sequence)

    struct ByPriority {
        bool operator()(const Item& a, const Item& b) const { return a.first < b.first; }
    };

    auto greater = [](const Item& a, const Item& b) {
        return ByPriority{}(b, a);
    };
    coring::detail::HeapStorage<Item, ByPriority> heap;
    std::vector<Item> reference;
    std::minstd_rand random(12345);
    int pushed = 0;
    int popped = 0;
    for (int i = 0; i < 5000; ++i) {
        if (reference.empty() || random() % 3 != 0) {
            ++pushed;
            Item item{static_cast<int>(random() % 4), i};
            heap.push(Item(item));
            reference.push_back(item);
            std::push_heap(reference.begin(), reference.end(), greater);
        } else {
            std::pop_heap(reference.begin(), reference.end(), greater);
            Item expected = reference.back();
            reference.pop_back();
            REQUIRE(heap.pop() == expected);
            ++popped;
        }
    }
    while (!reference.empty()) {
        std::pop_heap(reference.begin(), reference.end(), greater);
        Item expected = reference.back();
        reference.pop_back();
        REQUIRE(heap.pop() == expected);
        ++popped;
    }
    CHECK(heap.empty());
    CHECK(popped == pushed);
    CHECK(pushed > 3000); // mostly pushes: the heap grows to hundreds of items
}
