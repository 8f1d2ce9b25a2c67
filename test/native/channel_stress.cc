// Stress test of objpool::Channel (native/objpool.hpp) with real threads:
// producers pop objects from one checked pool, stamp them and send them
// (singly and in batches of random size, again and again while the channel
// is full); consumers receive them (singly and in batches), check them and
// push them back. Small channels (2 to 8 cells), so that wrap-around and
// the full and empty edges are met all the time.
//
// What is checked, on every object received:
//   - it was in the channel: a ghost word per object, moved by exchange
//     (a producer's mark -> "in the channel" before the send -> the
//     consumer's mark), catches an object received twice, or received while
//     its sender still holds it;
//   - its state word is Taken (take_in_flight() moved it from InFlight);
//   - its bytes hold the stamp its producer wrote (plain writes and reads,
//     ordered only by the channel: under ThreadSanitizer a missing
//     release/acquire shows up as a data race);
//   - order: the values of one producer reach each consumer in the order
//     sent (strictly increasing sequence numbers). That much is guaranteed
//     with any number of consumers: a producer's sends take increasing
//     enqueue positions, and a consumer's receives take increasing dequeue
//     positions, so any one consumer sees any one producer's values in
//     position order. Across consumers nothing is promised (two consumers
//     can finish their receives in either order). With one consumer the
//     check is exact: sequence numbers 0, 1, 2, ... with no gap;
//   - exactly once: every sequence number of every producer is received
//     once, counted per (producer, number); at the end every object is back
//     in the pool, each once.
// Misuse that must be refused and change nothing: a handle twice in one
// batch, a handle that sits in another channel (InFlight), a handle out of
// range: double_push / out_of_range, 0 sent, the objects' states unchanged.
// A sender in the manner of lib/channel.ts (single sends over the raw words,
// seq_cst like Atomics) runs beside the native ones and publishes holes
// (a claimed cell whose send lost its ownership race), which receivers skip.
// It mirrors lib/channel.ts as it is (no closed check after its claim, no
// attention check after a hole: see test/model/channel.pml), so it runs
// only where nobody waits and nothing closes.
//
// Waiting: receivers that wait (the waiter pairing) must all be woken: a
// watchdog reports a run with no progress for 10 s (a receiver asleep with
// objects in the channel, or an object lost).
// Closing: (1) close() racing with sends: every send that returned ok is
// received by consumers that receive until receive() says closed (a send
// that saw the channel open must not land after a receiver was told the
// channel is closed and drained); (2) Pool::close() + close_for_pool()
// racing with sends, a polling and a waiting receiver (every third round
// after the channel's own close()): every object is released by the
// closer's drains exactly once, none is left in flight, and the waiting
// receiver wakes up.
// Edges, single-threaded: a one-cell channel must be refused or hold one
// handle only; refused sends, forged cells (a hole, a value out of range,
// an object not in flight), close() and close_for_pool(), bad formats.
//
// Usage: channel_stress [scale]   (scale multiplies the operation counts)

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "../../native/objpool.hpp"

#if defined(OBJPOOL_FORCE_ATOMIC_REF_SHIM)
static_assert(OBJPOOL_ATOMIC_REF_SHIM == 1, "the atomic_ref stand-in was asked for");
#endif

#if defined(__SANITIZE_THREAD__)
#define OBJPOOL_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define OBJPOOL_TEST_TSAN 1
#endif
#endif

namespace {

using objpool::Status;

#if defined(OBJPOOL_TEST_TSAN)
constexpr bool kThreadSanitizer = true;
#else
constexpr bool kThreadSanitizer = false;
#endif

int failures = 0;

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                   \
      std::fprintf(stderr, "\n");                                          \
      ++failures;                                                          \
    }                                                                      \
  } while (0)

using Clock = std::chrono::steady_clock;

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ull + 1) {}
  uint32_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return uint32_t(s >> 16);
  }
  uint32_t below(uint32_t n) { return next() % n; }
};

// Ghost owner word values (besides a thread's id, 1..).
constexpr uint32_t kGhostPool = 0;
constexpr uint32_t kGhostChannel = 0xffff;

// A checked pool with an arena (16-byte objects: stamp, ~stamp) and channels over it.
struct Rig {
  std::vector<uint64_t> meta;
  std::vector<uint64_t> arena;
  objpool::Pool pool;
  std::unique_ptr<std::atomic<uint32_t>[]> ghost;
  uint32_t capacity;

  explicit Rig(uint32_t cap, uint32_t slots = 2) : ghost(new std::atomic<uint32_t>[cap]), capacity(cap) {
    objpool::Config c;
    c.capacity = cap;
    c.slots = slots;
    c.object_size = c.stride = 16;
    c.align = 8;
    c.checked = true;
    const uint64_t bytes = objpool::meta_bytes_for(cap, slots, true);
    meta.resize((bytes + 7) / 8);
    arena.resize(size_t(cap) * 2);
    if (objpool::Pool::format(meta.data(), bytes, c) != Status::ok) std::abort();
    if (objpool::Pool::attach(meta.data(), bytes, arena.data(), arena.size() * 8, pool) != Status::ok) std::abort();
    for (uint32_t i = 0; i < cap; ++i) ghost[i].store(kGhostPool, std::memory_order_relaxed);
  }
  uint64_t* bytes(uint32_t h) { return static_cast<uint64_t*>(pool.object(h)); }
  // relaxed (the ghost words): detectors, not synchronizers.
  bool move_ghost(uint32_t h, uint32_t from, uint32_t to) {
    return ghost[h].compare_exchange_strong(from, to, std::memory_order_relaxed);
  }
};

