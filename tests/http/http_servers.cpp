// SPDX-License-Identifier: MIT
// Servers for the HTTP client tests (see http_servers.hpp).
#include "http/http_servers.hpp"

#include <coring/errors.hpp>
#include <coring/sleep.hpp>
#include <coring/wait.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "tls/tls_certs.hpp"

extern char** environ;

using namespace std::chrono_literals;

namespace coring::test {

// ---------------------------------------------------------------------------------------------
// Docroot

std::string index_html() {
    return "<!doctype html>\n<html><head><title>coring</title></head>\n"
           "<body><p>Hello from the coring HTTP tests.</p></body></html>\n";
}

std::string one_mib_file() {
    static const std::string data = [] {
        std::string s(std::size_t{1} << 20, '\0');
        for (std::size_t i = 0; i < s.size(); ++i) {
            s[i] = static_cast<char>((i * 31 + i / 4096) % 251);
        }
        return s;
    }();
    return data;
}

std::string json_file() {
    static const std::string data = [] {
        std::string s = "{\"items\": [\n";
        for (int i = 0; i < 300; ++i) {
            s += "  {\"id\": " + std::to_string(i) + ", \"name\": \"item number " +
                 std::to_string(i) + "\", \"tags\": [\"coring\", \"http\", \"test\"]}";
            s += i + 1 < 300 ? ",\n" : "\n";
        }
        s += "]}\n";
        return s;
    }();
    return data;
}

std::string lines_file() {
    return "first line\nsecond line\n\nfourth line, after an empty one\nlast line, no newline";
}

namespace {

void write_file(const std::string& path, const std::string& data) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!f) {
        throw std::runtime_error("cannot write " + path);
    }
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

/// n loopback ports that were free a moment ago (bound together, so all different).
std::vector<std::uint16_t> free_ports(int n) {
    std::vector<int> fds;
    std::vector<std::uint16_t> ports;
    for (int i = 0; i < n; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            throw std::system_error(errno, std::system_category(), "bind 127.0.0.1:0");
        }
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        fds.push_back(fd);
        ports.push_back(ntohs(a.sin_port));
    }
    for (int fd : fds) {
        ::close(fd);
    }
    return ports;
}

} // namespace

void write_docroot(const std::string& dir, bool with_huge) {
    write_file(dir + "/index.html", index_html());
    write_file(dir + "/big.bin", one_mib_file());
    write_file(dir + "/small.bin", one_mib_file().substr(0, 8192));
    write_file(dir + "/medium.bin", one_mib_file().substr(0, 40960));
    write_file(dir + "/data.json", json_file());
    write_file(dir + "/lines.txt", lines_file());
    if (with_huge) {
        write_file(dir + "/huge.bin", "");
        if (::truncate((dir + "/huge.bin").c_str(), static_cast<off_t>(huge_file_size)) != 0) {
            throw std::system_error(errno, std::system_category(), "truncate huge.bin");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Child processes

ChildProcess::ChildProcess(std::vector<std::string> argv, const std::string& log_path) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t empty;
    sigemptyset(&empty);
    posix_spawnattr_setsigmask(&attr, &empty);
    sigset_t def;
    sigemptyset(&def);
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2}) {
        sigaddset(&def, sig);
    }
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> args;
    for (auto& a : argv) {
        args.push_back(a.data());
    }
    args.push_back(nullptr);
    pid_t pid = -1;
    int rc = ::posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        throw std::system_error(rc, std::system_category(), "posix_spawn " + argv[0]);
    }
    pid_ = pid;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
    if (this != &o) {
        stop();
        pid_ = std::exchange(o.pid_, -1);
    }
    return *this;
}

bool ChildProcess::exited() {
    if (pid_ < 0) {
        return true;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return true;
    }
    return false;
}

