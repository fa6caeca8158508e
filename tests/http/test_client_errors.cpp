// SPDX-License-Identifier: MIT
// Tests of http/errors.hpp: which exception each failure raises (bad URLs, refused and
// unresolvable hosts, certificates, servers that hang up, break the body or loop redirects,
// HTTP error statuses) and the three time limits (after aiohttp's client_exceptions).
#include <coring/errors.hpp>
#include <coring/http/client.hpp>
#include <coring/http/errors.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing/catch2.hpp>
#include <coring/wait.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "http/http_helpers.hpp"
#include "http/http_servers.hpp"
#include "net/net_helpers.hpp"
#include "support/test_support.hpp"
#include "tls/tls_certs.hpp"

using namespace std::chrono_literals;
using coring::Task;
using coring::http::ClientOptions;
using coring::http::ClientResponse;
using coring::http::ClientSession;
using coring::http::RequestOptions;
using coring::test::holds;
using coring::test::Nginx;
using coring::test::TestServer;
using coring::test::what_of;

namespace {

#define CORING_REQUIRE_NGINX()                                                                     \
    do {                                                                                           \
        if (!coring::test::have_program(Nginx::binary)) {                                          \
            CORING_SKIP("nginx is not installed (" << Nginx::binary << ")");                       \
        }                                                                                          \
    } while (false)

bool names(const std::exception_ptr& e, const std::string& url) {
    return what_of(e).find(url) != std::string::npos;
}

std::string url_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const coring::http::ClientError& x) {
        return x.url();
    } catch (...) {
        return "(not a ClientError)";
    }
}

/// A GET with options, its body read; the exception it ended with and how long it took.
struct Timed {
    std::exception_ptr error;
    double seconds = 0;
};

Task<Timed> timed_get(ClientSession& s, std::string url, RequestOptions o) {
    auto start = std::chrono::steady_clock::now();
    std::exception_ptr e = co_await coring::test::outcome(s, "GET", std::move(url), std::move(o));
    co_return Timed{
            e, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
}

RequestOptions with_timeout(coring::http::ClientTimeout t) {
    RequestOptions o;
    o.timeout = t;
    return o;
}

} // namespace

CORING_TEST_CASE("HTTP errors: a malformed or non-HTTP URL raises InvalidUrl naming it", "[http]") {
    ClientSession session;
    for (std::string url : {"127.0.0.1/index.html",
                            "ftp://127.0.0.1/file",
                            "http://",
                            "garbage",
                            "http://exa mple.org/",
                            "",
                            "file:///etc/passwd",
                            "http://[::1/",
                            "https://:80/"}) {
        std::exception_ptr e = co_await coring::test::get_outcome(session, url);
        INFO("URL '" << url << "' gave: " << what_of(e));
        CHECK(holds<coring::http::InvalidUrl>(e));
        CHECK(names(e, url));
        CHECK(url_of(e) == url);
    }
    CHECK(session.active_transfers() == 0);
    co_await session.close();
}

CORING_TEST_CASE("HTTP errors: a refused connection raises ClientConnectorError", "[http]") {
    ClientSession session;
    std::string url = "http://127.0.0.1:" + std::to_string(coring::test::unused_port()) + "/x";
    std::exception_ptr e = co_await coring::test::get_outcome(session, url);
    INFO(what_of(e));
    CHECK(holds<coring::http::ClientConnectorError>(e));
    CHECK(!holds<coring::http::ClientSslError>(e));
    CHECK(names(e, url));
    CHECK(url_of(e) == url);
    co_await session.close();
}

CORING_TEST_CASE("HTTP errors: a name that does not resolve raises ClientConnectorError without "
                 "blocking the loop",
                 "[http]") {
    ClientSession session;
    coring::test::LagProbe probe;
    auto probing = coring::create_task(probe.run());
    std::string url = "http://nonexistent.invalid/";
    std::exception_ptr e;
    try {
        e = co_await coring::wait_for(coring::test::get_outcome(session, url), 30s);
    } catch (const coring::TimeoutError&) {
        FAIL_CHECK("resolving nonexistent.invalid took more than 30 s");
    }
    probe.stop = true;
    co_await probing;
    INFO(what_of(e));
    CHECK(holds<coring::http::ClientConnectorError>(e));
    CHECK(names(e, url));
    INFO("timer lateness while resolving: max " << probe.max() << " ms over "
                                                << probe.lateness_ms.size() << " ticks");
    CHECK(probe.max() < 50.0);
    co_await session.close();
}

