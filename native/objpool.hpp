// objpool.hpp: a scalable lock-free pool of fixed-size objects.
//
// Header-only, no Node headers: usable from any C++ thread. The pool works
// over memory the caller provides (in the addon: SharedArrayBuffers owned by
// V8), so every thread that can see that memory can use the same pool.
//
// Shape (after the Linux kernel's objpool): a fixed number of objects, named
// by 32-bit handles 0..capacity-1, spread over `slots` per-CPU free lists.
// pop() takes from the current CPU's slot and steals from the others when it
// is empty; push() returns an object to the current CPU's slot.
//
// Why not the kernel's per-CPU ring: it relies on preemption being off while
// the owning CPU pushes. In user space a thread can be preempted or migrated
// at any instruction, and two threads can use one slot at once; the ring then
// loses objects or hands one out twice. So each slot here is a complete
// multi-producer/multi-consumer Treiber stack, and the CPU number is only a
// hint for locality:
//   - the slot head is one 64-bit word {index:25, tag:39}, changed only by
//     CAS, the tag bumped on every change: ABA needs 2^39 changes of one head
//     while a thread sits between its load and its CAS;
//   - links live in a per-object `next` array in the metadata; object memory
//     is never freed while the pool lives, so a stale read of `next` is
//     harmless (the tag makes the CAS that would use it fail);
//   - every modification of a head is a read-modify-write, so each push's
//     release heads a release sequence that every later head write extends:
//     an acquire load of a head synchronizes with every earlier push to it.
//
// Metadata may be written by untrusted code (JS can view it), so every index
// read from it is bounds-checked before use and every size is copied into
// this object at attach(): no content of the metadata can make this code read
// or write out of bounds.
//
// Waiting: the attention word holds the closed flag (bit 0) and the number
// of waiters (the rest, counted in twos). A push that finds waiters bumps the
// wake word and wakes every thread blocked on it, so a thread can sleep
// until any thread, JS or native, returns an object (futex on Linux,
// WaitOnAddress on Windows, __ulock_wait on macOS: the platform seam below).
//
// Limitations:
//   - capacity is fixed (at most 2^24 objects); nothing grows;
//   - no order or fairness between threads; LIFO within a slot;
//   - a pop may return empty while another slot is being refilled;
//   - with checked mode off, a double push corrupts the free lists (still
//     without any out-of-bounds access).
#ifndef OBJPOOL_HPP
#define OBJPOOL_HPP

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "atomic_ref.hpp"

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
#error "objpool: no address wait for this platform (add a section to the platform seam in objpool.hpp)"
#endif
#define OBJPOOL_WAIT_STD 1
#endif

// Test-only: the order a pop uses to take objects. test/native/run.js builds
// the stress test with it weakened to relaxed and requires ThreadSanitizer to
// report the resulting race; never define it anywhere else.
#ifndef OBJPOOL_TEST_POP_ORDER
#define OBJPOOL_TEST_POP_ORDER std::memory_order_acquire
#endif
// Test-only: runs in a channel send between its first look at the closed
// flag and its claim, so that test/addon/testing.cc can close the channel
// there (the race the second look after the claim is for). Empty elsewhere.
#ifndef OBJPOOL_TEST_CHAN_BEFORE_CLAIM
#define OBJPOOL_TEST_CHAN_BEFORE_CLAIM()
#endif

namespace objpool {

inline constexpr uint32_t kMagic = 0x4c4f504fu;  // "OPOL" in little-endian bytes
inline constexpr uint32_t kLayoutVersion = 3;
inline constexpr uint32_t kMaxCapacity = 1u << 24;
inline constexpr uint32_t kMaxSlots = 4096;
inline constexpr uint32_t kMaxAlign = 1u << 16;
// "No object": returned by pop on empty, stored as the end of a list.
inline constexpr uint32_t kNone = (1u << 25) - 1;
inline constexpr size_t kLine = 128;  // adjacent-line prefetch makes 64 too little on x86

// Flags word.
inline constexpr uint32_t kFlagChecked = 1u << 0;
inline constexpr uint32_t kFlagExternal = 1u << 1;  // objects live in caller memory, no arena
inline constexpr uint32_t kFlagZero = 1u << 2;      // zero each object when it is pushed back
inline constexpr uint32_t kKnownFlags = kFlagChecked | kFlagExternal | kFlagZero;

// Attention word: closed flag and waiter count.
inline constexpr uint32_t kClosedBit = 1;
inline constexpr uint32_t kWaiterUnit = 2;

// Per-object state words (checked mode).
inline constexpr uint32_t kStateFree = 0;
inline constexpr uint32_t kStateTaken = 1;
inline constexpr uint32_t kStateReleased = 2;
inline constexpr uint32_t kStateInFlight = 3;  // in a handle channel (see Channel)

// Byte offsets in the metadata. Header words are host-endian.
namespace layout {
inline constexpr size_t magic = 0;
inline constexpr size_t version = 4;
inline constexpr size_t capacity = 8;
inline constexpr size_t slots = 12;
inline constexpr size_t object_size = 16;
inline constexpr size_t stride = 20;
inline constexpr size_t align = 24;
inline constexpr size_t flags = 28;
inline constexpr size_t arena_bytes = 32;   // u64
inline constexpr size_t meta_bytes = 40;    // u64
inline constexpr size_t cache_room = 48;    // u32: objects the per-thread caches may still reserve (off the hot line)
inline constexpr size_t attention = kLine;  // u32: closed bit + 2 x waiters; read by every pop and push
inline constexpr size_t released = kLine + 4;  // u32: objects released by close so far
inline constexpr size_t wake = 2 * kLine;      // u32, own line: bumped by pushes that find waiters (futex word)
inline constexpr size_t counters = 3 * kLine;  // u64 counters (see Counter), own line: off the pop/push path
inline constexpr size_t heads = 4 * kLine;     // one u64 head per slot, one line each
}  // namespace layout

// Counters in the metadata, u64 each at layout::counters, for operators:
// every thread's activity lands in the same words and any thread reads them.
// None is touched on the pop/push fast path.
enum class Counter : size_t {
  exhausted = 0,      // pops (and batch pops) that found the pool empty
  waits = 1,          // waits started (popAsync that found nothing)
  wait_timeouts = 2,  // waits that gave up on their timeout
  wait_aborts = 3,    // waits that gave up on their signal
  wait_ns = 4,        // time spent waiting, over all waits that ended, in nanoseconds
  leaks = 5,          // leaks reported
  count = 6,
};

enum class Status : int {
  ok = 0,
  empty,         // pop: no object available
  closed,        // pop: the pool is closed
  out_of_range,  // push: handle >= capacity
  double_push,   // push: the object is not out (checked mode)
  drain_needed,  // push: done, but the pool is closed: the closer must drain again
  bad_layout,    // attach/format: the metadata or a size is invalid
  full,          // channel send: no room; nothing was sent
};

struct Config {
  uint32_t capacity = 0;
  uint32_t slots = 1;
  uint32_t object_size = 0;
  uint32_t stride = 0;
  uint32_t align = 1;
  bool checked = true;
  bool external = false;  // no arena: objects are caller memory
  bool zero = false;      // push zeroes the object (where the pool has an arena)
};

// The share of a pool that all per-thread caches together may hold: a
// quarter, however many threads attach, so idle threads cannot hoard it.
inline constexpr uint32_t cache_budget_for(uint32_t capacity) { return capacity / 4; }

// Bytes of metadata a pool of this shape needs.
inline constexpr uint64_t meta_bytes_for(uint32_t capacity, uint32_t slots, bool checked) {
  return layout::heads + uint64_t(slots) * kLine + uint64_t(capacity) * 4u * (checked ? 2u : 1u);
}

// Validates a shape; true if a pool can be built with it.
inline bool valid_config(const Config& c) {
  if (c.capacity < 1 || c.capacity > kMaxCapacity) return false;
  if (c.slots < 1 || c.slots > kMaxSlots) return false;
  if (c.object_size < 1) return false;
  if (c.align < 1 || c.align > kMaxAlign || (c.align & (c.align - 1)) != 0) return false;
  if (c.stride < c.object_size || c.stride % c.align != 0) return false;
  return true;
}

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
// blocked on it. The word lives in memory shared by every thread of the
// process (never across processes), so process-private waits do.
inline void wait_on(uint32_t* word, uint32_t expected) {
#if defined(OBJPOOL_WAIT_FUTEX)
  syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
#elif defined(OBJPOOL_WAIT_WAITONADDRESS)
  WaitOnAddress(word, &expected, sizeof expected, INFINITE);
#elif defined(OBJPOOL_WAIT_ULOCK)
  // timeout 0: none. Returns early (EINTR, or the value already differs).
  __ulock_wait(OBJPOOL_UL_COMPARE_AND_WAIT, word, expected, 0);
#else
  std::atomic_ref<uint32_t>(*word).wait(expected, std::memory_order_relaxed);
#endif
}
inline void wake_all(uint32_t* word) {
#if defined(OBJPOOL_WAIT_FUTEX)
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
#elif defined(OBJPOOL_WAIT_WAITONADDRESS)
  WakeByAddressAll(word);
#elif defined(OBJPOOL_WAIT_ULOCK)
  __ulock_wake(OBJPOOL_UL_COMPARE_AND_WAIT | OBJPOOL_ULF_WAKE_ALL, word, 0);
#else
  std::atomic_ref<uint32_t>(*word).notify_all();
#endif
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline uint64_t load_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, sizeof v); }
inline void store_u64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, sizeof v); }
}  // namespace detail

