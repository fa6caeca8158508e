// SPDX-License-Identifier: MIT
// Servers for the HTTP client tests: nginx and python's http.server as child processes, and a
// misbehaving HTTP/1.1 server run with coring's start_server on the test's own loop.
#pragma once

#include <coring/streams.hpp>
#include <coring/task.hpp>

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/net_helpers.hpp"

namespace coring::test {

/// The docroot files nginx and http.server serve (the same bytes the tests compare with).
std::string index_html();   // /index.html: a small page (text/html)
std::string one_mib_file(); // /big.bin: 1 MiB of a repeating pattern; /small.bin, /medium.bin: its
                            // first 8 KiB, 40 KiB
std::string json_file();    // /data.json: ~20 KiB of JSON (compresses well)
std::string lines_file();   // /lines.txt: lines of text, the last one without "\n"
inline constexpr std::size_t huge_file_size = std::size_t{1} << 30; // /huge.bin: sparse, zeros

/// Writes the docroot files into dir (huge.bin only when with_huge).
void write_docroot(const std::string& dir, bool with_huge);

/// A child process started with posix_spawn (outside any loop), stopped with SIGTERM (then
/// SIGKILL) and reaped in the destructor, so the leak check never sees it. Its stdout and
/// stderr go to log_path.
class ChildProcess {
public:
    ChildProcess() = default;
    ChildProcess(std::vector<std::string> argv, const std::string& log_path);

    ChildProcess(ChildProcess&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}

    ChildProcess& operator=(ChildProcess&& o) noexcept;

    ~ChildProcess() { stop(); }

    /// Whether it has exited (reaps it then).
    bool exited();
    void stop() noexcept;

    pid_t pid() const noexcept { return pid_; }

private:
    pid_t pid_ = -1;
};

/// Waits (blocking, up to `timeout_ms`) until 127.0.0.1:port accepts a TCP connection;
/// false if `child` exits first or the time runs out.
bool wait_until_listening(std::uint16_t port, ChildProcess& child, int timeout_ms = 10000);

/// Whether a program exists and is executable.
bool have_program(const char* path);

/// nginx (Debian's nginx-light) in single-process mode with its own prefix, on free loopback
/// ports: plain HTTP/1.1, HTTPS with HTTP/2 (ALPN) using the test server certificate, two more
/// HTTPS ports presenting the wrong-host and the expired certificates, and one that requires a
/// client certificate. gzip is on for JSON and text; keepalive_requests is 100000; every
/// response of the main server carries X-Connection (nginx's connection serial number).
/// Routes beyond the docroot:
///   /moved -> 301 /index.html;  /r3 -> /r2 -> /r1 -> /index.html (302s);  /loop -> /loop;
///   /slow/FILE: the docroot's FILE at 16 KiB/s.
class Nginx {
public:
    static constexpr const char* binary = "/usr/sbin/nginx";

    explicit Nginx(bool with_huge = false);
    Nginx(const Nginx&) = delete;
    Nginx& operator=(const Nginx&) = delete;
    ~Nginx();

    std::uint16_t http_port = 0;
    std::uint16_t https_port = 0;
    std::uint16_t wrong_host_port = 0;
    std::uint16_t expired_port = 0;
    std::uint16_t mtls_port = 0; // requires a client certificate signed by the test CA

    std::string http_url(std::string_view path) const;
    std::string https_url(std::string_view path) const;
    std::string wrong_host_url(std::string_view path) const;
    std::string expired_url(std::string_view path) const;
    std::string mtls_url(std::string_view path) const;
    std::string error_log() const;

private:
    TempDir dir_;
    ChildProcess child_;
};

/// python3 -m http.server on a free loopback port, serving the docroot (HTTP/1.0).
class PythonHttpServer {
public:
    PythonHttpServer();
    PythonHttpServer(const PythonHttpServer&) = delete;
    PythonHttpServer& operator=(const PythonHttpServer&) = delete;
    ~PythonHttpServer();

    std::uint16_t port = 0;
    std::string url(std::string_view path) const;

private:
    TempDir dir_;
    ChildProcess child_;
};

/// One parsed request, as the in-process server saw it.
struct SeenRequest {
    std::string method;
    std::string target; // as sent: path?query
    std::string path;
    std::string query;
    std::vector<std::pair<std::string, std::string>> headers; // names lower-cased
    std::string body;

    /// The first value of a (lower-case) header, or "".
    std::string header(std::string_view name) const;
};

/// Percent-decodes s ("+" as a space when plus_is_space).
std::string percent_decode(std::string_view s, bool plus_is_space = true);

/// Splits "a=1&b=2" into decoded pairs.
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view q);

/// A small HTTP/1.1 server on 127.0.0.1 (coring::start_server) with routes that misbehave on
/// purpose. Keep-alive; Content-Length or chunked request bodies; Expect: 100-continue.
///   /echo...            200 application/json {method, path, query, headers{lower: value}, body}
///   /status/N           status N, text/plain
///   (absolute-form)     a request for "http://host/..." is echoed too (the server as a proxy)
///   /redirect/N         302 to /redirect/N-1, /redirect/0 -> /echo; /loop -> /loop
///   /redirect-to?url=U[&code=C]  302 (or C) to U
///   /close-after        answers, then closes the kept-alive connection
///   /json-charset       JSON as "application/json; charset=utf-8"
///   /short              Content-Length 100, 50 bytes, then a clean close
///   /bad-gzip           Content-Encoding: gzip on a body that is not gzip
///   /see-other          303 to /echo (for POST -> GET)
///   /sleep?ms=N         answers "slept" after N ms (or when the client goes away)
///   /never              reads the request and never answers
///   /close              closes the connection without answering
///   /stall-body         headers (Content-Length 1000) and 10 bytes, then nothing
///   /reset              headers (Content-Length 100000), 1000 bytes, pause, then RST
///   /bad-chunked        chunked: one good chunk, pause, then a malformed size line
///   /big-header         a 1 MiB header field
///   /set-cookie?k=v     Set-Cookie: k=v; Path=/
///   /count              "ok" after a 5 ms pause (counts concurrently open connections)
///   /bytes?n=N          N bytes of a pattern (Content-Length), written in 64 KiB pieces
///   /trickle            "abcdefghij" x 10, chunked, in pieces 5 ms apart
///   /html-json          a valid JSON text served as text/html
class TestServer {
public:
    struct State;

    /// Starts listening on a free port of 127.0.0.1.
    [[nodiscard]] static Task<TestServer> start();

    std::string url(std::string_view path) const;
    std::uint16_t port() const noexcept;

    /// Connections open now / the most open at once / accepted in all.
    std::size_t open_connections() const noexcept;
    std::size_t max_open_connections() const noexcept;
    std::size_t accepted() const noexcept;
    /// Body bytes /bytes has handed to the kernel (its drain() returned) so far.
    std::size_t bytes_drained() const noexcept;
    /// Every request parsed so far.
    const std::vector<SeenRequest>& requests() const noexcept;

    /// Closes the server, cancels every connection's task and waits until they have ended.
    [[nodiscard]] Task<> stop();

private:
    std::shared_ptr<State> s_;
    Server server_;
};

/// The resident set size of this process in bytes (VmRSS of /proc/self/status).
std::size_t vm_rss();

} // namespace coring::test