TEST_CASE("HTTP errors: an untrusted, wrong-host or expired certificate raises "
          "ClientConnectorCertificateError",
          "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        {
            // The system's CA store does not know the test CA.
            ClientSession session;
            std::string url = nginx.https_url("/index.html");
            std::exception_ptr e = co_await coring::test::get_outcome(session, url);
            INFO("untrusted: " << what_of(e));
            CHECK(holds<coring::http::ClientConnectorCertificateError>(e));
            CHECK(names(e, url));
            co_await session.close();
        }
        {
            ClientOptions o;
            o.ssl.cafile = coring::test::tls_files().ca;
            ClientSession session(std::move(o));
            std::string wrong = nginx.wrong_host_url("/index.html");
            std::exception_ptr e = co_await coring::test::get_outcome(session, wrong);
            INFO("wrong host: " << what_of(e));
            CHECK(holds<coring::http::ClientConnectorCertificateError>(e));
            CHECK(names(e, wrong));
            std::string expired = nginx.expired_url("/index.html");
            std::exception_ptr x = co_await coring::test::get_outcome(session, expired);
            INFO("expired: " << what_of(x));
            CHECK(holds<coring::http::ClientConnectorCertificateError>(x));
            CHECK(names(x, expired));
            // The good server still works on this session.
            coring::test::Fetched f =
                    co_await coring::test::fetch(session, nginx.https_url("/index.html"));
            CHECK(f.status == 200);
            co_await session.close();
        }
        {
            // verify=false accepts them (aiohttp's ssl=False).
            ClientOptions o;
            o.ssl.verify = false;
            ClientSession session(std::move(o));
            coring::test::Fetched f =
                    co_await coring::test::fetch(session, nginx.wrong_host_url("/index.html"));
            CHECK(f.status == 200);
            CHECK(f.body == coring::test::index_html());
            coring::test::Fetched g =
                    co_await coring::test::fetch(session, nginx.expired_url("/index.html"));
            CHECK(g.status == 200);
            co_await session.close();
        }
    });
}

CORING_TEST_CASE(
        "HTTP errors: a server that closes without answering raises ServerDisconnectedError",
        "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        std::string url = srv.url("/close");
        std::exception_ptr e = co_await coring::test::get_outcome(session, url);
        INFO("fresh connection: " << what_of(e));
        CHECK(holds<coring::http::ServerDisconnectedError>(e));
        CHECK(names(e, url));
        // On a kept-alive connection too.
        coring::test::Fetched f = co_await coring::test::fetch(session, srv.url("/echo"));
        CHECK(f.status == 200);
        std::exception_ptr k = co_await coring::test::get_outcome(session, url);
        INFO("reused connection: " << what_of(k));
        CHECK(holds<coring::http::ServerDisconnectedError>(k));
        CHECK(session.active_transfers() == 0);
        co_await session.close();
    }
    co_await srv.stop();
}

CORING_TEST_CASE("HTTP errors: a body broken by a reset raises ClientPayloadError after its data",
                 "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        std::string url = srv.url("/reset");
        ClientResponse r = co_await session.get(url);
        CHECK(r.status == 200);
        std::string got;
        std::exception_ptr e;
        try {
            for (;;) {
                std::string piece = co_await r.content.read(4096);
                if (piece.empty()) {
                    break;
                }
                got += piece;
            }
        } catch (...) {
            e = std::current_exception();
        }
        INFO(what_of(e));
        CHECK(holds<coring::http::ClientPayloadError>(e));
        CHECK(names(e, url));
        // What arrived before the break is read first.
        CHECK(got == std::string(1000, 'r'));
        co_await session.close();
    }
    co_await srv.stop();
}

CORING_TEST_CASE("HTTP errors: malformed chunked encoding raises ClientPayloadError", "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        std::string url = srv.url("/bad-chunked");
        ClientResponse r = co_await session.get(url);
        CHECK(r.status == 200);
        std::exception_ptr e;
        try {
            static_cast<void>(co_await r.read());
        } catch (...) {
            e = std::current_exception();
        }
        INFO(what_of(e));
        CHECK(holds<coring::http::ClientPayloadError>(e));
        CHECK(names(e, url));
        CHECK(session.active_transfers() == 0);
        // The session goes on.
        coring::test::Fetched f = co_await coring::test::fetch(session, srv.url("/echo"));
        CHECK(f.status == 200);
        co_await session.close();
    }
    co_await srv.stop();
}

