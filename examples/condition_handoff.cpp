// SPDX-License-Identifier: MIT
// A Condition hands a shared "mailbox" between a writer and two readers: each waits, with the
// lock released, until the state it needs holds, and re-checks it with the lock held again.
//
// The asyncio equivalent:
//
//     async def put(cond, box, message):
//         async with cond:
//             await cond.wait_for(lambda: box["msg"] is None)   # lock released while waiting
//             box["msg"] = message
//             cond.notify_all()
//
//     async def writer(cond, box, messages):
//         for m in messages:
//             print(f"writer puts {m!r}")
//             await put(cond, box, m)
//         await put(cond, box, "stop")
//
//     async def reader(name, cond, box, got):
//         while True:
//             async with cond:
//                 await cond.wait_for(lambda: box["msg"] is not None)
//                 m, box["msg"] = box["msg"], None
//                 cond.notify_all()                             # the box is empty again
//             if m == "stop":
//                 await put(cond, box, "stop")                  # pass it on to the other
//                 return
//             print(f"  {name} took {m!r}"); got.append(m)
//             await asyncio.sleep(0.001)                        # work on it, lock released
//
//     async def main():
//         cond, box, got = asyncio.Condition(), {"msg": None}, []
//         readers = [asyncio.create_task(reader(n, cond, box, got)) for n in ("r1", "r2")]
//         await writer(cond, box, ["alpha", "beta", "gamma", "delta", "epsilon"])
//         await asyncio.gather(*readers)
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using Box = std::optional<std::string>;

static coring::Task<> put(coring::Condition& cond, Box& box, std::string message) {
    auto guard = co_await cond.scoped_acquire();              // async with cond:
    co_await cond.wait_for([&] { return !box.has_value(); }); // releases the lock while waiting
    box = std::move(message);
    cond.notify_all();
}

static coring::Task<> writer(coring::Condition& cond, Box& box, std::vector<std::string> msgs) {
    for (auto& m : msgs) {
        std::printf("writer puts '%s'\n", m.c_str());
        co_await put(cond, box, m);
    }
    co_await put(cond, box, "stop");
}

static coring::Task<>
reader(const char* name, coring::Condition& cond, Box& box, std::vector<std::string>& got) {
    for (;;) {
        std::string m;
        {
            auto guard = co_await cond.scoped_acquire();
            co_await cond.wait_for([&] { return box.has_value(); });
            m = std::move(*box);
            box.reset();
            cond.notify_all(); // the box is empty again
        }
        if (m == "stop") {
            co_await put(cond, box, "stop"); // pass it on to the other reader
            std::printf("%s stops\n", name);
            co_return;
        }
        std::printf("  %s took '%s'\n", name, m.c_str());
        got.push_back(m);
        co_await coring::sleep(std::chrono::milliseconds(1)); // work on it, lock released
    }
}

static coring::Task<int> amain() {
    coring::Condition cond;
    Box box;
    std::vector<std::string> got;
    auto r1 = coring::create_task(reader("reader-1", cond, box, got));
    auto r2 = coring::create_task(reader("reader-2", cond, box, got));
    // WORKAROUND(gcc-12): a braced list inside a co_await expression fails to compile ("array
    // used as initializer", https://github.com/Naios/continuable/issues/67): build it first.
    std::vector<std::string> messages{"alpha", "beta", "gamma", "delta", "epsilon"};
    co_await writer(cond, box, std::move(messages));
    co_await r1;
    co_await r2;
    std::printf("%zu messages delivered exactly once; box holds '%s'\n",
                got.size(),
                box.value_or("").c_str());
    co_return got.size() == 5 && box == "stop" ? 0 : 1;
}

int main() {
    return coring::run(amain());
}
