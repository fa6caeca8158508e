// SPDX-License-Identifier: MIT
// ClientSession on libcurl's multi-socket API: curl's socket callback becomes add_reader /
// add_writer registrations, its timer callback one loop timer; readiness and the timer call
// curl_multi_socket_action, and curl_multi_info_read's completions resume the awaiting tasks.
#include <coring/errors.hpp>

#include <coring/detail/assert.hpp>

#include <fmt/format.h>

#include <mutex>
#include <regex>

#include "client_internal.hpp"

namespace coring::http {

namespace detail {

namespace {

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

long ms_or(std::optional<std::chrono::milliseconds> request,
           std::optional<std::chrono::milliseconds> session,
           long fallback) {
    if (request) {
        return static_cast<long>(request->count());
    }
    if (session) {
        return static_cast<long>(session->count());
    }
    return fallback;
}

// The URL with base_url and the query parameters applied, checked to be http(s) with a host.
std::string build_url(const std::string& base,
                      const std::string& url,
                      const std::vector<std::pair<std::string, std::string>>& params,
                      const std::string& method) {
    auto invalid = [&](const std::string& why) {
        return InvalidUrl(url, fmt::format("{} {}: invalid URL: {}", method, url, why));
    };
    std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), &curl_url_cleanup);
    if (!u) {
        throw std::bad_alloc();
    }
    bool relative = url.find("://") == std::string::npos;
    if (relative && !base.empty()) {
        if (CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, base.c_str(), 0)) {
            throw invalid(fmt::format("base_url '{}': {}", base, curl_url_strerror(rc)));
        }
    }
    if (CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0)) {
        throw invalid(curl_url_strerror(rc));
    }
    char* part = nullptr;
    if (curl_url_get(u.get(), CURLUPART_SCHEME, &part, 0) != CURLUE_OK) {
        throw invalid("no scheme");
    }
    std::string scheme = part;
    curl_free(part);
    if (scheme != "http" && scheme != "https") {
        throw invalid(fmt::format("scheme '{}' is not http or https", scheme));
    }
    if (curl_url_get(u.get(), CURLUPART_HOST, &part, 0) != CURLUE_OK) {
        throw invalid("no host");
    }
    curl_free(part);
    for (const auto& [k, v] : params) {
        std::string kv = k + "=" + v;
        if (CURLUcode rc = curl_url_set(
                    u.get(), CURLUPART_QUERY, kv.c_str(), CURLU_APPENDQUERY | CURLU_URLENCODE)) {
            throw invalid(fmt::format("query parameter '{}': {}", k, curl_url_strerror(rc)));
        }
    }
    if (curl_url_get(u.get(), CURLUPART_URL, &part, 0) != CURLUE_OK) {
        throw invalid("cannot be assembled");
    }
    std::string out = part;
    curl_free(part);
    return out;
}

// Whether url is an absolute http or https URL with a host, which curl may take as it is.
bool plain_http_url(std::string_view url) noexcept {
    std::size_t skip = 0;
    if (url.size() > 7 && iequals(url.substr(0, 7), "http://")) {
        skip = 7;
    } else if (url.size() > 8 && iequals(url.substr(0, 8), "https://")) {
        skip = 8;
    } else {
        return false;
    }
    char c = url[skip];
    return c != '/' && c != '?' && c != '#' && c != ':' && c != '@' &&
           url.find_first_of(" \t\r\n") == std::string_view::npos;
}

curl_slist* append_line(curl_slist* list, const char* line) {
    curl_slist* next = curl_slist_append(list, line);
    if (next == nullptr) {
        curl_slist_free_all(list);
        throw std::bad_alloc();
    }
    return next;
}

// "Name: value"; curl sends "Name;" as a header with an empty value ("Name:" would remove it).
curl_slist* append_header(curl_slist* list, std::string_view name, std::string_view value) {
    std::string line =
            value.empty() ? fmt::format("{};", name) : fmt::format("{}: {}", name, value);
    return append_line(list, line.c_str());
}

