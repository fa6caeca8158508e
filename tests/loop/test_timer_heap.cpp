// SPDX-License-Identifier: MIT
// Tests of the indexed timer heap and the intrusive list (detail building blocks of the loop).
// clang-format off
#include <coring/detail/timer_heap.hpp> // first: it must compile on its own
// clang-format on

#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/ready_queue.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <random>
#include <set>
#include <utility>
#include <vector>

namespace {

struct Timer : coring::detail::TimerNode {
    Timer() : TimerNode([](TimerNode*, bool) noexcept {}) {}

    std::int64_t when = 0;
    std::uint64_t id = 0;
};

struct Item : coring::detail::ListHook<> {
    explicit Item(int v) : value(v) {}

    int value;
};

} // namespace

TEST_CASE("TimerHeap: pops in (deadline, insertion) order under random inserts and removals",
          "[loop][timer]") {
    std::mt19937_64 rng(12345);
    coring::detail::TimerHeap heap;
    std::vector<std::unique_ptr<Timer>> timers;
    std::set<std::pair<std::int64_t, std::uint64_t>> reference;
    std::uint64_t next_id = 0;
    for (int round = 0; round < 20000; ++round) {
        int op = static_cast<int>(rng() % 10);
        if (op < 6 || reference.empty()) {
            auto t = std::make_unique<Timer>();
            t->when = static_cast<std::int64_t>(rng() % 500); // many ties on purpose
            t->id = next_id++;
            heap.push(*t, t->when);
            reference.insert({t->when, t->id});
            timers.push_back(std::move(t));
        } else if (op < 8) {
            // Remove a random queued timer.
            auto& t = timers[rng() % timers.size()];
            if (t->is_queued()) {
                heap.remove(*t);
                reference.erase({t->when, t->id});
            }
        } else {
            auto* top = static_cast<Timer*>(heap.pop());
            REQUIRE(top->when == reference.begin()->first);
            REQUIRE(top->id == reference.begin()->second);
            reference.erase(reference.begin());
        }
        REQUIRE(heap.size() == reference.size());
    }
    while (!heap.empty()) {
        auto* top = static_cast<Timer*>(heap.pop());
        REQUIRE(top->id == reference.begin()->second);
        reference.erase(reference.begin());
    }
}

TEST_CASE("TimerHeap: mostly increasing deadlines (the FIFO lane) keep the exact order",
          "[loop][timer]") {
    // Deadlines that usually grow (the lane) with some out-of-order ones (the heap), ties, and
    // cancellations in the middle of the lane, which compaction must survive.
    std::mt19937_64 rng(777);
    coring::detail::TimerHeap heap;
    std::vector<std::unique_ptr<Timer>> timers;
    std::set<std::pair<std::int64_t, std::uint64_t>> reference;
    std::uint64_t next_id = 0;
    std::int64_t clock = 0;
    for (int round = 0; round < 50000; ++round) {
        int op = static_cast<int>(rng() % 20);
        if (op < 11 || reference.empty()) {
            auto t = std::make_unique<Timer>();
            clock += static_cast<std::int64_t>(rng() % 3); // ties when it does not move
            t->when = op == 0 ? clock - static_cast<std::int64_t>(rng() % 50) : clock + 100;
            t->id = next_id++;
            heap.push(*t, t->when);
            reference.insert({t->when, t->id});
            timers.push_back(std::move(t));
        } else if (op < 17) {
            auto& t = timers[rng() % timers.size()];
            if (t->is_queued()) {
                heap.remove(*t);
                reference.erase({t->when, t->id});
            }
        } else {
            auto* top = static_cast<Timer*>(heap.pop());
            REQUIRE(top->when == reference.begin()->first);
            REQUIRE(top->id == reference.begin()->second);
            reference.erase(reference.begin());
        }
        REQUIRE(heap.size() == reference.size());
        if (!reference.empty()) {
            REQUIRE(heap.earliest() == reference.begin()->first);
        }
    }
    while (!heap.empty()) {
        auto* top = static_cast<Timer*>(heap.pop());
        REQUIRE(top->id == reference.begin()->second);
        reference.erase(reference.begin());
    }
    for (auto& t : timers) {
        CHECK_FALSE(t->is_queued());
    }
}

