// SPDX-License-Identifier: MIT
// ByteBuffer: the growable byte buffer behind StreamReader and StreamWriter (asyncio's
// bytearray buffers), drawn from a per-thread pool so steady-state I/O allocates nothing.
#pragma once

#include <cstddef>
#include <cstring>
#include <string_view>
#include <utility>

namespace coring::detail {

/// Allocates a buffer of at least capacity bytes (rounded up to a power of two, at least
/// 4 KiB), reusing one freed earlier on this thread when it can; updates capacity to the size
/// obtained. Throws std::bad_alloc, also for a capacity no power of two can hold.
char* buffer_allocate(std::size_t& capacity);

/// Returns a buffer from buffer_allocate; capacity is the size it was allocated with.
void buffer_deallocate(char* p, std::size_t capacity) noexcept;

/// Contiguous bytes [data(), data() + size()) inside one pooled allocation, with free room after
/// them. Appending writes at tail(); consuming advances the front. The storage moves only when
/// reserve_tail() or append() needs room, so a pointer into it stays valid as long as the
/// owner calls neither (the kernel relies on that while a recv or send is in flight).
class ByteBuffer {
public:
    ByteBuffer() noexcept = default;
    ByteBuffer(const ByteBuffer&) = delete;
    ByteBuffer& operator=(const ByteBuffer&) = delete;

    ByteBuffer(ByteBuffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), cap_(std::exchange(other.cap_, 0)),
          begin_(std::exchange(other.begin_, 0)), end_(std::exchange(other.end_, 0)) {}

    ByteBuffer& operator=(ByteBuffer&& other) noexcept {
        ByteBuffer tmp(std::move(other));
        swap(tmp);
        return *this;
    }

    ~ByteBuffer() { reset(); }

    std::size_t size() const noexcept { return end_ - begin_; }

    bool empty() const noexcept { return end_ == begin_; }

    std::size_t capacity() const noexcept { return cap_; }

    char* data() noexcept { return data_ + begin_; }

    const char* data() const noexcept { return data_ + begin_; }

    std::string_view view() const noexcept { return {data_ + begin_, end_ - begin_}; }

    /// Free bytes after the data.
    std::size_t room() const noexcept { return cap_ - end_; }

    /// Where the next bytes go.
    char* tail() noexcept { return data_ + end_; }

    /// Makes room() at least n: moves the data to the front, or grows the storage.
    /// Throws std::bad_alloc (whatever n is: a size past what memory can hold is no crash).
    void reserve_tail(std::size_t n) {
        if (room() < n) {
            make_room(n);
        }
    }

    /// Marks n bytes written at tail() as data.
    void commit(std::size_t n) noexcept { end_ += n; }

    /// Drops n bytes from the front.
    void consume(std::size_t n) noexcept {
        begin_ += n;
        if (begin_ == end_) {
            begin_ = end_ = 0;
        }
    }

    /// Appends n bytes. Throws std::bad_alloc.
    void append(const char* p, std::size_t n) {
        if (n == 0) {
            return; // no storage may exist yet: memcpy to null is undefined even for 0 bytes
        }
        reserve_tail(n);
        std::memcpy(data_ + end_, p, n);
        end_ += n;
    }

    /// Forgets the data, keeps the storage.
    void clear() noexcept { begin_ = end_ = 0; }

    /// Returns the storage to the pool.
    void reset() noexcept {
        if (data_ != nullptr) {
            buffer_deallocate(data_, cap_);
            data_ = nullptr;
            cap_ = begin_ = end_ = 0;
        }
    }

    /// Returns the storage to the pool when it is empty and larger than keep bytes, so a
    /// connection that once moved a large burst does not hold on to it.
    void shrink_if_idle(std::size_t keep) noexcept {
        if (empty() && cap_ > keep) {
            reset();
        }
    }

    void swap(ByteBuffer& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(cap_, other.cap_);
        std::swap(begin_, other.begin_);
        std::swap(end_, other.end_);
    }

private:
    void make_room(std::size_t n);

    char* data_ = nullptr;
    std::size_t cap_ = 0;
    std::size_t begin_ = 0; // first byte of data
    std::size_t end_ = 0;   // one past the last byte of data
};

} // namespace coring::detail
