// SPDX-License-Identifier: MIT
// fmt formatters for coring's printable types, kept out of the other headers so that a program
// which does not use fmt does not pay for including it: #include <coring/fmt.hpp> and link
// fmt::fmt to write fmt::format("{}", loop.metrics()).
#pragma once

#include <coring/metrics.hpp>

#include <fmt/format.h>

#include <string>
#include <string_view>

/// fmt::format("{}", metrics) gives coring::to_string(metrics).
template <>
struct fmt::formatter<coring::LoopMetrics> : fmt::formatter<std::string_view> {
    template <class FormatContext>
    auto format(const coring::LoopMetrics& m, FormatContext& ctx) const {
        std::string text = coring::to_string(m);
        return fmt::formatter<std::string_view>::format(std::string_view(text), ctx);
    }
};
