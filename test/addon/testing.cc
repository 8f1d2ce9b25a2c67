// Test- and bench-only addon (never published, never loaded by lib/):
//   - runThreads(): std::threads working on a pool through objpool.hpp
//     directly, over the same memory that JS threads use;
//   - noop functions: the cost of crossing from JS to native, the floor for
//     any native pop/push (plain C napi_callback, and through node-addon-api).

#include <napi.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

// A hook inside Channel::send (see channel.hpp): sendPaused() below stops a
// send between its look at the closed flag and its claim.
#include <functional>
namespace {
thread_local std::function<void()> before_claim;
}
#define OBJPOOL_TEST_CHAN_BEFORE_CLAIM() \
  do {                                   \
    if (before_claim) before_claim();    \
  } while (0)
#include "objpool.hpp"

namespace {

struct Totals {
  uint64_t ops = 0, hits = 0, misses = 0, owner_errors = 0, status_errors = 0;
};

// Each thread pops (one at a time or in batches), stamps every object it
// holds with its id in the object's first word (a popper must find 0, a
// pusher must find its own id: the same protocol as the JS threads), holds a
// few objects for a while, and pushes them back.
void run_thread(objpool::Pool pool, uint32_t id, uint64_t ops, uint32_t bulk, Totals& out) {
  auto stamp = [&](uint32_t h) { return objpool::atomic_ref<uint32_t>(*static_cast<uint32_t*>(pool.object(h))); };
  std::vector<uint32_t> held;
  std::vector<uint32_t> buf(bulk);
  Totals t;
  auto give_back = [&] {
    for (uint32_t h : held)
      // relaxed: the stamp only has to be atomic; the pool's own CAS orders the hand-over.
      if (stamp(h).exchange(0, std::memory_order_relaxed) != id) ++t.owner_errors;
    const objpool::Status st =
        bulk > 1 ? pool.push_many(held.data(), held.size()) : (held.empty() ? objpool::Status::ok : pool.push(held[0]));
    if (st != objpool::Status::ok && st != objpool::Status::drain_needed) ++t.status_errors;
    t.ops += held.size();
    held.clear();
  };
  while (t.ops < ops) {
    objpool::Status st = objpool::Status::ok;
    size_t n = pool.pop_many(buf.data(), bulk, &st);
    if (st == objpool::Status::closed) break;
    ++t.ops;
    if (n == 0) {
      ++t.misses;
      continue;
    }
    t.hits += n;
    for (size_t i = 0; i < n; ++i) {
      if (stamp(buf[i]).exchange(id, std::memory_order_relaxed) != 0) ++t.owner_errors;
      held.push_back(buf[i]);
    }
    if (bulk == 1 && held.size() == 1) {
      // push one at a time through push() as well
      give_back();
    } else if (held.size() >= bulk * 2) {
      give_back();
    }
  }
  if (bulk == 1) {
    for (uint32_t h : held) {
      if (stamp(h).exchange(0, std::memory_order_relaxed) != id) ++t.owner_errors;
      pool.push(h);
    }
    held.clear();
  } else if (!held.empty()) {
    give_back();
  }
  out = t;
}

class Runner : public Napi::AsyncWorker {
 public:
  Runner(Napi::Env env, objpool::Pool pool, Napi::Object keep, uint32_t threads, uint64_t ops, uint32_t bulk,
         uint32_t id)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        pool_(pool),
        threads_(threads),
        ops_(ops),
        bulk_(bulk),
        id_(id),
        totals_(threads) {
    keep_ = Napi::Persistent(keep);  // the views: the memory outlives the threads
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    std::vector<std::thread> threads;
    for (uint32_t i = 0; i < threads_; ++i)
      threads.emplace_back(run_thread, pool_, id_ + i, ops_, bulk_, std::ref(totals_[i]));
    for (auto& t : threads) t.join();
  }
  void OnOK() override {
    Napi::Env env = Env();
    Totals sum;
    for (const Totals& t : totals_) {
      sum.ops += t.ops;
      sum.hits += t.hits;
      sum.misses += t.misses;
      sum.owner_errors += t.owner_errors;
      sum.status_errors += t.status_errors;
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("ops", double(sum.ops));
    r.Set("hits", double(sum.hits));
    r.Set("misses", double(sum.misses));
    r.Set("ownerErrors", double(sum.owner_errors));
    r.Set("statusErrors", double(sum.status_errors));
    deferred_.Resolve(r);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_;
  objpool::Pool pool_;
  uint32_t threads_;
  uint64_t ops_;
  uint32_t bulk_;
  uint32_t id_;
  std::vector<Totals> totals_;
};

// Attaches the core to info[0] (meta) and info[1] (arena) and records the
// views in `keep`, so that the memory outlives the native threads. False
// (with a JS exception pending) if the pool is invalid.
bool attach_views(const Napi::CallbackInfo& info, objpool::Pool& pool, Napi::Object& keep) {
  Napi::Uint8Array meta = info[0].As<Napi::Uint8Array>();
  Napi::Uint8Array arena = info[1].As<Napi::Uint8Array>();
  if (objpool::Pool::attach(meta.Data(), meta.ByteLength(), arena.Data(), arena.ByteLength(), pool) !=
      objpool::Status::ok) {
    Napi::Error::New(info.Env(), "invalid pool").ThrowAsJavaScriptException();
    return false;
  }
  keep = Napi::Object::New(info.Env());
  keep.Set("meta", meta);
  keep.Set("arena", arena);
  return true;
}

// runThreads(meta: Uint8Array, arena: Uint8Array, { threads, ops, bulk, id }) -> Promise<totals>
Napi::Value RunThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[2].As<Napi::Object>();
  objpool::Pool pool;
  Napi::Object keep;
  if (!attach_views(info, pool, keep)) return Napi::Value();
  if (pool.stride() < 4 || pool.stride() % 4 != 0)
    NAPI_THROW(Napi::Error::New(env, "runThreads: stride must be a multiple of 4"), Napi::Value());
  auto* r = new Runner(env, pool, keep, o.Get("threads").As<Napi::Number>().Uint32Value(),
                       uint64_t(o.Get("ops").As<Napi::Number>().DoubleValue()),
                       std::max(1u, o.Get("bulk").As<Napi::Number>().Uint32Value()),
                       o.Get("id").As<Napi::Number>().Uint32Value());
  Napi::Promise p = r->Promise();
  r->Queue();
  return p;
}

// Pops up to `n` objects (fewer if the pool runs empty).
std::vector<uint32_t> pop_up_to(objpool::Pool& pool, uint32_t n) {
  std::vector<uint32_t> held;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t h;
    if (pool.pop(h) == objpool::Status::ok) held.push_back(h);
  }
  return held;
}

// The JS hand-shake of the native threads below: sets gate[0] = 1, then
// waits until JS sets gate[1] = 1.
void at_gate(int32_t* gate) {
  // seq_cst: JS reads and writes the gate with Atomics (seq_cst).
  objpool::atomic_ref<int32_t>(gate[0]).store(1, std::memory_order_seq_cst);
  while (objpool::atomic_ref<int32_t>(gate[1]).load(std::memory_order_seq_cst) == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// holdThenReturn(meta, arena, gate: Int32Array, count) -> Promise<number>: a
// native thread takes `count` objects, sets gate[0] = 1, waits until JS sets
// gate[1] = 1, then pushes them back; resolves with how many pushes found the
// pool closed.
class HoldThenReturn : public Napi::AsyncWorker {
 public:
  HoldThenReturn(Napi::Env env, objpool::Pool pool, Napi::Object keep, int32_t* gate, uint32_t count)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), pool_(pool), gate_(gate), count_(count) {
    keep_ = Napi::Persistent(keep);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    std::vector<uint32_t> held = pop_up_to(pool_, count_);
    at_gate(gate_);
    for (uint32_t h : held)
      if (pool_.push(h) == objpool::Status::drain_needed) ++closed_pushes_;
  }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), closed_pushes_)); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_;
  objpool::Pool pool_;
  int32_t* gate_;
  uint32_t count_;
  uint32_t closed_pushes_ = 0;
};

