// SPDX-License-Identifier: MIT
// Where the postgres tests find the fixture server that tests/postgres/pg_server.sh started.
#pragma once

#include <exception>
#include <string>

namespace coring::test {

/// The Unix-socket DSN of the test server ($CORING_PG_INFO/dsn). Throws std::runtime_error
/// naming what is missing when the server is not there: the tests fail, never skip.
std::string pg_dsn();

/// The TCP DSN of the test server (postgresql://postgres@127.0.0.1:PORT/postgres).
std::string pg_dsn_tcp();

/// The test server's TCP port.
int pg_port();

/// The path of pg_server.sh, for tests that run a server of their own.
std::string pg_script();

/// The what() of the exception in e when it is an E; "other exception: ..." when it is another
/// std::exception (so a CHECK on the text shows what came instead).
template <class E>
std::string what_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const E& x) {
        return x.what();
    } catch (const std::exception& x) {
        return std::string("other exception: ") + x.what();
    }
}

/// The first line of the file at path. Throws std::runtime_error naming it when missing.
std::string read_line(const std::string& path);

} // namespace coring::test
