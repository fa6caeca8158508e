// SPDX-License-Identifier: MIT
// Headers (aiohttp's CIMultiDict).
#include <coring/http/headers.hpp>

#include <algorithm>

namespace coring::http {

namespace {

char lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

} // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

void Headers::set(std::string name, std::string value) {
    erase(name);
    add(std::move(name), std::move(value));
}

std::optional<std::string_view> Headers::get(std::string_view name) const noexcept {
    for (const auto& [n, v] : fields_) {
        if (iequals(n, name)) {
            return std::string_view(v);
        }
    }
    return std::nullopt;
}

std::vector<std::string_view> Headers::get_all(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const auto& [n, v] : fields_) {
        if (iequals(n, name)) {
            out.emplace_back(v);
        }
    }
    return out;
}

std::size_t Headers::erase(std::string_view name) noexcept {
    auto it = std::remove_if(
            fields_.begin(), fields_.end(), [&](const Field& f) { return iequals(f.first, name); });
    std::size_t n = static_cast<std::size_t>(fields_.end() - it);
    fields_.erase(it, fields_.end());
    return n;
}

} // namespace coring::http
