// SPDX-License-Identifier: MIT
// Tests of http/client.hpp: ClientSession against nginx (HTTP/1.1, HTTPS, HTTP/2, gzip), python's
// http.server and an in-process server: request options, redirects, cookies, connection limits,
// loop lag and close (after aiohttp's tests/test_client_functional.py).
#include <coring/gather.hpp>
#include <coring/http/client.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "http/http_helpers.hpp"
#include "http/http_servers.hpp"
#include "support/test_support.hpp"
#include "tls/tls_certs.hpp"

using namespace std::chrono_literals;
using coring::Task;
using coring::TaskHandle;
using coring::http::ClientOptions;
using coring::http::ClientResponse;
using coring::http::ClientSession;
using coring::http::RequestOptions;
using coring::test::Fetched;
using coring::test::Nginx;
using coring::test::TestServer;

namespace {

#define CORING_REQUIRE_NGINX()                                                                     \
    do {                                                                                           \
        if (!coring::test::have_program(Nginx::binary)) {                                          \
            CORING_SKIP("nginx is not installed (" << Nginx::binary << ")");                       \
        }                                                                                          \
    } while (false)

ClientOptions with_test_ca() {
    ClientOptions o;
    o.ssl.cafile = coring::test::tls_files().ca;
    return o;
}

/// The echoed request of the in-process server's /echo.
Task<nlohmann::json> echo(ClientSession& s, std::string method, std::string url, RequestOptions o) {
    ClientResponse r = co_await s.request(std::move(method), std::move(url), std::move(o));
    CHECK(r.status == 200);
    nlohmann::json j = co_await r.json();
    co_return j;
}

Task<nlohmann::json> echo(ClientSession& s, std::string url) {
    RequestOptions none;
    co_return co_await echo(s, "GET", std::move(url), std::move(none));
}

Task<std::vector<Fetched>> fetch_all(ClientSession& s, std::vector<std::string> urls) {
    std::vector<Task<Fetched>> tasks;
    for (auto& u : urls) {
        tasks.push_back(coring::test::fetch(s, u));
    }
    co_return co_await coring::gather(std::move(tasks));
}

} // namespace

TEST_CASE("HTTP client: a GET over HTTP/1.1 returns nginx's status, headers and file",
          "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        ClientSession session;
        std::string url = nginx.http_url("/index.html");
        ClientResponse r = co_await session.get(url);
        CHECK(r.status == 200);
        CHECK(r.reason == "OK");
        CHECK(r.ok());
        CHECK(r.version == "HTTP/1.1");
        CHECK(r.method == "GET");
        CHECK(r.url == url);
        CHECK(r.redirects == 0);
        auto ct = r.headers.get("content-type");
        CHECK(ct == std::optional<std::string_view>("text/html"));
        CHECK(r.headers.get("CONTENT-TYPE") == ct);
        CHECK(r.headers.get("Content-Type") == ct);
        CHECK(r.headers.contains("server"));
        // nginx gzips text/html whenever gzip is on; the body below arrives decompressed.
        CHECK(coring::test::header_or(r.headers, "content-encoding") == std::string("gzip"));
        std::string body = co_await r.text();
        CHECK(body == coring::test::index_html());
        CHECK(r.content.at_eof());

        // A binary 1 MiB file, byte for byte.
        Fetched big = co_await coring::test::fetch(session, nginx.http_url("/big.bin"));
        CHECK(big.status == 200);
        CHECK(big.body.size() == coring::test::one_mib_file().size());
        CHECK(big.body == coring::test::one_mib_file());
        ClientResponse h = co_await session.get(nginx.http_url("/big.bin"));
        CHECK(coring::test::header_or(h.headers, "content-length") == "1048576");
        CHECK(coring::test::header_or(h.headers, "content-type") == "application/octet-stream");
        static_cast<void>(co_await h.read());
        co_await session.close();
        CHECK(session.active_transfers() == 0);
    });
}

TEST_CASE("HTTP client: HTTPS with the test CA negotiates HTTP/2 with nginx", "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        ClientSession session(with_test_ca());
        ClientResponse r = co_await session.get(nginx.https_url("/index.html"));
        CHECK(r.status == 200);
        CHECK(r.version == "HTTP/2");
        CHECK(r.reason.empty());
        CHECK(coring::test::header_or(r.headers, "content-type") == std::string("text/html"));
        std::string body = co_await r.text();
        CHECK(body == coring::test::index_html());
        co_await session.close();
    });
}

