// SPDX-License-Identifier: MIT
// The loop's debugging tools: blocking-call watchdog, loop metrics, Chrome trace-event output
// (asyncio debug mode's slow-callback report taken further, aiomonitor-like introspection).
#include "loop_debug.hpp"

#include <coring/debug.hpp>
#include <coring/event_loop.hpp>
#include <coring/log.hpp>
#include <coring/metrics.hpp>

#include <coring/detail/task_base.hpp>

#include <fmt/format.h>

#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>

#include "diagnostics.hpp"

namespace coring {

namespace {

std::int64_t mono_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

/// Async-signal-safe output helpers: no allocation, only write(2).
void write_all(int fd, const char* p, std::size_t n) noexcept {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

void write_str(int fd, const char* s) noexcept {
    write_all(fd, s, std::strlen(s));
}

void write_uint(int fd, std::uint64_t v) noexcept {
    char buf[24];
    char* end = buf + sizeof buf;
    char* p = end;
    do {
        *--p = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    write_all(fd, p, static_cast<std::size_t>(end - p));
}

} // namespace

int watchdog_signal() noexcept {
    return SIGRTMIN + 4;
}

std::string opcode_name(unsigned opcode) {
    static constexpr const char* names[] = {"NOP",
                                            "READV",
                                            "WRITEV",
                                            "FSYNC",
                                            "READ_FIXED",
                                            "WRITE_FIXED",
                                            "POLL_ADD",
                                            "POLL_REMOVE",
                                            "SYNC_FILE_RANGE",
                                            "SENDMSG",
                                            "RECVMSG",
                                            "TIMEOUT",
                                            "TIMEOUT_REMOVE",
                                            "ACCEPT",
                                            "ASYNC_CANCEL",
                                            "LINK_TIMEOUT",
                                            "CONNECT",
                                            "FALLOCATE",
                                            "OPENAT",
                                            "CLOSE",
                                            "FILES_UPDATE",
                                            "STATX",
                                            "READ",
                                            "WRITE",
                                            "FADVISE",
                                            "MADVISE",
                                            "SEND",
                                            "RECV",
                                            "OPENAT2",
                                            "EPOLL_CTL",
                                            "SPLICE",
                                            "PROVIDE_BUFFERS",
                                            "REMOVE_BUFFERS",
                                            "TEE",
                                            "SHUTDOWN",
                                            "RENAMEAT",
                                            "UNLINKAT",
                                            "MKDIRAT",
                                            "SYMLINKAT",
                                            "LINKAT",
                                            "MSG_RING",
                                            "FSETXATTR",
                                            "SETXATTR",
                                            "FGETXATTR",
                                            "GETXATTR",
                                            "SOCKET",
                                            "URING_CMD",
                                            "SEND_ZC",
                                            "SENDMSG_ZC"};
    if (opcode < std::size(names)) {
        return names[opcode];
    }
    return fmt::format("OP_{}", opcode);
}

std::string to_string(const LoopMetrics& m) {
    if (!m.enabled) {
        return "loop metrics: off";
    }
    auto ms = [](std::chrono::nanoseconds d) {
        return static_cast<double>(d.count()) / 1e6;
    };
    std::string out = fmt::format(
            "loop metrics: {} iterations, {} ready now (max {}), {} run in {:.3f} ms, {:.3f} ms "
            "waiting in the kernel, {} timers fired",
            m.iterations,
            m.ready_now,
            m.ready_max,
            m.callbacks_run,
            ms(m.callback_time),
            ms(m.wait_time),
            m.timers_fired);
    if (m.lag_samples > 0) {
        fmt::format_to(std::back_inserter(out),
                       ", lag {:.3f} ms (max {:.3f} ms, {} samples)",
                       ms(m.lag_last),
                       ms(m.lag_max),
                       m.lag_samples);
    }
    fmt::format_to(std::back_inserter(out),
                   "\nio_uring: {} submitted, {} completed, in flight:",
                   m.ops_submitted,
                   m.ops_completed);
    if (m.in_flight_by_op.empty()) {
        out += " none";
    }
    for (const OpCount& c : m.in_flight_by_op) {
        fmt::format_to(std::back_inserter(out), " {} {}", c.name, c.count);
    }
    return out;
}

namespace detail {

// ---- Watchdog ----

namespace {

/// The watchdog whose report the signal handler writes; set by a watcher thread (under
/// report_mutex) just before it signals the loop thread.
std::atomic<Watchdog*> g_report_target{nullptr};
std::mutex g_report_mutex;

void watchdog_signal_handler(int) noexcept;

void install_handler_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa {};
        sa.sa_handler = &watchdog_signal_handler;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        ::sigaction(watchdog_signal(), &sa, nullptr);
        // backtrace() loads libgcc's unwinder on first use (malloc, dlopen): do it now, not in
        // the signal handler.
        void* frames[4];
        (void)::backtrace(frames, 4);
    });
}

} // namespace

class Watchdog {
public:
    Watchdog(std::int64_t threshold_ns, int fd) : threshold_ns_(threshold_ns), fd_(fd) {
        install_handler_once();
        thread_ = std::thread([this] { watch(); });
    }

    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    ~Watchdog() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

