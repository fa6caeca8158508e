// SPDX-License-Identifier: MIT
// Recycling allocator for coroutine frames and loop handles: per-thread free lists by size class.
#pragma once

#include <coring/detail/sys.hpp>

#include <cstddef>
#include <cstdint>
#include <new>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CORING_FRAME_RECYCLING 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CORING_FRAME_RECYCLING 0
#endif
#endif
#ifndef CORING_FRAME_RECYCLING
#define CORING_FRAME_RECYCLING 1
#endif

namespace coring::detail {

/// Per-thread cache of freed blocks. Trivially constructible and destructible so that the
/// thread_local below needs no guard on the fast path; FrameCacheOwner frees it at thread exit.
struct FrameCache {
    // Class c holds blocks of 16 * c + 8 bytes: with malloc's 8-byte header that is a whole
    // number of 16-byte units, so a 232-byte frame costs a 240-byte chunk, not 256 or 272.
    static constexpr std::size_t classes = 128; // blocks up to 2 KiB are recycled
    // At most this many bytes wait in a thread's cache. Enough for a burst of a few hundred
    // thousand tasks to be recycled whole: handing such a burst back to malloc lets it trim the
    // heap, and the next burst page-faults it all in again (measured: 2.5x slower gather).
    static constexpr std::size_t max_cached_bytes = std::size_t{32} << 20;

    struct Block {
        Block* next;
    };

    Block* free[classes];
    std::size_t cached_bytes; // total size of the blocks in free[]
    bool owner_registered;    // FrameCacheOwner exists for this thread
    bool dead;                // the thread is exiting: free straight to the system
};

inline thread_local constinit FrameCache frame_cache{};

/// Size class of a block: 0 for up to 8 bytes, 1 for 9..24, 2 for 25..40, ...
constexpr std::size_t frame_size_class(std::size_t size) noexcept {
    return (size + 7) / 16;
}

/// Bytes in a block of class cls.
constexpr std::size_t frame_class_size(std::size_t cls) noexcept {
    return cls * 16 + 8;
}

/// Slow paths, out of line: first use on a thread, full class, thread exit.
void frame_cache_register_owner() noexcept;

/// Fault seam (tests): while on, the calling thread's frame cache is empty and keeps nothing, so
/// every frame allocation on this thread goes to sys.allocate and can be made to fail. Costs
/// nothing on the allocation fast path: it only makes the cache look empty and full.
void frame_cache_bypass(bool on) noexcept;

/// ::operator delete with the size when the compiler declares it (Clang before 19 needs
/// -fsized-deallocation for that), without it otherwise.
inline void free_block(void* p, [[maybe_unused]] std::size_t size) noexcept {
#if defined(__cpp_sized_deallocation)
    ::operator delete(p, size);
#else
    ::operator delete(p);
#endif
}

/// Allocates size bytes, reusing a block freed earlier on this thread when one fits, else from
/// sys.allocate (::operator new unless a test replaced it).
/// Throws std::bad_alloc like operator new.
inline void* frame_allocate(std::size_t size) {
#if CORING_FRAME_RECYCLING
    std::size_t cls = frame_size_class(size);
    if (cls < FrameCache::classes) {
        FrameCache& c = frame_cache;
        if (FrameCache::Block* b = c.free[cls]) {
            c.free[cls] = b->next;
            c.cached_bytes -= frame_class_size(cls);
            return b;
        }
        return sys.allocate(frame_class_size(cls));
    }
#endif
    return sys.allocate(size);
}

/// Returns a block from frame_allocate; size must be the size it was allocated with.
inline void frame_deallocate(void* p, std::size_t size) noexcept {
#if CORING_FRAME_RECYCLING
    std::size_t cls = frame_size_class(size);
    if (cls < FrameCache::classes) {
        FrameCache& c = frame_cache;
        if (c.cached_bytes < FrameCache::max_cached_bytes && !c.dead) {
            if (!c.owner_registered) [[unlikely]] {
                frame_cache_register_owner();
            }
            auto* b = static_cast<FrameCache::Block*>(p);
            b->next = c.free[cls];
            c.free[cls] = b;
            c.cached_bytes += frame_class_size(cls);
            return;
        }
        free_block(p, frame_class_size(cls));
        return;
    }
#endif
    free_block(p, size);
}

/// Base for types whose instances should come from the frame allocator.
struct FrameAllocated {
    static void* operator new(std::size_t size) { return frame_allocate(size); }

    static void operator delete(void* p, std::size_t size) noexcept { frame_deallocate(p, size); }
};

} // namespace coring::detail
