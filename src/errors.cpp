// SPDX-License-Identifier: MIT
// Out-of-line messages of coring's exception classes.
#include <coring/errors.hpp>

#include <fmt/format.h>

#include <cxxabi.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <typeinfo>

#include "diagnostics.hpp"

namespace coring {

namespace {

// The dynamic type of the exception being handled, demangled ("std::runtime_error").
std::string current_exception_type_name() {
    const std::type_info* type = abi::__cxa_current_exception_type();
    if (type == nullptr) {
        return "unknown exception";
    }
    return detail::demangle(*type);
}

} // namespace

const char* CancelledError::what() const noexcept {
    return message_.empty() ? "cancelled" : message_.c_str();
}

IncompleteReadError::IncompleteReadError(std::string partial_bytes,
                                         std::optional<std::size_t> expected_bytes)
    : std::runtime_error(fmt::format("{} bytes read on a total of {} expected bytes",
                                     partial_bytes.size(),
                                     expected_bytes ? fmt::to_string(*expected_bytes)
                                                    : std::string("undefined"))),
      partial(std::move(partial_bytes)), expected(expected_bytes) {
}

ExceptionGroup::ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions)
    : message_(std::move(message)), exceptions_(std::move(exceptions)) {
    what_ = fmt::format("{} ({} sub-exception{})",
                        message_,
                        exceptions_.size(),
                        exceptions_.size() == 1 ? "" : "s");
}

const char* ExceptionGroup::what() const noexcept {
    return what_.c_str();
}

std::exception_ptr make_os_error(int err, const std::string& what) {
    switch (err) {
    case EPIPE:
    case ESHUTDOWN:
        return std::make_exception_ptr(BrokenPipeError(err, what));
    case ECONNABORTED:
        return std::make_exception_ptr(ConnectionAbortedError(err, what));
    case ECONNREFUSED:
        return std::make_exception_ptr(ConnectionRefusedError(err, what));
    case ECONNRESET:
        return std::make_exception_ptr(ConnectionResetError(err, what));
    case ESRCH:
        return std::make_exception_ptr(ProcessLookupError(err, what));
    default:
        return std::make_exception_ptr(std::system_error(err, std::system_category(), what));
    }
}

void throw_os_error(int err, const std::string& what) {
    std::rethrow_exception(make_os_error(err, what));
}

std::string describe_exception(const std::exception_ptr& e) {
    if (!e) {
        return {};
    }
    try {
        std::rethrow_exception(e);
    } catch (const CancelledError& c) {
        return fmt::format("coring::CancelledError: {}", c.what());
    } catch (const std::exception& x) {
        return fmt::format("{}: {}", current_exception_type_name(), x.what());
    } catch (...) {
        return current_exception_type_name();
    }
}

} // namespace coring
