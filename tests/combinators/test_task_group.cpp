// SPDX-License-Identifier: MIT
// Tests of TaskGroup and task_group() (asyncio test_taskgroups.py).
// clang-format off
#include <coring/task_group.hpp> // first: it must compile on its own
// clang-format on

#include <coring/future.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
#include <coring/testing.hpp>
#include <coring/testing/catch2.hpp>
#include <coring/timeout.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include "combinators/helpers.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::CancelledError;
using coring::EventLoop;
using coring::ExceptionGroup;
using coring::Task;
using coring::TaskGroup;
using coring::TaskHandle;
using coring::test::elapsed_ms;
using coring::test::fail_after;
using coring::test::LogCapture;
using coring::test::run_test;
using coring::test::run_virtual;
using coring::test::value_after;

namespace {

struct MyError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// The messages of the group's exceptions, sorted.
std::multiset<std::string> messages(const ExceptionGroup& g) {
    std::multiset<std::string> out;
    for (const auto& e : g.exceptions()) {
        out.insert(coring::describe_exception(e));
    }
    return out;
}

Task<> zero_division_after(std::chrono::milliseconds d) {
    co_await coring::sleep(d);
    throw std::domain_error("division by zero");
}

} // namespace

TEST_CASE("TaskGroup: leaving the scope waits for every task", "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto start = loop.time();
        TaskHandle<int> a;
        TaskHandle<int> b;
        co_await coring::task_group([&](TaskGroup& tg) -> Task<> {
            a = tg.create_task(value_after(10ms, 42));
            b = tg.create_task(value_after(20ms, 11));
            CHECK(tg.size() == 2);
            co_return;
        });
        CHECK_ELAPSED(loop, start, 20);
        CHECK(a.result() + b.result() == 53);
    });
}

TEST_CASE("TaskGroup: the body's value comes out of the scope", "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        int v = co_await coring::task_group([](TaskGroup& tg) -> Task<int> {
            auto t = tg.create_task(value_after(10ms, 4));
            co_return co_await t + 1;
        });
        CHECK(v == 5);
    });
}

TEST_CASE("TaskGroup: a failing task cancels the others and the body, errors come together",
          "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        // asyncio test_cancel_children_on_child_error.
        int num = 0;
        bool t2_cancelled = false;
        bool body_cancelled = false;
        auto foo2 = [&]() -> Task<> {
            try {
                co_await coring::sleep(5s);
            } catch (const CancelledError&) {
                t2_cancelled = true;
                throw;
            }
            ++num;
        };
        // The three crashers wake in the same iteration (asyncio's timers of equal deadlines).
        coring::Future<> gate;
        coring::get_running_loop().call_later(100ms, [gate] { gate.set_result(); });
        auto crash = [](coring::Future<> g) -> Task<> {
            co_await g;
            throw std::domain_error("division by zero");
        };
        auto runner = [&]() -> Task<> {
            co_await coring::task_group([&](TaskGroup& g) -> Task<> {
                g.create_task(crash(gate));
                g.create_task(crash(gate));
                g.create_task(crash(gate));
                g.create_task(foo2());
                try {
                    co_await coring::sleep(10s);
                } catch (const CancelledError&) {
                    body_cancelled = true;
                    throw;
                }
            });
            num += 10;
        };
        auto r = coring::create_task(runner());
        try {
            co_await r;
            FAIL("no ExceptionGroup");
        } catch (const ExceptionGroup& g) {
            CHECK(g.exceptions().size() == 3);
            std::string dz = "std::domain_error: division by zero";
            CHECK(messages(g) == std::multiset<std::string>{dz, dz, dz});
            CHECK(std::string(g.what()) == "unhandled errors in a TaskGroup (3 sub-exceptions)");
        }
        CHECK(num == 0);
        CHECK(t2_cancelled);
        CHECK(body_cancelled);
        CHECK_FALSE(r.cancelled());
    });
}

TEST_CASE("TaskGroup: the parent is not left cancelled after an ExceptionGroup",
          "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        int after = 0;
        try {
            co_await coring::task_group([](TaskGroup& g) -> Task<> {
                g.create_task(fail_after(1ms, "crash"));
                co_await coring::sleep(1s);
            });
        } catch (const ExceptionGroup&) {
            ++after;
        }
        CHECK(coring::current_task().cancelling() == 0);
        co_await coring::sleep(1ms); // not interrupted
        ++after;
        CHECK(after == 2);
    });
}

