// SPDX-License-Identifier: MIT
// Tests of child processes (asyncio test_subprocess: exit codes, signals, communicate, pipes,
// redirections, waiters, reaping).
// clang-format off
#include <coring/subprocess.hpp> // first: it must compile on its own
// clang-format on

#include <coring/errors.hpp>
#include <coring/gather.hpp>
#include <coring/log.hpp>
#include <coring/signals.hpp>
#include <coring/sleep.hpp>
#include <coring/streams.hpp>
#include <coring/task.hpp>
#include <coring/testing/catch2.hpp>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "support/test_support.hpp"

using namespace std::chrono_literals;
using coring::Process;
using coring::Task;

namespace {

// Whether pid is a child that has not exited (waitid without reaping it).
bool child_running(pid_t pid) {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid == 0;
}

// Whether pid is no child of ours any more (reaped): waitid fails with ECHILD.
bool reaped(pid_t pid) {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) < 0 &&
           errno == ECHILD;
}

std::uint64_t checksum(const std::string& s) {
    std::uint64_t h = 1469598103934665603ULL; // FNV-1a
    for (unsigned char c : s) {
        h = (h ^ c) * 1099511628211ULL;
    }
    return h;
}

// /proc/self/status field (e.g. "SigBlk") printed by a child of the given options.
std::uint64_t status_mask(const std::string& status, const std::string& field) {
    auto at = status.find(field + ":");
    REQUIRE(at != std::string::npos);
    return std::strtoull(status.c_str() + at + field.size() + 1, nullptr, 16);
}

} // namespace

CORING_TEST_CASE("Process: wait returns the exit code and sets returncode", "[os][subprocess]") {
    Process p = co_await coring::create_subprocess_exec("sh", "-c", "exit 3");
    CHECK(p.pid() > 0);
    int code = co_await p.wait();
    CHECK(code == 3);
    CHECK(p.returncode() == 3);
    int again = co_await p.wait(); // ready at once now
    CHECK(again == 3);
}

CORING_TEST_CASE("Process: kill gives the negative signal number", "[os][subprocess]") {
    Process p = co_await coring::create_subprocess_exec("sleep", "30");
    CHECK_FALSE(p.returncode().has_value());
    p.kill();
    int code = co_await p.wait();
    CHECK(code == -SIGKILL);
}

CORING_TEST_CASE("Process: terminate ends sleep 30 at once with -SIGTERM", "[os][subprocess]") {
    auto start = std::chrono::steady_clock::now();
    Process p = co_await coring::create_subprocess_exec("sleep", "30");
    p.terminate();
    int code = co_await p.wait();
    CHECK(code == -SIGTERM);
    CHECK(std::chrono::steady_clock::now() - start < 5s);
}

CORING_TEST_CASE("Process: communicate pushes 50 MiB through cat", "[os][subprocess]") {
    std::string input(50u << 20, '\0');
    for (std::size_t i = 0; i < input.size(); ++i) {
        input[i] = static_cast<char>((i * 7919) >> 3);
    }
    std::uint64_t sum = checksum(input);
    Process p = co_await coring::create_subprocess_exec(
            "cat", {}, {.stdin_ = coring::PIPE, .stdout_ = coring::PIPE});
    auto [out, err] = co_await p.communicate(std::move(input));
    REQUIRE(out.has_value());
    CHECK_FALSE(err.has_value());
    CHECK(out->size() == (50u << 20));
    CHECK(checksum(*out) == sum);
    CHECK(p.returncode() == 0);
}

CORING_TEST_CASE("Process: communicate reads large stdout and stderr at once without deadlock",
                 "[os][subprocess]") {
    // stderr first: reading stdout alone would block the child on a full stderr pipe.
    Process p = co_await coring::create_subprocess_shell(
            "head -c 3000000 /dev/zero | tr '\\0' e >&2; head -c 4000000 /dev/zero | tr '\\0' "
            "o",
            {.stdout_ = coring::PIPE, .stderr_ = coring::PIPE});
    auto [out, err] = co_await p.communicate();
    REQUIRE(out.has_value());
    REQUIRE(err.has_value());
    CHECK(out->size() == 4000000);
    CHECK(err->size() == 3000000);
    CHECK(out->find_first_not_of('o') == std::string::npos);
    CHECK(err->find_first_not_of('e') == std::string::npos);
    CHECK(p.returncode() == 0);
}

