// SPDX-License-Identifier: MIT
// The strict HTTP/1.1 request parser (RFC 9112) of the http server: picohttpparser's design
// (views into the read buffer, SIMD scanning, re-entrant on partial input) with RFC 9112's rules.
#include <coring/http/parser.hpp>

#include <array>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace coring::http {

namespace {

// Character classes, one bit each in a 256-entry table (picohttpparser's token_char_map).
constexpr std::uint8_t tchar_bit = 1; // RFC 9110 token: method and field names
constexpr std::uint8_t vchar_bit = 2; // field-value bytes: VCHAR, obs-text, SP, HTAB
constexpr std::uint8_t hex_bit = 4;   // HEXDIG: chunk sizes

constexpr std::array<std::uint8_t, 256> make_classes() noexcept {
    std::array<std::uint8_t, 256> t{};
    for (int c = 0; c < 256; ++c) {
        std::uint8_t bits = 0;
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        const bool digit = c >= '0' && c <= '9';
        if (alpha || digit) {
            bits |= tchar_bit;
        }
        for (const char* s = "!#$%&'*+-.^_`|~"; *s != '\0'; ++s) {
            if (c == *s) {
                bits |= tchar_bit;
            }
        }
        if ((c >= 0x20 && c != 0x7f) || c == '\t') {
            bits |= vchar_bit;
        }
        if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
            bits |= hex_bit;
        }
        t[static_cast<std::size_t>(c)] = bits;
    }
    return t;
}

constexpr std::array<std::uint8_t, 256> classes = make_classes();

bool is(char c, std::uint8_t bit) noexcept {
    return (classes[static_cast<unsigned char>(c)] & bit) != 0;
}

char lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// `a` is compared case-insensitively against `lower_b`, which is already lower case.
bool iequals(std::string_view a, std::string_view lower_b) noexcept {
    if (a.size() != lower_b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower_b[i]) {
            return false;
        }
    }
    return true;
}

// The first byte in [p, end) that cannot be part of a field value (a control character other
// than HTAB, or DEL); a valid value ends at its CR. obs-text (0x80-0xff) is allowed, as RFC 9110
// 5.5 says.
const char* find_value_end(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
    // SSE2 range checks, 16 bytes at a time: in signed compares obs-text is negative, so
    // "0 <= b < 0x20" picks out exactly the controls.
    const __m128i space = _mm_set1_epi8(0x20);
    const __m128i minus_one = _mm_set1_epi8(-1);
    const __m128i tab = _mm_set1_epi8('\t');
    const __m128i del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        __m128i bad = _mm_and_si128(_mm_cmplt_epi8(v, space), _mm_cmpgt_epi8(v, minus_one));
        bad = _mm_andnot_si128(_mm_cmpeq_epi8(v, tab), bad);
        bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, del));
        if (const int mask = _mm_movemask_epi8(bad); mask != 0) {
            return p + __builtin_ctz(static_cast<unsigned>(mask));
        }
        p += 16;
    }
#endif
    while (p != end && is(*p, vchar_bit)) {
        ++p;
    }
    return p;
}

// The first byte in [p, end) that cannot be part of a request-target: SP (its end), a control,
// DEL or a byte >= 0x80 (RFC 3986 has no raw non-ASCII; clients percent-encode it).
const char* find_target_end(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
    // Signed: bytes >= 0x80 are negative, so "b < 0x21" catches them with the controls and SP.
    const __m128i bang = _mm_set1_epi8(0x21);
    const __m128i del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, bang), _mm_cmpeq_epi8(v, del));
        if (const int mask = _mm_movemask_epi8(bad); mask != 0) {
            return p + __builtin_ctz(static_cast<unsigned>(mask));
        }
        p += 16;
    }
#endif
    while (p != end && static_cast<unsigned char>(*p) > 0x20 &&
           static_cast<unsigned char>(*p) < 0x7f) {
        ++p;
    }
    return p;
}

