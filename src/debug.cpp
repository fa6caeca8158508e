// SPDX-License-Identifier: MIT
// Task dumps: pending tasks as a tree from awaiter to awaited.
#include <coring/debug.hpp>

#include <coring/detail/future_base.hpp>
#include <coring/detail/task_base.hpp>

#include <fmt/format.h>

#include <cxxabi.h>

#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <string_view>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "diagnostics.hpp"

namespace coring {

namespace detail {

std::string demangle(const std::type_info& type) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> name(
            abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), &std::free);
    return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}

bool debug_from_env() noexcept {
    const char* v = std::getenv("CORING_DEBUG");
    return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

} // namespace detail

namespace {

using detail::FutureBase;
using detail::TaskBase;

struct Forest {
    std::vector<const TaskBase*> tasks; // pending tasks, in creation order
    std::unordered_map<const TaskBase*, std::vector<const TaskBase*>> awaits;
    std::unordered_set<const TaskBase*> awaited; // awaited by some pending task
    std::unordered_set<const TaskBase*> printed;
};

/// Appends text with every line prefixed by indent (the first by first).
void append_indented(std::string& out,
                     std::string_view text,
                     std::string_view first,
                     std::string_view indent) {
    bool at_start = true;
    bool first_line = true;
    for (char c : text) {
        if (at_start) {
            out += first_line ? first : indent;
            first_line = false;
            at_start = false;
        }
        out += c;
        if (c == '\n') {
            at_start = true;
        }
    }
}

void print_tree(Forest& f, const TaskBase* t, std::string& out, std::size_t depth) {
    std::string indent(depth == 0 ? 0 : 2 + (depth - 1) * 5, ' ');
    std::string first = depth == 0 ? std::string() : indent + "-> ";
    std::string rest = depth == 0 ? std::string() : indent + "   ";
    if (!f.printed.insert(t).second) {
        append_indented(out, t->describe() + " (listed above)\n", first, rest);
        return;
    }
    std::string stack;
    t->describe_stack(stack);
    append_indented(out, stack, first, rest);
    auto it = f.awaits.find(t);
    if (it == f.awaits.end()) {
        return;
    }
    for (const TaskBase* child : it->second) {
        print_tree(f, child, out, depth + 1);
    }
}

} // namespace

std::string format_tasks(EventLoop& loop) {
    Forest f;
    detail::LoopAccess::for_each_future(loop, [&](FutureBase& fut) {
        if (fut.is_task() && !fut.done()) {
            f.tasks.push_back(static_cast<const TaskBase*>(&fut));
        }
    });
    std::unordered_set<const TaskBase*> pending(f.tasks.begin(), f.tasks.end());
    std::vector<const FutureBase*> targets;
    for (const TaskBase* t : f.tasks) {
        const detail::Waiter* w = t->waiter();
        if (w == nullptr) {
            continue;
        }
        targets.clear();
        w->awaited(targets);
        for (const FutureBase* target : targets) {
            if (!target->is_task()) {
                continue;
            }
            auto* child = static_cast<const TaskBase*>(target);
            if (child != t && pending.count(child) != 0) {
                f.awaits[t].push_back(child);
                f.awaited.insert(child);
            }
        }
    }
    std::string out =
            fmt::format("{} pending task{}\n", f.tasks.size(), f.tasks.size() == 1 ? "" : "s");
    for (const TaskBase* t : f.tasks) {
        if (f.awaited.count(t) == 0) {
            print_tree(f, t, out, 0);
        }
    }
    // Tasks only reachable through a cycle of awaits (a deadlock): list them too.
    for (const TaskBase* t : f.tasks) {
        if (f.printed.count(t) == 0) {
            print_tree(f, t, out, 0);
        }
    }
    return out;
}

std::string format_tasks() {
    return format_tasks(get_running_loop());
}

void dump_tasks(EventLoop& loop, std::FILE* out) {
    std::string text = format_tasks(loop);
    std::fwrite(text.data(), 1, text.size(), out);
    std::fflush(out);
}

void dump_tasks(std::FILE* out) {
    dump_tasks(get_running_loop(), out);
}

} // namespace coring
