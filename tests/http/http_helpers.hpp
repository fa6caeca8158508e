// SPDX-License-Identifier: MIT
// Helpers shared by the HTTP client tests: one-call fetches, outcome capture, a loop-lag probe.
//
// WORKAROUND(gcc-12): GCC 12 destroys a braced aggregate temporary that is an argument inside a
// co_await expression twice (see ConnectOptions in streams.hpp). RequestOptions holds strings,
// so the tests always build it as a named local and pass std::move(local), never
// `co_await session.get(url, {.params = ...})`.
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/http.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coring::test {

/// Whether this build runs under AddressSanitizer or ThreadSanitizer (coring_set_sanitizers
/// defines CORING_SANITIZER_BUILD): they slow the code down several times, and ASan's
/// quarantine keeps freed memory (so RSS is no measure of it).
#ifdef CORING_SANITIZER_BUILD
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif

using coring::http::ClientResponse;
using coring::http::ClientSession;
using coring::http::RequestOptions;

/// A header's first value, or "<absent>" (easier to compare and print than an optional).
inline std::string header_or(const coring::http::Headers& h, std::string_view name) {
    auto v = h.get(name);
    return v ? std::string(*v) : std::string("<absent>");
}

/// A response read to its end.
struct Fetched {
    int status = 0;
    std::string version;
    std::string body;
    coring::http::Headers headers;
};

/// GET url and read the whole body.
inline Task<Fetched> fetch(ClientSession& s, std::string url) {
    ClientResponse r = co_await s.get(std::move(url));
    std::string body = co_await r.read();
    co_return Fetched{r.status, r.version, std::move(body), r.headers};
}

/// Sends a request, reads the body; the exception it ended with, or null.
inline Task<std::exception_ptr>
outcome(ClientSession& s, std::string method, std::string url, RequestOptions o) {
    try {
        ClientResponse r = co_await s.request(std::move(method), std::move(url), std::move(o));
        static_cast<void>(co_await r.read());
    } catch (const coring::CancelledError&) {
        throw;
    } catch (...) {
        co_return std::current_exception();
    }
    co_return nullptr;
}

inline Task<std::exception_ptr> get_outcome(ClientSession& s, std::string url) {
    return outcome(s, "GET", std::move(url), RequestOptions{});
}

/// Whether e holds an E.
template <class E>
bool holds(const std::exception_ptr& e) {
    if (!e) {
        return false;
    }
    try {
        std::rethrow_exception(e);
    } catch (const E&) {
        return true;
    } catch (...) {
        return false;
    }
}

/// e's what(), its type's description for non-std exceptions, "no exception" for null.
inline std::string what_of(const std::exception_ptr& e) {
    if (!e) {
        return "no exception";
    }
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return coring::describe_exception(e);
    }
}

/// Measures how late a 1 ms periodic sleep wakes up, until stop is set.
struct LagProbe {
    bool stop = false;
    std::vector<double> lateness_ms;

    Task<> run() {
        while (!stop) {
            auto before = std::chrono::steady_clock::now();
            co_await coring::sleep(std::chrono::milliseconds(1));
            auto late = std::chrono::steady_clock::now() - before - std::chrono::milliseconds(1);
            lateness_ms.push_back(std::chrono::duration<double, std::milli>(late).count());
        }
    }

    double max() const {
        return lateness_ms.empty() ? 0.0
                                   : *std::max_element(lateness_ms.begin(), lateness_ms.end());
    }

    std::string describe() const {
        std::string out;
        for (double v : lateness_ms) {
            out += std::to_string(static_cast<int>(v * 10) / 10.0).substr(0, 5) + " ";
        }
        return out;
    }

    double quantile(double q) const {
        if (lateness_ms.empty()) {
            return 0.0;
        }
        std::vector<double> v = lateness_ms;
        std::sort(v.begin(), v.end());
        return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
    }
};

} // namespace coring::test