// The first byte in [p, end) that is not a tchar.
const char* find_token_end(const char* p, const char* end) noexcept {
    while (end - p >= 4) {
        if (!is(p[0], tchar_bit)) {
            return p;
        }
        if (!is(p[1], tchar_bit)) {
            return p + 1;
        }
        if (!is(p[2], tchar_bit)) {
            return p + 2;
        }
        if (!is(p[3], tchar_bit)) {
            return p + 3;
        }
        p += 4;
    }
    while (p != end && is(*p, tchar_bit)) {
        ++p;
    }
    return p;
}

// Whether the LF at data[i] ends the head (CRLF CRLF) or is a bare LF (an error).
bool stops_prescan(const char* begin, std::size_t i) noexcept {
    if (begin[i] != '\n') {
        return false;
    }
    if (i == 0 || begin[i - 1] != '\r') {
        return true;
    }
    return i >= 3 && begin[i - 2] == '\n' && begin[i - 3] == '\r';
}

// Whether the cheap pre-scan sees something the full parse must look at: a LF that ends the
// head (CRLF CRLF) or a bare LF. Without either, the full parse could only answer partial (or
// an error that it also finds once the head is complete), so a drip-fed head costs a SIMD scan
// per call rather than a parse. Both things stay in longer data, which keeps the answers
// monotone (see parse_request_head).
bool worth_parsing(std::string_view data) noexcept {
    const char* const begin = data.data();
    const std::size_t size = data.size();
    std::size_t i = 0;
#if defined(__SSE2__)
    for (; i < 3 && i < size; ++i) {
        if (stops_prescan(begin, i)) {
            return true;
        }
    }
    // Four overlapping loads compare each byte with the three before it: LF where the byte
    // before is not CR, or where the three before are CR LF CR.
    const __m128i cr = _mm_set1_epi8('\r');
    const __m128i lf = _mm_set1_epi8('\n');
    const __m128i ones = _mm_set1_epi8(-1);
    const auto load = [](const char* at) noexcept {
        return _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    };
    for (; i + 16 <= size; i += 16) {
        const char* const p = begin + i;
        const __m128i is_lf = _mm_cmpeq_epi8(load(p), lf);
        const __m128i cr1 = _mm_cmpeq_epi8(load(p - 1), cr);
        const __m128i crlf_cr =
                _mm_and_si128(_mm_cmpeq_epi8(load(p - 2), lf), _mm_cmpeq_epi8(load(p - 3), cr));
        // LF and (not CR before, or CR LF CR before).
        const __m128i hit = _mm_and_si128(is_lf, _mm_or_si128(_mm_xor_si128(cr1, ones), crlf_cr));
        if (_mm_movemask_epi8(hit) != 0) {
            return true;
        }
    }
#endif
    for (; i < size; ++i) {
        if (stops_prescan(begin, i)) {
            return true;
        }
    }
    return false;
}

// What the header fields said about framing and the connection, gathered while parsing and
// judged once the head is complete (so a prefix of a request never fails where the whole
// request would not).
struct Semantics {
    int content_lengths = 0;
    bool content_length_bad = false;
    std::uint64_t content_length = 0;
    bool transfer_encoding = false;
    bool te_bad = false;         // a syntax error in a Transfer-Encoding list
    int chunked_count = 0;       // how many times chunked is listed
    bool chunked_last = false;   // the last coding listed so far is chunked
    bool unknown_coding = false; // a coding other than chunked
    int hosts = 0;
    bool connection_close = false;
    bool connection_keep_alive = false;
    bool expect_continue = false;
};

// 1*DIGIT, no sign, below 2^63 (RFC 9110 8.6; a list such as "5, 5" is rejected too).
void parse_content_length(std::string_view v, Semantics& s) noexcept {
    ++s.content_lengths;
    if (v.empty() || v.size() > 19) {
        s.content_length_bad = true; // 19 digits hold every value below 2^63
        return;
    }
    std::uint64_t n = 0;
    for (const char c : v) {
        if (c < '0' || c > '9') {
            s.content_length_bad = true;
            return;
        }
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (n > static_cast<std::uint64_t>(INT64_MAX)) {
        s.content_length_bad = true;
        return;
    }
    s.content_length = n;
}

// Calls f(element) for each element of a comma-separated list (RFC 9110 5.6.1), skipping empty
// elements and the OWS around them; returns false on an element that is not a token followed
// only by parameters (";..."), which f sees without.
template <typename F>
bool for_each_token(std::string_view v, F&& f) noexcept {
    std::size_t i = 0;
    while (i < v.size()) {
        while (i < v.size() && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
            ++i;
        }
        if (i == v.size()) {
            break;
        }
        const std::size_t start = i;
        while (i < v.size() && is(v[i], tchar_bit)) {
            ++i;
        }
        if (i == start) {
            return false;
        }
        f(v.substr(start, i - start));
        // Anything up to the next comma must be OWS or parameters.
        while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) {
            ++i;
        }
        if (i < v.size() && v[i] == ';') {
            while (i < v.size() && v[i] != ',') {
                ++i;
            }
        } else if (i < v.size() && v[i] != ',') {
            return false;
        }
    }
    return true;
}