void ChildProcess::stop() noexcept {
    if (pid_ < 0) {
        return;
    }
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 500; ++i) {
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_ || (r < 0 && errno == ECHILD)) {
            pid_ = -1;
            return;
        }
        std::this_thread::sleep_for(10ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

bool wait_until_listening(std::uint16_t port, ChildProcess& child, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::close(fd);
        if (rc == 0) {
            return true;
        }
        if (child.exited()) {
            return false;
        }
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

bool have_program(const char* path) {
    return ::access(path, X_OK) == 0;
}

// ---------------------------------------------------------------------------------------------
// nginx

Nginx::Nginx(bool with_huge) {
    const std::string d = dir_.file("");
    std::filesystem::create_directories(d + "www");
    std::filesystem::create_directories(d + "tmp");
    write_docroot(d + "www", with_huge);
    const auto& tls = tls_files();
    std::string last_error;
    for (int attempt = 0; attempt < 5; ++attempt) {
        auto ports = free_ports(5);
        http_port = ports[0];
        https_port = ports[1];
        wrong_host_port = ports[2];
        expired_port = ports[3];
        mtls_port = ports[4];
        auto p = [](std::uint16_t port) {
            return std::to_string(port);
        };
        std::string conf;
        conf += "daemon off;\nmaster_process off;\nworker_processes 1;\n";
        conf += "pid " + d + "nginx.pid;\n";
        conf += "error_log " + d + "error.log warn;\n";
        conf += "events { worker_connections 4096; }\n";
        conf += "http {\n";
        conf += "  access_log off;\n";
        for (const char* t : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"}) {
            conf += std::string("  ") + t + "_temp_path " + d + "tmp/" + t + ";\n";
        }
        conf += "  types { text/html html; application/json json; text/plain txt; "
                "application/octet-stream bin; }\n";
        conf += "  default_type application/octet-stream;\n";
        conf += "  sendfile on;\n  keepalive_requests 100000;\n  keepalive_timeout 60s;\n";
        conf += "  absolute_redirect off;\n";
        conf += "  gzip on;\n  gzip_types application/json text/plain;\n"
                "  gzip_min_length 0;\n  gzip_http_version 1.0;\n  gzip_proxied any;\n";
        conf += "  server {\n";
        conf += "    listen 127.0.0.1:" + p(http_port) + ";\n";
        conf += "    listen 127.0.0.1:" + p(https_port) + " ssl http2;\n";
        conf += "    ssl_certificate " + tls.server_cert + ";\n";
        conf += "    ssl_certificate_key " + tls.server_key + ";\n";
        conf += "    root " + d + "www;\n";
        // Which connection served the request: tells keep-alive and multiplexing apart.
        conf += "    add_header X-Connection $connection always;\n";
        conf += "    location = /moved { return 301 /index.html; }\n";
        conf += "    location = /r3 { return 302 /r2; }\n";
        conf += "    location = /r2 { return 302 /r1; }\n";
        conf += "    location = /r1 { return 302 /index.html; }\n";
        conf += "    location = /loop { return 302 /loop; }\n";
        // Bodies at 16 KiB/s: transfers that stay in flight for a while.
        conf += "    location /slow/ { alias " + d + "www/; limit_rate 16k; }\n";
        conf += "  }\n";
        conf += "  server {\n    listen 127.0.0.1:" + p(wrong_host_port) + " ssl;\n";
        conf += "    ssl_certificate " + tls.wrong_host_cert + ";\n";
        conf += "    ssl_certificate_key " + tls.wrong_host_key + ";\n";
        conf += "    root " + d + "www;\n  }\n";
        conf += "  server {\n    listen 127.0.0.1:" + p(mtls_port) + " ssl;\n";
        conf += "    ssl_certificate " + tls.server_cert + ";\n";
        conf += "    ssl_certificate_key " + tls.server_key + ";\n";
        conf += "    ssl_client_certificate " + tls.ca + ";\n";
        conf += "    ssl_verify_client on;\n";
        conf += "    root " + d + "www;\n  }\n";
        conf += "  server {\n    listen 127.0.0.1:" + p(expired_port) + " ssl;\n";
        conf += "    ssl_certificate " + tls.expired_cert + ";\n";
        conf += "    ssl_certificate_key " + tls.expired_key + ";\n";
        conf += "    root " + d + "www;\n  }\n";
        conf += "}\n";
        write_file(d + "nginx.conf", conf);
        child_ = ChildProcess({binary, "-p", d, "-e", d + "error.log", "-c", d + "nginx.conf"},
                              d + "stdout.log");
        bool up = true;
        for (std::uint16_t port : ports) {
            up = up && wait_until_listening(port, child_);
        }
        if (up) {
            return;
        }
        last_error = read_file(d + "error.log") + read_file(d + "stdout.log");
        child_.stop();
    }
    throw std::runtime_error("nginx did not start:\n" + last_error);
}

Nginx::~Nginx() {
    child_.stop();
}

std::string Nginx::http_url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(http_port) + std::string(path);
}

std::string Nginx::https_url(std::string_view path) const {
    return "https://127.0.0.1:" + std::to_string(https_port) + std::string(path);
}

std::string Nginx::wrong_host_url(std::string_view path) const {
    return "https://127.0.0.1:" + std::to_string(wrong_host_port) + std::string(path);
}

std::string Nginx::expired_url(std::string_view path) const {
    return "https://127.0.0.1:" + std::to_string(expired_port) + std::string(path);
}

std::string Nginx::mtls_url(std::string_view path) const {
    return "https://127.0.0.1:" + std::to_string(mtls_port) + std::string(path);
}

std::string Nginx::error_log() const {
    return read_file(dir_.file("error.log"));
}

// ---------------------------------------------------------------------------------------------
// python3 -m http.server

PythonHttpServer::PythonHttpServer() {
    const std::string www = dir_.file("www");
    std::filesystem::create_directories(www);
    write_docroot(www, false);
    for (int attempt = 0; attempt < 5; ++attempt) {
        port = free_ports(1)[0];
        child_ = ChildProcess({"python3",
                               "-m",
                               "http.server",
                               std::to_string(port),
                               "--bind",
                               "127.0.0.1",
                               "--directory",
                               www},
                              dir_.file("python.log"));
        if (wait_until_listening(port, child_, 20000)) {
            return;
        }
        child_.stop();
    }
    throw std::runtime_error("python3 -m http.server did not start:\n" +
                             read_file(dir_.file("python.log")));
}

PythonHttpServer::~PythonHttpServer() {
    child_.stop();
}

std::string PythonHttpServer::url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port) + std::string(path);
}

