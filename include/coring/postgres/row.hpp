// SPDX-License-Identifier: MIT
// Row: one result row with typed access by index and by column name (asyncpg.Record).
#pragma once

#include <coring/postgres/errors.hpp>
#include <coring/postgres/types.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct pg_result; // libpq's PGresult

namespace coring::postgres {

namespace detail {
/// Owns a PGresult (PQclear on the last release); shared by the rows of one result.
using ResultPtr = std::shared_ptr<pg_result>;
} // namespace detail

/// One row of a query result (asyncpg.Record). Cheap to copy: rows of one result share it.
/// Values arrive in PostgreSQL's binary format and are decoded by column type on access.
class Row {
public:
    Row(detail::ResultPtr result, int row) noexcept : result_(std::move(result)), row_(row) {}

    /// The number of columns.
    std::size_t size() const noexcept;

    /// The name of column index.
    /// Throws: std::out_of_range.
    std::string column_name(std::size_t index) const;

    /// The type OID of column index.
    Oid column_type(std::size_t index) const;

    /// The index of the column called name (exact match, as asyncpg).
    /// Throws: std::out_of_range ("no column \"x\"").
    std::size_t index_of(std::string_view name) const;

    /// Whether column index is NULL.
    bool is_null(std::size_t index) const;

    /// The value of column index as T: `row.get<std::int64_t>(0)`; std::optional<U> for a
    /// column that may be NULL. Supported T: bool, integers (from int2/int4/int8/oid, range
    /// checked), double/float (float4/float8/numeric), std::string (text, varchar, name, json,
    /// numeric, uuid, ...), Bytes (bytea), std::chrono::system_clock::time_point (timestamp,
    /// timestamptz), nlohmann::json (json, jsonb).
    /// Throws: DataError naming the column and both types (`column "id" is int4, requested
    /// std::string`), or when NULL is read as a non-optional T; std::out_of_range.
    template <class T>
    T get(std::size_t index) const {
        detail::Field f = field(index);
        if constexpr (detail::is_optional<T>::value) {
            if (f.data == nullptr) {
                return std::nullopt;
            }
            return detail::decode<typename T::value_type>(f);
        } else {
            if (f.data == nullptr) {
                throw_null(f, detail::cpp_name<T>());
            }
            return detail::decode<T>(f);
        }
    }

    /// The value of the column called name as T: `row.get<int>("id")`.
    template <class T>
    T get(std::string_view name) const {
        return get<T>(index_of(name));
    }

private:
    detail::Field field(std::size_t index) const;
    [[noreturn]] static void throw_null(const detail::Field& f, const char* requested);

    detail::ResultPtr result_;
    int row_;
};

} // namespace coring::postgres
