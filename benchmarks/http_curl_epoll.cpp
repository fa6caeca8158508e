// SPDX-License-Identifier: MIT
// The floor of the HTTP client benchmark (benchmarks/http_client_run.sh): a C-style program
// driving libcurl's multi-socket API with one epoll, what any event loop on libcurl must at least
// spend. No runtime, no coroutines: 64 easy handles, made once and re-added to the multi handle
// after each transfer (their connections stay in the multi handle's pool), the body appended to
// a string per handle.
//
// Usage: bench_http_curl_epoll --url URL [--http 1.1|2] [--cafile PEM] [--requests N]
//                              [--concurrency C] [--warmup N] [--expect-bytes B]
//                              [--server-pid PID]        (see http_bench.hpp)
//
// curl options, the same as coring's ClientSession sets for this benchmark's requests:
// keep-alive (curl's default), CURLMOPT_PIPELINING = CURLPIPE_MULTIPLEX and CURLOPT_PIPEWAIT
// (HTTP/2: the requests wait for the one connection and share it), CURLOPT_HTTP_VERSION 1.1 or
// 2TLS, no Accept-Encoding, no proxy (CURLOPT_PROXY "": the environment's proxy variables are
// not read, as with ClientSession's trust_env = false), TLS verification against --cafile, at
// most 100 connections open and 100 kept idle (CURLMOPT_MAX_TOTAL_CONNECTIONS and
// CURLMOPT_MAXCONNECTS: aiohttp's and ClientSession's default limit). What ClientSession adds
// for its features (cookie engine, header parsing, timeouts, redirects) is not here.
// Sockets: CURLMOPT_SOCKETFUNCTION registers them in the epoll (level-triggered, as curl
// expects); CURLMOPT_TIMERFUNCTION sets the deadline that becomes epoll_wait's timeout.
#include <curl/curl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "http_bench.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Slot {
    CURL* easy = nullptr;
    std::string body;
    char error[CURL_ERROR_SIZE] = {};
};

struct Loop {
    int epfd = -1;
    CURLM* multi = nullptr;
    bool timer_armed = false;
    Clock::time_point deadline;
};

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "http_curl_epoll: %s\n", what);
    std::exit(1);
}

// Sockets curl opened (CURLOPT_SOCKOPTFUNCTION runs once per new socket): the warm-up opens
// the connections, the measured window should open none.
long sockets_opened = 0;

int on_sockopt(void*, curl_socket_t, curlsocktype) {
    ++sockets_opened;
    return CURL_SOCKOPT_OK;
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
    static_cast<Slot*>(user)->body.append(data, size * n);
    return size * n;
}

// CURLMOPT_SOCKETFUNCTION: what curl wants to hear about a socket. The per-socket pointer
// (curl_multi_assign) records whether the socket is in the epoll already.
int on_socket(CURL*, curl_socket_t fd, int what, void* user, void* socketp) {
    auto* loop = static_cast<Loop*>(user);
    if (what == CURL_POLL_REMOVE) {
        if (socketp != nullptr) {
            epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, nullptr);
            curl_multi_assign(loop->multi, fd, nullptr);
        }
        return 0;
    }
    epoll_event ev{};
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    if (socketp == nullptr) {
        if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            die("epoll_ctl ADD");
        }
        curl_multi_assign(loop->multi, fd, loop); // any non-null pointer: "registered"
    } else if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) != 0) {
        die("epoll_ctl MOD");
    }
    return 0;
}

// CURLMOPT_TIMERFUNCTION: -1 removes the timer, otherwise curl wants a socket_action
// (CURL_SOCKET_TIMEOUT) in timeout_ms.
int on_timer(CURLM*, long timeout_ms, void* user) {
    auto* loop = static_cast<Loop*>(user);
    if (timeout_ms < 0) {
        loop->timer_armed = false;
    } else {
        loop->timer_armed = true;
        loop->deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    }
    return 0;
}

