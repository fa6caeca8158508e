// SPDX-License-Identifier: MIT
// coring::postgres errors, parameter text and binary-format column decoding (asyncpg's
// exceptions and codecs).
#include <coring/postgres/errors.hpp>
#include <coring/postgres/row.hpp>
#include <coring/postgres/types.hpp>

#include <fmt/format.h>

#include <libpq-fe.h>

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>

namespace coring::postgres {

PostgresError::PostgresError(ErrorFields fields)
    : std::runtime_error(fields.message), fields_(std::move(fields)) {
}

namespace detail {

std::exception_ptr make_postgres_error(ErrorFields f) {
    const std::string& s = f.sqlstate;
    if (s == UniqueViolation::code) {
        return std::make_exception_ptr(UniqueViolation(std::move(f)));
    }
    if (s == ForeignKeyViolation::code) {
        return std::make_exception_ptr(ForeignKeyViolation(std::move(f)));
    }
    if (s == NotNullViolation::code) {
        return std::make_exception_ptr(NotNullViolation(std::move(f)));
    }
    if (s == SerializationFailure::code) {
        return std::make_exception_ptr(SerializationFailure(std::move(f)));
    }
    if (s == DeadlockDetected::code) {
        return std::make_exception_ptr(DeadlockDetected(std::move(f)));
    }
    if (s == UndefinedTable::code) {
        return std::make_exception_ptr(UndefinedTable(std::move(f)));
    }
    if (s == SyntaxError::code) {
        return std::make_exception_ptr(SyntaxError(std::move(f)));
    }
    if (s == QueryCanceled::code) {
        return std::make_exception_ptr(QueryCanceled(std::move(f)));
    }
    return std::make_exception_ptr(PostgresError(std::move(f)));
}

std::string format_double(double v) {
    if (std::isnan(v)) {
        return "NaN";
    }
    if (std::isinf(v)) {
        return v > 0 ? "Infinity" : "-Infinity";
    }
    return fmt::format("{}", v); // shortest text that reads back to the same double
}

std::string format_timestamp(std::int64_t us) {
    std::int64_t secs = us / 1'000'000;
    std::int64_t frac = us % 1'000'000;
    if (frac < 0) {
        frac += 1'000'000;
        --secs;
    }
    std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00",
                       tm.tm_year + 1900,
                       tm.tm_mon + 1,
                       tm.tm_mday,
                       tm.tm_hour,
                       tm.tm_min,
                       tm.tm_sec,
                       frac);
}

void append_copy_row(std::string& out, const Params& row) {
    bool first = true;
    for (const auto& v : row.values) {
        if (!first) {
            out += '\t';
        }
        first = false;
        if (v.null) {
            out += "\\N";
            continue;
        }
        if (v.binary) { // bytea: hex input form, its backslash escaped for COPY
            out += "\\\\x";
            for (char c : v.data) {
                out += fmt::format("{:02x}", static_cast<unsigned char>(c));
            }
            continue;
        }
        for (char c : v.data) {
            switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                out += c;
                break;
            }
        }
    }
    out += '\n';
}

namespace {

template <class T>
T read_be(const char* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    if constexpr (std::endian::native == std::endian::little) {
        if constexpr (sizeof(T) == 2) {
            v = static_cast<T>(__builtin_bswap16(static_cast<std::uint16_t>(v)));
        } else if constexpr (sizeof(T) == 4) {
            v = static_cast<T>(__builtin_bswap32(static_cast<std::uint32_t>(v)));
        } else {
            v = static_cast<T>(__builtin_bswap64(static_cast<std::uint64_t>(v)));
        }
    }
    return v;
}

void check_length(const Field& f, int want) {
    if (f.length != want) {
        throw DataError(fmt::format("column \"{}\" ({}): {} bytes, expected {}",
                                    f.column,
                                    type_name(f.oid),
                                    f.length,
                                    want));
    }
}

// numeric's binary form: ndigits, weight, sign, dscale, then base-10000 digits.
std::string numeric_text(const Field& f) {
    if (f.length < 8) {
        throw DataError(fmt::format("column \"{}\": short numeric", f.column));
    }
    auto ndigits = read_be<std::int16_t>(f.data);
    auto weight = read_be<std::int16_t>(f.data + 2);
    auto sign = read_be<std::uint16_t>(f.data + 4);
    auto dscale = read_be<std::int16_t>(f.data + 6);
    if (sign == 0xC000) {
        return "NaN";
    }
    if (sign == 0xD000) {
        return "Infinity";
    }
    if (sign == 0xF000) {
        return "-Infinity";
    }
    if (f.length < 8 + 2 * ndigits) {
        throw DataError(fmt::format("column \"{}\": short numeric", f.column));
    }
    auto digit = [&](int i) -> int {
        return i >= 0 && i < ndigits ? read_be<std::int16_t>(f.data + 8 + 2 * i) : 0;
    };
    std::string out;
    if (sign == 0x4000) {
        out += '-';
    }
    if (weight < 0) {
        out += '0';
    } else {
        for (int i = 0; i <= weight; ++i) {
            out += i == 0 ? fmt::format("{}", digit(i)) : fmt::format("{:04}", digit(i));
        }
    }
    if (dscale > 0) {
        out += '.';
        std::string frac;
        for (int i = weight + 1; static_cast<int>(frac.size()) < dscale; ++i) {
            frac += fmt::format("{:04}", digit(i));
        }
        out += frac.substr(0, static_cast<std::size_t>(dscale));
    }
    return out;
}

// PostgreSQL's epoch is 2000-01-01, 946684800 s after the Unix one.
constexpr std::int64_t pg_epoch_us = 946'684'800LL * 1'000'000;

} // namespace