std::string form_encode(CURL* easy, const std::vector<std::pair<std::string, std::string>>& form) {
    std::string out;
    for (const auto& [k, v] : form) {
        if (!out.empty()) {
            out += '&';
        }
        char* ek = curl_easy_escape(easy, k.data(), static_cast<int>(k.size()));
        char* ev = curl_easy_escape(easy, v.data(), static_cast<int>(v.size()));
        out += ek;
        out += '=';
        out += ev;
        curl_free(ek);
        curl_free(ev);
    }
    return out;
}

} // namespace

SessionState::SessionState(EventLoop& loop, ClientOptions options)
    : loop_(loop), options_(std::move(options)) {
    global_init();
    multi_ = curl_multi_init();
    share_ = curl_share_init();
    if (multi_ == nullptr || share_ == nullptr) {
        curl_multi_cleanup(multi_);
        curl_share_cleanup(share_);
        throw std::bad_alloc();
    }
    // One loop thread: the share needs no lock functions.
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &SessionState::on_socket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &SessionState::on_timer);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    if (options_.limit > 0) {
        curl_multi_setopt(
                multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(options_.limit));
        curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(options_.limit));
    }
    try {
        bool user_agent = false;
        for (const auto& [n, v] : options_.headers) {
            base_headers_ = append_header(base_headers_, n, v);
            user_agent = user_agent || iequals(n, "User-Agent");
        }
        if (!user_agent && !options_.user_agent.empty()) {
            base_headers_ = append_header(base_headers_, "User-Agent", options_.user_agent);
        }
    } catch (...) {
        curl_multi_cleanup(multi_);
        curl_share_cleanup(share_);
        throw;
    }
    if (options_.limit_per_host > 0) {
        curl_multi_setopt(
                multi_, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(options_.limit_per_host));
    }
}

SessionState::~SessionState() {
    close();
    transfers_.for_each([](Transfer& t) {
        t.session_ = nullptr;
        coring::detail::IntrusiveList<Transfer>::remove(t);
    });
    pump_.cancel();
    for (Pooled p : pool_) {
        curl_easy_cleanup(p.easy);
    }
    curl_multi_cleanup(multi_); // may report REMOVE for sockets still watched
    for (SocketEntry* e : sockets_) {
        if (e != nullptr) {
            watch(*e, false, false);
            delete e;
        }
    }
    sockets_.clear();
    timer_.cancel();
    curl_share_cleanup(share_);
    curl_slist_free_all(base_headers_);
}

void SessionState::close() noexcept {
    if (closed_) {
        return;
    }
    closed_ = true;
    transfers_.for_each([](Transfer& t) {
        if (t.easy_ != nullptr || t.queued_spec_ != nullptr) {
            t.fail(std::make_exception_ptr(
                    ClientError(t.url_, fmt::format("{}: session closed", t.label()))));
        }
    });
    for (Pooled p : pool_) {
        curl_easy_cleanup(p.easy);
    }
    pool_.clear();
}

void SessionState::recycle(CURL* easy, bool clean) noexcept {
    if (closed_) {
        curl_easy_cleanup(easy);
        return;
    }
    try {
        pool_.push_back(Pooled{easy, clean});
    } catch (...) {
        curl_easy_cleanup(easy);
    }
}

std::unique_ptr<Transfer>
SessionState::start(const std::string& method, const std::string& url, RequestSpec& o) {
    if (closed_) {
        throw ClientError(url, fmt::format("{} {}: session closed", method, url));
    }
    // The common case, an absolute http(s) URL without parameters, goes to curl as it is (curl
    // rejects a malformed one: InvalidUrl); the rest is parsed and assembled with curl's URL API.
    std::string full = o.params.empty() && plain_http_url(url)
                               ? url
                               : build_url(options_.base_url, url, o.params, method);
    auto t = std::make_unique<Transfer>(*this, method, std::move(full));
    transfers_.push_back(*t);
    if (!waiting_.empty() || !has_slot() || !burst_allows()) {
        // Past `limit` transfers wait here, not in curl: curl re-examines every transfer it
        // holds pending each time a connection frees, which makes a large burst cost O(n^2)
        // and stalls the loop (1,000 requests: tens of ms in one iteration). A burst within
        // the limit is handed to curl kBurst per loop iteration, so timers run in between.
        t->queued_spec_ = std::make_unique<RequestSpec>(std::move(o));
        waiting_.push_back(*t);
        schedule_pump();
        return t;
    }
    admit(*t, o);
    return t;
}

