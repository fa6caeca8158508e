// SPDX-License-Identifier: MIT
// Saturating durations and deadlines on the loop's nanosecond clock: the one place where every
// API that takes a std::chrono duration or time point (sleep, call_later, call_at, wait_for,
// wait, as_completed, timeout, timeout_at, VirtualClock, ConcurrentFuture) turns it into
// nanoseconds. asyncio's float seconds never overflow; these saturate instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <ratio>
#include <type_traits>
#include <utility>

namespace coring::detail {

/// The deadline that never comes: timers due at never_ns stay queued until cancelled, and the
/// loop neither waits for them nor, on virtual time, jumps to them. Every duration or time point
/// too large for the clock saturates to it.
inline constexpr std::int64_t never_ns = std::numeric_limits<std::int64_t>::max();

/// The earliest deadline: every duration or time point too negative saturates to it (a deadline
/// in the past, due at once, ordered before every other).
inline constexpr std::int64_t past_ns = std::numeric_limits<std::int64_t>::min();

/// d in nanoseconds, rounded up (a timeout never ends early) and saturated to
/// [past_ns, never_ns]. A floating-point NaN counts as zero.
template <class Rep, class Period>
std::int64_t saturated_ns(std::chrono::duration<Rep, Period> d) noexcept {
    using R = std::ratio_divide<Period, std::nano>; // nanoseconds per tick
    const Rep count = d.count();
    if constexpr (std::is_floating_point_v<Rep>) {
        long double ns = static_cast<long double>(count) * R::num / R::den;
        if (__builtin_isnan(ns)) { // std::isnan without <cmath> (~8,600 preprocessed lines)
            return 0;
        }
        ns = __builtin_ceill(ns); // std::ceil, likewise
        // 2^63 is exact in long double; anything at or past it does not fit.
        constexpr long double limit = 9223372036854775808.0L;
        if (ns >= limit) {
            return never_ns;
        }
        if (ns < -limit) {
            return past_ns;
        }
        return static_cast<std::int64_t>(ns);
    } else if constexpr (R::den == 1) {
        // Whole nanoseconds per tick (ns, us, ms, s, min, h, days...): one checked multiply.
        std::int64_t ns = 0;
        if (__builtin_mul_overflow(count, static_cast<std::int64_t>(R::num), &ns)) {
            return count > 0 ? never_ns : past_ns;
        }
        return ns;
    } else if constexpr (R::num == 1) {
        // Finer than a nanosecond: divide, rounding up (C++ division truncates toward zero,
        // which already rounds negative values up).
        Rep q = count / static_cast<Rep>(R::den);
        if (count % static_cast<Rep>(R::den) > 0) {
            ++q;
        }
        if (std::cmp_greater(q, never_ns)) {
            return never_ns;
        }
        if (std::cmp_less(q, past_ns)) {
            return past_ns;
        }
        return static_cast<std::int64_t>(q);
    } else {
        // Odd periods (thirds of a second...): exact enough in long double, as above.
        return saturated_ns(std::chrono::duration<long double, Period>(count));
    }
}

/// A time point of the loop's clock in any unit, as saturated nanoseconds since its epoch.
template <class Clock, class Duration>
std::int64_t saturated_ns(std::chrono::time_point<Clock, Duration> t) noexcept {
    return saturated_ns(t.time_since_epoch());
}

/// now + delay_ns (nanoseconds on the loop clock, now >= 0), saturated: never_ns when it does
/// not fit, however much of the clock is left.
constexpr std::int64_t deadline_after(std::int64_t now, std::int64_t delay_ns) noexcept {
    std::int64_t when = 0;
    if (__builtin_add_overflow(now, delay_ns, &when)) {
        return delay_ns > 0 ? never_ns : past_ns;
    }
    return when;
}

/// now + d for any std::chrono duration, saturated (see saturated_ns and deadline_after).
template <class Rep, class Period>
std::int64_t deadline_after(std::int64_t now, std::chrono::duration<Rep, Period> d) noexcept {
    return deadline_after(now, saturated_ns(d));
}

/// The loop clock's reading: the steady clock plus the virtual-time offset, saturated below
/// never_ns so that a never-due timer stays never due, however far virtual time is advanced.
constexpr std::int64_t clock_ns(std::int64_t real, std::int64_t offset) noexcept {
    std::int64_t now = 0;
    if (__builtin_add_overflow(real, offset, &now) || now == never_ns) {
        return never_ns - 1;
    }
    return now;
}

/// How long the loop may wait for a timer due at when, in nanoseconds: 0 when it is due, -1
/// (no limit) when it is never due. Never overflows, whatever when is.
constexpr std::int64_t wait_for_deadline(std::int64_t when, std::int64_t now) noexcept {
    if (when == never_ns) {
        return -1;
    }
    if (when <= now) {
        return 0;
    }
    std::int64_t wait = 0;
    if (__builtin_sub_overflow(when, now, &wait)) {
        return never_ns - 1; // only with a negative clock reading, which the loop never has
    }
    return wait;
}

} // namespace coring::detail