struct Chan {
  std::vector<uint32_t> mem;
  objpool::Channel ch;
  explicit Chan(uint32_t cap) : mem(size_t(objpool::channel_bytes_for(cap) / 4)) {
    if (objpool::Channel::format(mem.data(), mem.size() * 4, cap) != Status::ok) std::abort();
    if (objpool::Channel::attach(mem.data(), mem.size() * 4, ch) != Status::ok) std::abort();
  }
  uint32_t* words() { return mem.data(); }
};

// lib/channel.ts's send over the channel's words (every position, seq and
// attention access seq_cst, as Atomics are; the value word written before
// the seq store). With `hole` the ownership check "loses its race" after
// the claim: a hole is published and nothing is sent, as send() does before
// it throws; that returns empty. Otherwise ok, full, closed (or double_push
// when the object was not the caller's: a hole too).
Status js_send(Chan& c, objpool::Pool& pool, uint32_t h, bool hole) {
  namespace L = objpool::chan_layout;
  uint32_t* w = c.words();
  const uint32_t mask = c.ch.capacity() - 1;
  auto at = [&](size_t i) { return objpool::atomic_ref<uint32_t>(w[i]); };
  constexpr auto sc = std::memory_order_seq_cst;
  if (at(L::attention).load(sc) & objpool::kChanClosed) return Status::closed;
  // The MPMC queue: an instance that is not the ring's sender promotes
  // first (lib/channel.ts, choosePath()).
  if (!c.ch.promote()) return Status::full;
  uint32_t pos = at(L::enqueue).load(sc);
  size_t i;
  for (;;) {
    i = L::cells + 2 * size_t(pos & mask);
    const int32_t d = int32_t(at(i).load(sc) - pos);
    if (d == 0) {
      uint32_t seen = pos;
      if (at(L::enqueue).compare_exchange_strong(seen, pos + 1, sc)) break;
      pos = seen;
    } else if (d < 0) {
      return Status::full;
    } else {
      pos = at(L::enqueue).load(sc);
    }
  }
  if (hole || !pool.mark_in_flight(h)) {
    at(i + 1).store(objpool::kHole, std::memory_order_relaxed);
    at(i).store(pos + 1, sc);
    return hole ? Status::empty : Status::double_push;
  }
  at(i + 1).store(h, std::memory_order_relaxed);  // a plain store in JS: published by the seq store
  at(i).store(pos + 1, sc);
  if (at(L::attention).load(sc) > objpool::kChanClosed) c.ch.after_send(pool);
  return Status::ok;
}

struct Counts {
  uint64_t sent = 0, received = 0, full = 0, empty = 0, holes = 0, misuse = 0;
  uint64_t ghost_errors = 0, state_errors = 0, stamp_errors = 0, order_errors = 0, status_errors = 0, twice = 0;
};

struct Case {
  const char* name;
  unsigned producers, consumers;
  uint32_t pool_capacity, channel_capacity;
  uint32_t max_batch;  // send_many / receive_many sizes: 1 .. max_batch
  uint64_t ops;        // values each producer sends (scaled)
  bool wait;           // consumers wait (the waiter pairing) instead of retrying
  bool js_sender;      // producer 0 sends as lib/channel.ts does, with holes
  bool ring = false;   // each thread is an endpoint (Channel::endpoint()): the ring while one sends and one receives
  bool late =
      false;  // producer 1.. and consumer 1.. start once a quarter went through: the ring is promoted mid-stream
};

// Per (producer, sequence number): received how many times.
struct Ledger {
  std::vector<std::unique_ptr<std::atomic<uint8_t>[]>> got;
  uint64_t per;
  Ledger(unsigned producers, uint64_t n) : per(n) {
    for (unsigned p = 0; p < producers; ++p) {
      got.emplace_back(new std::atomic<uint8_t>[n]);
      for (uint64_t i = 0; i < n; ++i) got.back()[i].store(0, std::memory_order_relaxed);
    }
  }
};

// Waits until `count` reaches `target` (or 2 s pass): the close races close
// once this many objects went through, whatever the threads' start-up costs
// (ThreadSanitizer's are high).
// Spins, not yields: a yielding closer waits behind four busy threads.
void wait_for(const std::atomic<uint64_t>& count, uint64_t target) {
  const auto give_up = Clock::now() + std::chrono::seconds(2);
  while (count.load(std::memory_order_relaxed) < target && Clock::now() < give_up) {}
}

uint64_t stamp_of(unsigned producer, uint64_t seq) { return (uint64_t(producer) << 48) | seq; }

