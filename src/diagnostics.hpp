// SPDX-License-Identifier: MIT
// Private to the library: small helpers its reports share (defined in src/debug.cpp).
#pragma once

#include <string>
#include <typeinfo>

namespace coring::detail {

/// The readable name of a type ("std::runtime_error"), or its mangled name if that fails.
std::string demangle(const std::type_info& type);

/// Whether the environment variable CORING_DEBUG turns debug mode on (set, non-empty, not "0").
bool debug_from_env() noexcept;

} // namespace coring::detail