TEST_CASE("TaskGroup: a cancelled parent cancels the tasks and raises CancelledError",
          "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        // asyncio test_cancellation / test_taskgroup_07.
        int num = 0;
        auto foo = [&]() -> Task<> {
            try {
                co_await coring::sleep(5s);
            } catch (const CancelledError&) {
                ++num;
                throw;
            }
        };
        auto runner = [&](bool body_waits) -> Task<> {
            co_await coring::task_group([&](TaskGroup& g) -> Task<> {
                for (int i = 0; i < 5; ++i) {
                    g.create_task(foo());
                }
                if (body_waits) {
                    try {
                        co_await coring::sleep(10s);
                    } catch (const CancelledError&) {
                        num += 10;
                        throw;
                    }
                }
            });
        };
        for (bool body_waits : {false, true}) {
            num = 0;
            auto r = coring::create_task(runner(body_waits));
            co_await coring::sleep(100ms);
            CHECK_FALSE(r.done());
            r.cancel();
            CO_CHECK_THROWS_AS(r, CancelledError);
            CHECK(r.cancelled());
            CHECK(num == (body_waits ? 15 : 5));
        }
    });
}

TEST_CASE("TaskGroup: errors raised by cancelled tasks win over the parent's cancellation",
          "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        // asyncio test_taskgroup_08: the tasks raise from their cleanup.
        auto foo = []() -> Task<> {
            try {
                co_await coring::sleep(10s);
            } catch (const CancelledError&) {
                throw std::domain_error("division by zero");
            }
        };
        auto runner = [&]() -> Task<> {
            co_await coring::task_group([&](TaskGroup& g) -> Task<> {
                for (int i = 0; i < 5; ++i) {
                    g.create_task(foo());
                }
                co_await coring::sleep(10s);
            });
        };
        auto r = coring::create_task(runner());
        co_await coring::sleep(100ms);
        r.cancel();
        try {
            co_await r;
            FAIL("no ExceptionGroup");
        } catch (const ExceptionGroup& g) {
            CHECK(g.exceptions().size() == 5);
        }
    });
}

TEST_CASE("TaskGroup: a parent cancelled from outside stays cancelled after the ExceptionGroup",
          "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        bool interrupted_after = false;
        auto runner = []() -> Task<> {
            co_await coring::task_group([](TaskGroup& g) -> Task<> {
                g.create_task([]() -> Task<> {
                    try {
                        co_await coring::sleep(10s);
                    } catch (const CancelledError&) {
                        throw MyError("cleanup failed");
                    }
                }());
                co_await coring::sleep(10s);
            });
        };
        auto wrapper = [&]() -> Task<> {
            bool group_raised = false;
            try {
                co_await runner();
            } catch (const ExceptionGroup&) {
                group_raised = true;
            }
            REQUIRE(group_raised);
            // The group raised; the outside cancellation is still pending (asyncio 3.13): the
            // next suspension point raises it.
            try {
                co_await coring::sleep(1s);
            } catch (const CancelledError&) {
                interrupted_after = true;
                throw;
            }
        };
        auto r = coring::create_task(wrapper());
        co_await coring::sleep(100ms);
        r.cancel();
        CO_CHECK_THROWS_AS(r, CancelledError);
        CHECK(interrupted_after);
    });
}

TEST_CASE("TaskGroup: an error in the body cancels the tasks and joins the group",
          "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        // asyncio test_taskgroup_09/10.
        TaskHandle<int> t1;
        TaskHandle<int> t2;
        try {
            co_await coring::task_group([&](TaskGroup& g) -> Task<> {
                t1 = g.create_task(value_after(1s, 42));
                t2 = g.create_task(value_after(2s, 11));
                co_await coring::sleep(100ms);
                throw std::domain_error("body");
            });
            FAIL("no ExceptionGroup");
        } catch (const ExceptionGroup& g) {
            CHECK(messages(g) == std::multiset<std::string>{"std::domain_error: body"});
        }
        CHECK(t1.cancelled());
        CHECK(t2.cancelled());
    });
}

