// Per-operation cost of the C++ core alone (no JS): objpool pop+push and
// pop_many/push_many against a std::mutex + std::vector free list, at 1..T
// threads. Prints one JSON object on stdout.
//   core_bench [ops_per_thread] [max_threads] [rounds]

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../../native/objpool.hpp"

namespace {

struct MutexList {
  std::mutex mu;
  std::vector<uint32_t> free;
  explicit MutexList(uint32_t n) {
    free.reserve(n);
    for (uint32_t i = n; i-- > 0;) free.push_back(i);
  }
  bool pop(uint32_t& h) {
    std::lock_guard<std::mutex> l(mu);
    if (free.empty()) return false;
    h = free.back();
    free.pop_back();
    return true;
  }
  void push(uint32_t h) {
    std::lock_guard<std::mutex> l(mu);
    free.push_back(h);
  }
};

struct PoolMem {
  std::vector<uint64_t> meta;
  objpool::Pool pool;
  PoolMem(uint32_t capacity, uint32_t slots) {
    objpool::Config c;
    c.capacity = capacity;
    c.slots = slots;
    c.object_size = c.stride = 64;
    c.align = 8;
    const uint64_t bytes = objpool::meta_bytes_for(c.capacity, c.slots, c.checked);
    meta.resize(bytes / 8 + 1);
    objpool::Pool::format(meta.data(), bytes, c);
    objpool::Pool::attach(meta.data(), bytes, nullptr, 0, pool);
  }
};

volatile uint32_t sink;

// Runs body(thread_index) on `threads` threads after a common start gate;
// returns the wall time in ns.
template <class F>
double timed(unsigned threads, F body) {
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) {}
      body(t);
    });
  auto t0 = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  for (auto& t : ts) t.join();
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t ops = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 2000000;
  const unsigned max_threads =
      argc > 2 ? unsigned(std::atoi(argv[2])) : std::max(2u, std::thread::hardware_concurrency());
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 5;
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  std::string json = "{\"opsPerThread\":" + std::to_string(ops) + ",\"rows\":[";
  bool first = true;
  auto emit = [&](const char* impl, unsigned threads, std::vector<double> ns_per_op) {
    std::sort(ns_per_op.begin(), ns_per_op.end());
    char buf[256];
    snprintf(buf, sizeof buf, "%s{\"impl\":\"%s\",\"threads\":%u,\"median\":%.3f,\"min\":%.3f,\"max\":%.3f}",
             first ? "" : ",", impl, threads, median(ns_per_op), ns_per_op.front(), ns_per_op.back());
    json += buf;
    first = false;
  };
  // ns per operation (a pop or a push) as seen by one thread: `threads`
  // threads each doing `ops` pop+push pairs on `list`.
  auto pairs = [&](auto& list, unsigned threads) {
    return timed(threads,
                 [&](unsigned) {
                   uint32_t h = 0;
                   for (uint64_t i = 0; i < ops; ++i) {
                     list.pop(h);
                     list.push(h);
                   }
                 }) /
           double(ops * 2);
  };
  for (unsigned threads = 1; threads <= max_threads; threads *= 2) {
    std::vector<double> pool_ns, one_ns, mutex_ns, batch_ns;
    for (int r = 0; r < rounds; ++r) {
      PoolMem per_cpu(1024, cpus), one(1024, 1), batch(1024, cpus);
      MutexList mutex(1024);
      pool_ns.push_back(pairs(per_cpu.pool, threads));
      one_ns.push_back(pairs(one.pool, threads));
      mutex_ns.push_back(pairs(mutex, threads));
      batch_ns.push_back(timed(threads,
                               [&](unsigned) {
                                 uint32_t hs[32];
                                 for (uint64_t i = 0; i < ops / 32; ++i) {
                                   size_t n = batch.pool.pop_many(hs, 32);
                                   batch.pool.push_many(hs, n);
                                 }
                               }) /
                         double((ops / 32) * 32 * 2));
    }
    emit("objpool", threads, pool_ns);
    emit("objpool slots=1", threads, one_ns);
    emit("std::mutex + std::vector", threads, mutex_ns);
    emit("objpool batch 32", threads, batch_ns);
  }
  json += "]}";
  std::puts(json.c_str());
  sink = 0;
  return 0;
}
