// SPDX-License-Identifier: MIT
// Thread-exit cleanup for the frame allocator's per-thread cache.
#include <coring/detail/frame_allocator.hpp>

namespace coring::detail {

namespace {

// Frees the thread's cached blocks when the thread exits. Blocks freed after that go straight
// to the system (FrameCache::dead).
struct FrameCacheOwner {
    ~FrameCacheOwner() {
        FrameCache& c = frame_cache;
        c.dead = true;
        c.cached_bytes = 0;
        for (std::size_t cls = 0; cls < FrameCache::classes; ++cls) {
            while (FrameCache::Block* b = c.free[cls]) {
                c.free[cls] = b->next;
                free_block(b, frame_class_size(cls));
            }
        }
    }
};

} // namespace

void frame_cache_bypass(bool on) noexcept {
    FrameCache& c = frame_cache;
    for (std::size_t cls = 0; cls < FrameCache::classes; ++cls) {
        while (FrameCache::Block* b = c.free[cls]) {
            c.free[cls] = b->next;
            free_block(b, frame_class_size(cls));
        }
    }
    // A cache at its limit keeps no freed block; an empty one serves no allocation.
    c.cached_bytes = on ? FrameCache::max_cached_bytes : 0;
}

void frame_cache_register_owner() noexcept {
    static thread_local FrameCacheOwner owner;
    frame_cache.owner_registered = true;
}

} // namespace coring::detail
