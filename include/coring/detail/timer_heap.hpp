// SPDX-License-Identifier: MIT
// The loop's timers (base_events' _scheduled heap): a FIFO lane for deadlines that arrive in
// order, and an indexed 4-ary min-heap for the rest; O(1) or O(log n) insert and cancel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace coring::detail {

/// A FIFO of trivially copyable T with random access, in one power-of-two array: the part of
/// std::deque the timer lane uses, without <deque>'s cost to every includer of the loop.
template <class T>
class TimerRing {
public:
    bool empty() const noexcept { return size_ == 0; }

    std::size_t size() const noexcept { return size_; }

    std::size_t capacity() const noexcept { return cap_; }

    T& front() noexcept { return data_[head_]; }

    const T& front() const noexcept { return data_[head_]; }

    T& back() noexcept { return data_[(head_ + size_ - 1) & (cap_ - 1)]; }

    const T& back() const noexcept { return data_[(head_ + size_ - 1) & (cap_ - 1)]; }

    /// The i-th entry from the front.
    T& operator[](std::size_t i) noexcept { return data_[(head_ + i) & (cap_ - 1)]; }

    void push_back(const T& v) {
        if (size_ == cap_) {
            grow();
        }
        data_[(head_ + size_) & (cap_ - 1)] = v;
        ++size_;
    }

    void pop_front() noexcept {
        head_ = (head_ + 1) & (cap_ - 1);
        --size_;
    }

    void pop_back() noexcept { --size_; }

    /// Calls f on every entry, front to back.
    template <class F>
    void for_each(F&& f) {
        for (std::size_t i = 0; i < size_; ++i) {
            f((*this)[i]);
        }
    }

    /// Empties the ring and frees its array.
    void clear() noexcept {
        data_.reset();
        cap_ = head_ = size_ = 0;
    }

private:
    // Doubles the array (amortised O(1) per push; the entries are copied front first).
    void grow() {
        std::size_t cap = cap_ == 0 ? 16 : cap_ * 2;
        std::unique_ptr<T[]> bigger(new T[cap]);
        for (std::size_t i = 0; i < size_; ++i) {
            bigger[i] = (*this)[i];
        }
        data_ = std::move(bigger);
        cap_ = cap;
        head_ = 0;
    }

    std::unique_ptr<T[]> data_;
    std::size_t cap_ = 0; // 0 or a power of two
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

/// A timer that lives in its owner (a sleeping coroutine's frame, a TimerHandle). The queue
/// stores a pointer to it and keeps index_ current, so cancelling is a removal, not a tombstone
/// left for the loop to skip.
class TimerNode {
public:
    static constexpr std::uint32_t not_queued = ~std::uint32_t{0};

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

    FireFn fire_;
    // Where the queue keeps it: a heap position (bit 31 clear), a lane slot (bit 31 set, slot in
    // bits 0-29), or not_queued. 32 bits so a small flag of the owner can share the word.
    std::uint32_t index_ = not_queued;
};

/// Timers ordered by (deadline, insertion sequence): equal deadlines fire in the order they were
/// scheduled, as asyncio's heapq of TimerHandles does.
///
/// Most programs schedule timers with a few fixed delays (sleeps in a loop, request timeouts),
/// so deadlines mostly arrive in increasing order. Such a timer is appended to a FIFO lane in
/// O(1); any other goes into a 4-ary heap in O(log n). The earliest timer is the smaller of the
/// two fronts. Cancelling a lane timer leaves a tombstone that the lane sheds at its ends, and
/// compacts away once tombstones outnumber live timers, so memory follows the live count.
class TimerHeap {
public:
    bool empty() const noexcept { return heap_.empty() && lane_live_ == 0; }

    std::size_t size() const noexcept { return heap_.size() + lane_live_; }

    /// Entries of storage held (live timers, tombstones and spare capacity), for tests.
    std::size_t storage() const noexcept { return heap_.capacity() + lane_.capacity(); }

    /// Deadline of the earliest timer, in the loop's nanoseconds. Precondition: !empty().
    std::int64_t earliest() const noexcept { return front().when; }

    TimerNode* top() const noexcept { return front().node; }

    void push(TimerNode& node, std::int64_t when) {
        Entry e{when, next_seq_++, &node};
        if (lane_live_ == 0 || when >= lane_.back().when) {
            lane_push(e);
        } else {
            heap_push(e);
        }
    }

    /// Removes a queued node; does nothing when it is not queued.
    void remove(TimerNode& node) noexcept {
        std::uint32_t index = node.index_;
        if (index == TimerNode::not_queued) {
            return;
        }
        node.index_ = TimerNode::not_queued;
        if (index & lane_bit) {
            lane_[lane_offset(index)].node = nullptr;
            --lane_live_;
            ++lane_dead_;
            lane_trim();
            if (lane_dead_ > 64 && lane_dead_ > lane_live_) {
                lane_compact();
            }
        } else {
            heap_remove(index);
        }
    }

    /// Removes and returns the earliest timer. Precondition: !empty().
    TimerNode* pop() noexcept {
        TimerNode* node = front().node;
        remove(*node);
        return node;
    }

