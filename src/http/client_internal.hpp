// SPDX-License-Identifier: MIT
// The HTTP client's machinery: a session's curl multi handle driven by the loop (SessionState)
// and one request's state (Transfer), shared by client.cpp and transfer.cpp.
#pragma once

#include <coring/event.hpp>
#include <coring/event_loop.hpp>
#include <coring/http/client.hpp>

#include <coring/detail/intrusive_list.hpp>

#include <curl/curl.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace coring::http::detail {

class SessionState;

/// One request from start to its body's end. Owned by the request's coroutine, then by its
/// ClientResponse; linked in its session while the session knows it.
struct WaitingTag;

class Transfer : public coring::detail::ListHook<>, public coring::detail::ListHook<WaitingTag> {
public:
    Transfer(SessionState& s, std::string method, std::string url);
    Transfer(const Transfer&) = delete;
    Transfer& operator=(const Transfer&) = delete;
    /// Stops the transfer if it is still running (its connection is then closed, not reused).
    ~Transfer();

    /// "GET http://host/path": how errors name this request.
    std::string label() const { return method_ + " " + url_; }

    /// Body bytes buffered and not yet read.
    std::size_t buffered() const noexcept { return buf_.size() - buf_off_; }

    /// Moves up to n buffered bytes out (resuming a paused transfer once the buffer drains).
    std::string take(std::size_t n);

    /// Waits until more body bytes, the end or an error arrive. Cancellation: loses nothing.
    [[nodiscard]] EventAwaiter wait_data() noexcept {
        data_.clear();
        return data_.wait();
    }

    /// Stops the transfer with `error` (for the awaiter of the headers or the body's reader).
    void fail(std::exception_ptr error) noexcept;

    /// curl finished the transfer with `code`.
    void complete(CURLcode code) noexcept;

    /// Starts the sock_read timer (when the request has one), counting from now.
    void start_read_timer() noexcept;

    /// Takes the easy handle out of the multi handle and gives it back to the session's pool.
    void detach() noexcept;

    // curl callbacks (CURLOPT_HEADERFUNCTION, CURLOPT_WRITEFUNCTION).
    static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* self) noexcept;
    static std::size_t on_write(char* data, std::size_t size, std::size_t n, void* self) noexcept;

    SessionState* session_;                    // null once the session is closed
    std::unique_ptr<RequestSpec> queued_spec_; // set while waiting for a slot (limit)
    CURL* easy_ = nullptr;                     // null once finished or stopped
    curl_slist* request_headers_ = nullptr;
    std::string method_;
    std::string url_;
    std::string body_; // the request body, alive while curl sends it
    char errbuf_[CURL_ERROR_SIZE] = {};

    // The response, filled by on_header.
    int status_ = 0;
    std::string reason_;
    std::string version_;
    Headers headers_;
    bool follow_ = true;
    bool plain_ = true; // a GET without body: the easy handle needs no reset for the next one
    int max_redirects_ = 10;
    std::string final_url_;
    int redirects_ = 0;

    // States: headers_done_ false until the final response's headers are in; then the body
    // streams through buf_ until eof_ (complete) or error_ (failed).
    bool headers_done_ = false;
    bool eof_ = false;
    bool paused_ = false; // curl is paused because buf_ holds read_buffer bytes
    std::exception_ptr error_;
    Event ready_; // headers in, or failed before them
    Event data_;  // body bytes, the end or an error

    std::string buf_;
    std::size_t buf_off_ = 0;

    // sock_read: the longest pause between two pieces from the server; 0 = none.
    std::chrono::milliseconds sock_read_{0};
    std::chrono::steady_clock::time_point last_data_;
    TimerHandle read_timer_;

private:
    void end_of_header_block() noexcept;
    void headers_complete() noexcept;
    void arm_read_timer() noexcept;
    void check_read_timeout() noexcept;
};

/// A watched socket of curl's (curl_multi_assign'ed to it): the generation tells a callback of a
/// socket curl closed from one of a new socket with the same number.
struct SocketEntry {
    int fd;
    std::uint64_t generation;
    bool reading = false; // an add_reader registration of this entry exists
    bool writing = false;
};

/// A session's curl multi handle on one loop: the socket and timer callbacks turn curl's wishes
/// into add_reader / add_writer registrations and one loop timer; readiness and the timer call
/// curl_multi_socket_action; finished transfers resume their tasks.
class SessionState {
public:
    SessionState(EventLoop& loop, ClientOptions options);
    SessionState(const SessionState&) = delete;
    SessionState& operator=(const SessionState&) = delete;
    ~SessionState();

    /// Starts a request. Throws: InvalidUrl, ClientError when closed.
    std::unique_ptr<Transfer>
    start(const std::string& method, const std::string& url, RequestSpec& options);

    /// Stops every transfer with "session closed".
    void close() noexcept;

    /// Gives t an easy handle and hands it to curl. Throws: ValueError, ClientError.
    void admit(Transfer& t, RequestSpec& o);

    /// Admits waiting transfers while fewer than `limit` are in curl (at most kBurst per loop
    /// iteration; the rest from a call_soon callback).
    void admit_waiting() noexcept;
    bool has_slot() const noexcept;
    bool burst_allows() noexcept;
    /// Admits waiting transfers from a call_soon callback.
    void schedule_pump() noexcept;
    static constexpr std::size_t kBurst = 32;

    /// Returns an easy handle to the pool; clean: it has only base_setup's and setup's
    /// per-request options, so the next request need not reset it.
    void recycle(CURL* easy, bool clean) noexcept;

    /// Runs curl on readiness of fd (or its timeout with CURL_SOCKET_TIMEOUT), then finishes
    /// what completed.
    void socket_action(curl_socket_t fd, int events) noexcept;

    std::vector<std::string> cookies() const;

    EventLoop& loop_;
    ClientOptions options_;
    CURLM* multi_ = nullptr;
    CURLSH* share_ = nullptr;

    struct Pooled {
        CURL* easy;
        bool clean;
    };

    std::vector<Pooled> pool_;           // idle easy handles
    curl_slist* base_headers_ = nullptr; // the session's headers and User-Agent
    coring::detail::IntrusiveList<Transfer> transfers_;
    coring::detail::IntrusiveList<Transfer, WaitingTag> waiting_; // started past `limit`
    std::size_t active_ = 0;                                      // transfers in the multi handle
    bool closed_ = false;
    bool in_curl_ = false; // inside curl_multi_socket_action (and so maybe in a callback)

private:
    static int on_socket(CURL* easy, curl_socket_t fd, int what, void* self, void* entry) noexcept;
    static int on_timer(CURLM* multi, long timeout_ms, void* self) noexcept;
    void watch(SocketEntry& e, bool read, bool write) noexcept;
    void drain_done() noexcept;
    void base_setup(CURL* easy) noexcept;
    void setup(CURL* easy, Transfer& t, const std::string& method, RequestSpec& o);

    std::vector<SocketEntry*> sockets_; // by fd: the entry whose registrations are current
    std::uint64_t generation_ = 0;
    Handle timer_;
    bool timer_armed_ = false; // timer_ is scheduled and has not run
    Handle pump_;
    bool pump_scheduled_ = false;
    std::uint64_t burst_iteration_ = ~std::uint64_t{0};
    std::size_t burst_ = 0; // transfers handed to curl in loop iteration burst_iteration_
    std::chrono::steady_clock::time_point timer_due_{};
};

/// Turns curl's failure into the client's exception, naming the request.
std::exception_ptr make_error(const Transfer& t, CURLcode code);

} // namespace coring::http::detail
