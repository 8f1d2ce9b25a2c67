// Stress test of native/objpool.hpp with real threads, in the manner of the
// kernel's test_objpool.c: a table of cases, a start gate, per-thread hit and
// miss counts, and a final check that every object came back exactly once.
// Ownership is checked on every operation: each object has an owner word that
// a popper must find empty and a pusher must find holding its own mark, so
// two threads holding one object at the same time is caught at once.
//
// Usage: stress [scale]   (scale multiplies the operation counts; default 1)

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "../../native/objpool.hpp"

// test/native/run.js builds this once with the stand-in forced: make sure it is the one in use.
#if defined(OBJPOOL_FORCE_ATOMIC_REF_SHIM)
static_assert(OBJPOOL_ATOMIC_REF_SHIM == 1, "the atomic_ref stand-in was asked for");
#endif

namespace {

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

struct Case {
  const char* name;
  unsigned threads;
  uint32_t capacity;
  uint32_t slots;
  unsigned bulk;  // objects taken per round (1: pop/push, >1: pop_many/push_many)
  unsigned hold;  // rounds an object batch is kept before going back
  uint64_t ops;   // pop+push operations per thread (scaled)
  bool checked;
};

struct Memory {
  std::vector<uint64_t> meta;  // u64 for alignment
  objpool::Pool pool;
  std::unique_ptr<std::atomic<uint32_t>[]> owner;
  // Object contents, written and read with plain accesses by whoever holds
  // the object: only the pool's release/acquire orders them, so a missing
  // acquire shows up as a data race under ThreadSanitizer.
  std::vector<uint64_t> payload;

