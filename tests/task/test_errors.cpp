// SPDX-License-Identifier: MIT
// Tests of the error types: make_os_error picks the subclass Python's OSError would, and
// describe_exception renders any exception_ptr.
// clang-format off
#include <coring/errors.hpp> // first: it must compile on its own
// clang-format on

#include <catch2/catch.hpp>

#include <cerrno>
#include <string>
#include <system_error>

namespace {

template <class E>
void check_maps_to(int err) {
    std::exception_ptr e = coring::make_os_error(err, "op target");
    try {
        std::rethrow_exception(e);
    } catch (const E& error) {
        CHECK(error.code().value() == err);
        CHECK_THAT(error.what(), Catch::StartsWith("op target"));
        return;
    } catch (...) {
    }
    FAIL("errno " << err << " did not map to the expected class");
}

} // namespace

TEST_CASE("make_os_error: each errno gets the class Python's OSError picks", "[errors]") {
    check_maps_to<coring::BrokenPipeError>(EPIPE);
    check_maps_to<coring::BrokenPipeError>(ESHUTDOWN);
    check_maps_to<coring::ConnectionAbortedError>(ECONNABORTED);
    check_maps_to<coring::ConnectionRefusedError>(ECONNREFUSED);
    check_maps_to<coring::ConnectionResetError>(ECONNRESET);
    check_maps_to<coring::ProcessLookupError>(ESRCH);
    check_maps_to<coring::ConnectionError>(ECONNRESET); // the subclasses are ConnectionErrors
}

TEST_CASE("make_os_error: other errnos are plain std::system_error", "[errors]") {
    std::exception_ptr e = coring::make_os_error(ENOENT, "open /nope");
    try {
        std::rethrow_exception(e);
    } catch (const coring::ConnectionError&) {
        FAIL("ENOENT is not a ConnectionError");
    } catch (const coring::ProcessLookupError&) {
        FAIL("ENOENT is not a ProcessLookupError");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::no_such_file_or_directory);
        CHECK_THAT(error.what(), Catch::Contains("open /nope"));
    }
}

TEST_CASE("describe_exception: type and message, empty for null", "[errors]") {
    CHECK(coring::describe_exception(nullptr).empty());
    std::string text =
            coring::describe_exception(std::make_exception_ptr(coring::ValueError("bad value")));
    CHECK_THAT(text, Catch::Contains("bad value"));
}