void producer(Rig& r, Chan& c, const Case& k, unsigned me, uint64_t ops, std::atomic<bool>& gate,
              std::atomic<bool>& stop, const std::atomic<uint64_t>& received, uint64_t total, Counts& n) {
  const uint32_t id = me + 1;  // ghost id
  objpool::Channel ch = k.ring ? c.ch.endpoint() : c.ch;
  Rng rng(id * 7919);
  Chan park(2);  // a private channel: objects in it are InFlight, and no consumer can take them
  std::vector<uint32_t> held;
  uint64_t next_seq = 0;  // the sequence number of held[0]
  while (!gate.load(std::memory_order_acquire)) std::this_thread::yield();
  if (k.late && me > 0) wait_for(received, total / 4);
  const bool js = k.js_sender && me == 0;
  uint64_t round = 0;
  while ((next_seq < ops || !held.empty()) && !stop.load(std::memory_order_relaxed)) {
    ++round;
    // Take objects to send: a batch of random size, fewer near the end.
    if (held.empty()) {
      const uint32_t want = uint32_t(std::min<uint64_t>(js ? 1 : 1 + rng.below(k.max_batch), ops - next_seq));
      held.resize(want);
      const size_t got = r.pool.pop_many(held.data(), want);
      held.resize(got);
      if (got == 0) {
        std::this_thread::yield();
        continue;
      }
      for (size_t i = 0; i < got; ++i) {
        const uint32_t h = held[i];
        if (!r.move_ghost(h, kGhostPool, id)) ++n.ghost_errors;
        if (r.pool.state_of(h) != objpool::kStateTaken) ++n.state_errors;
        uint64_t* b = r.bytes(h);
        b[0] = stamp_of(me, next_seq + i);  // plain: the channel orders it before the receiver's read
        b[1] = ~b[0];
      }
    }
    // Misuse, now and then: refused, and nothing changes.
    if (!js && round % 61 == 0 && held.size() >= 2) {
      ++n.misuse;
      const uint32_t a = held[0], b = held[1];
      uint32_t dup[3] = {a, b, a};
      Status st;
      if (ch.send_many(r.pool, dup, 3, &st) != 0 || st != Status::double_push) ++n.status_errors;
      uint32_t oor[2] = {a, r.capacity + 5};
      if (ch.send_many(r.pool, oor, 2, &st) != 0 || st != Status::out_of_range) ++n.status_errors;
      // b into the private channel: InFlight there, so no other channel takes it.
      if (park.ch.send(r.pool, b) != Status::ok) ++n.status_errors;
      if (r.pool.state_of(b) != objpool::kStateInFlight) ++n.state_errors;
      if (ch.send(r.pool, b) != Status::double_push) ++n.status_errors;
      uint32_t pair[2] = {a, b};
      if (ch.send_many(r.pool, pair, 2, &st) != 0 || st != Status::double_push) ++n.status_errors;
      if (r.pool.push(b) != Status::double_push) ++n.status_errors;  // nor may the pool take it
      if (r.pool.state_of(a) != objpool::kStateTaken) ++n.state_errors;
      uint32_t back = objpool::kNone;
      if (park.ch.receive(r.pool, back) != Status::ok || back != b) ++n.status_errors;
      if (r.pool.state_of(b) != objpool::kStateTaken) ++n.state_errors;
      if (r.ghost[a].load(std::memory_order_relaxed) != id || r.ghost[b].load(std::memory_order_relaxed) != id)
        ++n.ghost_errors;
    }
    // Mark the batch "in the channel" before it can be received; undo for what is not sent.
    for (uint32_t h : held)
      if (!r.move_ghost(h, id, kGhostChannel)) ++n.ghost_errors;
    size_t sent = 0;
    Status st = Status::ok;
    if (js) {
      const bool hole = rng.below(16) == 0;
      st = js_send(c, r.pool, held[0], hole);
      if (st == Status::ok) sent = 1;
      if (st == Status::empty) ++n.holes, st = Status::full;  // a hole: the object is still ours, again
    } else if (held.size() == 1 && rng.below(2) == 0) {
      st = ch.send(r.pool, held[0]);
      sent = st == Status::ok ? 1 : 0;
    } else {
      sent = ch.send_many(r.pool, held.data(), held.size(), &st);
    }
    if (st != Status::ok && st != Status::full) ++n.status_errors;
    if ((st == Status::full) != (sent == 0)) ++n.status_errors;
    for (size_t i = sent; i < held.size(); ++i) {
      if (!r.move_ghost(held[i], kGhostChannel, id)) ++n.ghost_errors;
      if (r.pool.state_of(held[i]) != objpool::kStateTaken) ++n.state_errors;
    }
    n.sent += sent;
    next_seq += sent;
    held.erase(held.begin(), held.begin() + ptrdiff_t(sent));
    // A prefix went: the rest keeps its numbers (they follow in order).
    if (sent == 0) {
      ++n.full;
      std::this_thread::yield();
    }
  }
  // Stopped early (the watchdog): give back what is held.
  for (uint32_t h : held) {
    r.move_ghost(h, kGhostChannel, kGhostPool);
    r.pool.push(h);
  }
}