TEST_CASE("HTTP client: a client certificate is sent to a server that requires one",
          "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        {
            ClientOptions o = with_test_ca();
            o.ssl.certfile = coring::test::tls_files().client_cert;
            o.ssl.keyfile = coring::test::tls_files().client_key;
            ClientSession session(std::move(o));
            Fetched f = co_await coring::test::fetch(session, nginx.mtls_url("/index.html"));
            CHECK(f.status == 200);
            CHECK(f.body == coring::test::index_html());
            co_await session.close();
        }
        {
            // Without one, nginx answers 400 ("No required SSL certificate was sent").
            ClientSession session(with_test_ca());
            Fetched f = co_await coring::test::fetch(session, nginx.mtls_url("/index.html"));
            CHECK(f.status == 400);
            co_await session.close();
        }
    });
}

TEST_CASE("HTTP client: HTTPS without http2 uses HTTP/1.1 over TLS", "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        ClientOptions o = with_test_ca();
        o.http2 = false;
        ClientSession session(std::move(o));
        ClientResponse r = co_await session.get(nginx.https_url("/big.bin"));
        CHECK(r.status == 200);
        CHECK(r.version == "HTTP/1.1");
        CHECK(r.reason == "OK");
        std::string body = co_await r.read();
        CHECK(body == coring::test::one_mib_file());
        co_await session.close();
    });
}

TEST_CASE("HTTP client: 50 concurrent GETs over HTTP/2 all arrive intact", "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        ClientSession session(with_test_ca());
        std::vector<std::string> urls;
        for (int i = 0; i < 50; ++i) {
            urls.push_back(nginx.https_url(i % 5 == 0 ? "/big.bin" : "/index.html"));
        }
        std::vector<Fetched> got = co_await fetch_all(session, urls);
        REQUIRE(got.size() == 50);
        int good = 0;
        for (std::size_t i = 0; i < got.size(); ++i) {
            const std::string& want =
                    i % 5 == 0 ? coring::test::one_mib_file() : coring::test::index_html();
            good += got[i].status == 200 && got[i].version == "HTTP/2" && got[i].body == want;
        }
        CHECK(good == 50);
        // Multiplexed: one connection carried them all (curl needs PIPEWAIT for that when
        // they all start before the first connection has negotiated HTTP/2).
        std::set<std::string> connections;
        for (auto& f : got) {
            connections.insert(coring::test::header_or(f.headers, "x-connection"));
        }
        INFO("nginx connections used: " << connections.size());
        CHECK(connections.size() == 1);
        CHECK(session.active_transfers() == 0);
        co_await session.close();
    });
}

TEST_CASE("HTTP client: a gzip-encoded JSON body arrives decompressed", "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        {
            ClientSession session;
            ClientResponse r = co_await session.get(nginx.http_url("/data.json"));
            CHECK(r.status == 200);
            CHECK(coring::test::header_or(r.headers, "content-encoding") == std::string("gzip"));
            std::string body = co_await r.text();
            CHECK(body.size() == coring::test::json_file().size());
            CHECK(body == coring::test::json_file());
            ClientResponse again = co_await session.get(nginx.http_url("/data.json"));
            nlohmann::json j = co_await again.json();
            CHECK(j == nlohmann::json::parse(coring::test::json_file()));
            co_await session.close();
        }
        {
            // Over HTTP/2 too.
            ClientSession session(with_test_ca());
            ClientResponse r = co_await session.get(nginx.https_url("/data.json"));
            CHECK(r.version == "HTTP/2");
            CHECK(coring::test::header_or(r.headers, "content-encoding") == std::string("gzip"));
            std::string body = co_await r.text();
            CHECK(body == coring::test::json_file());
            co_await session.close();
        }
        {
            // auto_decompress=false: the body as sent, when asked for gzip explicitly.
            ClientOptions o;
            o.auto_decompress = false;
            ClientSession session(std::move(o));
            RequestOptions ro;
            ro.headers = {{"Accept-Encoding", "gzip"}};
            ClientResponse r = co_await session.get(nginx.http_url("/data.json"), std::move(ro));
            CHECK(coring::test::header_or(r.headers, "content-encoding") == std::string("gzip"));
            std::string raw = co_await r.read();
            CHECK(raw.size() < coring::test::json_file().size());
            CHECK(raw.substr(0, 2) == "\x1f\x8b");
            co_await session.close();
        }
    });
}

TEST_CASE("HTTP client: a GET from python's http.server (HTTP/1.0)", "[http][python]") {
    if (!coring::test::have_program("/usr/bin/python3")) {
        CORING_SKIP("python3 is not installed");
    }
    coring::test::PythonHttpServer py;
    coring::test::run_test([&]() -> Task<> {
        ClientSession session;
        ClientResponse r = co_await session.get(py.url("/index.html"));
        CHECK(r.status == 200);
        CHECK(r.version == "HTTP/1.0");
        CHECK(coring::test::header_or(r.headers, "content-type") == std::string("text/html"));
        std::string body = co_await r.text();
        CHECK(body == coring::test::index_html());
        Fetched big = co_await coring::test::fetch(session, py.url("/big.bin"));
        CHECK(big.body == coring::test::one_mib_file());
        Fetched missing = co_await coring::test::fetch(session, py.url("/missing"));
        CHECK(missing.status == 404);
        co_await session.close();
    });
}

