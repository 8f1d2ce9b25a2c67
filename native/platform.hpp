// platform.hpp: the platform seam of the core (see objpool.hpp): per-OS
// includes and macros, the CPU number as a slot hint (detail::current_cpu()),
// and the address wait (detail::wait_on(), detail::wake_all()). Header-only,
// no Node headers. Nothing else in the core names an OS.
#ifndef OBJPOOL_PLATFORM_HPP
#define OBJPOOL_PLATFORM_HPP

#include <time.h>

#include <atomic>
#include <cstdint>

// Platform seam: how a thread learns its CPU (a locality hint) and how it
// blocks on a 32-bit word until another thread changes it and wakes it. One
// section per OS; detail::current_cpu(), wait_on() and wake_all() below pick
// from them. Waiting never polls: every OS here has an address wait.
#if defined(__linux__)
// Linux (glibc, musl): sched_getcpu() and the futex syscall. <linux/futex.h>
// comes with the kernel headers, which a musl system may lack (Alpine
// without linux-headers); the two private-futex ops are fixed ABI.
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#if __has_include(<linux/futex.h>)
#include <linux/futex.h>
#endif
#ifndef FUTEX_WAIT_PRIVATE
#define FUTEX_WAIT_PRIVATE 128  // FUTEX_WAIT | FUTEX_PRIVATE_FLAG
#endif
#ifndef FUTEX_WAKE_PRIVATE
#define FUTEX_WAKE_PRIVATE 129  // FUTEX_WAKE | FUTEX_PRIVATE_FLAG
#endif
#ifndef FUTEX_WAIT
#define FUTEX_WAIT 0  // the shared ops, for process-shared pools (a word in a MAP_SHARED mapping)
#endif
#ifndef FUTEX_WAKE
#define FUTEX_WAKE 1
#endif
#define OBJPOOL_HAVE_SCHED_GETCPU 1
#define OBJPOOL_WAIT_FUTEX 1
#elif defined(_WIN32)
// Windows (8 and later): WaitOnAddress / WakeByAddressAll, exported by
// api-ms-win-core-synch-l1-2-0.dll (link Synchronization.lib with MSVC,
// -lsynchronization with mingw-w64, or that DLL's import library with zig),
// and GetCurrentProcessorNumber() (the number within the thread's processor
// group: a hint is all it needs to be).
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#if defined(_MSC_VER)
#pragma comment(lib, "synchronization.lib")
#endif
#define OBJPOOL_HAVE_GETCURRENTPROCESSORNUMBER 1
#define OBJPOOL_WAIT_WAITONADDRESS 1
#elif defined(__APPLE__)
// macOS: __ulock_wait / __ulock_wake, libSystem's private address wait
// (macOS 10.12 on; libc++ implements std::atomic::wait with them). They are
// in no public header, so they are declared here. The public
// os_sync_wait_on_address needs macOS 14.4 and its SDK, which zig 0.11 does
// not ship. No CPU number: user space has no reliable one on macOS, so the
// slot hint is per thread (detail::thread_hint()).
extern "C" int __ulock_wait(uint32_t operation, void* addr, uint64_t value, uint32_t timeout_us);
extern "C" int __ulock_wake(uint32_t operation, void* addr, uint64_t wake_value);
#define OBJPOOL_UL_COMPARE_AND_WAIT 1  // process-private 32-bit compare-and-wait
#define OBJPOOL_ULF_WAKE_ALL 0x100
#define OBJPOOL_WAIT_ULOCK 1
#else
// Elsewhere: C++20 std::atomic_ref wait, where the library has it.
#if !defined(__cpp_lib_atomic_wait) || !defined(__cpp_lib_atomic_ref)
#error "objpool: no address wait for this platform (add a section to the platform seam in platform.hpp)"
#endif
#define OBJPOOL_WAIT_STD 1
#endif

namespace objpool {

namespace detail {
inline uint32_t thread_hint() {
  static std::atomic<uint32_t> counter{0};
  // relaxed: only spreads threads over slots; no data is published through it.
  thread_local const uint32_t hint = counter.fetch_add(1, std::memory_order_relaxed);
  return hint;
}

// The CPU this thread runs on now: a locality hint, never a correctness input.
inline uint32_t current_cpu() {
#if defined(OBJPOOL_HAVE_SCHED_GETCPU)
  const int cpu = sched_getcpu();
  if (cpu >= 0) return static_cast<uint32_t>(cpu);
#elif defined(OBJPOOL_HAVE_GETCURRENTPROCESSORNUMBER)
  return static_cast<uint32_t>(GetCurrentProcessorNumber());
#endif
  return thread_hint();
}

// Blocks while *word == expected (spurious returns allowed), and wakes all
// blocked on it. `shared`: the word is in memory mapped by several processes
// (a process-shared pool, Linux only): the futex must be a shared one, keyed
// by the page rather than by this process's address space. Otherwise
// process-private waits do.
inline void wait_on(uint32_t* word, uint32_t expected, bool shared = false) {
#if defined(OBJPOOL_WAIT_FUTEX)
  syscall(SYS_futex, word, shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
#elif defined(OBJPOOL_WAIT_WAITONADDRESS)
  WaitOnAddress(word, &expected, sizeof expected, INFINITE);
#elif defined(OBJPOOL_WAIT_ULOCK)
  // timeout 0: none. Returns early (EINTR, or the value already differs).
  __ulock_wait(OBJPOOL_UL_COMPARE_AND_WAIT, word, expected, 0);
#else
  std::atomic_ref<uint32_t>(*word).wait(expected, std::memory_order_relaxed);
#endif
}
inline void wake_all(uint32_t* word, bool shared = false) {
#if defined(OBJPOOL_WAIT_FUTEX)
  syscall(SYS_futex, word, shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
#elif defined(OBJPOOL_WAIT_WAITONADDRESS)
  WakeByAddressAll(word);
#elif defined(OBJPOOL_WAIT_ULOCK)
  __ulock_wake(OBJPOOL_UL_COMPARE_AND_WAIT | OBJPOOL_ULF_WAKE_ALL, word, 0);
#else
  std::atomic_ref<uint32_t>(*word).notify_all();
#endif
}

// Sleeps for about `us` microseconds: a thread waiting out another process's
// recovery of a pool (a few hundred microseconds at most) off the CPU.
inline void pause_us(unsigned us) {
#if defined(_WIN32)
  Sleep(us >= 1000 ? us / 1000 : 0);
#else
  struct timespec ts = {0, long(us) * 1000};
  nanosleep(&ts, nullptr);
#endif
}
}  // namespace detail

}  // namespace objpool

#endif  // OBJPOOL_PLATFORM_HPP
