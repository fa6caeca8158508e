// SPDX-License-Identifier: MIT
// The HTTP/1.1 server's connections (keep-alive, pipelining, bodies, limits, timeouts) and
// HttpServer / serve (startup, the timeout sweep, graceful shutdown).
#include <coring/errors.hpp>
#include <coring/file.hpp>
#include <coring/log.hpp>
#include <coring/shield.hpp>
#include <coring/signals.hpp>
#include <coring/wait.hpp>

#include <fmt/format.h>

#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <ctime>

#include "server_internal.hpp"
#include "splice.hpp"

namespace coring::http {

namespace detail {

namespace {

using Clock = std::chrono::steady_clock;

const char* reason_phrase(int status) noexcept {
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

// The Date header's value, formatted once per second (RFC 9110 IMF-fixdate).
std::string_view http_date() noexcept {
    thread_local std::time_t cached = 0;
    thread_local char text[32] = {};
    std::time_t now = std::time(nullptr);
    if (now != cached) {
        cached = now;
        std::tm tm{};
        gmtime_r(&now, &tm);
        std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    }
    return text;
}

bool no_body_status(int status) noexcept {
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

void append_number(std::string& out, std::uint64_t n) {
    char digits[24];
    char* end = digits + sizeof digits;
    char* p = end;
    do {
        *--p = static_cast<char>('0' + n % 10);
        n /= 10;
    } while (n != 0);
    out.append(p, static_cast<std::size_t>(end - p));
}

constexpr std::size_t kInitialBuffer = 1024;
constexpr std::size_t kInitialFields = 32;
// serialize_head's length for a body that ends with the connection (a stream to an HTTP/1.0
// client): neither Content-Length nor Transfer-Encoding.
constexpr std::size_t kUntilClose = static_cast<std::size_t>(-1);

} // namespace

Connection::Connection(ServerShared& server, StreamReader reader, StreamWriter writer)
    : server_(server), reader_(std::move(reader)), writer_(std::move(writer)) {
    if (auto p = writer_.peername()) {
        peer_ = *p;
    }
    // Most of a busy server's connections are idle keep-alive ones: once a response is sent
    // the transport's send buffer (4 KiB at least) goes back to the thread's pool, and the
    // next response takes one from there (a pool pop, no malloc).
    writer_.transport().set_release_send_buffers(true);
}

void Connection::set_phase(Phase p, std::chrono::milliseconds timeout) noexcept {
    phase_ = p;
    deadline_ = timeout.count() > 0 ? Clock::now() + timeout : Clock::time_point::max();
}

Connection::SendMark Connection::send_mark() const noexcept {
    SendMark m;
    m.buffered = writer_.get_write_buffer_size();
    m.spliced = spliced_;
    int fd = writer_.fd();
    if (fd < 0 || ::ioctl(fd, SIOCOUTQ, &m.queued) != 0) {
        m.queued = -1;
    }
    return m;
}

void Connection::check_deadline(Clock::time_point now) noexcept {
    if (phase_ == Phase::send && server_.options.send_timeout.count() > 0) {
        // The deadline is for a send that makes no progress: while nothing waits to be sent
        // (a streamed body's producer is busy) or the client takes bytes, it moves on.
        SendMark mark = send_mark();
        if ((mark.buffered == 0 && !splicing_) || !(mark == last_send_)) {
            last_send_ = mark;
            deadline_ = now + server_.options.send_timeout;
        }
    }
    if (phase_ != Phase::handler && now >= deadline_ && !timed_out_) {
        timed_out_ = true;
        task_.cancel();
    }
    if (phase_ == Phase::idle && len_ == 0) {
        // Idle keep-alive connections are most of a busy server's connections: they keep
        // only the read buffer the pending read fills. The field table and the response head
        // (1-2 KiB) are not in use between requests; the next request allocates them again.
        // Done here, not after each response, to keep mallocs off the busy path.
        std::vector<HeaderField>().swap(fields_);
        std::string().swap(out_);
    }
}

void Connection::begin_shutdown() noexcept {
    closing_ = true;
    if (phase_ == Phase::idle) {
        task_.cancel(); // nothing in flight: close now
    }
}

void Connection::abort() noexcept {
    abort_ = true;
    task_.cancel();
}

// Reads more bytes into buf_ (growing it up to the head limit). false at EOF. A read cut by
// the timeout sweep rethrows the cancellation with timed_out_ set.
Task<bool> Connection::read_more(std::size_t min_free) {
    if (buf_.size() - len_ < min_free) {
        std::size_t cap = server_.options.limits.max_head + 1;
        buf_.resize(std::max(len_ + min_free,
                             std::min(std::max(buf_.size() * 2, kInitialBuffer),
                                      std::max(cap, len_ + min_free))));
    }
    std::size_t n =
            co_await reader_.read_into(std::span<char>(buf_.data() + len_, buf_.size() - len_));
    len_ += n;
    co_return n > 0;
}

Task<> Connection::run() {
    task_ = current_task();
    server_.connections.push_back(*this);
    ++server_.count;

    struct Leave {
        Connection& c;

        ~Leave() {
            coring::detail::IntrusiveList<Connection>::remove(c);
            --c.server_.count;
            if (c.server_.count == 0 && c.server_.shutting_down) {
                c.server_.all_closed.set();
            }
            if (c.abort_) {
                c.writer_.abort(); // close() would wait for a client that takes nothing
            } else {
                c.writer_.close();
            }
        }
    } leave{*this};

    const ServeOptions& opt = server_.options;
    // (max_connections is the listener's: past it, start_server's Server accepts no more.)
    buf_.resize(kInitialBuffer);
    ParseError error;
    try {
        for (;;) {
            // 1. A request's head.
            set_phase(len_ == 0 ? Phase::idle : Phase::head,
                      len_ == 0 ? opt.keepalive_timeout : opt.header_timeout);
            ParseStatus status = ParseStatus::partial;
            for (;;) {
                if (len_ > 0) {
                    if (fields_.empty()) {
                        fields_.resize(kInitialFields); // released while idle (below)
                    }
                    status = parse_request_head(
                            std::string_view(buf_.data(), len_), fields_, opt.limits, head_, error);
                    if (status == ParseStatus::error && error.status == 431 &&
                        fields_.size() <= opt.limits.max_headers) {
                        fields_.resize(opt.limits.max_headers + 1);
                        continue;
                    }
                    if (status != ParseStatus::partial) {
                        break;
                    }
                }
                if (closing_ && len_ == 0) {
                    co_return;
                }
                bool got = co_await read_more(len_ == buf_.size() ? len_ : 1);
                if (!got) {
                    co_return; // EOF (between requests, or with half a head: nothing to answer)
                }
                if (phase_ == Phase::idle) {
                    set_phase(Phase::head, opt.header_timeout);
                }
            }
            if (status == ParseStatus::error) {
                co_await send_error(error.status, error.reason);
                co_return;
            }
            if (head_.version_minor == 1 && !RequestHeaders(head_.headers).contains("Host")) {
                // RFC 9112 3.2: a server must answer 400 to an HTTP/1.1 request without Host
                // (the parser leaves this check to the server).
                co_await send_error(400, "no Host header");
                co_return;
            }
            // 2. Its body's framing. A declared body over the limit is refused before reading.
            if (head_.framing == BodyFraming::length && head_.content_length > opt.max_body) {
                co_await send_error(413, "request body over max_body");
                co_return;
            }
            if (head_.framing == BodyFraming::chunked && buf_.size() - head_.head_size < 4096) {
                // Room to decode into without moving the head the handler's views point to.
                buf_.resize(head_.head_size + 16 * 1024);
                status = parse_request_head(
                        std::string_view(buf_.data(), len_), fields_, opt.limits, head_, error);
            }
            body_at_ = head_.head_size;
            body_left_ = head_.framing == BodyFraming::length ? head_.content_length : 0;
            body_done_ = head_.framing == BodyFraming::none ||
                         (head_.framing == BodyFraming::length && body_left_ == 0);
            body_taken_ = false;
            body_.clear();
            body_error_ = nullptr;
            continue_sent_ = false;
            if (head_.framing == BodyFraming::chunked) {
                chunked_ = ChunkedDecoder();
            }

            // 3. The handler.
            Request req;
            req.method = head_.method;
            req.target = head_.target;
            std::string_view origin = head_.target;
            if (std::size_t scheme = origin.find("://");
                !origin.empty() && origin.front() != '/' && scheme != std::string_view::npos) {
                // The absolute form ("GET http://host/path", RFC 9112 3.2.2: a server must
                // accept it): route on its path and query.
                std::size_t at = origin.find_first_of("/?", scheme + 3);
                origin = at == std::string_view::npos ? std::string_view() : origin.substr(at);
            }
            std::size_t q = origin.find('?');
            req.path = origin.substr(0, q);
            if (req.path.empty()) {
                req.path = "/";
            }
            if (q != std::string_view::npos) {
                req.query_string = origin.substr(q + 1);
            }
            req.version_minor = head_.version_minor;
            req.headers = RequestHeaders(head_.headers);
            req.conn_ = this;
            req.peer_ = &peer_;
            set_phase(Phase::handler, std::chrono::milliseconds(0));
            Response resp = co_await server_.app->handle(req);

            bool keep = head_.keep_alive && !closing_ && !server_.shutting_down;
            if (!body_done_) {
                // The handler left (part of) the body. What is buffered is skipped now; a rest
                // of at most max_discard bytes after the answer (keep-alive); a larger one, or
                // one the client holds back for a 100 Continue never sent, closes (uvicorn's
                // and aiohttp's choices): the answer never waits for the body.
                skip_buffered_body();
                keep = keep && head_.keep_alive; // (a malformed chunked body clears it)
                if (!body_done_) {
                    keep = keep && !(head_.expect_continue && !continue_sent_) &&
                           (head_.framing == BodyFraming::chunked || body_left_ <= opt.max_discard);
                }
            }
            co_await write_response(req, resp, keep);
            if (opt.access_log) {
                log(LogLevel::info,
                    fmt::format("{} \"{} {} HTTP/1.{}\" {}",
                                peer_.to_string(),
                                req.method,
                                req.target,
                                req.version_minor,
                                resp.status));
            }
            if (!body_done_) {
                // The rest of the unread body: skipped (bounded), or the connection closes.
                bool skipped = keep && head_.keep_alive && co_await discard_rest();
                if (!skipped) {
                    co_await linger();
                    co_return;
                }
            }
            if (!keep || !head_.keep_alive) {
                co_return; // (write_response clears keep_alive for a body framed by the close)
            }
            if (body_.capacity() > kInitialBuffer) {
                body_ = std::string(); // an idle connection keeps no body
            }
            // 4. Pipelined bytes move to the front: the next request starts there.
            std::size_t next = body_at_;
            std::memmove(buf_.data(), buf_.data() + next, len_ - next);
            len_ -= next;
            if (len_ == 0 && buf_.size() > 4 * kInitialBuffer) {
                buf_.resize(kInitialBuffer);
                buf_.shrink_to_fit();
            }
        }
    } catch (const CancelledError&) {
        if (!timed_out_) {
            throw; // shutdown past its deadline, or the server's own cancellation
        }
        task_.uncancel();
        timed_out_ = false;
        if (phase_ == Phase::send) {
            abort_ = true; // send_timeout: the client stopped reading
            co_return;
        }
    } catch (const std::system_error&) {
        co_return; // the client reset or went away
    } catch (const IncompleteReadError&) {
        co_return;
    }
    // The timeout sweep cut a read: 408 when a request had begun, silence when idle.
    if (phase_ == Phase::head || phase_ == Phase::body) {
        try {
            co_await send_error(408, "timeout");
        } catch (...) {
        }
    }
}

Task<std::string> Connection::read_body() {
    // Request::body() reads once; later calls (a middleware that logged the body, then the
    // handler's json()) get the same bytes, or the same error, as FastAPI's cached body.
    if (body_taken_) {
        if (body_error_) {
            std::rethrow_exception(body_error_);
        }
        co_return body_;
    }
    body_taken_ = true;
    try {
        body_ = co_await receive_body();
    } catch (const HttpError&) {
        body_error_ = std::current_exception();
        throw;
    }
    co_return body_;
}

Task<std::string> Connection::receive_body() {
    const ServeOptions& opt = server_.options;
    std::string body;
    if (body_done_) {
        co_return body;
    }
    if (head_.expect_continue && !continue_sent_ && head_.version_minor == 1) {
        continue_sent_ = true;
        writer_.write("HTTP/1.1 100 Continue\r\n\r\n");
        co_await writer_.drain();
    }
    set_phase(Phase::body, opt.body_timeout);
    try {
        if (head_.framing == BodyFraming::length) {
            // What is left of it: discard_body may have skipped the part already received.
            body.resize(static_cast<std::size_t>(body_left_));
            std::size_t have = std::min<std::size_t>(body_left_, len_ - body_at_);
            std::memcpy(body.data(), buf_.data() + body_at_, have);
            body_at_ += have;
            std::size_t filled = have;
            while (filled < body.size()) {
                std::size_t n = co_await reader_.read_into(
                        std::span<char>(body.data() + filled, body.size() - filled));
                if (n == 0) {
                    throw HttpError(400, "the body ended before its Content-Length");
                }
                filled += n;
                set_phase(Phase::body, opt.body_timeout);
            }
            body_left_ = 0;
        } else {
            for (;;) {
                std::size_t used = 0;
                auto st = chunked_.decode(
                        std::string_view(buf_.data() + body_at_, len_ - body_at_), used, body);
                body_at_ += used;
                if (st == ChunkedDecoder::Status::error) {
                    throw HttpError(400, "malformed chunked body");
                }
                if (body.size() > opt.max_body) {
                    throw HttpError(413, "request body over max_body");
                }
                if (st == ChunkedDecoder::Status::done) {
                    break;
                }
                // All input used: read more into the room after the head (never moving it).
                len_ = body_at_ = head_.head_size;
                std::size_t n = co_await reader_.read_into(
                        std::span<char>(buf_.data() + len_, buf_.size() - len_));
                if (n == 0) {
                    throw HttpError(400, "the body ended before its last chunk");
                }
                len_ += n;
                set_phase(Phase::body, opt.body_timeout);
            }
        }
    } catch (const CancelledError&) {
        if (!timed_out_) {
            throw;
        }
        task_.uncancel();
        timed_out_ = false;
        body_done_ = true;
        head_.keep_alive = false;
        // Back to the handler's phase (no deadline): a handler that catches the error goes on
        // without the sweep cancelling it again, as the expired body deadline would.
        set_phase(Phase::handler, std::chrono::milliseconds(0));
        throw HttpError(408, "the request body stopped arriving");
    } catch (const HttpError&) {
        body_done_ = true;
        head_.keep_alive = false; // the stream's framing is lost: close after the answer
        set_phase(Phase::handler, std::chrono::milliseconds(0));
        throw;
    }
    body_done_ = true;
    set_phase(Phase::handler, std::chrono::milliseconds(0));
    co_return body;
}

// Skips the part of an unread body already in buf_.
void Connection::skip_buffered_body() {
    if (head_.framing == BodyFraming::length) {
        std::size_t have = std::min<std::size_t>(body_left_, len_ - body_at_);
        body_at_ += have;
        body_left_ -= have;
        body_done_ = body_left_ == 0;
        return;
    }
    std::string dropped;
    std::size_t used = 0;
    auto st = chunked_.decode(
            std::string_view(buf_.data() + body_at_, len_ - body_at_), used, dropped);
    body_at_ += used;
    if (st == ChunkedDecoder::Status::error) {
        head_.keep_alive = false; // the framing is lost: close after the answer
    }
    body_done_ = st == ChunkedDecoder::Status::done;
}

// After the answer: reads and drops the rest of an unread body, at most max_discard more
// bytes within one body_timeout. true when it ended (the next request may follow in buf_).
Task<bool> Connection::discard_rest() {
    const ServeOptions& opt = server_.options;
    set_phase(Phase::body, opt.body_timeout); // one deadline for the whole rest
    // The request is answered: buf_ no longer holds anything the handler sees.
    len_ = body_at_ = 0;
    std::size_t wire = 0;
    std::string dropped;
    try {
        while (!body_done_) {
            if (wire > opt.max_discard) {
                co_return false;
            }
            std::size_t n = co_await reader_.read_into(
                    std::span<char>(buf_.data() + len_, buf_.size() - len_));
            if (n == 0) {
                co_return false;
            }
            len_ += n;
            wire += n;
            if (head_.framing == BodyFraming::length) {
                std::size_t have = std::min<std::size_t>(body_left_, len_ - body_at_);
                body_at_ += have;
                body_left_ -= have;
                body_done_ = body_left_ == 0;
            } else {
                std::size_t used = 0;
                dropped.clear();
                auto st = chunked_.decode(
                        std::string_view(buf_.data() + body_at_, len_ - body_at_), used, dropped);
                body_at_ += used;
                if (st == ChunkedDecoder::Status::error) {
                    co_return false;
                }
                body_done_ = st == ChunkedDecoder::Status::done;
            }
            if (!body_done_) {
                len_ = body_at_ = 0; // all of it was body
            }
        }
    } catch (const CancelledError&) {
        if (!timed_out_) {
            throw;
        }
        task_.uncancel();
        timed_out_ = false;
        co_return false;
    }
    co_return true;
}

// Closing with a request body still arriving (nginx's lingering close): half-close after the
// answer, then drop what the client still sends until it closes or linger_timeout passes, so
// the client reads the answer rather than a reset caused by unread bytes.
Task<> Connection::linger() {
    const ServeOptions& opt = server_.options;
    if (opt.linger_timeout.count() <= 0 || !writer_.can_write_eof() || buf_.empty()) {
        co_return;
    }
    set_phase(Phase::linger, opt.linger_timeout);
    try {
        writer_.write_eof();
        std::size_t total = 0;
        while (total <= opt.max_body) {
            std::size_t n = co_await reader_.read_into(std::span<char>(buf_.data(), buf_.size()));
            if (n == 0) {
                break;
            }
            total += n;
        }
    } catch (const CancelledError&) {
        if (!timed_out_) {
            throw;
        }
        task_.uncancel();
        timed_out_ = false;
    } catch (const std::system_error&) {
        // reset by the client: nothing left to wait for
    }
    if (writer_.get_write_buffer_size() > 0) {
        abort_ = true; // the client does not take the answer either
    }
}

void Connection::serialize_head(const Request& req,
                                const Response& resp,
                                bool keep_alive,
                                std::size_t length,
                                bool chunked) {
    out_.clear();
    out_ += "HTTP/1.1 ";
    append_number(out_, static_cast<std::uint64_t>(resp.status));
    out_ += ' ';
    out_ += reason_phrase(resp.status);
    out_ += "\r\nDate: ";
    out_ += http_date();
    if (!server_.server_header.empty()) {
        out_ += "\r\nServer: ";
        out_ += server_.server_header;
    }
    for (const auto& [name, value] : resp.headers) {
        out_ += "\r\n";
        out_ += name;
        out_ += ": ";
        out_ += value;
    }
    if (!no_body_status(resp.status) && length != kUntilClose) {
        if (chunked) {
            out_ += "\r\nTransfer-Encoding: chunked";
        } else {
            out_ += "\r\nContent-Length: ";
            append_number(out_, length);
        }
    }
    if (!keep_alive) {
        out_ += "\r\nConnection: close";
    } else if (req.version_minor == 0) {
        out_ += "\r\nConnection: keep-alive";
    }
    out_ += "\r\n\r\n";
}

Task<> Connection::write_response(Request& req, Response& resp, bool keep_alive) {
    if (phase_ != Phase::send) {
        // No clock read on this path: the sweep's first look at the send sets its deadline
        // (the sentinel mark differs from any real one), so send_timeout counts from there.
        phase_ = Phase::send;
        deadline_ = Clock::time_point::max();
        last_send_ = SendMark{.buffered = 0, .queued = -2, .spliced = 0};
    }
    bool head_only = req.method == "HEAD" || no_body_status(resp.status);
    if (resp.stream_) {
        bool chunked = req.version_minor == 1;
        serialize_head(req, resp, keep_alive && chunked, chunked ? 0 : kUntilClose, chunked);
        writer_.write(out_);
        if (!head_only) {
            BodyWriter out(writer_);
            out.chunked_ = chunked;
            try {
                co_await resp.stream_(out);
            } catch (const std::system_error&) {
                throw; // the client went away: run() ends the connection quietly
            } catch (const std::exception& e) {
                // The head is out: no 500 can follow. Say why, and end the connection without
                // the last chunk, so the client sees a cut body (aiohttp, uvicorn do the same).
                log(LogLevel::error,
                    fmt::format("http: {} {}: the streamed body raised an exception ({}); the "
                                "response is cut and the connection closed",
                                req.method,
                                req.target,
                                e.what()));
                throw ConnectionAbortedError(ECONNABORTED, "the streamed body raised");
            }
            if (chunked) {
                writer_.write("0\r\n\r\n");
            }
        }
        if (!chunked) {
            head_.keep_alive = false; // the body ends with the connection (HTTP/1.0)
        }
        co_await writer_.drain();
        co_return;
    }
    if (!resp.file_.empty()) {
        struct stat st {};

        File file;
        bool found = true;
        try {
            file = co_await File::open(resp.file_, "r");
            found = ::fstat(file.fileno(), &st) == 0 && S_ISREG(st.st_mode);
        } catch (const std::system_error&) {
            found = false;
        }
        if (!found) {
            Response missing = Response::json(nlohmann::json{{"detail", "Not Found"}}, 404);
            co_await write_response(req, missing, keep_alive);
            co_return;
        }
        serialize_head(req, resp, keep_alive, static_cast<std::size_t>(st.st_size), false);
        writer_.write(out_);
        if (!head_only && !server_.options.ssl && st.st_size > 0) {
            // Plain TCP: page cache -> pipe -> socket with IORING_OP_SPLICE, no copy through
            // user space (what sendfile is to nginx).
            splicing_ = true;
            try {
                co_await splice_file(
                        writer_, file.fileno(), static_cast<std::uint64_t>(st.st_size), &spliced_);
            } catch (...) {
                splicing_ = false;
                throw;
            }
            splicing_ = false;
        } else if (!head_only) {
            // TLS encrypts in user space anyway: the file is read in 64 KiB pieces.
            for (;;) {
                std::string piece = co_await file.read(64 * 1024);
                if (piece.empty()) {
                    break;
                }
                writer_.write(piece);
                co_await writer_.drain();
            }
        }
        co_await file.close();
        co_await writer_.drain();
        co_return;
    }
    serialize_head(req, resp, keep_alive, resp.body.size(), false);
    // Both land in the transport's write buffer and leave in one send at the next
    // io_uring_enter: copying the body behind the head first would only copy it twice.
    writer_.write(out_);
    if (!head_only) {
        writer_.write(resp.body);
    }
    if (len_ > body_at_ && keep_alive) {
        co_return; // a pipelined request is waiting: answer it before flushing
    }
    co_await writer_.drain();
}

Task<> Connection::send_error(int status, const char* reason) {
    std::string body = nlohmann::json{{"detail", reason_phrase(status)}}.dump();
    out_.clear();
    out_ += fmt::format("HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Type: application/json\r\n"
                        "Content-Length: {}\r\nConnection: close\r\n\r\n",
                        status,
                        reason_phrase(status),
                        http_date(),
                        body.size());
    out_ += body;
    writer_.write(out_);
    co_await writer_.drain();
    if (server_.options.access_log) {
        log(LogLevel::info, fmt::format("{} rejected: {} ({})", peer_.to_string(), status, reason));
    }
}

} // namespace detail

// BodyWriter

Task<> BodyWriter::write(std::string_view piece) {
    if (piece.empty()) {
        co_return;
    }
    if (chunked_) {
        char size[20];
        auto n = fmt::format_to_n(size, sizeof size, "{:x}\r\n", piece.size()).size;
        w_->write(std::string_view(size, n));
        w_->write(piece);
        w_->write("\r\n");
    } else {
        w_->write(piece);
    }
    co_await w_->drain();
}

// HttpServer

struct detail::HttpServerState : detail::ServerShared {
    Server server;
    bool shutdown_started = false;
    bool shutdown_done = false;
    Event closed;

