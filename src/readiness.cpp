// SPDX-License-Identifier: MIT
// add_reader / add_writer / remove_reader / remove_writer (asyncio's selector loop) on io_uring
// multishot polls, and the error text of wait_readable / wait_writable.
#include <coring/event_loop.hpp>
#include <coring/readiness.hpp>

#include <coring/detail/frame_allocator.hpp>
#include <coring/detail/intrusive_list.hpp>

#include <fmt/format.h>
#include <liburing.h>

#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <exception>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace coring {

namespace detail {

std::string readiness_target(const char* op, int fd) {
    return fmt::format("{} fd {}", op, fd);
}

// The registrations of one loop, created by its first add_reader/add_writer.
//
// Each registration (a Watch) is one multishot IORING_OP_POLL_ADD: one SQE however many events
// it reports. The poll is bound to the open file the fd referred to when it was armed, not to
// the fd number (io_uring holds a reference to the file), which is what keeps a registration
// whose fd was closed from ever watching a new file that reuses the number.
//
// Level-triggered semantics, as asyncio's selector loop (epoll without EPOLLET) has them: a
// callback that leaves data unread runs again on a later iteration. A multishot poll alone is
// edge-triggered (it posts a completion per wake-up of the file, and reading part of a pipe's
// data wakes nobody), and IORING_POLL_ADD_LEVEL does not help: kernel 6.18 rejects it with
// EINVAL (measured: multishot and one-shot alike). So after each callback the loop queues an
// IORING_OP_POLL_REMOVE with IORING_POLL_UPDATE_EVENTS for the same poll: the kernel re-arms
// the poll in place and checks the file again, posting a completion at once if it is still
// ready. The update rides on the next io_uring_enter (no extra system call) and, with
// IOSQE_CQE_SKIP_SUCCESS, posts nothing when the file is drained; a failed update (-ENOENT: the
// poll has ended; -EALREADY: a wake-up is being delivered, and with it a completion if the file
// is ready) needs nothing either. Alternatives measured on kernel 6.18 (eventfd ping, CPU time
// per event, noisy shared machine): update 6.4-7.7 us, one-shot poll re-armed after each
// callback 6.2-7.5 us, multishot plus a poll(2) check 6.3-7.4 us, edge-triggered multishot
// alone (incorrect) 4.9-5.7 us. The three correct ones cost the same, so the choice is made by
// semantics: a one-shot re-arm and poll(2) look the fd number up again on every event, so a
// registration whose fd was closed would silently start watching whichever file reuses the
// number; the in-place update keeps watching the original file.
class Readiness final : public LoopResource {
public:
    explicit Readiness(EventLoop& loop) noexcept
        : loop_(&loop),
          skip_success_((detail::LoopAccess::ring(loop).features() & IORING_FEAT_CQE_SKIP) != 0) {}

    Readiness(const Readiness&) = delete;
    Readiness& operator=(const Readiness&) = delete;

    ~Readiness() = default;

    // Takes callback's reference, also when it throws.
    void add(int fd, bool writer, HandleState* callback);

    bool remove(int fd, bool writer) noexcept;

    void on_loop_close() noexcept override;

private:
    struct WatchTag {};

    // One registration, and the memory its poll's user_data points at. Lives until the kernel
    // has handed the poll back and no ready entry refers to it, even after it was removed.
    struct Watch final : Completion, FrameAllocated, ListHook<WatchTag> {
        Readiness* owner = nullptr;
        HandleState* handle = nullptr; // the callback (one reference) while registered
        std::uint64_t dev = 0;         // identity of the file watched (st_dev, st_ino)
        std::uint64_t ino = 0;
        int fd = -1;
        unsigned events = 0;      // POLLIN or POLLOUT
        bool in_kernel = false;   // the multishot poll is in flight
        bool cancel_sent = false; // its cancel is queued
        bool queued = false;      // a ready entry refers to it, or its callback is running
    };

    struct Slot {
        Watch* watch[2] = {nullptr, nullptr}; // reader, writer
    };

    static void on_complete(Completion* c, int res, unsigned flags) noexcept;
    static void run_entry(void* self, bool discard) noexcept;