// A view of one pool's metadata. Cheap to copy; owns no memory. Every thread
// (or addon instance) attaches its own view to the same memory.
class Pool {
 public:
  static_assert(atomic_ref<uint64_t>::is_always_lock_free, "64-bit CAS must be lock-free");
  static_assert(atomic_ref<uint32_t>::is_always_lock_free, "32-bit atomics must be lock-free");

  Pool() = default;

  // Writes the header of a new pool into `meta` and puts every object in the
  // slots. Nobody else may use `meta` until this returns; hand it to other
  // threads through something that orders memory (postMessage, a mutex,
  // thread start).
  static Status format(void* meta, size_t meta_len, const Config& c) {
    if (!valid_config(c) || (reinterpret_cast<uintptr_t>(meta) & 7u) != 0) return Status::bad_layout;
    const uint64_t need = meta_bytes_for(c.capacity, c.slots, c.checked);
    if (meta_len < need) return Status::bad_layout;
    auto* m = static_cast<uint8_t*>(meta);
    std::memset(m, 0, static_cast<size_t>(need));
    detail::store_u32(m + layout::magic, kMagic);
    detail::store_u32(m + layout::version, kLayoutVersion);
    detail::store_u32(m + layout::capacity, c.capacity);
    detail::store_u32(m + layout::slots, c.slots);
    detail::store_u32(m + layout::object_size, c.object_size);
    detail::store_u32(m + layout::stride, c.stride);
    detail::store_u32(m + layout::align, c.align);
    detail::store_u32(m + layout::flags,
                      (c.checked ? kFlagChecked : 0u) | (c.external ? kFlagExternal : 0u) | (c.zero ? kFlagZero : 0u));
    detail::store_u64(m + layout::arena_bytes, c.external ? 0 : uint64_t(c.capacity) * c.stride);
    detail::store_u64(m + layout::meta_bytes, need);
    detail::store_u32(m + layout::cache_room, cache_budget_for(c.capacity));
    Pool p;
    p.bind(m, nullptr, c);
    // Slot s gets the contiguous run [s*cap/slots, (s+1)*cap/slots), ascending
    // from the head, so a fresh pool hands out low handles first.
    // relaxed (both stores): nobody else can see `meta` yet; the hand-off to
    // other threads (postMessage of the descriptor, thread start) orders
    // them before any other thread's first access.
    for (uint32_t s = 0; s < c.slots; ++s) {
      const uint32_t lo = uint32_t(uint64_t(s) * c.capacity / c.slots);
      const uint32_t hi = uint32_t(uint64_t(s + 1) * c.capacity / c.slots);
      for (uint32_t i = lo; i < hi; ++i) p.next(i).store(i + 1 < hi ? i + 1 : kNone, std::memory_order_relaxed);
      p.head(s).store(lo < hi ? lo : kNone, std::memory_order_relaxed);
    }
    return Status::ok;
  }

  // Validates the metadata against its real length (and the arena's, when
  // there is one) before forming any pointer into it; on success binds `out`.
  // With a null `arena` this view never touches object memory (see
  // without_arena()).
  static Status attach(void* meta, size_t meta_len, void* arena, size_t arena_len, Pool& out) {
    if (meta == nullptr || (reinterpret_cast<uintptr_t>(meta) & 7u) != 0) return Status::bad_layout;
    if (meta_len < layout::heads) return Status::bad_layout;
    const auto* m = static_cast<const uint8_t*>(meta);
    if (detail::load_u32(m + layout::magic) != kMagic) return Status::bad_layout;
    if (detail::load_u32(m + layout::version) != kLayoutVersion) return Status::bad_layout;
    const uint32_t flags = detail::load_u32(m + layout::flags);
    if ((flags & ~kKnownFlags) != 0) return Status::bad_layout;
    Config c;
    c.capacity = detail::load_u32(m + layout::capacity);
    c.slots = detail::load_u32(m + layout::slots);
    c.object_size = detail::load_u32(m + layout::object_size);
    c.stride = detail::load_u32(m + layout::stride);
    c.align = detail::load_u32(m + layout::align);
    c.checked = (flags & kFlagChecked) != 0;
    c.external = (flags & kFlagExternal) != 0;
    c.zero = (flags & kFlagZero) != 0;
    if (!valid_config(c)) return Status::bad_layout;
    const uint64_t need = meta_bytes_for(c.capacity, c.slots, c.checked);
    if (detail::load_u64(m + layout::meta_bytes) != need || meta_len < need) return Status::bad_layout;
    const uint64_t arena_need = c.external ? 0 : uint64_t(c.capacity) * c.stride;
    if (detail::load_u64(m + layout::arena_bytes) != arena_need) return Status::bad_layout;
    if (arena != nullptr && arena_len < arena_need) return Status::bad_layout;
    if (c.external && arena != nullptr) return Status::bad_layout;
    out.bind(static_cast<uint8_t*>(meta), static_cast<uint8_t*>(arena), c);
    return Status::ok;
  }

