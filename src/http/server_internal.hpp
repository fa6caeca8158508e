// SPDX-License-Identifier: MIT
// The HTTP server's machinery: the router behind App, one connection's request loop, and the
// state a running server shares with its connections.
#pragma once

#include <coring/event.hpp>
#include <coring/event_loop.hpp>
#include <coring/http/server.hpp>
#include <coring/task.hpp>

#include <coring/detail/intrusive_list.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace coring::http::detail {

/// Routes, middleware and hooks of an App.
class RouterImpl {
public:
    struct Segment {
        std::string text; // the literal, or the parameter's name
        bool param;
    };

    struct Route {
        std::string method;
        std::string pattern;
        std::vector<Segment> segments;
        Handler handler;
    };

    /// Finds the route for req (filling its path parameters) and runs it; 404 / 405 otherwise.
    Task<Response> dispatch(Request& req) const;

    struct Hash {
        using is_transparent = void;

        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };

    std::vector<Route> routes_;
    // Routes without parameters by path, and the others in the order they were added.
    std::unordered_map<std::string, std::vector<std::size_t>, Hash, std::equal_to<>> static_;
    std::vector<std::size_t> dynamic_;
    std::vector<Middleware> middleware_;

    /// One lifespan hook, or a lifespan() pair (both set).
    struct Hook {
        std::function<Task<>()> startup;
        std::function<Task<>()> shutdown;
    };

    std::vector<Hook> hooks_; // in the order added
};

struct ServerShared;

/// One client connection: parses requests from its buffer, runs them through the App and
/// writes the responses in order (keep-alive, pipelining).
class Connection : public coring::detail::ListHook<> {
public:
    /// What the connection is doing, for the timeout sweep and graceful shutdown.
    enum class Phase : std::uint8_t {
        idle,    // waiting for a request's first byte (keepalive_timeout)
        head,    // a request's head is arriving (header_timeout)
        body,    // the handler reads the body (body_timeout)
        handler, // the handler runs; no deadline
        send,    // a response is being sent (send_timeout while it makes no progress)
        linger,  // closing: the rest of an unread body is dropped (linger_timeout)
    };

    Connection(ServerShared& server, StreamReader reader, StreamWriter writer);
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    /// The request loop; returns when the connection is done.
    Task<> run();

    /// Request::body's work: the body, received on the first call, then the same again.
    Task<std::string> read_body();

    /// Expires the connection's deadline if it has passed (the server's sweep calls it).
    void check_deadline(std::chrono::steady_clock::time_point now) noexcept;

    /// Graceful shutdown: idle connections close now, busy ones after their response.
    void begin_shutdown() noexcept;

    /// Cancels the connection's task (shutdown past its deadline).
    void abort() noexcept;

    Phase phase_ = Phase::idle;

private:
    Task<bool> read_more(std::size_t min_free);
    void set_phase(Phase p, std::chrono::milliseconds timeout) noexcept;
    Task<> write_response(Request& req, Response& resp, bool keep_alive);
    Task<> send_error(int status, const char* reason);
    void skip_buffered_body();
    Task<bool> discard_rest();
    Task<> linger();
    Task<std::string> receive_body();
    void serialize_head(const Request& req,
                        const Response& resp,
                        bool keep_alive,
                        std::size_t length,
                        bool chunked);

    // The send phase's progress as the last sweep saw it (check_deadline).
    struct SendMark {
        std::size_t buffered = 0; // the writer's buffer
        int queued = 0;           // unsent bytes in the kernel's socket buffer (SIOCOUTQ)
        std::uint64_t spliced = 0;

        bool operator==(const SendMark&) const = default;
    };

    SendMark send_mark() const noexcept;

    ServerShared& server_;
    StreamReader reader_;
    StreamWriter writer_;
    SocketAddress peer_;
    TaskHandle<> task_;
    std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
    bool timed_out_ = false;
    bool closing_ = false; // graceful shutdown: answer what is in flight, then close
    bool abort_ = false;   // leave with abort(): what is buffered would never be taken
    bool splicing_ = false;
    std::uint64_t spliced_ = 0; // bytes a file body moved to the socket
    SendMark last_send_{};

    // The read buffer: bytes [0, len_) received; the current request's head starts at 0.
    std::string buf_;
    std::size_t len_ = 0;
    std::vector<HeaderField> fields_;
    RequestHead head_;

    // The current request's body: the bytes after the head at body_at_ (in buf_), how many
    // remain to be received (length framing) or the chunked decoder.
    std::size_t body_at_ = 0;
    std::uint64_t body_left_ = 0;
    ChunkedDecoder chunked_;
    bool body_done_ = true;
    bool body_taken_ = false;
    std::string body_;              // the body read_body returned (for a second call)
    std::exception_ptr body_error_; // or the HttpError it threw
    bool continue_sent_ = false;

    std::string out_; // a response's head (and small body), sent with one write
};

/// What a running server's connections share.
struct ServerShared {
    const App* app;
    ServeOptions options;
    std::string server_header; // options.server_header's bytes (the option is a view)
    EventLoop* loop;
    coring::detail::IntrusiveList<Connection> connections;
    std::size_t count = 0; // open connections
    bool shutting_down = false;
    Event all_closed; // set when count drops to 0 during shutdown
    TimerHandle sweep;
};

} // namespace coring::http::detail