TEST_CASE("HTTP client: 200 concurrent GETs through gather all succeed", "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        ClientSession session;
        std::vector<std::string> urls;
        for (int i = 0; i < 200; ++i) {
            urls.push_back(nginx.http_url(i % 20 == 0 ? "/big.bin" : "/index.html"));
        }
        std::vector<Fetched> got = co_await fetch_all(session, urls);
        int good = 0;
        for (std::size_t i = 0; i < got.size(); ++i) {
            const std::string& want =
                    i % 20 == 0 ? coring::test::one_mib_file() : coring::test::index_html();
            good += got[i].status == 200 && got[i].body == want;
        }
        CHECK(good == 200);
        CHECK(session.active_transfers() == 0);
        // Then, one after another, they reuse a single kept-alive connection.
        std::set<std::string> connections;
        for (int i = 0; i < 10; ++i) {
            Fetched f = co_await coring::test::fetch(session, nginx.http_url("/index.html"));
            connections.insert(coring::test::header_or(f.headers, "x-connection"));
        }
        CHECK(connections.size() == 1);
        co_await session.close();
    });
}

CORING_TEST_CASE("HTTP client: connections are kept alive and reused", "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        for (int i = 0; i < 20; ++i) {
            Fetched f = co_await coring::test::fetch(session, srv.url("/echo"));
            CHECK(f.status == 200);
        }
        CHECK(srv.accepted() == 1);
        // A kept-alive connection the server then closes is not reused: the next request
        // gets a new one instead of an error.
        Fetched bye = co_await coring::test::fetch(session, srv.url("/close-after"));
        CHECK(bye.body == "bye");
        co_await coring::sleep(20ms);
        std::exception_ptr e = co_await coring::test::get_outcome(session, srv.url("/echo"));
        INFO(coring::test::what_of(e));
        CHECK(!e);
        CHECK(srv.accepted() == 2);
        co_await session.close();
    }
    co_await srv.stop();
}

CORING_TEST_CASE("HTTP client: session headers are sent and a request's own header replaces them",
                 "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientOptions o;
        o.headers = {{"X-Session", "s"}, {"X-Both", "from session"}};
        ClientSession session(std::move(o));
        RequestOptions ro;
        ro.headers = {{"x-both", "from request"}, {"X-Request", "r"}};
        nlohmann::json j = co_await echo(session, "GET", srv.url("/echo"), std::move(ro));
        CHECK(j["headers"]["x-session"] == "s");
        CHECK(j["headers"]["x-both"] == "from request");
        CHECK(j["headers"]["x-request"] == "r");
        CHECK(j["headers"]["user-agent"] == "coring-http/0.1");
        CHECK(j["headers"]["host"] == "127.0.0.1:" + std::to_string(srv.port()));

        // Without request headers, the session's alone.
        nlohmann::json k = co_await echo(session, srv.url("/echo"));
        CHECK(k["headers"]["x-both"] == "from session");
        CHECK(!k["headers"].contains("x-request"));

        // A User-Agent header replaces user_agent.
        RequestOptions ua;
        ua.headers = {{"User-Agent", "tester/1"}};
        nlohmann::json u = co_await echo(session, "GET", srv.url("/echo"), std::move(ua));
        CHECK(u["headers"]["user-agent"] == "tester/1");
        co_await session.close();
    }
    co_await srv.stop();
}

CORING_TEST_CASE("HTTP client: params are URL-encoded and appended to the query", "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        RequestOptions ro;
        ro.params = {{"q", "c++ coroutines"},
                     {"a&b", "x=y/z?"},
                     {"utf8", "\xc3\xa9t\xc3\xa9"},
                     {"empty", ""}};
        nlohmann::json j = co_await echo(session, "GET", srv.url("/echo"), std::move(ro));
        std::string query = j["query"];
        INFO("query sent: " << query);
        auto pairs = coring::test::parse_query(query);
        std::vector<std::pair<std::string, std::string>> want{{"q", "c++ coroutines"},
                                                              {"a&b", "x=y/z?"},
                                                              {"utf8", "\xc3\xa9t\xc3\xa9"},
                                                              {"empty", ""}};
        CHECK(pairs == want);
        // Only unreserved characters and %XX escapes (and '+' for a space) in the query.
        CHECK(query.find(' ') == std::string::npos);
        CHECK(query.find("c++") == std::string::npos);

        // Appended to a query already in the URL.
        RequestOptions more;
        more.params = {{"b", "2"}};
        nlohmann::json k = co_await echo(session, "GET", srv.url("/echo?a=1"), std::move(more));
        CHECK(k["query"] == "a=1&b=2");
        co_await session.close();
    }
    co_await srv.stop();
}