  Memory(const objpool::Config& c) : owner(new std::atomic<uint32_t>[c.capacity]), payload(c.capacity, 0) {
    const uint64_t bytes = objpool::meta_bytes_for(c.capacity, c.slots, c.checked);
    meta.resize((bytes + 7) / 8);
    if (objpool::Pool::format(meta.data(), bytes, c) != objpool::Status::ok) std::abort();
    if (objpool::Pool::attach(meta.data(), bytes, nullptr, 0, pool) != objpool::Status::ok) std::abort();
    for (uint32_t i = 0; i < c.capacity; ++i) owner[i].store(0, std::memory_order_relaxed);
  }
};

struct Counts {
  uint64_t hits = 0, misses = 0, ops = 0, owner_errors = 0, status_errors = 0;
};

void claim(Memory& m, uint32_t h, uint32_t me, Counts& c) {
  if (h >= m.pool.capacity()) {
    ++c.owner_errors;
    return;
  }
  // relaxed: the owner word is a detector, not a synchronizer.
  uint32_t prev = m.owner[h].exchange(me, std::memory_order_relaxed);
  if (prev != 0) ++c.owner_errors;
  m.payload[h] = (uint64_t(me) << 32) | uint32_t(c.hits);
}
void give_back(Memory& m, uint32_t h, uint32_t me, Counts& c) {
  if ((m.payload[h] >> 32) != me) ++c.owner_errors;
  uint32_t prev = m.owner[h].exchange(0, std::memory_order_relaxed);
  if (prev != me) ++c.owner_errors;
}

void worker(Memory& m, const Case& k, uint64_t ops, uint32_t me, std::atomic<bool>& gate, Counts& c) {
  std::vector<std::vector<uint32_t>> held(k.hold);
  std::vector<uint32_t> buf(k.bulk);
  while (!gate.load(std::memory_order_acquire)) std::this_thread::yield();
  uint64_t round = 0;
  while (c.ops < ops) {
    auto& slot = held[round++ % k.hold];
    // Return the batch taken `hold` rounds ago.
    if (!slot.empty()) {
      for (uint32_t h : slot) give_back(m, h, me, c);
      objpool::Status st;
      if (slot.size() == 1 && k.bulk == 1)
        st = m.pool.push(slot[0]);
      else
        st = m.pool.push_many(slot.data(), slot.size());
      if (st != objpool::Status::ok) ++c.status_errors;
      c.ops += slot.size();
      slot.clear();
    }
    if (k.bulk == 1) {
      uint32_t h;
      objpool::Status st = m.pool.pop(h);
      if (st == objpool::Status::ok) {
        ++c.hits;
        claim(m, h, me, c);
        slot.push_back(h);
      } else if (st == objpool::Status::empty)
        ++c.misses;
      else
        ++c.status_errors;
    } else {
      size_t n = m.pool.pop_many(buf.data(), k.bulk);
      c.hits += n;
      c.misses += k.bulk - n;
      for (size_t i = 0; i < n; ++i) {
        claim(m, buf[i], me, c);
        slot.push_back(buf[i]);
      }
    }
    ++c.ops;
  }
  for (auto& slot : held) {
    for (uint32_t h : slot) {
      give_back(m, h, me, c);
      if (m.pool.push(h) != objpool::Status::ok) ++c.status_errors;
    }
  }
}

// Every object must be in the pool exactly once.
void check_conservation(Memory& m, const char* name) {
  std::vector<uint32_t> all(m.pool.capacity() + 1);
  size_t n = m.pool.pop_many(all.data(), all.size());
  CHECK(n == m.pool.capacity(), "%s: %zu of %u objects came back", name, n, m.pool.capacity());
  std::vector<uint8_t> seen(m.pool.capacity(), 0);
  for (size_t i = 0; i < n; ++i) {
    CHECK(all[i] < m.pool.capacity() && !seen[all[i]], "%s: handle %u twice or out of range", name, all[i]);
    if (all[i] < m.pool.capacity()) seen[all[i]] = 1;
  }
  uint32_t h;
  CHECK(m.pool.pop(h) == objpool::Status::empty, "%s: pool not empty after taking all", name);
  CHECK(m.pool.push_many(all.data(), n) == objpool::Status::ok, "%s: could not return all", name);
}

void run_case(const Case& k, double scale) {
  objpool::Config cfg;
  cfg.capacity = k.capacity;
  cfg.slots = k.slots;
  cfg.object_size = cfg.stride = 64;
  cfg.align = 8;
  cfg.checked = k.checked;
  Memory m(cfg);
  const uint64_t ops = std::max<uint64_t>(1000, uint64_t(double(k.ops) * scale));
  std::atomic<bool> gate{false};
  std::vector<Counts> counts(k.threads);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < k.threads; ++t)
    threads.emplace_back(worker, std::ref(m), std::cref(k), ops, t + 1, std::ref(gate), std::ref(counts[t]));
  auto t0 = std::chrono::steady_clock::now();
  gate.store(true, std::memory_order_release);
  for (auto& th : threads) th.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Counts total;
  for (auto& c : counts) {
    total.hits += c.hits;
    total.misses += c.misses;
    total.ops += c.ops;
    total.owner_errors += c.owner_errors;
    total.status_errors += c.status_errors;
  }
  std::printf("%-28s threads=%u cap=%-6u slots=%-2u bulk=%-3u ops=%-10llu hits=%-9llu misses=%-9llu %.2fs\n", k.name,
              k.threads, k.capacity, k.slots, k.bulk, (unsigned long long)total.ops, (unsigned long long)total.hits,
              (unsigned long long)total.misses, secs);
  CHECK(total.owner_errors == 0, "%s: %llu ownership violations", k.name, (unsigned long long)total.owner_errors);
  CHECK(total.status_errors == 0, "%s: %llu unexpected statuses", k.name, (unsigned long long)total.status_errors);
  CHECK(total.hits > 0, "%s: no pop ever succeeded", k.name);
  check_conservation(m, k.name);
}

// Close racing with pushes: every object must be released exactly once.
void run_close_race(unsigned rounds) {
  unsigned lost = 0, twice = 0;
  for (unsigned r = 0; r < rounds; ++r) {
    objpool::Config cfg;
    cfg.capacity = 256;
    cfg.slots = 2;
    cfg.object_size = cfg.stride = 8;
    cfg.align = 8;
    Memory m(cfg);
    // Two pushers hold half the objects each and return them while the closer drains.
    std::vector<uint32_t> all(256);
    size_t n = m.pool.pop_many(all.data(), all.size());
    if (n != 256) std::abort();
    std::atomic<bool> gate{false};
    std::atomic<int> drain_requests{0};
    std::vector<uint8_t> released(256, 0);
    auto pusher = [&](size_t from, size_t to) {
      while (!gate.load(std::memory_order_acquire)) {}
      for (size_t i = from; i < to; ++i)
        if (m.pool.push(all[i]) == objpool::Status::drain_needed)
          drain_requests.fetch_add(1, std::memory_order_release);  // release: the push precedes the request
    };
    std::thread a(pusher, 0, 128), b(pusher, 128, 256);
    gate.store(true, std::memory_order_release);
    CHECK(m.pool.close(), "close race: first close() must win");
    CHECK(!m.pool.close(), "close race: second close() must lose");
    std::vector<uint32_t> got(256);
    std::vector<uint8_t> seen(256 / 8, 0);
    size_t total = 0;
    int served = 0;
    auto drain_all = [&] {
      const size_t k = m.pool.drain(got.data(), seen.data());
      for (size_t i = 0; i < k; ++i) {
        if (released[got[i]]) ++twice;
        released[got[i]] = 1;
      }
      total += k;
    };
    drain_all();
    a.join();
    b.join();
    // Serve the requests the way the addon's closer does: drain once per request.
    int want = drain_requests.load(std::memory_order_acquire);
    while (served < want) {
      drain_all();
      ++served;
    }
    if (total != 256) ++lost;
    uint32_t h;
    CHECK(m.pool.pop(h) == objpool::Status::closed, "close race: pop after close must report closed");
  }
  std::printf("%-28s rounds=%u lost=%u released-twice=%u\n", "close racing with pushes", rounds, lost, twice);
  CHECK(lost == 0 && twice == 0, "close race: %u rounds lost objects, %u released one twice", lost, twice);
}