void parse_transfer_encoding(std::string_view v, Semantics& s) noexcept {
    s.transfer_encoding = true;
    bool any = false;
    const bool ok = for_each_token(v, [&](std::string_view coding) noexcept {
        any = true;
        if (iequals(coding, "chunked")) {
            ++s.chunked_count;
            s.chunked_last = true;
        } else {
            s.unknown_coding = true;
            s.chunked_last = false;
        }
    });
    if (!ok || !any) {
        s.te_bad = true; // an empty Transfer-Encoding is as malformed as a bad one
    }
}

void parse_connection(std::string_view v, Semantics& s) noexcept {
    // A malformed Connection list is not a framing problem: its good tokens still count.
    static_cast<void>(for_each_token(v, [&](std::string_view option) noexcept {
        if (iequals(option, "close")) {
            s.connection_close = true;
        } else if (iequals(option, "keep-alive")) {
            s.connection_keep_alive = true;
        }
    }));
}

// Looks at the fields whose names the parser cares about; the length switch keeps the common
// case (any other field) at one compare.
void note_field(std::string_view name, std::string_view value, Semantics& s) noexcept {
    switch (name.size()) {
    case 4:
        if (iequals(name, "host")) {
            ++s.hosts;
        }
        break;
    case 6:
        if (iequals(name, "expect") && iequals(value, "100-continue")) {
            s.expect_continue = true;
        }
        break;
    case 10:
        if (iequals(name, "connection")) {
            parse_connection(value, s);
        }
        break;
    case 14:
        if (iequals(name, "content-length")) {
            parse_content_length(value, s);
        }
        break;
    case 17:
        if (iequals(name, "transfer-encoding")) {
            parse_transfer_encoding(value, s);
        }
        break;
    default:
        break;
    }
}

ParseStatus fail(ParseError& error, int status, const char* reason) noexcept {
    error.status = status;
    error.reason = reason;
    return ParseStatus::error;
}

// Judges the gathered fields (RFC 9112 6.1 and 6.3) and fills in framing and keep-alive.
ParseStatus finish(const Semantics& s, RequestHead& head, ParseError& error) noexcept {
    if (s.content_length_bad) {
        return fail(error, 400, "malformed Content-Length");
    }
    if (s.content_lengths > 1) {
        return fail(error, 400, "duplicate Content-Length");
    }
    if (s.hosts > 1) {
        return fail(error, 400, "duplicate Host");
    }
    if (s.transfer_encoding) {
        if (s.te_bad) {
            return fail(error, 400, "malformed Transfer-Encoding");
        }
        if (s.content_lengths > 0) {
            return fail(error, 400, "Content-Length with Transfer-Encoding");
        }
        if (head.version_minor == 0) {
            // RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
            return fail(error, 400, "Transfer-Encoding in HTTP/1.0");
        }
        if (s.chunked_count > 1) {
            return fail(error, 400, "chunked applied more than once");
        }
        if (s.chunked_count == 1 && !s.chunked_last) {
            return fail(error, 400, "chunked is not the last transfer coding");
        }
        if (s.unknown_coding) {
            // RFC 9112 6.1: a transfer coding the server does not understand is a 501; only
            // chunked is implemented, so "gzip, chunked" is one too (and "gzip" alone, whose
            // framing could not be read anyway).
            return fail(error, 501, "unsupported transfer coding");
        }
        head.framing = BodyFraming::chunked;
    } else if (s.content_lengths == 1) {
        head.framing = BodyFraming::length;
        head.content_length = s.content_length;
    }
    if (head.version_minor == 1) {
        head.keep_alive = !s.connection_close;
        // RFC 9110 10.1.1: a 100-continue in an HTTP/1.0 request is ignored.
        head.expect_continue = s.expect_continue;
    } else {
        head.keep_alive = s.connection_keep_alive && !s.connection_close;
    }
    return ParseStatus::done;
}

