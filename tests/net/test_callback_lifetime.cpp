// SPDX-License-Identifier: MIT
// Tests that start_server / start_unix_server copy and destroy a capturing callback in pairs.
// GCC 12 destroys an owning lambda written inside a co_await twice (docs/pitfalls.md): with
// GCC that natural form is a compile error (checked here through its trait) and the named form
// is tested; with Clang the natural form itself is tested.
#include <coring/executor.hpp>
#include <coring/streams.hpp>
#include <coring/task_group.hpp>
#include <coring/testing/catch2.hpp>
#include <coring/timeout.hpp>

#include <memory>
#include <string>
#include <type_traits>

#include "net/net_helpers.hpp"
#include "support/test_support.hpp"

using coring::StreamReader;
using coring::StreamWriter;
using coring::Task;
using coring::test::Counted;
using namespace std::chrono_literals;

namespace {

// Starts a server with start(state, token), whose callback captures copies of both, and checks
// that the server holds exactly one copy of the callback while it serves and none afterwards.
template <class Start>
void check_callback_copies(Start start) {
    Counted::reset();
    coring::test::run_test([start]() -> Task<> {
        Counted state(1);
        auto token = std::make_shared<int>(7);
        {
            coring::Server server = co_await start(state, token);
            const int alive_while_serving = Counted::alive;
            CHECK(alive_while_serving == 2); // ours and the server's copy
            const long uses_while_serving = token.use_count();
            CHECK(uses_while_serving == 2);
            server.close();
            co_await server.wait_closed();
        }
        const int alive_after = Counted::alive;
        CHECK(alive_after == 1); // only ours
        const long uses_after = token.use_count();
        CHECK(uses_after == 1);
    });
    CHECK(Counted::alive == 0);
}

Task<> close_at_once(StreamWriter w) {
    w.close();
    co_return;
}

} // namespace

TEST_CASE("start_server: an owning callback is destroyed once per copy",
          "[net][streams][server][gcc12]") {
    check_callback_copies(
            [](const Counted& state, const std::shared_ptr<int>& token) -> Task<coring::Server> {
                auto cb = [state, token](StreamReader, StreamWriter w) {
                    return close_at_once(w);
                };
                static_assert(coring::detail::unsafe_await_closure<decltype(cb)> ==
                              (CORING_AWAIT_DESTROYS_CLOSURES_TWICE != 0));
                static_assert(!coring::detail::unsafe_await_closure<decltype(cb)&>);
#if CORING_AWAIT_DESTROYS_CLOSURES_TWICE
                // GCC: the natural form does not compile (the static_assert above); the named one
                // works.
                co_return co_await coring::start_server(cb, "127.0.0.1", 0);
#else
                static_cast<void>(cb);
                co_return co_await coring::start_server(
                        [state, token](StreamReader, StreamWriter w) { return close_at_once(w); },
                        "127.0.0.1",
                        0);
#endif
            });
}

TEST_CASE("start_unix_server: an owning callback is destroyed once per copy",
          "[net][streams][unix][gcc12]") {
    coring::test::TempDir dir;
    std::string path = dir.file("cb.sock");
    check_callback_copies([&path](const Counted& state,
                                  const std::shared_ptr<int>& token) -> Task<coring::Server> {
#if CORING_AWAIT_DESTROYS_CLOSURES_TWICE
        auto cb = [state, token](StreamReader, StreamWriter w) {
            return close_at_once(w);
        };
        co_return co_await coring::start_unix_server(cb, path);
#else
        co_return co_await coring::start_unix_server(
                [state, token](StreamReader, StreamWriter w) { return close_at_once(w); }, path);
#endif
    });
}

TEST_CASE("task_group, TaskGroup::run, timeout: an owning body is destroyed once per copy",
          "[net][gcc12]") {
    Counted::reset();
    coring::test::run_test([]() -> Task<> {
        Counted state(1);
        auto token = std::make_shared<int>(7);
        {
            auto body = [state, token](coring::TaskGroup&) -> Task<int> {
                co_return state.value + *token;
            };
            auto timed = [state, token]() -> Task<int> {
                co_return state.value + *token;
            };
            static_assert(coring::detail::unsafe_scope_body<decltype(body)> ==
                          (CORING_AWAIT_DESTROYS_CLOSURES_TWICE != 0));
            static_assert(!coring::detail::unsafe_scope_body<decltype(body)&>);
            static_assert(!coring::detail::unsafe_scope_body<Task<int>>); // a Task is safe
            const int from_group = co_await coring::task_group(body);
            CHECK(from_group == 8);
            coring::TaskGroup tg;
            const int from_run = co_await tg.run(body);
            CHECK(from_run == 8);
            const int from_timeout = co_await coring::timeout(10s, timed);
            CHECK(from_timeout == 8);
#if !CORING_AWAIT_DESTROYS_CLOSURES_TWICE
            const int natural = co_await coring::task_group(
                    [state, token](coring::TaskGroup&) -> Task<int> { co_return *token; });
            CHECK(natural == 7);
#endif
            const int alive_with_named = Counted::alive;
            CHECK(alive_with_named == 3); // ours, body's, timed's
            const long uses_with_named = token.use_count();
            CHECK(uses_with_named == 3);
        }
        const int alive_after = Counted::alive;
        CHECK(alive_after == 1);
        const long uses_after = token.use_count();
        CHECK(uses_after == 1);
    });
    CHECK(Counted::alive == 0);
}

CORING_TEST_CASE("run_in_executor: an owning callable is destroyed once per copy", "[net][gcc12]") {
    auto token = std::make_shared<int>(7);
    coring::ThreadPoolExecutor pool(1);
    auto work = [token] {
        return *token + 1;
    };
    static_assert(coring::detail::unsafe_await_closure<decltype(work)> ==
                  (CORING_AWAIT_DESTROYS_CLOSURES_TWICE != 0));
    const int named = co_await coring::run_in_executor(&pool, work);
    CHECK(named == 8);
#if !CORING_AWAIT_DESTROYS_CLOSURES_TWICE
    const int natural = co_await coring::run_in_executor(&pool, [token] { return *token; });
    CHECK(natural == 7);
#endif
    pool.shutdown(true); // the worker has dropped its copies once joined
    const long uses_with_named = token.use_count();
    CHECK(uses_with_named == 2); // ours and work's
}