// Per-thread caches, as lib/pool.ts keeps them: each thread fills its cache
// with pop_many(mark_taken = false) (objects stay Free), hands an object out
// by marking it Taken itself, takes it back by one Taken -> Free
// compare-exchange, and spills the older half with give(). Ownership and
// conservation are checked as in the other cases.
void run_cache_case(double scale) {
  objpool::Config cfg;
  cfg.capacity = 256;
  cfg.slots = 2;
  cfg.object_size = cfg.stride = 64;
  cfg.align = 8;
  Memory m(cfg);
  auto* state = reinterpret_cast<uint32_t*>(reinterpret_cast<uint8_t*>(m.meta.data()) + objpool::layout::heads +
                                            cfg.slots * objpool::kLine + cfg.capacity * 4);
  const uint64_t ops = std::max<uint64_t>(1000, uint64_t(2000000 * scale));
  constexpr unsigned kCache = 16;
  std::atomic<bool> gate{false};
  std::vector<Counts> counts(3);
  auto worker_fn = [&](uint32_t me, Counts& c) {
    uint32_t cache[kCache];
    uint32_t n = 0;
    std::vector<uint32_t> held;
    while (!gate.load(std::memory_order_acquire)) std::this_thread::yield();
    while (c.ops < ops) {
      if (held.size() < 6 && (c.ops & 3) != 3) {
        if (n == 0) n = uint32_t(m.pool.pop_many(cache, kCache / 2, nullptr, false));
        if (n == 0) {
          ++c.misses;
        } else {
          const uint32_t h = cache[--n];
          // relaxed: this thread owns h (it sits in its own cache), as a JS pop does.
          objpool::atomic_ref<uint32_t>(state[h]).store(objpool::kStateTaken, std::memory_order_relaxed);
          ++c.hits;
          claim(m, h, me, c);
          held.push_back(h);
        }
      } else if (!held.empty()) {
        const uint32_t h = held.back();
        held.pop_back();
        give_back(m, h, me, c);
        uint32_t expect = objpool::kStateTaken;
        // relaxed: as the core's unmark(); the give() below publishes with release.
        if (!objpool::atomic_ref<uint32_t>(state[h]).compare_exchange_strong(expect, objpool::kStateFree,
                                                                             std::memory_order_relaxed))
          ++c.status_errors;
        if (n == kCache) {
          if (m.pool.give(cache, kCache / 2) != objpool::Status::ok) ++c.status_errors;
          std::copy(cache + kCache / 2, cache + kCache, cache);
          n = kCache / 2;
        }
        cache[n++] = h;
      }
      ++c.ops;
    }
    for (uint32_t h : held) {
      give_back(m, h, me, c);
      if (m.pool.push(h) != objpool::Status::ok) ++c.status_errors;
    }
    if (n > 0 && m.pool.give(cache, n) != objpool::Status::ok) ++c.status_errors;
  };
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < counts.size(); ++t) threads.emplace_back(worker_fn, t + 1, std::ref(counts[t]));
  gate.store(true, std::memory_order_release);
  for (auto& th : threads) th.join();
  Counts total;
  for (auto& c : counts) {
    total.hits += c.hits;
    total.ops += c.ops;
    total.owner_errors += c.owner_errors;
    total.status_errors += c.status_errors;
  }
  std::printf("%-28s threads=3 cap=256    cache=%u ops=%-10llu hits=%llu\n", "caches (take/give)", kCache,
              (unsigned long long)total.ops, (unsigned long long)total.hits);
  CHECK(total.owner_errors == 0, "caches: %llu ownership violations", (unsigned long long)total.owner_errors);
  CHECK(total.status_errors == 0, "caches: %llu unexpected statuses", (unsigned long long)total.status_errors);
  for (uint32_t h = 0; h < cfg.capacity; ++h)
    CHECK(m.pool.state_of(h) == objpool::kStateFree, "caches: object %u not Free at the end", h);
  check_conservation(m, "caches");
}

