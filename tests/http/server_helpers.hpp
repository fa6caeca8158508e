// SPDX-License-Identifier: MIT
// Helpers shared by the HTTP server tests: raw loopback exchanges, running real clients (curl,
// python, node, wrk) as child processes and reading their output.
//
// WORKAROUND(gcc-12): ServeOptions holds strings, so the tests build it as a named local and
// pass std::move(local) to HttpServer::start, never a braced temporary inside co_await.
#pragma once

#include <coring/errors.hpp>
#include <coring/http/server.hpp>
#include <coring/sleep.hpp>
#include <coring/streams.hpp>
#include <coring/subprocess.hpp>
#include <coring/task.hpp>
#include <coring/wait.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coring::test {

/// A response parsed roughly (enough for assertions): status, header block, body.
struct RawResponse {
    int status = 0;
    std::string head; // the head, status line included, without the final CRLF CRLF
    std::string body;

    bool has_header(std::string_view line) const {
        return head.find(std::string("\r\n") + std::string(line)) != std::string::npos;
    }
};

/// Splits the responses in data (Content-Length framed, or chunked, or to the end).
inline std::vector<RawResponse> split_responses(std::string_view data, bool head_request = false) {
    std::vector<RawResponse> out;
    while (!data.empty()) {
        std::size_t end = data.find("\r\n\r\n");
        if (end == std::string_view::npos) {
            break;
        }
        RawResponse r;
        r.head = std::string(data.substr(0, end));
        if (r.head.size() > 12) {
            r.status = std::stoi(r.head.substr(9, 3));
        }
        data.remove_prefix(end + 4);
        auto header = [&](std::string_view name) -> std::string {
            std::string lower;
            for (char c : r.head) {
                lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            }
            std::size_t p = lower.find("\r\n" + std::string(name) + ":");
            if (p == std::string::npos) {
                return {};
            }
            p += name.size() + 3;
            std::size_t e = r.head.find("\r\n", p);
            std::string v = r.head.substr(p, e == std::string::npos ? std::string::npos : e - p);
            while (!v.empty() && v.front() == ' ') {
                v.erase(0, 1);
            }
            return v;
        };
        if (r.status / 100 == 1) {
            out.push_back(std::move(r));
            continue;
        }
        std::string cl = header("content-length");
        if (head_request || r.status == 204 || r.status == 304) {
        } else if (!cl.empty()) {
            std::size_t n = std::min<std::size_t>(std::stoul(cl), data.size());
            r.body = std::string(data.substr(0, n));
            data.remove_prefix(n);
        } else if (header("transfer-encoding") == "chunked") {
            for (;;) {
                std::size_t le = data.find("\r\n");
                if (le == std::string_view::npos) {
                    data = {};
                    break;
                }
                std::size_t n = std::stoul(std::string(data.substr(0, le)), nullptr, 16);
                data.remove_prefix(le + 2);
                if (n == 0) {
                    data.remove_prefix(std::min<std::size_t>(2, data.size()));
                    break;
                }
                r.body += std::string(data.substr(0, n));
                data.remove_prefix(std::min(n + 2, data.size()));
            }
        } else {
            r.body = std::string(data);
            data = {};
        }
        out.push_back(std::move(r));
    }
    return out;
}

/// Reads until EOF (or until `timeout`, then returns what came with timed_out set).
struct ReadAll {
    std::string data;
    bool eof = false;
};

inline Task<ReadAll> read_to_eof(StreamReader& reader, std::chrono::milliseconds timeout) {
    ReadAll r;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    try {
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                break;
            }
            std::string piece = co_await wait_for(reader.read(64 * 1024), left);
            if (piece.empty()) {
                r.eof = true;
                break;
            }
            r.data += piece;
        }
    } catch (const TimeoutError&) {
    } catch (const std::system_error&) {
        r.eof = true; // reset: the connection is closed too
    }
    co_return r;
}

/// Connects, sends `request` in one write, reads until the server closes (at most timeout).
inline Task<ReadAll> raw_exchange(std::uint16_t port,
                                  std::string request,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto [reader, writer] = co_await open_connection("127.0.0.1", port);
    writer.write(request);
    co_await writer.drain();
    ReadAll r = co_await read_to_eof(reader, timeout);
    writer.close();
    co_return r;
}

/// Reads exactly one response whose head and (Content-Length) body fit what arrives.
inline Task<RawResponse> read_one_response(StreamReader& reader) {
    std::string head = co_await reader.readuntil("\r\n\r\n");
    auto parsed = split_responses(head + "", true);
    RawResponse r = parsed.empty() ? RawResponse{} : parsed.front();
    std::string lower;
    for (char c : head) {
        lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    std::size_t p = lower.find("\r\ncontent-length:");
    if (p != std::string::npos) {
        std::size_t n = std::stoul(head.substr(p + 17));
        r.body = co_await reader.readexactly(n);
    }
    co_return r;
}

/// A child's exit code and output.
struct Ran {
    int code = -1;
    std::string out;
    std::string err;
};

/// Runs program with args, stdout and stderr captured, stdin from input (or /dev/null). The
/// arguments are views (ExecArgs, for GCC 12's sake): temporaries in the co_await's full
/// expression outlive the call.
inline Task<Ran> run_program(std::string program, ExecArgs view, std::string input = {}) {
    std::vector<std::string> args(view.view().begin(), view.view().end());
    SubprocessOptions o;
    o.stdout_ = PIPE;
    o.stderr_ = PIPE;
    o.stdin_ = input.empty() ? DEVNULL : PIPE;
    Process p = co_await create_subprocess_exec(std::move(program), std::move(args), o);
    auto [out, err] = co_await p.communicate(std::move(input));
    int code = co_await p.wait();
    co_return Ran{code, out.value_or(""), err.value_or("")};
}

inline std::string url(std::uint16_t port, std::string_view path) {
    return "http://127.0.0.1:" + std::to_string(port) + std::string(path);
}

} // namespace coring::test