Napi::Value HoldThenReturnJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Int32Array gate = info[2].As<Napi::Int32Array>();
  if (gate.ElementLength() < 2)
    NAPI_THROW(Napi::Error::New(env, "holdThenReturn: the gate needs 2 words"), Napi::Value());
  objpool::Pool pool;
  Napi::Object keep;
  if (!attach_views(info, pool, keep)) return Napi::Value();
  keep.Set("gate", gate);
  auto* w = new HoldThenReturn(env, pool, keep, gate.Data(), info[3].As<Napi::Number>().Uint32Value());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// sendFromThread(meta, arena, channel: Int32Array, gate: Int32Array, count)
// -> Promise<number>: a native thread pops `count` objects, sets gate[0] = 1,
// waits until JS sets gate[1] = 1, then sends them through the channel
// (objpool::Channel over the same memory as the HandleChannel), retrying
// while it is full; resolves with how many it sent, or rejects with the
// first status that was neither ok nor full.
class SendFromThread : public Napi::AsyncWorker {
 public:
  SendFromThread(Napi::Env env, objpool::Pool pool, objpool::Channel ch, Napi::Object keep, int32_t* gate,
                 uint32_t count)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        pool_(pool),
        ch_(ch),
        gate_(gate),
        count_(count) {
    keep_ = Napi::Persistent(keep);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    std::vector<uint32_t> held = pop_up_to(pool_, count_);
    at_gate(gate_);
    for (uint32_t h : held) {
      objpool::Status st;
      while ((st = ch_.send(pool_, h)) == objpool::Status::full) std::this_thread::yield();
      if (st != objpool::Status::ok && st != objpool::Status::drain_needed) {
        bad_ = int(st);
        return;
      }
      ++sent_;
    }
  }
  void OnOK() override {
    if (bad_ != 0)
      deferred_.Reject(Napi::Error::New(Env(), "send status " + std::to_string(bad_)).Value());
    else
      deferred_.Resolve(Napi::Number::New(Env(), sent_));
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_;
  objpool::Pool pool_;
  objpool::Channel ch_;
  int32_t* gate_;
  uint32_t count_;
  uint32_t sent_ = 0;
  int bad_ = 0;
};

// The arguments (meta, arena, channel: Int32Array, gate: Int32Array) of the
// channel functions here: the core attached to them, and everything the
// native thread uses kept alive in `keep`. False with a JS error pending.
bool channel_args(const Napi::CallbackInfo& info, const char* name, objpool::Pool& pool, objpool::Channel& ch,
                  Napi::Object& keep, int32_t** gate_words) {
  Napi::Env env = info.Env();
  Napi::Int32Array chan = info[2].As<Napi::Int32Array>();
  Napi::Int32Array gate = info[3].As<Napi::Int32Array>();
  if (gate.ElementLength() < 2) {
    Napi::Error::New(env, std::string(name) + ": the gate needs 2 words").ThrowAsJavaScriptException();
    return false;
  }
  if (!attach_views(info, pool, keep)) return false;
  if (objpool::Channel::attach(chan.Data(), chan.ByteLength(), ch) != objpool::Status::ok) {
    Napi::Error::New(env, "invalid channel").ThrowAsJavaScriptException();
    return false;
  }
  keep.Set("gate", gate);
  keep.Set("channel", chan);
  *gate_words = gate.Data();
  return true;
}

Napi::Value SendFromThreadJs(const Napi::CallbackInfo& info) {
  objpool::Pool pool;
  objpool::Channel ch;
  Napi::Object keep;
  int32_t* gate;
  if (!channel_args(info, "sendFromThread", pool, ch, keep, &gate)) return Napi::Value();
  auto* w = new SendFromThread(info.Env(), pool, ch, keep, gate, info[4].As<Napi::Number>().Uint32Value());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// sendPaused(meta, arena, channel, gate) -> Promise<string>: a native thread
// pops one object and sends it, stopping inside the send after its look at
// the closed flag and before its claim: it sets gate[0] = 1 there and waits
// until JS sets gate[1] = 1. Resolves with the send's status ('ok',
// 'closed', ...); an object not sent is pushed back.
class SendPaused : public Napi::AsyncWorker {
 public:
  SendPaused(Napi::Env env, objpool::Pool pool, objpool::Channel ch, Napi::Object keep, int32_t* gate)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), pool_(pool), ch_(ch), gate_(gate) {
    keep_ = Napi::Persistent(keep);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    uint32_t h;
    if (pool_.pop(h) != objpool::Status::ok) return;
    before_claim = [this] { at_gate(gate_); };
    const objpool::Status st = ch_.send(pool_, h);
    before_claim = nullptr;
    if (st != objpool::Status::ok && st != objpool::Status::drain_needed) pool_.push(h);
    status_ = st == objpool::Status::ok ? "ok" : st == objpool::Status::closed ? "closed" : "other";
  }
  void OnOK() override { deferred_.Resolve(Napi::String::New(Env(), status_)); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_;
  objpool::Pool pool_;
  objpool::Channel ch_;
  int32_t* gate_;
  std::string status_ = "empty";
};

Napi::Value SendPausedJs(const Napi::CallbackInfo& info) {
  objpool::Pool pool;
  objpool::Channel ch;
  Napi::Object keep;
  int32_t* gate;
  if (!channel_args(info, "sendPaused", pool, ch, keep, &gate)) return Napi::Value();
  auto* w = new SendPaused(info.Env(), pool, ch, keep, gate);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

napi_value NoopC(napi_env, napi_callback_info) { return nullptr; }

// The pieces a bound pop/push pays for beyond the crossing, one at a time,
// so the benchmark can split the binding's cost (bench/scenarios/crossing.js).
napi_value NoopData(napi_env env, napi_callback_info info) {
  void* data;
  napi_get_cb_info(env, info, nullptr, nullptr, nullptr, &data);
  return nullptr;
}
napi_value NoopReturnInt(napi_env env, napi_callback_info info) {
  void* data;
  napi_get_cb_info(env, info, nullptr, nullptr, nullptr, &data);
  napi_value r;
  napi_create_int32(env, 7, &r);
  return r;
}
napi_value NoopArgDouble(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  void* data;
  napi_get_cb_info(env, info, &argc, &arg, nullptr, &data);
  double d;
  napi_get_value_double(env, arg, &d);
  return nullptr;
}
Napi::Value NoopWrapped(const Napi::CallbackInfo&) { return Napi::Value(); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("runThreads", Napi::Function::New(env, RunThreads, "runThreads"));
  exports.Set("holdThenReturn", Napi::Function::New(env, HoldThenReturnJs, "holdThenReturn"));
  exports.Set("sendFromThread", Napi::Function::New(env, SendFromThreadJs, "sendFromThread"));
  exports.Set("sendPaused", Napi::Function::New(env, SendPausedJs, "sendPaused"));
  napi_value noop;
  napi_create_function(env, "noop", NAPI_AUTO_LENGTH, NoopC, nullptr, &noop);
  exports.Set("noop", Napi::Value(env, noop));
  exports.Set("noopWrapped", Napi::Function::New(env, NoopWrapped, "noopWrapped"));
  const std::pair<const char*, napi_callback> parts[] = {
      {"noopData", NoopData}, {"noopReturnInt", NoopReturnInt}, {"noopArgDouble", NoopArgDouble}};
  for (const auto& [name, cb] : parts) {
    napi_value fn;
    napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn);
    exports.Set(name, Napi::Value(env, fn));
  }
  return exports;
}

}  // namespace

NODE_API_MODULE(objpool_testing, Init)