TEST_CASE("TaskGroup: body and task errors are all reported, the body's last",
          "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        // asyncio test_taskgroup_19.
        auto nested = []() -> Task<> {
            try {
                co_await coring::sleep(10s);
            } catch (const CancelledError&) {
                throw MyError("nested");
            }
        };
        try {
            co_await coring::task_group([&](TaskGroup& g) -> Task<> {
                g.create_task(zero_division_after(100ms));
                co_await nested();
            });
            FAIL("no ExceptionGroup");
        } catch (const ExceptionGroup& g) {
            REQUIRE(g.exceptions().size() == 2);
            CHECK(coring::describe_exception(g.exceptions()[0]) ==
                  "std::domain_error: division by zero");
            CHECK(coring::describe_exception(g.exceptions()[1]).find("nested") !=
                  std::string::npos);
        }
    });
}

TEST_CASE("TaskGroup: a task failing while another catches its cancellation",
          "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = coring::get_running_loop();
        auto start = loop.time();
        bool stubborn_finished = false;
        auto stubborn = [&]() -> Task<int> {
            try {
                co_await coring::sleep(10s);
            } catch (const CancelledError&) {
                // refuses the cancellation and takes a while to finish
            }
            co_await coring::sleep(50ms);
            stubborn_finished = true;
            co_return 1;
        };
        TaskHandle<int> s;
        try {
            co_await coring::task_group([&](TaskGroup& g) -> Task<> {
                s = g.create_task(stubborn());
                g.create_task(fail_after(10ms, "crash"));
                co_return;
            });
            FAIL("no ExceptionGroup");
        } catch (const ExceptionGroup& g) {
            CHECK(messages(g) == std::multiset<std::string>{"std::runtime_error: crash"});
        }
        CHECK(stubborn_finished); // the scope waited for it
        CHECK(s.result() == 1);
        CHECK_ELAPSED(loop, start, 60);
    });
}

TEST_CASE("TaskGroup: nested groups report inner errors as a nested ExceptionGroup",
          "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        // asyncio test_taskgroup_14: the inner task crashes first.
        try {
            co_await coring::task_group([](TaskGroup& g1) -> Task<> {
                g1.create_task(fail_after(10s, "outer task"));
                co_await coring::task_group([](TaskGroup& g2) -> Task<> {
                    g2.create_task(fail_after(100ms, "inner task"));
                    co_return;
                });
            });
            FAIL("no ExceptionGroup");
        } catch (const ExceptionGroup& g) {
            REQUIRE(g.exceptions().size() == 1);
            try {
                std::rethrow_exception(g.exceptions()[0]);
            } catch (const ExceptionGroup& inner) {
                CHECK(messages(inner) ==
                      std::multiset<std::string>{"std::runtime_error: inner task"});
            } catch (...) {
                FAIL("not a nested ExceptionGroup");
            }
        }
    });
}

TEST_CASE("TaskGroup: the outer group's failure cancels a nested group",
          "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        // asyncio test_taskgroup_13: the outer task crashes first.
        try {
            co_await coring::task_group([](TaskGroup& g1) -> Task<> {
                g1.create_task(fail_after(100ms, "outer task"));
                co_await coring::task_group([](TaskGroup& g2) -> Task<> {
                    g2.create_task(fail_after(10s, "inner task"));
                    co_return;
                });
            });
            FAIL("no ExceptionGroup");
        } catch (const ExceptionGroup& g) {
            CHECK(messages(g) == std::multiset<std::string>{"std::runtime_error: outer task"});
        }
    });
}

TEST_CASE("TaskGroup: tasks may add tasks while the scope waits", "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        // asyncio test_taskgroup_24/25.
        int hydras = 0;
        std::function<Task<>(TaskGroup&)> hydra = [&](TaskGroup& g) -> Task<> {
            ++hydras;
            co_await coring::sleep(10ms);
            g.create_task(hydra(g));
            g.create_task(hydra(g));
        };
        auto hercules = [&]() -> Task<> {
            while (hydras < 10) {
                co_await coring::sleep(15ms);
            }
            throw std::domain_error("enough");
        };
        try {
            co_await coring::task_group([&](TaskGroup& g) -> Task<> {
                g.create_task(hydra(g));
                g.create_task(hercules());
                co_return;
            });
            FAIL("no ExceptionGroup");
        } catch (const ExceptionGroup& g) {
            CHECK(messages(g) == std::multiset<std::string>{"std::domain_error: enough"});
        }
        CHECK(hydras >= 10);
    });
}