    std::int64_t threshold_ns() const noexcept { return threshold_ns_; }

    /// Loop thread: a step starts (seq_ becomes odd).
    void step_begin() noexcept {
        // relaxed: published by the release increment of seq_ below.
        loop_thread_.store(pthread_self(), std::memory_order_relaxed);
        start_ns_.store(mono_ns(), std::memory_order_relaxed);
        set_description("a ready-queue entry (neither a task step nor a Handle callback)");
        // release: the watcher that sees the odd value sees the start time and the thread.
        seq_.fetch_add(1, std::memory_order_release);
    }

    /// Loop thread: what the running step is, for a report written while it runs.
    void set_description(std::string_view text) noexcept {
        desc_ok_ = 0;
        std::atomic_signal_fence(std::memory_order_seq_cst);
        std::size_t n = std::min(text.size(), sizeof desc_);
        std::memcpy(desc_, text.data(), n);
        desc_len_ = n;
        std::atomic_signal_fence(std::memory_order_seq_cst);
        desc_ok_ = 1;
    }

    /// Loop thread: the step ended (seq_ becomes even).
    void step_end() noexcept {
        // Only the loop thread writes seq_. A watchdog started during a step sees no begin.
        if ((seq_.load(std::memory_order_relaxed) & 1) != 0) {
            seq_.fetch_add(1, std::memory_order_release);
        }
    }

    /// Signal handler, on the loop thread: writes the report.
    void report_from_signal() noexcept {
        std::uint64_t s = seq_.load(std::memory_order_relaxed);
        if (s == target_seq_.load(std::memory_order_acquire)) {
            std::int64_t start = start_ns_.load(std::memory_order_relaxed);
            std::int64_t blocked = mono_ns() - start;
            write_str(fd_, "coring watchdog: the event loop thread has been blocked for ");
            write_uint(fd_, static_cast<std::uint64_t>(blocked / 1'000'000));
            write_str(fd_, " ms (threshold ");
            write_uint(fd_, static_cast<std::uint64_t>(threshold_ns_ / 1'000'000));
            write_str(fd_, " ms) in:\n");
            std::atomic_signal_fence(std::memory_order_seq_cst);
            if (desc_ok_ != 0) {
                write_all(fd_, desc_, desc_len_);
                if (desc_len_ == 0 || desc_[desc_len_ - 1] != '\n') {
                    write_str(fd_, "\n");
                }
            }
            write_str(fd_, "native backtrace of the loop thread (most recent call first):\n");
            void* frames[64];
            int n = ::backtrace(frames, 64);
            ::backtrace_symbols_fd(frames, n, fd_);
            write_str(fd_, "coring watchdog: end of report\n");
        }
        acked_.store(true, std::memory_order_release);
    }

private:
    void watch() {
        std::int64_t period = std::clamp<std::int64_t>(threshold_ns_ / 4, 1'000'000, 50'000'000);
        std::uint64_t reported = 0;
        std::unique_lock lock(mutex_);
        while (!stop_) {
            cv_.wait_for(lock, std::chrono::nanoseconds(period));
            if (stop_) {
                break;
            }
            std::uint64_t s = seq_.load(std::memory_order_acquire);
            if ((s & 1) == 0 || s == reported) {
                continue;
            }
            std::int64_t start = start_ns_.load(std::memory_order_relaxed);
            pthread_t thread = loop_thread_.load(std::memory_order_relaxed);
            if (seq_.load(std::memory_order_acquire) != s || mono_ns() - start < threshold_ns_) {
                continue;
            }
            reported = s; // one report per stuck step
            lock.unlock();
            signal_loop(thread, s);
            lock.lock();
        }
    }

