// SPDX-License-Identifier: MIT
// Item storage of Queue (FIFO ring buffer), LifoQueue (stack) and PriorityQueue (binary heap):
// asyncio.queues' _init/_put/_get triple.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

namespace coring::detail {

/// A FIFO ring buffer of T with power-of-two capacity. Grows by doubling and never shrinks, so a
/// queue in steady state allocates nothing (std::deque allocates and frees a block every few
/// hundred items as it slides). T may be move-only.
template <class T>
class RingBuffer {
public:
    RingBuffer() noexcept = default;

    RingBuffer(RingBuffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), capacity_(std::exchange(other.capacity_, 0)),
          head_(std::exchange(other.head_, 0)), size_(std::exchange(other.size_, 0)) {}

    RingBuffer(const RingBuffer&) = delete;
    RingBuffer& operator=(const RingBuffer&) = delete;

    ~RingBuffer() {
        clear();
        if (data_ != nullptr) {
            std::allocator<T>().deallocate(data_, capacity_);
        }
    }

    bool empty() const noexcept { return size_ == 0; }

    std::size_t size() const noexcept { return size_; }

    void push_back(T&& value) {
        if (size_ == capacity_) {
            grow();
        }
        std::construct_at(data_ + ((head_ + size_) & (capacity_ - 1)), std::move(value));
        ++size_;
    }

    /// Precondition: !empty().
    T pop_front() {
        T* slot = data_ + head_;
        T value(std::move(*slot));
        std::destroy_at(slot);
        head_ = (head_ + 1) & (capacity_ - 1);
        --size_;
        return value;
    }

    void clear() noexcept {
        for (; size_ > 0; --size_) {
            std::destroy_at(data_ + head_);
            head_ = (head_ + 1) & (capacity_ - 1);
        }
        head_ = 0;
    }

private:
    static constexpr std::size_t initial_capacity = 16;

    void grow() {
        std::size_t cap = capacity_ == 0 ? initial_capacity : capacity_ * 2;
        T* bigger = std::allocator<T>().allocate(cap);
        std::size_t moved = 0;
        try {
            for (; moved < size_; ++moved) {
                std::construct_at(bigger + moved,
                                  std::move_if_noexcept(data_[(head_ + moved) & (capacity_ - 1)]));
            }
        } catch (...) {
            std::destroy(bigger, bigger + moved);
            std::allocator<T>().deallocate(bigger, cap);
            throw;
        }
        std::size_t n = size_;
        clear();
        if (data_ != nullptr) {
            std::allocator<T>().deallocate(data_, capacity_);
        }
        data_ = bigger;
        capacity_ = cap;
        head_ = 0;
        size_ = n;
    }

    T* data_ = nullptr;
    std::size_t capacity_ = 0; // 0 or a power of two
    std::size_t head_ = 0;     // index of the oldest item
    std::size_t size_ = 0;
};

/// Queue's storage: first in, first out.
template <class T>
class FifoStorage {
public:
    bool empty() const noexcept { return items_.empty(); }

    std::size_t size() const noexcept { return items_.size(); }

    void push(T&& value) { items_.push_back(std::move(value)); }

    /// Precondition: !empty().
    T pop() { return items_.pop_front(); }

    void clear() noexcept { items_.clear(); }

private:
    RingBuffer<T> items_;
};

/// LifoQueue's storage: last in, first out.
template <class T>
class LifoStorage {
public:
    bool empty() const noexcept { return items_.empty(); }

    std::size_t size() const noexcept { return items_.size(); }

    void push(T&& value) { items_.push_back(std::move(value)); }

    /// Precondition: !empty().
    T pop() {
        T value(std::move(items_.back()));
        items_.pop_back();
        return value;
    }

    void clear() noexcept { items_.clear(); }

private:
    std::vector<T> items_;
};

/// PriorityQueue's storage: a binary heap that yields the smallest item under Compare first,
/// as heapq does with `<`. The sift steps are std::push_heap's and std::pop_heap's on a
/// max-heap under "greater" (so items that compare equal come out in the same order as with
/// them), written here because <algorithm> costs ~4,800 preprocessed lines.
template <class T, class Compare>
class HeapStorage {
public:
    explicit HeapStorage(Compare compare = Compare()) : compare_(std::move(compare)) {}

    bool empty() const noexcept { return items_.empty(); }

    std::size_t size() const noexcept { return items_.size(); }

    void push(T&& value) {
        items_.push_back(std::move(value));
        T last(std::move(items_.back()));
        sift_up(items_.size() - 1, 0, std::move(last));
    }

    /// Precondition: !empty().
    T pop() {
        const std::size_t n = items_.size();
        if (n > 1) {
            // Moves the top to the back and re-heaps the rest.
            T moved(std::move(items_[n - 1]));
            items_[n - 1] = std::move(items_[0]);
            adjust(0, n - 1, std::move(moved));
        }
        T value(std::move(items_.back()));
        items_.pop_back();
        return value;
    }

    void clear() noexcept { items_.clear(); }

private:
    // The heap's order: a before b when a is greater (b < a), making the top the smallest.
    bool greater(const T& a, const T& b) const { return compare_(b, a); }

    // Moves the hole at index hole up towards top until value fits there, and puts value in.
    void sift_up(std::size_t hole, std::size_t top, T&& value) {
        std::size_t parent = (hole - 1) / 2;
        while (hole > top && greater(items_[parent], value)) {
            items_[hole] = std::move(items_[parent]);
            hole = parent;
            parent = (hole - 1) / 2;
        }
        items_[hole] = std::move(value);
    }

    // Fills the hole at index hole of the first len items with value (std::__adjust_heap).
    void adjust(std::size_t hole, std::size_t len, T&& value) {
        const std::size_t top = hole;
        std::size_t child = hole;
        while (len > 0 && child < (len - 1) / 2) {
            child = 2 * (child + 1);
            if (greater(items_[child], items_[child - 1])) {
                --child;
            }
            items_[hole] = std::move(items_[child]);
            hole = child;
        }
        if ((len & 1) == 0 && len >= 2 && child == (len - 2) / 2) {
            child = 2 * (child + 1);
            items_[hole] = std::move(items_[child - 1]);
            hole = child - 1;
        }
        sift_up(hole, top, std::move(value));
    }

    std::vector<T> items_;
    mutable Compare compare_;
};

} // namespace coring::detail
