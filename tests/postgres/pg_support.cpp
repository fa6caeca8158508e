// SPDX-License-Identifier: MIT
// The fixture server's connection strings, read from the files pg_server.sh writes.
#include "postgres/pg_support.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace coring::test {

namespace {

std::string info_file(const char* name) {
    const char* dir = std::getenv("CORING_PG_INFO");
    if (dir == nullptr || *dir == '\0') {
        throw std::runtime_error("CORING_PG_INFO is not set: run the postgres tests through "
                                 "ctest, which starts the server (tests/postgres/pg_server.sh)");
    }
    std::string path = std::string(dir) + "/" + name;
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line) || line.empty()) {
        throw std::runtime_error("the test PostgreSQL server is not running: " + path +
                                 " is missing (see the output of 'postgres: start the test "
                                 "server')");
    }
    return line;
}

} // namespace

std::string pg_dsn() {
    return info_file("dsn");
}

std::string pg_dsn_tcp() {
    return info_file("dsn_tcp");
}

int pg_port() {
    return std::stoi(info_file("port"));
}

std::string pg_script() {
    return info_file("script");
}

std::string read_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line) || line.empty()) {
        throw std::runtime_error(path + " is missing or empty");
    }
    return line;
}

} // namespace coring::test