constexpr int max_leading_empty_lines = 8;

// A line's limit plus its CRLF, saturated: SIZE_MAX means no limit.
std::size_t with_crlf(std::size_t limit) noexcept {
    return limit > SIZE_MAX - 2 ? SIZE_MAX : limit + 2;
}

// Parses the head in data[0, size): `vend` is where the head may end at the latest (the
// max_head limit), `dend` the end of the data. Every check depends only on the bytes before the
// place it looks at, so a prefix answers partial or exactly what the whole input answers.
ParseStatus parse_head(const char* begin,
                       const char* vend,
                       const char* dend,
                       std::span<HeaderField> storage,
                       const ParserLimits& limits,
                       RequestHead& head,
                       ParseError& error) noexcept {
    // Running out of bytes at `p` (the end of the slice being looked at): partial when the
    // data ends there, otherwise the limit that cut the slice short.
    const auto out_of_head = [&]() noexcept {
        return vend < dend ? fail(error, 431, "request head too large") : ParseStatus::partial;
    };
    const char* p = begin;
    // RFC 9112 2.2: empty lines (CRLF) before the request line are ignored, so a client that
    // ends a body with an extra CRLF still works. They count toward max_head, and only a few
    // are taken: the RFC asks for at least one, and each call would walk them all again.
    for (int empty = 0; p != vend && *p == '\r'; ++empty) {
        if (empty == max_leading_empty_lines) {
            return fail(error, 400, "too many empty lines before the request line");
        }
        if (p + 1 == vend) {
            return out_of_head();
        }
        if (p[1] != '\n') {
            return fail(error, 400, "CR without LF");
        }
        p += 2;
    }
    if (p == vend) {
        return out_of_head();
    }
    // The request line, looked at only up to its limit (+ CRLF), so that a long line is a 414
    // whatever comes after the limit.
    const char* const line = p;
    const std::size_t line_limit = with_crlf(limits.max_request_line);
    const char* const lend =
            static_cast<std::size_t>(vend - line) > line_limit ? line + line_limit : vend;
    const auto out_of_line = [&]() noexcept {
        return lend < vend ? fail(error, 414, "request line too long") : out_of_head();
    };

    const char* q = find_token_end(p, lend);
    if (q == lend) {
        return out_of_line();
    }
    if (*q != ' ' || q == p) {
        return fail(error, 400, *q == '\n' ? "bare LF" : "invalid method");
    }
    head.method = std::string_view(p, static_cast<std::size_t>(q - p));
    p = q + 1;

    q = find_target_end(p, lend);
    if (q == lend) {
        return out_of_line();
    }
    if (*q != ' ' || q == p) {
        return fail(error, 400, "invalid request-target");
    }
    head.target = std::string_view(p, static_cast<std::size_t>(q - p));
    p = q + 1;

    // "HTTP/" DIGIT "." DIGIT CRLF, compared byte by byte so that a prefix fails as early as
    // the whole would.
    static constexpr char version[] = "HTTP/1.1\r\n";
    for (std::size_t i = 0; i < 10; ++i, ++p) {
        if (p == lend) {
            return out_of_line();
        }
        const char c = *p;
        if (i == 5 || i == 7) {
            if (c < '0' || c > '9') {
                return fail(error, 400, "invalid HTTP version");
            }
        } else if (c != version[i]) {
            return fail(error, 400, c == '\n' ? "bare LF" : "invalid HTTP version");
        }
    }
    if (p[-5] != '1' || (p[-3] != '0' && p[-3] != '1')) {
        return fail(error, 505, "HTTP version not supported");
    }
    head.version_minor = p[-3] - '0';

    // The header fields.
    const std::size_t capacity =
            storage.size() < limits.max_headers ? storage.size() : limits.max_headers;
    std::size_t count = 0;
    Semantics sem;
    for (;;) {
        if (p == vend) {
            return out_of_head();
        }
        if (*p == '\r') {
            if (p + 1 == vend) {
                return out_of_head();
            }
            if (p[1] != '\n') {
                return fail(error, 400, "CR without LF");
            }
            p += 2;
            break;
        }
        if (*p == ' ' || *p == '\t') {
            // RFC 9112 5.2 obs-fold (and whitespace before the first field, 2.2).
            return fail(error, 400, "obsolete line folding");
        }
        if (count == capacity) {
            return fail(error, 431, "too many header fields");
        }
        const char* const name = p;
        q = find_token_end(p, vend);
        if (q == vend) {
            return out_of_head();
        }
        if (*q != ':') {
            if (*q == ' ' || *q == '\t') {
                return fail(error, 400, "whitespace before colon");
            }
            return fail(error, 400, *q == '\n' ? "bare LF" : "invalid field name");
        }
        if (q == name) {
            return fail(error, 400, "empty field name");
        }
        const std::string_view field_name(name, static_cast<std::size_t>(q - name));
        p = q + 1;
        while (p != vend && (*p == ' ' || *p == '\t')) {
            ++p;
        }
        const char* const value = p;
        q = find_value_end(p, vend);
        if (q == vend) {
            return out_of_head();
        }
        if (*q != '\r') {
            return fail(error, 400, *q == '\n' ? "bare LF" : "control character in field value");
        }
        if (q + 1 == vend) {
            return out_of_head();
        }
        if (q[1] != '\n') {
            return fail(error, 400, "CR without LF");
        }
        p = q + 2;
        while (q != value && (q[-1] == ' ' || q[-1] == '\t')) {
            --q;
        }
        const std::string_view field_value(value, static_cast<std::size_t>(q - value));
        storage[count++] = HeaderField{field_name, field_value};
        note_field(field_name, field_value, sem);
    }
    head.headers = storage.first(count);
    head.head_size = static_cast<std::size_t>(p - begin);
    return finish(sem, head, error);
}

} // namespace