  uint32_t capacity() const { return capacity_; }
  uint32_t slots() const { return slots_; }
  uint32_t object_size() const { return object_size_; }
  uint32_t stride() const { return stride_; }
  bool checked() const { return state_ != nullptr; }
  bool zeroes() const { return zero_; }

  // The same view, minus its arena: for memory that may go away while the
  // pool lives (a user's ArrayBuffer), which this view must then never touch.
  Pool without_arena() const {
    Pool p = *this;
    p.arena_ = nullptr;
    return p;
  }

  // Zeroes an object's bytes, as a push does in a zero pool; the caller must
  // own the object. False for a view without an arena.
  bool zero_object(uint32_t handle) {
    if (arena_ == nullptr || handle >= capacity_) return false;
    std::memset(arena_ + size_t(handle) * stride_, 0, object_size_);
    return true;
  }

  // The object's memory, or nullptr for a view without an arena.
  void* object(uint32_t handle) const {
    return arena_ != nullptr && handle < capacity_ ? arena_ + size_t(handle) * stride_ : nullptr;
  }

  bool is_closed() const {
    // relaxed: a hint for pop; push's ordering against close() is carried by
    // the seq_cst pair in push_list()/close() below.
    return (attention().load(std::memory_order_relaxed) & kClosedBit) != 0;
  }

  // Threads waiting in wait_for_push() (or registered by wait_begin()).
  uint32_t waiters() const {
    // relaxed: a count for statistics.
    return attention().load(std::memory_order_relaxed) / kWaiterUnit;
  }

  // Objects released by close so far (drain()).
  uint32_t released() const {
    // relaxed: a count for statistics; drain() adds to it.
    return released_word().load(std::memory_order_relaxed);
  }

  // Takes one object. ok with its handle in `out`; empty (out = kNone) when
  // every slot is empty; closed after close().
  Status pop(uint32_t& out) {
    out = kNone;
    if (is_closed()) return Status::closed;
    uint32_t s = this_slot();
    for (uint32_t i = 0; i < slots_; ++i) {
      uint32_t h;
      if (pop_list(s, &h, 1, OBJPOOL_TEST_POP_ORDER) == 1) {
        mark(h, kStateTaken);
        out = h;
        return Status::ok;
      }
      if (++s == slots_) s = 0;
    }
    return Status::empty;
  }

  // Takes up to `max` objects into `out`, fewest CAS: one per slot visited.
  // Returns how many; `status` is closed when the pool is closed. With
  // `mark` false the objects stay Free in checked mode: for a cache that
  // marks each one Taken as it hands it out (see give()).
  size_t pop_many(uint32_t* out, size_t max, Status* status = nullptr, bool mark_taken = true) {
    if (status) *status = Status::ok;
    if (is_closed()) {
      if (status) *status = Status::closed;
      return 0;
    }
    if (max == 0) return 0;
    size_t got = 0;
    uint32_t s = this_slot();
    for (uint32_t i = 0; i < slots_ && got < max; ++i) {
      got += pop_list(s, out + got, max - got, OBJPOOL_TEST_POP_ORDER);
      if (++s == slots_) s = 0;
    }
    if (mark_taken)
      for (size_t i = 0; i < got; ++i) mark(out[i], kStateTaken);
    return got;
  }

  // Returns one object. ok; drain_needed when the pool is closed (the object
  // is back, the closer must drain again); out_of_range or double_push leave
  // the pool untouched.
  Status push(uint32_t handle) {
    if (handle >= capacity_) return Status::out_of_range;
    if (!unmark(handle)) return Status::double_push;
    clear(handle);
    return push_list(this_slot(), handle, handle);
  }

  // Returns `n` objects with one CAS. All or nothing: on out_of_range or
  // double_push (also for a handle given twice) nothing is returned.
  Status push_many(const uint32_t* handles, size_t n) {
    return push_many(handles, n, [](uint32_t) {});
  }

  // push_many() that also calls `zero(h)` for each object once this thread
  // owns it and before anyone else can take it: for memory the core does not
  // hold (a binding's user objects).
  template <class Zero>
  Status push_many(const uint32_t* handles, size_t n, Zero&& zero) {
    if (n == 0) return Status::ok;
    for (size_t i = 0; i < n; ++i)
      if (handles[i] >= capacity_) return Status::out_of_range;
    if (state_ != nullptr) {
      for (size_t i = 0; i < n; ++i) {
        if (!unmark(handles[i])) {
          // relaxed: these objects are still ours; no other thread may use them.
          for (size_t j = 0; j < i; ++j) state(handles[j]).store(kStateTaken, std::memory_order_relaxed);
          return Status::double_push;
        }
      }
    }
    for (size_t i = 0; i < n; ++i) {
      clear(handles[i]);
      zero(handles[i]);
    }
    return give(handles, n);
  }

  // Returns `n` objects that are already Free (checked mode: their state word
  // was moved Taken -> Free by whoever took them back, as a per-thread cache
  // does) with one CAS, without touching state words or bytes. Handles out
  // of range are refused (nothing is returned); the caller owns the objects,
  // so each must appear once.
  Status give(const uint32_t* handles, size_t n) {
    if (n == 0) return Status::ok;
    for (size_t i = 0; i < n; ++i)
      if (handles[i] >= capacity_) return Status::out_of_range;
    // Chain the batch privately; push_list's release CAS publishes the links.
    // relaxed: nobody can reach these objects until that CAS.
    for (size_t i = 0; i + 1 < n; ++i) next(handles[i]).store(handles[i + 1], std::memory_order_relaxed);
    return push_list(this_slot(), handles[0], handles[n - 1]);
  }

  // Marks the pool closed. True for the one call that closed it; the caller
  // then owns draining: call drain() now and again whenever a push reports
  // drain_needed. Wakes every waiter, so that it sees the pool closed.
  bool close() {
    // seq_cst: pairs with the seq_cst CAS + load in push_list(); see there.
    const uint32_t before = attention().fetch_or(kClosedBit, std::memory_order_seq_cst);
    if ((before & kClosedBit) != 0) return false;
    wake_waiters();
    return true;
  }

  // After close(): detaches each slot's list whole and walks it, writing to
  // `out` every object not already marked in `seen` (a bitmap of capacity
  // bits that the closer keeps across calls), marking it there and in its
  // state word (a later push of it is a double push). `out` must have room
  // for capacity entries. Each object is reported once even if unchecked
  // misuse linked it twice or into a cycle; `corrupt` (if given) is set when
  // a walk met such a link.
  size_t drain(uint32_t* out, uint8_t* seen, bool* corrupt = nullptr) {
    size_t got = 0;
    for (uint32_t s = 0; s < slots_; ++s) {
      auto top = head(s);
      // seq_cst load and CAS: must not miss a push that missed the closed
      // flag (see push_list()); acquire makes the detached links and bytes
      // visible.
      uint64_t h = top.load(std::memory_order_seq_cst);
      while (index_of(h) < capacity_ &&
             !top.compare_exchange_weak(h, retag(h, kNone), std::memory_order_seq_cst, std::memory_order_seq_cst)) {}
      uint32_t i = index_of(h);
      // The list is ours now; a walk longer than capacity can only be a cycle.
      for (uint32_t steps = 0; i < capacity_ && steps < capacity_; ++steps) {
        if (seen[i >> 3] & (1u << (i & 7))) {
          if (corrupt) *corrupt = true;
          break;
        }
        seen[i >> 3] = uint8_t(seen[i >> 3] | (1u << (i & 7)));
        out[got++] = i;
        mark(i, kStateReleased);
        // relaxed: ordered after the acquire above.
        i = next(i).load(std::memory_order_relaxed);
      }
    }
    // relaxed: a statistic, read by stats() in any thread.
    if (got) released_word().fetch_add(uint32_t(got), std::memory_order_relaxed);
    return got;
  }

