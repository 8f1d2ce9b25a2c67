// channel.hpp: objpool::Channel, handle channels: a bounded queue of a
// pool's handles in shared memory, and its layout (chan_layout). Part of the
// core (see objpool.hpp): header-only, no Node headers.
#ifndef OBJPOOL_CHANNEL_HPP
#define OBJPOOL_CHANNEL_HPP

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "atomic_ref.hpp"
#include "layout.hpp"
#include "platform.hpp"
#include "pool.hpp"

// Test-only: runs in a channel send between its first look at the closed
// flag and its claim, so that test/addon/testing.cc can close the channel
// there (the race the second look after the claim is for). Empty elsewhere.
#ifndef OBJPOOL_TEST_CHAN_BEFORE_CLAIM
#define OBJPOOL_TEST_CHAN_BEFORE_CLAIM()
#endif
// Test-only: runs at named steps of an MPMC send or receive (ChanStep), so
// that test/native/recover_channels.cc can kill a process exactly there and
// check what a recovery makes of the cells and objects it left. Empty elsewhere.
#ifndef OBJPOOL_TEST_CHAN_STEP
#define OBJPOOL_TEST_CHAN_STEP(step) ((void)0)
#endif
// Test-only: the order of the ring receiver's load of the enqueue position
// (test/native/run.js weakens it, and ThreadSanitizer must report a race).
#ifndef OBJPOOL_TEST_RING_ORDER
#define OBJPOOL_TEST_RING_ORDER std::memory_order_acquire
#endif

namespace objpool {

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
//   the channel belongs to); 12 the mode, 13 the sender role, 14 the
//   receiver role, 16 the role counter (see "The ring" below);
//   32 the enqueue position (own line; the ring's at 40), 64 the dequeue
//   position (own line; the ring's at 72), 96 the wake word (own line:
//   bumped by sends that find waiters, and by closes; waiting threads block
//   on it);
//   128.. the cells: {seq, value} per cell. Cell i starts with seq = i.
//   128 + 2 * capacity.. the ring: one value word per cell.
// Positions run over all of u32 and wrap; differences are read as int32.
//
// The ring. While one endpoint sends and one receives (the usual pipeline
// stage), a channel is a single-producer/single-consumer ring (Lamport's,
// with the positions in their own lines): a send writes its value and
// publishes it with one compare-exchange of the ring's enqueue position; a
// receive reads the enqueue position once for every value it shows, and
// frees cells with one compare-exchange of its dequeue position. No seq
// words, no claims. Each endpoint (a HandleChannel instance, or a Channel
// copy from endpoint()) has a role token; the first to send takes the
// sender role, the first to receive the receiver role (a CAS from 0). An
// endpoint that finds a role taken by another, a call without a role (the
// C++ API's default, give_back(), close()), promotes the channel, once and
// for good, to the MPMC queue: promote() sets the mode to Promoting, sets
// the Frozen bit in both ring positions (from then on the role holders'
// CASes fail: they see the bit and take the MPMC path), converts what the
// ring holds into full MPMC cells at the same positions (the others free),
// sets the MPMC positions, and publishes all that with a release store of
// the mode Mpmc. A stale write into the ring after that lands in words the
// MPMC queue never reads. Promotion is one native call: a thread cannot be
// stopped inside it.
//
// The ring's waiter bit (kRingWait in its enqueue position): a waiter sets
// it after counting itself in the attention word, and looks again; a ring
// send's CAS expects the bit clear, so a send that follows the bit fails
// its first CAS, publishes with a second one and wakes (after_send()); one
// that preceded it is seen by the waiter's look. The last waiter to leave
// clears the bit, then reads the count again: a waiter that came in
// meanwhile may have had its bit cleared, so it sets the bit again and
// wakes everyone (a spurious wake-up, never a lost one).
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
inline constexpr size_t mode = 12;
inline constexpr size_t sender_role = 13;
inline constexpr size_t receiver_role = 14;
inline constexpr size_t role_seq = 16;
inline constexpr size_t enqueue = 32;  // 128 bytes in: its own line
inline constexpr size_t ring_enqueue = 40;
inline constexpr size_t dequeue = 64;
inline constexpr size_t ring_dequeue = 72;
inline constexpr size_t wake = 96;
inline constexpr size_t cells = 128;
}  // namespace chan_layout

