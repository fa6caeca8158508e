// SPDX-License-Identifier: MIT
// Tests of ResponseContent (aiohttp's resp.content): reading in pieces, lines and exact sizes, a
// 1 GiB download in flat memory, and cancelling requests mid-transfer a thousand times.
#include <coring/errors.hpp>
#include <coring/http/client.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "http/http_helpers.hpp"
#include "http/http_servers.hpp"
#include "support/leak_check.hpp"
#include "support/test_support.hpp"
#include "tls/tls_certs.hpp"

using namespace std::chrono_literals;
using coring::Task;
using coring::TaskHandle;
using coring::http::ClientOptions;
using coring::http::ClientResponse;
using coring::http::ClientSession;
using coring::http::RequestOptions;
using coring::test::Nginx;
using coring::test::TestServer;

namespace {

#define CORING_REQUIRE_NGINX()                                                                     \
    do {                                                                                           \
        if (!coring::test::have_program(Nginx::binary)) {                                          \
            CORING_SKIP("nginx is not installed (" << Nginx::binary << ")");                       \
        }                                                                                          \
    } while (false)

} // namespace

CORING_TEST_CASE("HTTP content: read(n) returns pieces of at most n bytes as they arrive",
                 "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientSession session;
        ClientResponse r = co_await session.get(srv.url("/trickle"));
        CHECK(r.status == 200);
        std::string all;
        int pieces = 0;
        bool all_small = true;
        for (;;) {
            std::string p = co_await r.content.read(4);
            if (p.empty()) {
                break;
            }
            all_small = all_small && p.size() <= 4;
            all += p;
            ++pieces;
        }
        CHECK(all_small);
        CHECK(pieces >= 25);
        std::string want;
        for (int i = 0; i < 10; ++i) {
            want += "abcdefghij";
        }
        CHECK(all == want);
        CHECK(r.content.at_eof());
        std::string after = co_await r.content.read();
        CHECK(after.empty());

        // readany does not wait for more than the first piece: on a trickling body it
        // returns less than asked.
        ClientResponse t = co_await session.get(srv.url("/trickle"));
        std::string first = co_await t.content.readany(1 << 20);
        CHECK(!first.empty());
        CHECK(first.size() < 100);
        std::string rest = co_await t.read();
        CHECK(first + rest == want);
        co_await session.close();
    }
    co_await srv.stop();
}

TEST_CASE("HTTP content: read() after a partial read returns the rest", "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        ClientSession session;
        ClientResponse r = co_await session.get(nginx.http_url("/big.bin"));
        std::string head = co_await r.content.read(10);
        CHECK(!head.empty());
        CHECK(head.size() <= 10);
        std::string rest = co_await r.read();
        CHECK(head + rest == coring::test::one_mib_file());
        CHECK(r.content.at_eof());
        co_await session.close();
    });
}

TEST_CASE("HTTP content: readline returns each line with its newline", "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        ClientSession session;
        for (const char* scheme : {"http", "https"}) {
            INFO(scheme);
            ClientOptions o;
            o.ssl.cafile = coring::test::tls_files().ca;
            ClientSession s(std::move(o));
            std::string url = std::string(scheme) == "http" ? nginx.http_url("/lines.txt")
                                                            : nginx.https_url("/lines.txt");
            ClientResponse r = co_await s.get(url);
            std::vector<std::string> lines;
            for (;;) {
                std::string line = co_await r.content.readline();
                if (line.empty()) {
                    break;
                }
                lines.push_back(line);
            }
            std::vector<std::string> want{"first line\n",
                                          "second line\n",
                                          "\n",
                                          "fourth line, after an empty one\n",
                                          "last line, no newline"};
            CHECK(lines == want);
            CHECK(r.content.at_eof());
            co_await s.close();
        }
        co_await session.close();
    });
}

