// SPDX-License-Identifier: MIT
// asyncio's exception classes (asyncio.exceptions) as C++ exception types.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace coring {

/// The operation was cancelled (asyncio.CancelledError).
///
/// Deliberately not derived from std::exception: since Python 3.8 asyncio's CancelledError is a
/// BaseException, so that `except Exception` does not swallow a cancellation. Likewise
/// `catch (const std::exception&)` does not catch this; catch it by name, and rethrow it unless
/// you mean to refuse the cancellation.
class CancelledError {
public:
    CancelledError() = default;

    /// The message given to Task::cancel(msg), or empty.
    explicit CancelledError(std::string message) : message_(std::move(message)) {}

    /// The cancel message, or "cancelled" when there was none.
    const char* what() const noexcept;

    /// The message given to cancel(), possibly empty.
    const std::string& message() const noexcept { return message_; }

private:
    std::string message_;
};

/// The user interrupted the program with Ctrl-C (Python's KeyboardInterrupt). Thrown by run()
/// and Runner::run() when SIGINT cancelled the main task, or at once on a second SIGINT.
///
/// Like CancelledError, and for the reason Python makes KeyboardInterrupt a BaseException, it
/// does not derive from std::exception: `catch (const std::exception&)` error paths do not
/// report Ctrl-C as a failure. Catch it by name in main(), e.g. to return 130 as a shell
/// expects; left uncaught it ends the program through std::terminate.
class KeyboardInterrupt {
public:
    /// "KeyboardInterrupt".
    const char* what() const noexcept { return "KeyboardInterrupt"; }
};

/// An operation exceeded its deadline (asyncio.TimeoutError, the builtin TimeoutError since 3.11).
class TimeoutError : public std::runtime_error {
public:
    TimeoutError() : std::runtime_error("timed out") {}

    using std::runtime_error::runtime_error;
};

/// A Future or Task is in a state that does not allow the call (asyncio.InvalidStateError).
class InvalidStateError : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

/// Misuse of the runtime, such as running a loop twice (Python's RuntimeError).
class RuntimeError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// An argument has the right type but a wrong value (Python's ValueError).
class ValueError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// EOF came before the expected number of bytes (asyncio.IncompleteReadError).
class IncompleteReadError : public std::runtime_error {
public:
    /// partial: the bytes read before EOF; expected: the total wanted, or nullopt if unbounded.
    IncompleteReadError(std::string partial, std::optional<std::size_t> expected);

    /// The bytes read before EOF.
    std::string partial;
    /// The number of bytes that were expected, or nullopt when reading up to a separator.
    std::optional<std::size_t> expected;
};

/// The stream's limit was reached while looking for a separator (asyncio.LimitOverrunError).
class LimitOverrunError : public std::runtime_error {
public:
    LimitOverrunError(const std::string& message, std::size_t consumed_bytes)
        : std::runtime_error(message), consumed(consumed_bytes) {}

    /// How many bytes may be consumed before retrying.
    std::size_t consumed;
};

/// get_nowait() on an empty queue (asyncio.QueueEmpty).
class QueueEmpty : public std::runtime_error {
public:
    QueueEmpty() : std::runtime_error("queue is empty") {}
};

/// put_nowait() on a full queue (asyncio.QueueFull).
class QueueFull : public std::runtime_error {
public:
    QueueFull() : std::runtime_error("queue is full") {}
};

/// put() or get() on a queue that was shut down (asyncio.QueueShutDown, Python 3.13).
class QueueShutDown : public std::runtime_error {
public:
    QueueShutDown() : std::runtime_error("queue is shut down") {}
};

/// A Barrier was aborted or reset while tasks waited on it (asyncio.BrokenBarrierError).
class BrokenBarrierError : public std::runtime_error {
public:
    BrokenBarrierError() : std::runtime_error("barrier is broken") {}

    /// With asyncio's message: "Barrier aborted", "Abort or reset of barrier".
    explicit BrokenBarrierError(const std::string& what) : std::runtime_error(what) {}
};

/// Several exceptions raised together, as by a TaskGroup (Python's ExceptionGroup).
class ExceptionGroup : public std::exception {
public:
    ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions);

    /// "message (N sub-exceptions)", as Python prints it.
    const char* what() const noexcept override;

    /// The message given at construction.
    const std::string& message() const noexcept { return message_; }

    /// The grouped exceptions, in the order they were raised.
    const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }

private:
    std::string message_;
    std::string what_;
    std::vector<std::exception_ptr> exceptions_;
};

/// An OS error about a connection (Python's ConnectionError, an OSError). OS errors are
/// std::system_error with the errno in code() and the operation and its target in what():
/// "connect 127.0.0.1:8080: Connection refused".
class ConnectionError : public std::system_error {
public:
    /// err: the errno; what: the operation and its target ("recv 127.0.0.1:8080").
    ConnectionError(int err, const std::string& what)
        : std::system_error(err, std::system_category(), what) {}
};

/// Writing to a connection the peer has closed: EPIPE, ESHUTDOWN (Python's BrokenPipeError).
class BrokenPipeError : public ConnectionError {
public:
    using ConnectionError::ConnectionError;
};

/// The connection was aborted on this side: ECONNABORTED (Python's ConnectionAbortedError).
class ConnectionAbortedError : public ConnectionError {
public:
    using ConnectionError::ConnectionError;
};

/// Nobody listens at the address: ECONNREFUSED (Python's ConnectionRefusedError).
class ConnectionRefusedError : public ConnectionError {
public:
    using ConnectionError::ConnectionError;
};

/// The peer reset the connection: ECONNRESET (Python's ConnectionResetError).
class ConnectionResetError : public ConnectionError {
public:
    using ConnectionError::ConnectionError;
};

/// No such process: ESRCH (Python's ProcessLookupError), e.g. signalling a child that has been
/// reaped already.
class ProcessLookupError : public std::system_error {
public:
    /// err: the errno (ESRCH); what: the operation and its target.
    ProcessLookupError(int err, const std::string& what)
        : std::system_error(err, std::system_category(), what) {}
};

/// The exception for errno err, as Python's OSError constructor picks its subclass: one of the
/// ConnectionError classes above for the connection errnos, ProcessLookupError for ESRCH,
/// std::system_error otherwise.
/// what names the operation and its target ("connect 127.0.0.1:8080").
std::exception_ptr make_os_error(int err, const std::string& what);

/// Throws make_os_error(err, what).
[[noreturn]] void throw_os_error(int err, const std::string& what);

/// A readable description of any exception_ptr: "type: what()" for std::exception and
/// CancelledError, the type's name otherwise. Returns "" for a null pointer.
std::string describe_exception(const std::exception_ptr& e);

} // namespace coring