[[noreturn]] void throw_mismatch(const Field& f, const char* requested) {
    throw DataError(fmt::format(
            "column \"{}\" is {}, requested {}", f.column, type_name(f.oid), requested));
}

std::int64_t decode_int(const Field& f, const char* requested) {
    switch (f.oid) {
    case oids::int2:
        check_length(f, 2);
        return read_be<std::int16_t>(f.data);
    case oids::int4:
        check_length(f, 4);
        return read_be<std::int32_t>(f.data);
    case oids::oid:
        check_length(f, 4);
        return read_be<std::uint32_t>(f.data);
    case oids::int8:
        check_length(f, 8);
        return read_be<std::int64_t>(f.data);
    default:
        throw_mismatch(f, requested);
    }
}

double decode_double(const Field& f, const char* requested) {
    switch (f.oid) {
    case oids::float4: {
        check_length(f, 4);
        return static_cast<double>(std::bit_cast<float>(read_be<std::uint32_t>(f.data)));
    }
    case oids::float8:
        check_length(f, 8);
        return std::bit_cast<double>(read_be<std::uint64_t>(f.data));
    case oids::numeric: {
        // numeric reaches 10^131072: like PostgreSQL's own numeric -> float8 cast, a value a
        // double cannot hold is an error, not an infinity or a zero.
        std::string text = numeric_text(f);
        errno = 0;
        char* end = nullptr;
        double v = std::strtod(text.c_str(), &end);
        if (end != text.c_str() + text.size()) {
            throw DataError(fmt::format("column \"{}\": malformed numeric", f.column));
        }
        if (errno == ERANGE) {
            throw DataError(fmt::format("column \"{}\": numeric {:.40} is out of the range of {}",
                                        f.column,
                                        text,
                                        requested));
        }
        return v;
    }
    default:
        throw_mismatch(f, requested);
    }
}

bool decode_bool(const Field& f) {
    if (f.oid != oids::boolean) {
        throw_mismatch(f, "bool");
    }
    check_length(f, 1);
    return f.data[0] != 0;
}

std::string decode_string(const Field& f) {
    switch (f.oid) {
    case oids::text:
    case oids::varchar:
    case oids::bpchar:
    case oids::name:
    case oids::json:
    case oids::unknown:
        return std::string(f.data, static_cast<std::size_t>(f.length));
    case oids::jsonb:
        if (f.length < 1 || f.data[0] != 1) {
            throw DataError(fmt::format("column \"{}\": unknown jsonb version", f.column));
        }
        return std::string(f.data + 1, static_cast<std::size_t>(f.length - 1));
    case oids::numeric:
        return numeric_text(f);
    case oids::uuid: {
        check_length(f, 16);
        std::string out;
        for (int i = 0; i < 16; ++i) {
            if (i == 4 || i == 6 || i == 8 || i == 10) {
                out += '-';
            }
            out += fmt::format("{:02x}", static_cast<unsigned char>(f.data[i]));
        }
        return out;
    }
    default:
        throw_mismatch(f, "std::string");
    }
}

Bytes decode_bytes(const Field& f) {
    if (f.oid != oids::bytea) {
        throw_mismatch(f, "coring::postgres::Bytes");
    }
    const auto* p = reinterpret_cast<const std::byte*>(f.data);
    return Bytes(p, p + f.length);
}

