// pool.hpp: objpool::Pool, over the metadata laid out in layout.hpp. Part of
// the core (see objpool.hpp): header-only, no Node headers.
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
//   - the slot head is one 64-bit word {index:25, tag:38, frozen:1}, changed
//     only by CAS, the tag bumped on every change: ABA needs 2^38 changes of
//     one head while a thread sits between its load and its CAS (the frozen
//     bit is set only in process-shared pools, by recover());
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
// WaitOnAddress on Windows, __ulock_wait on macOS: the platform seam, in
// platform.hpp).
//
// Process-shared pools (Config::process; the binding maps the metadata and
// arena from OS shared memory into every process, see native/segment.hpp):
// a process can die at any instruction, so every object must stay
// accountable to someone. The state word is then the object's location:
// Free (on a free list, or inside a list operation), Taken|owner (in a
// process's hands), Cached|owner (in a view's cache), InFlight (in a
// channel), Released; the owner is the process's slot in the segment. An
// object moves between owners only by a CAS on its state word, so at every
// instant it belongs to one process, a list, or a list operation. List
// operations run inside the view's gap (an odd count in a word of the
// segment, `gap_`), the only time an object can be Free and on no list.
// recover() takes back what dead owners held: it freezes every slot head
// (pops see the slot empty; pushes wait), waits until no live view is inside
// a gap, then every object that is neither listed nor held by a live owner
// (Taken or Cached by a dead one, or Free off every list: a dead process's
// unfinished gap) goes back, and the heads thaw. See recover().
//
// Limitations:
//   - capacity is fixed (at most 2^24 objects); nothing grows;
//   - no order or fairness between threads; LIFO within a slot;
//   - a pop may return empty while another slot is being refilled;
//   - with checked mode off, a double push corrupts the free lists (still
//     without any out-of-bounds access).
#ifndef OBJPOOL_POOL_HPP
#define OBJPOOL_POOL_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "atomic_ref.hpp"
#include "layout.hpp"
#include "platform.hpp"

// Test-only: the order a pop uses to take objects. test/native/run.js builds
// the stress test with it weakened to relaxed and requires ThreadSanitizer to
// report the resulting race; never define it anywhere else.
#ifndef OBJPOOL_TEST_POP_ORDER
#define OBJPOOL_TEST_POP_ORDER std::memory_order_acquire
#endif

namespace objpool {

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
    detail::store_u32(m + layout::flags, (c.checked ? kFlagChecked : 0u) | (c.external ? kFlagExternal : 0u) |
                                             (c.zero ? kFlagZero : 0u) | (c.process ? kFlagProcess : 0u));
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
    c.process = (flags & kFlagProcess) != 0;
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
  bool process_shared() const { return process_; }

