// SPDX-License-Identifier: MIT
// Tests of the task dump (format_tasks, dump_tasks): names, chains and awaiter -> awaited trees.
// clang-format off
#include <coring/debug.hpp> // first: it must compile on its own
// clang-format on

#include <coring/gather.hpp>
#include <coring/run.hpp>
#include <coring/shield.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/task_group.hpp>
#include <coring/wait.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "combinators/helpers.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::Task;
using coring::TaskHandle;
using coring::test::run_virtual;
using coring::test::value_after;

namespace {

/// The line of text that contains needle, or "".
std::string line_with(const std::string& text, const std::string& needle) {
    auto pos = text.find(needle);
    if (pos == std::string::npos) {
        return {};
    }
    auto begin = text.rfind('\n', pos);
    begin = begin == std::string::npos ? 0 : begin + 1;
    auto end = text.find('\n', pos);
    return text.substr(begin, end - begin);
}

/// Indentation (leading spaces) of a line.
std::size_t indent_of(const std::string& line) {
    return line.find_first_not_of(' ');
}

Task<int> leaf(std::chrono::milliseconds d) {
    co_await coring::sleep(d);
    co_return 1;
}

} // namespace

TEST_CASE("format_tasks: lists awaited tasks under their awaiter", "[combinators][debug]") {
    run_virtual([]() -> Task<> {
        auto a = coring::create_task(leaf(1h), "leaf-a");
        auto b = coring::create_task(leaf(1h), "leaf-b");
        auto parent = coring::create_task(
                [](TaskHandle<int> x, TaskHandle<int> y) -> Task<> {
                    co_await coring::gather(x, y);
                }(a, b),
                "parent");
        co_await coring::sleep(1s);
        std::string dump = coring::format_tasks();
        INFO(dump);
        // test-main is pending too (it is the one running).
        CHECK(dump.find("4 pending tasks\n") == 0);
        std::string parent_line = line_with(dump, "Task 'parent' (pending)");
        std::string a_line = line_with(dump, "Task 'leaf-a' (pending)");
        std::string b_line = line_with(dump, "Task 'leaf-b' (pending)");
        REQUIRE_FALSE(parent_line.empty());
        REQUIRE_FALSE(a_line.empty());
        CHECK(indent_of(parent_line) == 0);
        CHECK(a_line.find("-> Task 'leaf-a'") != std::string::npos);
        CHECK(indent_of(a_line) > indent_of(parent_line));
        CHECK(dump.find("Task 'parent'") < dump.find("Task 'leaf-a'"));
        CHECK(dump.find("Task 'leaf-a'") < dump.find("Task 'leaf-b'"));
        CHECK(dump.find("waiting on gather of 2 (0 done)") != std::string::npos);
        CHECK(dump.find("waiting on sleep 3600.000 s") != std::string::npos);
        CHECK(dump.find("leaf at ") != std::string::npos); // the coroutine and its source
        CHECK(dump.find("test_debug.cpp") != std::string::npos);
        parent.cancel();
        // WORKAROUND(gcc-12): a braced list inside a co_await expression does not compile
        // ("array used as initializer", https://github.com/Naios/continuable/issues/67);
        // build the vector first.
        std::vector<TaskHandle<>> all{parent, a, b};
        co_await coring::wait(all);
    });
}

TEST_CASE("format_tasks: follows every kind of await", "[combinators][debug]") {
    run_virtual([]() -> Task<> {
        auto shared = coring::create_task(leaf(1h), "shared");
        auto by_handle = coring::create_task(
                [](TaskHandle<int> s) -> Task<> {
                    co_await s;
                }(shared),
                "by-handle");
        auto by_wait_for = coring::create_task(
                [](TaskHandle<int> s) -> Task<> {
                    co_await coring::wait_for(s, 2h);
                }(shared),
                "by-wait-for");
        auto by_shield = coring::create_task(
                [](TaskHandle<int> s) -> Task<> {
                    co_await coring::shield(s);
                }(shared),
                "by-shield");
        auto group = coring::create_task(coring::task_group([](coring::TaskGroup& g) -> Task<> {
                                             g.create_task(leaf(1h), "group-child");
                                             co_return;
                                         }),
                                         "group-parent");
        co_await coring::sleep(1s);
        std::string dump = coring::format_tasks();
        INFO(dump);
        CHECK(dump.find("waiting on Task 'shared'") != std::string::npos);
        CHECK(dump.find("waiting on wait_for 7200.000 s on Task 'shared'") != std::string::npos);
        CHECK(dump.find("waiting on shield of Task 'shared'") != std::string::npos);
        CHECK(dump.find("waiting on TaskGroup exit: 1 task left") != std::string::npos);
        // 'shared' is listed in full once, then referred to.
        CHECK(dump.find("Task 'shared' (listed above)") != std::string::npos);
        std::string child = line_with(dump, "Task 'group-child' (pending)");
        CHECK(child.find("-> ") != std::string::npos);
        std::vector<TaskHandle<>> all{by_handle, by_wait_for, by_shield, group, shared};
        for (auto& t : all) {
            t.cancel();
        }
        co_await coring::wait(all);
    });
}

TEST_CASE("dump_tasks: writes the same listing to a FILE", "[combinators][debug]") {
    run_virtual([]() -> Task<> {
        auto t = coring::create_task(leaf(1h), "sleepy");
        co_await coring::sleep(1s);
        std::FILE* f = std::tmpfile();
        REQUIRE(f != nullptr);
        coring::dump_tasks(f);
        std::rewind(f);
        std::string text;
        char buf[256];
        std::size_t n = 0;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
            text.append(buf, n);
        }
        std::fclose(f);
        CHECK(text.find("Task 'sleepy' (pending)") != std::string::npos);
        CHECK(text.find("2 pending tasks") == 0);
        t.cancel();
        CO_CHECK_THROWS_AS(t, coring::CancelledError);
    });
}

TEST_CASE("format_tasks: a loop with no tasks", "[combinators][debug]") {
    coring::EventLoop loop;
    CHECK(coring::format_tasks(loop) == "0 pending tasks\n");
}