bool SessionState::has_slot() const noexcept {
    return options_.limit == 0 || active_ < options_.limit;
}

bool SessionState::burst_allows() noexcept {
    std::uint64_t now = loop_.iteration_count();
    if (now != burst_iteration_) {
        burst_iteration_ = now;
        burst_ = 0;
    }
    return burst_++ < kBurst;
}

void SessionState::schedule_pump() noexcept {
    if (pump_scheduled_ || closed_) {
        return;
    }
    try {
        pump_ = loop_.call_soon([this] {
            pump_scheduled_ = false;
            admit_waiting();
        });
        pump_scheduled_ = true;
    } catch (...) {
        // A closed loop: the waiting transfers are failed by close().
    }
}

void SessionState::admit(Transfer& t, RequestSpec& o) {
    CURL* easy = nullptr;
    if (!pool_.empty()) {
        Pooled p = pool_.back();
        pool_.pop_back();
        easy = p.easy;
        if (!p.clean) {
            // Undo what a request with a method or body set (setup sets the rest each time).
            // Not curl_easy_reset: with the cookie engine on, curl 7.88 leaks a list node per
            // reset, and base_setup would have to run again.
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, nullptr);
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, nullptr);
            curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(-1));
            curl_easy_setopt(easy, CURLOPT_NOBODY, 0L);
            curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
        }
    } else {
        easy = curl_easy_init();
        if (easy == nullptr) {
            throw std::bad_alloc();
        }
        base_setup(easy);
    }
    try {
        setup(easy, t, t.method_, o);
    } catch (...) {
        recycle(easy, false);
        throw;
    }
    if (CURLMcode rc = curl_multi_add_handle(multi_, easy); rc != CURLM_OK) {
        recycle(easy, false);
        throw ClientError(t.url_, fmt::format("{}: {}", t.label(), curl_multi_strerror(rc)));
    }
    t.easy_ = easy;
    ++active_;
    t.start_read_timer();
}

void SessionState::admit_waiting() noexcept {
    while (!closed_ && !waiting_.empty() && has_slot() && burst_allows()) {
        Transfer* t = waiting_.pop_front();
        std::unique_ptr<RequestSpec> spec = std::move(t->queued_spec_);
        try {
            admit(*t, *spec);
        } catch (...) {
            t->fail(std::current_exception());
        }
    }
    if (!waiting_.empty() && has_slot()) {
        schedule_pump(); // this iteration's burst budget is spent: the rest go in the next
    }
}

void SessionState::base_setup(CURL* easy) noexcept {
    const ClientOptions& so = options_;
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Transfer::on_write);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_SHARE, share_);
    curl_easy_setopt(easy, CURLOPT_COOKIEFILE, ""); // the cookie engine, on the shared jar
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    curl_easy_setopt(easy, CURLOPT_MAXREDIRS, static_cast<long>(so.max_redirects));
    if (so.auto_decompress) {
        curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
    }
    curl_easy_setopt(
            easy, CURLOPT_HTTP_VERSION, so.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
    if (!so.proxy.empty()) {
        curl_easy_setopt(easy, CURLOPT_PROXY, so.proxy.c_str());
    } else if (!so.trust_env) {
        curl_easy_setopt(easy, CURLOPT_PROXY, ""); // not the environment's proxies
    }
    if (!so.ssl.verify) {
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!so.ssl.cafile.empty()) {
        curl_easy_setopt(easy, CURLOPT_CAINFO, so.ssl.cafile.c_str());
    }
    if (!so.ssl.certfile.empty()) {
        curl_easy_setopt(easy, CURLOPT_SSLCERT, so.ssl.certfile.c_str());
        curl_easy_setopt(easy,
                         CURLOPT_SSLKEY,
                         (so.ssl.keyfile.empty() ? so.ssl.certfile : so.ssl.keyfile).c_str());
    }
}