CORING_TEST_CASE("HTTP client: a json body is sent as application/json", "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        nlohmann::json payload{{"name", "coring"}, {"stars", 5}, {"tags", {"a", "b"}}};
        RequestOptions ro;
        ro.json = payload;
        nlohmann::json j = co_await echo(session, "POST", srv.url("/echo"), std::move(ro));
        CHECK(j["method"] == "POST");
        CHECK(std::string(j["headers"]["content-type"]).rfind("application/json", 0) == 0);
        CHECK(nlohmann::json::parse(std::string(j["body"])) == payload);
        co_await session.close();
    }
    co_await srv.stop();
}

CORING_TEST_CASE("HTTP client: a form body is sent URL-encoded", "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        std::vector<std::pair<std::string, std::string>> form{
                {"a", "1"}, {"b", "x y&z=w"}, {"c", "100%"}};
        RequestOptions ro;
        ro.form = coring::http::Fields::of(form);
        nlohmann::json j = co_await echo(session, "POST", srv.url("/echo"), std::move(ro));
        CHECK(j["headers"]["content-type"] == "application/x-www-form-urlencoded");
        std::string body = j["body"];
        INFO("form body: " << body);
        CHECK(coring::test::parse_query(body) == form);
        co_await session.close();
    }
    co_await srv.stop();
}

CORING_TEST_CASE("HTTP client: a raw data body is sent byte for byte with any method", "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        const std::string data("raw\0bytes\r\n\xff end", 17);
        for (const char* method : {"POST", "PUT", "PATCH", "DELETE"}) {
            RequestOptions ro;
            ro.data = data;
            ro.headers = {{"Content-Type", "application/octet-stream"}};
            nlohmann::json j = co_await echo(session, method, srv.url("/echo"), std::move(ro));
            INFO("method " << method);
            CHECK(j["method"] == method);
            CHECK(j["headers"]["content-type"] == "application/octet-stream");
            CHECK(j["headers"]["content-length"] == std::to_string(data.size()));
            // nlohmann's dump() replaces invalid UTF-8 with an error by default, so compare
            // the bytes the server recorded instead of the JSON.
            CHECK(srv.requests().back().body == data);
        }
        // A large body (Expect: 100-continue territory).
        RequestOptions big;
        std::string big_body = coring::test::one_mib_file().substr(0, 300000);
        big.data = big_body; // a view: the string lives until the call returns
        ClientResponse r = co_await session.put(srv.url("/echo-big"), std::move(big));
        CHECK(r.status == 200);
        static_cast<void>(co_await r.read());
        CHECK(srv.requests().back().body == coring::test::one_mib_file().substr(0, 300000));
        // The named helpers send their method.
        ClientResponse d = co_await session.delete_(srv.url("/echo"));
        nlohmann::json dj = co_await d.json();
        CHECK(dj["method"] == "DELETE");
        ClientResponse p = co_await session.patch(srv.url("/echo"));
        nlohmann::json pj = co_await p.json();
        CHECK(pj["method"] == "PATCH");
        co_await session.close();
    }
    co_await srv.stop();
}

CORING_TEST_CASE("HTTP client: relative URLs are resolved against base_url", "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientOptions o;
        o.base_url = srv.url("/echo/api/");
        ClientSession session(std::move(o));
        ClientResponse r = co_await session.get("items");
        nlohmann::json j = co_await r.json();
        CHECK(j["path"] == "/echo/api/items");
        CHECK(r.url == srv.url("/echo/api/items"));
        ClientResponse q = co_await session.get("items/7?x=1");
        nlohmann::json k = co_await q.json();
        CHECK(k["path"] == "/echo/api/items/7");
        CHECK(k["query"] == "x=1");
        // An absolute URL ignores base_url.
        ClientResponse a = co_await session.get(srv.url("/echo/other"));
        nlohmann::json l = co_await a.json();
        CHECK(l["path"] == "/echo/other");
        co_await session.close();
    }
    co_await srv.stop();
}