TEST_CASE("HTTP content: readexactly returns exactly n bytes and raises IncompleteReadError at "
          "the end",
          "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        ClientSession session;
        ClientResponse r = co_await session.get(nginx.http_url("/big.bin"));
        const std::string& file = coring::test::one_mib_file();
        std::string got;
        bool sizes_ok = true;
        for (int i = 0; i < 1048; ++i) {
            std::string p = co_await r.content.readexactly(1000);
            sizes_ok = sizes_ok && p.size() == 1000;
            got += p;
        }
        CHECK(sizes_ok);
        CHECK(got == file.substr(0, 1048000));
        std::exception_ptr e;
        try {
            static_cast<void>(co_await r.content.readexactly(1000));
        } catch (...) {
            e = std::current_exception();
        }
        INFO(coring::test::what_of(e));
        CHECK(coring::test::holds<coring::IncompleteReadError>(e));
        try {
            std::rethrow_exception(e);
        } catch (const coring::IncompleteReadError& x) {
            CHECK(x.partial == file.substr(1048000));
            CHECK(x.expected == std::optional<std::size_t>(1000));
        } catch (...) {
        }
        CHECK(r.content.at_eof());
        co_await session.close();
    });
}

CORING_TEST_CASE("HTTP content: a body nobody reads pauses the transfer near read_buffer",
                 "[http]") {
    TestServer srv = co_await TestServer::start();
    {
        ClientOptions o;
        o.read_buffer = 64 * 1024;
        ClientSession session(std::move(o));
        constexpr std::size_t size = std::size_t{64} << 20;
        ClientResponse r = co_await session.get(srv.url("/bytes?n=" + std::to_string(size)));
        co_await coring::sleep(300ms);
        // The client holds ~64 KiB and the kernel's socket buffers a few MiB more; the rest
        // waits in the server.
        std::size_t sent_while_paused = srv.bytes_drained();
        INFO("the server got rid of " << sent_while_paused / 1024 << " KiB while nobody read");
        CHECK(sent_while_paused < size / 4);
        std::size_t total = 0;
        for (;;) {
            std::string p = co_await r.content.read(1 << 20);
            if (p.empty()) {
                break;
            }
            total += p.size();
        }
        CHECK(total == size);
        co_await session.close();
    }
    co_await srv.stop();
}

TEST_CASE("HTTP content: a 1 GiB download streams in flat memory", "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx(true);
    coring::test::run_test([&]() -> Task<> {
        ClientSession session;
        // Warm up first-use allocations.
        coring::test::Fetched warm =
                co_await coring::test::fetch(session, nginx.http_url("/big.bin"));
        CHECK(warm.status == 200);
        const std::size_t before = coring::test::vm_rss();
        auto start = std::chrono::steady_clock::now();
        ClientResponse r = co_await session.get(nginx.http_url("/huge.bin"));
        CHECK(r.status == 200);
        std::size_t total = 0;
        std::size_t peak = before;
        bool zeros = true;
        int reads = 0;
        for (;;) {
            std::string p = co_await r.content.read(256 * 1024);
            if (p.empty()) {
                break;
            }
            total += p.size();
            zeros = zeros && p.find_first_not_of('\0') == std::string::npos;
            if (++reads % 64 == 0) {
                peak = std::max(peak, coring::test::vm_rss());
            }
        }
        peak = std::max(peak, coring::test::vm_rss());
        double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        INFO("1 GiB in " << seconds << " s; RSS " << before / 1024 / 1024 << " MiB -> peak "
                         << peak / 1024 / 1024 << " MiB");
        CHECK(total == coring::test::huge_file_size);
        CHECK(zeros);
        if (!coring::test::sanitized) { // ASan's quarantine holds 256 MiB of freed blocks
            CHECK(peak - before < std::size_t{64} << 20);
        }
        CHECK(seconds < 40.0);
        WARN("1 GiB download: " << seconds << " s, RSS growth " << (peak - before) / 1024
                                << " KiB");
        co_await session.close();
    });
}