  // Registers a waiter, then tries once more to pop: ok (and the waiter is
  // unregistered again) if an object came back meanwhile; empty if the caller
  // is now registered and any later push will wake it; closed if the pool is
  // closed (not registered). Every wait_begin() that returns empty needs one
  // wait_end().
  Status wait_begin(uint32_t& out) {
    out = kNone;
    // seq_cst: pairs with push_list()'s seq_cst CAS + load of the attention
    // word: either that push sees this waiter, or the seq_cst retry below
    // sees its object.
    const uint32_t before = attention().fetch_add(kWaiterUnit, std::memory_order_seq_cst);
    if ((before & kClosedBit) != 0) {
      wait_end();
      return Status::closed;
    }
    uint32_t s = this_slot();
    for (uint32_t i = 0; i < slots_; ++i) {
      uint32_t h;
      // seq_cst: the retry half of the pairing above (see push_list()).
      if (pop_list(s, &h, 1, std::memory_order_seq_cst) == 1) {
        mark(h, kStateTaken);
        wait_end();
        out = h;
        return Status::ok;
      }
      if (++s == slots_) s = 0;
    }
    return Status::empty;
  }

  void wait_end() {
    // relaxed: only the count matters; a push that still sees this waiter
    // wakes nobody who cares.
    attention().fetch_sub(kWaiterUnit, std::memory_order_relaxed);
  }

  // The wake word: a thread reads it, checks for objects, then blocks in
  // wait_for_push() until it changes.
  uint32_t wake_seq() const {
    // acquire: see the pushes that bumped it.
    return wake_word().load(std::memory_order_acquire);
  }

  // Blocks until a push or close() changes the wake word from `seen`
  // (returns at once if it already has; spurious returns are possible).
  void wait_for_push(uint32_t seen) const { detail::wait_on(reinterpret_cast<uint32_t*>(meta_ + layout::wake), seen); }

  // Wakes every thread blocked in wait_for_push(), as a push that finds
  // waiters does.
  void wake_waiters() {
    // release: a woken thread that reads the new value sees what preceded it.
    wake_word().fetch_add(1, std::memory_order_release);
    detail::wake_all(reinterpret_cast<uint32_t*>(meta_ + layout::wake));
  }

  // Objects in each slot now. Walks the lists, counting each object once
  // (a cycle from unchecked misuse ends the walk), so it costs nothing on the
  // pop/push path; approximate while others work.
  std::vector<uint32_t> per_slot() const {
    std::vector<uint32_t> counts(slots_, 0);
    std::vector<uint8_t> seen((size_t(capacity_) + 7) / 8, 0);
    for (uint32_t s = 0; s < slots_; ++s) {
      // acquire: see the links published by the pushes that built this list.
      uint32_t i = index_of(head(s).load(std::memory_order_acquire));
      while (i < capacity_ && !(seen[i >> 3] & (1u << (i & 7)))) {
        seen[i >> 3] = uint8_t(seen[i >> 3] | (1u << (i & 7)));
        ++counts[s];
        // relaxed: a racy walk is allowed to be approximate; it stays in bounds.
        i = next(i).load(std::memory_order_relaxed);
      }
    }
    return counts;
  }

  // The per-thread caches' shared budget (the caches themselves live outside
  // the core). reserve_cache() takes up to `want` objects' worth of room and
  // returns how much it got; release_cache() gives room back. JS can write
  // the word (the metadata is shared memory), so a forged value only changes
  // how many objects caches may keep, never what memory is touched.
  uint32_t reserve_cache(uint32_t want) {
    auto room = cache_room_word();
    // relaxed: a counter; no data is published through it (the objects a
    // cache takes are handed over by the acquire/release head CAS).
    uint32_t r = room.load(std::memory_order_relaxed);
    for (;;) {
      const uint32_t take = r < want ? r : want;
      if (take == 0) return 0;
      // relaxed, success and failure: as above.
      if (room.compare_exchange_weak(r, r - take, std::memory_order_relaxed, std::memory_order_relaxed)) return take;
    }
  }
  // The room left (relaxed: a hint; see reserve_cache()).
  uint32_t cache_room() const { return cache_room_word().load(std::memory_order_relaxed); }
  void release_cache(uint32_t n) {
    // relaxed: as in reserve_cache().
    if (n != 0) cache_room_word().fetch_add(n, std::memory_order_relaxed);
  }

  // Adds to a counter. relaxed: statistics; nothing is published through them.
  void count(Counter c, uint64_t n = 1) { counter(c).fetch_add(n, std::memory_order_relaxed); }
  uint64_t counted(Counter c) const {
    // relaxed: as in count().
    return counter(c).load(std::memory_order_relaxed);
  }

  // Ownership of objects in handle channels (checked mode; without state
  // words these always succeed and do nothing). An object goes Taken ->
  // InFlight when its owner sends it, InFlight -> Taken when a receiver takes
  // it out, and InFlight -> Free when a closed pool takes it back.
  // relaxed (all three): the exchange only has to be atomic (one of two
  // racing senders or receivers wins); the channel's release store of the
  // cell and the receiver's acquire load of it order the hand-off.
  bool mark_in_flight(uint32_t h) { return transition(h, kStateTaken, kStateInFlight); }
  // Undoes mark_in_flight() for an object that was not sent after all: the
  // caller still owns it, and nobody else can reach it.
  void unmark_in_flight(uint32_t h) {
    // relaxed: as above; the object is in no channel and no list.
    if (state_ != nullptr && h < capacity_) state(h).store(kStateTaken, std::memory_order_relaxed);
  }
  bool take_in_flight(uint32_t h) { return transition(h, kStateInFlight, kStateTaken); }
  // take_in_flight() for a receiver that took the object's cell out of a
  // channel: no other receive can name the object (only forged memory, two
  // cells naming one object, could: two receivers may then both take it, as
  // forged state words could make happen anyway; memory stays safe), and a
  // push or send of it fails while it is InFlight, so a load and a store do
  // (a compare-exchange costs about 20 cycles more a handle: 7 ns of 14 a
  // handle in sendMany+receiveMany).
  bool receive_in_flight(uint32_t h) {
    if (state_ == nullptr) return true;
    if (h >= capacity_) return false;
    // relaxed (both): ordered after the channel's acquire load of the cell,
    // which the sender's release store of it follows its mark_in_flight();
    // the store reaches the next owner through the hand-off of the handle.
    if (state(h).load(std::memory_order_relaxed) != kStateInFlight) return false;
    state(h).store(kStateTaken, std::memory_order_relaxed);
    return true;
  }
  // A closed pool takes an object back from a channel: InFlight -> Free,
  // `zero(h)`, then linked like a push. ok or drain_needed; double_push (and
  // nothing changes) when the object is not in flight, which only forged
  // channel memory can make happen.
  template <class Zero>
  Status return_in_flight(uint32_t h, Zero&& zero) {
    if (h >= capacity_) return Status::out_of_range;
    if (!transition(h, kStateInFlight, kStateFree)) return Status::double_push;
    clear(h);
    zero(h);
    return push_list(this_slot(), h, h);
  }

