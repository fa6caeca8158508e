// SPDX-License-Identifier: MIT
// The few range concepts coring's combinators need, from <iterator> instead of
// <ranges> (which costs ~7,000 preprocessed lines); the same definitions as the
// standard's.
#pragma once

#include <iterator>
#include <utility>

namespace coring::detail {

/// std::ranges::range: ranges::begin and ranges::end work on an lvalue of R
/// (the customisation points come with <iterator>).
template <class R>
concept Range = requires(R& r) {
    std::ranges::begin(r);
    std::ranges::end(r);
};

/// std::ranges::iterator_t.
template <Range R>
using range_iterator_t = decltype(std::ranges::begin(std::declval<R&>()));

/// std::ranges::range_reference_t.
template <Range R>
using range_reference_t = std::iter_reference_t<range_iterator_t<R>>;

/// std::ranges::input_range.
template <class R>
concept InputRange = Range<R> && std::input_iterator<range_iterator_t<R>>;

/// std::ranges::sized_range.
template <class R>
concept SizedRange = Range<R> && requires(R& r) {
    std::ranges::size(r);
};

} // namespace coring::detail