TEST_CASE("HTTP client: redirects are followed and counted", "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        TestServer srv = co_await TestServer::start();
        {
            ClientSession session;
            ClientResponse r = co_await session.get(srv.url("/redirect/3"));
            CHECK(r.status == 200);
            CHECK(r.redirects == 3);
            CHECK(r.url == srv.url("/echo"));
            nlohmann::json j = co_await r.json();
            CHECK(j["path"] == "/echo");

            ClientResponse n = co_await session.get(nginx.http_url("/r3"));
            CHECK(n.status == 200);
            CHECK(n.redirects == 3);
            CHECK(n.url == nginx.http_url("/index.html"));
            std::string body = co_await n.text();
            CHECK(body == coring::test::index_html());

            ClientResponse m = co_await session.get(nginx.http_url("/moved"));
            CHECK(m.status == 200);
            CHECK(m.redirects == 1);
            static_cast<void>(co_await m.read());
            co_await session.close();
        }
        co_await srv.stop();
    });
}

CORING_TEST_CASE("HTTP client: allow_redirects=false returns the 3xx itself", "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        RequestOptions ro;
        ro.allow_redirects = false;
        ClientResponse r = co_await session.get(srv.url("/redirect/2"), std::move(ro));
        CHECK(r.status == 302);
        CHECK(r.redirects == 0);
        CHECK(r.url == srv.url("/redirect/2"));
        CHECK(coring::test::header_or(r.headers, "location") == std::string("/redirect/1"));
        std::string body = co_await r.text();
        CHECK(body == "redirect");
        co_await session.close();
    }
    {
        ClientOptions o;
        o.allow_redirects = false;
        ClientSession session(std::move(o));
        ClientResponse r = co_await session.get(srv.url("/redirect/2"));
        CHECK(r.status == 302);
        static_cast<void>(co_await r.read());
        // ... and a request can turn it back on.
        RequestOptions ro;
        ro.allow_redirects = true;
        ClientResponse f = co_await session.get(srv.url("/redirect/2"), std::move(ro));
        CHECK(f.status == 200);
        CHECK(f.redirects == 2);
        static_cast<void>(co_await f.read());
        co_await session.close();
    }
    co_await srv.stop();
}

CORING_TEST_CASE("HTTP client: a 303 answer to a POST is followed with a GET", "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        RequestOptions ro;
        ro.data = "payload";
        ClientResponse r = co_await session.post(srv.url("/see-other"), std::move(ro));
        CHECK(r.status == 200);
        CHECK(r.redirects == 1);
        nlohmann::json j = co_await r.json();
        CHECK(j["method"] == "GET");
        CHECK(j["body"] == "");
        co_await session.close();
    }
    co_await srv.stop();
}

CORING_TEST_CASE("HTTP client: a 307 answer to a POST is followed with the same POST and body",
                 "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        for (int code : {307, 308}) {
            RequestOptions ro;
            ro.data = "payload";
            ClientResponse r = co_await session.post(
                    srv.url("/redirect-to?code=" + std::to_string(code) + "&url=/echo"),
                    std::move(ro));
            INFO("status " << code);
            CHECK(r.status == 200);
            CHECK(r.redirects == 1);
            nlohmann::json j = co_await r.json();
            CHECK(j["method"] == "POST");
            CHECK(j["body"] == "payload");
        }
        // 302 turns a POST into a GET, as browsers (and aiohttp) do.
        RequestOptions ro;
        ro.data = "payload";
        ClientResponse r = co_await session.post(srv.url("/redirect-to?url=/echo"), std::move(ro));
        nlohmann::json j = co_await r.json();
        CHECK(j["method"] == "GET");
        co_await session.close();
    }
    co_await srv.stop();
}

CORING_TEST_CASE("HTTP client: json() accepts application/json with a charset", "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        ClientResponse r = co_await session.get(srv.url("/json-charset"));
        nlohmann::json j = co_await r.json();
        CHECK(j == nlohmann::json{{"ok", true}});
        co_await session.close();
    }
    co_await srv.stop();
}

TEST_CASE("HTTP client: HEAD returns the status and headers and no body", "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        ClientSession session;
        ClientResponse r = co_await session.head(nginx.http_url("/big.bin"));
        CHECK(r.status == 200);
        CHECK(r.method == "HEAD");
        CHECK(coring::test::header_or(r.headers, "content-length") == std::string("1048576"));
        std::string body = co_await r.read();
        CHECK(body.empty());
        CHECK(r.content.at_eof());
        // HEAD does not follow redirects unless asked.
        ClientResponse m = co_await session.head(nginx.http_url("/moved"));
        CHECK(m.status == 301);
        static_cast<void>(co_await m.read());
        RequestOptions ro;
        ro.allow_redirects = true;
        ClientResponse f = co_await session.head(nginx.http_url("/moved"), std::move(ro));
        CHECK(f.status == 200);
        CHECK(f.redirects == 1);
        static_cast<void>(co_await f.read());
        // The connection is still good for a GET.
        Fetched g = co_await coring::test::fetch(session, nginx.http_url("/index.html"));
        CHECK(g.body == coring::test::index_html());
        co_await session.close();
    });
}