// Waiting: a thread blocks until pushes from other threads hand it objects;
// every wake-up is delivered (no lost wake-up: the waiter would hang) and
// every object comes back once.
void run_wait_case(double scale) {
  objpool::Config cfg;
  cfg.capacity = 4;
  cfg.slots = 2;
  cfg.object_size = cfg.stride = 64;
  cfg.align = 8;
  Memory m(cfg);
  const unsigned rounds = std::max(200u, unsigned(5000 * scale));
  std::vector<uint32_t> all(4);
  if (m.pool.pop_many(all.data(), 4) != 4) std::abort();
  std::atomic<unsigned> received{0};
  std::atomic<bool> stuck{false};
  Counts c;
  std::thread waiter([&] {
    for (unsigned r = 0; r < rounds; ++r) {
      const uint32_t seen = m.pool.wake_seq();
      uint32_t h;
      objpool::Status st = m.pool.wait_begin(h);
      auto t0 = std::chrono::steady_clock::now();
      uint32_t s = seen;
      while (st == objpool::Status::empty) {
        m.pool.wait_for_push(s);
        s = m.pool.wake_seq();
        st = m.pool.pop(h);
        if (st == objpool::Status::ok) m.pool.wait_end();
        if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(10)) {
          stuck.store(true);
          return;
        }
      }
      if (st != objpool::Status::ok) ++c.status_errors;
      claim(m, h, 1, c);
      give_back(m, h, 1, c);
      // The object goes back to the pushers through a hand-off word below.
      while (m.pool.push(h) != objpool::Status::ok) {}
      received.fetch_add(1, std::memory_order_relaxed);
    }
  });
  // Two pushers hold the 4 objects and return them one at a time, then take
  // them again once the waiter is done with them.
  std::vector<std::thread> pushers;
  for (unsigned p = 0; p < 2; ++p) {
    pushers.emplace_back([&, p] {
      std::vector<uint32_t> mine = {all[2 * p], all[2 * p + 1]};
      while (received.load(std::memory_order_relaxed) < rounds && !stuck.load()) {
        for (uint32_t h : mine)
          if (m.pool.push(h) != objpool::Status::ok) std::abort();
        std::this_thread::yield();
        mine.clear();
        while (mine.size() < 2 && received.load(std::memory_order_relaxed) < rounds && !stuck.load()) {
          uint32_t h;
          if (m.pool.pop(h) == objpool::Status::ok) mine.push_back(h);
        }
      }
      for (uint32_t h : mine) m.pool.push(h);
    });
  }
  waiter.join();
  for (auto& t : pushers) t.join();
  std::printf("%-28s rounds=%u received=%u waiters left=%u\n", "waiting for pushes", rounds, received.load(),
              m.pool.waiters());
  CHECK(!stuck.load(), "waiting: a wake-up was lost (the waiter hung for 10 s)");
  CHECK(received.load() == rounds, "waiting: %u of %u rounds", received.load(), rounds);
  CHECK(m.pool.waiters() == 0, "waiting: the waiter count did not return to 0");
  CHECK(c.owner_errors == 0 && c.status_errors == 0, "waiting: ownership or status errors");
  check_conservation(m, "waiting");
}

// Drain after unchecked misuse: a double push links an object into a cycle;
// drain reports every reachable object once and says it met a corrupt link.
void run_corrupt_drain() {
  objpool::Config cfg;
  cfg.capacity = 8;
  cfg.slots = 2;
  cfg.object_size = cfg.stride = 8;
  cfg.align = 8;
  cfg.checked = false;
  Memory m(cfg);
  uint32_t h;
  CHECK(m.pool.pop(h) == objpool::Status::ok, "corrupt drain: pop");
  m.pool.push(h);
  m.pool.push(h);  // h -> h
  const std::vector<uint32_t> per = m.pool.per_slot();
  const uint32_t reachable = per[0] + per[1];
  CHECK(m.pool.close(), "corrupt drain: close");
  std::vector<uint32_t> out(8);
  std::vector<uint8_t> seen(1, 0);
  bool corrupt = false;
  const size_t n = m.pool.drain(out.data(), seen.data(), &corrupt);
  std::vector<uint8_t> once(8, 0);
  for (size_t i = 0; i < n; ++i) {
    CHECK(out[i] < 8 && !once[out[i]], "corrupt drain: %u twice or out of range", out[i]);
    if (out[i] < 8) once[out[i]] = 1;
  }
  CHECK(n == reachable, "corrupt drain: %zu released, %u reachable", n, reachable);
  CHECK(corrupt, "corrupt drain: the cycle must be reported");
  CHECK(m.pool.drain(out.data(), seen.data(), &corrupt) == 0, "corrupt drain: a second drain finds nothing new");
}