  // State word of an object (checked mode), for tests and diagnostics.
  uint32_t state_of(uint32_t handle) const {
    if (state_ == nullptr || handle >= capacity_) return kStateFree;
    // relaxed: a diagnostic snapshot.
    return state(handle).load(std::memory_order_relaxed);
  }

 private:
  static constexpr unsigned kIndexBits = 25;
  static constexpr uint64_t kIndexMask = (uint64_t(1) << kIndexBits) - 1;

  static uint32_t index_of(uint64_t head) { return uint32_t(head & kIndexMask); }
  // New head value naming `index`, the tag bumped (wraps in 39 bits).
  static uint64_t retag(uint64_t old, uint32_t index) {
    return ((old & ~kIndexMask) + (uint64_t(1) << kIndexBits)) | index;
  }

  void bind(uint8_t* meta, uint8_t* arena, const Config& c) {
    meta_ = meta;
    arena_ = c.external ? nullptr : arena;
    capacity_ = c.capacity;
    slots_ = c.slots;
    object_size_ = c.object_size;
    stride_ = c.stride;
    zero_ = c.zero;
    next_ = reinterpret_cast<uint32_t*>(meta + layout::heads + size_t(c.slots) * kLine);
    state_ = c.checked ? next_ + c.capacity : nullptr;
  }

  atomic_ref<uint32_t> attention() const {
    return atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(meta_ + layout::attention));
  }
  atomic_ref<uint32_t> released_word() const {
    return atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(meta_ + layout::released));
  }
  atomic_ref<uint64_t> counter(Counter c) const {
    return atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(meta_ + layout::counters + size_t(c) * 8));
  }
  atomic_ref<uint32_t> cache_room_word() const {
    return atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(meta_ + layout::cache_room));
  }
  atomic_ref<uint32_t> wake_word() const {
    return atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(meta_ + layout::wake));
  }
  atomic_ref<uint64_t> head(uint32_t s) const {
    return atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(meta_ + layout::heads + size_t(s) * kLine));
  }
  atomic_ref<uint32_t> next(uint32_t i) const { return atomic_ref<uint32_t>(next_[i]); }
  atomic_ref<uint32_t> state(uint32_t i) const { return atomic_ref<uint32_t>(state_[i]); }

  uint32_t this_slot() const {
    const uint32_t cpu = detail::current_cpu();
    return cpu < slots_ ? cpu : cpu % slots_;
  }

  void mark(uint32_t h, uint32_t st) {
    // relaxed: we own h (won it by an acquire CAS on a head); a later push of
    // h by its owner is ordered after this by that ownership hand-off, and
    // a racing bogus push sees either Free (and fails) or this value.
    if (state_ != nullptr) state(h).store(st, std::memory_order_relaxed);
  }

  // from -> to, once; true without state words. False if the object is
  // not in `from` (or out of range).
  bool transition(uint32_t h, uint32_t from, uint32_t to) {
    if (state_ == nullptr) return true;
    if (h >= capacity_) return false;
    // relaxed: see mark_in_flight().
    return state(h).compare_exchange_strong(from, to, std::memory_order_relaxed);
  }

  // Taken -> Free, once. False if the object is not out.
  bool unmark(uint32_t h) {
    if (state_ == nullptr) return true;
    uint32_t expect = kStateTaken;
    // relaxed: the exchange only has to be atomic (one of two racing pushes
    // wins); the head CAS that follows publishes the object with release.
    return state(h).compare_exchange_strong(expect, kStateFree, std::memory_order_relaxed);
  }

  // Zeroes a returned object's bytes (zero pools with an arena in this view).
  // Plain writes: the pusher owns the object until push_list's release CAS.
  void clear(uint32_t h) {
    if (zero_) zero_object(h);
  }

  // Detaches up to `max` objects from the top of slot s in one CAS.
  size_t pop_list(uint32_t s, uint32_t* out, size_t max, std::memory_order load_order) {
    auto top = head(s);
    // acquire (or seq_cst for drain): synchronizes with every push that put an
    // object on this list (see the file comment on release sequences), making
    // its `next` link and its bytes visible.
    uint64_t h = top.load(load_order);
    for (;;) {
      size_t n = 0;
      uint32_t i = index_of(h);
      while (i < capacity_ && n < max) {
        out[n++] = i;
        // relaxed: ordered after the acquire above; a value changed since
        // then implies a head change, which fails the CAS below.
        i = next(i).load(std::memory_order_relaxed);
      }
      if (n == 0) return 0;
      if (i >= capacity_) i = kNone;  // end of list, or a forged link: cut it
      // success acquire (load_order): we take ownership of the objects and
      // must see their bytes; failure likewise: the new head's links are
      // walked again.
      if (top.compare_exchange_weak(h, retag(h, i), load_order, load_order)) return n;
    }
  }

  // Links the private chain first..last (last's link is written here) onto
  // slot s.
  Status push_list(uint32_t s, uint32_t first, uint32_t last) {
    auto top = head(s);
    // relaxed: only a guess at the current head; the CAS validates it.
    uint64_t h = top.load(std::memory_order_relaxed);
    for (;;) {
      const uint32_t below = index_of(h);
      // relaxed: published by the release half of the CAS below.
      next(last).store(below < capacity_ ? below : kNone, std::memory_order_relaxed);
      // success seq_cst: release publishes the links and the objects' bytes;
      // seq_cst (a plain lock cmpxchg on x86, no extra cost) also puts this
      // write before the attention-word load below in the single total
      // order. With close() (and wait_begin()) writing that word seq_cst
      // before drain() (and the waiter's retry) load heads seq_cst, either
      // this push sees the flag or waiter, or the other side sees this
      // object: a push racing with close is never lost, nor a wake-up.
      // failure relaxed: the value is only a new guess.
      if (top.compare_exchange_weak(h, retag(h, first), std::memory_order_seq_cst, std::memory_order_relaxed)) break;
    }
    // seq_cst: the other half of the pairing above.
    const uint32_t a = attention().load(std::memory_order_seq_cst);
    if ((a & kClosedBit) != 0) return Status::drain_needed;
    if (a >= kWaiterUnit) wake_waiters();
    return Status::ok;
  }

  uint8_t* meta_ = nullptr;
  uint8_t* arena_ = nullptr;
  uint32_t* next_ = nullptr;
  uint32_t* state_ = nullptr;
  uint32_t capacity_ = 0;
  uint32_t slots_ = 0;
  uint32_t object_size_ = 0;
  uint32_t stride_ = 0;
  bool zero_ = false;
};

