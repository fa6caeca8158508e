// SPDX-License-Identifier: MIT
// The children of a combinator (gather, wait, as_completed): done nodes kept in a reference-counted
// state that outlives the awaiting coroutine, and typed access to each child's outcome
// (asyncio.tasks: the callbacks gather, _wait and as_completed add to their futures).
#pragma once

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/future.hpp>
#include <coring/task.hpp>

#include <coring/detail/awaitable_traits.hpp>
#include <coring/detail/deadline.hpp>
#include <coring/detail/frame_allocator.hpp>
#include <coring/detail/future_base.hpp>
#include <coring/detail/range.hpp>
#include <coring/detail/task_base.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace coring::detail {

class ChildWatch;

/// A combinator's done node on one child. It lives in the combinator's state (ChildWatch), never
/// in a coroutine frame, because gather may return (first exception) while its other children
/// still run, and a node already scheduled on the ready queue cannot be taken back.
///
/// The node is "owned" in FutureBase's sense: while it is scheduled the child holds a reference to
/// itself for it (holds_ref_), and a child destroyed with the node still registered discards it.
/// The slot keeps no reference to a pending child (a pending task is kept alive by its loop, a
/// future nobody references can never finish), so no reference cycle can outlive a closed loop;
/// once the node has run, the slot keeps the reference the child gave it, so the outcome can be
/// read later.
class ChildSlot final : public DoneNode {
public:
    ChildSlot() noexcept : DoneNode(&ChildSlot::run, true) {}

    FutureBase* child = nullptr; // the child; null once it was destroyed without finishing
    ChildWatch* owner = nullptr; // the state this slot belongs to
    bool owns_ref = false;       // this slot holds a reference to child (after its node ran)
    bool finished = false;       // the node ran: child is done and referenced by this slot

private:
    static void run(DoneNode* node, bool discard) noexcept;
};

/// Reference-counted state of a combinator watching several children. One reference belongs to
/// the awaiter (or the user-facing object), one to every slot registered on a child until its node
/// has run or been unlinked. Loop thread only.
class ChildWatch {
public:
    ChildWatch(const ChildWatch&) = delete;
    ChildWatch& operator=(const ChildWatch&) = delete;

    void add_ref() noexcept { ++refs_; }

    void release() noexcept {
        if (--refs_ == 0) {
            drop_children();
            destroy();
        }
    }

    std::size_t size() const noexcept { return size_; }

    ChildSlot& slot(std::size_t i) noexcept { return slots_[i]; }

    const ChildSlot& slot(std::size_t i) const noexcept { return slots_[i]; }

    std::size_t index_of(const ChildSlot& s) const noexcept {
        return static_cast<std::size_t>(&s - slots_);
    }

    /// Registers slot i on child (asyncio's fut.add_done_callback). When child is done already,
    /// the node is scheduled at once, as asyncio's call_soon of the callback.
    void watch(std::size_t i, FutureBase& child) {
        ChildSlot& s = slots_[i];
        s.child = &child;
        s.owner = this;
        add_ref(); // before add_done_node: on a closed loop it discards the node at once
        try {
            child.add_done_node(s);
        } catch (...) {
            s.child = nullptr;
            --refs_;
            throw;
        }
    }

    /// Unlinks every slot still waiting for its child (asyncio's remove_done_callback). Slots
    /// already scheduled cannot be taken back: they run later, and the state ignores them.
    void unwatch_all() noexcept {
        std::uint32_t dropped = 0;
        for (std::size_t i = 0; i < size_; ++i) {
            if (slots_[i].is_linked()) {
                slots_[i].unlink();
                ++dropped;
            }
        }
        // Drop the unlinked slots' references at once: the state may go with the last one.
        if (dropped > 0) {
            refs_ -= dropped - 1;
            release();
        }
    }

    /// Lets go of a finished child whose outcome is no longer needed (or was taken out).
    void drop_child(ChildSlot& s) noexcept {
        if (s.owns_ref) {
            s.owns_ref = false;
            s.child->release(); // may report "Task exception was never retrieved"
        }
        s.child = nullptr;
    }