// ---------------------------------------------------------------------------------------------
// The in-process server

std::string SeenRequest::header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
        if (k == name) {
            return v;
        }
    }
    return "";
}

std::string percent_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '+' && plus_is_space) {
            out += ' ';
        } else if (c == '%' && i + 2 < s.size()) {
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view q) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!q.empty()) {
        std::size_t amp = q.find('&');
        std::string_view part = q.substr(0, amp);
        std::size_t eq = part.find('=');
        if (eq == std::string_view::npos) {
            out.emplace_back(percent_decode(part), "");
        } else {
            out.emplace_back(percent_decode(part.substr(0, eq)),
                             percent_decode(part.substr(eq + 1)));
        }
        if (amp == std::string_view::npos) {
            break;
        }
        q.remove_prefix(amp + 1);
    }
    return out;
}

struct TestServer::State {
    std::vector<SeenRequest> requests;
    std::size_t open = 0;
    std::size_t max_open = 0;
    std::size_t accepted = 0;
    std::size_t callbacks = 0;
    std::map<std::uint64_t, TaskHandle<>> tasks;
    std::uint64_t next_id = 0;
    bool stopping = false;
    std::uint16_t port = 0;
    std::size_t bytes_drained = 0;
};

namespace {

using State = TestServer::State;

std::string lower(std::string s) {
    for (char& c : s) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return s;
}

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return std::string(s);
}

