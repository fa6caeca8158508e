// SPDX-License-Identifier: MIT
// CORING_ASSERT: internal invariants only; misuse that asyncio reports throws instead.
#pragma once

namespace coring::detail {

/// Prints where an internal invariant failed, then aborts.
[[noreturn]] void
assertion_failed(const char* file, int line, const char* cond, const char* msg) noexcept;

} // namespace coring::detail

#if defined(NDEBUG) && !defined(CORING_SANITIZER_BUILD)
#define CORING_ASSERT(cond, msg) static_cast<void>(0)
#else
#define CORING_ASSERT(cond, msg)                                                                   \
    ((cond) ? static_cast<void>(0)                                                                 \
            : ::coring::detail::assertion_failed(__FILE__, __LINE__, #cond, msg))
#endif