void SessionState::setup(CURL* easy, Transfer& t, const std::string& method, RequestSpec& o) {
    // Per request; what every request of the session shares is set by base_setup once per
    // handle. A request that sets more (a method, a body) leaves the handle to be reset.
    const ClientOptions& so = options_;
    curl_easy_setopt(easy, CURLOPT_URL, t.url_.c_str());
    curl_easy_setopt(easy, CURLOPT_PRIVATE, &t);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t.errbuf_);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
    t.follow_ = o.allow_redirects.value_or(method == "HEAD" ? false : so.allow_redirects);
    t.max_redirects_ = so.max_redirects;
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, t.follow_ ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, ms_or(o.timeout.total, so.timeout.total, 300'000));
    curl_easy_setopt(
            easy, CURLOPT_CONNECTTIMEOUT_MS, ms_or(o.timeout.connect, so.timeout.connect, 0));
    t.sock_read_ = std::chrono::milliseconds(ms_or(o.timeout.sock_read, so.timeout.sock_read, 0));
    bool https = t.url_.size() > 6 && iequals(std::string_view(t.url_).substr(0, 6), "https:");
    curl_easy_setopt(easy, CURLOPT_PIPEWAIT, so.http2 && https ? 1L : 0L);

    // The body.
    int bodies = (o.data ? 1 : 0) + (o.json ? 1 : 0) + (o.form.empty() ? 0 : 1);
    if (bodies > 1) {
        throw ValueError(fmt::format("{}: data, json and form are mutually exclusive", t.label()));
    }
    const char* content_type = nullptr;
    if (o.data) {
        t.body_ = std::move(*o.data);
    } else if (o.json) {
        t.body_ = std::move(*o.json);
        content_type = "Content-Type: application/json";
    } else if (!o.form.empty()) {
        t.body_ = form_encode(easy, o.form);
        content_type = "Content-Type: application/x-www-form-urlencoded";
    }
    bool has_body = bodies > 0;
    if (method == "GET" && !has_body) {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else {
        t.plain_ = false;
        if (method == "HEAD") {
            curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
        } else if (has_body || method == "POST") {
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, t.body_.data());
            curl_easy_setopt(
                    easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t.body_.size()));
        }
        if (method != "POST" && method != "HEAD" && method != "GET") {
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method.c_str());
        } else if (method == "GET" && has_body) {
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "GET");
        }
    }

    // Headers: the session's (prepared once), replaced by the request's of the same name.
    if (o.headers.empty() && content_type == nullptr && !has_body) {
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, base_headers_);
        return;
    }
    curl_slist* list = nullptr;
    auto add = [&](std::string_view name, std::string_view value) {
        list = append_header(list, name, value);
    };
    bool user_agent = false;
    bool type = false;
    for (const auto& [n, v] : so.headers) {
        if (!o.headers.contains(n)) {
            add(n, v);
            user_agent = user_agent || iequals(n, "User-Agent");
            type = type || iequals(n, "Content-Type");
        }
    }
    for (const auto& [n, v] : o.headers) {
        add(n, v);
        user_agent = user_agent || iequals(n, "User-Agent");
        type = type || iequals(n, "Content-Type");
    }
    if (!user_agent && !so.user_agent.empty()) {
        add("User-Agent", so.user_agent);
    }
    if (content_type != nullptr && !type) {
        list = append_line(list, content_type);
    }
    if (has_body && !o.headers.contains("Expect") && !so.headers.contains("Expect")) {
        // No "Expect: 100-continue" wait for bodies (curl adds one past 1 KiB; aiohttp does not).
        list = append_line(list, "Expect:");
    }
    t.request_headers_ = list;
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list);
}