void consumer(Rig& r, Chan& c, const Case& k, unsigned me, Ledger& ledger, uint64_t total,
              std::atomic<uint64_t>& received, std::atomic<bool>& gate, std::atomic<bool>& stop, Counts& n) {
  const uint32_t id = 1000 + me;
  Rng rng(id * 104729);
  objpool::Channel ch = k.ring ? c.ch.endpoint() : c.ch;
  std::vector<uint32_t> buf(k.max_batch);
  std::vector<int64_t> last(k.producers, -1);
  while (!gate.load(std::memory_order_acquire)) std::this_thread::yield();
  if (k.late && me > 0) wait_for(received, total / 4);
  auto take = [&](size_t got) {
    for (size_t i = 0; i < got; ++i) {
      const uint32_t h = buf[i];
      if (h >= r.capacity) {
        ++n.status_errors;
        continue;
      }
      if (!r.move_ghost(h, kGhostChannel, id)) ++n.ghost_errors;
      if (r.pool.state_of(h) != objpool::kStateTaken) ++n.state_errors;
      const uint64_t* b = r.bytes(h);
      const uint64_t s = b[0];
      if (b[1] != ~s) ++n.stamp_errors;
      const unsigned p = unsigned(s >> 48);
      const uint64_t seq = s & ((uint64_t(1) << 48) - 1);
      if (p >= k.producers || seq >= ledger.per) {
        ++n.stamp_errors;
      } else {
        if (ledger.got[p][seq].fetch_add(1, std::memory_order_relaxed) != 0) ++n.twice;
        // Order: strictly increasing per producer for this consumer; no gap with one consumer.
        if (int64_t(seq) <= last[p] || (k.consumers == 1 && int64_t(seq) != last[p] + 1)) ++n.order_errors;
        last[p] = int64_t(seq);
      }
      if (!r.move_ghost(h, id, kGhostPool)) ++n.ghost_errors;
      if (r.pool.push(h) != Status::ok) ++n.status_errors;
    }
    n.received += got;
    if (got) received.fetch_add(got, std::memory_order_relaxed);
  };
  auto receive_some = [&]() -> size_t {
    if (rng.below(3) == 0) {
      uint32_t h;
      const Status st = ch.receive(r.pool, h);
      if (st == Status::ok) {
        buf[0] = h;
        return 1;
      }
      if (st != Status::empty) ++n.status_errors;
      return 0;
    }
    return ch.receive_many(r.pool, buf.data(), 1 + rng.below(k.max_batch));
  };
  while (received.load(std::memory_order_relaxed) < total && !stop.load(std::memory_order_relaxed)) {
    size_t got = receive_some();
    if (got == 0 && k.wait) {
      // The waiter pairing: the wake word, registered, looked at again, asleep.
      const uint32_t seen = ch.wake_seq();
      ch.add_waiter();
      got = receive_some();
      if (got == 0 && received.load(std::memory_order_relaxed) < total && !stop.load(std::memory_order_relaxed))
        ch.wait_for_send(seen);
      ch.remove_waiter();
    }
    if (got == 0) {
      ++n.empty;
      if (!k.wait) std::this_thread::yield();
      continue;
    }
    take(got);
  }
  // Everything was received: wake the other waiting consumers so they see it.
  ch.wake_waiters();
}

void run_case(const Case& k, double scale) {
  Rig r(k.pool_capacity);
  Chan c(k.channel_capacity);
  const uint64_t ops = std::max<uint64_t>(200, uint64_t(double(k.ops) * scale));
  const uint64_t total = ops * k.producers;
  Ledger ledger(k.producers, ops);
  std::atomic<bool> gate{false}, stop{false}, done{false};
  std::atomic<uint64_t> received{0};
  std::vector<Counts> pc(k.producers), cc(k.consumers);
  std::vector<std::thread> threads;
  for (unsigned p = 0; p < k.producers; ++p)
    threads.emplace_back(producer, std::ref(r), std::ref(c), std::cref(k), p, ops, std::ref(gate), std::ref(stop),
                         std::cref(received), total, std::ref(pc[p]));
  for (unsigned q = 0; q < k.consumers; ++q)
    threads.emplace_back(consumer, std::ref(r), std::ref(c), std::cref(k), q, std::ref(ledger), total,
                         std::ref(received), std::ref(gate), std::ref(stop), std::ref(cc[q]));
  // Watchdog: no progress for this long is a lost object or a lost wake-up.
  std::thread watchdog([&] {
    uint64_t seen = 0;
    auto last = Clock::now();
    while (!done.load(std::memory_order_acquire)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      const uint64_t now = received.load(std::memory_order_relaxed);
      if (now != seen) {
        seen = now;
        last = Clock::now();
      } else if (Clock::now() - last > std::chrono::seconds(10)) {
        stop.store(true, std::memory_order_relaxed);
        c.ch.wake_waiters();
      }
    }
  });
  const auto t0 = Clock::now();
  gate.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  done.store(true, std::memory_order_release);
  watchdog.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  Counts t;
  for (auto* v : {&pc, &cc})
    for (const Counts& c2 : *v) {
      t.sent += c2.sent, t.received += c2.received, t.full += c2.full, t.empty += c2.empty, t.holes += c2.holes;
      t.misuse += c2.misuse, t.ghost_errors += c2.ghost_errors, t.state_errors += c2.state_errors;
      t.stamp_errors += c2.stamp_errors, t.order_errors += c2.order_errors, t.status_errors += c2.status_errors;
      t.twice += c2.twice;
    }
  std::printf(
      "%-34s P=%u C=%u chan=%-2u batch<=%u sent=%-8llu full=%-8llu empty=%-8llu holes=%-5llu misuse=%llu %.2fs\n",
      k.name, k.producers, k.consumers, k.channel_capacity, k.max_batch, (unsigned long long)t.sent,
      (unsigned long long)t.full, (unsigned long long)t.empty, (unsigned long long)t.holes,
      (unsigned long long)t.misuse, secs);
  CHECK(!stop.load(), "%s: stuck for 10 s: an object or a wake-up was lost (%llu of %llu received)", k.name,
        (unsigned long long)received.load(), (unsigned long long)total);
  CHECK(t.sent == total && t.received == total, "%s: sent %llu, received %llu, expected %llu", k.name,
        (unsigned long long)t.sent, (unsigned long long)t.received, (unsigned long long)total);
  CHECK(t.twice == 0, "%s: %llu values received twice", k.name, (unsigned long long)t.twice);
  CHECK(t.ghost_errors == 0, "%s: %llu ownership (ghost) violations", k.name, (unsigned long long)t.ghost_errors);
  CHECK(t.state_errors == 0, "%s: %llu wrong state words", k.name, (unsigned long long)t.state_errors);
  CHECK(t.stamp_errors == 0, "%s: %llu objects with a wrong stamp", k.name, (unsigned long long)t.stamp_errors);
  CHECK(t.order_errors == 0, "%s: %llu values out of their producer's order", k.name,
        (unsigned long long)t.order_errors);
  CHECK(t.status_errors == 0, "%s: %llu unexpected statuses", k.name, (unsigned long long)t.status_errors);
  uint64_t missing = 0;
  for (unsigned p = 0; p < k.producers; ++p)
    for (uint64_t i = 0; i < ops; ++i)
      if (ledger.got[p][i].load(std::memory_order_relaxed) != 1) ++missing;
  CHECK(missing == 0, "%s: %llu values not received exactly once", k.name, (unsigned long long)missing);
  // Every object back in the pool, once; the channel empty.
  std::vector<uint32_t> all(r.capacity + 1);
  const size_t got = r.pool.pop_many(all.data(), all.size());
  CHECK(got == r.capacity, "%s: %zu of %u objects back in the pool", k.name, got, r.capacity);
  CHECK(c.ch.size() == 0, "%s: %u handles left in the channel", k.name, c.ch.size());
  // The ring stays the ring with one endpoint a side, and is promoted by the second.
  CHECK(!k.ring || c.ch.promoted() == (k.late || k.producers > 1 || k.consumers > 1),
        "%s: the channel is %s the MPMC queue", k.name, c.ch.promoted() ? "" : "not");
  r.pool.push_many(all.data(), got);
}

