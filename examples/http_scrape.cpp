// SPDX-License-Identifier: MIT
// Scraping: fetch many pages at once with one ClientSession and gather; a failing URL is
// reported and the others go on. Usage: http_scrape [URL...] (default: a local test server).
//
// The asyncio/aiohttp equivalent:
//
//     async def fetch(session, url):
//         try:
//             async with session.get(url) as resp:
//                 resp.raise_for_status()
//                 return url, len(await resp.text()), None
//         except aiohttp.ClientError as e:
//             return url, 0, e
//
//     async def main(urls):
//         async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
//             for url, size, err in await asyncio.gather(*(fetch(session, u) for u in urls)):
//                 print(f"{url}: {err}" if err else f"{url}: {size} bytes")
#include <coring/coring.hpp>
#include <coring/http.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace std::chrono_literals;
namespace http = coring::http;

struct Page {
    std::string url;
    std::size_t size = 0;
    std::string error; // empty when the fetch worked
};

static coring::Task<Page> fetch(http::ClientSession& session, std::string url) {
    Page page{url, 0, {}};
    try {
        auto resp = co_await session.get(url);
        resp.raise_for_status();
        page.size = (co_await resp.text()).size();
    } catch (const http::ClientError& e) {
        page.error = e.what(); // names the URL; the other fetches go on
    } catch (const coring::TimeoutError& e) {
        page.error = e.what();
    }
    co_return page;
}

// A stand-in for the web when no URL is given: answers /page/N with N KiB of text, 404 otherwise.
static coring::Task<> serve(coring::StreamReader reader, coring::StreamWriter writer) {
    std::string line = co_await reader.readline(); // "GET /page/3 HTTP/1.1"
    for (;;) {                                     // the headers, up to the blank line
        std::string header = co_await reader.readline();
        if (header.size() <= 2) {
            break;
        }
    }
    std::string status = "404 Not Found";
    std::string body = "no such page\n";
    if (auto at = line.find("/page/"); at != std::string::npos) {
        status = "200 OK";
        body.assign(static_cast<std::size_t>(std::stoi(line.substr(at + 6))) * 1024, 'x');
    }
    writer.write("HTTP/1.1 " + status + "\r\nContent-Length: " + std::to_string(body.size()) +
                 "\r\nConnection: close\r\n\r\n" + body);
    co_await writer.drain();
    writer.close();
    co_await writer.wait_closed();
}

static coring::Task<int> amain(std::vector<std::string> urls) {
    coring::Server server;
    if (urls.empty()) {
        server = co_await coring::start_server(serve, "127.0.0.1", 0);
        std::string base =
                "http://127.0.0.1:" + std::to_string(server.sockets().front().getsockname().port());
        urls = {base + "/page/1",
                base + "/page/64",
                base + "/missing",
                base + "/page/8",
                "http://127.0.0.1:1/refused"};
    }
    http::ClientSession session({.timeout = {.total = 10s}});
    std::vector<coring::Task<Page>> fetches;
    for (const auto& url : urls) {
        fetches.push_back(fetch(session, url));
    }
    int failed = 0;
    for (const Page& page : co_await coring::gather(std::move(fetches))) {
        if (page.error.empty()) {
            std::printf("%s: %zu bytes\n", page.url.c_str(), page.size);
        } else {
            std::printf("%s: failed: %s\n", page.url.c_str(), page.error.c_str());
            ++failed;
        }
    }
    std::printf("%zu pages, %d failed\n", urls.size(), failed);
    co_return 0;
}

int main(int argc, char** argv) {
    return coring::run(amain(std::vector<std::string>(argv + 1, argv + argc)));
}