/// Reads one request; nullopt at a clean EOF between requests.
Task<std::optional<SeenRequest>> read_request(StreamReader& r, StreamWriter& w) {
    std::string head;
    try {
        head = co_await r.readuntil("\r\n\r\n");
    } catch (const IncompleteReadError&) {
        co_return std::nullopt;
    }
    SeenRequest req;
    std::istringstream in(head);
    std::string line;
    std::getline(in, line);
    {
        std::istringstream rl(line);
        std::string version;
        rl >> req.method >> req.target >> version;
    }
    std::size_t qm = req.target.find('?');
    req.path = req.target.substr(0, qm);
    req.query = qm == std::string::npos ? "" : req.target.substr(qm + 1);
    while (std::getline(in, line)) {
        if (line == "\r" || line.empty()) {
            break;
        }
        std::size_t colon = line.find(':');
        if (colon == std::string::npos) {
            continue;
        }
        req.headers.emplace_back(lower(line.substr(0, colon)), trim(line.substr(colon + 1)));
    }
    if (lower(req.header("expect")) == "100-continue") {
        w.write("HTTP/1.1 100 Continue\r\n\r\n");
        co_await w.drain();
    }
    if (auto cl = req.header("content-length"); !cl.empty()) {
        std::size_t n = std::stoul(cl);
        if (n > 0) {
            req.body = co_await r.readexactly(n);
        }
    } else if (lower(req.header("transfer-encoding")).find("chunked") != std::string::npos) {
        for (;;) {
            std::string size_line = co_await r.readuntil("\r\n");
            std::size_t n = std::stoul(size_line, nullptr, 16);
            if (n == 0) {
                // trailers, then the empty line
                for (;;) {
                    std::string t = co_await r.readuntil("\r\n");
                    if (t == "\r\n") {
                        break;
                    }
                }
                break;
            }
            req.body += co_await r.readexactly(n);
            co_await r.readexactly(2);
        }
    }
    co_return req;
}