CORING_TEST_CASE("Process: stderr STDOUT merges into stdout", "[os][subprocess]") {
    Process p = co_await coring::create_subprocess_shell(
            "echo out; echo err >&2", {.stdout_ = coring::PIPE, .stderr_ = coring::STDOUT});
    CHECK_FALSE(p.stderr_.has_value());
    auto [out, err] = co_await p.communicate();
    CHECK(out == std::optional<std::string>("out\nerr\n"));
    CHECK_FALSE(err.has_value());
}

CORING_TEST_CASE("Process: DEVNULL gives the child an empty input and swallows output",
                 "[os][subprocess]") {
    Process p = co_await coring::create_subprocess_shell(
            "wc -c; echo done >&2",
            {.stdin_ = coring::DEVNULL, .stdout_ = coring::DEVNULL, .stderr_ = coring::PIPE});
    CHECK_FALSE(p.stdin_.has_value());
    CHECK_FALSE(p.stdout_.has_value());
    auto [out, err] = co_await p.communicate();
    CHECK_FALSE(out.has_value());
    CHECK(err == std::optional<std::string>("done\n"));
}

// Issue 10, defect 6: with g++ 12 these braced lists inside co_await did not compile ("array
// used as initializer"); every call form is built by the dev preset (GCC 12).
CORING_TEST_CASE("Process: the braced argument list compiles in place and runs",
                 "[os][subprocess]") {
    Process p = co_await coring::create_subprocess_exec("sh", {"-c", "exit 3"});
    int code = co_await p.wait();
    CHECK(code == 3);

    std::string word = "in place";
    Process echo = co_await coring::create_subprocess_exec(
            "sh", {"-c", "echo \"$0\"", word}, {.stdout_ = coring::PIPE, .cwd = "/"});
    auto [out, err] = co_await echo.communicate();
    CHECK(out == std::optional<std::string>("in place\n"));
    CHECK(echo.returncode() == 0);
}

CORING_TEST_CASE("Process: vector, variadic and no-argument forms still work", "[os][subprocess]") {
    std::vector<std::string> args{"-c", "exit 4"};
    Process from_vector = co_await coring::create_subprocess_exec("sh", args);
    int c1 = co_await from_vector.wait();
    CHECK(c1 == 4);
    CHECK(args.size() == 2); // copied, not moved from

    std::vector<std::string> five{"-c", "exit 5"};
    Process moved = co_await coring::create_subprocess_exec(
            "sh", std::move(five), {.stdin_ = coring::DEVNULL});
    int c2 = co_await moved.wait();
    CHECK(c2 == 5);

    Process spelled = co_await coring::create_subprocess_exec(
            "sh", "-c", "exit 6", coring::SubprocessOptions{.stdout_ = coring::DEVNULL});
    int c3 = co_await spelled.wait();
    CHECK(c3 == 6);

    Process none = co_await coring::create_subprocess_exec("true");
    int c4 = co_await none.wait();
    CHECK(c4 == 0);
}

// The options may only come last in the variadic form, and the braced list is trivially
// destructible, so GCC 12 cannot destroy it twice (see docs/pitfalls.md).
static_assert(std::is_trivially_destructible_v<coring::ExecArgs>);
static_assert(std::is_trivially_destructible_v<coring::SubprocessOptions>);
static_assert(!coring::detail::strings_then_options<coring::SubprocessOptions, const char*>());
static_assert(coring::detail::strings_then_options<const char*, coring::SubprocessOptions>());
static_assert(coring::detail::strings_then_options<std::string&, const char (&)[3]>());