std::int64_t decode_timestamp_us(const Field& f) {
    if (f.oid != oids::timestamp && f.oid != oids::timestamptz) {
        throw_mismatch(f, "std::chrono::system_clock::time_point");
    }
    check_length(f, 8);
    std::int64_t v = read_be<std::int64_t>(f.data);
    if (v == std::numeric_limits<std::int64_t>::max() ||
        v == std::numeric_limits<std::int64_t>::min()) {
        throw DataError(fmt::format("column \"{}\" is an infinite timestamp", f.column));
    }
    // PostgreSQL's last timestamp (294276 AD) is close to the int64 limit in microseconds
    // since 2000: moving it to the Unix epoch can overflow.
    std::int64_t unix_us = 0;
    if (__builtin_add_overflow(v, pg_epoch_us, &unix_us)) {
        throw DataError(fmt::format(
                "column \"{}\": timestamp out of the range of microseconds since 1970", f.column));
    }
    return unix_us;
}

nlohmann::json decode_json(const Field& f) {
    if (f.oid != oids::json && f.oid != oids::jsonb && f.oid != oids::text) {
        throw_mismatch(f, "nlohmann::json");
    }
    try {
        return nlohmann::json::parse(decode_string(f));
    } catch (const nlohmann::json::exception& e) {
        // not JSON (text), or JSON nlohmann::json cannot hold (a number past a double's range)
        throw DataError(
                fmt::format("column \"{}\" cannot be read as JSON: {}", f.column, e.what()));
    }
}

} // namespace detail

std::string type_name(Oid oid) {
    switch (oid) {
    case oids::boolean:
        return "bool";
    case oids::bytea:
        return "bytea";
    case oids::name:
        return "name";
    case oids::int8:
        return "int8";
    case oids::int2:
        return "int2";
    case oids::int4:
        return "int4";
    case oids::text:
        return "text";
    case oids::oid:
        return "oid";
    case oids::json:
        return "json";
    case oids::float4:
        return "float4";
    case oids::float8:
        return "float8";
    case oids::bpchar:
        return "bpchar";
    case oids::varchar:
        return "varchar";
    case oids::date:
        return "date";
    case oids::timestamp:
        return "timestamp";
    case oids::timestamptz:
        return "timestamptz";
    case oids::numeric:
        return "numeric";
    case oids::uuid:
        return "uuid";
    case oids::jsonb:
        return "jsonb";
    case oids::unknown:
        return "unknown";
    default:
        return fmt::format("oid {}", oid);
    }
}

// Row

std::size_t Row::size() const noexcept {
    return static_cast<std::size_t>(PQnfields(result_.get()));
}

std::string Row::column_name(std::size_t index) const {
    if (index >= size()) {
        throw std::out_of_range(fmt::format("column index {} of {}", index, size()));
    }
    return PQfname(result_.get(), static_cast<int>(index));
}

Oid Row::column_type(std::size_t index) const {
    if (index >= size()) {
        throw std::out_of_range(fmt::format("column index {} of {}", index, size()));
    }
    return PQftype(result_.get(), static_cast<int>(index));
}

std::size_t Row::index_of(std::string_view name) const {
    int n = PQnfields(result_.get());
    for (int i = 0; i < n; ++i) {
        if (name == PQfname(result_.get(), i)) {
            return static_cast<std::size_t>(i);
        }
    }
    throw std::out_of_range(fmt::format("no column \"{}\"", name));
}

bool Row::is_null(std::size_t index) const {
    if (index >= size()) {
        throw std::out_of_range(fmt::format("column index {} of {}", index, size()));
    }
    return PQgetisnull(result_.get(), row_, static_cast<int>(index)) != 0;
}

detail::Field Row::field(std::size_t index) const {
    if (index >= size()) {
        throw std::out_of_range(fmt::format("column index {} of {}", index, size()));
    }
    int c = static_cast<int>(index);
    pg_result* r = result_.get();
    detail::Field f{PQfname(r, c), PQftype(r, c), nullptr, 0};
    if (PQgetisnull(r, row_, c) == 0) {
        f.data = PQgetvalue(r, row_, c);
        f.length = PQgetlength(r, row_, c);
    }
    return f;
}

void Row::throw_null(const detail::Field& f, const char* requested) {
    throw DataError(fmt::format(
            "column \"{}\" is NULL, requested {} (use std::optional)", f.column, requested));
}

} // namespace coring::postgres