    void signal_loop(pthread_t thread, std::uint64_t s) {
        std::lock_guard report_lock(g_report_mutex);
        acked_.store(false, std::memory_order_relaxed);
        target_seq_.store(s, std::memory_order_release);
        g_report_target.store(this, std::memory_order_release);
        if (::pthread_kill(thread, watchdog_signal()) == 0) {
            // The handler runs when the loop thread next can (at once, unless the signal is
            // blocked there); wait for it a while, then give up on this report.
            for (int i = 0; i < 2000 && !acked_.load(std::memory_order_acquire); ++i) {
                ::usleep(1000);
            }
        }
        g_report_target.store(nullptr, std::memory_order_release);
    }

    const std::int64_t threshold_ns_;
    const int fd_;
    std::atomic<std::uint64_t> seq_{0};
    std::atomic<std::int64_t> start_ns_{0};
    std::atomic<pthread_t> loop_thread_{};
    std::atomic<std::uint64_t> target_seq_{~std::uint64_t{0}};
    std::atomic<bool> acked_{false};
    // Written by the loop thread, read by the signal handler on the same thread.
    char desc_[8192];
    std::size_t desc_len_ = 0;
    volatile sig_atomic_t desc_ok_ = 0;

    std::mutex mutex_;
    std::condition_variable cv_;
    bool stop_ = false; // guarded by mutex_
    std::thread thread_;
};

namespace {

void watchdog_signal_handler(int) noexcept {
    int saved = errno;
    if (Watchdog* w = g_report_target.load(std::memory_order_acquire)) {
        w->report_from_signal();
    }
    errno = saved;
}

/// Appends s as the inside of a JSON string.
void append_json_escaped(std::string& out, std::string_view s) {
    for (char c : s) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
            } else {
                out += c;
            }
        }
    }
}

} // namespace

// ---- TraceWriter ----

class TraceWriter {
public:
    explicit TraceWriter(const std::string& path)
        : file_(std::fopen(path.c_str(), "w")), pid_(::getpid()),
          tid_(static_cast<long>(::syscall(SYS_gettid))), t0_(mono_ns()) {
        if (file_ == nullptr) {
            int err = errno;
            throw std::system_error(err, std::system_category(), "coring: trace file " + path);
        }
        buf_ = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
        fmt::format_to(std::back_inserter(buf_),
                       "{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":{},\"tid\":{},"
                       "\"args\":{{\"name\":\"coring\"}}}},\n"
                       "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{},\"tid\":{},"
                       "\"args\":{{\"name\":\"event loop\"}}}}",
                       pid_,
                       tid_,
                       pid_,
                       tid_);
    }

    TraceWriter(const TraceWriter&) = delete;
    TraceWriter& operator=(const TraceWriter&) = delete;

    ~TraceWriter() { finish(); }

