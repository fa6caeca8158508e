// SPDX-License-Identifier: MIT
// libFuzzer target: StreamReader (asyncio.StreamReader) against a model of the byte stream,
// under random chunking, random cancellation points and random sizes, huge ones included
// (issue 10, defects 2 and 4). Every read must return exactly the next bytes of the stream, a
// cancelled or refused read must take none, and nothing may crash or allocate ahead of the data.
#include <coring/errors.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/streams.hpp>

#include <fcntl.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr std::size_t max_stream = 4096; // bytes per input: far below any limit used
constexpr int max_ops = 32;

[[noreturn]] void fail(const char* what, std::size_t pos, std::string_view got) {
    std::fprintf(stderr,
                 "fuzz_stream_reader: %s at stream position %zu (got %zu bytes: \"%.*s\")\n",
                 what,
                 pos,
                 got.size(),
                 static_cast<int>(got.size() > 64 ? 64 : got.size()),
                 got.data());
    std::abort();
}

void check(bool ok, const char* what, std::size_t pos, std::string_view got = {}) {
    if (!ok) {
        fail(what, pos, got);
    }
}

enum class Kind : std::uint8_t { read, readline, readuntil, readexactly, read_into };

// Sizes a read may be asked for: small ones, the edges, and the huge ones of defect 4.
std::size_t pick_size(FuzzedDataProvider& in) {
    static constexpr std::size_t table[] = {
            0,
            1,
            2,
            3,
            7,
            64,
            4096,
            65536,
            std::size_t{1} << 40,
            static_cast<std::size_t>(PTRDIFF_MAX),
            static_cast<std::size_t>(PTRDIFF_MAX) + 1,
            SIZE_MAX - 1,
            SIZE_MAX,
    };
    if (in.ConsumeBool()) {
        return in.ConsumeIntegralInRange<std::size_t>(0, 300);
    }
    return in.PickValueInArray(table);
}

// The reader, the raw peer socket and the model: the stream sent so far and how far the reader
// has consumed it.
struct World {
    coring::StreamReader reader;
    coring::StreamWriter writer;
    int peer;
    std::string stream;              // every byte the input will send, in order
    std::size_t sent = 0;            // bytes of stream handed to the peer socket
    std::size_t pos = 0;             // bytes the reader's reads have returned
    bool eof_sent = false;           // the peer shut down its write side
    std::vector<std::size_t> chunks; // send sizes, cycled
    std::size_t next_chunk = 0;

    // Sends the next chunk, or what of it the socket takes (the peer is non-blocking: many
    // small sends fill an AF_UNIX socket long before its byte count says so); EOF once all is
    // out.
    void send_chunk() {
        if (sent == stream.size()) {
            if (!eof_sent) {
                ::shutdown(peer, SHUT_WR);
                eof_sent = true;
            }
            return;
        }
        std::size_t n = chunks.empty() ? 1 : chunks[next_chunk++ % chunks.size()];
        n = std::min(n, stream.size() - sent);
        ssize_t k = ::send(peer, stream.data() + sent, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0) {
            check(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR,
                  "send to the socketpair failed",
                  sent);
            return;
        }
        sent += static_cast<std::size_t>(k);
    }

    std::string_view unread() const { return std::string_view(stream).substr(pos, sent - pos); }

    // Consumes got, which must be the next bytes of the stream.
    void take(std::string_view got, const char* what) {
        check(got.size() <= sent - pos, what, pos, got);
        check(unread().substr(0, got.size()) == got, what, pos, got);
        pos += got.size();
    }
};

struct Op {
    Kind kind;
    std::size_t size;      // read(n), readexactly(n), read_into's span size
    bool to_eof;           // read(-1)
    std::string separator; // readuntil
};

coring::Task<std::string> read_into_string(coring::StreamReader reader, std::span<char> buf) {
    std::size_t n = co_await reader.read_into(buf);
    co_return std::string(buf.data(), n);
}

