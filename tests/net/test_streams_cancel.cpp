// SPDX-License-Identifier: MIT
// Tests of streams.hpp under cancellation: a cancelled read leaves its bytes in the reader's
// buffer, whatever the read and however it is cancelled (issue 10, defect 2; asyncio's
// StreamReader keeps the data of a cancelled read the same way).
#include <coring/gather.hpp>
#include <coring/sleep.hpp>
#include <coring/streams.hpp>
#include <coring/task_group.hpp>
#include <coring/testing/catch2.hpp>
#include <coring/timeout.hpp>
#include <coring/wait.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <span>
#include <string>
#include <thread>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::StreamReader;
using coring::Task;
using coring::TaskHandle;

namespace {

// Every line has the same width, so that readexactly and read(n) take one line at a time.
constexpr std::size_t line_width = 10;

std::string line_of(int i) {
    char s[line_width + 1];
    std::snprintf(s, sizeof s, "line-%04d\n", i);
    return std::string(s, line_width);
}

enum class Kind { readline, readuntil, readexactly, read, read_into };

enum class Style {
    cancel_after_completion, // task.cancel() once the recv's completion is reaped
    cancel_in_flight,        // task.cancel() right after the data reached the socket
    wait_for_zero,           // wait_for(task, 0s) right after the data reached the socket
    wait_for_cancelled,      // the task awaiting wait_for(task, 10s) is cancelled
    timeout_expiry,          // a timeout scope around it expires (reschedule to now)
    gather_cancelled,        // the task awaiting gather(task) is cancelled
    task_group_cancelled,    // the task running a TaskGroup that holds the read is cancelled
};

const char* name_of(Kind k) {
    switch (k) {
    case Kind::readline:
        return "readline";
    case Kind::readuntil:
        return "readuntil";
    case Kind::readexactly:
        return "readexactly";
    case Kind::read:
        return "read(n)";
    case Kind::read_into:
        return "read_into";
    }
    return "?";
}

const char* name_of(Style s) {
    switch (s) {
    case Style::cancel_after_completion:
        return "cancel after completion";
    case Style::cancel_in_flight:
        return "cancel in flight";
    case Style::wait_for_zero:
        return "wait_for 0s";
    case Style::wait_for_cancelled:
        return "wait_for cancelled";
    case Style::timeout_expiry:
        return "timeout expiry";
    case Style::gather_cancelled:
        return "gather cancelled";
    case Style::task_group_cancelled:
        return "TaskGroup cancelled";
    }
    return "?";
}

Task<std::string> read_into_string(StreamReader reader, std::span<char> buf) {
    std::size_t n = co_await reader.read_into(buf);
    co_return std::string(buf.data(), n);
}

// One read of the given kind, as a Task of its own (create_task(reader.readline()) & co).
Task<std::string> start_read(StreamReader& reader, Kind kind, std::span<char> scratch) {
    switch (kind) {
    case Kind::readline:
        return reader.readline();
    case Kind::readuntil:
        return reader.readuntil("\n");
    case Kind::readexactly:
        return reader.readexactly(line_width);
    case Kind::read:
        return reader.read(static_cast<std::ptrdiff_t>(line_width));
    case Kind::read_into:
        break;
    }
    return read_into_string(reader, scratch.first(line_width));
}

void send_all(int fd, const std::string& data) {
    REQUIRE(::send(fd, data.data(), data.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(data.size()));
}

Task<> await_gather(TaskHandle<std::string> child) {
    co_await coring::gather(child);
}

Task<> await_wait_for(TaskHandle<std::string> child) {
    co_await coring::wait_for(child, 10s);
}

Task<>
run_group(StreamReader reader, Kind kind, std::span<char> scratch, TaskHandle<std::string>* child) {
    co_await coring::task_group([&](coring::TaskGroup& g) -> Task<> {
        *child = g.create_task(start_read(reader, kind, scratch));
        co_return;
    });
}

// A timeout scope around the read, without a deadline until the test moves it (reschedule):
// scope points at it while it is active.
Task<> await_timeout(TaskHandle<std::string> child, coring::Timeout** scope) {
    coring::Timeout cm = coring::timeout_at(std::nullopt);
    *scope = &cm;
    try {
        co_await cm.run([&]() -> Task<> { co_await child; });
    } catch (const coring::TimeoutError&) {
    }
    *scope = nullptr;
}

// Runs rounds of "a read waits in its recv; a line arrives; the read is cancelled by style"
// and checks that the bytes the reads returned, followed by what is left, are exactly the bytes
// sent.
Task<> check_no_loss(Kind kind, Style style, int rounds) {
    auto [a, b] = coring::socketpair();
    auto [reader, writer] = co_await coring::open_connection(std::move(a));
    int peer = b.fd();
    std::string sent;
    std::string received;
    char scratch[64];
    int cancelled = 0;
    for (int i = 0; i < rounds; ++i) {
        // Take what earlier cancelled reads left, so that this round's read has to wait.
        while (reader.buffered() > 0) {
            received += co_await reader.read(static_cast<std::ptrdiff_t>(reader.buffered()));
        }
        std::string line = line_of(i);
        sent += line;
        TaskHandle<std::string> child;
        TaskHandle<> outer;
        coring::Timeout* scope = nullptr;
        if (style == Style::task_group_cancelled) {
            outer = coring::create_task(run_group(reader, kind, scratch, &child));
        } else {
            child = coring::create_task(start_read(reader, kind, scratch));
            if (style == Style::gather_cancelled) {
                outer = coring::create_task(await_gather(child));
            } else if (style == Style::wait_for_cancelled) {
                outer = coring::create_task(await_wait_for(child));
            } else if (style == Style::timeout_expiry) {
                outer = coring::create_task(await_timeout(child, &scope));
            }
        }
        co_await coring::sleep(0s); // the read submits its recv
        co_await coring::sleep(0s);
        send_all(peer, line);
        switch (style) {
        case Style::cancel_in_flight:
            child.cancel();
            break;
        case Style::wait_for_zero:
            try {
                co_await coring::wait_for(child, 0s);
            } catch (const coring::TimeoutError&) {
            }
            break;
        case Style::cancel_after_completion:
            co_await coring::sleep(0s); // the completion is reaped; the read is scheduled
            child.cancel();
            break;
        case Style::timeout_expiry:
            // The deadline callback runs before the read's completion in the next pass.
            REQUIRE(scope != nullptr);
            scope->reschedule(coring::get_running_loop().time());
            break;
        case Style::task_group_cancelled:
            // The parent's wake-up runs before the read's completion in the next pass; it
            // cancels the read just after the kernel has completed it.
            outer.cancel();
            break;
        default:
            co_await coring::sleep(0s);
            outer.cancel();
            break;
        }
        if (outer) {
            try {
                co_await outer;
            } catch (...) {
            }
        }
        try {
            received += co_await child;
        } catch (const coring::CancelledError&) {
            ++cancelled;
        }
    }
    ::shutdown(peer, SHUT_WR);
    received += co_await reader.read(); // the rest, up to EOF
    INFO(name_of(kind) << ", " << name_of(style) << ": " << cancelled << " of " << rounds
                       << " reads cancelled");
    CHECK(received.size() == sent.size());
    CHECK(received == sent);
    writer.close();
    co_await writer.wait_closed();
}

} // namespace

TEST_CASE("StreamReader: a cancelled read leaves its bytes for the next read",
          "[net][streams][cancel]") {
    Kind kind = GENERATE(
            Kind::readline, Kind::readuntil, Kind::readexactly, Kind::read, Kind::read_into);
    Style style = GENERATE(Style::cancel_after_completion,
                           Style::cancel_in_flight,
                           Style::wait_for_zero,
                           Style::wait_for_cancelled,
                           Style::timeout_expiry,
                           Style::gather_cancelled,
                           Style::task_group_cancelled);
    int rounds = 50;
    coring::test::run_test([=] { return check_no_loss(kind, style, rounds); });
}

CORING_TEST_CASE(
        "StreamReader: readline under wait_for timing out in a loop loses no line of a busy peer",
        "[net][streams][cancel]") {
    // The probe that found defect 2: a peer thread writes lines while the reader keeps timing
    // out; every line must arrive once, in order.
    constexpr int lines = 4000;
    auto [a, b] = coring::socketpair();
    auto [reader, writer] = co_await coring::open_connection(std::move(a));
    int peer = b.fd();
    std::thread producer([peer] {
        for (int i = 0; i < lines; ++i) {
            std::string line = line_of(i);
            if (::send(peer, line.data(), line.size(), MSG_NOSIGNAL) !=
                static_cast<ssize_t>(line.size())) {
                break; // the test fails on the missing lines
            }
            if (i % 4 == 0) {
                std::this_thread::sleep_for(20us);
            }
        }
        ::shutdown(peer, SHUT_WR);
    });
    int next = 0;
    int timeouts = 0;
    bool in_order = true;
    for (;;) {
        std::string line;
        try {
            line = co_await coring::wait_for(reader.readline(), 30us);
        } catch (const coring::TimeoutError&) {
            ++timeouts;
            continue;
        }
        if (line.empty()) {
            break; // EOF
        }
        if (line != line_of(next)) {
            in_order = false;
            break;
        }
        ++next;
    }
    writer.close(); // a producer still sending (the test failed) gets EPIPE and ends
    co_await writer.wait_closed();
    producer.join();
    INFO(timeouts << " timeouts");
    CHECK(in_order);
    CHECK(next == lines);
}

CORING_TEST_CASE(
        "StreamReader: a read_into cancelled as EOF arrives raises CancelledError and then sees "
        "EOF",
        "[net][streams][cancel]") {
    // Found by fuzz_stream_reader: the cancelled read_into put its 0 bytes back with a memcpy
    // into a buffer that had no storage yet (UBSan: null argument).
    auto [a, b] = coring::socketpair();
    auto [reader, writer] = co_await coring::open_connection(std::move(a));
    char buf[16];
    auto child = coring::create_task(read_into_string(reader, buf));
    co_await coring::sleep(0s); // the read submits its recv
    co_await coring::sleep(0s);
    ::shutdown(b.fd(), SHUT_WR);
    co_await coring::sleep(0s); // the completion is reaped; the read is scheduled
    child.cancel();
    CO_CHECK_THROWS_AS(child, coring::CancelledError);
    std::string rest = co_await reader.read();
    CHECK(rest.empty());
    CHECK(reader.at_eof());
    writer.close();
    co_await writer.wait_closed();
}