    /// One event; args is a JSON object's inside ("\"res\":3") or empty.
    void event(char ph,
               std::string_view name,
               std::string_view cat,
               std::string_view args = {},
               std::int64_t dur_ns = -1,
               std::int64_t at_ns = -1) noexcept {
        try {
            std::int64_t ts = (at_ns >= 0 ? at_ns : mono_ns()) - t0_;
            buf_ += ",\n{\"name\":\"";
            append_json_escaped(buf_, name);
            fmt::format_to(std::back_inserter(buf_),
                           "\",\"cat\":\"{}\",\"ph\":\"{}\",\"ts\":{}.{:03},\"pid\":{},\"tid\":{}",
                           cat,
                           ph,
                           ts / 1000,
                           ts % 1000,
                           pid_,
                           tid_);
            if (ph == 'i') {
                buf_ += ",\"s\":\"t\"";
            }
            if (dur_ns >= 0) {
                fmt::format_to(std::back_inserter(buf_),
                               ",\"dur\":{}.{:03}",
                               dur_ns / 1000,
                               dur_ns % 1000);
            }
            if (!args.empty()) {
                buf_ += ",\"args\":{";
                buf_ += args;
                buf_ += '}';
            }
            buf_ += '}';
            if (buf_.size() >= (1u << 16)) {
                flush();
            }
        } catch (...) {
            // out of memory: the event is lost, the trace stays valid JSON
        }
    }

    void begin(std::string_view name, std::string_view cat, std::string_view args = {}) noexcept {
        event('B', name, cat, args);
        ++depth_;
    }

    void end() noexcept {
        if (depth_ > 0) {
            --depth_;
            event('E', {}, "loop");
        }
    }

    void finish() noexcept {
        if (file_ == nullptr) {
            return;
        }
        while (depth_ > 0) {
            end();
        }
        buf_ += "\n]}\n";
        flush();
        std::fclose(file_);
        file_ = nullptr;
    }

private:
    void flush() noexcept {
        std::fwrite(buf_.data(), 1, buf_.size(), file_);
        buf_.clear();
    }

    std::FILE* file_;
    long pid_;
    long tid_;
    std::int64_t t0_;
    int depth_ = 0;
    std::string buf_;
};

namespace {

void track_hook(void* arg, const io_uring_sqe* sqe, Completion* c) noexcept {
    static_cast<LoopDebug*>(arg)->on_track(sqe, c);
}

std::string quoted_json(std::string_view key, std::string_view value) {
    std::string out = "\"";
    out += key;
    out += "\":\"";
    append_json_escaped(out, value);
    out += '"';
    return out;
}

} // namespace

// ---- LoopDebug ----

LoopDebug::LoopDebug(EventLoop& loop) : loop_(loop) {
}

LoopDebug::~LoopDebug() {
    close();
}

void LoopDebug::close() noexcept {
    lag_timer_.cancel();
    lag_interval_ns_ = 0;
    watchdog_.reset();
    stop_trace();
}

void LoopDebug::update_hook() noexcept {
    if (metrics_on_ || trace_) {
        detail::LoopAccess::ring(loop_).set_track_hook(&track_hook, this);
    } else {
        detail::LoopAccess::ring(loop_).set_track_hook(nullptr, nullptr);
        op_of_.clear();
    }
}

void LoopDebug::wait_begin() noexcept {
    wait_t0_ = (metrics_on_ || trace_) ? detail::LoopAccess::now_ns(loop_) : -1;
}

void LoopDebug::wait_end() noexcept {
    std::int64_t t0 = wait_t0_;
    wait_t0_ = -1;
    if (t0 < 0 || (!metrics_on_ && !trace_)) {
        return; // the tools were turned on during this iteration
    }
    std::int64_t took = detail::LoopAccess::now_ns(loop_) - t0;
    if (metrics_on_) {
        m_.wait_ns += took;
    }
    if (trace_ && took > 0) {
        // Real time for the trace's clock, so the slice ends now.
        std::int64_t end = mono_ns();
        trace_->event('X', "io_uring_enter (wait)", "loop", {}, took, end - took);
    }
}

void LoopDebug::on_track(const io_uring_sqe* sqe, Completion* c) noexcept {
    std::uint8_t op = sqe->opcode;
    try {
        op_of_[c] = op;
    } catch (...) {
    }
    if (metrics_on_) {
        ++m_.ops_submitted;
        ++m_.submitted_by_op[op];
        ++m_.in_flight_by_op[op];
    }
    if (trace_) {
        try {
            std::string name = opcode_name(op);
            trace_->event('i',
                          "submit " + name,
                          "io",
                          quoted_json("op", name) +
                                  fmt::format(",\"id\":\"{}\"", static_cast<const void*>(c)));
        } catch (...) {
        }
    }
}