// ---- handle channels --------------------------------------------------------
//
// A bounded multi-producer/multi-consumer queue of handles in shared memory:
// Dmitry Vyukov's bounded MPMC queue (1024cores.net, "Bounded MPMC queue"),
// with three additions:
//   - batches: a producer (consumer) claims k consecutive cells with one CAS
//     of the enqueue (dequeue) position, after checking that each of them is
//     free (full) for its position; cells checked so stay so, since only the
//     claimer of a position can change its cell;
//   - holes: a claimed cell always gets published, with kHole when the send
//     turned out invalid (an ownership check lost a race after the claim);
//     consumers skip holes, and any value >= the pool's capacity, which only
//     forged memory can hold;
//   - an attention word (closed flags and a waiter count), read by every send
//     after it publishes: a send wakes receivers only when some wait, and
//     gives its objects back itself when the pool was closed meanwhile.
//
// Words (u32, host-endian), at these indices of the channel's memory:
//   0 magic, 1 version, 2 capacity (a power of two, >= 2), 4 attention,
//   8..9 the pool's tag (a u64 its binding writes and checks: which pool
//   the channel belongs to);
//   32 the enqueue position (own line), 64 the dequeue position (own line),
//   96 the wake word (own line: bumped by sends that find waiters, and by
//   closes; waiting threads block on it);
//   128.. the cells: {seq, value} per cell. Cell i starts with seq = i.
// Positions run over all of u32 and wrap; differences are read as int32.
//
// The memory is shared with JS (lib/channel.ts runs single sends and
// receives in JS over the same words), which may write anything into it:
// every index is masked with the capacity copied at attach(), and every
// handle read from a cell is checked against the pool before use. Forged
// content can stall or empty a channel, never make this code touch other
// memory, and in checked mode never hand out an object that is not in
// flight (take_in_flight() must succeed).
//
// Ordering: the cell's seq is the Vyukov hand-off (release store by the
// writer of the cell, acquire load by the next one). Two pairings more, each
// a Dekker pattern through the single total order of seq_cst operations:
//   - a send publishes, then (seq_cst fence) loads the attention word; a
//     waiter adds itself to that word (seq_cst RMW), then (seq_cst fence)
//     looks at the cells again: either the send sees the waiter and wakes it,
//     or the waiter sees the object;
//   - close_for_pool() sets the closed flags (seq_cst RMW), then (fence)
//     takes everything out; a send that published after that take reads the
//     flags after its own publish and takes the rest out itself.
// The JS side uses Atomics (sequentially consistent) for the same accesses.
namespace chan_layout {
inline constexpr size_t magic = 0;
inline constexpr size_t version = 1;
inline constexpr size_t capacity = 2;
inline constexpr size_t attention = 4;
inline constexpr size_t pool_tag = 8;  // and 9
inline constexpr size_t enqueue = 32;  // 128 bytes in: its own line
inline constexpr size_t dequeue = 64;
inline constexpr size_t wake = 96;
inline constexpr size_t cells = 128;
}  // namespace chan_layout

inline constexpr uint32_t kChanMagic = 0x4e48434fu;  // "OCHN" in little-endian bytes
inline constexpr uint32_t kChanVersion = 2;
inline constexpr uint32_t kChanMaxCapacity = 1u << 20;
// At least two cells: with one, "full at position p" (seq p + 1) and "free
// at position p + 1" (seq p + 1) are the same value (Vyukov's queue needs two).
inline constexpr uint32_t kChanMinCapacity = 2;
inline constexpr uint32_t kChanClosed = 1;      // attention: no more sends
inline constexpr uint32_t kChanPoolClosed = 2;  // attention: the pool closed; objects sent go back to it
inline constexpr uint32_t kChanWaiterUnit = 4;  // attention: receivers waiting, counted in fours
inline constexpr uint32_t kHole = 0xffffffffu;

// Bytes of memory a channel of `capacity` cells (a power of two) needs.
inline constexpr uint64_t channel_bytes_for(uint32_t capacity) {
  return (chan_layout::cells + 2 * uint64_t(capacity)) * 4;
}
// The capacity a channel asked for `want` handles gets: the next power of
// two, and at least kChanMinCapacity.
inline uint32_t channel_capacity_for(uint32_t want) {
  uint32_t c = kChanMinCapacity;
  while (c < want && c < kChanMaxCapacity) c <<= 1;
  return c;
}

class Channel {
 public:
  Channel() = default;

  // Writes a new channel into `mem` (4-aligned, channel_bytes_for(capacity)
  // bytes). Nobody else may use it until the memory is handed over.
  static Status format(void* mem, size_t len, uint32_t capacity) {
    if (capacity < kChanMinCapacity || capacity > kChanMaxCapacity || (capacity & (capacity - 1)) != 0)
      return Status::bad_layout;
    if ((reinterpret_cast<uintptr_t>(mem) & 3u) != 0 || len < channel_bytes_for(capacity)) return Status::bad_layout;
    auto* w = static_cast<uint32_t*>(mem);
    std::memset(w, 0, size_t(channel_bytes_for(capacity)));
    w[chan_layout::magic] = kChanMagic;
    w[chan_layout::version] = kChanVersion;
    w[chan_layout::capacity] = capacity;
    for (uint32_t i = 0; i < capacity; ++i) w[chan_layout::cells + 2 * size_t(i)] = i;
    return Status::ok;
  }

  // Validates the header against the memory's real length; on success binds
  // `out`. The capacity is copied: later writes to the header change nothing.
  static Status attach(void* mem, size_t len, Channel& out) {
    if (mem == nullptr || (reinterpret_cast<uintptr_t>(mem) & 3u) != 0 || len < chan_layout::cells * 4)
      return Status::bad_layout;
    const auto* b = static_cast<const uint8_t*>(mem);
    if (detail::load_u32(b + chan_layout::magic * 4) != kChanMagic) return Status::bad_layout;
    if (detail::load_u32(b + chan_layout::version * 4) != kChanVersion) return Status::bad_layout;
    const uint32_t c = detail::load_u32(b + chan_layout::capacity * 4);
    if (c < kChanMinCapacity || c > kChanMaxCapacity || (c & (c - 1)) != 0 || len < channel_bytes_for(c))
      return Status::bad_layout;
    out.words_ = static_cast<uint32_t*>(mem);
    out.mask_ = c - 1;
    return Status::ok;
  }

  uint32_t capacity() const { return mask_ + 1; }
  const void* memory() const { return words_; }

  // Which pool the channel belongs to, as its maker wrote it (0: not
  // written). Nothing here depends on it: a binding uses it to refuse
  // another pool's channel.
  uint64_t pool_tag() const {
    // relaxed (both): written before the channel's memory was handed over.
    return uint64_t(word(chan_layout::pool_tag).load(std::memory_order_relaxed)) |
           uint64_t(word(chan_layout::pool_tag + 1).load(std::memory_order_relaxed)) << 32;
  }
  void set_pool_tag(uint64_t tag) {
    // relaxed (both): by the maker, before the hand-over of the memory.
    word(chan_layout::pool_tag).store(uint32_t(tag), std::memory_order_relaxed);
    word(chan_layout::pool_tag + 1).store(uint32_t(tag >> 32), std::memory_order_relaxed);
  }