    void arm(Watch& w);
    void recheck(Watch& w) noexcept;
    void rearm_after_end(Watch& w) noexcept;
    void detach(Watch& w) noexcept;
    void maybe_free(Watch& w) noexcept;
    void report(const std::string& message, std::exception_ptr e) noexcept;

    EventLoop* loop_;
    std::vector<Slot> slots_;                // indexed by fd
    IntrusiveList<Watch, WatchTag> watches_; // every live Watch, removed ones included
    bool skip_success_;                      // IOSQE_CQE_SKIP_SUCCESS is available
};

namespace {

const char* add_name(bool writer) noexcept {
    return writer ? "add_writer" : "add_reader";
}

} // namespace

void Readiness::add(int fd, bool writer, HandleState* callback) {
    struct stat st {};

    int err = 0;
    if (fd < 0 || ::fstat(fd, &st) != 0) {
        err = fd < 0 ? EBADF : errno;
    } else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
        // Always "ready" to poll(2); epoll, and so asyncio's selector loop, refuses them.
        err = EPERM;
    }
    if (err != 0) {
        callback->release();
        throw_os_error(err, readiness_target(add_name(writer), fd));
    }
    Watch* fresh = nullptr;
    try {
        if (static_cast<std::size_t>(fd) >= slots_.size()) {
            slots_.resize(std::max(static_cast<std::size_t>(fd) + 1, slots_.size() * 2));
        }
        Watch*& current = slots_[static_cast<std::size_t>(fd)].watch[writer ? 1 : 0];
        // A registration for this fd number is replaced by a new poll even when it might watch
        // the same file: a stale one (its fd closed and the number reused) watches the old file,
        // and nothing cheap tells the two apart (eventfds, timerfds and signalfds all share one
        // anonymous inode, so even st_dev/st_ino match). Re-adding costs a cancel and a poll.
        fresh = new Watch;
        fresh->complete = &Readiness::on_complete;
        fresh->owner = this;
        fresh->fd = fd;
        fresh->events = writer ? POLLOUT : POLLIN;
        fresh->dev = st.st_dev;
        fresh->ino = st.st_ino;
        arm(*fresh);
        fresh->handle = callback;
        watches_.push_back(*fresh);
        if (current != nullptr) {
            detach(*current); // asyncio cancels the replaced handle: its queued call is dropped
        }
        current = fresh;
    } catch (...) {
        delete fresh; // never armed: arm() is the only step that can fail after new
        callback->release();
        throw;
    }
}

bool Readiness::remove(int fd, bool writer) noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= slots_.size()) {
        return false;
    }
    Watch*& current = slots_[static_cast<std::size_t>(fd)].watch[writer ? 1 : 0];
    if (current == nullptr) {
        return false;
    }
    detach(*std::exchange(current, nullptr));
    return true;
}

void Readiness::arm(Watch& w) {
    Ring& ring = detail::LoopAccess::ring(*loop_);
    io_uring_sqe* sqe = ring.get_sqe();
    io_uring_prep_poll_multishot(sqe, w.fd, w.events);
    ring.track(sqe, &w);
    w.in_kernel = true;
    w.cancel_sent = false;
}

// Asks the kernel to look at the file again (see the class comment).
void Readiness::recheck(Watch& w) noexcept {
    try {
        io_uring_sqe* sqe = detail::LoopAccess::ring(*loop_).get_sqe();
        io_uring_prep_poll_update(
                sqe, reinterpret_cast<std::uint64_t>(&w), 0, w.events, IORING_POLL_UPDATE_EVENTS);
        io_uring_sqe_set_data64(sqe, ignored_user_data);
        if (skip_success_) {
            sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        }
    } catch (...) {
        report("coring: could not re-check a watched fd", std::current_exception());
    }
}

// The multishot poll ended on its own with a result (the kernel ends one when it cannot post a
// completion because the CQ is full): arm a new one, but only on the same file. If the fd was
// closed, or its number now refers to another file, the registration stays unarmed until it is
// removed or replaced. (st_dev/st_ino cannot tell one eventfd, timerfd or signalfd from another:
// they share an anonymous inode. For those a closed and reused number is re-armed on the new
// file, in this rare path only.)
void Readiness::rearm_after_end(Watch& w) noexcept {
    struct stat st {};

    if (::fstat(w.fd, &st) != 0 || st.st_dev != w.dev || st.st_ino != w.ino) {
        return;
    }
    try {
        arm(w);
    } catch (...) {
        report(fmt::format("coring: could not re-arm the poll of fd {}", w.fd),
               std::current_exception());
    }
}