int SessionState::on_socket(CURL*, curl_socket_t fd, int what, void* self, void* entry) noexcept {
    auto& s = *static_cast<SessionState*>(self);
    auto* e = static_cast<SocketEntry*>(entry);
    if (fd < 0) {
        return 0;
    }
    auto index = static_cast<std::size_t>(fd);
    if (what == CURL_POLL_REMOVE) {
        if (e != nullptr) {
            if (index < s.sockets_.size() && s.sockets_[index] == e) {
                s.watch(*e, false, false);
                s.sockets_[index] = nullptr;
            }
            delete e;
        }
        return 0;
    }
    try {
        if (index >= s.sockets_.size()) {
            s.sockets_.resize(index + 1, nullptr);
        }
        if (e == nullptr) {
            e = new SocketEntry{fd, ++s.generation_};
            curl_multi_assign(s.multi_, fd, e);
        }
        SocketEntry* current = s.sockets_[index];
        if (current != e) {
            // A socket curl closed without REMOVE yet had this number: drop its registrations
            // (they watch the old file) before watching the new one.
            if (current != nullptr) {
                s.watch(*current, false, false);
            }
            s.sockets_[index] = e;
        }
        s.watch(*e, (what & CURL_POLL_IN) != 0, (what & CURL_POLL_OUT) != 0);
    } catch (...) {
        return -1; // out of memory or a closed loop: curl fails the transfers on this socket
    }
    return 0;
}

void SessionState::watch(SocketEntry& e, bool read, bool write) noexcept {
    int fd = e.fd;
    std::uint64_t gen = e.generation;
    auto fire = [this, fd, gen](int events) {
        if (static_cast<std::size_t>(fd) < sockets_.size() && sockets_[fd] != nullptr &&
            sockets_[fd]->generation == gen) {
            socket_action(fd, events);
        }
    };
    try {
        if (read && !e.reading) {
            loop_.add_reader(fd, [fire] { fire(CURL_CSELECT_IN); });
            e.reading = true;
        }
        if (write && !e.writing) {
            loop_.add_writer(fd, [fire] { fire(CURL_CSELECT_OUT); });
            e.writing = true;
        }
    } catch (...) {
        // The loop refused (closed): curl's transfers on this socket will time out or be
        // stopped by close().
    }
    if (!read && e.reading) {
        loop_.remove_reader(fd);
        e.reading = false;
    }
    if (!write && e.writing) {
        loop_.remove_writer(fd);
        e.writing = false;
    }
}

int SessionState::on_timer(CURLM*, long timeout_ms, void* self) noexcept {
    auto& s = *static_cast<SessionState*>(self);
    if (timeout_ms < 0) {
        s.timer_.cancel();
        s.timer_armed_ = false;
        return 0;
    }
    // curl asks again and again for the same deadline; keep the timer that is already set.
    auto due = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    if (s.timer_armed_ && timeout_ms > 0 && due - s.timer_due_ < std::chrono::milliseconds(1) &&
        s.timer_due_ - due < std::chrono::milliseconds(1)) {
        return 0;
    }
    s.timer_.cancel();
    s.timer_due_ = due;
    s.timer_armed_ = true;
    try {
        auto fire = [&s] {
            s.timer_armed_ = false;
            s.socket_action(CURL_SOCKET_TIMEOUT, 0);
        };
        // A 0 ms timeout is scheduled, never run inside curl's callback.
        if (timeout_ms == 0) {
            s.timer_ = s.loop_.call_soon(fire);
        } else {
            s.timer_ = s.loop_.call_later(std::chrono::milliseconds(timeout_ms), fire);
        }
    } catch (...) {
        s.timer_armed_ = false;
        return -1;
    }
    return 0;
}

void SessionState::socket_action(curl_socket_t fd, int events) noexcept {
    int running = 0;
    in_curl_ = true;
    curl_multi_socket_action(multi_, fd, events, &running);
    in_curl_ = false;
    drain_done();
}

void SessionState::drain_done() noexcept {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        Transfer* t = nullptr;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
        CURLcode code = msg->data.result;
        if (t != nullptr) {
            t->complete(code);
        }
    }
}

