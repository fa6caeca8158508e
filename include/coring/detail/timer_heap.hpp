// SPDX-License-Identifier: MIT
// Indexed 4-ary min-heap of timers: O(log n) insert and cancel (base_events' _scheduled heap).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace coring::detail {

/// A timer that lives in its owner (a sleeping coroutine's frame, a TimerHandle). The heap
/// stores a pointer to it and keeps index_ current, so cancelling is a removal, not a tombstone.
class TimerNode {
public:
    static constexpr std::size_t not_queued = ~std::size_t{0};

    /// Called by the loop when the deadline has passed (discard false: move the owner to the
    /// ready queue) or when the loop closes with the timer still queued (discard true: release).
    using FireFn = void (*)(TimerNode*, bool discard) noexcept;

    explicit TimerNode(FireFn fire_fn) noexcept : fire_(fire_fn) {}

    TimerNode(const TimerNode&) = delete;
    TimerNode& operator=(const TimerNode&) = delete;

    bool is_queued() const noexcept { return index_ != not_queued; }

    void fire(bool discard = false) noexcept { fire_(this, discard); }

private:
    friend class TimerHeap;

    std::size_t index_ = not_queued; // position in TimerHeap::entries_, or not_queued
    FireFn fire_;
};

/// Min-heap ordered by (deadline, insertion sequence): equal deadlines fire in the order they
/// were scheduled, as asyncio's heapq of TimerHandles does.
class TimerHeap {
public:
    bool empty() const noexcept { return entries_.empty(); }

    std::size_t size() const noexcept { return entries_.size(); }

    /// Deadline of the earliest timer, in the loop's nanoseconds. Precondition: !empty().
    std::int64_t earliest() const noexcept { return entries_.front().when; }

    TimerNode* top() const noexcept { return entries_.front().node; }

    void push(TimerNode& node, std::int64_t when) {
        entries_.push_back(Entry{when, next_seq_++, &node});
        node.index_ = entries_.size() - 1;
        sift_up(entries_.size() - 1);
    }

    /// Removes a queued node; does nothing when it is not queued.
    void remove(TimerNode& node) noexcept {
        std::size_t i = node.index_;
        if (i == TimerNode::not_queued) {
            return;
        }
        node.index_ = TimerNode::not_queued;
        std::size_t last = entries_.size() - 1;
        if (i != last) {
            entries_[i] = entries_[last];
            entries_[i].node->index_ = i;
            entries_.pop_back();
            if (i > 0 && less(entries_[i], entries_[parent(i)])) {
                sift_up(i);
            } else {
                sift_down(i);
            }
        } else {
            entries_.pop_back();
        }
    }

    /// Removes and returns the earliest timer. Precondition: !empty().
    TimerNode* pop() noexcept {
        TimerNode* node = entries_.front().node;
        remove(*node);
        return node;
    }

    /// Forgets every timer (their nodes become not queued); used when a loop closes.
    void clear() noexcept {
        for (Entry& e : entries_) {
            e.node->index_ = TimerNode::not_queued;
        }
        entries_.clear();
    }

private:
    struct Entry {
        std::int64_t when;
        std::uint64_t seq;
        TimerNode* node;
    };

    static constexpr std::size_t arity = 4;

    static std::size_t parent(std::size_t i) noexcept { return (i - 1) / arity; }

    static bool less(const Entry& a, const Entry& b) noexcept {
        return a.when < b.when || (a.when == b.when && a.seq < b.seq);
    }

    void sift_up(std::size_t i) noexcept {
        Entry moving = entries_[i];
        while (i > 0) {
            std::size_t p = parent(i);
            if (!less(moving, entries_[p])) {
                break;
            }
            entries_[i] = entries_[p];
            entries_[i].node->index_ = i;
            i = p;
        }
        entries_[i] = moving;
        moving.node->index_ = i;
    }

    void sift_down(std::size_t i) noexcept {
        const std::size_t n = entries_.size();
        Entry moving = entries_[i];
        for (;;) {
            std::size_t first = i * arity + 1;
            if (first >= n) {
                break;
            }
            std::size_t best = first;
            std::size_t end = first + arity < n ? first + arity : n;
            for (std::size_t c = first + 1; c < end; ++c) {
                if (less(entries_[c], entries_[best])) {
                    best = c;
                }
            }
            if (!less(entries_[best], moving)) {
                break;
            }
            entries_[i] = entries_[best];
            entries_[i].node->index_ = i;
            i = best;
        }
        entries_[i] = moving;
        moving.node->index_ = i;
    }

    std::vector<Entry> entries_;
    std::uint64_t next_seq_ = 0;
};

} // namespace coring::detail