coring::Task<std::string> start(World& w, const Op& op, std::span<char> scratch) {
    switch (op.kind) {
    case Kind::read:
        return w.reader.read(op.to_eof ? -1
                                       : static_cast<std::ptrdiff_t>(
                                                 std::min<std::size_t>(op.size, PTRDIFF_MAX)));
    case Kind::readline:
        return w.reader.readline();
    case Kind::readuntil:
        return w.reader.readuntil(op.separator);
    case Kind::readexactly:
        return w.reader.readexactly(op.size);
    case Kind::read_into:
        break;
    }
    return read_into_string(w.reader, scratch.first(std::min(op.size, scratch.size())));
}

// Checks the outcome of a read that returned got (or raised) against the model.
void check_outcome(World& w,
                   const Op& op,
                   std::optional<std::string> got,
                   bool cancelled,
                   std::optional<coring::IncompleteReadError> incomplete,
                   bool value_error,
                   std::size_t span_size) {
    if (cancelled) {
        return; // nothing consumed: the next read must see the same bytes
    }
    std::string_view rest = w.unread();
    switch (op.kind) {
    case Kind::readexactly:
        if (op.size > static_cast<std::size_t>(PTRDIFF_MAX)) {
            check(value_error, "readexactly of a huge size did not raise ValueError", w.pos);
            return;
        }
        if (incomplete) {
            check(w.eof_sent && rest.size() < op.size, "IncompleteReadError too early", w.pos);
            check(incomplete->partial == rest,
                  "IncompleteReadError.partial",
                  w.pos,
                  incomplete->partial);
            check(incomplete->expected == op.size, "IncompleteReadError.expected", w.pos);
            w.take(incomplete->partial, "readexactly partial");
            return;
        }
        check(got.has_value() && got->size() == op.size,
              "readexactly size",
              w.pos,
              got ? *got : std::string());
        w.take(*got, "readexactly bytes");
        return;
    case Kind::readline: {
        check(got.has_value(), "readline raised", w.pos);
        std::size_t nl = rest.find('\n');
        std::string_view want = nl == std::string_view::npos ? rest : rest.substr(0, nl + 1);
        check(nl != std::string_view::npos || w.eof_sent,
              "readline returned before EOF",
              w.pos,
              *got);
        check(*got == want, "readline bytes", w.pos, *got);
        w.take(*got, "readline");
        return;
    }
    case Kind::readuntil: {
        std::size_t at = rest.find(op.separator);
        if (incomplete) {
            check(at == std::string_view::npos && w.eof_sent,
                  "readuntil incomplete too early",
                  w.pos);
            check(incomplete->partial == rest, "readuntil partial", w.pos, incomplete->partial);
            w.take(incomplete->partial, "readuntil partial");
            return;
        }
        check(got.has_value() && at != std::string_view::npos,
              "readuntil without separator",
              w.pos,
              got ? *got : std::string());
        check(*got == rest.substr(0, at + op.separator.size()), "readuntil bytes", w.pos, *got);
        w.take(*got, "readuntil");
        return;
    }
    case Kind::read:
    case Kind::read_into: {
        check(got.has_value() && !incomplete && !value_error, "read raised", w.pos);
        std::size_t cap = op.kind == Kind::read_into ? span_size : op.size;
        if (op.kind == Kind::read && op.to_eof) {
            check(w.eof_sent && *got == rest, "read() to EOF", w.pos, *got);
        } else if (cap == 0) {
            check(got->empty(), "a read of 0 bytes returned data", w.pos, *got);
        } else {
            check(got->size() <= cap, "read returned more than asked", w.pos, *got);
            check(!got->empty() || (w.eof_sent && rest.empty()),
                  "read returned nothing early",
                  w.pos);
        }
        w.take(*got, "read");
        return;
    }
    }
}

// Feeds the stream, then EOF, until task (a read) has finished.
coring::Task<> finish(World& w, coring::TaskHandle<std::string>& task) {
    for (int spin = 0; !task.done(); ++spin) {
        check(spin < 1'000'000, "a read never finished", w.pos);
        w.send_chunk();
        co_await coring::sleep(0s);
    }
}

