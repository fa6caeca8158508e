// SPDX-License-Identifier: MIT
// How C++ values become query parameters and how result columns become C++ values (asyncpg's
// codecs): integers, double, bool, strings, bytes, NULL as std::optional, time points, JSON.
#pragma once

#include <coring/postgres/errors.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <ratio>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace coring::postgres {

/// A bytea value (Python's bytes).
using Bytes = std::vector<std::byte>;

/// A PostgreSQL type OID (pg_type.oid).
using Oid = unsigned int;

/// Some well-known type OIDs (pg_type.dat).
namespace oids {
inline constexpr Oid boolean = 16, bytea = 17, name = 19, int8 = 20, int2 = 21, int4 = 23,
                     text = 25, oid = 26, json = 114, float4 = 700, float8 = 701, bpchar = 1042,
                     varchar = 1043, date = 1082, timestamp = 1114, timestamptz = 1184,
                     numeric = 1700, uuid = 2950, jsonb = 3802, unknown = 705;
} // namespace oids

/// The SQL name of a type OID ("int4"), or "oid 1234" for one coring does not know.
std::string type_name(Oid oid);

namespace detail {

/// Query parameters in libpq's form: text, except bytea which is sent binary. The type of every
/// parameter is left for the server to infer from the statement (OID 0), as asyncpg does.
struct Params {
    struct Value {
        std::string data;
        bool null = false;
        bool binary = false;
        Oid oid = 0;
    };

    std::vector<Value> values;

    void add_null() { values.push_back(Value{{}, true, false, 0}); }

    void add_text(std::string s) { values.push_back(Value{std::move(s), false, false, 0}); }

    void add_binary(std::string s, Oid oid) {
        values.push_back(Value{std::move(s), false, true, oid});
    }
};

/// Appends one row in COPY's text format (tab-separated, \N for NULL, escaped) to out.
void append_copy_row(std::string& out, const Params& row);

std::string format_double(double v);
std::string format_timestamp(std::int64_t micros_since_unix_epoch);

template <class T>
struct is_optional : std::false_type {};

template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
struct is_time_point : std::false_type {};

template <class D>
struct is_time_point<std::chrono::time_point<std::chrono::system_clock, D>> : std::true_type {};

/// Appends one C++ value to params.
template <class T>
void encode(Params& params, const T& v) {
    using U = std::remove_cvref_t<T>;
    if constexpr (std::is_same_v<U, std::nullptr_t> || std::is_same_v<U, std::nullopt_t>) {
        params.add_null();
    } else if constexpr (is_optional<U>::value) {
        if (v) {
            encode(params, *v);
        } else {
            params.add_null();
        }
    } else if constexpr (std::is_same_v<U, bool>) {
        params.add_text(v ? "t" : "f");
    } else if constexpr (std::is_integral_v<U>) {
        params.add_text(std::to_string(v));
    } else if constexpr (std::is_floating_point_v<U>) {
        params.add_text(format_double(static_cast<double>(v)));
    } else if constexpr (std::is_same_v<U, Bytes>) {
        params.add_binary(std::string(reinterpret_cast<const char*>(v.data()), v.size()),
                          oids::bytea);
    } else if constexpr (is_time_point<U>::value) {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(v.time_since_epoch());
        params.add_text(format_timestamp(us.count()));
    } else if constexpr (std::is_same_v<U, nlohmann::json>) {
        params.add_text(v.dump());
    } else if constexpr (std::is_convertible_v<const U&, std::string_view>) {
        params.add_text(std::string(std::string_view(v)));
    } else {
        static_assert(sizeof(U) == 0, "coring::postgres: no encoding for this parameter type");
    }
}

/// What a requested C++ type is called in a type-mismatch error ("std::string").
template <class T>
const char* cpp_name() {
    if constexpr (std::is_same_v<T, bool>) {
        return "bool";
    } else if constexpr (std::is_same_v<T, std::int16_t>) {
        return "std::int16_t";
    } else if constexpr (std::is_same_v<T, std::int32_t>) {
        return "std::int32_t";
    } else if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, long long>) {
        return "std::int64_t";
    } else if constexpr (std::is_integral_v<T>) {
        return "integer";
    } else if constexpr (std::is_same_v<T, double>) {
        return "double";
    } else if constexpr (std::is_same_v<T, float>) {
        return "float";
    } else if constexpr (std::is_same_v<T, std::string>) {
        return "std::string";
    } else if constexpr (std::is_same_v<T, Bytes>) {
        return "coring::postgres::Bytes";
    } else if constexpr (is_time_point<T>::value) {
        return "std::chrono::system_clock::time_point";
    } else if constexpr (std::is_same_v<T, nlohmann::json>) {
        return "nlohmann::json";
    } else {
        return "this type";
    }
}

/// One column's value in binary format, with what an error message needs.
struct Field {
    const char* column; // the column's name
    Oid oid;
    const char* data;
    int length;
};

[[noreturn]] void throw_mismatch(const Field& f, const char* requested);
std::int64_t decode_int(const Field& f, const char* requested);
double decode_double(const Field& f, const char* requested);
bool decode_bool(const Field& f);
std::string decode_string(const Field& f);
Bytes decode_bytes(const Field& f);
std::int64_t decode_timestamp_us(const Field& f); // microseconds since the Unix epoch
nlohmann::json decode_json(const Field& f);

/// Converts a non-NULL field to T. Throws: DataError on a type mismatch or an integer that
/// does not fit.
template <class T>
T decode(const Field& f) {
    if constexpr (std::is_same_v<T, bool>) {
        return decode_bool(f);
    } else if constexpr (std::is_integral_v<T>) {
        std::int64_t v = decode_int(f, cpp_name<T>());
        if (v < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
            (v > 0 && static_cast<std::uint64_t>(v) > std::numeric_limits<T>::max())) {
            throw DataError(std::string("column \"") + f.column + "\" value " + std::to_string(v) +
                            " does not fit " + cpp_name<T>());
        }
        return static_cast<T>(v);
    } else if constexpr (std::is_floating_point_v<T>) {
        return static_cast<T>(decode_double(f, cpp_name<T>()));
    } else if constexpr (std::is_same_v<T, std::string>) {
        return decode_string(f);
    } else if constexpr (std::is_same_v<T, Bytes>) {
        return decode_bytes(f);
    } else if constexpr (is_time_point<T>::value) {
        using Duration = typename T::duration;
        std::int64_t us = decode_timestamp_us(f);
        if constexpr (std::ratio_less_v<typename Duration::period, std::micro>) {
            // A finer clock (system_clock's nanoseconds) spans less: ~1677 to ~2262.
            using std::chrono::duration_cast;
            using std::chrono::microseconds;
            if (us > duration_cast<microseconds>(Duration::max()).count() ||
                us < duration_cast<microseconds>(Duration::min()).count()) {
                throw DataError(std::string("column \"") + f.column +
                                "\": timestamp out of the range of " + cpp_name<T>());
            }
        }
        return T(std::chrono::duration_cast<Duration>(std::chrono::microseconds(us)));
    } else if constexpr (std::is_same_v<T, nlohmann::json>) {
        return decode_json(f);
    } else {
        static_assert(sizeof(T) == 0, "coring::postgres: no decoding for this column type");
    }
}

} // namespace detail

} // namespace coring::postgres