TEST_CASE("HTTP errors: a redirect loop raises TooManyRedirects", "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        TestServer srv = co_await TestServer::start();
        {
            ClientSession session;
            std::string url = srv.url("/loop");
            std::exception_ptr e = co_await coring::test::get_outcome(session, url);
            INFO(what_of(e));
            CHECK(holds<coring::http::TooManyRedirects>(e));
            CHECK(holds<coring::http::ClientResponseError>(e));
            CHECK(names(e, url));
            std::exception_ptr n =
                    co_await coring::test::get_outcome(session, nginx.http_url("/loop"));
            INFO(what_of(n));
            CHECK(holds<coring::http::TooManyRedirects>(n));
            co_await session.close();
        }
        {
            ClientOptions o;
            o.max_redirects = 2;
            ClientSession session(std::move(o));
            ClientResponse ok = co_await session.get(srv.url("/redirect/2"));
            CHECK(ok.status == 200);
            CHECK(ok.redirects == 2);
            static_cast<void>(co_await ok.read());
            std::exception_ptr e =
                    co_await coring::test::get_outcome(session, srv.url("/redirect/3"));
            INFO(what_of(e));
            CHECK(holds<coring::http::TooManyRedirects>(e));
            co_await session.close();
        }
        co_await srv.stop();
    });
}

CORING_TEST_CASE("HTTP errors: a 1 MiB response header raises a ClientError", "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        std::string url = srv.url("/big-header");
        std::exception_ptr e = co_await coring::test::get_outcome(session, url);
        INFO(what_of(e));
        CHECK(holds<coring::http::ClientError>(e));
        CHECK(names(e, url));
        CHECK(session.active_transfers() == 0);
        coring::test::Fetched f = co_await coring::test::fetch(session, srv.url("/echo"));
        CHECK(f.status == 200);
        co_await session.close();
    }
    co_await srv.stop();
}

TEST_CASE("HTTP errors: raise_for_status raises ClientResponseError for 4xx and 5xx",
          "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        TestServer srv = co_await TestServer::start();
        {
            ClientSession session;
            std::string url = nginx.http_url("/missing.html");
            ClientResponse r = co_await session.get(url);
            CHECK(r.status == 404);
            CHECK(r.reason == "Not Found");
            CHECK(!r.ok());
            std::exception_ptr e;
            try {
                r.raise_for_status();
            } catch (...) {
                e = std::current_exception();
            }
            INFO(what_of(e));
            CHECK(holds<coring::http::ClientResponseError>(e));
            try {
                std::rethrow_exception(e);
            } catch (const coring::http::ClientResponseError& x) {
                CHECK(x.status() == 404);
                CHECK(x.url() == url);
            } catch (...) {
            }
            CHECK(names(e, url));
            static_cast<void>(co_await r.read());

            ClientResponse s = co_await session.get(srv.url("/status/503"));
            CHECK(s.status == 503);
            std::exception_ptr f;
            try {
                s.raise_for_status();
            } catch (...) {
                f = std::current_exception();
            }
            CHECK(holds<coring::http::ClientResponseError>(f));
            std::string body = co_await s.text();
            CHECK(body == "status 503"); // the body stays readable

            ClientResponse ok = co_await session.get(nginx.http_url("/index.html"));
            CHECK_NOTHROW(ok.raise_for_status());
            static_cast<void>(co_await ok.read());
            co_await session.close();
        }
        co_await srv.stop();
    });
}

TEST_CASE("HTTP errors: json() on a text/html body raises ContentTypeError", "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        TestServer srv = co_await TestServer::start();
        {
            ClientSession session;
            std::string url = nginx.http_url("/index.html");
            ClientResponse r = co_await session.get(url);
            std::exception_ptr e;
            try {
                static_cast<void>(co_await r.json());
            } catch (...) {
                e = std::current_exception();
            }
            INFO(what_of(e));
            CHECK(holds<coring::http::ContentTypeError>(e));
            CHECK(names(e, url));

            ClientResponse h = co_await session.get(srv.url("/html-json"));
            std::exception_ptr f;
            try {
                static_cast<void>(co_await h.json());
            } catch (...) {
                f = std::current_exception();
            }
            CHECK(holds<coring::http::ContentTypeError>(f));
            ClientResponse g = co_await session.get(srv.url("/html-json"));
            nlohmann::json j = co_await g.json(false);
            CHECK(j == nlohmann::json{{"a", 1}});

            // Not JSON at all, unchecked: nlohmann's parse_error.
            ClientResponse b = co_await session.get(url);
            std::exception_ptr p;
            try {
                static_cast<void>(co_await b.json(false));
            } catch (...) {
                p = std::current_exception();
            }
            CHECK(holds<nlohmann::json::parse_error>(p));
            co_await session.close();
        }
        co_await srv.stop();
    });
}

