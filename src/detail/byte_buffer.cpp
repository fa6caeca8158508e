// SPDX-License-Identifier: MIT
// The per-thread pool behind ByteBuffer: power-of-two classes from 4 KiB to 1 MiB.
#include <coring/detail/byte_buffer.hpp>
#include <coring/detail/frame_allocator.hpp>

#include <bit>
#include <cstdint>
#include <new>

namespace coring::detail {

namespace {

constexpr unsigned min_shift = 12; // 4 KiB: the smallest buffer

#if CORING_FRAME_RECYCLING
constexpr unsigned max_shift = 20;                 // 1 MiB: larger buffers bypass the pool
constexpr std::size_t max_cached_bytes = 8u << 20; // per class and thread
constexpr unsigned classes = max_shift - min_shift + 1;

struct Block {
    Block* next;
};

// Cached buffers of one thread. Trivially destructible, so the thread_local needs no guard;
// PoolOwner frees the cached buffers at thread exit, after which buffers go straight to the
// system (dead).
struct BufferPool {
    Block* free[classes];
    std::size_t count[classes];
    bool owner_registered;
    bool dead;
};

thread_local constinit BufferPool pool{};

struct PoolOwner {
    ~PoolOwner() {
        pool.dead = true;
        for (unsigned c = 0; c < classes; ++c) {
            while (Block* b = pool.free[c]) {
                pool.free[c] = b->next;
                free_block(b, std::size_t{1} << (c + min_shift));
            }
            pool.count[c] = 0;
        }
    }
};

void register_pool_owner() noexcept {
    static thread_local PoolOwner owner;
    pool.owner_registered = true;
}
#endif

// The largest power of two a size_t holds: bit_ceil of anything above it is undefined.
constexpr std::size_t max_rounded = ~(~std::size_t{0} >> 1);

std::size_t round_up(std::size_t n) {
    if (n <= (std::size_t{1} << min_shift)) {
        return std::size_t{1} << min_shift;
    }
    if (n > max_rounded) {
        // No allocation can be that large (issue 10, defect 4: bit_ceil used to shift by 64
        // and the pool index went out of range).
        throw std::bad_alloc();
    }
    return std::bit_ceil(n);
}

} // namespace

char* buffer_allocate(std::size_t& capacity) {
    std::size_t size = round_up(capacity);
    capacity = size;
#if CORING_FRAME_RECYCLING
    unsigned shift = static_cast<unsigned>(std::countr_zero(size));
    if (shift <= max_shift) {
        BufferPool& p = pool;
        unsigned c = shift - min_shift;
        if (Block* b = p.free[c]) {
            p.free[c] = b->next;
            --p.count[c];
            return reinterpret_cast<char*>(b);
        }
    }
#endif
    return static_cast<char*>(::operator new(size));
}

void buffer_deallocate(char* p, std::size_t capacity) noexcept {
#if CORING_FRAME_RECYCLING
    unsigned shift = static_cast<unsigned>(std::countr_zero(capacity));
    if (shift <= max_shift) {
        BufferPool& bp = pool;
        unsigned c = shift - min_shift;
        if (!bp.dead && bp.count[c] * capacity < max_cached_bytes) {
            if (!bp.owner_registered) [[unlikely]] {
                register_pool_owner();
            }
            auto* b = reinterpret_cast<Block*>(p);
            b->next = bp.free[c];
            bp.free[c] = b;
            ++bp.count[c];
            return;
        }
    }
#endif
    free_block(p, capacity);
}

void ByteBuffer::make_room(std::size_t n) {
    std::size_t used = end_ - begin_;
    if (begin_ > 0 && cap_ - used >= n) {
        // Enough space once the consumed front is reused: slide the data there.
        std::memmove(data_, data_ + begin_, used);
        begin_ = 0;
        end_ = used;
        return;
    }
    if (n > max_rounded - used) {
        throw std::bad_alloc(); // used + n would not fit in a size_t, let alone in memory
    }
    std::size_t want = used + n;
    if (want < cap_ * 2) {
        want = cap_ * 2;
    }
    char* fresh = buffer_allocate(want);
    if (used > 0) {
        std::memcpy(fresh, data_ + begin_, used);
    }
    if (data_ != nullptr) {
        buffer_deallocate(data_, cap_);
    }
    data_ = fresh;
    cap_ = want;
    begin_ = 0;
    end_ = used;
}

} // namespace coring::detail