CORING_TEST_CASE("HTTP client: cookies the server sets are sent back and listed", "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        CHECK(session.cookies().empty());
        Fetched set = co_await coring::test::fetch(session, srv.url("/set-cookie?token=abc123"));
        CHECK(set.status == 200);
        nlohmann::json j = co_await echo(session, srv.url("/echo"));
        CHECK(j["headers"]["cookie"] == "token=abc123");
        auto cookies = session.cookies();
        REQUIRE(cookies.size() == 1);
        CHECK(cookies[0].find("token") != std::string::npos);
        CHECK(cookies[0].find("abc123") != std::string::npos);
        CHECK(cookies[0].find("127.0.0.1") != std::string::npos);

        // A second session has its own jar.
        ClientSession other;
        nlohmann::json k = co_await echo(other, srv.url("/echo"));
        CHECK(!k["headers"].contains("cookie"));
        co_await other.close();
        co_await session.close();
    }
    co_await srv.stop();
}

namespace {

Task<int> count_one(ClientSession& s, std::string url) {
    ClientResponse r = co_await s.get(std::move(url));
    std::string body = co_await r.read();
    co_return r.status == 200 && body == "ok" ? 1 : 0;
}

} // namespace

CORING_TEST_CASE("HTTP client: 1,000 concurrent requests never open more than limit connections",
                 "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientOptions o;
        o.limit = 100;
        ClientSession session(std::move(o));
        std::vector<Task<int>> tasks;
        for (int i = 0; i < 1000; ++i) {
            tasks.push_back(count_one(session, srv.url("/count")));
        }
        std::vector<int> ok = co_await coring::gather(std::move(tasks));
        int good = 0;
        for (int v : ok) {
            good += v;
        }
        CHECK(good == 1000);
        INFO("the server saw at most " << srv.max_open_connections() << " connections, "
                                       << srv.accepted() << " in all");
        CHECK(srv.max_open_connections() <= 100);
        CHECK(srv.max_open_connections() >= 50); // the requests did run concurrently
        CHECK(session.active_transfers() == 0);
        co_await session.close();
    }
    co_await srv.stop();
}

// Hidden ([.]) from discovery: tests/CMakeLists.txt runs it on its own (RUN_SERIAL), since a
// test running beside it on the other core makes the loop wait for the CPU, not the client.
TEST_CASE("HTTP client: the loop stays responsive during 1,000 concurrent requests",
          "[http][nginx][lag][.]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        ClientOptions o;
        o.limit = 100;
        ClientSession session(std::move(o));
        // Warm up (connections, first-use allocations) outside the measurement.
        Fetched warm = co_await coring::test::fetch(session, nginx.http_url("/index.html"));
        CHECK(warm.status == 200);
        coring::test::LagProbe probe;
        auto probing = coring::create_task(probe.run());
        std::vector<std::string> urls(1000, nginx.http_url("/index.html"));
        std::vector<Fetched> got = co_await fetch_all(session, urls);
        probe.stop = true;
        co_await probing;
        int good = 0;
        for (auto& f : got) {
            good += f.status == 200 && f.body == coring::test::index_html();
        }
        CHECK(good == 1000);
        INFO("timer lateness over " << probe.lateness_ms.size() << " ticks: median "
                                    << probe.quantile(0.5) << " ms, p99 " << probe.quantile(0.99)
                                    << " ms, max " << probe.max()
                                    << " ms; ticks: " << probe.describe());
        CHECK(probe.lateness_ms.size() >= 3);
        // The bound is 5 ms. nginx's worker and, on a shared machine, other processes
        // compete for the 2 cores, so a tick now and then waits for the CPU, not for the
        // client (medians of 2.7 ms were seen at load 5-6): the typical tick must be within
        // the bound and none near the ~150 ms the batch takes, which is what a client that
        // blocked the loop would show (sanitizer builds run ~4x slower).
        constexpr double slow = coring::test::sanitized ? 4.0 : 1.0;
        CHECK(probe.quantile(0.5) <= 5.0 * slow);
        CHECK(probe.quantile(0.9) <= 15.0 * slow);
        CHECK(probe.max() <= 100.0 * slow);
        co_await session.close();
    });
}

namespace {

Task<std::exception_ptr> get_and_read(ClientSession& s, std::string url, bool* got_headers) {
    try {
        ClientResponse r = co_await s.get(std::move(url));
        *got_headers = true;
        static_cast<void>(co_await r.read());
    } catch (const coring::CancelledError&) {
        throw;
    } catch (...) {
        co_return std::current_exception();
    }
    co_return nullptr;
}

} // namespace