namespace {

/// A request that waits for its headers (/never) or its body (/stall-body) until cancelled.
Task<> doomed(ClientSession& s, std::string url, int* got_headers) {
    ClientResponse r = co_await s.get(std::move(url));
    ++*got_headers;
    static_cast<void>(co_await r.read());
}

Task<int> cancel_batches(ClientSession& s,
                         TestServer& srv,
                         const std::string& path,
                         int batches,
                         int per_batch,
                         bool wait_for_headers) {
    int cancelled = 0;
    for (int b = 0; b < batches; ++b) {
        int got_headers = 0;
        std::size_t requests_before = srv.requests().size();
        std::vector<TaskHandle<>> tasks;
        for (int i = 0; i < per_batch; ++i) {
            tasks.push_back(coring::create_task(doomed(s, srv.url(path), &got_headers)));
        }
        // Wait until every request is in flight where we want it: the server has it (headers
        // wait), or its headers are in (body read).
        for (int i = 0; i < 2000; ++i) {
            bool ready = wait_for_headers ? got_headers == per_batch
                                          : srv.requests().size() - requests_before ==
                                                    static_cast<std::size_t>(per_batch);
            if (ready) {
                break;
            }
            co_await coring::sleep(1ms);
        }
        // Vary the moment a little: some right away, some a loop iteration later.
        for (std::size_t i = 0; i < tasks.size(); ++i) {
            if (i % 2 == 0) {
                tasks[i].cancel();
            }
        }
        co_await coring::sleep(0s);
        for (std::size_t i = 0; i < tasks.size(); ++i) {
            if (i % 2 == 1) {
                tasks[i].cancel();
            }
        }
        for (auto& t : tasks) {
            try {
                co_await t;
            } catch (const coring::CancelledError&) {
            } catch (...) {
            }
            cancelled += t.cancelled() ? 1 : 0;
        }
    }
    co_return cancelled;
}

} // namespace

CORING_TEST_CASE("HTTP cancellation: 1,000 requests cancelled mid-transfer leak nothing",
                 "[http]") {
    TestServer srv = co_await TestServer::start();
    const std::set<int> fds_before = coring::test::open_fds();
    {
        ClientSession session;
        int a = co_await cancel_batches(session, srv, "/never", 10, 50, false);
        CHECK(a == 500);
        CHECK(session.active_transfers() == 0);
        int b = co_await cancel_batches(session, srv, "/stall-body", 10, 50, true);
        CHECK(b == 500);
        CHECK(session.active_transfers() == 0);

        // The session still works, and the server saw every cancelled connection close.
        coring::test::Fetched f = co_await coring::test::fetch(session, srv.url("/echo"));
        CHECK(f.status == 200);
        coring::test::Fetched g = co_await coring::test::fetch(session, srv.url("/bytes?n=100000"));
        CHECK(g.body.size() == 100000);
        for (int i = 0; i < 2000 && srv.open_connections() > 1; ++i) {
            co_await coring::sleep(1ms);
        }
        CHECK(srv.open_connections() <= 1);
        co_await session.close();
        CHECK(session.active_transfers() == 0);
    }
    for (int i = 0; i < 2000 && srv.open_connections() > 0; ++i) {
        co_await coring::sleep(1ms);
    }
    CHECK(srv.open_connections() == 0);
    std::set<int> fds_after = coring::test::open_fds();
    std::vector<std::string> leaked;
    for (int fd : fds_after) {
        if (fds_before.count(fd) == 0) {
            leaked.push_back(std::to_string(fd) + " " + coring::test::fd_target(fd));
        }
    }
    INFO("descriptors left open: " << leaked.size());
    CHECK(leaked.empty());
    co_await srv.stop();
}