CORING_TEST_CASE("Process: a given descriptor becomes the child's stdout", "[os][subprocess]") {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    Process p = co_await coring::create_subprocess_exec(
            "echo", "through", "my", "pipe", coring::SubprocessOptions{.stdout_ = fds[1]});
    ::close(fds[1]); // the child has its copy; the caller keeps and closes its own
    coring::StreamReader reader = coring::connect_read_pipe(fds[0]);
    std::string text = co_await reader.read();
    CHECK(text == "through my pipe\n");
    int code = co_await p.wait();
    CHECK(code == 0);
}

CORING_TEST_CASE("Process: descriptors other than 0, 1, 2 do not reach the child",
                 "[os][subprocess]") {
    int leaky = ::fcntl(1, F_DUPFD, 100); // without FD_CLOEXEC
    REQUIRE(leaky >= 100);
    std::string cmd =
            "test -e /proc/self/fd/" + std::to_string(leaky) + " && echo open || echo closed";
    Process p = co_await coring::create_subprocess_shell(cmd, {.stdout_ = coring::PIPE});
    auto [out, err] = co_await p.communicate();
    ::close(leaky);
    INFO("fd " << leaky << " out " << out.value_or("none"));
    CHECK(out == std::optional<std::string>("closed\n"));
}

CORING_TEST_CASE("Process: cwd and env are honoured", "[os][subprocess]") {
    Process pwd = co_await coring::create_subprocess_exec(
            "pwd", {}, {.stdout_ = coring::PIPE, .cwd = "/usr/bin"});
    auto [dir, e1] = co_await pwd.communicate();
    CHECK(dir == std::optional<std::string>("/usr/bin\n"));

    std::vector<std::string> env{"FOO=bar baz"};
    Process echo = co_await coring::create_subprocess_exec(
            "/bin/sh",
            "-c",
            "echo \"$FOO\" \"${HOME-unset}\"",
            coring::SubprocessOptions{.stdout_ = coring::PIPE, .env = env});
    auto [text, e2] = co_await echo.communicate();
    CHECK(text == std::optional<std::string>("bar baz unset\n"));
}

CORING_TEST_CASE("Process: create_subprocess_shell runs the command with /bin/sh -c",
                 "[os][subprocess]") {
    Process p = co_await coring::create_subprocess_shell("echo $((6 * 7)); exit 4",
                                                         {.stdout_ = coring::PIPE});
    auto [out, err] = co_await p.communicate();
    CHECK(out == std::optional<std::string>("42\n"));
    CHECK(p.returncode() == 4);
}

CORING_TEST_CASE("Process: a missing program throws ENOENT naming it, and the loop goes on",
                 "[os][subprocess]") {
    std::string what;
    int code = 0;
    try {
        Process p = co_await coring::create_subprocess_exec("coring-no-such-program");
    } catch (const std::system_error& e) {
        what = e.what();
        code = e.code().value();
    }
    CHECK(code == ENOENT);
    CHECK(what.find("coring-no-such-program") != std::string::npos);

    try {
        Process p = co_await coring::create_subprocess_exec("/nonexistent/dir/prog");
    } catch (const std::system_error& e) {
        code = e.code().value();
    }
    CHECK(code == ENOENT);

    co_await coring::sleep(0s);
    Process ok = co_await coring::create_subprocess_exec("true");
    int rc = co_await ok.wait();
    CHECK(rc == 0);
}

CORING_TEST_CASE("Process: a file that is not executable throws EACCES", "[os][subprocess]") {
    char path[] = "/tmp/coring-noexec-XXXXXX";
    int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::fchmod(fd, 0644);
    ::close(fd);
    int code = 0;
    std::string what;
    try {
        Process p = co_await coring::create_subprocess_exec(path);
    } catch (const std::system_error& e) {
        code = e.code().value();
        what = e.what();
    }
    ::unlink(path);
    CHECK(code == EACCES);
    CHECK(what.find(path) != std::string::npos);
}