TEST_CASE("TaskGroup: finished tasks leave the group at once", "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        // asyncio test_taskgroup_23.
        co_await coring::task_group([](TaskGroup& g) -> Task<> {
            for (int i = 0; i < 10; ++i) {
                co_await coring::sleep(100ms);
                g.create_task(coring::sleep(300ms));
                if (i == 5) {
                    CHECK(g.size() < 5);
                }
            }
            co_await coring::sleep(1350ms);
            CHECK(g.size() == 0);
        });
    });
}

TEST_CASE("TaskGroup: no new task once it is shutting down or finished",
          "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        // asyncio test_taskgroup_no_create_task_after_failure, _finished, _not_entered.
        bool refused = false;
        try {
            co_await coring::task_group([&](TaskGroup& g) -> Task<> {
                g.create_task(fail_after(1ms, "first"));
                g.create_task([](TaskGroup& group, bool& flag) -> Task<> {
                    try {
                        co_await coring::sleep(1s);
                    } catch (const CancelledError&) {
                        try {
                            group.create_task(value_after(0ms, 1));
                        } catch (const coring::RuntimeError& e) {
                            flag = std::string(e.what()).find("is shutting down") !=
                                   std::string::npos;
                        }
                        throw;
                    }
                }(g, refused));
                co_return;
            });
        } catch (const ExceptionGroup&) {
        }
        CHECK(refused);

        TaskGroup done;
        co_await done.run([]() -> Task<> { co_return; });
        CHECK_THROWS_WITH(done.create_task(value_after(0ms, 1)),
                          Catch::Matchers::Contains("is finished"));
        TaskGroup fresh;
        CHECK_THROWS_WITH(fresh.create_task(value_after(0ms, 1)),
                          Catch::Matchers::Contains("has not been entered"));
        CO_CHECK_THROWS_WITH(done.run([]() -> Task<> { co_return; }),
                             "TaskGroup <TaskGroup entered> has already been entered");
    });
}

TEST_CASE("TaskGroup: a refused coroutine is destroyed without a never-awaited report",
          "[combinators][task_group]") {
    LogCapture logs;
    run_test(
            []() -> Task<> {
                TaskGroup fresh;
                CHECK_THROWS_AS(fresh.create_task(value_after(0ms, 1)), coring::RuntimeError);
                co_return;
            },
            [](EventLoop& loop) { loop.set_debug(true); });
    CHECK_FALSE(logs.contains("never awaited"));
}

CORING_TEST_CASE("TaskGroup: tasks get their names", "[combinators][task_group]") {
    co_await coring::task_group([](TaskGroup& g) -> Task<> {
        auto t = g.create_task(coring::sleep(0s), "yolo");
        CHECK(t.get_name() == "yolo");
        co_return;
    });
}

TEST_CASE("TaskGroup: an exception escaping the exit keeps cancelling() at zero",
          "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        // asyncio test_taskgroup_context_manager_exit_raises.
        auto main_body = []() -> Task<> {
            try {
                co_await coring::task_group([](TaskGroup& tg) -> Task<> {
                    std::exception_ptr body_error;
                    try {
                        tg.create_task([]() -> Task<> {
                            throw MyError("task");
                            co_return;
                        }());
                        co_await coring::sleep(1s);
                    } catch (...) {
                        body_error = std::current_exception();
                    }
                    // a "finally" raising its own error while the body was being cancelled
                    throw MyError("database");
                });
            } catch (const ExceptionGroup& g) {
                CHECK(coring::current_task().cancelling() == 0);
                CHECK(g.exceptions().size() == 2);
            }
        };
        co_await coring::create_task(main_body());
    });
}

