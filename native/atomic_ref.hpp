// atomic_ref.hpp: objpool::atomic_ref<T>, std::atomic_ref where the standard
// library has it, else a minimal stand-in over the GCC/clang __atomic
// builtins.
//
// Why: libc++ gained std::atomic_ref only in LLVM 19 (Apple clang: Xcode
// 16.3), so older libc++ (zig 0.11's, which builds the musl, macOS and
// Windows prebuilds; older Xcode) cannot compile the core. libstdc++ (GCC >=
// 10) and MSVC's STL (VS 2019 16.7 on, /std:c++20) have it and use it.
//
// The stand-in covers exactly what objpool uses: load, store, exchange,
// compare_exchange_weak/strong, fetch_add, fetch_sub, fetch_or, fetch_and and
// is_always_lock_free, for integral T. Like std::atomic_ref, it requires the
// referenced object to be suitably aligned (alignof(T) == sizeof(T) for the
// types used here) and every concurrent access to go through an atomic_ref.
#ifndef OBJPOOL_ATOMIC_REF_HPP
#define OBJPOOL_ATOMIC_REF_HPP

#include <atomic>
#include <cstddef>
#include <memory>
#include <type_traits>
#if __has_include(<version>)
#include <version>
#endif

namespace objpool {

// OBJPOOL_FORCE_ATOMIC_REF_SHIM (tests only): the stand-in even where the
// library has std::atomic_ref, so that test:native can stress it under
// ThreadSanitizer with g++.
#if (defined(__cpp_lib_atomic_ref) && !defined(OBJPOOL_FORCE_ATOMIC_REF_SHIM)) || \
    (defined(_MSC_VER) && !defined(__clang__))
// The standard one (libstdc++, MSVC's STL, libc++ >= 19). MSVC has no
// __atomic builtins, so it always takes this branch.
template <class T>
using atomic_ref = std::atomic_ref<T>;
#define OBJPOOL_ATOMIC_REF_SHIM 0
#else
#define OBJPOOL_ATOMIC_REF_SHIM 1

namespace detail_atomic {
// std::memory_order -> the __ATOMIC_* constant. A switch rather than a cast:
// the standard does not promise the enumerators' values. Folded to a
// constant wherever the order is one (everywhere in objpool).
constexpr int order(std::memory_order o) noexcept {
  switch (o) {
    case std::memory_order_relaxed:
      return __ATOMIC_RELAXED;
    case std::memory_order_consume:
      return __ATOMIC_CONSUME;
    case std::memory_order_acquire:
      return __ATOMIC_ACQUIRE;
    case std::memory_order_release:
      return __ATOMIC_RELEASE;
    case std::memory_order_acq_rel:
      return __ATOMIC_ACQ_REL;
    default:
      return __ATOMIC_SEQ_CST;
  }
}
// The failure order compare_exchange derives from a single order, as the
// standard does: no release part on failure.
constexpr std::memory_order failure_order(std::memory_order o) noexcept {
  return o == std::memory_order_acq_rel   ? std::memory_order_acquire
         : o == std::memory_order_release ? std::memory_order_relaxed
                                          : o;
}
}  // namespace detail_atomic

template <class T>
class atomic_ref {
  static_assert(std::is_integral_v<T>, "objpool::atomic_ref (shim) supports integral types only");

 public:
  using value_type = T;
  using difference_type = T;
  static constexpr bool is_always_lock_free = __atomic_always_lock_free(sizeof(T), 0);
  static constexpr std::size_t required_alignment = sizeof(T) > alignof(T) ? sizeof(T) : alignof(T);

  explicit atomic_ref(T& obj) noexcept : p_(std::addressof(obj)) {}
  atomic_ref(const atomic_ref&) noexcept = default;
  atomic_ref& operator=(const atomic_ref&) = delete;

  bool is_lock_free() const noexcept { return __atomic_is_lock_free(sizeof(T), p_); }

  T load(std::memory_order o = std::memory_order_seq_cst) const noexcept {
    return __atomic_load_n(p_, detail_atomic::order(o));
  }
  void store(T v, std::memory_order o = std::memory_order_seq_cst) const noexcept {
    __atomic_store_n(p_, v, detail_atomic::order(o));
  }
  T exchange(T v, std::memory_order o = std::memory_order_seq_cst) const noexcept {
    return __atomic_exchange_n(p_, v, detail_atomic::order(o));
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order success,
                             std::memory_order failure) const noexcept {
    return __atomic_compare_exchange_n(p_, &expected, desired, true, detail_atomic::order(success),
                                       detail_atomic::order(failure));
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order o = std::memory_order_seq_cst) const noexcept {
    return compare_exchange_weak(expected, desired, o, detail_atomic::failure_order(o));
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order success,
                               std::memory_order failure) const noexcept {
    return __atomic_compare_exchange_n(p_, &expected, desired, false, detail_atomic::order(success),
                                       detail_atomic::order(failure));
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order o = std::memory_order_seq_cst) const noexcept {
    return compare_exchange_strong(expected, desired, o, detail_atomic::failure_order(o));
  }
  T fetch_add(T v, std::memory_order o = std::memory_order_seq_cst) const noexcept {
    return __atomic_fetch_add(p_, v, detail_atomic::order(o));
  }
  T fetch_sub(T v, std::memory_order o = std::memory_order_seq_cst) const noexcept {
    return __atomic_fetch_sub(p_, v, detail_atomic::order(o));
  }
  T fetch_or(T v, std::memory_order o = std::memory_order_seq_cst) const noexcept {
    return __atomic_fetch_or(p_, v, detail_atomic::order(o));
  }
  T fetch_and(T v, std::memory_order o = std::memory_order_seq_cst) const noexcept {
    return __atomic_fetch_and(p_, v, detail_atomic::order(o));
  }

 private:
  T* p_;
};
#endif

}  // namespace objpool

#endif  // OBJPOOL_ATOMIC_REF_HPP