CORING_TEST_CASE("HTTP timeouts: total bounds a slow answer and a slow body", "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        std::string url = srv.url("/sleep?ms=10000");
        Timed t = co_await timed_get(session, url, with_timeout({.total = 300ms}));
        INFO(what_of(t.error) << " after " << t.seconds << " s");
        CHECK(holds<coring::TimeoutError>(t.error));
        CHECK(!holds<coring::http::ClientError>(t.error));
        CHECK(names(t.error, url));
        CHECK(t.seconds >= 0.25);
        CHECK(t.seconds < 5.0);

        // The headers come in time, the body does not.
        Timed b =
                co_await timed_get(session, srv.url("/stall-body"), with_timeout({.total = 300ms}));
        INFO(what_of(b.error) << " after " << b.seconds << " s");
        CHECK(holds<coring::TimeoutError>(b.error));
        CHECK(b.seconds >= 0.25);
        CHECK(b.seconds < 5.0);

        // Fast enough: no error.
        Timed ok =
                co_await timed_get(session, srv.url("/sleep?ms=10"), with_timeout({.total = 5s}));
        CHECK(!ok.error);
        CHECK(session.active_transfers() == 0);
        co_await session.close();
    }
    {
        // A session-wide total.
        ClientOptions o;
        o.timeout.total = 300ms;
        ClientSession session(std::move(o));
        Timed t = co_await timed_get(session, srv.url("/sleep?ms=10000"), RequestOptions{});
        CHECK(holds<coring::TimeoutError>(t.error));
        CHECK(t.seconds < 5.0);
        // A request's own limit replaces it.
        Timed l =
                co_await timed_get(session, srv.url("/sleep?ms=600"), with_timeout({.total = 5s}));
        INFO(what_of(l.error));
        CHECK(!l.error);
        co_await session.close();
    }
    co_await srv.stop();
}

TEST_CASE("HTTP timeouts: connect bounds a connection the server never accepts", "[http]") {
    // A listening socket with a backlog of 0 that never accepts: once its queue holds one
    // connection, the kernel drops further SYNs, so a connect hangs in SYN retries.
    int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(lfd, 0) == 0);
    socklen_t len = sizeof a;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    std::vector<int> fillers;
    for (int i = 0; i < 3; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        fillers.push_back(fd);
    }
    std::string url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/";
    coring::test::run_test([&]() -> Task<> {
        co_await coring::sleep(50ms); // let the first fillers' handshakes complete
        ClientSession session;
        Timed t = co_await timed_get(session, url, with_timeout({.connect = 300ms}));
        INFO(what_of(t.error) << " after " << t.seconds << " s");
        CHECK(holds<coring::TimeoutError>(t.error));
        CHECK(names(t.error, url));
        CHECK(what_of(t.error).find("connect") != std::string::npos);
        CHECK(t.seconds >= 0.25);
        CHECK(t.seconds < 5.0);
        CHECK(session.active_transfers() == 0);
        co_await session.close();
    });
    for (int fd : fillers) {
        ::close(fd);
    }
    ::close(lfd);
}