CORING_TEST_CASE("HTTP client: close() fails in-flight requests and later ones with ClientError",
                 "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        bool headers_never = false;
        bool headers_stall = false;
        auto waiting =
                coring::create_task(get_and_read(session, srv.url("/never"), &headers_never));
        auto reading =
                coring::create_task(get_and_read(session, srv.url("/stall-body"), &headers_stall));
        for (int i = 0; i < 200 && !headers_stall; ++i) {
            co_await coring::sleep(5ms);
        }
        CHECK(headers_stall);
        CHECK(session.active_transfers() == 2);
        CHECK(!session.closed());
        co_await session.close();
        CHECK(session.closed());
        std::exception_ptr e1 = co_await waiting;
        std::exception_ptr e2 = co_await reading;
        INFO("in-flight GET: " << coring::test::what_of(e1));
        INFO("in-flight body read: " << coring::test::what_of(e2));
        CHECK(coring::test::holds<coring::http::ClientError>(e1));
        CHECK(coring::test::holds<coring::http::ClientError>(e2));
        CHECK(!headers_never);
        CHECK(session.active_transfers() == 0);

        std::exception_ptr later = co_await coring::test::get_outcome(session, srv.url("/echo"));
        INFO("after close: " << coring::test::what_of(later));
        CHECK(coring::test::holds<coring::http::ClientError>(later));
        co_await session.close(); // idempotent
        CHECK(session.closed());
    }
    co_await srv.stop();
}

CORING_TEST_CASE("HTTP client: destroying a session fails its pending and queued requests with "
                 "ClientError",
                 "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        std::optional<ClientSession> session;
        ClientOptions o;
        o.limit = 1; // one request on the wire, the others wait for the connection
        session.emplace(std::move(o));
        std::vector<TaskHandle<std::exception_ptr>> tasks;
        bool flags[5] = {false, false, false, false, false};
        for (int i = 0; i < 5; ++i) {
            tasks.push_back(
                    coring::create_task(get_and_read(*session, srv.url("/never"), &flags[i])));
        }
        for (int i = 0; i < 2000 && srv.requests().empty(); ++i) {
            co_await coring::sleep(1ms);
        }
        co_await coring::sleep(20ms);
        CHECK(srv.requests().size() == 1);
        session.reset(); // ~ClientSession closes it, without an explicit close()
        int client_errors = 0;
        std::string first_other;
        for (auto& t : tasks) {
            std::exception_ptr e = co_await t;
            if (coring::test::holds<coring::http::ClientError>(e)) {
                ++client_errors;
            } else if (first_other.empty()) {
                first_other = coring::test::what_of(e);
            }
        }
        INFO("a request that did not get a ClientError: " << first_other);
        CHECK(client_errors == 5);
    }
    co_await srv.stop();
}

TEST_CASE("HTTP client: a session needs a running loop or an explicit one", "[http]") {
    CHECK_THROWS_AS(ClientSession(), coring::RuntimeError);
    coring::test::run_test([&]() -> Task<> {
        ClientSession session(coring::get_running_loop(), ClientOptions{});
        CHECK(session.options().limit == 100);
        CHECK(session.options().user_agent == "coring-http/0.1");
        co_await session.close();
    });
}

CORING_TEST_CASE("HTTP client: several cookies from one response are all kept", "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        ClientResponse r = co_await session.get(srv.url("/set-cookie?a=1&b=two"));
        auto all = r.headers.get_all("set-cookie");
        REQUIRE(all.size() == 2);
        CHECK(all[0] == "a=1; Path=/");
        CHECK(all[1] == "b=two; Path=/");
        static_cast<void>(co_await r.read());
        nlohmann::json j = co_await echo(session, srv.url("/echo"));
        std::string cookie = j["headers"].value("cookie", "");
        INFO("Cookie: " << cookie);
        CHECK(cookie.find("a=1") != std::string::npos);
        CHECK(cookie.find("b=two") != std::string::npos);
        CHECK(session.cookies().size() == 2);
        co_await session.close();
    }
    co_await srv.stop();
}

