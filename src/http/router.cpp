// SPDX-License-Identifier: MIT
// App: routes by method and path with {name} parameters, middleware, lifespan hooks; the
// Request and Response helpers handlers use.
#include <coring/errors.hpp>
#include <coring/log.hpp>

#include <fmt/format.h>

#include <algorithm>

#include "server_internal.hpp"

namespace coring::http {

namespace {

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// Percent-decoding; plus_space: '+' is a space (query strings).
std::string percent_decode(std::string_view s, bool plus_space) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%' && i + 2 < s.size()) {
            int hi = hex_value(s[i + 1]);
            int lo = hex_value(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out += static_cast<char>(hi * 16 + lo);
                i += 2;
                continue;
            }
        }
        out += plus_space && c == '+' ? ' ' : c;
    }
    return out;
}

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> parts;
    std::size_t i = 1; // after the leading '/'
    while (i <= path.size()) {
        std::size_t j = path.find('/', i);
        if (j == std::string_view::npos) {
            j = path.size();
        }
        parts.push_back(path.substr(i, j - i));
        i = j + 1;
    }
    return parts;
}

Response error_json(int status, std::string_view detail) {
    return Response::json(nlohmann::json{{"detail", detail}}, status);
}

} // namespace

// RequestHeaders

std::optional<std::string_view> RequestHeaders::get(std::string_view name) const noexcept {
    for (const HeaderField& f : fields_) {
        if (iequals(f.name, name)) {
            return f.value;
        }
    }
    return std::nullopt;
}

std::vector<std::string_view> RequestHeaders::get_all(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const HeaderField& f : fields_) {
        if (iequals(f.name, name)) {
            out.push_back(f.value);
        }
    }
    return out;
}

// Request

std::string Request::param(std::string_view name) const {
    for (const auto& [n, v] : params_) {
        if (n == name) {
            return percent_decode(v, false);
        }
    }
    throw HttpError(500, fmt::format("the route has no path parameter '{}'", name));
}

std::optional<std::string> Request::query(std::string_view name) const {
    std::string_view q = query_string;
    while (!q.empty()) {
        std::size_t amp = q.find('&');
        std::string_view pair = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
        std::size_t eq = pair.find('=');
        std::string_view key = pair.substr(0, eq);
        if (percent_decode(key, true) == name) {
            return eq == std::string_view::npos ? std::string()
                                                : percent_decode(pair.substr(eq + 1), true);
        }
    }
    return std::nullopt;
}

Task<std::string> Request::body() {
    if (conn_ == nullptr) {
        co_return std::string();
    }
    co_return co_await conn_->read_body();
}

Task<nlohmann::json> Request::json() {
    std::string text = co_await body();
    try {
        co_return nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        throw HttpError(400, fmt::format("invalid JSON body: {}", e.what()));
    }
}

// Response

Response::Response(std::string text)
    : headers{{"Content-Type", "text/plain; charset=utf-8"}}, body(std::move(text)) {
}

Response::Response(const nlohmann::json& value)
    : headers{{"Content-Type", "application/json"}}, body(value.dump()) {
}

Response Response::text(std::string body, int status, std::string content_type) {
    Response r;
    r.status = status;
    r.headers.add("Content-Type", std::move(content_type));
    r.body = std::move(body);
    return r;
}

Response Response::json(const nlohmann::json& value, int status) {
    Response r(value);
    r.status = status;
    return r;
}

Response Response::file(std::string path, std::string content_type) {
    Response r;
    if (content_type.empty()) {
        static const std::pair<std::string_view, std::string_view> types[] = {
                {".html", "text/html; charset=utf-8"},
                {".htm", "text/html; charset=utf-8"},
                {".txt", "text/plain; charset=utf-8"},
                {".css", "text/css"},
                {".js", "text/javascript"},
                {".json", "application/json"},
                {".png", "image/png"},
                {".jpg", "image/jpeg"},
                {".svg", "image/svg+xml"},
        };
        content_type = "application/octet-stream";
        for (const auto& [ext, type] : types) {
            if (path.size() > ext.size() &&
                std::string_view(path).substr(path.size() - ext.size()) == ext) {
                content_type = type;
                break;
            }
        }
    }
    r.headers.add("Content-Type", std::move(content_type));
    r.file_ = std::move(path);
    return r;
}

Response Response::stream(StreamFn producer, std::string content_type) {
    Response r;
    r.headers.add("Content-Type", std::move(content_type));
    r.stream_ = std::move(producer);
    return r;
}

// App

App::App() : r_(std::make_unique<detail::RouterImpl>()) {
}

App::App(App&&) noexcept = default;
App& App::operator=(App&&) noexcept = default;
App::~App() = default;