TEST_CASE("TaskGroup: the object form can be inspected after the scope",
          "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        TaskGroup tg;
        CHECK(tg.describe() == "<TaskGroup>");
        co_await tg.run([&]() -> Task<> {
            tg.create_task(coring::sleep(1s));
            CHECK(tg.describe() == "<TaskGroup tasks=1 entered>");
            co_return;
        });
        CHECK(tg.size() == 0);
    });
}

TEST_CASE("TaskGroup: inside a timeout, the deadline cancels the whole group",
          "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        int cancelled = 0;
        auto worker = [&]() -> Task<> {
            try {
                co_await coring::sleep(1h);
            } catch (const CancelledError&) {
                ++cancelled;
                throw;
            }
        };
        CO_CHECK_THROWS_AS(coring::timeout(100ms,
                                           [&]() -> Task<> {
                                               co_await coring::task_group(
                                                       [&](TaskGroup& g) -> Task<> {
                                                           g.create_task(worker());
                                                           g.create_task(worker());
                                                           co_return;
                                                       });
                                           }),
                           coring::TimeoutError);
        CHECK(cancelled == 2);
        CHECK(coring::current_task().cancelling() == 0);
    });
}

TEST_CASE("TaskGroup: the exit shows up in the parent's stack",
          "[combinators][task_group][debug]") {
    run_virtual([]() -> Task<> {
        auto r = coring::create_task(coring::task_group([](TaskGroup& g) -> Task<> {
                                         g.create_task(coring::sleep(1h));
                                         g.create_task(coring::sleep(1h));
                                         co_return;
                                     }),
                                     "grouper");
        co_await coring::sleep(1s);
        std::string stack = r.get_stack();
        INFO(stack);
        CHECK(stack.find("waiting on TaskGroup exit: 2 tasks left") != std::string::npos);
        r.cancel();
        CO_CHECK_THROWS_AS(r, CancelledError);
    });
}

TEST_CASE("TaskGroup: closing the loop under a running group is safe",
          "[combinators][task_group]") {
    LogCapture logs;
    {
        EventLoop loop;
        auto r = loop.create_task(coring::task_group([](TaskGroup& g) -> Task<> {
            g.create_task(coring::sleep(1h));
            co_await coring::sleep(1h);
        }));
        coring::testing::run_until_idle(loop);
        loop.close();
    }
    CHECK(logs.contains("Task was destroyed but it is pending!"));
}

TEST_CASE("TaskGroup: many tasks, created in waves, reuse the group's nodes",
          "[combinators][task_group]") {
    run_virtual([]() -> Task<> {
        int finished = 0;
        auto work = [&](int i) -> Task<> {
            co_await coring::sleep(std::chrono::milliseconds(i % 7));
            ++finished;
        };
        co_await coring::task_group([&](TaskGroup& g) -> Task<> {
            for (int wave = 0; wave < 3; ++wave) {
                for (int i = 0; i < 150; ++i) {
                    g.create_task(work(i));
                }
                co_await coring::sleep(10ms); // the wave finishes; its nodes go back to the pool
                CHECK(g.size() == 0);
            }
        });
        CHECK(finished == 450);
        // A failure among many: every other task is cancelled, the group still cleans up.
        try {
            co_await coring::task_group([&](TaskGroup& g) -> Task<> {
                for (int i = 0; i < 200; ++i) {
                    g.create_task(i == 100 ? fail_after(1ms, "one of many") : value_after(1h, i));
                }
                co_return;
            });
            FAIL("no ExceptionGroup");
        } catch (const ExceptionGroup& g) {
            CHECK(g.exceptions().size() == 1);
        }
    });
}

TEST_CASE("TaskGroup: closing the loop with many tasks left is safe", "[combinators][task_group]") {
    LogCapture logs;
    {
        EventLoop loop;
        auto r = loop.create_task(coring::task_group([](TaskGroup& g) -> Task<> {
            for (int i = 0; i < 100; ++i) {
                g.create_task(coring::sleep(std::chrono::hours(1 + i % 2)));
            }
            co_await coring::sleep(1h);
        }));
        coring::testing::run_until_idle(loop);
        loop.close();
    }
    CHECK(logs.contains("Task was destroyed but it is pending!"));
}