TEST_CASE("TimerHeap: cancelled lane timers do not pile up", "[loop][timer]") {
    coring::detail::TimerHeap heap;
    std::vector<std::unique_ptr<Timer>> timers;
    // A server's request timeouts: each is scheduled later than the last and cancelled soon.
    Timer keeper; // one long-lived timer at the front keeps the tombstones from being shed
    heap.push(keeper, 0);
    for (int i = 0; i < 100000; ++i) {
        auto t = std::make_unique<Timer>();
        heap.push(*t, 1000 + i);
        heap.remove(*t);
    }
    CHECK(heap.size() == 1);
    CHECK(heap.storage() < 1024); // compaction kept up with the cancellations
    CHECK(heap.pop() == &keeper);
    CHECK(heap.empty());
}

TEST_CASE("TimerHeap: clear() unqueues every timer of both lane and heap", "[loop][timer]") {
    coring::detail::TimerHeap heap;
    Timer a, b, c;
    heap.push(a, 10);
    heap.push(b, 20); // lane
    heap.push(c, 5);  // heap: earlier than the lane's back
    CHECK(heap.top() == &c);
    heap.clear();
    CHECK(heap.empty());
    CHECK_FALSE(a.is_queued());
    CHECK_FALSE(b.is_queued());
    CHECK_FALSE(c.is_queued());
}

TEST_CASE("TimerHeap: removing a timer that is not queued does nothing", "[loop][timer]") {
    coring::detail::TimerHeap heap;
    Timer a;
    heap.remove(a);
    heap.push(a, 5);
    CHECK(a.is_queued());
    heap.remove(a);
    CHECK_FALSE(a.is_queued());
    heap.remove(a);
    CHECK(heap.empty());
}

TEST_CASE("IntrusiveList: FIFO order, removal from the middle and auto-unlink", "[loop]") {
    coring::detail::IntrusiveList<Item> list;
    Item a(1), b(2), c(3);
    list.push_back(a);
    list.push_back(b);
    list.push_back(c);
    CHECK(list.size() == 3);
    coring::detail::IntrusiveList<Item>::remove(b);
    CHECK_FALSE(b.is_linked());
    {
        Item d(4);
        list.push_back(d);
        CHECK(list.size() == 3);
    } // d unlinks itself when destroyed
    CHECK(list.size() == 2);
    std::vector<int> seen;
    list.for_each([&](Item& i) { seen.push_back(i.value); });
    CHECK(seen == std::vector<int>{1, 3});
    CHECK(list.pop_front()->value == 1);
    CHECK(list.pop_front()->value == 3);
    CHECK(list.pop_front() == nullptr);
}

TEST_CASE("IntrusiveList: a destroyed or moved list leaves its nodes consistent", "[loop]") {
    Item a(1), b(2);
    {
        coring::detail::IntrusiveList<Item> list;
        list.push_back(a);
        list.push_back(b);
        coring::detail::IntrusiveList<Item> moved(std::move(list));
        CHECK(list.empty());
        CHECK(moved.size() == 2);
        CHECK(moved.front().value == 1);
    }
    CHECK_FALSE(a.is_linked());
    CHECK_FALSE(b.is_linked());
}

TEST_CASE("ReadyQueue: FIFO across growth and wrap-around", "[loop]") {
    coring::detail::ReadyQueue q;
    std::vector<int> values(5000);
    int next = 0;
    int expected = 0;
    auto noop = [](void*, bool) noexcept {
    };
    for (int round = 0; round < 10; ++round) {
        for (int i = 0; i < 400; ++i) {
            values[next % 5000] = next;
            q.push({noop, &values[next % 5000]});
            ++next;
        }
        for (int i = 0; i < 300; ++i) {
            auto e = q.pop();
            REQUIRE(*static_cast<int*>(e.arg) == expected++);
        }
    }
    CHECK(q.size() == 1000);
}
