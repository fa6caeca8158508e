// SPDX-License-Identifier: MIT
// Tests of the ring layer: setup fallback and failure messages, probing, SQ flushing, dispatch.
// clang-format off
#include <coring/detail/ring.hpp> // first: it must compile on its own
// clang-format on

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>

#include <coring/detail/io_operation.hpp>
#include <coring/detail/sys.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <string>
#include <vector>

#include "support/test_support.hpp"

using coring::detail::Ring;
using coring::detail::Sys;
using coring::detail::SysOverride;

namespace {

using InitFn = int (*)(unsigned, io_uring*, io_uring_params*);

int fail_eperm(unsigned, io_uring*, io_uring_params*) {
    return -EPERM;
}

int fail_enosys(unsigned, io_uring*, io_uring_params*) {
    return -ENOSYS;
}

int fail_enomem(unsigned, io_uring*, io_uring_params*) {
    return -ENOMEM;
}

int fail_emfile(unsigned, io_uring*, io_uring_params*) {
    return -EMFILE;
}

int fail_einval(unsigned, io_uring*, io_uring_params*) {
    return -EINVAL;
}

// Refuses every flag set that contains a flag in `refused`, as an older kernel would.
unsigned refused = 0;
std::vector<unsigned> attempts;

int refuse_flags(unsigned entries, io_uring* ring, io_uring_params* p) {
    attempts.push_back(p->flags);
    if (p->flags & refused) {
        return -EINVAL;
    }
    return ::io_uring_queue_init_params(entries, ring, p);
}

// Setup tests are about io_uring: they force it (the epoll pass sets CORING_BACKEND=epoll).
coring::detail::RingOptions uring_options() {
    return coring::detail::RingOptions{1024, -1, coring::Backend::uring};
}

std::string setup_error(InitFn fn) {
    SysOverride<InitFn> guard(&Sys::io_uring_queue_init_params, fn);
    try {
        // Forced: unforced, a refused io_uring falls back to epoll (tests/ring/test_backend.cpp).
        Ring ring(uring_options());
    } catch (const coring::RuntimeError& e) {
        return e.what();
    }
    return "no error";
}

} // namespace

TEST_CASE("Ring: EPERM names seccomp and kernel.io_uring_disabled", "[ring]") {
    std::string msg = setup_error(&fail_eperm);
    CHECK(msg.find("io_uring_setup failed") != std::string::npos);
    CHECK(msg.find("EPERM") != std::string::npos);
    CHECK(msg.find("seccomp") != std::string::npos);
    CHECK(msg.find("kernel.io_uring_disabled") != std::string::npos);
}

TEST_CASE("Ring: ENOSYS says the kernel has no io_uring and how to fix it", "[ring]") {
    std::string msg = setup_error(&fail_enosys);
    CHECK(msg.find("ENOSYS") != std::string::npos);
    CHECK(msg.find("CONFIG_IO_URING") != std::string::npos);
    CHECK(msg.find("upgrade the kernel") != std::string::npos);
}

TEST_CASE("Ring: ENOMEM points at the locked-memory limit", "[ring]") {
    std::string msg = setup_error(&fail_enomem);
    CHECK(msg.find("ENOMEM") != std::string::npos);
    CHECK(msg.find("RLIMIT_MEMLOCK") != std::string::npos);
    CHECK(msg.find("ulimit -l") != std::string::npos);
}

TEST_CASE("Ring: running out of file descriptors is named", "[ring]") {
    std::string msg = setup_error(&fail_emfile);
    CHECK(msg.find("EMFILE") != std::string::npos);
    CHECK(msg.find("file descriptors") != std::string::npos);
}

TEST_CASE("Ring: EINVAL for every flag set names unsupported flags or sizes", "[ring]") {
    // issue 10, defect 11: it used to say only "errno 22".
    std::string msg = setup_error(&fail_einval);
    INFO(msg);
    CHECK(msg.find("EINVAL") != std::string::npos);
    CHECK(msg.find("errno 22") == std::string::npos);
    CHECK(msg.find("1024 entries") != std::string::npos);
    CHECK(msg.find("setup flags") != std::string::npos);
    CHECK(msg.find("ring_entries") != std::string::npos);
}

TEST_CASE("Ring: an EventLoop whose ring cannot be set up throws RuntimeError", "[ring]") {
    SysOverride<InitFn> guard(&Sys::io_uring_queue_init_params, &fail_eperm);
    coring::EventLoopOptions uring;
    uring.backend = coring::Backend::uring;
    CHECK_THROWS_AS(coring::EventLoop(uring), coring::RuntimeError);
    auto main_task = []() -> coring::Task<int> {
        co_return 1;
    };
    coring::RunOptions run_uring;
    run_uring.backend = coring::Backend::uring;
    CHECK_THROWS_AS(coring::run(main_task(), run_uring), coring::RuntimeError);
}