void App::add_route(std::string method, std::string pattern, Handler h) {
    if (pattern.empty() || pattern.front() != '/') {
        throw ValueError(fmt::format("route '{}': a path pattern starts with '/'", pattern));
    }
    detail::RouterImpl::Route route{std::move(method), pattern, {}, std::move(h)};
    bool dynamic = false;
    for (std::string_view part : split_path(pattern)) {
        if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
            route.segments.push_back({std::string(part.substr(1, part.size() - 2)), true});
            dynamic = true;
        } else if (part.find_first_of("{}") != std::string_view::npos) {
            throw ValueError(
                    fmt::format("route '{}': a parameter is a whole segment: '{{name}}'", pattern));
        } else {
            route.segments.push_back({std::string(part), false});
        }
    }
    for (const auto& r : r_->routes_) {
        if (r.method == route.method && r.pattern == route.pattern) {
            throw ValueError(fmt::format("route {} {} is already defined", r.method, r.pattern));
        }
    }
    std::size_t index = r_->routes_.size();
    r_->routes_.push_back(std::move(route));
    if (dynamic) {
        r_->dynamic_.push_back(index);
    } else {
        r_->static_[pattern].push_back(index);
    }
}

App& App::use(Middleware m) {
    r_->middleware_.push_back(std::move(m));
    return *this;
}

App& App::on_startup(std::function<Task<>()> hook) {
    r_->hooks_.push_back({std::move(hook), {}});
    return *this;
}

App& App::on_shutdown(std::function<Task<>()> hook) {
    r_->hooks_.push_back({{}, std::move(hook)});
    return *this;
}

App& App::lifespan(std::function<Task<>()> startup, std::function<Task<>()> shutdown) {
    r_->hooks_.push_back({std::move(startup), std::move(shutdown)});
    return *this;
}

namespace {

Task<Response> run_chain(const detail::RouterImpl& r, std::size_t i, Request& req) {
    if (i == r.middleware_.size()) {
        co_return co_await r.dispatch(req);
    }
    Next next = [&r, i](Request& q) {
        return run_chain(r, i + 1, q);
    };
    co_return co_await r.middleware_[i](req, next);
}

} // namespace

Task<Response> App::handle(Request& req) const {
    try {
        if (r_->middleware_.empty()) {
            co_return co_await r_->dispatch(req);
        }
        co_return co_await run_chain(*r_, 0, req);
    } catch (const HttpError& e) {
        co_return error_json(e.status(), e.detail());
    } catch (const std::exception& e) {
        log(LogLevel::error,
            fmt::format("http: {} {} raised {}", req.method, req.target, e.what()));
        co_return error_json(500, "Internal Server Error");
    }
}

Task<Response> detail::RouterImpl::dispatch(Request& req) const {
    const std::vector<std::size_t>* candidates = nullptr;
    std::vector<std::size_t> matched;
    if (auto it = static_.find(req.path); it != static_.end()) {
        candidates = &it->second;
    } else {
        std::vector<std::string_view> parts = split_path(req.path);
        for (std::size_t index : dynamic_) {
            const Route& r = routes_[index];
            if (r.segments.size() != parts.size()) {
                continue;
            }
            bool ok = true;
            for (std::size_t i = 0; i < parts.size() && ok; ++i) {
                ok = r.segments[i].param ? !parts[i].empty() : r.segments[i].text == parts[i];
            }
            if (ok) {
                matched.push_back(index);
            }
        }
        candidates = &matched;
    }
    if (candidates->empty()) {
        co_return error_json(404, "Not Found");
    }
    const Route* found = nullptr;
    for (std::size_t index : *candidates) {
        if (routes_[index].method == req.method) {
            found = &routes_[index];
            break;
        }
    }
    if (found == nullptr && req.method == "HEAD") {
        for (std::size_t index : *candidates) {
            if (routes_[index].method == "GET") {
                found = &routes_[index];
                break;
            }
        }
    }
    if (found == nullptr) {
        std::vector<std::string> methods;
        for (std::size_t index : *candidates) {
            methods.push_back(routes_[index].method);
            if (routes_[index].method == "GET") {
                methods.emplace_back("HEAD");
            }
        }
        std::sort(methods.begin(), methods.end());
        methods.erase(std::unique(methods.begin(), methods.end()), methods.end());
        Response r = error_json(405, "Method Not Allowed");
        r.headers.add("Allow", fmt::format("{}", fmt::join(methods, ", ")));
        co_return r;
    }
    bool has_params = std::any_of(found->segments.begin(),
                                  found->segments.end(),
                                  [](const Segment& seg) { return seg.param; });
    if (has_params) {
        std::vector<std::string_view> parts = split_path(req.path);
        req.params_.clear();
        for (std::size_t i = 0; i < found->segments.size() && i < parts.size(); ++i) {
            if (found->segments[i].param) {
                req.params_.emplace_back(found->segments[i].text, parts[i]);
            }
        }
    }
    co_return co_await found->handler(req);
}

} // namespace coring::http
