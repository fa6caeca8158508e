// SPDX-License-Identifier: MIT
// One request's life (Transfer): curl's header and body callbacks, pausing while the body is not
// read, the sock_read timeout, completion and the mapping of curl's errors to aiohttp's.
#include <coring/errors.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "client_internal.hpp"

namespace coring::http::detail {

Transfer::Transfer(SessionState& s, std::string method, std::string url)
    : session_(&s), method_(std::move(method)), url_(std::move(url)) {
}

Transfer::~Transfer() {
    detach();
    read_timer_.cancel();
    curl_slist_free_all(request_headers_);
}

void Transfer::detach() noexcept {
    queued_spec_.reset();
    coring::detail::ListHook<WaitingTag>::unlink();
    if (easy_ == nullptr) {
        return;
    }
    CURL* easy = easy_;
    easy_ = nullptr;
    if (session_ != nullptr) {
        // A transfer stopped before its end leaves its connection closed, never reused: curl
        // marks a connection of an unfinished transfer for closing when it is removed.
        curl_multi_remove_handle(session_->multi_, easy);
        --session_->active_;
        session_->recycle(easy, plain_);
        session_->admit_waiting(); // a slot is free
    } else {
        curl_easy_cleanup(easy);
    }
    read_timer_.cancel();
}

std::string Transfer::take(std::size_t n) {
    std::size_t have = buffered();
    std::size_t k = std::min(n, have);
    std::string out;
    if (buf_off_ == 0 && k == buf_.size()) {
        out.swap(buf_);
    } else {
        out.assign(buf_, buf_off_, k);
        buf_off_ += k;
        if (buf_off_ == buf_.size()) {
            buf_.clear();
            buf_off_ = 0;
        }
    }
    if (paused_ && easy_ != nullptr && session_ != nullptr &&
        buffered() < session_->options_.read_buffer / 2) {
        paused_ = false;
        last_data_ = std::chrono::steady_clock::now(); // the pause was ours, not the server's
        // curl may deliver the data it held at once, calling on_write from inside.
        session_->in_curl_ = true;
        curl_easy_pause(easy_, CURLPAUSE_CONT);
        session_->in_curl_ = false;
    }
    return out;
}

void Transfer::fail(std::exception_ptr error) noexcept {
    if (error_ == nullptr && !eof_) {
        error_ = std::move(error);
    }
    detach();
    ready_.set();
    data_.set();
}

void Transfer::complete(CURLcode code) noexcept {
    if (code == CURLE_OK) {
        if (!headers_done_) {
            headers_complete();
        }
        eof_ = true;
        detach();
        ready_.set();
        data_.set();
        return;
    }
    fail(make_error(*this, code));
}

std::size_t Transfer::on_header(char* data, std::size_t size, std::size_t n, void* self) noexcept {
    auto& t = *static_cast<Transfer*>(self);
    std::size_t len = size * n;
    std::string_view line(data, len);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
        line.remove_suffix(1);
    }
    if (t.sock_read_.count() > 0) { // the clock only matters for sock_read
        t.last_data_ = std::chrono::steady_clock::now();
    }
    if (line.starts_with("HTTP/")) {
        // A status line starts a header block: "HTTP/1.1 200 OK", "HTTP/2 200".
        t.headers_.clear();
        t.headers_.reserve(16);
        t.reason_.clear();
        std::size_t sp = line.find(' ');
        t.version_ = std::string(line.substr(0, sp));
        t.status_ = 0;
        if (sp != std::string_view::npos) {
            std::string_view rest = line.substr(sp + 1);
            // Three digits (RFC 9112 4); anything else leaves 0, which the caller sees as no
            // status (curl rejects such a status line itself).
            if (rest.size() >= 3 && std::isdigit(static_cast<unsigned char>(rest[0])) &&
                std::isdigit(static_cast<unsigned char>(rest[1])) &&
                std::isdigit(static_cast<unsigned char>(rest[2]))) {
                t.status_ = (rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0');
            }
            if (rest.size() > 4) {
                t.reason_ = std::string(rest.substr(4));
            }
        }
    } else if (line.empty()) {
        t.end_of_header_block();
    } else if ((line.front() == ' ' || line.front() == '\t') && !t.headers_.empty()) {
        // obs-fold: a continuation of the previous field's value. Rebuild it with one space.
        auto last = *(t.headers_.end() - 1);
        std::size_t i = line.find_first_not_of(" \t");
        Headers rebuilt;
        for (auto it = t.headers_.begin(); it + 1 != t.headers_.end(); ++it) {
            rebuilt.add(it->first, it->second);
        }
        // (A line of only spaces adds nothing: i is npos there.)
        rebuilt.add(last.first,
                    i == std::string_view::npos ? last.second
                                                : last.second + " " + std::string(line.substr(i)));
        t.headers_ = std::move(rebuilt);
    } else {
        std::size_t colon = line.find(':');
        if (colon != std::string_view::npos) {
            std::string_view value = line.substr(colon + 1);
            std::size_t b = value.find_first_not_of(" \t");
            value = b == std::string_view::npos ? std::string_view() : value.substr(b);
            while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
                value.remove_suffix(1);
            }
            t.headers_.add(std::string(line.substr(0, colon)), std::string(value));
        }
    }
    return len;
}