CORING_TEST_CASE("Process: 100 children in parallel all report their own code",
                 "[os][subprocess]") {
    auto one = [](int i) -> Task<int> {
        Process p =
                co_await coring::create_subprocess_exec("sh", "-c", "exit " + std::to_string(i));
        co_return co_await p.wait();
    };
    std::vector<Task<int>> jobs;
    for (int i = 0; i < 100; ++i) {
        jobs.push_back(one(i));
    }
    std::vector<int> codes = co_await coring::gather(std::move(jobs));
    REQUIRE(codes.size() == 100);
    for (int i = 0; i < 100; ++i) {
        CHECK(codes[static_cast<std::size_t>(i)] == i);
    }
}

CORING_TEST_CASE("Process: cancelling a task in wait leaves the child running",
                 "[os][subprocess]") {
    Process p =
            co_await coring::create_subprocess_shell("read line; exit 5", {.stdin_ = coring::PIPE});
    auto waiter = coring::create_task([](Process& proc) -> Task<int> {
        co_return co_await proc.wait();
    }(p));
    co_await coring::sleep(0s);
    waiter.cancel();
    CO_CHECK_THROWS_AS(waiter, coring::CancelledError);
    CHECK(child_running(p.pid()));
    CHECK_FALSE(p.returncode().has_value());

    p.stdin_->write("go\n");
    int code = co_await p.wait();
    CHECK(code == 5);
}

CORING_TEST_CASE("Process: two tasks waiting both get the code", "[os][subprocess]") {
    Process p =
            co_await coring::create_subprocess_shell("read line; exit 7", {.stdin_ = coring::PIPE});
    auto wait_for = [](Process& proc) -> Task<int> {
        co_return co_await proc.wait();
    };
    auto a = coring::create_task(wait_for(p));
    auto b = coring::create_task(wait_for(p));
    co_await coring::sleep(0s);
    p.stdin_->close();
    auto [x, y] = co_await coring::gather(a, b);
    CHECK(x == 7);
    CHECK(y == 7);
}

CORING_TEST_CASE("Process: a dropped Process is reaped when its child exits", "[os][subprocess]") {
    pid_t pid = 0;
    {
        Process p = co_await coring::create_subprocess_shell("read line", {.stdin_ = coring::PIPE});
        pid = p.pid();
        CHECK(child_running(pid));
    } // closes stdin: the child reads EOF and exits, with nobody holding the Process
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!reaped(pid) && std::chrono::steady_clock::now() < deadline) {
        co_await coring::sleep(5ms); // no event to await: the Process is gone
    }
    CHECK(reaped(pid)); // not a zombie
}

CORING_TEST_CASE("Process: returncode() is set when the child exits even if nobody waits",
                 "[os][subprocess]") {
    Process p =
            co_await coring::create_subprocess_shell("echo bye; exit 7", {.stdout_ = coring::PIPE});
    CHECK_FALSE(p.returncode().has_value()); // the loop has not run since the spawn
    std::string out = co_await p.stdout_->read();
    CHECK(out == "bye\n");
    // The pipe's EOF comes first; the pidfd poll completes about when the child is gone.
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!p.returncode() && std::chrono::steady_clock::now() < deadline) {
        co_await coring::sleep(1ms); // nothing to await: no wait() on purpose
    }
    CHECK(p.returncode() == 7);
    CHECK(reaped(p.pid()));
}

CORING_TEST_CASE("Process: stdout can be read line by line as it arrives", "[os][subprocess]") {
    Process p = co_await coring::create_subprocess_shell("for i in 1 2 3; do echo line $i; done",
                                                         {.stdout_ = coring::PIPE});
    std::vector<std::string> lines;
    for (;;) {
        std::string line = co_await p.stdout_->readline();
        if (line.empty()) {
            break;
        }
        lines.push_back(line);
    }
    CHECK(lines == std::vector<std::string>{"line 1\n", "line 2\n", "line 3\n"});
    int code = co_await p.wait();
    CHECK(code == 0);
}

