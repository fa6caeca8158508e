// SPDX-License-Identifier: MIT
// StreamTransport of kind memory: one end of an in-memory stream pair (testing::open_stream_pair).
// A write lands in the other end's reader buffer at the next flush, without a socket; a receiving
// buffer takes up to twice its limit, and more whenever its reader waits. Pieces beyond that (or
// beyond MemoryLinkOptions::chunk) go when the receiving reader next waits for data.
#include <coring/errors.hpp>

#include <coring/detail/stream_transport.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <memory>

namespace coring::detail {

void StreamTransport::link_memory(StreamTransport& a,
                                  StreamTransport& b,
                                  const MemoryLinkOptions& a_to_b,
                                  const MemoryLinkOptions& b_to_a) {
    if (a.kind_ != TransportKind::memory || b.kind_ != TransportKind::memory || &a == &b) {
        throw ValueError("link_memory: two distinct transports of kind memory are needed");
    }
    if (a.mem_ != nullptr || b.mem_ != nullptr) {
        throw ValueError("link_memory: a transport is linked already");
    }
    if (a.loop_ == nullptr || a.loop_ != b.loop_) {
        throw ValueError("link_memory: the two ends must be on the same open loop");
    }
    a.mem_ = std::make_unique<MemoryLink>(MemoryLink{&b, a_to_b});
    b.mem_ = std::make_unique<MemoryLink>(MemoryLink{&a, b_to_a});
}

void StreamTransport::flush_memory_entry(FlushNode* node) noexcept {
    static_cast<StreamTransport*>(node)->flush_memory();
}

void StreamTransport::flush_memory() noexcept {
    if (loop_ == nullptr || close_ == CloseState::closed) {
        return;
    }
    if (!conn_lost_ && !aborted_) {
        StreamTransport* to = mem_ != nullptr ? mem_->peer : nullptr;
        // Bytes to deliver, or a reader that waits (an injected reset may be due).
        if (!wbuf_.empty() || (to != nullptr && mem_->wanted)) {
            if (to == nullptr) {
                memory_peer_gone();
                return;
            }
            if (!deliver_memory(*to)) {
                return; // the rest goes when the peer's reader waits for more
            }
        }
        if (eof_requested_ && !eof_sent_ && close_ == CloseState::open) {
            eof_sent_ = true; // write_eof: EOF for the peer's reader, the other way stays open
            if (to != nullptr && !to->eof_) {
                to->feed_eof();
            }
        }
    }
    if (close_ == CloseState::closing) {
        unlink_memory(); // EOF for the peer
        finish_close();  // releases close()'s reference: may destroy this
    }
}

bool StreamTransport::deliver_memory(StreamTransport& to) noexcept {
    MemoryLink& m = *mem_;
    using Failure = MemoryLinkOptions::Failure;
    const bool injected = m.options.failure != Failure::none;
    if (injected && m.options.budget == 0) {
        if (m.options.failure == Failure::drop_peer) {
            if (!m.failed) {
                m.failed = true; // a budget of 0: the peer goes at the first write
                to.close();
            }
            return wbuf_.empty(); // the peer's close makes this end's writes fail
        }
        if (m.failed) {
            wbuf_.clear(); // reset: nobody reads this direction any more
            maybe_resume_writing();
            return true;
        }
        if (!m.wanted || !to.reading_) {
            return wbuf_.empty(); // the reset happens when the reader next waits for data
        }
        m.failed = true;
        wbuf_.clear();
        maybe_resume_writing();
        try {
            to.set_exception(std::make_exception_ptr(ConnectionResetError(
                    ECONNRESET, "recv (in-memory stream pair: reset by the injected failure)")));
        } catch (...) {
            to.set_exception(std::current_exception());
        }
        return true;
    }
    if (to.eof_) {
        if (wbuf_.empty()) {
            return true;
        }
        memory_peer_gone(); // the other end closed (or its reader was fed EOF by hand)
        return false;
    }
    const std::size_t cap = to.limit_ > max_io ? 2 * max_io : 2 * to.limit_;
    const std::size_t have = to.rbuf_.size();
    std::size_t room = have < cap ? cap - have : 0;
    if (room == 0 && to.reading_) {
        room = max_read_ahead; // a waiting reader takes more (asyncio resumes reading then)
    }
    std::size_t n = std::min(wbuf_.size(), room);
    if (m.options.chunk != 0) {
        n = std::min(n, m.options.chunk);
    }
    if (injected) {
        n = std::min(n, m.options.budget);
    }
    if (n == 0) {
        return wbuf_.empty();
    }
    try {
        to.rbuf_.append(wbuf_.data(), n);
    } catch (...) {
        return false; // out of memory: the bytes stay here for the next attempt
    }
    wbuf_.consume(n);
    m.wanted = false;
    to.feed_waiters_.notify_all();
    maybe_resume_writing();
    if (injected) {
        m.options.budget -= n;
        if (m.options.budget == 0 && m.options.failure == Failure::drop_peer) {
            // The receiving end goes away: its reader sees EOF after these bytes, it closes,
            // and this end's later writes fail.
            m.failed = true;
            to.close();
        }
    }
    return wbuf_.empty();
}

void StreamTransport::memory_wants_data() noexcept {
    StreamTransport* from = mem_->peer;
    if (from != nullptr && from->loop_ != nullptr) {
        from->mem_->wanted = true;
        detail::LoopAccess::defer_flush(*from->loop_, *from);
    }
}

void StreamTransport::memory_peer_gone() noexcept {
    std::exception_ptr e;
    try {
        e = make_os_error(EPIPE, "send (in-memory stream pair): the peer has closed");
    } catch (...) {
        e = std::current_exception();
    }
    lose_connection(std::move(e), false); // the reader keeps what it received, then sees EOF
}

void StreamTransport::unlink_memory() noexcept {
    if (mem_ == nullptr || mem_->peer == nullptr) {
        return;
    }
    StreamTransport& p = *mem_->peer;
    mem_->peer = nullptr;
    p.mem_->peer = nullptr;
    if (!p.eof_) {
        p.feed_eof(); // a closed connection is EOF for the other end
    }
    if (!p.wbuf_.empty() && p.loop_ != nullptr) {
        // its unsent bytes have nowhere to go: its writes fail now
        detail::LoopAccess::defer_flush(*p.loop_, p);
    }
}

} // namespace coring::detail