// Unregisters w: drops the callback and cancels the poll. w itself lives on until the kernel
// hands the poll back.
void Readiness::detach(Watch& w) noexcept {
    if (w.handle != nullptr) {
        std::exchange(w.handle, nullptr)->release();
    }
    if (w.in_kernel && !w.cancel_sent) {
        w.cancel_sent = true;
        try {
            detail::LoopAccess::ring(*loop_).cancel(&w);
        } catch (...) {
            // Only a dead ring refuses an SQE; the poll then ends when the loop closes.
        }
    }
    maybe_free(w);
}

void Readiness::maybe_free(Watch& w) noexcept {
    if (w.handle == nullptr && !w.in_kernel && !w.queued) {
        decltype(watches_)::remove(w);
        delete &w;
    }
}

void Readiness::report(const std::string& message, std::exception_ptr e) noexcept {
    loop_->call_exception_handler({message, std::move(e), {}, {}});
}

void Readiness::on_complete(Completion* c, int res, unsigned flags) noexcept {
    auto& w = static_cast<Watch&>(*c);
    Readiness& self = *w.owner;
    if ((flags & IORING_CQE_F_MORE) == 0) {
        w.in_kernel = false;
    }
    if (w.handle == nullptr) {
        self.maybe_free(w); // removed or replaced: the poll's last completion frees it
        return;
    }
    if (res >= 0) {
        // Ready: one ready entry per registration at a time, in completion order.
        if (!w.queued) {
            w.queued = true;
            detail::LoopAccess::schedule(*self.loop_, {&Readiness::run_entry, &w});
        }
        if (!w.in_kernel) {
            self.rearm_after_end(w);
        }
        return;
    }
    // The poll failed and has ended: report it once and leave the registration unarmed (re-arming
    // would fail the same way); remove_reader/remove_writer still find it.
    try {
        std::string what = readiness_target(w.events == POLLIN ? "add_reader" : "add_writer", w.fd);
        self.report(fmt::format("coring: polling failed ({})", what),
                    std::make_exception_ptr(
                            std::system_error(-res, std::system_category(), std::move(what))));
    } catch (...) {
        self.report("coring: polling a watched fd failed", std::current_exception());
    }
}

void Readiness::run_entry(void* self, bool discard) noexcept {
    auto& w = *static_cast<Watch*>(self);
    if (discard) {
        w.queued = false; // the loop is closing; on_loop_close frees every Watch
        return;
    }
    Readiness& r = *w.owner;
    if (HandleState* h = w.handle) {
        // Run it as call_soon runs a handle (exceptions to the handler, debug timing). w.queued
        // stays set meanwhile, so a callback that removes its own registration cannot free w.
        h->add_ref();
        HandleState::run_entry(h, false);
        if (w.handle != nullptr && w.in_kernel && !w.cancel_sent) {
            r.recheck(w); // still registered: level-triggered, so look at the file again
        }
    }
    w.queued = false;
    r.maybe_free(w);
}

void Readiness::on_loop_close() noexcept {
    // EventLoop::close() drained the ring before closing resources: no poll is in the kernel,
    // and the ready queue was emptied.
    while (Watch* w = watches_.pop_front()) {
        if (w->handle != nullptr) {
            w->handle->release();
        }
        delete w;
    }
    loop_->readiness_ = nullptr;
    delete this;
}

} // namespace detail

void EventLoop::add_fd_callback(int fd, bool writer, detail::HandleState* callback) {
    if (readiness_ == nullptr) {
        try {
            readiness_ = new detail::Readiness(*this);
        } catch (...) {
            callback->release();
            throw;
        }
        detail::LoopAccess::register_resource(*this, *readiness_);
    }
    readiness_->add(fd, writer, callback);
}

bool EventLoop::remove_fd_callback(int fd, bool writer) noexcept {
    return readiness_ != nullptr && readiness_->remove(fd, writer);
}

} // namespace coring