void LoopDebug::on_complete(Completion* c, int res, unsigned flags) noexcept {
    auto it = op_of_.find(c);
    if (it == op_of_.end()) {
        return; // submitted before the tools were on
    }
    std::uint8_t op = it->second;
    bool final = (flags & IORING_CQE_F_MORE) == 0;
    if (final) {
        op_of_.erase(it);
    }
    if (metrics_on_ && final) {
        ++m_.ops_completed;
        if (m_.in_flight_by_op[op] > 0) {
            --m_.in_flight_by_op[op];
        }
    }
    if (trace_) {
        try {
            std::string name = opcode_name(op);
            trace_->event('i',
                          "complete " + name,
                          "io",
                          quoted_json("op", name) +
                                  fmt::format(",\"id\":\"{}\",\"res\":{},\"more\":{}",
                                              static_cast<const void*>(c),
                                              res,
                                              final ? "false" : "true"));
        } catch (...) {
        }
    }
}

void LoopDebug::on_timer() noexcept {
    if (metrics_on_) {
        ++m_.timers_fired;
    }
    if (trace_) {
        trace_->event('i', "timer fired", "timer");
    }
}

void LoopDebug::run_phase_begin(std::size_t n) noexcept {
    if (metrics_on_) {
        m_.ready_max = std::max(m_.ready_max, n);
    }
}

void LoopDebug::entry_begin() noexcept {
    if (watchdog_) {
        watchdog_->step_begin();
    }
    if (metrics_on_) {
        entry_t0_ = detail::LoopAccess::now_ns(loop_);
    }
}

void LoopDebug::entry_end() noexcept {
    if (watchdog_) {
        watchdog_->step_end();
    }
    if (metrics_on_) {
        ++m_.callbacks_run;
        m_.callback_ns += detail::LoopAccess::now_ns(loop_) - entry_t0_;
    }
}

void LoopDebug::callback_begin(const std::type_info& type) noexcept {
    if (!watchdog_ && !trace_) {
        return;
    }
    try {
        std::string what = fmt::format("<Handle {}>", demangle(type));
        if (watchdog_) {
            watchdog_->set_description("callback " + what + "\n");
        }
        if (trace_) {
            trace_->begin(what, "callback");
        }
    } catch (...) {
    }
}

void LoopDebug::callback_end() noexcept {
    if (trace_) {
        trace_->end();
    }
}

void LoopDebug::task_created(const TaskBase& t) noexcept {
    if (!trace_) {
        return;
    }
    try {
        trace_->event(
                'i',
                "create " + t.describe(),
                "task",
                quoted_json("task", t.name()) + "," +
                        quoted_json("source",
                                    fmt::format("{} at {}:{}", t.function_, t.file_, t.line_)));
    } catch (...) {
    }
}

void LoopDebug::task_step_begin(const TaskBase& t, const std::string& stack) noexcept {
    if (watchdog_) {
        std::string_view prefix = "task step of ";
        std::string text;
        try {
            text.reserve(prefix.size() + stack.size());
            text += prefix;
            text += stack;
            watchdog_->set_description(text);
        } catch (...) {
        }
    }
    if (trace_) {
        try {
            trace_->begin(t.describe(), "task", quoted_json("task", t.name()));
        } catch (...) {
        }
    }
}

void LoopDebug::task_step_end() noexcept {
    if (trace_) {
        trace_->end();
    }
}

void LoopDebug::task_done(const TaskBase& t) noexcept {
    if (!trace_) {
        return;
    }
    try {
        const char* state =
                t.cancelled() ? "cancelled" : (t.stored_exception() ? "failed" : "done");
        trace_->event('i', "done " + t.describe(), "task", quoted_json("state", state));
    } catch (...) {
    }
}

void LoopDebug::set_metrics(bool on) {
    if (on) {
        m_ = MetricCounters{};
        m_.iterations_at_start = loop_.iteration_count();
        op_of_.clear();
    }
    metrics_on_ = on;
    if (!on) {
        lag_timer_.cancel();
        lag_interval_ns_ = 0;
    }
    update_hook();
}

