// layout.hpp: what the core's parts share: the metadata's constants and
// byte layout, Counter, Status, Config, and the shape checks. Part of the
// core (see objpool.hpp): header-only, no Node headers.
#ifndef OBJPOOL_LAYOUT_HPP
#define OBJPOOL_LAYOUT_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>

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
inline constexpr uint32_t kFlagProcess = 1u << 3;   // process-shared: owner-tagged states (see pool.hpp)
inline constexpr uint32_t kKnownFlags = kFlagChecked | kFlagExternal | kFlagZero | kFlagProcess;

// Attention word: closed flag and waiter count.
inline constexpr uint32_t kClosedBit = 1;
inline constexpr uint32_t kWaiterUnit = 2;

// Per-object state words (checked mode).
inline constexpr uint32_t kStateFree = 0;
inline constexpr uint32_t kStateTaken = 1;
inline constexpr uint32_t kStateReleased = 2;
inline constexpr uint32_t kStateInFlight = 3;  // in a handle channel (see Channel)
// Process-shared pools (kFlagProcess) only: in a view's cache. Thread pools
// keep cached objects Free.
inline constexpr uint32_t kStateCached = 4;
// A process-shared pool's state word is kind | owner << kOwnerShift, the
// owner (1..kMaxOwners: a process's slot in the segment, plus one) on Taken
// and Cached, 0 elsewhere; a thread pool's owner is always 0.
inline constexpr uint32_t kKindMask = 0xff;
inline constexpr unsigned kOwnerShift = 8;
inline constexpr uint32_t kMaxOwners = 256;

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
  recovered = 6,      // process-shared pools: objects taken back from processes that died
  recovered_mid = 7,  // of those, objects a process died with in the middle of a list operation
  count = 8,
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
  frozen,        // internal (process-shared pools): a recovery holds the slot; see Pool::recover()
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
  bool process = false;   // process-shared (checked only): owner-tagged states, recoverable
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
  if (c.process && (!c.checked || c.external)) return false;
  return true;
}

namespace detail {
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

}  // namespace objpool

#endif  // OBJPOOL_LAYOUT_HPP