std::string reason_of(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 418:
        return "I'm a teapot";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/// A status line and headers; `headers` is raw "Name: value\r\n" lines.
std::string
head_of(int status, const std::string& headers, std::optional<std::size_t> content_length) {
    std::string h = "HTTP/1.1 " + std::to_string(status) + " " + reason_of(status) + "\r\n";
    h += headers;
    if (content_length) {
        h += "Content-Length: " + std::to_string(*content_length) + "\r\n";
    }
    h += "\r\n";
    return h;
}

// WORKAROUND(gcc-12): no braced temporaries inside co_await expressions (GCC 12 miscompiles
// them), hence headers as a plain string.
Task<> respond(StreamWriter& w,
               const SeenRequest& req,
               int status,
               std::string headers,
               std::string body) {
    std::string out = head_of(status, headers, body.size());
    if (req.method != "HEAD") {
        out += body;
    }
    w.write(out);
    co_await w.drain();
}

/// Waits for the peer to close (or the task to be cancelled).
Task<> until_eof(StreamReader& r) {
    for (;;) {
        std::string s = co_await r.read(64 * 1024);
        if (s.empty()) {
            co_return;
        }
    }
}

std::string query_value(const SeenRequest& req, const std::string& name) {
    for (auto& [k, v] : parse_query(req.query)) {
        if (k == name) {
            return v;
        }
    }
    return "";
}

/// Answers one request; returns whether the connection stays open for another.
Task<bool> route(State& st, const SeenRequest& req, StreamReader& r, StreamWriter& w) {
    const std::string& path = req.path;
    // /echo..., or any absolute-form target (the server acting as an HTTP proxy).
    if (path.rfind("/echo", 0) == 0 || req.target.rfind("http://", 0) == 0) {
        nlohmann::json headers = nlohmann::json::object();
        for (const auto& [k, v] : req.headers) {
            if (headers.contains(k)) {
                headers[k] = headers[k].get<std::string>() + ", " + v;
            } else {
                headers[k] = v;
            }
        }
        nlohmann::json j{{"method", req.method},
                         {"path", req.path},
                         {"query", req.query},
                         {"headers", headers},
                         {"body", req.body}};
        co_await respond(w,
                         req,
                         200,
                         "Content-Type: application/json\r\n",
                         j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        co_return true;
    }
    if (path.rfind("/status/", 0) == 0) {
        int status = std::stoi(path.substr(8));
        co_await respond(
                w, req, status, "Content-Type: text/plain\r\n", "status " + std::to_string(status));
        co_return true;
    }
    if (path.rfind("/redirect/", 0) == 0) {
        int n = std::stoi(path.substr(10));
        std::string to = n <= 1 ? "/echo" : "/redirect/" + std::to_string(n - 1);
        co_await respond(w, req, 302, "Location: " + to + "\r\n", "redirect");
        co_return true;
    }
    if (path == "/redirect-to") {
        std::string code = query_value(req, "code");
        co_await respond(w,
                         req,
                         code.empty() ? 302 : std::stoi(code),
                         "Location: " + query_value(req, "url") + "\r\n",
                         "redirect");
        co_return true;
    }
    if (path == "/close-after") {
        co_await respond(w, req, 200, "Content-Type: text/plain\r\n", "bye");
        co_return false; // closes the kept-alive connection right after answering
    }
    if (path == "/json-charset") {
        co_await respond(
                w, req, 200, "Content-Type: application/json; charset=utf-8\r\n", "{\"ok\": true}");
        co_return true;
    }
    if (path == "/short") {
        w.write(head_of(200, "Content-Type: text/plain\r\n", 100) + std::string(50, 's'));
        co_await w.drain();
        co_return false; // a clean FIN after 50 of the 100 bytes
    }
    if (path == "/bad-gzip") {
        co_await respond(w,
                         req,
                         200,
                         "Content-Type: text/plain\r\nContent-Encoding: gzip\r\n",
                         "this is not gzip data, not even close to it");
        co_return true;
    }
    if (path == "/loop") {
        co_await respond(w, req, 302, "Location: /loop\r\n", "loop");
        co_return true;
    }
    if (path == "/see-other") {
        co_await respond(w, req, 303, "Location: /echo\r\n", "see other");
        co_return true;
    }
    if (path == "/sleep") {
        auto ms = std::chrono::milliseconds(std::stoi(query_value(req, "ms")));
        try {
            std::string s = co_await coring::wait_for(r.read(1), ms);
            if (s.empty()) {
                co_return false; // the client went away
            }
        } catch (const TimeoutError&) {
        }
        co_await respond(w, req, 200, "Content-Type: text/plain\r\n", "slept");
        co_return true;
    }
    if (path == "/never") {
        co_await until_eof(r);
        co_return false;
    }
    if (path == "/close") {
        co_return false;
    }
    if (path == "/stall-body") {
        w.write(head_of(200, "Content-Type: text/plain\r\n", 1000) + std::string(10, 'x'));
        co_await w.drain();
        co_await until_eof(r);
        co_return false;
    }
    if (path == "/reset") {
        w.write(head_of(200, "Content-Type: application/octet-stream\r\n", 100000) +
                std::string(1000, 'r'));
        co_await w.drain();
        co_await coring::sleep(50ms);
        linger lg{1, 0};
        ::setsockopt(w.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        w.abort();
        co_return false;
    }
    if (path == "/bad-chunked") {
        w.write(head_of(200,
                        "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n",
                        std::nullopt) +
                "5\r\nhello\r\n");
        co_await w.drain();
        co_await coring::sleep(50ms);
        w.write("zz-not-hex\r\nbroken\r\n0\r\n\r\n");
        co_await w.drain();
        co_await until_eof(r);
        co_return false;
    }
    if (path == "/big-header") {
        w.write("HTTP/1.1 200 OK\r\nX-Big: " + std::string(std::size_t{1} << 20, 'a') +
                "\r\nContent-Length: 2\r\n\r\nok");
        co_await w.drain();
        co_await until_eof(r);
        co_return false;
    }
    if (path == "/set-cookie") {
        std::string hs = "Content-Type: text/plain\r\n";
        for (auto& [k, v] : parse_query(req.query)) {
            hs += "Set-Cookie: " + k + "=" + v + "; Path=/\r\n";
        }
        co_await respond(w, req, 200, hs, "cookie set");
        co_return true;
    }
    if (path == "/count") {
        co_await coring::sleep(5ms);
        co_await respond(w, req, 200, "Content-Type: text/plain\r\n", "ok");
        co_return true;
    }
    if (path == "/bytes") {
        std::size_t n = std::stoull(query_value(req, "n"));
        w.write(head_of(200, "Content-Type: application/octet-stream\r\n", n));
        std::string piece(64 * 1024, '\0');
        for (std::size_t i = 0; i < piece.size(); ++i) {
            piece[i] = static_cast<char>('a' + i % 26);
        }
        std::size_t sent = 0;
        while (sent < n) {
            std::size_t k = std::min(piece.size(), n - sent);
            w.write(std::string_view(piece.data(), k));
            sent += k;
            co_await w.drain();
            st.bytes_drained += k;
        }
        co_return true;
    }
    if (path == "/trickle") {
        w.write(head_of(
                200, "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n", std::nullopt));
        co_await w.drain();
        for (int i = 0; i < 10; ++i) {
            co_await coring::sleep(5ms);
            w.write("a\r\nabcdefghij\r\n");
            co_await w.drain();
        }
        w.write("0\r\n\r\n");
        co_await w.drain();
        co_return true;
    }
    if (path == "/html-json") {
        co_await respond(w, req, 200, "Content-Type: text/html; charset=utf-8\r\n", "{\"a\": 1}");
        co_return true;
    }
    co_await respond(w, req, 404, "Content-Type: text/plain\r\n", "no route " + path);
    co_return true;
}

Task<> serve(std::shared_ptr<State> st, StreamReader r, StreamWriter w) {
    try {
        for (;;) {
            std::optional<SeenRequest> req = co_await read_request(r, w);
            if (!req) {
                break;
            }
            st->requests.push_back(*req);
            bool keep = co_await route(*st, *req, r, w);
            if (!keep) {
                break;
            }
        }
    } catch (const std::exception&) {
        // the client went away or sent garbage: just close
    }
    w.close();
}

Task<> on_connect(std::shared_ptr<State> st, StreamReader r, StreamWriter w) {
    if (st->stopping) {
        w.abort();
        co_return;
    }
    ++st->callbacks;
    ++st->accepted;
    ++st->open;
    st->max_open = std::max(st->max_open, st->open);
    std::uint64_t id = st->next_id++;
    auto h = coring::create_task(serve(st, r, w));
    st->tasks.emplace(id, TaskHandle<>(h));
    try {
        co_await h;
    } catch (...) {
        // cancelled by stop()
    }
    if (!w.is_closing()) {
        w.abort();
    }
    st->tasks.erase(id);
    --st->open;
    --st->callbacks;
}

} // namespace

Task<TestServer> TestServer::start() {
    TestServer t;
    t.s_ = std::make_shared<State>();
    auto st = t.s_;
    // WORKAROUND(gcc-12): a lambda converted to the std::function parameter inside the co_await
    // expression is destroyed twice (its captured shared_ptr released twice): name it first.
    ClientConnectedCallback cb = [st](StreamReader r, StreamWriter w) -> Task<> {
        return on_connect(st, r, w);
    };
    ServerOptions opts{.backlog = 1024};
    t.server_ = co_await coring::start_server(std::move(cb), "127.0.0.1", 0, opts);
    t.s_->port = port_of(t.server_);
    co_return t;
}

std::string TestServer::url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(s_->port) + std::string(path);
}

std::uint16_t TestServer::port() const noexcept {
    return s_->port;
}

std::size_t TestServer::open_connections() const noexcept {
    return s_->open;
}

std::size_t TestServer::max_open_connections() const noexcept {
    return s_->max_open;
}

std::size_t TestServer::accepted() const noexcept {
    return s_->accepted;
}

std::size_t TestServer::bytes_drained() const noexcept {
    return s_->bytes_drained;
}

const std::vector<SeenRequest>& TestServer::requests() const noexcept {
    return s_->requests;
}

Task<> TestServer::stop() {
    s_->stopping = true;
    server_.close();
    for (auto& [id, h] : s_->tasks) {
        h.cancel();
    }
    server_.abort_clients();
    try {
        co_await coring::wait_for(server_.wait_closed(), 5s);
    } catch (const TimeoutError&) {
    }
    for (int i = 0; i < 5000 && s_->callbacks > 0; ++i) {
        co_await coring::sleep(1ms);
    }
    for (int i = 0; i < 3; ++i) {
        co_await coring::sleep(0s);
    }
}

std::size_t vm_rss() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stoull(line.substr(6)) * 1024;
        }
    }
    return 0;
}

} // namespace coring::test