  // relaxed (the three below): hints and counts; the decisions that matter
  // re-read the word in the orders described above.
  bool closed() const { return (attention().load(std::memory_order_relaxed) & kChanClosed) != 0; }
  uint32_t waiters() const { return attention().load(std::memory_order_relaxed) / kChanWaiterUnit; }
  // Handles in the channel now (claimed cells included); approximate while others work.
  uint32_t size() const {
    const uint32_t d = word(chan_layout::dequeue).load(std::memory_order_relaxed);
    const uint32_t e = word(chan_layout::enqueue).load(std::memory_order_relaxed);
    const int32_t n = int32_t(e - d);
    return n < 0 ? 0 : (uint32_t(n) > capacity() ? capacity() : uint32_t(n));
  }
  // Closed, and every claimed cell taken: nothing more can come out.
  bool drained() const {
    // seq_cst: after a waiter's RMW of the attention word (see the pairings).
    if ((attention().load(std::memory_order_seq_cst) & kChanClosed) == 0) return false;
    const uint32_t d = word(chan_layout::dequeue).load(std::memory_order_seq_cst);
    return word(chan_layout::enqueue).load(std::memory_order_seq_cst) == d;
  }

  // Sends one object: ok (or drain_needed: the pool was closed meanwhile and
  // got it back); full, closed, out_of_range or double_push change nothing.
  Status send(Pool& pool, uint32_t h) {
    Status st;
    send_many(pool, &h, 1, &st);
    return st;
  }

  // Sends a prefix of `hs`: how many; `status` as for send() (full when none
  // fit). All n handles are checked first (range, ownership), all or nothing.
  // `zero` and `waiters` as for after_send().
  template <class Zero>
  size_t send_many(Pool& pool, const uint32_t* hs, size_t n, Status* status, Zero&& zero, uint32_t* waiters = nullptr) {
    Status st = Status::ok;
    size_t sent = 0;
    if (waiters) *waiters = 0;
    if (n > 0) sent = send_checked(pool, hs, n, st, zero, waiters);
    if (status) *status = st;
    return sent;
  }
  size_t send_many(Pool& pool, const uint32_t* hs, size_t n, Status* status) {
    return send_many(pool, hs, n, status, [](uint32_t) {});
  }

  // Takes one object: ok with its handle; empty; closed once closed and
  // drained. The receiving thread owns what it gets.
  Status receive(Pool& pool, uint32_t& out) {
    out = kNone;
    return receive_many(pool, &out, 1) == 1 ? Status::ok : (drained() ? Status::closed : Status::empty);
  }

  // Takes up to `max` objects into `out`; how many.
  size_t receive_many(Pool& pool, uint32_t* out, size_t max) {
    size_t got = 0, claimed = 0;
    // At most a lap of cells (holes included), as in give_back().
    while (got < max && claimed < capacity()) {
      uint32_t p;
      const size_t k = claim(chan_layout::dequeue, 1, std::min(max - got, size_t(capacity()) - claimed), p);
      if (k == 0) break;
      claimed += k;
      for (size_t i = 0; i < k; ++i) {
        const uint32_t h = take(p + uint32_t(i));
        if (h < pool.capacity() && pool.receive_in_flight(h)) out[got++] = h;
      }
    }
    return got;
  }

  // No more sends; what is in the channel can still be received. Wakes
  // waiting receivers (they see it closed once it is drained).
  void close() {
    // seq_cst: a waiter that registers after this sees the flag; a send
    // that claims a cell after this sees it (send_checked()).
    const uint32_t before = attention().fetch_or(kChanClosed, std::memory_order_seq_cst);
    if (before >= kChanWaiterUnit) wake_waiters();
  }

  // The pool closed: no more sends, and everything in the channel goes back
  // to the pool (for the closer to release). `zero(h)` as in
  // Pool::return_in_flight. Returns how many went back.
  template <class Zero>
  size_t close_for_pool(Pool& pool, Zero&& zero) {
    // seq_cst, then the fence in give_back(): the close pairing above.
    const uint32_t before = attention().fetch_or(kChanClosed | kChanPoolClosed, std::memory_order_seq_cst);
    const size_t n = give_back(pool, zero);
    if (before >= kChanWaiterUnit) wake_waiters();
    return n;
  }

  // After a send: the other half of both pairings. drain_needed when the
  // pool closed and objects went back to it. Waiting receivers are woken
  // through the wake word, or, given `waiters`, counted there for the
  // caller to wake (the binding calls the waiting threads back directly).
  template <class Zero>
  Status after_send(Pool& pool, Zero&& zero, uint32_t* waiters = nullptr) {
    // seq_cst fence: orders this thread's publishing stores before the load.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // acquire: the fence above orders it after the publish; acquire also
    // makes what a waiter did before it counted itself (a seq_cst RMW) visible
    // to what follows here (the binding reads each view's waiting flag).
    const uint32_t a = attention().load(std::memory_order_acquire);
    Status st = Status::ok;
    if ((a & kChanPoolClosed) != 0 && give_back(pool, zero) > 0) st = Status::drain_needed;
    if (waiters != nullptr)
      *waiters = a / kChanWaiterUnit;
    else if (a >= kChanWaiterUnit)
      wake_waiters();
    return st;
  }
  Status after_send(Pool& pool) {
    return after_send(pool, [](uint32_t) {});
  }

  // For a thread that stopped between claiming a cell and finishing with it
  // (the binding's teardown; see lib/channel.ts). finish_send(): the cell at
  // `pos` claimed to send `h` is published if it still is not: with `h` if
  // it went in flight (always, without state words), else with a hole (the
  // object stays the sender's); `h` is kHole when the sender had already
  // chosen a hole (a send refused after its claim). finish_receive(): the cell at `pos` claimed
  // by a receive is emptied if it still is not, and the object it held, or
  // `h` when the cell was emptied but `h` not taken (still in flight), goes
  // back to the pool. True if that pool is closed (drain_needed).
  void finish_send(Pool& pool, uint32_t pos, uint32_t h) {
    // acquire: as in claim(). Only the claimer can publish this cell: seq
    // == pos means claimed and never published (a cell's seq never returns
    // to a value it left, short of 2^32 positions).
    if (seq(pos).load(std::memory_order_acquire) != pos) return;
    const bool sent = !pool.checked() || (h < pool.capacity() && pool.state_of(h) == kStateInFlight);
    put(pos, sent ? h : kHole);
  }
  template <class Zero>
  bool finish_receive(Pool& pool, uint32_t pos, uint32_t h, Zero&& zero) {
    // acquire: as in claim(); seq == pos + 1: still full, and only its
    // claimer (this stopped thread) can empty it.
    if (seq(pos).load(std::memory_order_acquire) == pos + 1) {
      h = take(pos);
    } else if (!pool.checked() || h >= pool.capacity() || pool.state_of(h) != kStateInFlight) {
      return false;  // taken (the thread owned it when it stopped), or nothing to do
    }
    if (h >= pool.capacity()) return false;  // a hole
    return pool.return_in_flight(h, zero) == Status::drain_needed;
  }