coring::Task<> run_program(FuzzedDataProvider& in) {
    static constexpr std::size_t limits[] = {
            coring::default_stream_limit,
            std::size_t{1} << 20,
            std::size_t{1} << 40,
            static_cast<std::size_t>(PTRDIFF_MAX),
            SIZE_MAX,
    };
    std::size_t limit = in.PickValueInArray(limits);
    auto [a, b] = coring::socketpair();
    auto streams = co_await coring::open_connection(std::move(a), limit);
    World w{streams.first, streams.second, b.fd(), {}, 0, 0, false, {}, 0};
    ::fcntl(w.peer, F_SETFL, ::fcntl(w.peer, F_GETFL) | O_NONBLOCK);

    // The stream: bytes from a small alphabet, so that lines and separators occur.
    std::size_t length = in.ConsumeIntegralInRange<std::size_t>(0, max_stream);
    for (std::size_t i = 0; i < length && in.remaining_bytes() > 0; ++i) {
        w.stream.push_back("ab\nc"[in.ConsumeIntegral<std::uint8_t>() & 3]);
    }
    int nchunks = in.ConsumeIntegralInRange<int>(1, 8);
    for (int i = 0; i < nchunks; ++i) {
        w.chunks.push_back(in.ConsumeIntegralInRange<std::size_t>(1, 600));
    }

    char scratch[512];
    for (int i = 0; i < max_ops && in.remaining_bytes() > 0; ++i) {
        Op op{};
        op.kind = static_cast<Kind>(in.ConsumeIntegralInRange<int>(0, 4));
        op.size = pick_size(in);
        op.to_eof = in.ConsumeIntegralInRange<int>(0, 7) == 0;
        if (op.kind == Kind::readuntil) {
            std::size_t seplen = in.ConsumeIntegralInRange<std::size_t>(1, 3);
            for (std::size_t k = 0; k < seplen; ++k) {
                op.separator.push_back("ab\nc"[in.ConsumeIntegral<std::uint8_t>() & 3]);
            }
        }
        std::size_t span_size = std::min(op.size, sizeof scratch);

        auto task = coring::create_task(start(w, op, scratch));
        // Up to 6 steps of: send a chunk, let the loop run once, or cancel the read.
        int steps = in.ConsumeIntegralInRange<int>(0, 6);
        for (int s = 0; s < steps && !task.done(); ++s) {
            switch (in.ConsumeIntegralInRange<int>(0, 2)) {
            case 0:
                w.send_chunk();
                break;
            case 1:
                co_await coring::sleep(0s);
                break;
            default:
                task.cancel();
                break;
            }
        }
        // A read that still waits gets data, then EOF, until it finishes.
        co_await finish(w, task);
        std::optional<std::string> got;
        std::optional<coring::IncompleteReadError> incomplete;
        bool cancelled = false;
        bool value_error = false;
        try {
            got = co_await task;
        } catch (const coring::CancelledError&) {
            cancelled = true;
        } catch (const coring::IncompleteReadError& e) {
            incomplete = e;
        } catch (const coring::ValueError&) {
            value_error = true;
        }
        if (value_error &&
            !(op.kind == Kind::readexactly && op.size > static_cast<std::size_t>(PTRDIFF_MAX))) {
            fail("unexpected ValueError", w.pos, {});
        }
        check_outcome(
                w, op, std::move(got), cancelled, std::move(incomplete), value_error, span_size);
    }

    // Whatever is left arrives through one last read to EOF: nothing lost, nothing twice.
    auto last = coring::create_task(w.reader.read());
    co_await finish(w, last);
    std::string tail = co_await last;
    check(tail == w.unread(), "the rest of the stream", w.pos, tail);
    w.pos += tail.size();
    check(w.pos == w.stream.size(), "bytes lost", w.pos);
    w.writer.close();
    co_await w.writer.wait_closed();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    coring::run(run_program(in)); // a fresh loop per input, closed at the end
    return 0;
}