// The steps OBJPOOL_TEST_CHAN_STEP names.
enum class ChanStep { send_marked, send_claimed, send_published_one, receive_claimed, receive_taken };

inline constexpr uint32_t kChanMagic = 0x4e48434fu;  // "OCHN" in little-endian bytes
inline constexpr uint32_t kChanVersion = 3;
inline constexpr uint32_t kChanMaxCapacity = 1u << 20;
// At least two cells: with one, "full at position p" (seq p + 1) and "free
// at position p + 1" (seq p + 1) are the same value (Vyukov's queue needs two).
inline constexpr uint32_t kChanMinCapacity = 2;
inline constexpr uint32_t kChanClosed = 1;      // attention: no more sends
inline constexpr uint32_t kChanPoolClosed = 2;  // attention: the pool closed; objects sent go back to it
inline constexpr uint32_t kChanWaiterUnit = 4;  // attention: receivers waiting, counted in fours
inline constexpr uint32_t kHole = 0xffffffffu;
// The mode word: the ring (the format's 0), a promotion under way, the MPMC queue.
inline constexpr uint32_t kChanModeRing = 0;
inline constexpr uint32_t kChanModePromoting = 1;
inline constexpr uint32_t kChanModeMpmc = 2;
// The ring's positions: 28 bits of position (a lap of the largest channel
// fits many times), and flags above them.
inline constexpr uint32_t kRingPos = (1u << 28) - 1;
inline constexpr uint32_t kRingWait = 1u << 30;    // enqueue position: receivers wait
inline constexpr uint32_t kRingFrozen = 1u << 31;  // both positions: promoted, the ring is not used any more