  // The wake word: a waiting thread reads it, adds itself as a waiter,
  // looks at the cells again, then blocks in wait_for_send() until a send
  // (or a close) changes it. Only this channel's sends wake its waiters.
  uint32_t wake_seq() const {
    // acquire: see the sends that bumped it.
    return word(chan_layout::wake).load(std::memory_order_acquire);
  }
  // Blocks until the wake word changes from `seen` (at once if it has;
  // spurious returns are possible).
  void wait_for_send(uint32_t seen) const { detail::wait_on(words_ + chan_layout::wake, seen); }
  // Wakes every thread blocked in wait_for_send().
  void wake_waiters() {
    // release: a woken thread that reads the new value sees what preceded it.
    word(chan_layout::wake).fetch_add(1, std::memory_order_release);
    detail::wake_all(words_ + chan_layout::wake);
  }

  // Adds (or removes) a waiting receiver. A waiter adds itself, then looks
  // at the cells again before it sleeps (the waiter pairing above).
  void add_waiter() {
    // seq_cst, then a fence: the waiter pairing above.
    attention().fetch_add(kChanWaiterUnit, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  void remove_waiter() {
    // relaxed: a count; a send that still sees this waiter wakes nobody who cares.
    attention().fetch_sub(kChanWaiterUnit, std::memory_order_relaxed);
  }

 private:
  atomic_ref<uint32_t> word(size_t i) const { return atomic_ref<uint32_t>(words_[i]); }
  atomic_ref<uint32_t> attention() const { return word(chan_layout::attention); }
  atomic_ref<uint32_t> seq(uint32_t pos) const { return word(chan_layout::cells + 2 * size_t(pos & mask_)); }
  atomic_ref<uint32_t> value(uint32_t pos) const { return word(chan_layout::cells + 2 * size_t(pos & mask_) + 1); }

  // Claims up to `want` consecutive cells at the enqueue (lag 0) or dequeue
  // (lag 1) position: each must hold seq == position + lag. Returns how many
  // (0: the channel is full, or empty) and the first position in `at`.
  size_t claim(size_t which, uint32_t lag, size_t want, uint32_t& at) {
    auto pos = word(which);
    // relaxed: a guess; the CAS validates it (Vyukov's queue).
    uint32_t p = pos.load(std::memory_order_relaxed);
    for (;;) {
      // acquire: sees what the cell's previous owner did before it released
      // the cell (a producer's value; a consumer's read of the old value).
      const int32_t d = int32_t(seq(p).load(std::memory_order_acquire) - (p + lag));
      if (d < 0) return 0;  // full (producer) or empty (consumer)
      if (d > 0) {
        // relaxed: another thread moved on; a new guess. A position that
        // did not move means forged memory (a seq ahead of every position):
        // full or empty, rather than a spin forever.
        const uint32_t now = pos.load(std::memory_order_relaxed);
        if (now == p) return 0;
        p = now;
        continue;
      }
      size_t k = 1;
      // acquire: as above, for each further cell of the batch.
      while (k < want && k <= mask_ &&
             int32_t(seq(p + uint32_t(k)).load(std::memory_order_acquire) - (p + uint32_t(k) + lag)) == 0)
        ++k;
      // relaxed, success and failure: the position only allots cells; the
      // seq words carry the data (Vyukov's queue).
      if (pos.compare_exchange_weak(p, p + uint32_t(k), std::memory_order_relaxed, std::memory_order_relaxed)) {
        at = p;
        return k;
      }
    }
  }

  // Publishes a claimed cell with `h` (or kHole).
  void put(uint32_t p, uint32_t h) {
    // relaxed: published by the release store of seq below.
    value(p).store(h, std::memory_order_relaxed);
    // release: the consumer's acquire load of seq sees the value.
    seq(p).store(p + 1, std::memory_order_release);
  }

  // Empties a claimed full cell: its value, and the cell freed for the
  // producer one lap later.
  uint32_t take(uint32_t p) {
    // relaxed: ordered after claim()'s acquire load of this cell's seq.
    const uint32_t h = value(p).load(std::memory_order_relaxed);
    // release: the producer of the next lap writes the value only after this read.
    seq(p).store(p + mask_ + 1, std::memory_order_release);
    return h;
  }

  template <class Zero>
  size_t send_checked(Pool& pool, const uint32_t* hs, size_t n, Status& st, Zero& zero, uint32_t* waiters) {
    for (size_t i = 0; i < n; ++i)
      if (hs[i] >= pool.capacity()) return st = Status::out_of_range, 0;
    // relaxed: a hint; a send racing with close() is ordered either way.
    if (closed()) return st = Status::closed, 0;
    for (size_t i = 0; i < n; ++i) {
      if (!pool.mark_in_flight(hs[i])) {
        for (size_t j = 0; j < i; ++j) pool.unmark_in_flight(hs[j]);
        return st = Status::double_push, 0;
      }
    }
    OBJPOOL_TEST_CHAN_BEFORE_CLAIM();
    uint32_t p = 0;
    const size_t k = claim(chan_layout::enqueue, 0, n, p);
    for (size_t i = k; i < n; ++i) pool.unmark_in_flight(hs[i]);
    if (k == 0) return st = Status::full, 0;
    // Closed since the check above: a receiver may have seen the channel
    // closed and drained (drained(): closed, then the positions equal), and
    // nothing may arrive after that. seq_cst fence: after the claim's CAS,
    // before the load: either that receiver's load of the enqueue position
    // saw this claim (not drained), or this load sees the flag. The cells
    // become holes; the objects stay the caller's.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // relaxed: ordered by the fence above.
    if ((attention().load(std::memory_order_relaxed) & kChanClosed) != 0) {
      for (size_t i = 0; i < k; ++i) {
        put(p + uint32_t(i), kHole);
        pool.unmark_in_flight(hs[i]);
      }
      // A waiter that looked before the holes were published waits for them.
      after_send(pool, zero, waiters);
      return st = Status::closed, 0;
    }
    for (size_t i = 0; i < k; ++i) put(p + uint32_t(i), hs[i]);
    st = after_send(pool, zero, waiters);
    return k;
  }

  // Takes everything that is in the channel back into the (closed) pool.
  template <class Zero>
  size_t give_back(Pool& pool, Zero& zero) {
    // seq_cst fence: the close pairing (see the file comment above).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    size_t n = 0, taken = 0;
    uint32_t p;
    // At most one lap: that is all a channel can hold; more is forged
    // memory refilled by a hostile thread as fast as it is emptied.
    for (size_t k; taken < capacity() && (k = claim(chan_layout::dequeue, 1, capacity() - taken, p)) > 0;) {
      taken += k;
      for (size_t i = 0; i < k; ++i) {
        const uint32_t h = take(p + uint32_t(i));
        if (h >= pool.capacity()) continue;  // a hole (or forged)
        const Status st = pool.return_in_flight(h, zero);
        if (st == Status::ok || st == Status::drain_needed) ++n;
      }
    }
    return n;
  }

  uint32_t* words_ = nullptr;
  uint32_t mask_ = 0;
};

}  // namespace objpool

#endif  // OBJPOOL_HPP