// Runs GETs on the slots until `total` have completed, at most slots.size() in flight. Counts
// the failures (transfer error, status other than 200, body size other than expected).
std::uint64_t
run_phase(Loop& loop, std::vector<Slot>& slots, std::uint64_t total, long long expect_bytes) {
    std::uint64_t issued = 0, done = 0, failed = 0;
    for (Slot& s : slots) {
        if (issued == total) {
            break;
        }
        s.body.clear();
        curl_multi_add_handle(loop.multi, s.easy);
        ++issued;
    }
    int running = 0;
    epoll_event events[128];
    while (done < total) {
        int timeout = -1;
        if (loop.timer_armed) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(loop.deadline - Clock::now());
            timeout = static_cast<int>(std::max<long long>(0, left.count()));
        }
        int n = epoll_wait(loop.epfd, events, 128, timeout);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_wait");
        }
        for (int i = 0; i < n; ++i) {
            int flags = (events[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                        (events[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                        (events[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(loop.multi, events[i].data.fd, flags, &running);
        }
        if (loop.timer_armed && Clock::now() >= loop.deadline) {
            loop.timer_armed = false;
            curl_multi_socket_action(loop.multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        int queued = 0;
        while (CURLMsg* m = curl_multi_info_read(loop.multi, &queued)) {
            if (m->msg != CURLMSG_DONE) {
                continue;
            }
            CURL* easy = m->easy_handle;
            CURLcode result = m->data.result;
            Slot* s = nullptr;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, &s);
            long status = 0;
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
            if (result != CURLE_OK || status != 200 ||
                (expect_bytes >= 0 && s->body.size() != static_cast<std::size_t>(expect_bytes))) {
                if (failed++ < 5) {
                    std::fprintf(stderr,
                                 "http_curl_epoll: request failed: %s (%s), status %ld, %zu B\n",
                                 curl_easy_strerror(result),
                                 s->error,
                                 status,
                                 s->body.size());
                }
            }
            ++done;
            curl_multi_remove_handle(loop.multi, easy);
            if (issued < total) {
                s->body.clear();
                curl_multi_add_handle(loop.multi, easy);
                ++issued;
            }
        }
    }
    return failed;
}

} // namespace

int main(int argc, char** argv) {
    httpbench::Options o = httpbench::parse(argc, argv);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        die("curl_global_init");
    }
    Loop loop;
    loop.epfd = epoll_create1(EPOLL_CLOEXEC);
    loop.multi = curl_multi_init();
    if (loop.epfd < 0 || loop.multi == nullptr) {
        die("setup");
    }
    curl_multi_setopt(loop.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(loop.multi, CURLMOPT_SOCKETDATA, &loop);
    curl_multi_setopt(loop.multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(loop.multi, CURLMOPT_TIMERDATA, &loop);
    curl_multi_setopt(loop.multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(loop.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 100L);
    // Keep up to 100 idle connections (curl's default, 4 per easy handle in the multi handle,
    // closes some when the handles are out between transfers), as ClientSession does.
    curl_multi_setopt(loop.multi, CURLMOPT_MAXCONNECTS, 100L);

    std::vector<Slot> slots(static_cast<std::size_t>(o.concurrency));
    for (Slot& s : slots) {
        s.easy = curl_easy_init();
        CURL* e = s.easy;
        curl_easy_setopt(e, CURLOPT_URL, o.url.c_str());
        curl_easy_setopt(e, CURLOPT_PRIVATE, &s);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s.error);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(
                e, CURLOPT_HTTP_VERSION, o.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
        curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
        curl_easy_setopt(e, CURLOPT_PROXY, ""); // no proxy from the environment (trust_env off)
        if (!o.cafile.empty()) {
            curl_easy_setopt(e, CURLOPT_CAINFO, o.cafile.c_str());
        }
    }

    std::uint64_t failed = 0;
    if (o.warmup > 0) {
        failed += run_phase(loop, slots, o.warmup, o.expect_bytes);
    }
    long warmup_sockets = sockets_opened;
    httpbench::Window window(o);
    window.start();
    failed += run_phase(loop, slots, o.requests, o.expect_bytes);
    window.stop();

    long version = 0;
    curl_easy_getinfo(slots[0].easy, CURLINFO_HTTP_VERSION, &version);
    std::fprintf(stderr,
                 "http_curl_epoll: %llu + %llu requests over %s, connections opened: %ld "
                 "in the warm-up, %ld in the window; %llu failed\n",
                 static_cast<unsigned long long>(o.warmup),
                 static_cast<unsigned long long>(o.requests),
                 version == CURL_HTTP_VERSION_2_0 ? "HTTP/2" : "HTTP/1.1",
                 warmup_sockets,
                 sockets_opened - warmup_sockets,
                 static_cast<unsigned long long>(failed));
    for (Slot& s : slots) {
        curl_easy_cleanup(s.easy);
    }
    curl_multi_cleanup(loop.multi);
    curl_global_cleanup();
    close(loop.epfd);
    return failed == 0 ? 0 : 1;
}