CORING_TEST_CASE("Process: writing to the stdin of a child that exited raises BrokenPipeError",
                 "[os][subprocess]") {
    Process p = co_await coring::create_subprocess_exec("true", {}, {.stdin_ = coring::PIPE});
    int code = co_await p.wait();
    CHECK(code == 0);
    p.stdin_->write(std::string(1u << 20, 'x')); // above the high-water mark: drain waits
    CO_CHECK_THROWS_AS(p.stdin_->drain(), coring::BrokenPipeError);
}

CORING_TEST_CASE("Process: communicate ignores a child that does not read its input",
                 "[os][subprocess]") {
    Process p = co_await coring::create_subprocess_exec("true", {}, {.stdin_ = coring::PIPE});
    auto [out, err] = co_await p.communicate(std::string(4u << 20, 'x'));
    CHECK_FALSE(out.has_value());
    CHECK(p.returncode() == 0);
}

CORING_TEST_CASE("Process: send_signal, terminate and kill after wait() raise ProcessLookupError",
                 "[os][subprocess]") {
    Process p = co_await coring::create_subprocess_exec("true");
    int code = co_await p.wait();
    CHECK(code == 0);
    CHECK_THROWS_AS(p.send_signal(SIGTERM), coring::ProcessLookupError);
    CHECK_THROWS_AS(p.terminate(), coring::ProcessLookupError);
    try {
        p.kill();
        FAIL("kill() after wait() did not throw");
    } catch (const coring::ProcessLookupError& e) {
        CHECK(e.code().value() == ESRCH);
        CHECK_THAT(e.what(), Catch::Contains(std::to_string(p.pid())));
    }
    CHECK(p.returncode() == 0);
}

CORING_TEST_CASE("Process: a signal to a child that exited but is not reaped yet is ignored",
                 "[os][subprocess]") {
    Process p = co_await coring::create_subprocess_exec("true");
    // Wait for the exit without reaping, so that the loop has not seen it yet.
    siginfo_t info{};
    REQUIRE(::waitid(P_PID, static_cast<id_t>(p.pid()), &info, WEXITED | WNOWAIT) == 0);
    CHECK_FALSE(p.returncode().has_value());
    CHECK_NOTHROW(p.kill());
    int code = co_await p.wait();
    CHECK(code == 0);
}

CORING_TEST_CASE("Process: the child starts with no blocked signal and SIGPIPE at its default",
                 "[os][subprocess]") {
    // A handler makes the loop's thread block SIGUSR1 (for its signalfd).
    coring::add_signal_handler(coring::get_running_loop(), SIGUSR1, [] {});
    Process p = co_await coring::create_subprocess_exec(
            "cat", "/proc/self/status", coring::SubprocessOptions{.stdout_ = coring::PIPE});
    auto [out, err] = co_await p.communicate();
    coring::remove_signal_handler(coring::get_running_loop(), SIGUSR1);
    REQUIRE(out.has_value());
    CHECK(status_mask(*out, "SigBlk") == 0);
    CHECK((status_mask(*out, "SigIgn") & (1u << (SIGPIPE - 1))) == 0);

    struct sigaction here {};

    ::sigaction(SIGPIPE, nullptr, &here);
    CHECK(here.sa_handler == SIG_IGN); // the parent ignores it, as Python does
}

TEST_CASE("Process: closing the loop with a child running warns with its pid", "[os][subprocess]") {
    coring::test::LogCapture logs;
    std::optional<Process> proc;
    {
        coring::EventLoop loop;
        loop.run_until_complete([](std::optional<Process>& out) -> Task<> {
            out = co_await coring::create_subprocess_shell("read line", {.stdin_ = coring::PIPE});
        }(proc));
        loop.close();
    }
    pid_t pid = proc->pid();
    CHECK(logs.contains("pid " + std::to_string(pid)));
    CHECK(child_running(pid)); // left alone
    proc.reset();              // closes its stdin: the child exits
    int status = 0;
    CHECK(::waitpid(pid, &status, 0) == pid);
}