TEST_CASE("HTTP cancellation: a cancelled request's session keeps serving HTTP/2 and HTTP/1.1",
          "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        for (bool h2 : {true, false}) {
            INFO((h2 ? "HTTP/2" : "HTTP/1.1"));
            ClientOptions o;
            o.ssl.cafile = coring::test::tls_files().ca;
            o.http2 = h2;
            ClientSession session(std::move(o));
            // Half-read responses dropped: the transfer stops and its connection (or stream)
            // is not reused half-read.
            for (int i = 0; i < 50; ++i) {
                ClientResponse r = co_await session.get(nginx.https_url("/big.bin"));
                std::string p = co_await r.content.readexactly(1000);
                CHECK(p == coring::test::one_mib_file().substr(0, 1000));
            }
            CHECK(session.active_transfers() == 0);
            // Explicit close() too.
            ClientResponse c = co_await session.get(nginx.https_url("/big.bin"));
            c.close();
            CHECK(session.active_transfers() == 0);
            coring::test::Fetched f =
                    co_await coring::test::fetch(session, nginx.https_url("/big.bin"));
            CHECK(f.body == coring::test::one_mib_file());
            CHECK(f.version == (h2 ? "HTTP/2" : "HTTP/1.1"));
            co_await session.close();
        }
    });
}

TEST_CASE("HTTP cancellation: cancelling HTTP/2 streams leaves the others on the connection "
          "running",
          "[http][nginx]") {
    CORING_REQUIRE_NGINX();
    Nginx nginx;
    coring::test::run_test([&]() -> Task<> {
        ClientOptions o;
        o.ssl.cafile = coring::test::tls_files().ca;
        ClientSession session(std::move(o));
        coring::test::Fetched warm =
                co_await coring::test::fetch(session, nginx.https_url("/index.html"));
        CHECK(warm.version == "HTTP/2");
        const std::string conn = coring::test::header_or(warm.headers, "x-connection");
        int cancelled = 0;
        int survived = 0;
        int survivors_total = 0;
        int in_flight_at_cancel = 0;
        std::string survived_failures;
        for (int batch = 0; batch < 2; ++batch) {
            int got_headers = 0;
            std::vector<TaskHandle<>> doomed_tasks;
            std::vector<TaskHandle<coring::test::Fetched>> survivors;
            for (int i = 0; i < 50; ++i) {
                doomed_tasks.push_back(coring::create_task(
                        doomed(session, nginx.https_url("/slow/big.bin"), &got_headers)));
                if (i % 5 == 0) {
                    survivors.push_back(coring::create_task(
                            coring::test::fetch(session, nginx.https_url("/slow/medium.bin"))));
                }
            }
            for (int i = 0; i < 5000 && got_headers < 50; ++i) {
                co_await coring::sleep(1ms);
            }
            CHECK(got_headers == 50);
            co_await coring::sleep(20ms); // mid-body
            for (auto& t : survivors) {
                in_flight_at_cancel += t.done() ? 0 : 1;
            }
            for (auto& t : doomed_tasks) {
                t.cancel();
            }
            for (auto& t : doomed_tasks) {
                try {
                    co_await t;
                } catch (const coring::CancelledError&) {
                } catch (...) {
                }
                cancelled += t.cancelled() ? 1 : 0;
            }
            for (auto& t : survivors) {
                ++survivors_total;
                try {
                    coring::test::Fetched f = co_await t;
                    bool good = f.status == 200 &&
                                f.body == coring::test::one_mib_file().substr(0, 40960) &&
                                coring::test::header_or(f.headers, "x-connection") == conn;
                    if (!good && survived_failures.empty()) {
                        survived_failures = "status " + std::to_string(f.status) + ", " +
                                            std::to_string(f.body.size()) + " bytes, connection " +
                                            coring::test::header_or(f.headers, "x-connection") +
                                            " (first: " + conn + "), " + f.version;
                    }
                    survived += good;
                } catch (const std::exception& e) {
                    INFO("a survivor failed: " << e.what());
                    CHECK(false);
                }
            }
        }
        CHECK(cancelled == 100);
        INFO("first bad survivor: " << survived_failures);
        CHECK(survived == survivors_total);
        CHECK(in_flight_at_cancel == survivors_total); // the test did test something
        CHECK(session.active_transfers() == 0);
        // Still the same connection afterwards.
        coring::test::Fetched after =
                co_await coring::test::fetch(session, nginx.https_url("/index.html"));
        CHECK(after.status == 200);
        CHECK(coring::test::header_or(after.headers, "x-connection") == conn);
        co_await session.close();
    });
}