ParseStatus parse_request_head(std::string_view data,
                               std::span<HeaderField> storage,
                               const ParserLimits& limits,
                               RequestHead& head,
                               ParseError& error) noexcept {
    // A read that ends with CRLF CRLF almost always holds a whole head: parse it at once.
    // Otherwise a SIMD pre-scan decides whether parsing can say more than partial.
    const bool ends_head = data.size() >= 4 && data.substr(data.size() - 4) == "\r\n\r\n";
    if (!ends_head && data.size() <= limits.max_head && !worth_parsing(data)) {
        // A first line longer than the request line's limit is parsed (and refused) at once
        // rather than at max_head. Every reason to parse holds for longer data too, so a
        // request never turns from an error back to partial as more of it arrives.
        const std::size_t line_limit = with_crlf(limits.max_request_line);
        if (data.size() <= line_limit ||
            std::memchr(data.data(), '\n', line_limit + 1) != nullptr) {
            return ParseStatus::partial;
        }
    }
    head = RequestHead{};
    const char* const begin = data.data();
    const char* const dend = begin + data.size();
    const char* const vend = data.size() > limits.max_head ? begin + limits.max_head : dend;
    return parse_head(begin, vend, dend, storage, limits, head, error);
}

// Implementation of ChunkedDecoder: a byte-at-a-time state machine for the framing, with the
// chunk data itself appended in bulk.
namespace {

// ChunkedDecoder::state_ values.
enum State : std::uint8_t {
    size_first,    // the first hex digit of a chunk size
    size_digits,   // more hex digits, or what follows them
    size_bws,      // whitespace after the size: only ";" may follow (chunk-ext's BWS)
    extension,     // inside chunk extensions, up to CR
    size_lf,       // the LF of the size line
    data,          // chunk data; chunk_left_ bytes to go
    data_cr,       // the CR after chunk data
    data_lf,       // the LF after chunk data
    trailer_start, // the start of a trailer line, or the CR of the final empty line
    trailer_line,  // inside a trailer field line
    trailer_lf,    // the LF of a trailer line
    final_lf,      // the LF of the final empty line
    finished,
    failed,
};

constexpr std::uint64_t max_chunk_size = static_cast<std::uint64_t>(INT64_MAX);

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

} // namespace