CORING_TEST_CASE("HTTP timeouts: sock_read bounds a pause of the server, not of the reader",
                 "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        // No headers at all.
        std::string never = srv.url("/never");
        Timed h = co_await timed_get(session, never, with_timeout({.sock_read = 300ms}));
        INFO("headers: " << what_of(h.error) << " after " << h.seconds << " s");
        CHECK(holds<coring::TimeoutError>(h.error));
        CHECK(names(h.error, never));
        CHECK(h.seconds >= 0.25);
        CHECK(h.seconds < 5.0);

        // Headers, 10 bytes, then nothing.
        Timed b = co_await timed_get(
                session, srv.url("/stall-body"), with_timeout({.sock_read = 300ms}));
        INFO("body: " << what_of(b.error) << " after " << b.seconds << " s");
        CHECK(holds<coring::TimeoutError>(b.error));
        CHECK(b.seconds >= 0.25);
        CHECK(b.seconds < 5.0);

        // Pieces 5 ms apart never pause for 300 ms.
        Timed t = co_await timed_get(
                session, srv.url("/trickle"), with_timeout({.sock_read = 300ms}));
        INFO("trickle: " << what_of(t.error));
        CHECK(!t.error);

        // A body nobody reads for a while: the pause is the client's, not the server's.
        RequestOptions ro;
        ro.timeout.sock_read = 200ms;
        ClientResponse r = co_await session.get(srv.url("/bytes?n=3145728"), std::move(ro));
        co_await coring::sleep(600ms);
        std::exception_ptr e;
        std::size_t n = 0;
        try {
            std::string body = co_await r.read();
            n = body.size();
        } catch (...) {
            e = std::current_exception();
        }
        INFO("slow reader: " << what_of(e));
        CHECK(!e);
        CHECK(n == 3145728);
        CHECK(session.active_transfers() == 0);

        // The session is fine after all that.
        coring::test::Fetched f = co_await coring::test::fetch(session, srv.url("/echo"));
        CHECK(f.status == 200);
        co_await session.close();
    }
    co_await srv.stop();
}

CORING_TEST_CASE("HTTP errors: a body cut short or badly gzipped raises ClientPayloadError",
                 "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        std::string url = srv.url("/short");
        ClientResponse r = co_await session.get(url);
        CHECK(r.status == 200);
        std::string got;
        std::exception_ptr e;
        try {
            for (;;) {
                std::string piece = co_await r.content.read(4096);
                if (piece.empty()) {
                    break;
                }
                got += piece;
            }
        } catch (...) {
            e = std::current_exception();
        }
        INFO("short body: " << what_of(e));
        CHECK(holds<coring::http::ClientPayloadError>(e));
        CHECK(names(e, url));
        CHECK(got == std::string(50, 's'));

        std::string gz = srv.url("/bad-gzip");
        std::exception_ptr g = co_await coring::test::get_outcome(session, gz);
        INFO("bad gzip: " << what_of(g));
        CHECK(holds<coring::http::ClientPayloadError>(g));
        CHECK(names(g, gz));
        CHECK(session.active_transfers() == 0);
        co_await session.close();
    }
    co_await srv.stop();
}

CORING_TEST_CASE("HTTP errors: a redirect to a scheme other than http or https is not followed",
                 "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        // ftp:// pointing at the test server itself: were it followed, curl would wait for
        // an FTP greeting that never comes (the 5 s total limit then fires).
        std::string ftp = "ftp://127.0.0.1:" + std::to_string(srv.port()) + "/x";
        for (std::string target :
             {ftp, std::string("file:///etc/passwd"), std::string("gopher://127.0.0.1/")}) {
            std::string url = srv.url("/redirect-to?url=" + target);
            RequestOptions ro;
            ro.timeout.total = 5s;
            Timed t = co_await timed_get(session, url, std::move(ro));
            INFO("redirect to " << target << ": " << what_of(t.error) << " after " << t.seconds
                                << " s");
            CHECK(holds<coring::http::ClientError>(t.error));
            CHECK(t.seconds < 2.0);
        }
        CHECK(session.active_transfers() == 0);
        co_await session.close();
    }
    co_await srv.stop();
}

CORING_TEST_CASE("HTTP timeouts: a zero limit means none and each error names its limit",
                 "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientOptions o;
        o.timeout.total = 200ms;
        ClientSession session(std::move(o));
        // The request's zero total lifts the session's 200 ms.
        Timed z =
                co_await timed_get(session, srv.url("/sleep?ms=500"), with_timeout({.total = 0ms}));
        INFO("total 0: " << what_of(z.error));
        CHECK(!z.error);
        CHECK(z.seconds >= 0.45);

        Timed t = co_await timed_get(session, srv.url("/sleep?ms=5000"), RequestOptions{});
        INFO("total: " << what_of(t.error));
        CHECK(what_of(t.error).find("total") != std::string::npos);

        Timed s = co_await timed_get(
                session, srv.url("/never"), with_timeout({.total = 0ms, .sock_read = 200ms}));
        INFO("sock_read: " << what_of(s.error));
        CHECK(holds<coring::TimeoutError>(s.error));
        CHECK(what_of(s.error).find("sock_read") != std::string::npos);
        co_await session.close();
    }
    co_await srv.stop();
}
