// SPDX-License-Identifier: MIT
// The errors of coring::postgres: server errors with their SQLSTATE and client-side errors
// (asyncpg.exceptions: PostgresError and its subclasses, InterfaceError).
#pragma once

#include <exception>
#include <stdexcept>
#include <string>

namespace coring::postgres {

/// The fields of an error report from the server (libpq's PQresultErrorField).
struct ErrorFields {
    std::string sqlstate; ///< five-character SQLSTATE, e.g. "23505"
    std::string severity; ///< "ERROR", "FATAL", ...
    std::string message;  ///< the primary message
    std::string detail;   ///< DETAIL, or empty
    std::string hint;     ///< HINT, or empty
    int position = 0;     ///< 1-based character position in the statement, or 0
};

/// An error reported by the server (asyncpg.PostgresError). what() is the primary message.
/// Subclasses exist for the common SQLSTATEs; the rest are PostgresError itself.
class PostgresError : public std::runtime_error {
public:
    explicit PostgresError(ErrorFields fields);

    /// The SQLSTATE code ("42P01").
    const std::string& sqlstate() const noexcept { return fields_.sqlstate; }

    /// The primary message, as in what().
    const std::string& message() const noexcept { return fields_.message; }

    const std::string& detail() const noexcept { return fields_.detail; }

    const std::string& hint() const noexcept { return fields_.hint; }

    const std::string& severity() const noexcept { return fields_.severity; }

    /// The 1-based position of the error in the statement text, or 0.
    int position() const noexcept { return fields_.position; }

    const ErrorFields& fields() const noexcept { return fields_; }

private:
    ErrorFields fields_;
};

#define CORING_PG_ERROR_CLASS(Name, state)                                                         \
    /** SQLSTATE state (asyncpg.Name). */                                                          \
    class Name : public PostgresError {                                                            \
    public:                                                                                        \
        static constexpr const char* code = state;                                                 \
        using PostgresError::PostgresError;                                                        \
    };

CORING_PG_ERROR_CLASS(UniqueViolation, "23505")
CORING_PG_ERROR_CLASS(ForeignKeyViolation, "23503")
CORING_PG_ERROR_CLASS(NotNullViolation, "23502")
CORING_PG_ERROR_CLASS(SerializationFailure, "40001")
CORING_PG_ERROR_CLASS(DeadlockDetected, "40P01")
CORING_PG_ERROR_CLASS(UndefinedTable, "42P01")
CORING_PG_ERROR_CLASS(SyntaxError, "42601")
CORING_PG_ERROR_CLASS(QueryCanceled, "57014")

#undef CORING_PG_ERROR_CLASS

/// Misuse of the client (asyncpg.InterfaceError): "another operation is in progress", a
/// closed connection, a value of the wrong type, a wrong number of parameters.
class InterfaceError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The connection could not be made or was lost (asyncpg's ConnectionDoesNotExistError and
/// connection failures). what() carries libpq's message ("connection to server ... failed:
/// FATAL: password authentication failed for user ..."). A connection that raised it is closed.
class ConnectionError : public InterfaceError {
public:
    using InterfaceError::InterfaceError;
};

/// A column does not hold the requested C++ type or NULL was read into a non-optional value:
/// `column "id" is int4, requested std::string`.
class DataError : public InterfaceError {
public:
    using InterfaceError::InterfaceError;
};

namespace detail {

/// The PostgresError subclass for fields.sqlstate, as an exception_ptr.
std::exception_ptr make_postgres_error(ErrorFields fields);

} // namespace detail

} // namespace coring::postgres