    /// Forgets every timer (their nodes become not queued); used when a loop closes.
    void clear() noexcept {
        for (Entry& e : heap_) {
            e.node->index_ = TimerNode::not_queued;
        }
        heap_.clear();
        lane_.for_each([](Entry& e) {
            if (e.node != nullptr) {
                e.node->index_ = TimerNode::not_queued;
            }
        });
        lane_.clear();
        lane_live_ = lane_dead_ = 0;
    }

private:
    struct Entry {
        std::int64_t when;
        std::uint64_t seq;
        TimerNode* node; // null: a cancelled lane slot (tombstone)
    };

    static constexpr std::uint32_t lane_bit = 0x8000'0000u;
    static constexpr std::uint32_t lane_slot_bits = 0x3FFF'FFFFu; // lane length < 2^30
    static constexpr std::size_t arity = 4;

    static bool less(const Entry& a, const Entry& b) noexcept {
        return a.when < b.when || (a.when == b.when && a.seq < b.seq);
    }

    const Entry& front() const noexcept {
        if (lane_live_ == 0) {
            return heap_.front();
        }
        const Entry& l = lane_.front(); // trimmed: the lane's front is live
        return heap_.empty() || less(l, heap_.front()) ? l : heap_.front();
    }

    // ---- the FIFO lane ----
    //
    // A ring (one array, doubled when full; compaction rebuilds it at the live size, so memory
    // follows the live count). Entries have absolute positions: lane_head_ is the front's; a node
    // stores the low 30 bits of its own, which is enough since the lane is shorter than 2^30.

    static std::uint32_t lane_index(std::uint64_t pos) noexcept {
        return lane_bit | static_cast<std::uint32_t>(pos & lane_slot_bits);
    }

    std::size_t lane_offset(std::uint32_t index) const noexcept {
        return (index - static_cast<std::uint32_t>(lane_head_)) & lane_slot_bits;
    }

    void lane_push(const Entry& e) {
        lane_.push_back(e);
        e.node->index_ = lane_index(lane_head_ + lane_.size() - 1);
        ++lane_live_;
    }

    // Sheds tombstones at both ends, so the front is live and the back is the latest deadline.
    void lane_trim() noexcept {
        while (!lane_.empty() && lane_.front().node == nullptr) {
            lane_.pop_front();
            ++lane_head_;
            --lane_dead_;
        }
        while (!lane_.empty() && lane_.back().node == nullptr) {
            lane_.pop_back();
            --lane_dead_;
        }
    }

    // Rebuilds the lane without its tombstones; the live entries' positions change.
    void lane_compact() noexcept {
        TimerRing<Entry> live;
        lane_.for_each([&](const Entry& e) {
            if (e.node != nullptr) {
                live.push_back(e);
                e.node->index_ = lane_index(lane_head_ + live.size() - 1);
            }
        });
        lane_ = std::move(live);
        lane_dead_ = 0;
    }

    // ---- the heap ----

    static std::size_t parent(std::size_t i) noexcept { return (i - 1) / arity; }

    void heap_push(const Entry& e) {
        heap_.push_back(e);
        sift_up(heap_.size() - 1);
    }

    void heap_remove(std::size_t i) noexcept {
        std::size_t last = heap_.size() - 1;
        if (i != last) {
            heap_[i] = heap_[last];
            heap_.pop_back();
            if (i > 0 && less(heap_[i], heap_[parent(i)])) {
                sift_up(i);
            } else {
                sift_down(i);
            }
        } else {
            heap_.pop_back();
        }
    }

    void place(std::size_t i, const Entry& e) noexcept {
        heap_[i] = e;
        e.node->index_ = static_cast<std::uint32_t>(i);
    }

    void sift_up(std::size_t i) noexcept {
        Entry moving = heap_[i];
        while (i > 0) {
            std::size_t p = parent(i);
            if (!less(moving, heap_[p])) {
                break;
            }
            place(i, heap_[p]);
            i = p;
        }
        place(i, moving);
    }

    void sift_down(std::size_t i) noexcept {
        const std::size_t n = heap_.size();
        Entry moving = heap_[i];
        for (;;) {
            std::size_t first = i * arity + 1;
            if (first >= n) {
                break;
            }
            std::size_t best = first;
            std::size_t end = first + arity < n ? first + arity : n;
            for (std::size_t c = first + 1; c < end; ++c) {
                if (less(heap_[c], heap_[best])) {
                    best = c;
                }
            }
            if (!less(heap_[best], moving)) {
                break;
            }
            place(i, heap_[best]);
            i = best;
        }
        place(i, moving);
    }

    std::vector<Entry> heap_;
    TimerRing<Entry> lane_;       // in (deadline, sequence) order; null nodes are tombstones
    std::uint64_t lane_head_ = 0; // absolute position of lane_.front()
    std::size_t lane_live_ = 0;   // entries holding a timer
    std::size_t lane_dead_ = 0;   // tombstones
    std::uint64_t next_seq_ = 0;
};

} // namespace coring::detail