void run_errors() {
  objpool::Config cfg;
  cfg.capacity = 4;
  cfg.slots = 2;
  cfg.object_size = cfg.stride = 16;
  cfg.align = 16;
  Memory m(cfg);
  uint32_t a = 0, b = 0;
  CHECK(m.pool.pop(a) == objpool::Status::ok, "pop");
  CHECK(m.pool.push(a) == objpool::Status::ok, "push");
  CHECK(m.pool.push(a) == objpool::Status::double_push, "double push must be caught");
  CHECK(m.pool.push(4) == objpool::Status::out_of_range, "out of range");
  CHECK(m.pool.pop(a) == objpool::Status::ok && m.pool.pop(b) == objpool::Status::ok, "pop two");
  uint32_t dup[2] = {a, a};
  CHECK(m.pool.push_many(dup, 2) == objpool::Status::double_push, "a handle twice in one batch");
  CHECK(m.pool.state_of(a) == objpool::kStateTaken, "failed batch must leave the object out");
  uint32_t pair[2] = {a, b};
  CHECK(m.pool.push_many(pair, 2) == objpool::Status::ok, "batch push");
  check_conservation(m, "errors");
  // Forged metadata: attach must refuse it.
  std::vector<uint64_t> copy = m.meta;
  objpool::Pool p;
  auto* bytes = reinterpret_cast<uint8_t*>(copy.data());
  const size_t len = copy.size() * 8;
  bytes[objpool::layout::capacity] ^= 0x40;
  CHECK(objpool::Pool::attach(copy.data(), len, nullptr, 0, p) == objpool::Status::bad_layout, "forged capacity");
  CHECK(objpool::Pool::attach(m.meta.data(), 100, nullptr, 0, p) == objpool::Status::bad_layout, "truncated");
  CHECK(objpool::Pool::attach(m.meta.data(), len, nullptr, 0, p) == objpool::Status::ok, "valid attach");
  // Forged links inside the metadata never lead out of bounds.
  copy = m.meta;
  bytes = reinterpret_cast<uint8_t*>(copy.data());
  auto* next = reinterpret_cast<uint32_t*>(bytes + objpool::layout::heads + 2 * objpool::kLine);
  for (int i = 0; i < 4; ++i) next[i] = 0xdeadbeef;
  CHECK(objpool::Pool::attach(copy.data(), len, nullptr, 0, p) == objpool::Status::ok, "attach forged links");
  uint32_t out[8];
  size_t n = p.pop_many(out, 8);
  for (size_t i = 0; i < n; ++i) CHECK(out[i] < 4, "forged link followed out of range: %u", out[i]);
}

}  // namespace

int main(int argc, char** argv) {
  const double scale = argc > 1 ? std::atof(argv[1]) : 1.0;
  const unsigned hw = std::max(2u, std::thread::hardware_concurrency());
  // name, threads, capacity, slots, bulk, hold, ops per thread, checked
  const Case cases[] = {
      {"pop/push, per-cpu slots", 2, 1024, 2, 1, 4, 5000000, true},
      {"pop/push, one slot", 2, 1024, 1, 1, 4, 2000000, true},
      {"pop/push, unchecked", 2, 1024, 2, 1, 4, 2000000, false},
      {"batch 16, per-cpu slots", 2, 1024, 2, 16, 2, 2000000, true},
      {"overrun: asks for more", 4, 64, 2, 8, 4, 500000, true},
      {"overrun: tiny pool, 1 object", 3, 1, 2, 1, 1, 300000, true},
      {"more threads than cpus", hw * 2, 512, hw, 4, 3, 300000, true},
  };
  for (const Case& k : cases) run_case(k, scale);
  run_close_race(std::max(20u, unsigned(200 * scale)));
  run_cache_case(scale);
  run_wait_case(scale);
  run_corrupt_drain();
  run_errors();
  if (failures) {
    std::printf("native stress: %d checks failed\n", failures);
    return 1;
  }
  std::printf("native stress: all cases passed\n");
  return 0;
}