CORING_TEST_CASE("HTTP client: limit_per_host bounds the connections to each server", "[http]") {
    TestServer a = co_await TestServer::start();
    TestServer b = co_await TestServer::start();
    {
        ClientOptions o;
        o.limit = 0;
        o.limit_per_host = 5;
        ClientSession session(std::move(o));
        std::vector<Task<int>> tasks;
        for (int i = 0; i < 200; ++i) {
            tasks.push_back(count_one(session, (i % 2 == 0 ? a : b).url("/count")));
        }
        std::vector<int> ok = co_await coring::gather(std::move(tasks));
        int good = 0;
        for (int v : ok) {
            good += v;
        }
        CHECK(good == 200);
        INFO("server a saw at most " << a.max_open_connections() << ", server b "
                                     << b.max_open_connections());
        CHECK(a.max_open_connections() <= 5);
        CHECK(b.max_open_connections() <= 5);
        CHECK(a.max_open_connections() >= 2);
        co_await session.close();
    }
    co_await a.stop();
    co_await b.stop();
}

TEST_CASE("HTTP client: a proxy from the options or, with trust_env, the environment is used",
          "[http]") {
    // Unsets the proxy variables however the test ends, so no later test is proxied.
    struct EnvGuard {
        ~EnvGuard() {
            ::unsetenv("http_proxy");
            ::unsetenv("HTTP_PROXY");
        }
    } env_guard;

    coring::test::run_test([&]() -> Task<> {
        TestServer proxy = co_await TestServer::start();
        TestServer target = co_await TestServer::start();
        const std::string target_url = target.url("/echo/t?x=1");
        {
            ClientOptions o;
            o.proxy = proxy.url("");
            ClientSession session(std::move(o));
            nlohmann::json j = co_await echo(session, target_url);
            // The proxy got the absolute-form request.
            CHECK(proxy.requests().size() == 1);
            CHECK(target.requests().empty());
            CHECK(!proxy.requests().empty());
            if (!proxy.requests().empty()) {
                CHECK(proxy.requests().back().target == target_url);
            }
            co_await session.close();
        }
        ::setenv("http_proxy", proxy.url("").c_str(), 1);
        ::setenv("HTTP_PROXY", proxy.url("").c_str(), 1);
        {
            // trust_env=false (the default): the environment's proxy is ignored.
            ClientSession session;
            nlohmann::json j = co_await echo(session, target_url);
            CHECK(target.requests().size() == 1);
            CHECK(proxy.requests().size() == 1);
            co_await session.close();
        }
        {
            ClientOptions o;
            o.trust_env = true;
            ClientSession session(std::move(o));
            nlohmann::json j = co_await echo(session, target_url);
            CHECK(proxy.requests().size() == 2);
            CHECK(target.requests().size() == 1);
            co_await session.close();
        }
        ::unsetenv("http_proxy");
        ::unsetenv("HTTP_PROXY");
        co_await proxy.stop();
        co_await target.stop();
    });
}

CORING_TEST_CASE("HTTP client: a response that outlives its session raises ClientError on read",
                 "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        std::optional<ClientResponse> r;
        {
            ClientSession session;
            r.emplace(co_await session.get(srv.url("/stall-body")));
            CHECK(r->status == 200);
        }
        std::exception_ptr e;
        try {
            static_cast<void>(co_await r->read());
        } catch (...) {
            e = std::current_exception();
        }
        INFO(coring::test::what_of(e));
        CHECK(coring::test::holds<coring::http::ClientError>(e));
        r.reset();
    }
    co_await srv.stop();
}

// Not a check: prints the timer lateness for several request counts and limits, to see how the
// loop's stalls grow (run it by its tag: coring_tests_http "[lag-diagnostic]").
TEST_CASE("HTTP client: loop lag by request count (diagnostic)", "[.][http][lag-diagnostic]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    for (int n : {100, 300, 1000, 3000}) {
        for (std::size_t limit : {std::size_t{100}, std::size_t{0}}) {
            coring::test::run_test([&]() -> Task<> {
                ClientOptions o;
                o.limit = limit;
                ClientSession session(std::move(o));
                Fetched warm = co_await coring::test::fetch(session, nginx.http_url("/index.html"));
                CHECK(warm.status == 200);
                coring::test::LagProbe probe;
                auto probing = coring::create_task(probe.run());
                co_await coring::sleep(5ms);
                auto start = std::chrono::steady_clock::now();
                std::vector<std::string> urls(static_cast<std::size_t>(n),
                                              nginx.http_url("/index.html"));
                std::vector<Fetched> got = co_await fetch_all(session, urls);
                CHECK(got.size() == urls.size());
                double ms = std::chrono::duration<double, std::milli>(
                                    std::chrono::steady_clock::now() - start)
                                    .count();
                probe.stop = true;
                co_await probing;
                WARN("n=" << n << " limit=" << limit << ": " << ms << " ms total, "
                          << probe.lateness_ms.size() << " ticks, lateness median "
                          << probe.quantile(0.5) << " ms, max " << probe.max()
                          << " ms; ticks: " << probe.describe());
                co_await session.close();
            });
        }
    }
}