    ~HttpServerState() { sweep.cancel(); }
};

namespace {

Task<> serve_connection(std::shared_ptr<detail::HttpServerState> st,
                        StreamReader reader,
                        StreamWriter writer) {
    // The last reference to the server's state may be this connection's: release it from a
    // loop callback, not while this frame (a task of the state's own Server) is unwinding.
    struct Release {
        std::shared_ptr<detail::HttpServerState>& st;

        ~Release() {
            EventLoop* loop = st->loop;
            try {
                loop->call_soon([keep = std::move(st)] {});
            } catch (...) {
                // A closed loop: release here.
            }
        }
    } release{st};

    detail::Connection conn(*st, std::move(reader), std::move(writer));
    co_await conn.run();
}

// A connection that arrives after the HttpServer is gone.
Task<> close_unserved(StreamWriter writer) {
    writer.close();
    co_return;
}

// Every 250 ms: connections past their phase's deadline are cut (Connection::check_deadline).
// Holds the state weakly: the state owns this timer's handle.
void sweep(const std::weak_ptr<detail::HttpServerState>& weak) {
    auto st = weak.lock();
    if (!st) {
        return;
    }
    auto now = std::chrono::steady_clock::now();
    st->connections.for_each([now](detail::Connection& c) { c.check_deadline(now); });
    if (!st->shutdown_done) {
        st->sweep = st->loop->call_later(std::chrono::milliseconds(250), sweep, weak);
    }
}

// The shutdown hooks in reverse order: the plain ones, and the lifespan() pairs among the
// first `started` hooks (those whose startup half completed). quiet: log their errors (after
// a failed startup, whose error is the one to throw) instead of throwing the first.
Task<> run_shutdown_hooks(const detail::RouterImpl& r, std::size_t started, bool quiet) {
    const auto& hooks = r.hooks_;
    for (std::size_t i = hooks.size(); i-- > 0;) {
        const auto& h = hooks[i];
        if (!h.shutdown || (h.startup && i >= started)) {
            continue;
        }
        if (!quiet) {
            co_await h.shutdown();
            continue;
        }
        std::exception_ptr error;
        try {
            co_await h.shutdown();
        } catch (...) {
            error = std::current_exception();
        }
        if (error) {
            std::string what = "unknown error";
            try {
                std::rethrow_exception(error);
            } catch (const std::exception& e) {
                what = e.what();
            } catch (...) {
            }
            log(LogLevel::error,
                fmt::format("a shutdown hook after a failed startup threw: {}", what));
        }
    }
}

} // namespace

Task<HttpServer>
HttpServer::start(const App& app, std::string host, std::uint16_t port, ServeOptions options) {
    // Lifespan (aiohttp's runner.setup/cleanup): a failed startup, or a server that cannot
    // listen, releases what the hooks before it acquired, then the error is rethrown.
    std::size_t started = 0;
    std::exception_ptr error;
    std::optional<HttpServer> server;
    try {
        for (const auto& hook : app.r_->hooks_) {
            if (hook.startup) {
                co_await hook.startup();
            }
            ++started;
        }
        Task<HttpServer> listening = listen(app, std::move(host), port, options);
        HttpServer listening_server = co_await std::move(listening);
        server.emplace(std::move(listening_server));
    } catch (...) {
        error = std::current_exception();
    }
    if (error) {
        co_await run_shutdown_hooks(*app.r_, started, true);
        std::rethrow_exception(error);
    }
    co_return std::move(*server);
}

Task<HttpServer>
HttpServer::listen(const App& app, std::string host, std::uint16_t port, ServeOptions options) {
    auto st = std::make_shared<detail::HttpServerState>();
    st->app = &app;
    st->options = options;
    st->server_header = std::string(options.server_header);
    st->options.server_header = st->server_header;
    st->loop = &get_running_loop();
    ServerOptions so;
    so.backlog = st->options.backlog;
    so.reuse_port = st->options.reuse_port;
    so.ssl = st->options.ssl;
    // Accepting pauses at the limit (the listen backlog holds the next connections) and
    // resumes when one closes.
    so.max_connections = st->options.max_connections;
    std::weak_ptr<detail::HttpServerState> weak = st;
    ClientConnectedCallback on_connection = [weak](StreamReader r, StreamWriter w) -> Task<> {
        auto s = weak.lock();
        if (!s) {
            return close_unserved(std::move(w));
        }
        return serve_connection(std::move(s), std::move(r), std::move(w));
    };
    // WORKAROUND(gcc-12): a temporary with a non-trivial destructor in a co_await expression
    // (here the std::function parameter, holding the weak_ptr) is destroyed twice: the call
    // is a statement of its own, the co_await another.
    Task<Server> starting = start_server(on_connection, std::move(host), port, so);
    st->server = co_await std::move(starting);
    st->sweep = st->loop->call_later(std::chrono::milliseconds(250), sweep, weak);
    co_return HttpServer(std::move(st));
}

HttpServer::HttpServer(HttpServer&&) noexcept = default;
HttpServer& HttpServer::operator=(HttpServer&&) noexcept = default;

HttpServer::~HttpServer() {
    if (s_ && !s_->shutdown_started) {
        s_->shutting_down = true;
        s_->server.close();
        s_->sweep.cancel();
        s_->shutdown_done = true;
        s_->connections.for_each([](detail::Connection& c) { c.abort(); });
    }
}

std::uint16_t HttpServer::port() const {
    return s_->server.sockets().at(0).getsockname().port();
}

const std::vector<Socket>& HttpServer::sockets() const {
    return s_->server.sockets();
}

std::size_t HttpServer::connection_count() const noexcept {
    return s_->count;
}

Task<> HttpServer::shutdown() {
    auto st = s_;
    if (st->shutdown_started) {
        co_await wait_closed();
        co_return;
    }
    st->shutdown_started = true;
    st->shutting_down = true;
    st->server.close();
    st->connections.for_each([](detail::Connection& c) { c.begin_shutdown(); });
    if (st->count > 0) {
        bool late = false;
        try {
            co_await wait_for(st->all_closed.wait(), st->options.shutdown_timeout);
        } catch (const TimeoutError&) {
            late = true;
        }
        if (late) {
            st->connections.for_each([](detail::Connection& c) { c.abort(); });
            if (st->count > 0) {
                co_await st->all_closed.wait();
            }
        }
    }
    st->sweep.cancel();
    st->shutdown_done = true;
    co_await run_shutdown_hooks(*st->app->r_, st->app->r_->hooks_.size(), false);
    st->closed.set();
}

Task<> HttpServer::wait_closed() {
    auto st = s_;
    co_await st->closed.wait();
}

Task<> HttpServer::serve_forever() {
    std::exception_ptr cancelled;
    try {
        co_await s_->server.serve_forever();
    } catch (const CancelledError&) {
        cancelled = std::current_exception();
    }
    co_await shield(shutdown());
    if (cancelled) {
        std::rethrow_exception(cancelled);
    }
}

Task<> serve(const App& app, std::string host, std::uint16_t port, ServeOptions options) {
    bool signals = options.handle_signals;
    HttpServer server = co_await HttpServer::start(app, std::move(host), port, std::move(options));
    EventLoop& loop = get_running_loop();
    Event stop;
    if (signals) {
        add_signal_handler(loop, SIGINT, [&stop] { stop.set(); });
        add_signal_handler(loop, SIGTERM, [&stop] { stop.set(); });
    }

    struct Unhook {
        EventLoop& loop;
        bool on;

        ~Unhook() {
            if (on) {
                remove_signal_handler(loop, SIGINT);
                remove_signal_handler(loop, SIGTERM);
            }
        }
    } unhook{loop, signals};

    std::exception_ptr cancelled;
    try {
        co_await stop.wait();
    } catch (const CancelledError&) {
        cancelled = std::current_exception();
    }
    co_await shield(server.shutdown());
    if (cancelled) {
        std::rethrow_exception(cancelled);
    }
}

} // namespace coring::http