// close() racing with sends: receivers stop once receive() says closed; no
// send that returned ok may be left behind.
// Rounds: up to `rounds`, at least 20, and none started after `budget`
// seconds (a loaded machine gets fewer, not a slower test).
bool another_round(unsigned round, unsigned rounds, Clock::time_point t0, double budget) {
  if (round >= rounds) return false;
  return round < 20 || std::chrono::duration<double>(Clock::now() - t0).count() < budget;
}

// With `ring`, one sender endpoint and one receiver endpoint: the ring, which
// close() promotes while the sender sends.
void run_close_race(unsigned rounds, double budget, bool ring) {
  const auto t0 = Clock::now();
  unsigned left_behind = 0, lost_objects = 0, bad = 0;
  uint64_t sent_total = 0;
  unsigned round = 0;
  for (; another_round(round, rounds, t0, budget); ++round) {
    Rig r(64);
    Chan c(8);
    std::atomic<bool> gate{false};
    std::atomic<uint64_t> sent{0}, received{0};
    std::atomic<unsigned> errors{0};
    auto prod = [&](unsigned me) {
      Rng rng(round * 31 + me);
      objpool::Channel ch = ring ? c.ch.endpoint() : c.ch;
      uint32_t hs[4];
      while (!gate.load(std::memory_order_acquire)) {}
      for (;;) {
        const uint32_t want = 1 + rng.below(4);
        const size_t n = r.pool.pop_many(hs, want);
        if (n == 0) continue;
        Status st;
        size_t k = 0;
        while (k < n) {
          const size_t s = ch.send_many(r.pool, hs + k, n - k, &st);
          k += s;
          sent.fetch_add(s, std::memory_order_relaxed);
          if (st == Status::closed) break;
          if (st != Status::ok && st != Status::full) errors.fetch_add(1);
          // Full: again at once. Busy producers, more threads than cores:
          // the OS preempts them anywhere in a send, the window this race
          // needs (the time budget bounds the cost on a loaded machine).
        }
        for (size_t i = k; i < n; ++i)
          if (r.pool.push(hs[i]) != Status::ok) errors.fetch_add(1);
        if (st == Status::closed) return;
      }
    };
    auto cons = [&](unsigned me) {
      Rng rng(round * 17 + me);
      objpool::Channel ch = ring ? c.ch.endpoint() : c.ch;
      uint32_t hs[4];
      while (!gate.load(std::memory_order_acquire)) {}
      for (;;) {
        const size_t n = ch.receive_many(r.pool, hs, 1 + rng.below(4));
        for (size_t i = 0; i < n; ++i)
          if (r.pool.push(hs[i]) != Status::ok) errors.fetch_add(1);
        received.fetch_add(n, std::memory_order_relaxed);
        if (n == 0) {
          uint32_t h;
          const Status st = ch.receive(r.pool, h);
          if (st == Status::closed) return;
          if (st == Status::ok) {
            received.fetch_add(1, std::memory_order_relaxed);
            if (r.pool.push(h) != Status::ok) errors.fetch_add(1);
          } else {
            std::this_thread::yield();
          }
        }
      }
    };
    std::vector<std::thread> th;
    for (unsigned p = 0; p < (ring ? 1u : 3u); ++p) th.emplace_back(prod, p);
    for (unsigned q = 0; q < (ring ? 1u : 2u); ++q) th.emplace_back(cons, q);
    gate.store(true, std::memory_order_release);
    // Close once the consumers run (the race needs them caught up, the
    // channel often empty), at a random point after that.
    Rng rng(round);
    wait_for(received, 16 + rng.below(400));
    c.ch.close();
    for (auto& t : th) t.join();
    // Every consumer was told "closed": nothing may be left in the channel.
    uint32_t hs[8];
    const size_t rest = c.ch.receive_many(r.pool, hs, 8);
    for (size_t i = 0; i < rest; ++i) r.pool.push(hs[i]);
    if (rest != 0 || sent.load() != received.load()) ++left_behind;
    std::vector<uint32_t> all(65);
    if (r.pool.pop_many(all.data(), 65) != 64) ++lost_objects;
    bad += errors.load();
    sent_total += sent.load();
  }
  std::printf("%-34s rounds=%u sent=%llu left-behind=%u lost=%u %.2fs\n",
              ring ? "close() racing with ring sends" : "close() racing with sends", round,
              (unsigned long long)sent_total, left_behind, lost_objects,
              std::chrono::duration<double>(Clock::now() - t0).count());
  CHECK(left_behind == 0,
        "close race: in %u rounds a send returned ok but its object stayed in the channel after every receiver "
        "was told the channel is closed and drained",
        left_behind);
  CHECK(lost_objects == 0 && bad == 0, "close race: %u rounds lost objects, %u unexpected statuses", lost_objects, bad);
}