std::vector<std::string> SessionState::cookies() const {
    std::vector<std::string> out;
    CURL* easy = curl_easy_init();
    if (easy == nullptr) {
        throw std::bad_alloc();
    }
    curl_easy_setopt(easy, CURLOPT_SHARE, share_);
    curl_easy_setopt(easy, CURLOPT_COOKIEFILE, "");
    curl_slist* list = nullptr;
    curl_easy_getinfo(easy, CURLINFO_COOKIELIST, &list);
    for (curl_slist* p = list; p != nullptr; p = p->next) {
        out.emplace_back(p->data);
    }
    curl_slist_free_all(list);
    curl_easy_cleanup(easy);
    return out;
}

} // namespace detail

// RequestOptions

nlohmann::json JsonValue::get() const {
    switch (kind_) {
    case Kind::null:
        return nullptr;
    case Kind::boolean:
        return i_ != 0;
    case Kind::integer:
        return i_;
    case Kind::number:
        return d_;
    case Kind::string:
        return std::string(s_);
    case Kind::json:
        return *j_;
    }
    return nullptr;
}

nlohmann::json JsonBody::get() const {
    if (value_ != nullptr) {
        return *value_;
    }
    nlohmann::json out = nlohmann::json::object();
    for (std::size_t i = 0; i < size_; ++i) {
        out[std::string(members_[i].key)] = members_[i].value.get();
    }
    return out;
}

detail::RequestSpec detail::RequestSpec::from(const RequestOptions& o) {
    RequestSpec spec;
    o.headers.for_each([&](std::string_view n, std::string_view v) {
        spec.headers.add(std::string(n), std::string(v));
    });
    o.params.for_each([&](std::string_view n, std::string_view v) {
        spec.params.emplace_back(std::string(n), std::string(v));
    });
    o.form.for_each([&](std::string_view n, std::string_view v) {
        spec.form.emplace_back(std::string(n), std::string(v));
    });
    if (o.data) {
        spec.data = std::string(*o.data);
    }
    if (o.json.has_value()) {
        spec.json = o.json.get().dump();
    }
    spec.timeout = o.timeout;
    spec.allow_redirects = o.allow_redirects;
    return spec;
}

// ClientSession

ClientSession::ClientSession(ClientOptions options)
    : ClientSession(get_running_loop(), std::move(options)) {
}

ClientSession::ClientSession(EventLoop& loop, ClientOptions options)
    : s_(std::make_unique<detail::SessionState>(loop, std::move(options))) {
}

ClientSession::~ClientSession() = default;

Task<ClientResponse>
ClientSession::send(std::string method, std::string url, detail::RequestSpec spec) {
    std::unique_ptr<detail::Transfer> t = s_->start(method, url, spec);
    // Cancellation: t's destructor stops the transfer as the frame unwinds.
    co_await t->ready_.wait();
    if (!t->headers_done_) {
        std::rethrow_exception(t->error_);
    }
    co_return ClientResponse(std::move(t));
}

Task<ClientResponse> ClientSession::head(std::string url, const RequestOptions& options) {
    return request("HEAD", std::move(url), options);
}

Task<> ClientSession::close() {
    s_->close();
    co_return;
}

bool ClientSession::closed() const noexcept {
    return s_->closed_;
}

std::vector<std::string> ClientSession::cookies() const {
    return s_->cookies();
}

const ClientOptions& ClientSession::options() const noexcept {
    return s_->options_;
}

std::size_t ClientSession::active_transfers() const noexcept {
    return s_->active_ + s_->waiting_.size();
}

// ClientResponse

ClientResponse::ClientResponse(std::unique_ptr<detail::Transfer> t) : t_(std::move(t)) {
    status = t_->status_;
    reason = std::move(t_->reason_);
    version = std::move(t_->version_);
    method = t_->method_;
    url = std::move(t_->final_url_);
    headers = std::move(t_->headers_);
    redirects = t_->redirects_;
    content.t_ = t_.get();
}

ClientResponse::ClientResponse(ClientResponse&& other) noexcept
    : status(other.status), reason(std::move(other.reason)), version(std::move(other.version)),
      method(std::move(other.method)), url(std::move(other.url)), headers(std::move(other.headers)),
      redirects(other.redirects), t_(std::move(other.t_)) {
    content.t_ = t_.get();
    other.content.t_ = nullptr;
}