void LoopDebug::set_lag_probe(std::int64_t interval_ns) {
    lag_timer_.cancel();
    lag_interval_ns_ = interval_ns > 0 ? interval_ns : 0;
    if (lag_interval_ns_ > 0) {
        if (!metrics_on_) {
            set_metrics(true);
            lag_interval_ns_ = interval_ns;
        }
        schedule_lag_probe();
    }
}

void LoopDebug::schedule_lag_probe() {
    lag_due_ns_ = detail::LoopAccess::now_ns(loop_) + lag_interval_ns_;
    lag_timer_ = loop_.call_later(std::chrono::nanoseconds(lag_interval_ns_), [this] {
        std::int64_t lag =
                std::max<std::int64_t>(0, detail::LoopAccess::now_ns(loop_) - lag_due_ns_);
        m_.lag_last_ns = lag;
        m_.lag_max_ns = std::max(m_.lag_max_ns, lag);
        ++m_.lag_samples;
        if (lag_interval_ns_ > 0) {
            schedule_lag_probe();
        }
    });
}

LoopMetrics LoopDebug::metrics() const {
    LoopMetrics m;
    if (!metrics_on_) {
        return m;
    }
    m.enabled = true;
    m.iterations = loop_.iteration_count() - m_.iterations_at_start;
    m.ready_now = loop_.ready_count();
    m.ready_max = std::max(m_.ready_max, m.ready_now);
    m.callbacks_run = m_.callbacks_run;
    m.callback_time = std::chrono::nanoseconds(m_.callback_ns);
    m.wait_time = std::chrono::nanoseconds(m_.wait_ns);
    m.timers_fired = m_.timers_fired;
    m.lag_last = std::chrono::nanoseconds(m_.lag_last_ns);
    m.lag_max = std::chrono::nanoseconds(m_.lag_max_ns);
    m.lag_samples = m_.lag_samples;
    m.ops_submitted = m_.ops_submitted;
    m.ops_completed = m_.ops_completed;
    for (unsigned op = 0; op < 256; ++op) {
        if (m_.in_flight_by_op[op] != 0) {
            m.in_flight_by_op.push_back({op, opcode_name(op), m_.in_flight_by_op[op]});
        }
        if (m_.submitted_by_op[op] != 0) {
            m.submitted_by_op.push_back({op, opcode_name(op), m_.submitted_by_op[op]});
        }
    }
    return m;
}

void LoopDebug::set_watchdog(std::int64_t threshold_ns, int fd) {
    watchdog_.reset();
    if (threshold_ns > 0) {
        watchdog_ = std::make_unique<Watchdog>(threshold_ns, fd);
    }
}

std::int64_t LoopDebug::watchdog_threshold_ns() const noexcept {
    return watchdog_ ? watchdog_->threshold_ns() : 0;
}

void LoopDebug::start_trace(const std::string& path) {
    stop_trace();
    trace_ = std::make_unique<TraceWriter>(path);
    op_of_.clear();
    update_hook();
}

void LoopDebug::stop_trace() noexcept {
    if (trace_) {
        trace_->finish();
        trace_.reset();
        update_hook();
    }
}

} // namespace detail

// ---- EventLoop's side ----

detail::LoopDebug& EventLoop::debug_state_or_create() {
    if (dbg_ == nullptr) {
        dbg_ = new detail::LoopDebug(*this);
        update_instrumented();
    }
    return *dbg_;
}

void EventLoop::drop_debug_if_unused() noexcept {
    if (dbg_ != nullptr && !dbg_->any_on() && !running_) {
        delete dbg_;
        dbg_ = nullptr;
        update_instrumented();
    }
}

void EventLoop::set_watchdog(duration threshold, int fd) {
    watchdog_chosen_ = true;
    watchdog_auto_ = false;
    if (threshold.count() <= 0 && dbg_ == nullptr) {
        return;
    }
    debug_state_or_create().set_watchdog(threshold.count(), fd);
    drop_debug_if_unused();
}