// Pool::close() + close_for_pool() racing with sends and receives (every
// third round after the channel's own close()): every object is released
// exactly once by the closer's drains, none is left in flight. One consumer
// polls (slowly: the channel is often full when the pool closes), one waits;
// a waiter still asleep 2 s after the close, with nothing more to come, is a
// lost wake-up.
void run_pool_close_race(unsigned rounds, double budget) {
  const auto t0 = Clock::now();
  unsigned lost = 0, twice = 0, in_flight = 0, bad = 0, stuck = 0;
  uint64_t given_back = 0, sender_gave_back = 0;
  unsigned round = 0;
  for (; another_round(round, rounds, t0, budget); ++round) {
    Rig r(64);
    Chan c(8);
    std::atomic<bool> gate{false};
    std::atomic<int> drain_requests{0}, finished{0};
    std::atomic<unsigned> errors{0}, senders_back{0};
    std::atomic<uint64_t> sent{0};
    auto request = [&](Status st) {
      // release: the push (or give-back) precedes the request.
      if (st == Status::drain_needed) drain_requests.fetch_add(1, std::memory_order_release);
    };
    auto prod = [&](unsigned me) {
      Rng rng(round * 31 + me);
      uint32_t hs[4];
      while (!gate.load(std::memory_order_acquire)) {}
      for (;;) {
        Status pst;
        const size_t n = r.pool.pop_many(hs, 1 + rng.below(4), &pst);
        if (pst == Status::closed) break;
        size_t k = 0;
        Status st = Status::ok;
        while (k < n) {
          const size_t s = c.ch.send_many(r.pool, hs + k, n - k, &st);
          k += s;
          sent.fetch_add(s, std::memory_order_relaxed);
          request(st);
          if (st == Status::drain_needed) senders_back.fetch_add(1, std::memory_order_relaxed);
          if (st == Status::closed) break;
          if (st != Status::ok && st != Status::full && st != Status::drain_needed) errors.fetch_add(1);
          if (s == 0) std::this_thread::yield();
        }
        for (size_t i = k; i < n; ++i) {
          const Status ps = r.pool.push(hs[i]);
          if (ps != Status::ok && ps != Status::drain_needed) errors.fetch_add(1);
          request(ps);
        }
      }
      finished.fetch_add(1);
    };
    auto give_back = [&](const uint32_t* hs, size_t n) {
      for (size_t i = 0; i < n; ++i) {
        if (r.pool.state_of(hs[i]) != objpool::kStateTaken) errors.fetch_add(1);
        const Status ps = r.pool.push(hs[i]);
        if (ps != Status::ok && ps != Status::drain_needed) errors.fetch_add(1);
        request(ps);
      }
    };
    auto poller = [&] {
      Rng rng(round * 17);
      uint32_t hs[4];
      while (!gate.load(std::memory_order_acquire)) {}
      for (;;) {
        const size_t n = c.ch.receive_many(r.pool, hs, 1 + rng.below(4));
        give_back(hs, n);
        if (n == 0 && c.ch.drained()) break;
        for (unsigned i = rng.below(64); i > 0; --i) std::this_thread::yield();
      }
      finished.fetch_add(1);
    };
    auto waiter = [&] {
      uint32_t hs[4];
      while (!gate.load(std::memory_order_acquire)) {}
      for (;;) {
        size_t n = c.ch.receive_many(r.pool, hs, 4);
        give_back(hs, n);
        if (n > 0) continue;
        if (c.ch.drained()) break;
        const uint32_t seen = c.ch.wake_seq();
        c.ch.add_waiter();
        n = c.ch.receive_many(r.pool, hs, 4);
        give_back(hs, n);
        if (n == 0 && !c.ch.drained()) c.ch.wait_for_send(seen);
        c.ch.remove_waiter();
      }
      finished.fetch_add(1);
    };
    std::vector<std::thread> th;
    th.emplace_back(prod, 0u);
    th.emplace_back(prod, 1u);
    th.emplace_back(poller);
    th.emplace_back(waiter);
    gate.store(true, std::memory_order_release);
    Rng rng(round);
    wait_for(sent, rng.below(200));
    std::vector<uint32_t> got(64);
    std::vector<uint8_t> seen(8, 0), released(64, 0);
    size_t total = 0;
    auto drain = [&] {
      const size_t n = r.pool.drain(got.data(), seen.data());
      for (size_t i = 0; i < n; ++i) {
        if (released[got[i]]) ++twice;
        released[got[i]] = 1;
      }
      total += n;
    };
    // Every third round the channel is closed first (its own close()), and
    // the pool closes while senders that saw that publish holes.
    if (round % 3 == 0) {
      c.ch.close();
      const auto until = Clock::now() + std::chrono::microseconds(rng.below(100));
      while (Clock::now() < until) {}
    }
    CHECK(r.pool.close(), "pool close race: close() must win");  // then close_for_pool() wakes the channel's waiters,
                                                                 // as the addon's close
    given_back += c.ch.close_for_pool(r.pool, [](uint32_t) {});
    drain();
    // The watchdog: everyone finishes soon once the pool is closed.
    const auto deadline = Clock::now() + std::chrono::seconds(2);
    bool late = false;
    while (finished.load() < int(th.size())) {
      std::this_thread::yield();
      if (Clock::now() > deadline) {
        late = true;
        c.ch.wake_waiters();  // a lost wake-up: let it go, and count it
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    if (late) ++stuck;
    for (auto& t : th) t.join();
    // Serve the requests as the addon's closer does: one drain each.
    const int want = drain_requests.load(std::memory_order_acquire);
    for (int i = 0; i < want; ++i) drain();
    if (total != 64) ++lost;
    for (uint32_t h = 0; h < 64; ++h)
      if (r.pool.state_of(h) == objpool::kStateInFlight) ++in_flight;
    if (!c.ch.drained()) ++bad;
    bad += errors.load();
    sender_gave_back += senders_back.load();
  }
  std::printf(
      "%-34s rounds=%u given-back: by close_for_pool=%llu by senders=%llu lost=%u released-twice=%u "
      "in-flight=%u stuck=%u %.2fs\n",
      "pool close racing with sends", round, (unsigned long long)given_back, (unsigned long long)sender_gave_back, lost,
      twice, in_flight, stuck, std::chrono::duration<double>(Clock::now() - t0).count());
  CHECK(lost == 0 && twice == 0 && in_flight == 0,
        "pool close race: %u rounds lost objects, %u released one twice, %u objects left in flight", lost, twice,
        in_flight);
  CHECK(stuck == 0, "pool close race: in %u rounds a waiting receiver slept on after the pool closed (lost wake-up)",
        stuck);
  CHECK(bad == 0, "pool close race: %u unexpected statuses or channels not drained", bad);
}

// Single-threaded edges and misuse.
void run_errors() {
  Rig r(8);
  // A one-cell channel: "full at position p" and "free at position p + 1"
  // would be the same seq value. format() must refuse it, or the channel
  // must hold one handle, no more.
  {
    std::vector<uint32_t> mem(size_t(objpool::channel_bytes_for(1) / 4));
    objpool::Channel ch;
    if (objpool::Channel::format(mem.data(), mem.size() * 4, 1) == Status::ok &&
        objpool::Channel::attach(mem.data(), mem.size() * 4, ch) == Status::ok) {
      uint32_t a, b;
      CHECK(r.pool.pop(a) == Status::ok && r.pool.pop(b) == Status::ok, "pop");
      CHECK(ch.send(r.pool, a) == Status::ok, "capacity 1: first send");
      const Status st = ch.send(r.pool, b);
      CHECK(st == Status::full,
            "capacity 1: a second send must find the channel full, got status %d (the first object is overwritten "
            "and receivers spin forever)",
            int(st));
      if (st == Status::full) {
        uint32_t h;
        CHECK(ch.receive(r.pool, h) == Status::ok && h == a, "capacity 1: receive");
        CHECK(r.pool.push(a) == Status::ok, "push");
      }
      // Whatever happened, the pool gets its objects back (a test rig only).
      for (uint32_t h : {a, b}) {
        if (r.pool.state_of(h) == objpool::kStateInFlight) r.pool.unmark_in_flight(h);
        if (r.pool.state_of(h) == objpool::kStateTaken) r.pool.push(h);
      }
    }
    CHECK(objpool::channel_capacity_for(1) >= 2 ||
              objpool::Channel::format(mem.data(), mem.size() * 4, objpool::channel_capacity_for(1)) != Status::ok,
          "channel_capacity_for(1) = %u: a channel that format() then accepts", objpool::channel_capacity_for(1));
  }
  Chan c(4);
  uint32_t a, b, x;
  CHECK(r.pool.pop(a) == Status::ok && r.pool.pop(b) == Status::ok && r.pool.pop(x) == Status::ok, "pop");
  CHECK(r.pool.push(x) == Status::ok, "push");
  CHECK(c.ch.send(r.pool, x) == Status::double_push, "sending an object that is in the pool");
  CHECK(r.pool.state_of(x) == objpool::kStateFree, "a refused send changes nothing");
  CHECK(c.ch.send(r.pool, 99) == Status::out_of_range, "out of range");
  uint32_t dup[2] = {a, a};
  Status st;
  CHECK(c.ch.send_many(r.pool, dup, 2, &st) == 0 && st == Status::double_push, "a handle twice in one batch");
  CHECK(r.pool.state_of(a) == objpool::kStateTaken, "a refused batch leaves its objects Taken");
  CHECK(c.ch.size() == 0, "a refused batch claims no cell");
  CHECK(c.ch.send(r.pool, a) == Status::ok, "send");
  CHECK(c.ch.send(r.pool, a) == Status::double_push, "sending an object that is in a channel");
  CHECK(r.pool.push(a) == Status::double_push, "pushing an object that is in a channel");
  // Forged cells, written the way JS may: a hole, a value out of range, and
  // an object that is not in flight: receivers skip them all.
  uint32_t* w = c.words();
  auto forge = [&](uint32_t v) {
    uint32_t pos = w[objpool::chan_layout::enqueue];
    const size_t i = objpool::chan_layout::cells + 2 * size_t(pos & 3);
    w[objpool::chan_layout::enqueue] = pos + 1;
    w[i + 1] = v;
    w[i] = pos + 1;
  };
  forge(objpool::kHole);
  forge(1000);
  forge(b);  // Taken by this thread: not in flight
  uint32_t out[8];
  CHECK(c.ch.send(r.pool, b) == Status::full, "4 cells taken: full");
  size_t n = c.ch.receive_many(r.pool, out, 8);
  CHECK(n == 1 && out[0] == a, "forged cells skipped: got %zu", n);
  CHECK(r.pool.state_of(b) == objpool::kStateTaken, "a forged cell naming an object does not take it");
  CHECK(c.ch.size() == 0, "all cells taken");
  // close(): no more sends; what is in it can still be received.
  CHECK(c.ch.send(r.pool, b) == Status::ok, "send");
  c.ch.close();
  CHECK(c.ch.send(r.pool, a) == Status::closed, "send after close");
  CHECK(r.pool.state_of(a) == objpool::kStateTaken, "a refused send changes nothing");
  uint32_t h;
  CHECK(c.ch.receive(r.pool, h) == Status::ok && h == b, "receive after close");
  CHECK(c.ch.receive(r.pool, h) == Status::closed && c.ch.drained(), "closed once drained");
  // close_for_pool(): what the channel holds goes back to the pool.
  Chan d(4);
  CHECK(d.ch.send(r.pool, a) == Status::ok && d.ch.send(r.pool, b) == Status::ok, "send two");
  CHECK(r.pool.close(), "close");
  std::vector<uint32_t> zeroed;
  CHECK(d.ch.close_for_pool(r.pool, [&](uint32_t z) { zeroed.push_back(z); }) == 2, "close_for_pool gives back two");
  CHECK(zeroed.size() == 2, "zero() for each object given back");
  std::vector<uint32_t> all(8);
  std::vector<uint8_t> seen(1, 0);
  CHECK(r.pool.drain(all.data(), seen.data()) == 8, "drained: every object");
  CHECK(d.ch.send(r.pool, x) == Status::closed, "send to a channel of a closed pool");
  // Formats and attaches that must be refused.
  std::vector<uint32_t> mem(size_t(objpool::channel_bytes_for(8) / 4));
  objpool::Channel ch;
  CHECK(objpool::Channel::format(mem.data(), mem.size() * 4, 3) == Status::bad_layout, "capacity not a power of 2");
  CHECK(objpool::Channel::format(mem.data(), mem.size() * 4 - 4, 8) == Status::bad_layout, "too short");
  CHECK(objpool::Channel::format(mem.data(), mem.size() * 4, 8) == Status::ok, "format");
  mem[objpool::chan_layout::capacity] = 64;
  CHECK(objpool::Channel::attach(mem.data(), mem.size() * 4, ch) == Status::bad_layout, "forged capacity");
  mem[objpool::chan_layout::capacity] = 8;
  CHECK(objpool::Channel::attach(reinterpret_cast<uint8_t*>(mem.data()) + 2, 200, ch) == Status::bad_layout,
        "misaligned");
  CHECK(objpool::Channel::attach(mem.data(), mem.size() * 4, ch) == Status::ok, "attach");
}

}  // namespace

int main(int argc, char** argv) {
  const double scale = argc > 1 ? std::atof(argv[1]) : 1.0;
  const unsigned hw = std::max(2u, std::thread::hardware_concurrency());
  // name, producers, consumers, pool capacity, channel capacity, max batch, values per producer, wait, js sender,
  // ring, late
  const Case cases[] = {
      {"mpmc, 4 cells", 2, 2, 64, 4, 6, 150000, false, false},
      {"mpsc, exact order, 8 cells", 3, 1, 64, 8, 4, 100000, false, false},
      {"spmc, 2 cells", 1, 3, 32, 2, 3, 150000, false, false},
      {"with a JS-style sender and holes", 2, 2, 64, 4, 4, 100000, false, true},
      {"waiting receivers, 4 cells", 2, 2, 16, 4, 4, 40000, true, false},
      {"more threads than cpus, 8 cells", hw + 1, hw + 1, 128, 8, 6, 40000, false, false},
      // The ring (one sender endpoint, one receiver endpoint), then the ring
      // promoted to the MPMC queue while values are in it.
      {"ring, exact order, 4 cells", 1, 1, 32, 4, 4, 200000, false, false, true},
      {"ring, a waiting receiver, 2 cells", 1, 1, 16, 2, 2, 60000, true, false, true},
      {"ring promoted mid-stream, 4 cells", 2, 2, 64, 4, 4, 100000, false, false, true, true},
      {"ring promoted mid-stream, waiting", 2, 2, 32, 4, 4, 40000, true, false, true, true},
  };
  run_errors();
  for (const Case& k : cases) run_case(k, scale);
  // The close races start threads for every round: ThreadSanitizer's
  // thread starts are slow, so it gets half the rounds.
  const double rounds = scale * (kThreadSanitizer ? 0.5 : 1.0);
  run_close_race(std::max(20u, unsigned(100 * rounds)), 4.0 * scale, false);
  run_close_race(std::max(20u, unsigned(100 * rounds)), 2.0 * scale, true);
  run_pool_close_race(std::max(20u, unsigned(150 * rounds)), 4.0 * scale);
  if (failures) {
    std::printf("channel stress: %d checks failed\n", failures);
    return 1;
  }
  std::printf("channel stress: all cases passed\n");
  return 0;
}
