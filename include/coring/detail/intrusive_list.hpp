// SPDX-License-Identifier: MIT
// Intrusive doubly linked lists whose nodes live in coroutine frames (no allocation).
#pragma once

#include <cstddef>
#include <utility>

namespace coring::detail {

/// A node of an IntrusiveList. Unlinks itself when destroyed, so a frame that dies while its
/// node is queued never leaves a dangling pointer behind. Tag lets one object sit in two lists.
template <class Tag = void>
class ListHook {
public:
    ListHook() noexcept = default;
    ListHook(const ListHook&) = delete;
    ListHook& operator=(const ListHook&) = delete;

    ~ListHook() { unlink(); }

    bool is_linked() const noexcept { return next_ != nullptr; }

    void unlink() noexcept {
        if (next_ != nullptr) {
            prev_->next_ = next_;
            next_->prev_ = prev_;
            prev_ = next_ = nullptr;
        }
    }

private:
    template <class, class>
    friend class IntrusiveList;

    ListHook* prev_ = nullptr;
    ListHook* next_ = nullptr;
};

/// A FIFO list of T, where T derives from ListHook<Tag>. Destroying the list unlinks every node;
/// moving it relinks the neighbours, so lists may sit in movable objects.
template <class T, class Tag = void>
class IntrusiveList {
    using Hook = ListHook<Tag>;

public:
    IntrusiveList() noexcept { head_.prev_ = head_.next_ = &head_; }

    IntrusiveList(IntrusiveList&& other) noexcept : IntrusiveList() { take(other); }

    IntrusiveList& operator=(IntrusiveList&& other) noexcept {
        if (this != &other) {
            clear();
            take(other);
        }
        return *this;
    }

    ~IntrusiveList() { clear(); }

    bool empty() const noexcept { return head_.next_ == &head_; }

    std::size_t size() const noexcept {
        std::size_t n = 0;
        for (const Hook* h = head_.next_; h != &head_; h = h->next_) {
            ++n;
        }
        return n;
    }

    void push_back(T& item) noexcept { link_before(&head_, hook(item)); }

    void push_front(T& item) noexcept { link_before(head_.next_, hook(item)); }

    T& front() noexcept { return *object(head_.next_); }

    T& back() noexcept { return *object(head_.prev_); }

    /// Unlinks and returns the first node, or nullptr when empty.
    T* pop_front() noexcept {
        if (empty()) {
            return nullptr;
        }
        Hook* h = head_.next_;
        h->unlink();
        return object(h);
    }

    static void remove(T& item) noexcept { hook(item)->unlink(); }

    /// Unlinks every node without touching the objects otherwise.
    void clear() noexcept {
        while (!empty()) {
            head_.next_->unlink();
        }
    }

    /// Calls f(T&) on each node in order; f may unlink the node it is given.
    template <class F>
    void for_each(F&& f) {
        for (Hook* h = head_.next_; h != &head_;) {
            Hook* next = h->next_;
            f(*object(h));
            h = next;
        }
    }

private:
    static Hook* hook(T& item) noexcept { return static_cast<Hook*>(&item); }

    static T* object(Hook* h) noexcept { return static_cast<T*>(h); }

    static void link_before(Hook* pos, Hook* h) noexcept {
        h->unlink();
        h->next_ = pos;
        h->prev_ = pos->prev_;
        pos->prev_->next_ = h;
        pos->prev_ = h;
    }

    void take(IntrusiveList& other) noexcept {
        if (other.empty()) {
            return;
        }
        head_.next_ = other.head_.next_;
        head_.prev_ = other.head_.prev_;
        head_.next_->prev_ = &head_;
        head_.prev_->next_ = &head_;
        other.head_.prev_ = other.head_.next_ = &other.head_;
    }

    Hook head_;
};

} // namespace coring::detail