void EventLoop::follow_debug_mode() noexcept {
    if (watchdog_chosen_ || debug_ == watchdog_auto_) {
        return;
    }
    try {
        debug_state_or_create().set_watchdog(
                debug_ ? duration(debug_watchdog_threshold).count() : 0, 2);
        watchdog_auto_ = debug_;
    } catch (const std::exception& e) {
        watchdog_chosen_ = true; // no watcher thread: say so once, run without
        log(LogLevel::warning, fmt::format("coring: debug mode's watchdog is off: {}", e.what()));
    }
    drop_debug_if_unused();
}

EventLoop::duration EventLoop::watchdog() const noexcept {
    return duration(dbg_ != nullptr ? dbg_->watchdog_threshold_ns() : 0);
}

void EventLoop::set_metrics(bool enabled) {
    if (!enabled && dbg_ == nullptr) {
        return;
    }
    debug_state_or_create().set_metrics(enabled);
    drop_debug_if_unused();
}

void EventLoop::set_lag_probe(duration interval) {
    if (interval.count() <= 0 && dbg_ == nullptr) {
        return;
    }
    check_closed();
    debug_state_or_create().set_lag_probe(interval.count());
    drop_debug_if_unused();
}

LoopMetrics EventLoop::metrics() const {
    return dbg_ != nullptr ? dbg_->metrics() : LoopMetrics{};
}

void EventLoop::start_trace(const std::string& path) {
    check_closed();
    debug_state_or_create();
    try {
        dbg_->start_trace(path);
    } catch (...) {
        drop_debug_if_unused();
        throw;
    }
}

void EventLoop::stop_trace() noexcept {
    if (dbg_ != nullptr) {
        dbg_->stop_trace();
        drop_debug_if_unused();
    }
}

void EventLoop::init_debug_from_env() {
    if (const char* w = std::getenv("CORING_WATCHDOG"); w != nullptr && w[0] != '\0') {
        char* end = nullptr;
        long ms = std::strtol(w, &end, 10);
        if (end != w && ms > 0) {
            set_watchdog(std::chrono::milliseconds(ms));
        }
    }
    if (const char* m = std::getenv("CORING_METRICS");
        m != nullptr && m[0] != '\0' && std::strcmp(m, "0") != 0) {
        set_metrics(true);
    }
    if (const char* t = std::getenv("CORING_TRACE"); t != nullptr && t[0] != '\0') {
        // One file per loop: the first loop of the process writes the path given, later ones
        // path.1, path.2, ...
        static std::atomic<unsigned> loops{0};
        unsigned n = loops.fetch_add(1, std::memory_order_relaxed);
        std::string path = n == 0 ? std::string(t) : fmt::format("{}.{}", t, n);
        try {
            start_trace(path);
        } catch (const std::exception& e) {
            log(LogLevel::error, fmt::format("CORING_TRACE: {}", e.what()));
        }
    }
}

void EventLoop::close_debug() noexcept {
    if (dbg_ != nullptr) {
        dbg_->close();
    }
}

void EventLoop::finish_iteration_hooked(detail::LoopDebug& dbg) {
    // Steps 2 to 4 of run_once (event_loop.cpp), with the tools' hooks: keep them in step.
    dbg.wait_end();
    // 2. Completions become ready entries, in completion order.
    ring_.reap([&dbg](detail::Completion* c, int res, unsigned flags) noexcept {
        dbg.on_complete(c, res, flags);
        c->complete(c, res, flags);
    });
    // 3. Timers that are due, in deadline order.
    if (!timers_.empty()) {
        std::int64_t now = now_ns();
        while (!timers_.empty() && timers_.earliest() <= now) {
            dbg.on_timer();
            timers_.pop()->fire(false);
        }
    }
    // 4. Run exactly what was ready when this pass began.
    std::size_t n = ready_.size();
    dbg.run_phase_begin(n);
    for (; n > 0; --n) {
        detail::ReadyEntry e = ready_.pop();
        dbg.entry_begin();
        e.run(e.arg, false);
        dbg.entry_end();
    }
    if (!dbg.any_on()) {
        // Every tool was turned off during this pass: back to the uninstrumented path.
        delete dbg_;
        dbg_ = nullptr;
        update_instrumented();
    }
}

} // namespace coring