ChunkedDecoder::Status
ChunkedDecoder::decode(std::string_view in, std::size_t& consumed, std::string& out) {
    const char* const begin = in.data();
    const char* const end = begin + in.size();
    const char* p = begin;
    const auto fail_at = [&]() {
        state_ = failed;
        consumed = static_cast<std::size_t>(p - begin);
        return Status::error;
    };
    if (state_ == failed) {
        consumed = 0;
        return Status::error;
    }
    if (state_ == finished) {
        consumed = 0;
        return Status::done;
    }
    while (p != end) {
        switch (state_) {
        case data: {
            const auto avail = static_cast<std::uint64_t>(end - p);
            const auto n = static_cast<std::size_t>(chunk_left_ < avail ? chunk_left_ : avail);
            out.append(p, n);
            p += n;
            chunk_left_ -= n;
            body_size_ += n;
            if (chunk_left_ == 0) {
                state_ = data_cr;
            }
            continue;
        }
        case size_first: {
            const int v = hex_value(*p);
            if (v < 0) {
                return fail_at(); // an empty or non-hex chunk size
            }
            chunk_left_ = static_cast<std::uint64_t>(v);
            count_ = 1;
            state_ = size_digits;
            break;
        }
        case size_digits: {
            const int v = hex_value(*p);
            if (v >= 0) {
                // Leading zeros are allowed, but not without bound.
                if (chunk_left_ > (max_chunk_size >> 4) || ++count_ > 32) {
                    return fail_at(); // past 2^63
                }
                chunk_left_ = (chunk_left_ << 4) | static_cast<std::uint64_t>(v);
            } else if (*p == ';') {
                count_ = 1; // the ';' counts toward max_extensions, as it does after BWS
                state_ = extension;
            } else if (*p == ' ' || *p == '\t') {
                count_ = 0;
                state_ = size_bws;
            } else if (*p == '\r') {
                state_ = size_lf;
            } else {
                return fail_at();
            }
            break;
        }
        case size_bws:
            if (++count_ > max_extensions_) {
                return fail_at();
            }
            if (*p == ';') {
                state_ = extension;
            } else if (*p != ' ' && *p != '\t') {
                return fail_at();
            }
            break;
        case extension:
            // Extensions are ignored (RFC 9112 7.1.1), but bounded and free of controls.
            if (*p == '\r') {
                state_ = size_lf;
            } else if (!is(*p, vchar_bit) || ++count_ > max_extensions_) {
                return fail_at();
            }
            break;
        case size_lf:
            if (*p != '\n') {
                return fail_at();
            }
            if (chunk_left_ == 0) {
                count_ = 0;
                state_ = trailer_start;
            } else {
                state_ = data;
            }
            break;
        case data_cr:
            if (*p != '\r') {
                return fail_at(); // the chunk data is longer than its size said
            }
            state_ = data_lf;
            break;
        case data_lf:
            if (*p != '\n') {
                return fail_at();
            }
            state_ = size_first;
            break;
        case trailer_start:
            if (*p == '\r') {
                state_ = final_lf;
                break;
            }
            // A field line starts with a name: no obs-fold, no empty name.
            if (!is(*p, tchar_bit) || ++count_ > max_trailers_) {
                return fail_at();
            }
            state_ = trailer_line;
            break;
        case trailer_line:
            if (++count_ > max_trailers_) {
                return fail_at();
            }
            if (*p == '\r') {
                state_ = trailer_lf;
            } else if (!is(*p, vchar_bit)) {
                return fail_at();
            }
            break;
        case trailer_lf:
            if (*p != '\n') {
                return fail_at();
            }
            state_ = trailer_start;
            break;
        case final_lf:
            if (*p != '\n') {
                return fail_at();
            }
            state_ = finished;
            consumed = static_cast<std::size_t>(p + 1 - begin);
            return Status::done;
        default:
            return fail_at();
        }
        ++p;
    }
    consumed = in.size();
    return Status::more;
}

} // namespace coring::http