    /// Unlinks one slot still waiting for its child.
    void unwatch(ChildSlot& s) noexcept {
        if (s.is_linked()) {
            s.unlink();
            release();
        }
    }

protected:
    ChildWatch() noexcept = default;

    virtual ~ChildWatch() = default;

    void set_slots(ChildSlot* slots, std::size_t n) noexcept {
        slots_ = slots;
        size_ = n;
    }

    /// A child finished (its node ran). The child is alive and s.finished is set.
    virtual void on_child_done(ChildSlot& s) noexcept = 0;

    /// Frees the state (after drop_children).
    virtual void destroy() noexcept = 0;

private:
    friend class ChildSlot;

    void drop_children() noexcept {
        for (std::size_t i = 0; i < size_; ++i) {
            ChildSlot& s = slots_[i];
            if (s.owns_ref) {
                s.owns_ref = false;
                s.child->release(); // may report "Task exception was never retrieved"
            }
        }
    }

    ChildSlot* slots_ = nullptr;
    std::size_t size_ = 0;
    std::uint32_t refs_ = 1;
};

inline void ChildSlot::run(DoneNode* node, bool discard) noexcept {
    auto& s = static_cast<ChildSlot&>(*node);
    ChildWatch* w = s.owner;
    if (s.holds_ref_) {
        // Scheduled: the child gave the node a reference to itself until it runs.
        s.holds_ref_ = false;
        if (!discard && !s.owns_ref) {
            s.owns_ref = true; // keep it: the state reads the child's outcome later
        } else {
            s.child->release();
        }
    }
    if (discard) {
        // The loop is closing, or the child is being destroyed without finishing.
        if (!s.owns_ref) {
            s.child = nullptr;
        }
    } else {
        s.finished = true;
        w->on_child_done(s);
    }
    w->release();
}