// Bytes of memory a channel of `capacity` cells (a power of two) needs.
inline constexpr uint64_t channel_bytes_for(uint32_t capacity) {
  return (chan_layout::cells + 3 * uint64_t(capacity)) * 4;
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
  // `mpmc`: the MPMC queue from the start, never the ring (a channel in
  // memory that several processes share: see process_shared()).
  static Status format(void* mem, size_t len, uint32_t capacity, bool mpmc = false) {
    if (capacity < kChanMinCapacity || capacity > kChanMaxCapacity || (capacity & (capacity - 1)) != 0)
      return Status::bad_layout;
    if ((reinterpret_cast<uintptr_t>(mem) & 3u) != 0 || len < channel_bytes_for(capacity)) return Status::bad_layout;
    auto* w = static_cast<uint32_t*>(mem);
    std::memset(w, 0, size_t(channel_bytes_for(capacity)));
    w[chan_layout::magic] = kChanMagic;
    w[chan_layout::version] = kChanVersion;
    w[chan_layout::capacity] = capacity;
    if (mpmc) w[chan_layout::mode] = kChanModeMpmc;
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
  // The channel's memory is mapped by several processes (a process-shared
  // pool's channel): its waits and wakes use shared futexes.
  void set_process_shared() { shared_ = true; }
  bool process_shared() const { return shared_; }

  // A copy of this channel for one endpoint (one thread's sends and
  // receives, in turn): with a role token of its own, it sends and receives
  // through the ring while it is the only sender and receiver (see "The
  // ring"). A Channel without a role (the default) always promotes the
  // channel to the MPMC queue: copies shared between threads stay correct.
  Channel endpoint() {
    Channel c = *this;
    c.role_ = new_role();
    return c;
  }
  uint32_t role() const { return role_; }
  // A fresh role token, never 0, for an endpoint (lib/channel.ts's instances
  // draw theirs here too).
  uint32_t new_role() {
    uint32_t t;
    // relaxed: only the values have to differ.
    do t = word(chan_layout::role_seq).fetch_add(1, std::memory_order_relaxed) + 1;
    while (t == 0);
    return t;
  }
  // Whether the channel is (for good) the MPMC queue.
  bool promoted() const {
    // acquire: as in promote().
    return word(chan_layout::mode).load(std::memory_order_acquire) == kChanModeMpmc;
  }

  // Makes the channel the MPMC queue (see "The ring"); true once it is.
  // False only when another promotion does not finish within about a
  // second, which only forged memory does (a mode word stuck at
  // Promoting): the caller then reports the channel full or empty.
  bool promote() {
    auto m = word(chan_layout::mode);
    // acquire: sees the conversion (the cells and positions) that the
    // promoter's release store of Mpmc follows.
    uint32_t v = m.load(std::memory_order_acquire);
    if (v == kChanModeMpmc) return true;
    // acquire on success: nothing of the conversion may move before it;
    // relaxed on failure (re-read below).
    if (v == kChanModeRing &&
        m.compare_exchange_strong(v, kChanModePromoting, std::memory_order_acquire, std::memory_order_relaxed)) {
      convert();
      // seq_cst (a release, for promote()'s acquire loads, and the first
      // half of a Dekker pairing): then the waiter count, seq_cst. A waiter
      // counts itself (seq_cst RMW, fence), then looks (promote()'s load of
      // the mode): it sees Mpmc, or this load sees it and wakes it. So one
      // that found the promotion under way (a ring frozen, a closed channel
      // not yet drained) is woken to look again.
      m.store(kChanModeMpmc, std::memory_order_seq_cst);
      if (attention().load(std::memory_order_seq_cst) >= kChanWaiterUnit) wake_waiters();
      return true;
    }
    for (unsigned i = 0; i < 20000; ++i) {
      // acquire: as above.
      v = m.load(std::memory_order_acquire);
      if (v == kChanModeMpmc) return true;
      if (v != kChanModePromoting) return false;  // forged
      if (i < 100)
        std::this_thread::yield();
      else
        detail::pause_us(50);
    }
    return false;
  }

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
    if (!promoted()) {
      // relaxed: a count, as below.
      const uint32_t n = (word(chan_layout::ring_enqueue).load(std::memory_order_relaxed) -
                          word(chan_layout::ring_dequeue).load(std::memory_order_relaxed)) &
                         kRingPos;
      return n > capacity() ? capacity() : n;
    }
    const uint32_t d = word(chan_layout::dequeue).load(std::memory_order_relaxed);
    const uint32_t e = word(chan_layout::enqueue).load(std::memory_order_relaxed);
    const int32_t n = int32_t(e - d);
    return n < 0 ? 0 : (uint32_t(n) > capacity() ? capacity() : uint32_t(n));
  }
  // Closed, and every claimed cell taken: nothing more can come out. (A
  // closed channel is the MPMC queue: close() promotes it first.)
  bool drained() const {
    // seq_cst: after a waiter's RMW of the attention word (see the pairings).
    if ((attention().load(std::memory_order_seq_cst) & kChanClosed) == 0) return false;
    // A promotion still under way is not drained: its conversion may bring
    // handles (promote() wakes the waiters when it is done).
    if (!promoted()) return false;
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
    if (max == 0) return 0;
    if (role_ != 0 && claim_role(chan_layout::receiver_role)) {
      bool frozen = false;
      const size_t got = ring_receive(pool, out, max, frozen);
      if (!frozen) return got;
    }
    if (!promote()) return 0;
    size_t got = 0, claimed = 0;
    // At most a lap of cells (holes included), as in give_back().
    while (got < max && claimed < capacity()) {
      uint32_t p;
      const size_t k = claim(chan_layout::dequeue, 1, std::min(max - got, size_t(capacity()) - claimed), p);
      if (k == 0) break;
      claimed += k;
      OBJPOOL_TEST_CHAN_STEP(ChanStep::receive_claimed);
      for (size_t i = 0; i < k; ++i) {
        const uint32_t h = take(p + uint32_t(i));
        OBJPOOL_TEST_CHAN_STEP(ChanStep::receive_taken);
        if (h < pool.capacity() && pool.receive_in_flight(h)) out[got++] = h;
      }
    }
    return got;
  }

  // No more sends; what is in the channel can still be received. Wakes
  // waiting receivers (they see it closed once it is drained).
  void close() {
    // A closed channel is the MPMC queue: its sends look at the flag after
    // their claim. Another thread's promotion is waited for up to about 10
    // s (a mode word stuck at Promoting is forged memory).
    for (int i = 0; i < 10 && !promote(); ++i) {}
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
    // As in close(); give_back() takes from the MPMC cells.
    for (int i = 0; i < 10 && !promote(); ++i) {}
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

  // finish_send() and finish_receive() for a call on the ring (lib/channel.ts
  // says which in the view's memory). A send is published iff the ring's
  // enqueue position moved past `pos` (only its sender, now stopped, moves
  // it; a freeze keeps the position): if not, an object it had already put
  // in flight goes back to the pool. A receive took its cell iff the
  // dequeue position is `pos + 1`: then an object still in flight goes back
  // to the pool. True if that pool is closed (drain_needed).
  template <class Zero>
  bool finish_ring_send(Pool& pool, uint32_t pos, uint32_t h, Zero&& zero) {
    return ring_give_back(pool, chan_layout::ring_enqueue, pos, h, zero);
  }
  template <class Zero>
  bool finish_ring_receive(Pool& pool, uint32_t pos, uint32_t h, Zero&& zero) {
    return ring_give_back(pool, chan_layout::ring_dequeue, pos + 1, h, zero);
  }

  // Process-shared channels: the cells a dead process left half done, for
  // Pool::recover(). The caller has stopped every live channel call (the
  // channels are frozen and no live view is inside a call), so only dead
  // views' calls are unfinished, and nothing moves meanwhile:
  //   - a cell claimed by a send and never published (seq == its position,
  //     between the dequeue and enqueue positions) is published as a hole
  //     (its object, if it went in flight, is in no cell: it comes back);
  //   - a cell a receive claimed and did not empty (seq == position + 1,
  //     behind the dequeue position) is emptied (its object comes back);
  //   - every object a published cell holds gets its bit in `in_channel`
  //     (one bit per object of a pool of `objects`).
  // Forged positions (more than a lap apart) are clamped to one lap; values
  // are checked against `objects`. Returns how many cells were repaired.
  uint32_t recover_cells(uint32_t objects, std::vector<uint8_t>& in_channel) {
    // acquire (all loads below): what the dead and the quieted views wrote
    // (their last release stores, and the caller's acquire of their gaps).
    const uint32_t d = word(chan_layout::dequeue).load(std::memory_order_acquire);
    uint32_t e = word(chan_layout::enqueue).load(std::memory_order_acquire);
    if (uint32_t(e - d) > capacity()) e = d + capacity();  // forged
    uint32_t repaired = 0;
    for (uint32_t p = d - capacity(); p != d; ++p) {
      if (seq(p).load(std::memory_order_acquire) != p + 1) continue;
      take(p);  // claimed by a dead receive, not emptied
      ++repaired;
    }
    for (uint32_t p = d; p != e; ++p) {
      const uint32_t sq = seq(p).load(std::memory_order_acquire);
      if (sq == p) {
        put(p, kHole);  // claimed by a dead send, not published
        ++repaired;
      } else if (sq == p + 1) {
        // relaxed: ordered after the acquire load of seq.
        const uint32_t h = value(p).load(std::memory_order_relaxed);
        if (h < objects && (size_t(h) >> 3) < in_channel.size())
          in_channel[h >> 3] = uint8_t(in_channel[h >> 3] | (1u << (h & 7)));
      }
    }
    return repaired;
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
  void wait_for_send(uint32_t seen) const { detail::wait_on(words_ + chan_layout::wake, seen, shared_); }
  // Wakes every thread blocked in wait_for_send().
  void wake_waiters() {
    // release: a woken thread that reads the new value sees what preceded it.
    word(chan_layout::wake).fetch_add(1, std::memory_order_release);
    detail::wake_all(words_ + chan_layout::wake, shared_);
  }

  // Adds (or removes) a waiting receiver. A waiter adds itself, then looks
  // at the cells again before it sleeps (the waiter pairing above).
  void add_waiter() {
    // seq_cst, then a fence: the waiter pairing above.
    attention().fetch_add(kChanWaiterUnit, std::memory_order_seq_cst);
    // seq_cst: the ring's waiter bit, after the count (see "The ring"): a
    // ring send whose CAS sees the bit then sees the count in after_send().
    word(chan_layout::ring_enqueue).fetch_or(kRingWait, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  void remove_waiter() {
    // seq_cst: the count, then the bit (see "The ring").
    const uint32_t before = attention().fetch_sub(kChanWaiterUnit, std::memory_order_seq_cst);
    if (before / kChanWaiterUnit != 1) return;  // others still wait (or forged)
    // seq_cst (all three): the last waiter clears the bit, then reads the
    // count: one that counted itself meanwhile may have lost its bit here,
    // so the bit is set again and everyone woken.
    word(chan_layout::ring_enqueue).fetch_and(~kRingWait, std::memory_order_seq_cst);
    if (attention().load(std::memory_order_seq_cst) >= kChanWaiterUnit) {
      word(chan_layout::ring_enqueue).fetch_or(kRingWait, std::memory_order_seq_cst);
      wake_waiters();
    }
  }

 private:
  atomic_ref<uint32_t> word(size_t i) const { return atomic_ref<uint32_t>(words_[i]); }
  atomic_ref<uint32_t> attention() const { return word(chan_layout::attention); }
  atomic_ref<uint32_t> seq(uint32_t pos) const { return word(chan_layout::cells + 2 * size_t(pos & mask_)); }
  atomic_ref<uint32_t> value(uint32_t pos) const { return word(chan_layout::cells + 2 * size_t(pos & mask_) + 1); }
  atomic_ref<uint32_t> ring(uint32_t pos) const {
    return word(chan_layout::cells + 2 * size_t(mask_ + 1) + size_t(pos & mask_));
  }

  // finish_ring_send()/finish_ring_receive(): when the ring position
  // `which` is at `pos`, object h, if still in flight, goes back to the pool.
  template <class Zero>
  bool ring_give_back(Pool& pool, size_t which, uint32_t pos, uint32_t h, Zero& zero) {
    // relaxed: only the stopped thread moved this position (its stop orders
    // its writes before this teardown); a freeze keeps the position bits.
    if ((word(which).load(std::memory_order_relaxed) & kRingPos) != (pos & kRingPos)) return false;
    if (!pool.checked() || h >= pool.capacity() || pool.state_of(h) != kStateInFlight) return false;
    return pool.return_in_flight(h, zero) == Status::drain_needed;
  }

  // Takes (or finds it holds) the sender or receiver role for this
  // endpoint, while the channel is the ring.
  bool claim_role(size_t which) {
    // relaxed: a hint; the ring's CASes find a promotion (the Frozen bit).
    if (word(chan_layout::mode).load(std::memory_order_relaxed) != kChanModeRing) return false;
    uint32_t holder = 0;
    // relaxed: the role word only says who may use the ring; the ring's
    // positions carry the data.
    return word(which).compare_exchange_strong(holder, role_, std::memory_order_relaxed, std::memory_order_relaxed) ||
           holder == role_;
  }

  // promote(): freezes the ring and rewrites its content as MPMC cells.
  void convert() {
    // acq_rel (both): the Frozen bit makes the role holders' next CAS fail;
    // acquire sees the values the ring's sender published (its release CAS)
    // and the receiver's reads before it freed cells.
    const uint32_t e = word(chan_layout::ring_enqueue).fetch_or(kRingFrozen, std::memory_order_acq_rel) & kRingPos;
    const uint32_t d = word(chan_layout::ring_dequeue).fetch_or(kRingFrozen, std::memory_order_acq_rel) & kRingPos;
    uint32_t n = (e - d) & kRingPos;
    if (n > capacity()) n = 0;  // forged positions: their content is dropped
    // relaxed (all): published by promote()'s release store of the mode.
    // Cell of position d + i: full (seq = position + 1) for what the ring
    // holds, free for its position (seq = position) after that.
    for (uint32_t i = 0; i <= mask_; ++i) {
      const uint32_t p = d + i;
      if (i < n) {
        value(p).store(ring(p).load(std::memory_order_relaxed), std::memory_order_relaxed);
        seq(p).store(p + 1, std::memory_order_relaxed);
      } else {
        seq(p).store(p, std::memory_order_relaxed);
      }
    }
    word(chan_layout::dequeue).store(d, std::memory_order_relaxed);
    word(chan_layout::enqueue).store(d + n, std::memory_order_relaxed);
  }

  // A send of k marked handles on the ring: how many went (a prefix; 0 and
  // full when there is no room). `frozen` when the channel was promoted
  // first: nothing went, and the handles are still marked in flight.
  size_t ring_send(const uint32_t* hs, size_t n, bool& frozen, bool& woke) {
    auto enq = word(chan_layout::ring_enqueue);
    // relaxed: the position is this endpoint's own (only the sender role
    // moves it); the flags are checked by the CAS below.
    uint32_t v = enq.load(std::memory_order_relaxed);
    for (;;) {
      if ((v & kRingFrozen) != 0) return frozen = true, 0;
      const uint32_t e = v & kRingPos;
      // acquire: the receiver read the cells it freed before its release
      // CAS of this position; they are overwritten only after.
      const uint32_t used =
          (e - (word(chan_layout::ring_dequeue).load(std::memory_order_acquire) & kRingPos)) & kRingPos;
      const size_t k = used >= capacity() ? 0 : std::min(n, size_t(capacity() - used));
      if (k == 0) return 0;
      // relaxed: published by the release CAS below.
      for (size_t i = 0; i < k; ++i) ring(e + uint32_t(i)).store(hs[i], std::memory_order_relaxed);
      // release: the receiver's acquire load of the position sees the
      // values. seq_cst, in fact: the waiter bit's pairing is this word's
      // modification order (a waiter's RMW is before this CAS, which then
      // fails, or after it, and its look sees the values). relaxed on
      // failure: the loop looks at the new flags.
      if (enq.compare_exchange_strong(v, (v & kRingWait) | ((e + uint32_t(k)) & kRingPos), std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
        woke = (v & kRingWait) != 0;
        return k;
      }
    }
  }

  // A receive on the ring into `out`: how many (holes and forged values
  // skipped). `frozen` when the channel was promoted first (nothing taken).
  size_t ring_receive(Pool& pool, uint32_t* out, size_t max, bool& frozen) {
    auto deq = word(chan_layout::ring_dequeue);
    // relaxed: this endpoint's own position (only the receiver role moves it).
    uint32_t dv = deq.load(std::memory_order_relaxed);
    // acquire: sees the values the sender published before its CAS.
    const uint32_t ev = word(chan_layout::ring_enqueue).load(OBJPOOL_TEST_RING_ORDER);
    if (((dv | ev) & kRingFrozen) != 0) return frozen = true, 0;
    const uint32_t d = dv & kRingPos;
    uint32_t avail = (ev - d) & kRingPos;
    if (avail > capacity()) avail = 0;  // forged
    const size_t k = std::min(max, size_t(avail));
    if (k == 0) return 0;
    // relaxed: ordered after the acquire load above.
    for (size_t i = 0; i < k; ++i) out[i] = ring(d + uint32_t(i)).load(std::memory_order_relaxed);
    // release: the sender overwrites these cells only after its acquire
    // load sees this position. relaxed on failure: frozen (or forged).
    if (!deq.compare_exchange_strong(dv, (d + uint32_t(k)) & kRingPos, std::memory_order_release,
                                     std::memory_order_relaxed))
      return frozen = (dv & kRingFrozen) != 0, 0;
    size_t got = 0;
    for (size_t i = 0; i < k; ++i) {
      const uint32_t h = out[i];
      if (h < pool.capacity() && pool.receive_in_flight(h)) out[got++] = h;
    }
    return got;
  }

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
    if (role_ != 0 && claim_role(chan_layout::sender_role)) {
      bool frozen = false, woke = false;
      const size_t k = ring_send(hs, n, frozen, woke);
      if (!frozen) {
        for (size_t i = k; i < n; ++i) pool.unmark_in_flight(hs[i]);
        if (k == 0) return st = Status::full, 0;
        st = woke ? after_send(pool, zero, waiters) : Status::ok;
        return k;
      }
    }
    if (!promote()) {
      for (size_t i = 0; i < n; ++i) pool.unmark_in_flight(hs[i]);
      return st = Status::full, 0;
    }
    OBJPOOL_TEST_CHAN_BEFORE_CLAIM();
    OBJPOOL_TEST_CHAN_STEP(ChanStep::send_marked);
    uint32_t p = 0;
    const size_t k = claim(chan_layout::enqueue, 0, n, p);
    for (size_t i = k; i < n; ++i) pool.unmark_in_flight(hs[i]);
    if (k == 0) return st = Status::full, 0;
    OBJPOOL_TEST_CHAN_STEP(ChanStep::send_claimed);
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
    for (size_t i = 0; i < k; ++i) {
      put(p + uint32_t(i), hs[i]);
      if (i == 0) OBJPOOL_TEST_CHAN_STEP(ChanStep::send_published_one);
    }
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
  uint32_t role_ = 0;    // see endpoint()
  bool shared_ = false;  // see set_process_shared()
};

}  // namespace objpool

#endif  // OBJPOOL_CHANNEL_HPP