  // A process-shared pool's view in one process: `owner` (1..kMaxOwners)
  // tags what it takes; `gap` is this view's gap word and `budget` its
  // process's share of the cache budget, both in the segment (nullptr: a
  // view that does no list operation, as recover()'s). No-op for a thread pool.
  void set_owner(uint32_t owner, uint32_t* gap, uint32_t* budget) {
    if (!process_ || owner == 0 || owner > kMaxOwners) return;
    taken_ = kStateTaken | owner << kOwnerShift;
    cached_ = kStateCached | owner << kOwnerShift;
    gap_ = gap;
    budget_ = budget;
  }
  // What this view writes for an object it takes and for one it caches.
  uint32_t taken_state() const { return taken_; }
  uint32_t cached_state() const { return cached_; }

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
    Gap gap(gap_);
    uint32_t s = this_slot();
    for (uint32_t i = 0; i < slots_; ++i) {
      uint32_t h;
      if (pop_list(s, &h, 1, pop_order()) == 1) {
        mark(h, taken_);
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
    Gap gap(gap_);
    size_t got = 0;
    uint32_t s = this_slot();
    for (uint32_t i = 0; i < slots_ && got < max; ++i) {
      got += pop_list(s, out + got, max - got, pop_order());
      if (++s == slots_) s = 0;
    }
    // A process-shared pool's cache holds its objects as Cached|owner; a
    // thread pool's as Free (no store).
    if (mark_taken || process_)
      for (size_t i = 0; i < got; ++i) mark(out[i], mark_taken ? taken_ : cached_);
    return got;
  }

  // Returns one object. ok; drain_needed when the pool is closed (the object
  // is back, the closer must drain again); out_of_range or double_push leave
  // the pool untouched.
  Status push(uint32_t handle) {
    if (handle >= capacity_) return Status::out_of_range;
    return guarded_push(&handle, 1, [&] {
      if (!unmark(handle)) return Status::double_push;
      clear(handle);
      return Status::ok;
    });
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
    return guarded_push(handles, n, [&] {
      if (state_ != nullptr) {
        for (size_t i = 0; i < n; ++i) {
          if (!unmark(handles[i])) {
            // relaxed: these objects are still ours; no other thread may use them.
            for (size_t j = 0; j < i; ++j) state(handles[j]).store(taken_, std::memory_order_relaxed);
            return Status::double_push;
          }
        }
      }
      for (size_t i = 0; i < n; ++i) {
        clear(handles[i]);
        zero(handles[i]);
      }
      link(handles, n);
      return Status::ok;
    });
  }

  // Returns `n` objects that are already Free (checked mode: their state word
  // was moved Taken -> Free by whoever took them back, as a per-thread cache
  // does) with one CAS, without touching state words or bytes. Handles out
  // of range are refused (nothing is returned); the caller owns the objects,
  // so each must appear once.
  // In a process-shared pool they are Cached|owner (or Taken|owner: see
  // guarded_push()) and become Free here, inside the gap.
  Status give(const uint32_t* handles, size_t n) {
    if (n == 0) return Status::ok;
    for (size_t i = 0; i < n; ++i)
      if (handles[i] >= capacity_) return Status::out_of_range;
    return guarded_push(handles, n, [&] {
      // relaxed: this view owns them (its cache); the push's CAS publishes.
      if (process_)
        for (size_t i = 0; i < n; ++i) state(handles[i]).store(kStateFree, std::memory_order_relaxed);
      link(handles, n);
      return Status::ok;
    });
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
  // A slot that a recovery holds frozen is left alone: the recovery reports
  // drain_needed when it lets go (see recover()).
  size_t drain(uint32_t* out, uint8_t* seen, bool* corrupt = nullptr) {
    size_t got = 0;
    Gap gap(gap_);
    for (uint32_t s = 0; s < slots_; ++s) {
      auto top = head(s);
      // seq_cst load and CAS: must not miss a push that missed the closed
      // flag (see push_list()); acquire makes the detached links and bytes
      // visible.
      uint64_t h = top.load(std::memory_order_seq_cst);
      while (index_of(h) < capacity_ && (h & kFrozenBit) == 0 &&
             !top.compare_exchange_weak(h, retag(h, kNone), std::memory_order_seq_cst, std::memory_order_seq_cst)) {}
      uint32_t i = (h & kFrozenBit) != 0 ? kNone : index_of(h);
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
    Gap gap(gap_);
    uint32_t s = this_slot();
    for (uint32_t i = 0; i < slots_; ++i) {
      uint32_t h;
      // seq_cst: the retry half of the pairing above (see push_list()).
      if (pop_list(s, &h, 1, std::memory_order_seq_cst) == 1) {
        mark(h, taken_);
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
  void wait_for_push(uint32_t seen) const {
    detail::wait_on(reinterpret_cast<uint32_t*>(meta_ + layout::wake), seen, process_);
  }

  // Wakes every thread blocked in wait_for_push(), as a push that finds
  // waiters does.
  void wake_waiters() {
    // release: a woken thread that reads the new value sees what preceded it.
    wake_word().fetch_add(1, std::memory_order_release);
    detail::wake_all(reinterpret_cast<uint32_t*>(meta_ + layout::wake), process_);
  }

  // Objects whose state word's kind is `kind` (checked mode; a racy count:
  // relaxed loads), for a process-shared pool's stats().
  uint32_t count_kind(uint32_t kind) const {
    uint32_t n = 0;
    if (state_ == nullptr) return 0;
    for (uint32_t i = 0; i < capacity_; ++i) n += (state(i).load(std::memory_order_relaxed) & kKindMask) == kind;
    return n;
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
      if (room.compare_exchange_weak(r, r - take, std::memory_order_relaxed, std::memory_order_relaxed)) {
        // A process-shared pool: the process's share, which recover() gives
        // back if it dies (relaxed: a counter, as above). A death between the
        // two read-modify-writes loses `take` of budget (caches may then keep
        // fewer objects), never objects.
        if (budget_ != nullptr) atomic_ref<uint32_t>(*budget_).fetch_add(take, std::memory_order_relaxed);
        return take;
      }
    }
  }
  // The room left (relaxed: a hint; see reserve_cache()).
  uint32_t cache_room() const { return cache_room_word().load(std::memory_order_relaxed); }
  void release_cache(uint32_t n) {
    if (n == 0) return;
    // relaxed (both): as in reserve_cache(); the share first, so that a death
    // between the two loses budget rather than counting it twice.
    if (budget_ != nullptr) atomic_ref<uint32_t>(*budget_).fetch_sub(n, std::memory_order_relaxed);
    cache_room_word().fetch_add(n, std::memory_order_relaxed);
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
  // In a process-shared pool, Taken by any owner (an object may be sent by a
  // process it was handed to, as it may be pushed by one: see unmark()).
  bool mark_in_flight(uint32_t h) {
    if (!process_) return transition(h, kStateTaken, kStateInFlight);
    if (state_ == nullptr || h >= capacity_) return state_ == nullptr;
    // relaxed: see above; the second try is for an object another owner took.
    uint32_t expect = taken_;
    if (state(h).compare_exchange_strong(expect, kStateInFlight, std::memory_order_relaxed)) return true;
    return (expect & kKindMask) == kStateTaken &&
           state(h).compare_exchange_strong(expect, kStateInFlight, std::memory_order_relaxed);
  }
  // Undoes mark_in_flight() for an object that was not sent after all: the
  // caller still owns it, and nobody else can reach it.
  void unmark_in_flight(uint32_t h) {
    // relaxed: as above; the object is in no channel and no list.
    if (state_ != nullptr && h < capacity_) state(h).store(taken_, std::memory_order_relaxed);
  }
  bool take_in_flight(uint32_t h) { return transition(h, kStateInFlight, taken_); }
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
    state(h).store(taken_, std::memory_order_relaxed);
    return true;
  }
  // A closed pool takes an object back from a channel: InFlight -> Free,
  // `zero(h)`, then linked like a push. ok or drain_needed; double_push (and
  // nothing changes) when the object is not in flight, which only forged
  // channel memory can make happen.
  template <class Zero>
  Status return_in_flight(uint32_t h, Zero&& zero) {
    if (h >= capacity_) return Status::out_of_range;
    bool first = true;  // a retry after a frozen slot finds it Taken by this view (see guarded_push())
    return guarded_push(&h, 1, [&] {
      if (!(first ? transition(h, kStateInFlight, kStateFree) : transition(h, taken_, kStateFree)))
        return Status::double_push;
      first = false;
      clear(h);
      zero(h);
      return Status::ok;
    });
  }

  // State word of an object (checked mode), for tests and diagnostics.
  uint32_t state_of(uint32_t handle) const {
    if (state_ == nullptr || handle >= capacity_) return kStateFree;
    // relaxed: a diagnostic snapshot.
    return state(handle).load(std::memory_order_relaxed);
  }

  // Process-shared pools: takes back every object that dead owners held (see
  // the file comment). One recovery at a time: the caller holds the
  // segment's recovery lock. `dead(owner)`: whether an owner (1..kMaxOwners)
  // is a process that has died. `quiesce()`: returns true once no view of a
  // live process is inside a gap that it entered before this call froze the
  // heads (see Gap), false to give up (a view that does not move on, or the
  // caller stopping): the heads then thaw with nothing taken back, and
  // `aborted` says so (the caller tries again later). Objects come back zeroed in a zero pool, onto slot 0.
  // `objects`: how many came back; `drain`: the pool is closed, so its
  // closer must drain again (slots it skipped while frozen included).
  struct Recovered {
    size_t objects = 0;
    size_t mid = 0;        // of those, from the middle of an operation (a list operation or a channel call)
    size_t in_flight = 0;  // of those, InFlight in no channel: from the middle of a channel call
    bool drain = false;
    bool aborted = false;
  };
  //
  // `channels(in_channel)` (process-shared channels, see the binding's
  // segment.cc): called once the views are quiet and the pool's channels
  // are frozen, it repairs the channels' cells that dead views left half
  // done and sets in `in_channel` (a bitmap, one bit per object) the bit of
  // every object a published cell holds. Every other InFlight object was in
  // a dead view's hands (a send cut before its publish, a receive cut after
  // its take) and comes back.
  template <class Dead, class Quiesce, class Channels>
  Recovered recover(Dead&& dead, Quiesce&& quiesce, Channels&& channels) {
    Recovered r;
    if (!process_ || state_ == nullptr) return r;
    // 1. Freeze every head. seq_cst: pairs with Gap's seq_cst store and the
    // seq_cst head accesses that follow it (see guarded_push() and
    // pop_order()); acquire: the links of the list the head holds.
    for (uint32_t s = 0; s < slots_; ++s) {
      auto top = head(s);
      uint64_t h = top.load(std::memory_order_seq_cst);
      while ((h & kFrozenBit) == 0 &&
             !top.compare_exchange_weak(h, h | kFrozenBit, std::memory_order_seq_cst, std::memory_order_seq_cst)) {}
    }
    // 2. Every live view's gap that saw the heads unfrozen ends (the views
    // publish its states with release; quiesce() acquires them). Without
    // that, a Free object off the lists may be a live view's: take nothing.
    r.aborted = !quiesce();
    // 3. What the lists hold: nobody changes a frozen list, and no listed
    // object's link changes while it is listed.
    std::vector<uint8_t> listed((size_t(capacity_) + 7) / 8, 0);
    for (uint32_t s = 0; s < slots_ && !r.aborted; ++s) {
      // relaxed: frozen above by this thread (step 1 acquired the links).
      uint32_t i = index_of(head(s).load(std::memory_order_relaxed));
      for (uint32_t steps = 0; i < capacity_ && steps < capacity_; ++steps) {
        if (listed[i >> 3] & (1u << (i & 7))) break;  // a cycle: forged links
        listed[i >> 3] = uint8_t(listed[i >> 3] | (1u << (i & 7)));
        // relaxed: as above.
        i = next(i).load(std::memory_order_relaxed);
      }
    }
    // 3b. What the channels hold (false: a channel could not be looked at,
    // so no InFlight object comes back this time).
    std::vector<uint8_t> in_channel;
    if (!r.aborted) {
      in_channel.assign(listed.size(), 0);
      if (!channels(in_channel)) in_channel.clear();
    }
    // 4. What nobody alive holds: Free off every list (a dead view's gap,
    // since no live view is in one), Taken or Cached by a dead owner, or
    // InFlight in no channel.
    uint32_t first = kNone, last = kNone;
    for (uint32_t i = 0; i < capacity_ && !r.aborted; ++i) {
      if (listed[i >> 3] & (1u << (i & 7))) continue;
      // acquire: what the last owner wrote, before this view zeroes it.
      uint32_t st = state(i).load(std::memory_order_acquire);
      const uint32_t kind = st & kKindMask, owner = st >> kOwnerShift;
      bool take = st == kStateFree;
      if (st == kStateInFlight && !in_channel.empty() && (in_channel[i >> 3] & (1u << (i & 7))) == 0) {
        // No live view is inside a channel call (the caller's quiesce), so
        // nobody races for it but a forger. acquire: as above.
        take = state(i).compare_exchange_strong(st, kStateFree, std::memory_order_acquire, std::memory_order_relaxed);
        r.in_flight += take ? 1 : 0;
        st = kStateFree;  // counted as mid-operation below
      }
      if ((kind == kStateTaken || kind == kStateCached) && owner >= 1 && owner <= kMaxOwners && dead(owner)) {
        // A live view may race for a dead owner's Taken object (pushed by a
        // process it was handed to): one CAS wins. acquire: as above.
        take = state(i).compare_exchange_strong(st, kStateFree, std::memory_order_acquire, std::memory_order_relaxed);
      }
      if (!take) continue;
      if (st == kStateFree) ++r.mid;
      if (zero_) zero_object(i);
      // relaxed: private until the thaw's release CAS below.
      next(i).store(first, std::memory_order_relaxed);
      if (last == kNone) last = i;
      first = i;
      ++r.objects;
    }
    // 5. Thaw, the objects taken back onto slot 0. seq_cst: release
    // publishes their links and bytes, and orders the CAS before the
    // attention load below (as in push_list()).
    for (uint32_t s = 0; s < slots_; ++s) {
      auto top = head(s);
      // relaxed: only a guess; the CAS validates it.
      uint64_t h = top.load(std::memory_order_relaxed);
      for (;;) {
        uint32_t to = index_of(h);
        if (s == 0 && first != kNone) {
          // relaxed: published by the CAS.
          next(last).store(to < capacity_ ? to : kNone, std::memory_order_relaxed);
          to = first;
        }
        if (top.compare_exchange_weak(h, retag(h, to), std::memory_order_seq_cst, std::memory_order_relaxed)) break;
      }
    }
    // seq_cst: as push_list()'s.
    count(Counter::recovered, r.objects);
    count(Counter::recovered_mid, r.mid);
    const uint32_t a = attention().load(std::memory_order_seq_cst);
    r.drain = (a & kClosedBit) != 0;
    if (!r.drain && a >= kWaiterUnit) wake_waiters();
    return r;
  }

 private:
  static constexpr unsigned kIndexBits = 25;
  static constexpr uint64_t kIndexMask = (uint64_t(1) << kIndexBits) - 1;
  static constexpr uint64_t kFrozenBit = uint64_t(1) << 63;
  static constexpr uint64_t kTagMask = ~kIndexMask & ~kFrozenBit;

  static uint32_t index_of(uint64_t head) { return uint32_t(head & kIndexMask); }
  // New head value naming `index`, the tag bumped (wraps in 38 bits), not frozen.
  static uint64_t retag(uint64_t old, uint32_t index) {
    return (((old & kTagMask) + (uint64_t(1) << kIndexBits)) & kTagMask) | index;
  }

  // A view's gap (process-shared pools; a no-op for a null word): the word
  // is odd while the view is inside a list operation, when the objects it
  // moves may be Free and on no list. Only this view's thread writes it.
  static void gap_enter(uint32_t* w) {
    if (w == nullptr) return;
    // relaxed load: only this thread writes the word. seq_cst store: comes
    // before this operation's seq_cst head accesses in the single total
    // order, so a recover() that froze the heads and then reads the word
    // sees it odd (and waits), or this operation sees the heads frozen.
    const uint32_t v = atomic_ref<uint32_t>(*w).load(std::memory_order_relaxed);
    atomic_ref<uint32_t>(*w).store(v | 1u, std::memory_order_seq_cst);
  }
  static void gap_exit(uint32_t* w) {
    if (w == nullptr) return;
    // relaxed load: as above. release: recover(), which acquires the word,
    // sees the states this operation wrote.
    const uint32_t v = atomic_ref<uint32_t>(*w).load(std::memory_order_relaxed);
    atomic_ref<uint32_t>(*w).store((v | 1u) + 1u, std::memory_order_release);
  }
  struct Gap {
    explicit Gap(uint32_t* w) : w_(w) { gap_enter(w_); }
    ~Gap() { gap_exit(w_); }
    Gap(const Gap&) = delete;
    Gap& operator=(const Gap&) = delete;
    uint32_t* w_;
  };

  // A pop's order: seq_cst in a process-shared pool (its CAS pairs with
  // recover()'s freeze: see gap_enter()); acquire otherwise.
  std::memory_order pop_order() const { return process_ ? std::memory_order_seq_cst : OBJPOOL_TEST_POP_ORDER; }

  // Chains hs[0..n) privately (hs[n-1]'s link is written by push_list()).
  // relaxed: nobody can reach these objects until push_list's release CAS.
  void link(const uint32_t* hs, size_t n) {
    for (size_t i = 0; i + 1 < n; ++i) next(hs[i]).store(hs[i + 1], std::memory_order_relaxed);
  }

  // Pushes the chain hs[0] .. hs[n-1] onto this CPU's slot after `prep()`,
  // which checks and moves their states to Free, zeroes and links them (not
  // ok: refused, nothing changed). In a process-shared pool all of it runs
  // inside the gap, after the slot was seen not frozen; a recovery that
  // freezes it meanwhile makes this view take the objects back as Taken by
  // itself, leave the gap, wait for the thaw and start again (prep() must
  // accept its own Taken objects for that).
  template <class Prep>
  Status guarded_push(const uint32_t* hs, size_t n, Prep&& prep) {
    if (gap_ == nullptr) {
      const Status st = prep();
      return st != Status::ok ? st : push_list(this_slot(), hs[0], hs[n - 1]);
    }
    for (;;) {
      gap_enter(gap_);
      const uint32_t s = this_slot();
      // seq_cst: the other half of gap_enter()'s pairing.
      if ((head(s).load(std::memory_order_seq_cst) & kFrozenBit) == 0) {
        Status st = prep();
        if (st == Status::ok) st = push_list(s, hs[0], hs[n - 1]);
        if (st != Status::frozen) {
          gap_exit(gap_);
          return st;
        }
        // relaxed: still this view's; recover() reads them after the release in gap_exit().
        for (size_t i = 0; i < n; ++i) state(hs[i]).store(taken_, std::memory_order_relaxed);
      }
      gap_exit(gap_);
      // acquire: nothing is read through it; a plain wait for the thaw.
      while ((head(s).load(std::memory_order_acquire) & kFrozenBit) != 0) detail::pause_us(50);
    }
  }

  void bind(uint8_t* meta, uint8_t* arena, const Config& c) {
    meta_ = meta;
    arena_ = c.external ? nullptr : arena;
    capacity_ = c.capacity;
    slots_ = c.slots;
    object_size_ = c.object_size;
    stride_ = c.stride;
    zero_ = c.zero;
    process_ = c.process;
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

  // Taken -> Free, once. False if the object is not out. In a
  // process-shared pool, Taken by any owner: an object may be pushed by a
  // process it was handed to.
  bool unmark(uint32_t h) {
    if (state_ == nullptr) return true;
    uint32_t expect = taken_;
    // relaxed (both): the exchange only has to be atomic (one of two racing
    // pushes wins); the head CAS that follows publishes the object with release.
    if (state(h).compare_exchange_strong(expect, kStateFree, std::memory_order_relaxed)) return true;
    if (!process_ || (expect & kKindMask) != kStateTaken) return false;
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
      if (process_ && (h & kFrozenBit) != 0) return 0;  // a recovery holds the slot: empty for now
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
      if (process_ && (h & kFrozenBit) != 0) return Status::frozen;  // see guarded_push()
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
  bool process_ = false;
  uint32_t taken_ = kStateTaken;  // what a pop writes (with this view's owner in a process-shared pool)
  uint32_t cached_ = kStateFree;  // what a cache refill writes (process-shared pools only)
  uint32_t* gap_ = nullptr;       // see Gap
  uint32_t* budget_ = nullptr;    // this process's share of the cache budget (see reserve_cache())
};

}  // namespace objpool

#endif  // OBJPOOL_POOL_HPP