/// Derived allocated in one block with n ChildSlots behind it, and n Extra (default-constructed)
/// behind those unless Extra is void: one allocation per combinator call, whatever the number
/// of children. Derived defines set_trailing(ChildSlot*, Extra*, n) (without the Extra* when it
/// is void) and calls destroy_trailing() from destroy().
template <class Derived, class Extra = void>
class TrailingSlots {
public:
    template <class... Args>
    static Derived* create(std::size_t n, Args&&... args) {
        static_assert(alignof(Derived) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
        void* mem = frame_allocate(bytes(n));
        Derived* d = nullptr;
        try {
            d = ::new (mem) Derived(std::forward<Args>(args)...);
        } catch (...) {
            frame_deallocate(mem, bytes(n));
            throw;
        }
        ChildSlot* slots = slots_of(mem);
        for (std::size_t i = 0; i < n; ++i) {
            ::new (static_cast<void*>(slots + i)) ChildSlot();
        }
        if constexpr (std::is_void_v<Extra>) {
            d->set_trailing(slots, n);
        } else {
            static_assert(std::is_nothrow_default_constructible_v<Extra>);
            Extra* extras = extras_of(mem, n);
            for (std::size_t i = 0; i < n; ++i) {
                ::new (static_cast<void*>(extras + i)) Extra();
            }
            d->set_trailing(slots, extras, n);
        }
        return d;
    }

protected:
    /// Destroys the extras, the slots and the object, and frees the block.
    void destroy_trailing(std::size_t n) noexcept {
        auto* self = static_cast<Derived*>(this);
        void* mem = self;
        if constexpr (!std::is_void_v<Extra>) {
            Extra* extras = extras_of(mem, n);
            for (std::size_t i = 0; i < n; ++i) {
                extras[i].~Extra();
            }
        }
        ChildSlot* slots = slots_of(mem);
        for (std::size_t i = 0; i < n; ++i) {
            slots[i].~ChildSlot();
        }
        self->~Derived();
        frame_deallocate(mem, bytes(n));
    }

private:
    static constexpr std::size_t round_up(std::size_t v, std::size_t a) noexcept {
        return (v + a - 1) / a * a;
    }

    static constexpr std::size_t slots_offset = round_up(sizeof(Derived), alignof(ChildSlot));

    static constexpr std::size_t extras_offset(std::size_t n) noexcept {
        if constexpr (std::is_void_v<Extra>) {
            return slots_offset + n * sizeof(ChildSlot);
        } else {
            static_assert(alignof(Extra) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
            return round_up(slots_offset + n * sizeof(ChildSlot), alignof(Extra));
        }
    }

    static constexpr std::size_t bytes(std::size_t n) noexcept {
        if constexpr (std::is_void_v<Extra>) {
            return extras_offset(n);
        } else {
            return extras_offset(n) + n * sizeof(Extra);
        }
    }

    static ChildSlot* slots_of(void* mem) noexcept {
        return static_cast<ChildSlot*>(static_cast<void*>(static_cast<char*>(mem) + slots_offset));
    }

    template <class E = Extra>
    static E* extras_of(void* mem, std::size_t n) noexcept {
        return static_cast<E*>(static_cast<void*>(static_cast<char*>(mem) + extras_offset(n)));
    }
};

/// Converts a timeout of any std::chrono duration to the loop's duration, rounding up and
/// saturating (detail/deadline.hpp): a huge timeout never expires, a huge negative one at once.
template <class Rep, class Period>
std::optional<EventLoop::duration> to_timeout(std::chrono::duration<Rep, Period> d) noexcept {
    return EventLoop::duration(saturated_ns(d));
}

// ---- what a combinator does with each argument ----

template <class T>
struct IsFuture : std::false_type {};

template <class T>
struct IsFuture<Future<T>> : std::true_type {};

/// The result type of a child made from D (a decayed argument type).
template <class D>
struct ChildResult {
    using type = await_result_t<D>;
};

template <class T>
struct ChildResult<Task<T>> {
    using type = T;
};

template <class T>
struct ChildResult<TaskHandle<T>> {
    using type = T;
};

template <class T>
struct ChildResult<Future<T>> {
    using type = T;
};

/// How a combinator treats an argument of type A (a forwarding-reference type): TaskHandles and
/// Futures are watched as they are; anything else is wrapped in a task (asyncio's ensure_future).
template <class A>
struct ChildTraits {
    using decayed = std::remove_cvref_t<A>;
    static constexpr bool is_handle = IsTaskHandle<decayed>::value || IsFuture<decayed>::value;
    /// The child's result type.
    using result_type = typename ChildResult<decayed>::type;
    /// Whether its result may be moved out: the combinator made the task, or was given an rvalue
    /// handle. Results of lvalue handles are copied, so every other awaiter still sees them.
    static constexpr bool movable = !is_handle || !std::is_lvalue_reference_v<A>;
};

/// Whether A is something a combinator accepts as one child.
template <class A>
concept ChildArgument = IsTaskHandle<std::remove_cvref_t<A>>::value ||
        IsFuture<std::remove_cvref_t<A>>::value || Awaitable<A>;

/// The future to watch for argument a: the task or future a handle refers to, or a new task for
/// any other awaitable (scheduled on the running loop, as asyncio's ensure_future).
/// Throws: ValueError for an empty handle; RuntimeError without a running loop.
template <class A>
FutureBase& child_future(A&& a) {
    using D = std::remove_cvref_t<A>;
    if constexpr (IsTaskHandle<D>::value || IsFuture<D>::value) {
        FutureBase* f = nullptr;
        if constexpr (IsTaskHandle<D>::value) {
            f = a ? a.base() : nullptr;
        } else {
            f = a.base();
        }
        if (f == nullptr) {
            throw ValueError("coring combinator: empty TaskHandle");
        }
        return *f;
    } else {
        static_assert(!IsTask<D>::value || !std::is_lvalue_reference_v<A>,
                      "a combinator takes ownership of a Task: pass f() or std::move(task)");
        // The loop holds a reference to the pending task; this handle's goes at the end.
        auto handle = create_task(std::forward<A>(a));
        return *handle.base();
    }
}

/// The value stored in a finished child whose result type is T (a Task's or a Future's).
template <class T>
decltype(auto) stored_result(FutureBase& f) noexcept {
    if constexpr (!std::is_void_v<T>) {
        if (f.is_task()) {
            return static_cast<TaskPromise<T>&>(static_cast<TaskBase&>(f)).result_.get();
        }
        return static_cast<FutureState<T>&>(f).result_.get();
    }
}

/// What awaiting a finished child whose result type is T returns: nothing for void, the value
/// moved out when Move (the child was awaited as an rvalue), a reference to it otherwise.
template <class T, bool Move>
decltype(auto) awaited_result(FutureBase& f) {
    if constexpr (std::is_void_v<T>) {
        static_cast<void>(f);
        return;
    } else if constexpr (Move && !std::is_reference_v<T>) {
        return T(std::move(stored_result<T>(f)));
    } else {
        return static_cast<T&>(stored_result<T>(f));
    }
}

/// What a combinator yields for a child result of type T: std::monostate for void (Python's
/// None), T otherwise (references stay references).
template <class T>
using child_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// Same for vectors, which cannot hold references: T& becomes std::reference_wrapper<T>.
template <class T>
using child_element_t = std::conditional_t<std::is_reference_v<T>,
                                           std::reference_wrapper<std::remove_reference_t<T>>,
                                           child_value_t<T>>;

/// The value of a child that finished with a result, as V (moved out when Move).
template <class T, bool Move, class V>
V take_value(FutureBase& f) {
    if constexpr (std::is_void_v<T>) {
        static_cast<void>(f);
        return V{};
    } else if constexpr (std::is_reference_v<T> || !Move) {
        return V(stored_result<T>(f));
    } else {
        return V(std::move(stored_result<T>(f)));
    }
}

/// The exception a finished child ended with (its CancelledError when it was cancelled), or null.
/// Marks the exception retrieved, as Future.exception() does.
inline std::exception_ptr child_exception(FutureBase& f) noexcept {
    if (f.is_task()) {
        std::exception_ptr e = static_cast<TaskBase&>(f).stored_exception();
        if (e && !f.cancelled()) {
            static_cast<void>(f.get_exception()); // cannot throw: finished, not cancelled
        }
        return e;
    }
    try {
        if (f.cancelled()) {
            f.check_result(); // rethrows the future's CancelledError
        }
        return f.get_exception();
    } catch (...) {
        return std::current_exception();
    }
}

/// The argument type a combinator over a range R sees for each element: an rvalue for a range
/// given as an rvalue or holding Tasks (which can only be moved), an lvalue otherwise.
template <class R>
using element_arg_t = std::conditional_t<
        std::is_lvalue_reference_v<R> &&
                !IsTask<std::remove_cvref_t<detail::range_reference_t<R>>>::value,
        std::remove_cvref_t<detail::range_reference_t<R>>&,
        std::remove_cvref_t<detail::range_reference_t<R>>&&>;

template <class R>
concept ChildRange =
        detail::InputRange<R> && !Awaitable<R> && ChildArgument<detail::range_reference_t<R>>;

/// A range of Tasks must be handed over as an rvalue: the combinator takes the coroutines.
template <class R>
inline constexpr bool range_gives_tasks_v =
        !std::is_lvalue_reference_v<R> ||
        !IsTask<std::remove_cvref_t<detail::range_reference_t<R>>>::value;

/// The handle type wait_for and shield keep for an argument of type A.
template <class A>
using inner_handle_t = std::conditional_t<IsTaskHandle<std::remove_cvref_t<A>>::value ||
                                                  IsFuture<std::remove_cvref_t<A>>::value,
                                          std::remove_cvref_t<A>,
                                          TaskHandle<typename ChildTraits<A>::result_type>>;

/// The inner task or future for an argument: the handle itself, or a new task.
template <class A>
inner_handle_t<A> make_inner(A&& a) {
    using D = std::remove_cvref_t<A>;
    if constexpr (IsTaskHandle<D>::value || IsFuture<D>::value) {
        if (a.base() == nullptr) {
            throw ValueError("coring: empty TaskHandle");
        }
        return std::forward<A>(a);
    } else {
        static_assert(!IsTask<D>::value || !std::is_lvalue_reference_v<A>,
                      "this takes ownership of the Task: pass f() or std::move(task)");
        return create_task(std::forward<A>(a));
    }
}

} // namespace coring::detail
