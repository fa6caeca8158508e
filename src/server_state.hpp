// SPDX-License-Identifier: MIT
// ServerState: what a Server shares with its accept operations and its connections
// (asyncio.base_events.Server and the selector loop's _accept_connection).
#pragma once

#include <coring/event_loop.hpp>
#include <coring/net/socket.hpp>
#include <coring/streams.hpp>

#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/owned_op.hpp>
#include <coring/detail/stream_transport.hpp>
#include <coring/detail/timer_heap.hpp>
#include <coring/detail/wait_queue.hpp>

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace coring::detail {

/// Reference counted (loop thread only) by Server handles (one reference for all of them),
/// by each accept in flight, each retry timer and each open connection. handles_ counts the
/// Server copies: when the last goes, the server closes.
class ServerState final : public LoopResource {
public:
    /// One listening socket and its accept operation.
    struct Listener final : TimerNode {
        Listener(ServerState& s, int listen_fd) noexcept;

        void on_accept(int res, unsigned flags) noexcept;

        ServerState* server;
        int fd;         // the listening socket (owned by sockets_ or closing)
        Socket closing; // the socket, moved here by close() until its accept ends
        OwnedOp<Listener, &Listener::on_accept, true> accept_op{this}; // single or multishot
        bool multishot = false;     // the accept in flight is multishot
        bool retry_pending = false; // the retry timer is queued
    };

    ServerState(EventLoop& loop,
                ClientConnectedCallback callback,
                const ServerOptions& options,
                std::vector<Socket> sockets);

    ServerState(const ServerState&) = delete;
    ServerState& operator=(const ServerState&) = delete;

    void add_ref() noexcept { ++refs_; }

    void release() noexcept {
        if (--refs_ == 0) {
            delete this;
        }
    }

    void add_handle() noexcept { ++handles_; }

    /// The last Server handle went: close.
    void release_handle() noexcept;

    void start_serving();
    void close() noexcept;
    void close_clients() noexcept;
    void abort_clients() noexcept;

    /// Closed, listening sockets gone, no connection left (what wait_closed waits for).
    bool fully_closed() const noexcept {
        return closed_ && listeners_open_ == 0 && connections_.empty();
    }

    /// A connection's transport closed.
    void connection_closed(StreamTransport& t) noexcept;

    /// Removes the socket file of a Unix server when it closes.
    void set_unix_path(std::string path, dev_t dev, ino_t ino) {
        unix_path_ = std::move(path);
        unix_dev_ = dev;
        unix_ino_ = ino;
    }

    void on_loop_close() noexcept override;

    EventLoop* loop_;
    std::vector<Socket> sockets_;
    IntrusiveList<StreamTransport, ServerConnTag> connections_;
    WaitQueue closed_waiters_;  // wait_closed
    WaitQueue forever_waiters_; // serve_forever
    bool serving_ = false;
    bool closed_ = false;
    bool serving_forever_ = false;

private:
    ~ServerState();

    void arm(Listener& l) noexcept;
    /// Arms the listeners without an accept, as far as max_connections leaves room.
    void arm_idle_listeners() noexcept;
    /// Whether max_connections leaves room for one more accept in flight.
    bool below_limit() const noexcept;
    void accepted(int fd) noexcept;
    void accept_failed(Listener& l, int err) noexcept;
    void listener_done(Listener& l) noexcept;
    void maybe_wake_closed() noexcept;
    void report(const char* message, int err) noexcept;

    static void on_retry(TimerNode* node, bool discard) noexcept;

    ClientConnectedCallback callback_;
    std::shared_ptr<const TlsProvider> ssl_; // the server's own reference to options_.ssl
    ServerOptions options_;
    std::vector<std::unique_ptr<Listener>> listeners_;
    std::size_t listeners_open_ = 0; // listening fds not closed yet
    std::size_t accepts_in_flight_ = 0;
    std::size_t open_connections_ = 0; // connections_.size(), which walks the list
    std::uint32_t refs_ = 1;
    std::uint32_t handles_ = 1;
    std::string unix_path_;
    dev_t unix_dev_ = 0;
    ino_t unix_ino_ = 0;
};

} // namespace coring::detail
