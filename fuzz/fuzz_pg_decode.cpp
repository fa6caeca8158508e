// SPDX-License-Identifier: MIT
// libFuzzer target: the postgres component's binary-format decoders (postgres/types.hpp), which
// read the bytes of a server's DataRow fields, on arbitrary bytes and any column type. Every
// decoder must either return a value or throw coring::postgres::DataError (a mismatch, a wrong
// length, a value out of the requested type's range): never read past the field, overflow or
// throw anything else.
#include <coring/postgres/types.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

namespace pg = coring::postgres;
using pg::detail::Field;

template <class T>
void decode_as(const Field& f) {
    try {
        static_cast<void>(pg::detail::decode<T>(f));
    } catch (const pg::DataError&) {
        // a refused value is a right answer
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static constexpr pg::Oid types[] = {
            pg::oids::boolean, pg::oids::bytea,  pg::oids::name,      pg::oids::int8,
            pg::oids::int2,    pg::oids::int4,   pg::oids::text,      pg::oids::oid,
            pg::oids::json,    pg::oids::float4, pg::oids::float8,    pg::oids::bpchar,
            pg::oids::varchar, pg::oids::date,   pg::oids::timestamp, pg::oids::timestamptz,
            pg::oids::numeric, pg::oids::uuid,   pg::oids::jsonb,     pg::oids::unknown};
    if (size < 1) {
        return 0;
    }
    // The first byte picks the column type; the rest is the field, copied so that a read past
    // its end is a heap overflow ASan reports.
    pg::Oid oid = types[data[0] % (sizeof(types) / sizeof(types[0]))];
    std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
    auto* copy = static_cast<char*>(std::malloc(bytes.size() + 1));
    if (copy == nullptr) {
        return 0;
    }
    std::memcpy(copy, bytes.data(), bytes.size());
    Field f{"c", oid, copy, static_cast<int>(bytes.size())};
    decode_as<bool>(f);
    decode_as<std::int16_t>(f);
    decode_as<std::int32_t>(f);
    decode_as<std::int64_t>(f);
    decode_as<std::uint64_t>(f);
    decode_as<double>(f);
    decode_as<float>(f);
    decode_as<std::string>(f);
    decode_as<pg::Bytes>(f);
    decode_as<std::chrono::system_clock::time_point>(f);
    decode_as<std::chrono::sys_time<std::chrono::microseconds>>(f);
    decode_as<nlohmann::json>(f);
    std::free(copy);
    return 0;
}
