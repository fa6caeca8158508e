// SPDX-License-Identifier: MIT
// Headers: HTTP header fields as aiohttp's CIMultiDict — case-insensitive names, repeated names
// kept in the order they came.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coring::http {

/// Whether two header names are equal ignoring ASCII case.
bool iequals(std::string_view a, std::string_view b) noexcept;

/// An ordered list of header fields with case-insensitive lookup (aiohttp's CIMultiDict): a
/// repeated name (Set-Cookie, Via) keeps every value, in order; names keep the spelling they
/// were given or received in.
///
///     coring::http::Headers h{{"Accept", "text/html"}, {"X-Trace", "1"}};
///     if (auto v = h.get("accept")) { ... }   // *v == "text/html"
class Headers {
public:
    using Field = std::pair<std::string, std::string>;
    using const_iterator = std::vector<Field>::const_iterator;

    Headers() = default;

    /// The fields in the given order.
    Headers(std::initializer_list<Field> fields) : fields_(fields) {}

    /// Appends a field, keeping any with the same name (CIMultiDict.add).
    void add(std::string name, std::string value) {
        fields_.emplace_back(std::move(name), std::move(value));
    }

    /// Replaces every field named `name` with one (CIMultiDict.__setitem__).
    void set(std::string name, std::string value);

    /// The first value of `name`, or nullopt (CIMultiDict.get).
    std::optional<std::string_view> get(std::string_view name) const noexcept;

    /// Every value of `name`, in order (CIMultiDict.getall, empty when absent).
    std::vector<std::string_view> get_all(std::string_view name) const;

    /// Whether a field named `name` exists.
    bool contains(std::string_view name) const noexcept { return get(name).has_value(); }

    /// Removes every field named `name`; returns how many.
    std::size_t erase(std::string_view name) noexcept;

    std::size_t size() const noexcept { return fields_.size(); }

    bool empty() const noexcept { return fields_.empty(); }

    void clear() noexcept { fields_.clear(); }

    /// Makes room for n fields.
    void reserve(std::size_t n) { fields_.reserve(n); }

    const_iterator begin() const noexcept { return fields_.begin(); }

    const_iterator end() const noexcept { return fields_.end(); }

private:
    std::vector<Field> fields_;
};

} // namespace coring::http