TEST_CASE("Ring: setup falls back one flag set at a time when the kernel refuses flags", "[ring]") {
    SysOverride<InitFn> guard(&Sys::io_uring_queue_init_params, &refuse_flags);
    SECTION("a kernel without DEFER_TASKRUN gets COOP_TASKRUN and SINGLE_ISSUER") {
        refused = IORING_SETUP_DEFER_TASKRUN;
        attempts.clear();
        Ring ring(uring_options());
        CHECK(attempts.size() == 2);
        CHECK_FALSE(ring.setup_flags() & IORING_SETUP_DEFER_TASKRUN);
        CHECK(ring.setup_flags() & IORING_SETUP_COOP_TASKRUN);
        CHECK(ring.setup_flags() & IORING_SETUP_SINGLE_ISSUER);
    }
    SECTION("a kernel without SINGLE_ISSUER gets COOP_TASKRUN") {
        refused = IORING_SETUP_SINGLE_ISSUER;
        attempts.clear();
        Ring ring(uring_options());
        CHECK(attempts.size() == 3);
        CHECK(ring.setup_flags() & IORING_SETUP_COOP_TASKRUN);
        CHECK_FALSE(ring.setup_flags() & IORING_SETUP_SINGLE_ISSUER);
    }
    SECTION("a kernel that knows none of the flags gets a plain ring") {
        refused = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER |
                  IORING_SETUP_DEFER_TASKRUN;
        attempts.clear();
        Ring ring(uring_options());
        CHECK(attempts.size() == 5);
        CHECK(attempts.back() == 0);
        CHECK(ring.setup_flags() == 0);
    }
    SECTION("a loop on a fallback ring still runs tasks and I/O") {
        refused = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER |
                  IORING_SETUP_DEFER_TASKRUN;
        auto main_task = []() -> coring::Task<int> {
            int res = co_await coring::detail::io_op(
                    "nop", [](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); });
            co_await coring::sleep(std::chrono::milliseconds(1));
            co_return res + 5;
        };
        CHECK(coring::run(main_task()) == 5);
    }
}

TEST_CASE("Ring: the best flags this kernel accepts are in use", "[ring]") {
    Ring ring(uring_options());
    INFO("setup flags 0x" << std::hex << ring.setup_flags());
    CHECK(ring.setup_flags() & IORING_SETUP_SUBMIT_ALL);
    CHECK(ring.supports(IORING_OP_NOP));
    CHECK(ring.supports(IORING_OP_ASYNC_CANCEL));
    CHECK_FALSE(ring.supports(255));
}

TEST_CASE("Ring: a full submission queue is flushed and retried, never an error", "[ring]") {
    coring::EventLoop loop(coring::EventLoopOptions{4, std::nullopt}); // 4 SQ entries
    constexpr int n = 200;
    int done = 0;
    auto one_nop = [&](int i) -> coring::Task<> {
        int res = co_await coring::detail::io_op("nop",
                                                 [](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); });
        CHECK(res == 0);
        done += i >= 0 ? 1 : 0;
    };
    auto main_task = [&]() -> coring::Task<> {
        std::vector<coring::TaskHandle<>> hs;
        for (int i = 0; i < n; ++i) {
            hs.push_back(coring::create_task(one_nop(i)));
        }
        for (auto& h : hs) {
            co_await h;
        }
    };
    loop.run_until_complete(main_task());
    CHECK(done == n);
    CHECK(loop.io_in_flight() == 0);
}

TEST_CASE("Ring: each completion reaches the operation that owns it", "[ring]") {
    // Timeouts of different lengths complete out of submission order; each coroutine must see
    // its own result.
    auto timeout_op = [](long ms, int tag) -> coring::Task<int> {
        __kernel_timespec ts{};
        ts.tv_nsec = ms * 1'000'000;
        int res = co_await coring::detail::io_op(
                "timeout", [&ts](io_uring_sqe* sqe) { io_uring_prep_timeout(sqe, &ts, 0, 0); });
        CHECK(res == -ETIME);
        co_return tag;
    };
    auto main_task = [&]() -> coring::Task<> {
        std::vector<int> order;
        auto record = [&](long ms, int tag) -> coring::Task<> {
            order.push_back(co_await timeout_op(ms, tag));
        };
        auto a = coring::create_task(record(30, 3));
        auto b = coring::create_task(record(10, 1));
        auto c = coring::create_task(record(20, 2));
        co_await a;
        co_await b;
        co_await c;
        CHECK(order == std::vector<int>{1, 2, 3});
    };
    coring::run(main_task());
}