ClientResponse& ClientResponse::operator=(ClientResponse&& other) noexcept {
    if (this != &other) {
        status = other.status;
        reason = std::move(other.reason);
        version = std::move(other.version);
        method = std::move(other.method);
        url = std::move(other.url);
        headers = std::move(other.headers);
        redirects = other.redirects;
        t_ = std::move(other.t_);
        content.t_ = t_.get();
        other.content.t_ = nullptr;
    }
    return *this;
}

ClientResponse::~ClientResponse() = default;

void ClientResponse::raise_for_status() const {
    if (status >= 400) {
        throw ClientResponseError(
                url, status, fmt::format("{} {}: {} {}", method, url, status, reason));
    }
}

void ClientResponse::close() noexcept {
    if (t_) {
        t_->detach();
    }
}

Task<std::string> ClientResponse::read() {
    return content.read();
}

Task<nlohmann::json> ClientResponse::json(bool check_content_type) {
    if (check_content_type) {
        static const std::regex json_type(R"(^application/(?:[\w.+-]+?\+)?json)",
                                          std::regex::icase);
        std::string type(headers.get("Content-Type").value_or(""));
        if (!std::regex_search(type, json_type)) {
            throw ContentTypeError(
                    url,
                    status,
                    fmt::format("{} {}: attempt to decode JSON with unexpected mimetype: '{}'",
                                method,
                                url,
                                type));
        }
    }
    std::string body = co_await content.read();
    co_return nlohmann::json::parse(body);
}

// ResponseContent

namespace {

[[noreturn]] void throw_closed() {
    throw InvalidStateError("the response's body is gone (the ClientResponse was moved or closed)");
}

} // namespace

bool ResponseContent::at_eof() const noexcept {
    return t_ == nullptr || (t_->eof_ && t_->buffered() == 0);
}

Task<std::string> ResponseContent::read(std::size_t n) {
    detail::Transfer* t = t_;
    if (t == nullptr) {
        throw_closed();
    }
    std::string out;
    for (;;) {
        if (n == npos) {
            out += t->take(npos);
        } else if (t->buffered() > 0) {
            co_return t->take(n);
        }
        if (t->eof_ && t->buffered() == 0) {
            co_return out;
        }
        if (t->error_ && t->buffered() == 0) {
            std::rethrow_exception(t->error_);
        }
        if (t->buffered() == 0) {
            if (t->easy_ == nullptr && !t->eof_ && !t->error_) {
                throw_closed(); // closed by ClientResponse::close()
            }
            co_await t->wait_data();
        }
    }
}

Task<std::string> ResponseContent::readexactly(std::size_t n) {
    detail::Transfer* t = t_;
    if (t == nullptr) {
        throw_closed();
    }
    std::string out;
    while (out.size() < n) {
        if (t->buffered() > 0) {
            out += t->take(n - out.size());
            continue;
        }
        if (t->eof_) {
            throw IncompleteReadError(std::move(out), n);
        }
        if (t->error_) {
            std::rethrow_exception(t->error_);
        }
        if (t->easy_ == nullptr) {
            throw_closed();
        }
        co_await t->wait_data();
    }
    co_return out;
}

Task<std::string> ResponseContent::readline() {
    detail::Transfer* t = t_;
    if (t == nullptr) {
        throw_closed();
    }
    std::string out;
    for (;;) {
        if (t->buffered() > 0) {
            std::string_view view(t->buf_.data() + t->buf_off_, t->buffered());
            std::size_t nl = view.find('\n');
            if (nl != std::string_view::npos) {
                out += t->take(nl + 1);
                co_return out;
            }
            out += t->take(view.size()); // a line longer than the buffer keeps growing here
            continue;
        }
        if (t->eof_) {
            co_return out;
        }
        if (t->error_) {
            std::rethrow_exception(t->error_);
        }
        if (t->easy_ == nullptr) {
            throw_closed();
        }
        co_await t->wait_data();
    }
}

} // namespace coring::http