void Transfer::end_of_header_block() noexcept {
    if (status_ >= 100 && status_ < 200) {
        return; // 100 Continue and other interim responses: the real one follows
    }
    bool redirect =
            status_ == 301 || status_ == 302 || status_ == 303 || status_ == 307 || status_ == 308;
    if (follow_ && redirect && headers_.contains("Location")) {
        return; // curl follows it (or fails with TooManyRedirects past the limit)
    }
    headers_complete();
}

void Transfer::headers_complete() noexcept {
    headers_done_ = true;
    if (easy_ != nullptr) {
        char* url = nullptr;
        curl_easy_getinfo(easy_, CURLINFO_EFFECTIVE_URL, &url);
        final_url_ = url != nullptr ? url : url_;
        long count = 0;
        curl_easy_getinfo(easy_, CURLINFO_REDIRECT_COUNT, &count);
        redirects_ = static_cast<int>(count);
    } else {
        final_url_ = url_;
    }
    ready_.set();
}

std::size_t Transfer::on_write(char* data, std::size_t size, std::size_t n, void* self) noexcept {
    auto& t = *static_cast<Transfer*>(self);
    std::size_t len = size * n;
    if (!t.headers_done_) {
        t.headers_complete();
    }
    if (t.session_ != nullptr && t.buffered() >= t.session_->options_.read_buffer) {
        t.paused_ = true; // curl keeps this piece and offers it again after CURLPAUSE_CONT
        return CURL_WRITEFUNC_PAUSE;
    }
    if (t.sock_read_.count() > 0) { // the clock only matters for sock_read
        t.last_data_ = std::chrono::steady_clock::now();
    }
    try {
        t.buf_.append(data, len);
    } catch (...) {
        return 0; // out of memory: curl fails the transfer with CURLE_WRITE_ERROR
    }
    t.data_.set();
    return len;
}

void Transfer::arm_read_timer() noexcept {
    if (sock_read_.count() <= 0 || session_ == nullptr) {
        return;
    }
    auto due = last_data_ + sock_read_;
    auto delay = due - std::chrono::steady_clock::now();
    try {
        read_timer_ = session_->loop_.call_later(
                std::max(delay, std::chrono::steady_clock::duration::zero()),
                [this] { check_read_timeout(); });
    } catch (...) {
        // A closed loop: no timer, and no transfer will progress either.
    }
}

void Transfer::check_read_timeout() noexcept {
    if (easy_ == nullptr) {
        return;
    }
    auto idle = std::chrono::steady_clock::now() - last_data_;
    if (paused_ || idle < sock_read_) {
        arm_read_timer();
        return;
    }
    std::string what = fmt::format("{}: no data from the server for {} ms (sock_read timeout)",
                                   label(),
                                   sock_read_.count());
    fail(std::make_exception_ptr(TimeoutError(what)));
}

void Transfer::start_read_timer() noexcept {
    if (sock_read_.count() <= 0) {
        return;
    }
    last_data_ = std::chrono::steady_clock::now();
    arm_read_timer();
}

std::exception_ptr make_error(const Transfer& t, CURLcode code) {
    std::string detail = t.errbuf_[0] != '\0' ? t.errbuf_ : curl_easy_strerror(code);
    auto what = [&](const char* kind) {
        return fmt::format("{}: {}: {}", t.label(), kind, detail);
    };
    const std::string& url = t.url_;
    switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return std::make_exception_ptr(InvalidUrl(url, what("invalid URL")));
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
        return std::make_exception_ptr(ClientConnectorError(url, what("cannot resolve")));
    case CURLE_COULDNT_CONNECT:
        return std::make_exception_ptr(ClientConnectorError(url, what("cannot connect")));
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return std::make_exception_ptr(
                ClientConnectorCertificateError(url, what("certificate not accepted")));
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
        return std::make_exception_ptr(ClientSslError(url, what("TLS failed")));
    case CURLE_TOO_MANY_REDIRECTS:
        return std::make_exception_ptr(TooManyRedirects(
                url,
                t.status_,
                what(fmt::format("more than {} redirects", t.max_redirects_).c_str())));
    case CURLE_OPERATION_TIMEDOUT: {
        bool connecting = detail.starts_with("Connection timed out") ||
                          detail.starts_with("Connection timeout") ||
                          detail.starts_with("Resolving timed out") ||
                          detail.starts_with("Failed to connect");
        return std::make_exception_ptr(
                TimeoutError(what(connecting ? "connect timeout" : "total timeout")));
    }
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
        if (t.headers_done_) {
            return std::make_exception_ptr(
                    ClientPayloadError(url, what("response payload is not completed")));
        }
        return std::make_exception_ptr(ServerDisconnectedError(url, what("server disconnected")));
    case CURLE_WEIRD_SERVER_REPLY:
        return std::make_exception_ptr(
                ClientResponseError(url, t.status_, what("malformed response")));
    case CURLE_OUT_OF_MEMORY:
        // curl 7.88 reports a response header over its 100 KiB limit this way.
        return std::make_exception_ptr(ClientResponseError(
                url,
                t.status_,
                what("response rejected (a header over curl's 100 KiB limit, or no memory)")));
    default:
        return std::make_exception_ptr(ClientError(url, what("request failed")));
    }
}

} // namespace coring::http::detail
