// The N-API binding: argument checks and error mapping over objpool.hpp.
//
// pop/push (and the batch calls) are the hot path and are plain C
// `napi_callback`s bound to one pool through the callback's data pointer, so
// a call costs little more than the JS-to-native crossing itself (a
// node-addon-api CallbackInfo wrapper costs about twice the crossing; see
// bench/). Everything else uses node-addon-api.
//
// Memory: pool memory is never owned here. The metadata is a
// SharedArrayBuffer and so is each view's own memory (the register and the
// per-thread cache): neither can be detached, resized or replaced, and the
// binding holds them by strong references, released by its last finalizer,
// so they outlive every function that can touch them. Nothing the binding
// reads or writes is exposed on an object JS can reach. An arena that is a
// plain ArrayBuffer (a user's, which the user can detach) is never touched
// here: only its length is checked.
//
// Threads: a Binding is used on the thread that created it, except for the
// fields documented otherwise. A process-wide registry maps each pool to its
// bindings, for close() (flush every thread's cache, route late pushes to
// the closer) and stats() (count every thread's cached objects).

#include <napi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "objpool.hpp"

namespace {

using objpool::Status;

// Words of a view's own memory (an Int32Array over a SharedArrayBuffer that
// lib/pool.ts creates and never exposes). Who reads what, and what orders it:
//   - the registers, the limit and the cached handles are this thread's
//     alone: its JS and the native calls its JS makes (program order; plain
//     accesses, or relaxed atomics where another thread may also look);
//   - the count is also read by other threads' stats() (relaxed loads). It is
//     exact there once the reader has synchronized with this thread after
//     its last pool call (the Atomics store/load, postMessage or join that
//     told the reader this thread is idle), which orders this thread's
//     stores, plain JS ones included, before the load: DESIGN's "exact
//     whenever no thread is inside a pool call".
enum MemWord : size_t {
  kRegPopped = 0,  // pop(): the handle popped, or -1
  kRegPush = 1,    // push(): the handle to push
  kCached = 2,     // how many handles the cache holds
  kLimit = 3,      // how many it may hold now: its share of the pool's cache budget (<= the cache's room)
  // A channel call of this thread's JS between claiming a cell and finishing
  // with it (lib/channel.ts): the channel's id (0: none), the position and
  // the handle. worker.terminate() can stop JS there (at an Atomics call);
  // teardown() then finishes the call (see repair_channels()).
  kSendChan = 4,
  kSendPos = 5,
  kSendHandle = 6,
  kRecvChan = 7,
  kRecvPos = 8,
  kRecvHandle = 9,
  kCacheBase = 12,  // the cached handles, oldest first
};

// Waiting: a thread blocked on the pool's wake word, calling the owning JS
// thread back (through a thread-safe function) when a push changes it.
struct Waiter {
  std::thread thread;
  std::atomic<bool> stop{false};
  std::atomic<bool> exited{false};          // the helper left its loop
  std::atomic<bool> pending{false};         // a call back is queued and has not run yet
  std::atomic<uint32_t> waiting{0};         // `registered`, for the helper: no call back while 0
  napi_threadsafe_function wake = nullptr;  // made without a JS function: it holds nothing alive
  napi_ref on_wake = nullptr;               // the JS callback: strong while there are waiters, weak otherwise
  uint32_t registered = 0;                  // waiters this view added to the pool's count (JS thread only)
  uint32_t watching = 0;  // a channel's helper: 1 while this view waits on the channel (JS thread only)
};

struct Binding;
struct ChanPeers;

// A handle channel opened through a view (HandleChannel in lib/channel.ts):
// owned by a JS external, whose finalizer frees it. `ref` holds the
// channel's memory (a SharedArrayBuffer view) until then, so the memory
// outlives this record; while the record is listed (in the registry and in
// its peers), a closer or a sender in any thread may use it.
struct ChanRec {
  objpool::Channel ch;
  Binding* owner = nullptr;
  napi_ref ref = nullptr;
  // Names the channel in the view's calls and memory (kSendChan, kRecvChan):
  // its index in the view's table, plus one. Reused once the record is freed.
  int32_t id = 0;
  std::shared_ptr<ChanPeers> peers;  // every record of this channel in the process; set at open, never cleared
  bool listed = false;               // in `peers` and the registry: changed under both locks
  // Read by senders in any thread under peers->mutex (wake_channel()),
  // which keeps the record and its helper alive. `waiter` is set once,
  // under that mutex, and cleared (the helper stopped) only under it;
  // `waiting` changes on the owner's thread without a lock (see
  // ChanWaitBegin).
  std::atomic<bool> waiting{false};  // counted in the channel's waiters (and as `watching` by `waiter`)
  Waiter* waiter = nullptr;          // blocked on the channel's wake word, for this view's receiveAsync()
};

// The records of one channel in this process (one per view that opened or
// attached it, in any thread): what a send that finds waiters looks through
// (wake_channel()), without the registry lock and without the pool's other
// channels. `recs` changes under the registry lock and `mutex` (taken in
// that order, and `mutex` never before the registry's), so either lock
// keeps it still for a reader.
struct ChanPeers {
  std::mutex mutex;
  std::vector<ChanRec*> recs;
};

// What a wake-up helper blocks on: the pool's wake word (pushes, close) or a
// channel's (its sends, its close, the pool's close).
struct ChanSource {
  objpool::Channel ch;
  uint32_t wake_seq() const { return ch.wake_seq(); }
  void wait_for_push(uint32_t seen) const { ch.wait_for_send(seen); }
  void wake_waiters() { ch.wake_waiters(); }
};

// One attached view of a pool, shared by the functions created for it.
struct Binding {
  objpool::Pool pool;
  napi_env env = nullptr;
  const void* key = nullptr;                       // the metadata's address: one per pool in the process
  int functions = 0;                               // live bound functions; the last finalizer frees this
  bool torn_down = false;                          // teardown() ran (env cleanup or last finalizer)
  int32_t* mem = nullptr;                          // see MemWord
  uint32_t cache_cap = 0;                          // handles the cache may hold
  napi_ref refs[3] = {nullptr, nullptr, nullptr};  // the metadata, arena and memory views
  napi_threadsafe_function flusher = nullptr;      // empties the cache on this thread (close, waiters)
  std::atomic<bool> flush_queued{false};           // a flush is queued on `flusher` and has not run yet
  napi_ref on_close = nullptr;                     // JS notice that the pool closed (weak: the view's JS side keeps it)
  napi_ref owner = nullptr;                        // the view's JS object (weak), for views() (metrics)
  uint64_t opened = 0;                             // the order views were opened in, process-wide (under the lock)
  napi_threadsafe_function closer = nullptr;       // set while this view drains a closed pool
  bool closer_ref = false;    // a push on this thread queued a drain: keep the loop alive until it runs
  std::vector<uint8_t> seen;  // the closer's bitmap: objects released so far
  bool corrupt = false;       // a drain met an object twice (unchecked misuse)
  Waiter* waiter = nullptr;
  std::string where;  // " (pool \"name\")" for error messages, or empty for a pool without a name
  // A zero pool of user objects (fromBuffers) that are all views of
  // SharedArrayBuffers: each object's bytes, held by a strong reference (shared
  // memory cannot be detached), so that a push zeroes it natively, with no JS
  // between its state change and its store (see lib/pool.ts, makePush).
  std::vector<uint8_t*> objects;
  std::vector<napi_ref> object_refs;
  // The channels open through this view, by id - 1 (nullptr: a free id,
  // listed in free_ids): a call names its channel by id, found in O(1).
  std::vector<ChanRec*> channels;
  std::vector<int32_t> free_ids;

  // Zeroes an object this thread owns: in the arena, or one of `objects`.
  void zero_object(uint32_t h) {
    if (pool.zero_object(h)) return;
    if (h < objects.size()) std::memset(objects[h], 0, pool.object_size());
  }
  // zero_object() as the callback the core's give-backs take.
  auto zeroer() {
    return [this](uint32_t h) { zero_object(h); };
  }

  // The cache's count, clamped: the memory is ours, but nothing read from
  // memory is trusted to stay in bounds.
  uint32_t cached() const {
    // relaxed: read by other threads for stats(); written by JS on this one.
    const int32_t n = objpool::atomic_ref<int32_t>(mem[kCached]).load(std::memory_order_relaxed);
    return n < 0 ? 0 : std::min<uint32_t>(uint32_t(n), cache_cap);
  }
  uint32_t* cache() const { return reinterpret_cast<uint32_t*>(mem + kCacheBase); }
  // The cache's share of the pool's budget, clamped likewise. Written here
  // only, on this thread; JS reads it on the push path.
  // relaxed (load and store): written on this thread only and read by this
  // thread's JS (program order: the write precedes the return to JS); other
  // threads read it only as a hint (flush_others_locked()).
  uint32_t limit() const {
    const int32_t n = objpool::atomic_ref<int32_t>(mem[kLimit]).load(std::memory_order_relaxed);
    return std::min<uint32_t>(uint32_t(std::max<int32_t>(n, 0)), cache_cap);
  }
  void set_limit(uint32_t n) { objpool::atomic_ref<int32_t>(mem[kLimit]).store(int32_t(n), std::memory_order_relaxed); }
  // Tops the cache's share up to its room, as far as the budget allows.
  uint32_t reserve() {
    uint32_t l = limit();
    if (l < cache_cap) set_limit(l += pool.reserve_cache(cache_cap - l));
    return l;
  }
};

// The registry. Deliberately leaked so that threads still running at process
// exit never see it destroyed. Only touched off the fast path.
struct Members {
  Binding* closer = nullptr;
  std::vector<Binding*> all;
  // Every channel of the pool open in this process, by its memory: a close
  // takes back what they hold.
  std::unordered_map<const void*, std::shared_ptr<ChanPeers>> channels;
};
std::mutex& registry_mutex() {
  static auto* m = new std::mutex;
  return *m;
}
std::unordered_map<const void*, Members>& registry() {
  static auto* m = new std::unordered_map<const void*, Members>;
  return *m;
}

// Takes a channel record out of its pool's members and its peers (under the
// registry lock): from then on no closer or sender of another thread uses it.
void unlist_channel_locked(Members& m, ChanRec* r) {
  if (!r->listed) return;
  r->listed = false;
  std::lock_guard<std::mutex> lock(r->peers->mutex);
  auto& recs = r->peers->recs;
  recs.erase(std::remove(recs.begin(), recs.end(), r), recs.end());
  if (recs.empty()) m.channels.erase(r->ch.memory());  // r->peers keeps the peers (and their mutex) alive
}

// Returns the cache's objects to the pool (this binding's thread only). True
// if the pool is closed and the closer must drain again. `rezero`: zero them
// first (a zero pool's thread torn down between caching an object and
// zeroing it).
bool flush_cache(Binding* b, bool rezero = false) {
  const uint32_t n = b->cached();
  if (n == 0) return false;
  if (rezero && b->pool.zeroes())
    for (uint32_t i = 0; i < n; ++i) b->zero_object(b->cache()[i]);
  // relaxed: the cache is this thread's; the count is read racily by stats().
  objpool::atomic_ref<int32_t>(b->mem[kCached]).store(0, std::memory_order_relaxed);
  return b->pool.give(b->cache(), n) == Status::drain_needed;
}

// flush_cache(), and the cache's share of the budget goes back too: for a
// thread asked to give back what it holds (it reserves again on its next
// refill or spill) and for one that goes away.
bool flush_and_release(Binding* b, bool rezero = false) {
  const bool drain = flush_cache(b, rezero);
  b->pool.release_cache(b->limit());
  b->set_limit(0);
  return drain;
}

// Asks every other view of the pool to empty its cache and give back its
// share of the budget: this thread's at once, other threads' on their event
// loops (one queued request each). `holders`: only the views whose cache
// holds objects or budget (a reclaim, not a close). Registry lock held by
// the caller. True if a view of this thread gave objects back; `drain` (if
// given) is set when they went into a closed pool: the caller asks the closer
// to drain once the lock is released (request_drain takes it).
bool flush_others_locked(Binding* b, bool holders = false, bool* drain = nullptr) {
  auto it = registry().find(b->key);
  if (it == registry().end()) return false;
  const bool closed = b->pool.is_closed();
  bool here = false;
  for (Binding* m : it->second.all) {
    if (m == b || m->flusher == nullptr) continue;
    // relaxed loads (cached(), limit()): a hint; a view skipped here is asked
    // again by the next empty pop.
    if (holders && m->cached() == 0 && m->limit() == 0) continue;
    // This thread's views: their caches now; a close notice on the next turn.
    if (m->env == b->env) {
      here |= m->cached() > 0;
      if (flush_and_release(m) && drain != nullptr) *drain = true;
      if (!closed || m->on_close == nullptr) continue;
    }
    // acq_rel: at most one queued request; call_flush() clears the flag before it flushes.
    if (!m->flush_queued.exchange(true, std::memory_order_acq_rel))
      napi_call_threadsafe_function(m->flusher, nullptr, napi_tsfn_nonblocking);
  }
  return here;
}

void request_drain(napi_env env, const void* key);

// A pop found the pool empty: the other views that cache objects give them
// back (see flush_others_locked). True if views of this thread did so at
// once: the pop may try again.
bool reclaim(Binding* b) {
  // Nothing reserved (relaxed: a hint, as in flush_others_locked()): no cache
  // holds an object, and an empty pop stays one lock-free call.
  if (b->pool.cache_room() >= objpool::cache_budget_for(b->pool.capacity())) return false;
  bool here, drain = false;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    here = flush_others_locked(b, true, &drain);
  }
  if (drain) request_drain(b->env, b->key);
  return here;
}

void request_drain(napi_env env, const void* key) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto it = registry().find(key);
  if (it == registry().end() || it->second.closer == nullptr) return;
  // Under the lock, so teardown cannot release the function in between.
  Binding* closer = it->second.closer;
  if (closer->env == env && !closer->closer_ref) {
    // A push on the closing thread itself: the drain it queues must run
    // before this loop may exit. (Only that thread may ref the function.)
    napi_ref_threadsafe_function(env, closer->closer);
    closer->closer_ref = true;
  }
  napi_call_threadsafe_function(closer->closer, nullptr, napi_tsfn_nonblocking);
}

// Calls `fn` on this thread; an exception it leaves is reported as uncaught
// (as for any callback from the event loop), never left pending.
void call_js(napi_env env, napi_value fn) {
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  if (napi_call_function(env, undefined, fn, 0, nullptr, nullptr) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
}

// Runs on the closing thread for each drain request.
void call_drain(napi_env env, napi_value fn, void* context, void*) {
  if (env == nullptr) return;  // torn down: `context` may be gone
  auto* b = static_cast<Binding*>(context);
  if (b->closer_ref && b->closer != nullptr) {
    napi_unref_threadsafe_function(env, b->closer);
    b->closer_ref = false;
  }
  call_js(env, fn);
}

// Runs on a view's own thread when a thread closed the pool (or waits for
// objects): empties the cache, and tells the view's JS side of a close.
void call_flush(napi_env env, napi_value, void* context, void*) {
  if (env == nullptr) return;  // torn down: `context` may be gone
  auto* b = static_cast<Binding*>(context);
  // release: a request made after this point queues another flush.
  b->flush_queued.store(false, std::memory_order_release);
  if (flush_and_release(b)) request_drain(env, b->key);
  napi_value fn = nullptr;
  if (b->on_close != nullptr && b->pool.is_closed()) napi_get_reference_value(env, b->on_close, &fn);
  if (fn != nullptr) call_js(env, fn);
}

// Creates the view's flusher (the thread-safe function other threads use to
// reach it); published under the registry lock, where they read it.
bool make_flusher(napi_env env, Binding* b) {
  napi_value name;
  napi_create_string_utf8(env, "objpool.flush", NAPI_AUTO_LENGTH, &name);
  napi_threadsafe_function tsfn;
  if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, b, call_flush, &tsfn) !=
      napi_ok)
    return false;
  napi_unref_threadsafe_function(env, tsfn);
  std::lock_guard<std::mutex> lock(registry_mutex());
  b->flusher = tsfn;
  return true;
}

// Runs on a waiting view's thread when a push (or close) changed the wake word.
void call_wake(napi_env env, napi_value, void* context, void*) {
  if (env == nullptr) return;  // torn down: `context` may be gone
  auto* w = static_cast<Waiter*>(context);
  // acq_rel: pairs with the helper's exchange; a change after this point
  // queues another call, and the pops below come after the change it saw.
  w->pending.exchange(false, std::memory_order_acq_rel);
  napi_value fn = nullptr;
  if (w->on_wake != nullptr) napi_get_reference_value(env, w->on_wake, &fn);
  if (fn != nullptr) call_js(env, fn);
}

template <class Source>
void wait_loop(Source src, Waiter* w, uint32_t seen) {
  // acquire: pairs with the release store in stop_helper().
  while (!w->stop.load(std::memory_order_acquire)) {
    src.wait_for_push(seen);
    const uint32_t now = src.wake_seq();
    if (now == seen) continue;  // spurious
    seen = now;
    // relaxed: a hint; the view's thread registers before it relies on a wake-up.
    if (w->waiting.load(std::memory_order_relaxed) == 0) continue;  // nobody waits in this view
    // acq_rel: one queued call at a time; call_wake() clears the flag.
    if (!w->stop.load(std::memory_order_acquire) && !w->pending.exchange(true, std::memory_order_acq_rel))
      napi_call_threadsafe_function(w->wake, nullptr, napi_tsfn_nonblocking);
  }
  // release: stop_helper() may join once it sees this.
  w->exited.store(true, std::memory_order_release);
}

// Stops and frees a helper started by start_helper().
template <class Source>
void stop_helper(napi_env env, Waiter* w, Source src) {
  // release: the helper sees the flag once the wake below lets it run.
  w->stop.store(true, std::memory_order_release);
  // Each wake changes the word, so the helper cannot sleep through it; again
  // until it has left, since JS can rewrite the word (it is shared memory).
  // acquire: pairs with the helper's release store.
  while (!w->exited.load(std::memory_order_acquire)) {
    src.wake_waiters();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  w->thread.join();
  napi_release_threadsafe_function(w->wake, napi_tsfn_abort);
  if (w->on_wake != nullptr) napi_delete_reference(env, w->on_wake);
  delete w;
}

// A channel's helper, and this view's waiting on the channel, undone.
void stop_chan_waiter(napi_env env, ChanRec* r) {
  Waiter* w;
  {
    // Under the peers' lock: senders in other threads call `waiter` back
    // directly (wake_channel()).
    std::lock_guard<std::mutex> lock(r->peers->mutex);
    // relaxed: the owner's own flag (this is its thread, or its record is
    // being freed); senders read it under the lock held here.
    if (r->waiting.exchange(false, std::memory_order_relaxed)) r->ch.remove_waiter();
    w = r->waiter;
    r->waiter = nullptr;
  }
  if (w != nullptr) stop_helper(env, w, ChanSource{r->ch});
}

void stop_waiter(Binding* b) {
  for (ChanRec* r : b->channels)
    if (r != nullptr) stop_chan_waiter(b->env, r);
  Waiter* w = b->waiter;
  if (w == nullptr) return;
  while (w->registered > 0) {
    b->pool.wait_end();
    --w->registered;
  }
  stop_helper(b->env, w, b->pool);
  b->waiter = nullptr;
}

// Everything a view holds in the pool and the process, given back once: on
// the last finalizer, or when its thread's environment is torn down (a
// worker that exits or is terminated runs no more JS, so its cached objects
// are pushed back here).
// A thread that stops (worker.terminate() stops JS at a function entry or
// an Atomics call) may leave a channel call half done: a cell claimed and
// not published (the channel would stall), or one taken and the object not
// yet in the thread's hands. The view's memory says which (kSendChan,
// kRecvChan): a send is published (the object, if it went in flight, else
// a hole); a received object goes back to the pool. Then each channel gets
// what a send owes it: waiting receivers woken, and its objects back into a
// closed pool. True if objects went into a closed pool.
bool repair_channels(Binding* b) {
  auto zero = b->zeroer();
  bool drain = false;
  for (ChanRec* r : b->channels) {
    if (r == nullptr) continue;
    // relaxed loads and stores: this thread's own words (its JS has stopped).
    auto word = [b](MemWord w) { return objpool::atomic_ref<int32_t>(b->mem[w]); };
    if (word(kSendChan).load(std::memory_order_relaxed) == r->id) {
      r->ch.finish_send(b->pool, uint32_t(word(kSendPos).load(std::memory_order_relaxed)),
                        uint32_t(word(kSendHandle).load(std::memory_order_relaxed)));
      word(kSendChan).store(0, std::memory_order_relaxed);
    }
    if (word(kRecvChan).load(std::memory_order_relaxed) == r->id) {
      drain |= r->ch.finish_receive(b->pool, uint32_t(word(kRecvPos).load(std::memory_order_relaxed)),
                                    uint32_t(word(kRecvHandle).load(std::memory_order_relaxed)), zero);
      word(kRecvChan).store(0, std::memory_order_relaxed);
    }
    drain |= r->ch.after_send(b->pool, zero) == Status::drain_needed;
  }
  return drain;
}

void teardown(Binding* b) {
  if (b->torn_down) return;
  b->torn_down = true;
  stop_waiter(b);
  const bool repaired = repair_channels(b);
  const bool drain = flush_and_release(b, true) || repaired;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto it = registry().find(b->key);
    if (it != registry().end()) {
      auto& all = it->second.all;
      all.erase(std::remove(all.begin(), all.end(), b), all.end());
      if (it->second.closer == b) it->second.closer = nullptr;
      for (ChanRec* r : b->channels)
        if (r != nullptr) unlist_channel_locked(it->second, r);
      if (all.empty() && it->second.closer == nullptr) registry().erase(it);
    }
  }
  if (drain) request_drain(b->env, b->key);
  if (b->closer != nullptr) napi_release_threadsafe_function(b->closer, napi_tsfn_abort);
  if (b->flusher != nullptr) napi_release_threadsafe_function(b->flusher, napi_tsfn_abort);
  b->closer = b->flusher = nullptr;
}

void env_cleanup(void* arg) { teardown(static_cast<Binding*>(arg)); }

// ---- errors ---------------------------------------------------------------

std::string describe(napi_env env, napi_value v) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return "an unknown value";
  switch (t) {
    case napi_undefined:
      return "undefined";
    case napi_null:
      return "null";
    case napi_boolean:
      return "type boolean";
    case napi_number:
      return "type number";
    case napi_string:
      return "type string";
    case napi_symbol:
      return "type symbol";
    case napi_bigint:
      return "type bigint";
    case napi_function:
      return "function";
    default:
      return "an instance of an object";
  }
}

napi_value throw_type(napi_env env, const char* name, const char* expected, napi_value got) {
  std::string msg =
      std::string("The \"") + name + "\" argument must be " + expected + ". Received " + describe(env, got);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg.c_str());
  return nullptr;
}

napi_value throw_range(napi_env env, const char* name, double limit, double got) {
  char msg[192];
  snprintf(msg, sizeof msg,
           "The value of \"%s\" is out of range. It must be an integer >= 0 and < %.0f. Received %.17g", name, limit,
           got);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return nullptr;
}

// A pool error for view `b`: its message names the pool, if it has a name.
napi_value throw_pool(napi_env env, const Binding* b, Status st, double handle = -1) {
  char msg[192];
  switch (st) {
    case Status::closed:
      napi_throw_error(env, "ERR_OBJPOOL_CLOSED", ("The pool" + b->where + " is closed").c_str());
      break;
    case Status::double_push:
      if (handle >= 0)
        snprintf(msg, sizeof msg, "Object %.0f is not out of the pool%s: pushed twice, or never popped", handle,
                 b->where.c_str());
      else
        snprintf(msg, sizeof msg,
                 "A handle in the batch is not out of the pool%s (pushed twice, given twice, or never popped); "
                 "nothing was pushed",
                 b->where.c_str());
      napi_throw_error(env, "ERR_OBJPOOL_DOUBLE_PUSH", msg);
      break;
    default:
      napi_throw_error(env, "ERR_OBJPOOL_BAD_DESCRIPTOR", ("The pool metadata" + b->where + " is invalid").c_str());
      break;
  }
  return nullptr;
}

Binding* binding_of(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  void* data = nullptr;
  napi_get_cb_info(env, info, argc, argv, nullptr, &data);
  return static_cast<Binding*>(data);
}

// A whole number in [0, limit), else a thrown error and false.
bool get_index(napi_env env, napi_value v, const char* name, double limit, uint32_t* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    throw_type(env, name, "of type number", v);
    return false;
  }
  if (!(d >= 0 && d < limit) || d != std::floor(d)) {
    throw_range(env, name, limit, d);
    return false;
  }
  *out = static_cast<uint32_t>(d);
  return true;
}

// A Uint32Array argument and an optional count <= its length.
bool get_u32_array(napi_env env, napi_value arr, napi_value count_v, const char* name, uint32_t** data, size_t* count) {
  bool is_ta = false;
  napi_is_typedarray(env, arr, &is_ta);
  napi_typedarray_type type;
  size_t length = 0;
  void* ptr = nullptr;
  if (!is_ta || napi_get_typedarray_info(env, arr, &type, &length, &ptr, nullptr, nullptr) != napi_ok ||
      type != napi_uint32_array) {
    throw_type(env, name, "an instance of Uint32Array", arr);
    return false;
  }
  napi_valuetype t = napi_undefined;
  if (count_v != nullptr) napi_typeof(env, count_v, &t);
  uint32_t n = static_cast<uint32_t>(length);
  if (t != napi_undefined && !get_index(env, count_v, "count", double(length) + 1, &n)) return false;
  *data = static_cast<uint32_t*>(ptr);
  *count = n;
  return true;
}

// Caller arrays may be views of shared memory that other threads change, so
// the core only ever sees a private copy. n is at most the pool's capacity
// (callers clamp it), so this is at most 64 MiB; nullptr (and a thrown
// ERR_OBJPOOL_NO_MEMORY) if even that cannot be had. No C++ exception may
// leave a plain napi_callback.
uint32_t* scratch(napi_env env, size_t n) {
  thread_local std::vector<uint32_t> v;
  // At least one entry: an empty vector's data() is null, the failure value.
  if (v.size() < std::max<size_t>(n, 1)) {
    try {
      v.resize(std::max<size_t>(n, 1));
    } catch (const std::bad_alloc&) {
      napi_throw_error(env, "ERR_OBJPOOL_NO_MEMORY", "Cannot allocate the scratch space for a batch");
      return nullptr;
    }
  }
  return v.data();
}

// ---- bound functions ------------------------------------------------------

// pop/push without a cache: the handle travels through the view's memory
// (words kRegPopped and kRegPush), which the JS side reads and writes, so a
// call needs no argument or return value conversion (npm run bench --
// crossing). lib/pool.ts checks the handle's type and range before writing
// it (for the error codes); the core's own bounds check guards memory.
napi_value PopReg(napi_env env, napi_callback_info info) {
  Binding* b = binding_of(env, info, nullptr, nullptr);
  uint32_t h;
  Status st = b->pool.pop(h);
  if (st == Status::empty && reclaim(b)) st = b->pool.pop(h);
  if (st == Status::closed) return throw_pool(env, b, st);
  if (st == Status::empty) b->pool.count(objpool::Counter::exhausted);
  b->mem[kRegPopped] = st == Status::ok ? static_cast<int32_t>(h) : -1;
  return nullptr;
}

// Reports a push's status: a drain request, or the error to throw.
napi_value pushed(napi_env env, Binding* b, Status st, uint32_t h) {
  if (st == Status::drain_needed)
    request_drain(env, b->key);
  else if (st == Status::out_of_range)
    return throw_range(env, "handle", b->pool.capacity(), double(int32_t(h)));
  else if (st != Status::ok)
    return throw_pool(env, b, st, h);
  return nullptr;
}

napi_value PushReg(napi_env env, napi_callback_info info) {
  Binding* b = binding_of(env, info, nullptr, nullptr);
  const uint32_t h = static_cast<uint32_t>(b->mem[kRegPush]);
  return pushed(env, b, b->pool.push(h), h);
}

// push of an object the JS side already moved Taken -> Free (a cache's slow
// path: the pool is closed, or threads wait for objects).
// The cache goes back too: after a close, a thread busy in synchronous code
// returns it on its next call; while threads wait, they get what it held.
napi_value PushFree(napi_env env, napi_callback_info info) {
  Binding* b = binding_of(env, info, nullptr, nullptr);
  const uint32_t h = static_cast<uint32_t>(b->mem[kRegPush]);
  const bool drain = flush_cache(b);
  const Status st = b->pool.give(&h, 1);
  return pushed(env, b, drain ? Status::drain_needed : st, h);
}

// zeroReg(): zeroes the object in kRegPush (the JS side owns it: its state
// word went Taken -> Free by this thread's compare-exchange). A memset: JS
// fills of shared memory go byte by byte.
napi_value ZeroReg(napi_env env, napi_callback_info info) {
  Binding* b = binding_of(env, info, nullptr, nullptr);
  b->zero_object(static_cast<uint32_t>(b->mem[kRegPush]));
  return nullptr;
}

// zeroPushFree(): zeroReg() then pushFree() in one call, so that nothing can
// stop the thread between the two (worker.terminate() acts between JS calls).
napi_value ZeroPushFree(napi_env env, napi_callback_info info) {
  Binding* b = binding_of(env, info, nullptr, nullptr);
  const uint32_t h = static_cast<uint32_t>(b->mem[kRegPush]);
  b->zero_object(h);
  const bool drain = flush_cache(b);  // as in PushFree
  const Status st = b->pool.give(&h, 1);
  return pushed(env, b, drain ? Status::drain_needed : st, h);
}

// refill(): an empty cache takes up to half its share of the pool's cache
// budget (topped up first), at least the one object asked for, leaving the
// objects Free (the JS side marks each Taken as it hands it out). A pool
// found empty asks the other threads that cache objects to give them back
// (an idle thread does so as soon as its event loop turns). Returns the new
// count.
napi_value Refill(napi_env env, napi_callback_info info) {
  Binding* b = binding_of(env, info, nullptr, nullptr);
  if (b->cache_cap == 0) return nullptr;           // no cache: nothing to fill (and no room)
  if (flush_cache(b)) request_drain(env, b->key);  // normally empty already
  Status st;
  // While threads wait for objects, take only the one needed: no hoarding.
  const uint32_t want = b->pool.waiters() > 0 ? 1 : std::max<uint32_t>(1, (b->reserve() + 1) / 2);
  size_t got = b->pool.pop_many(b->cache(), want, &st, false);
  if (st == Status::closed) return throw_pool(env, b, st);
  if (got == 0 && reclaim(b)) got = b->pool.pop_many(b->cache(), want, &st, false);
  if (got == 0) b->pool.count(objpool::Counter::exhausted);
  // The cache pops from its end: keep the pool's LIFO order.
  std::reverse(b->cache(), b->cache() + got);
  // relaxed: the count is this thread's; stats() reads it racily.
  objpool::atomic_ref<int32_t>(b->mem[kCached]).store(int32_t(got), std::memory_order_relaxed);
  napi_value r;
  napi_create_uint32(env, uint32_t(got), &r);
  return r;
}

// spill(): called by a push that found the cache at its limit, with the
// pushed handle in kRegPush (already Free). If the budget gives the cache
// more room, nothing moves. Otherwise a cache with no share at all pushes
// that handle to the pool itself and returns -1; a full one gives its older
// half back in one CAS and keeps the newer (cache-warm) half. Returns the
// new count.
napi_value Spill(napi_env env, napi_callback_info info) {
  Binding* b = binding_of(env, info, nullptr, nullptr);
  if (b->cache_cap == 0) return nullptr;
  const uint32_t n = b->cached();
  const uint32_t limit = b->reserve();
  napi_value r;
  if (n < limit) {
    napi_create_uint32(env, n, &r);
    return r;
  }
  if (limit == 0) {
    const uint32_t h = static_cast<uint32_t>(b->mem[kRegPush]);
    const bool drain = flush_cache(b);  // normally empty: a cache without a share holds nothing at rest
    const Status st = b->pool.give(&h, 1);
    if (st == Status::out_of_range) return throw_range(env, "handle", b->pool.capacity(), double(int32_t(h)));
    if (drain || st == Status::drain_needed) request_drain(env, b->key);
    napi_create_int32(env, -1, &r);
    return r;
  }
  const uint32_t out = std::max<uint32_t>(1, n / 2);
  uint32_t left = n;
  if (n > 0) {
    uint32_t* c = b->cache();
    const Status st = b->pool.give(c, out);
    left = st == Status::out_of_range ? n : n - out;
    if (left != n) std::memmove(c, c + out, size_t(left) * sizeof(uint32_t));
    // relaxed: as in Refill.
    objpool::atomic_ref<int32_t>(b->mem[kCached]).store(int32_t(left), std::memory_order_relaxed);
    if (st == Status::drain_needed) request_drain(env, b->key);
  }
  napi_create_uint32(env, left, &r);
  return r;
}

// flush(): the whole cache back to the pool.
napi_value Flush(napi_env env, napi_callback_info info) {
  Binding* b = binding_of(env, info, nullptr, nullptr);
  if (flush_cache(b)) request_drain(env, b->key);
  return nullptr;
}

napi_value PopMany(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2] = {nullptr, nullptr};
  Binding* b = binding_of(env, info, &argc, argv);
  if (argc < 1) napi_get_undefined(env, &argv[0]);
  uint32_t* out;
  size_t n;
  if (!get_u32_array(env, argv[0], argc > 1 ? argv[1] : nullptr, "out", &out, &n)) return nullptr;
  n = std::min<size_t>(n, b->pool.capacity());  // no more can be popped
  uint32_t* tmp = scratch(env, n);
  if (tmp == nullptr) return nullptr;
  // This thread's cached objects count as available: return them first.
  if (flush_cache(b)) request_drain(env, b->key);
  Status st;
  const size_t got = b->pool.pop_many(tmp, n, &st);
  if (st == Status::closed) return throw_pool(env, b, st);
  if (got == 0 && n > 0) b->pool.count(objpool::Counter::exhausted);
  std::copy(tmp, tmp + got, out);
  napi_value r;
  napi_create_uint32(env, static_cast<uint32_t>(got), &r);
  return r;
}

// After a batch push: as in PushFree, after a close or while threads wait the
// cache goes back too (a batch of zero handles included: it is still a
// call). Returns the status to report.
Status flush_if_needed(Binding* b, Status st) {
  if (st != Status::ok && st != Status::drain_needed) return st;  // refused: nothing was pushed
  if ((st == Status::drain_needed || b->pool.is_closed() || b->pool.waiters() > 0) && flush_cache(b))
    return Status::drain_needed;
  return st;
}

napi_value PushMany(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2] = {nullptr, nullptr};
  Binding* b = binding_of(env, info, &argc, argv);
  if (argc < 1) napi_get_undefined(env, &argv[0]);
  uint32_t* in;
  size_t n;
  if (!get_u32_array(env, argv[0], argc > 1 ? argv[1] : nullptr, "handles", &in, &n)) return nullptr;
  // Reports the first out-of-range handle (error path only).
  auto out_of_range = [&](const uint32_t* hs) {
    for (size_t i = 0; i < n; ++i)
      if (hs[i] >= b->pool.capacity()) return throw_range(env, "handles", b->pool.capacity(), hs[i]);
    return throw_pool(env, b, Status::double_push);  // none: more handles than objects, so one is given twice
  };
  if (n > b->pool.capacity()) return out_of_range(in);
  uint32_t* tmp = scratch(env, n);
  if (tmp == nullptr) return nullptr;
  // A private copy: the caller's array may be shared memory another thread changes.
  std::copy(in, in + n, tmp);
  // Checks every handle's range first, all or nothing; user objects held here are zeroed in the same call.
  const Status st = b->objects.empty() ? b->pool.push_many(tmp, n) : b->pool.push_many(tmp, n, b->zeroer());
  if (st == Status::out_of_range) return out_of_range(tmp);
  return pushed(env, b, flush_if_needed(b, st), 0);
}

// pushManyFree(handles, count): pushMany of objects the JS side already
// moved Taken -> Free (and zeroed). Range-checked; all or nothing.
napi_value PushManyFree(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2] = {nullptr, nullptr};
  Binding* b = binding_of(env, info, &argc, argv);
  uint32_t* in;
  size_t n;
  if (argc < 2 || !get_u32_array(env, argv[0], argv[1], "handles", &in, &n)) return nullptr;
  if (n > b->pool.capacity()) return throw_range(env, "count", b->pool.capacity() + 1.0, double(n));
  uint32_t* tmp = scratch(env, n);
  if (tmp == nullptr) return nullptr;
  std::copy(in, in + n, tmp);
  const Status st = b->pool.give(tmp, n);
  if (st == Status::out_of_range) return throw_range(env, "handles", b->pool.capacity(), 0);
  return pushed(env, b, flush_if_needed(b, st), 0);
}

// close(): true for the one call, in any thread, that closed the pool. Every
// view's cache is emptied: this thread's now, other threads' on their event
// loops (a thread busy in synchronous code empties its own on its next call).
Napi::Value Close(const Napi::CallbackInfo& info) {
  auto* b = static_cast<Binding*>(info.Data());
  const bool won = b->pool.close();
  if (won) {
    flush_cache(b);  // the caller drains next
    std::lock_guard<std::mutex> lock(registry_mutex());
    flush_others_locked(b);
    // Every channel of the pool in this process: closed, and what it holds
    // goes back into the pool, which the caller drains next.
    auto it = registry().find(b->key);
    // One record of each (a listed channel has one at least): they share the memory.
    if (it != registry().end())
      for (auto& [memory, peers] : it->second.channels) peers->recs.front()->ch.close_for_pool(b->pool, b->zeroer());
  }
  return Napi::Boolean::New(info.Env(), won);
}

// drain(out: Uint32Array of >= capacity entries): after close(), takes every
// object now in the pool out for release, each once; returns how many.
Napi::Value Drain(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  auto* b = static_cast<Binding*>(info.Data());
  uint32_t* out;
  size_t n;
  if (!get_u32_array(env, info[0], nullptr, "out", &out, &n)) return Napi::Value();
  if (n < b->pool.capacity()) {
    throw_range(env, "out.length", double(b->pool.capacity()) + 1, double(n));
    return Napi::Value();
  }
  if (b->seen.empty()) b->seen.assign((size_t(b->pool.capacity()) + 7) / 8, 0);
  uint32_t* tmp = scratch(env, b->pool.capacity());
  if (tmp == nullptr) return Napi::Value();
  const size_t got = b->pool.drain(tmp, b->seen.data(), &b->corrupt);
  std::copy(tmp, tmp + got, out);
  return Napi::Number::New(env, double(got));
}

// True once a drain met an object twice: unchecked misuse corrupted the lists.
Napi::Value Corrupt(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), static_cast<Binding*>(info.Data())->corrupt);
}

// stats(): { perSlot, cached, released, waiting }, counted across threads.
Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* b = static_cast<Binding*>(info.Data());
  const std::vector<uint32_t> counts = b->pool.per_slot();
  Napi::Array per = Napi::Array::New(env, counts.size());
  for (uint32_t i = 0; i < counts.size(); ++i) per.Set(i, Napi::Number::New(env, counts[i]));
  double cached = 0;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto it = registry().find(b->key);
    if (it != registry().end())
      for (Binding* m : it->second.all) cached += m->cached();
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("perSlot", per);
  r.Set("cached", cached);
  r.Set("released", double(b->pool.released()));
  r.Set("waiting", double(b->pool.waiters()));
  return r;
}

// watch(drain): from now on, a push in any thread of this process that finds
// the pool closed makes `drain` run on this thread, for as long as this
// thread lives. Waiting does not keep the event loop alive; a push on this
// thread does, until the drain it queued has run.
Napi::Value Watch(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  auto* b = static_cast<Binding*>(info.Data());
  if (!info[0].IsFunction()) {
    throw_type(env, "drain", "of type function", info[0]);
    return Napi::Value();
  }
  if (b->closer != nullptr || b->torn_down) return Napi::Value();
  napi_value name;
  napi_create_string_utf8(env, "objpool.drain", NAPI_AUTO_LENGTH, &name);
  napi_threadsafe_function tsfn;
  NAPI_THROW_IF_FAILED(
      env, napi_create_threadsafe_function(env, info[0], nullptr, name, 0, 1, nullptr, nullptr, b, call_drain, &tsfn),
      Napi::Value());
  // A pending close does not keep the thread alive by itself.
  napi_unref_threadsafe_function(env, tsfn);
  b->closer = tsfn;
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry()[b->key].closer = b;
  return Napi::Value();
}

Napi::Value Unwatch(const Napi::CallbackInfo& info) {
  auto* b = static_cast<Binding*>(info.Data());
  if (b->closer == nullptr) return Napi::Value();
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto it = registry().find(b->key);
    if (it != registry().end() && it->second.closer == b) it->second.closer = nullptr;
  }
  napi_release_threadsafe_function(b->closer, napi_tsfn_abort);
  b->closer = nullptr;
  b->closer_ref = false;
  return Napi::Value();
}

// own(obj): `obj` (the view's ObjectPool) is what views() lists for this
// view, held weakly: a pool that nothing else holds is still collected, and
// nothing in the middle of a job keeps it (as a WeakRef would until the job
// ends). Once per view.
Napi::Value Own(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  auto* b = static_cast<Binding*>(info.Data());
  if (!info[0].IsObject()) return throw_type(env, "owner", "of type object", info[0]), Napi::Value();
  if (b->owner != nullptr) return Napi::Value();
  napi_ref ref;
  if (napi_create_reference(env, info[0], 0, &ref) != napi_ok) return Napi::Value();
  // Under the lock views() reads it under (from this thread only, but the
  // lock orders it with the list).
  std::lock_guard<std::mutex> lock(registry_mutex());
  b->owner = ref;
  return Napi::Value();
}

// views(): the objects given to own() by this thread's views of every pool
// that are still alive and not torn down, in the order they were opened.
Napi::Value Views(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  std::vector<std::pair<uint64_t, napi_ref>> refs;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    for (const auto& [key, members] : registry())
      for (Binding* m : members.all)
        if (m->env == env && !m->torn_down && m->owner != nullptr) refs.emplace_back(m->opened, m->owner);
  }
  std::sort(refs.begin(), refs.end());
  // This thread's own references, read on this thread: none is deleted
  // meanwhile (that happens in this thread's finalizers, which cannot run
  // inside this call).
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (const auto& [opened, r] : refs) {
    napi_value v = nullptr;
    if (napi_get_reference_value(env, r, &v) == napi_ok && v != nullptr) out.Set(n++, Napi::Value(env, v));
  }
  return out;
}

// onClose(fn): `fn` runs on this thread once a close by any thread reaches
// this view (through its flusher). Held weakly: the JS side keeps it.
Napi::Value OnClose(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  auto* b = static_cast<Binding*>(info.Data());
  if (!info[0].IsFunction()) return throw_type(env, "onClose", "of type function", info[0]), Napi::Value();
  if (b->torn_down) return Napi::Value();
  if (b->on_close != nullptr) napi_delete_reference(env, b->on_close);
  b->on_close = nullptr;
  if (b->flusher == nullptr && !make_flusher(env, b)) {
    napi_throw_error(env, "ERR_OBJPOOL_NO_MEMORY", "Cannot create the close notice");
    return Napi::Value();
  }
  napi_create_reference(env, info[0], 0, &b->on_close);
  return Napi::Value();
}

// Starts a wake-up helper: a thread blocked on `src`'s wake word that calls
// `on_wake` back on this thread (through a thread-safe function) when the
// word changes and someone waits; nullptr and a thrown error if it cannot
// be made. `seq`: the word, read before anyone registered.
template <class Source>
Waiter* start_helper(napi_env env, Source src, uint32_t seq, napi_value on_wake) {
  Waiter* w = new Waiter;
  napi_value name;
  napi_create_string_utf8(env, "objpool.wake", NAPI_AUTO_LENGTH, &name);
  // The callback is held by a reference that is weak while nobody waits,
  // so a view that once waited can still be collected.
  if (napi_create_reference(env, on_wake, 0, &w->on_wake) != napi_ok ||
      napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, w, call_wake, &w->wake) !=
          napi_ok) {
    if (w->on_wake != nullptr) napi_delete_reference(env, w->on_wake);
    delete w;
    napi_throw_error(env, "ERR_OBJPOOL_NO_MEMORY", "Cannot create the wake-up channel");
    return nullptr;
  }
  // Referenced only while someone waits (hold()).
  napi_unref_threadsafe_function(env, w->wake);
  try {
    w->thread = std::thread(wait_loop<Source>, src, w, seq);
  } catch (const std::system_error&) {
    napi_release_threadsafe_function(w->wake, napi_tsfn_abort);
    napi_delete_reference(env, w->on_wake);
    delete w;
    napi_throw_error(env, "ERR_OBJPOOL_NO_MEMORY", "Cannot start the wake-up thread");
    return nullptr;
  }
  return w;
}

// The view's helper for the pool's wake word, started on first use.
Waiter* ensure_waiter(napi_env env, Binding* b, napi_value on_wake) {
  if (b->waiter != nullptr) return b->waiter;
  // Read before anyone registers: a push after the caller's retry changes it.
  return b->waiter = start_helper(env, b->pool, b->pool.wake_seq(), on_wake);
}

// A pending wait keeps the thread alive, as pending I/O does, and its view:
// hold() when a view gets its first waiter (pool or channel), unhold() when
// its last one leaves.
void hold(napi_env env, Waiter* w) {
  if (w->registered + w->watching != 1) return;
  napi_ref_threadsafe_function(env, w->wake);
  napi_reference_ref(env, w->on_wake, nullptr);
}
void unhold(napi_env env, Waiter* w) {
  if (w->registered + w->watching != 0) return;
  napi_unref_threadsafe_function(env, w->wake);
  napi_reference_unref(env, w->on_wake, nullptr);
}

// waitBegin(onWake): registers one waiter for this view, then tries once more
// to pop: the handle if an object came back meanwhile (nothing registered),
// else -1, and from now on `onWake` runs on this thread whenever a push (from
// any thread, JS or native) or close() may have made progress possible.
// While a view has waiters, its thread stays alive.
// Throws ERR_OBJPOOL_CLOSED on a closed pool. Each -1 needs one waitEnd().
Napi::Value WaitBegin(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  auto* b = static_cast<Binding*>(info.Data());
  if (!info[0].IsFunction()) {
    throw_type(env, "onWake", "of type function", info[0]);
    return Napi::Value();
  }
  if (b->torn_down) return throw_pool(env, b, Status::closed), Napi::Value();
  Waiter* w = ensure_waiter(env, b, info[0]);
  if (w == nullptr) return Napi::Value();
  // Counted for the helper before the pool counts the waiter: a push that
  // sees the waiter in the pool's count then bumps the wake word (release),
  // and the helper reads this after that word (acquire), so it never takes a
  // wake-up for this waiter as nobody's. relaxed: ordered by that chain.
  w->waiting.store(w->registered + w->watching + 1, std::memory_order_relaxed);
  uint32_t h;
  const Status st = b->pool.wait_begin(h);
  if (st != Status::empty) {
    // relaxed: as above.
    w->waiting.store(w->registered + w->watching, std::memory_order_relaxed);
    if (st == Status::closed) return throw_pool(env, b, st), Napi::Value();
    return Napi::Number::New(env, h);
  }
  ++w->registered;
  hold(env, w);
  // Objects idle in other views' caches are made visible to the waiter:
  // pushes now bypass the caches, and what they hold goes back to the slots.
  bool drain = false;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    flush_others_locked(b, false, &drain);
  }
  if (drain) request_drain(env, b->key);
  return Napi::Number::New(env, -1);
}

// waitEnd(): one waiter of this view gave up or was served.
Napi::Value WaitEnd(const Napi::CallbackInfo& info) {
  auto* b = static_cast<Binding*>(info.Data());
  Waiter* w = b->waiter;
  if (w != nullptr && w->registered > 0) {
    // relaxed: as in WaitBegin.
    w->waiting.store(w->registered + w->watching - 1, std::memory_order_relaxed);
    --w->registered;
    unhold(info.Env(), w);
    b->pool.wait_end();
  }
  return Napi::Value();
}

void finalize_function(napi_env env, void* data, void*) {
  auto* b = static_cast<Binding*>(data);
  if (--b->functions > 0) return;
  if (!b->torn_down) {
    napi_remove_env_cleanup_hook(env, env_cleanup, b);
    teardown(b);
  }
  for (napi_ref& r : b->refs)
    if (r != nullptr) napi_delete_reference(env, r);
  for (napi_ref r : b->object_refs) napi_delete_reference(env, r);
  if (b->on_close != nullptr) napi_delete_reference(env, b->on_close);
  if (b->owner != nullptr) napi_delete_reference(env, b->owner);
  delete b;
}

void add_c_function(Napi::Object target, Binding* b, const char* name, napi_callback cb) {
  napi_env env = target.Env();
  napi_value fn;
  NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, b, &fn));
  NAPI_THROW_IF_FAILED_VOID(env, napi_add_finalizer(env, fn, b, finalize_function, nullptr, nullptr));
  ++b->functions;
  target.Set(name, Napi::Value(env, fn));
}

void add_function(Napi::Object target, Binding* b, const char* name, Napi::Function::Callback cb) {
  Napi::Function fn = Napi::Function::New(target.Env(), cb, name, b);
  NAPI_THROW_IF_FAILED_VOID(target.Env(), napi_add_finalizer(target.Env(), fn, b, finalize_function, nullptr, nullptr));
  ++b->functions;
  target.Set(name, fn);
}

// A typed array's bytes, and whether they are shared memory (which cannot be
// detached). Works for views of SharedArrayBuffers, which
// napi_get_arraybuffer_info rejects on Node 20.
bool get_view(napi_env env, napi_value v, napi_typedarray_type want, const char* name, const char* expected,
              void** data, size_t* len, bool* shared) {
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  napi_typedarray_type type;
  napi_value buffer;
  bool plain = true;
  if (!is_ta || napi_get_typedarray_info(env, v, &type, len, data, &buffer, nullptr) != napi_ok || type != want ||
      napi_is_arraybuffer(env, buffer, &plain) != napi_ok) {
    throw_type(env, name, expected, v);
    return false;
  }
  if (shared) *shared = !plain;  // a typed array's buffer is an ArrayBuffer or a SharedArrayBuffer
  return true;
}

bool get_bytes(napi_env env, napi_value v, const char* name, void** data, size_t* len, bool* shared = nullptr) {
  return get_view(env, v, napi_uint8_array, name, "an instance of Uint8Array", data, len, shared);
}

// ---- handle channels --------------------------------------------------------
//
// Single sends and receives run in JS (lib/channel.ts) over the channel's
// memory; these are the batch calls and the slow paths. A channel's record
// is owned by the external that openChannel() returned, which only the
// HandleChannel's send and receive hold; the calls name it by its id, an
// index into the view's table.

ChanRec* chan_of(napi_env env, Binding* b, napi_value v) {
  int32_t id = 0;
  // An id this view did not give out, or whose record is gone, names
  // nothing: nothing is read through it.
  if (napi_get_value_int32(env, v, &id) != napi_ok || id < 1 || size_t(id) > b->channels.size() ||
      b->channels[size_t(id) - 1] == nullptr) {
    throw_type(env, "channel", "a channel of this pool", v);
    return nullptr;
  }
  return b->channels[size_t(id) - 1];
}

// A bound channel call's view and channel (its first argument; the others
// follow in argv); nullptr after a thrown error.
ChanRec* chan_call(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv, Binding** b) {
  *b = binding_of(env, info, argc, argv);
  return chan_of(env, *b, argv[0]);
}

// A channel's status as a thrown error (or a drain request); nullptr.
napi_value chan_status(napi_env env, Binding* b, Status st, uint32_t h) {
  switch (st) {
    case Status::ok:
    case Status::full:
      return nullptr;
    case Status::drain_needed:
      request_drain(env, b->key);
      return nullptr;
    case Status::closed:
      napi_throw_error(env, "ERR_OBJPOOL_CLOSED", ("The channel" + b->where + " is closed").c_str());
      return nullptr;
    case Status::out_of_range:
      return throw_range(env, "handles", b->pool.capacity(), h);
    default:
      return throw_pool(env, b, Status::double_push);
  }
}

void finalize_channel(napi_env env, void* data, void* hint) {
  auto* r = static_cast<ChanRec*>(data);
  Binding* b = r->owner;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto it = registry().find(b->key);
    if (it != registry().end()) unlist_channel_locked(it->second, r);
  }
  // Its helper, if it ever waited (not while it waits: a waiting
  // HandleChannel is held by its helper's callback); a torn-down view
  // already stopped it.
  stop_chan_waiter(env, r);
  b->channels[size_t(r->id) - 1] = nullptr;
  b->free_ids.push_back(r->id);
  if (r->ref != nullptr) napi_delete_reference(env, r->ref);
  delete r;
  finalize_function(env, b, hint);
}

// openChannel(memory: Int32Array over a SharedArrayBuffer, fresh): validates the
// channel's header against the memory's real length and returns [the
// external that owns the record (its finalizer frees it), the id that names
// it in the calls below and in the view's memory]. A channel opened on a
// closed pool is closed at once (and emptied into the pool).
Napi::Value OpenChannel(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  auto* b = static_cast<Binding*>(info.Data());
  void* mem;
  size_t len;
  bool shared = false;
  const char* expected = "an Int32Array over a SharedArrayBuffer";
  if (!get_view(env, info[0], napi_int32_array, "memory", expected, &mem, &len, &shared)) return Napi::Value();
  if (!shared) return throw_type(env, "memory", expected, info[0]), Napi::Value();
  objpool::Channel ch;
  if (b->torn_down || objpool::Channel::attach(mem, len * 4, ch) != Status::ok) {
    napi_throw_error(env, "ERR_OBJPOOL_BAD_DESCRIPTOR",
                     "Invalid channel descriptor: wrong magic, layout version or capacity, or truncated memory");
    return Napi::Value();
  }
  // A new channel gets this pool's tag (the metadata's address: the same in
  // every thread of the process); an attached one must carry it.
  const uint64_t tag = uint64_t(reinterpret_cast<uintptr_t>(b->key));
  if (info[1].ToBoolean()) {
    ch.set_pool_tag(tag);
  } else if (ch.pool_tag() != tag) {
    napi_throw_error(env, "ERR_OBJPOOL_BAD_DESCRIPTOR",
                     "Invalid channel descriptor: the channel belongs to another pool");
    return Napi::Value();
  }
  auto* r = new ChanRec;
  r->ch = ch;
  r->owner = b;
  napi_value ext;
  if (napi_create_reference(env, info[0], 1, &r->ref) != napi_ok ||
      napi_create_external(env, r, finalize_channel, nullptr, &ext) != napi_ok) {
    if (r->ref != nullptr) napi_delete_reference(env, r->ref);
    delete r;
    napi_throw_error(env, "ERR_OBJPOOL_NO_MEMORY", "Cannot open the channel");
    return Napi::Value();
  }
  ++b->functions;  // the external's finalizer keeps `b` alive until it runs
  if (b->free_ids.empty()) {
    b->channels.push_back(r);
    r->id = int32_t(b->channels.size());
  } else {
    r->id = b->free_ids.back();
    b->free_ids.pop_back();
    b->channels[size_t(r->id) - 1] = r;
  }
  bool closed;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto& peers = registry()[b->key].channels[r->ch.memory()];
    if (peers == nullptr) peers = std::make_shared<ChanPeers>();
    r->peers = peers;
    {
      std::lock_guard<std::mutex> plock(peers->mutex);
      peers->recs.push_back(r);
    }
    r->listed = true;
    // After registering: a close from now on finds this channel; one before
    // is seen here.
    closed = b->pool.is_closed();
  }
  if (closed && r->ch.close_for_pool(b->pool, b->zeroer()) > 0) request_drain(env, b->key);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t(0), Napi::Value(env, ext));
  out.Set(uint32_t(1), Napi::Number::New(env, r->id));
  return out;
}

// A send found `waiters` receivers waiting on r's channel: calls back, at
// once, every view of this process that waits on it (the sending thread
// queues the call on the receiving thread's event loop: one hop, where the
// wake word would add a futex wake and a helper thread's), and wakes the
// wake word only when some waiter is not such a view (a C++ thread that
// waits on the word itself). A view counted in `waiters` but not yet seen
// waiting here (it registers under the lock, then counts itself) only makes
// the wake word wake too: its helper then calls it back.
void wake_channel(ChanRec* r, uint32_t waiters) {
  if (waiters == 0) return;
  uint32_t called = 0;
  {
    // The channel's own records only, under their own lock: other channels
    // and pools of the process go on meanwhile.
    std::lock_guard<std::mutex> lock(r->peers->mutex);
    for (ChanRec* o : r->peers->recs) {
      // acquire: pairs with the release store in ChanWaitBegin (see there).
      if (!o->waiting.load(std::memory_order_acquire) || o->waiter == nullptr) continue;
      ++called;
      // acq_rel: one queued call at a time, as in wait_loop(); call_wake() clears it.
      if (!o->waiter->pending.exchange(true, std::memory_order_acq_rel))
        napi_call_threadsafe_function(o->waiter->wake, nullptr, napi_tsfn_nonblocking);
    }
  }
  if (called < waiters) r->ch.wake_waiters();
}

// chanSendMany(channel, handles, count?): sends a prefix of the handles (all
// checked first: range and ownership, all or nothing); how many.
napi_value ChanSendMany(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3] = {nullptr, nullptr, nullptr};
  Binding* b;
  ChanRec* r = chan_call(env, info, &argc, argv, &b);
  if (r == nullptr) return nullptr;
  uint32_t* in;
  size_t n;
  if (argc < 2 || !get_u32_array(env, argv[1], argc > 2 ? argv[2] : nullptr, "handles", &in, &n)) return nullptr;
  // Nothing to send still asks a closed channel, as send() does: refused.
  if (n == 0 && r->ch.closed()) return chan_status(env, b, Status::closed, 0);
  // More than the pool holds cannot all be out: one is given twice.
  if (n > b->pool.capacity()) {
    for (size_t i = 0; i < n; ++i)
      if (in[i] >= b->pool.capacity()) return throw_range(env, "handles", b->pool.capacity(), in[i]);
    return throw_pool(env, b, Status::double_push);
  }
  uint32_t* tmp = scratch(env, n);
  if (tmp == nullptr) return nullptr;
  std::copy(in, in + n, tmp);  // a private copy: the caller's array may be shared memory
  Status st;
  uint32_t waiters = 0;
  const size_t sent = r->ch.send_many(b->pool, tmp, n, &st, b->zeroer(), &waiters);
  wake_channel(r, waiters);
  uint32_t bad = 0;
  if (st == Status::out_of_range)
    for (size_t i = 0; i < n; ++i)
      if (tmp[i] >= b->pool.capacity()) bad = tmp[i];
  // Refused as closed after its claim (its cells became holes): a pool that
  // closed meanwhile may have taken back what sat behind them; its closer
  // drains again (a spare request does nothing).
  if (st == Status::closed && b->pool.is_closed()) request_drain(env, b->key);
  if (st != Status::ok && st != Status::full && st != Status::drain_needed) return chan_status(env, b, st, bad);
  chan_status(env, b, st, 0);
  napi_value out;
  napi_create_uint32(env, uint32_t(sent), &out);
  return out;
}

// chanReceiveMany(channel, out, count?): takes up to count handles; how many.
napi_value ChanReceiveMany(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3] = {nullptr, nullptr, nullptr};
  Binding* b;
  ChanRec* r = chan_call(env, info, &argc, argv, &b);
  if (r == nullptr) return nullptr;
  uint32_t* out;
  size_t n;
  if (argc < 2 || !get_u32_array(env, argv[1], argc > 2 ? argv[2] : nullptr, "out", &out, &n)) return nullptr;
  n = std::min<size_t>(n, r->ch.capacity());  // no more can be in it
  uint32_t* tmp = scratch(env, n);
  if (tmp == nullptr) return nullptr;
  const size_t got = r->ch.receive_many(b->pool, tmp, n);
  std::copy(tmp, tmp + got, out);
  napi_value v;
  napi_create_uint32(env, uint32_t(got), &v);
  return v;
}

// chanSettle(channel): a send from JS found the channel's attention word set:
// wakes the waiting receivers, and when the pool closed meanwhile gives what
// the channel holds back to it.
napi_value ChanSettle(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1] = {nullptr};
  Binding* b;
  ChanRec* r = chan_call(env, info, &argc, argv, &b);
  if (r == nullptr) return nullptr;
  uint32_t waiters = 0;
  const Status st = r->ch.after_send(b->pool, b->zeroer(), &waiters);
  wake_channel(r, waiters);
  return chan_status(env, b, st, 0);
}

// chanClose(channel): no more sends; waiting receivers are woken.
napi_value ChanClose(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1] = {nullptr};
  Binding* b;
  ChanRec* r = chan_call(env, info, &argc, argv, &b);
  if (r != nullptr) r->ch.close();
  return nullptr;
}

// chanWaitBegin(channel, onWake): this view waits for the channel: the
// channel counts a waiter (a send then wakes the channel's wake word) and
// the channel's helper for this view (started on first use) calls `onWake`
// on each wake-up. The caller looks at the channel again afterwards (the
// waiter pairing in objpool.hpp). Keeps the thread alive until
// chanWaitEnd().
napi_value ChanWaitBegin(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2] = {nullptr, nullptr};
  Binding* b;
  ChanRec* r = chan_call(env, info, &argc, argv, &b);
  // relaxed: the owner's own flag, on its own thread.
  if (r == nullptr || r->waiting.load(std::memory_order_relaxed)) return nullptr;
  napi_valuetype t = napi_undefined;
  napi_typeof(env, argv[1], &t);
  if (t != napi_function) return throw_type(env, "onWake", "of type function", argv[1]);
  if (b->torn_down) return chan_status(env, b, Status::closed, 0);
  // Read before this view counts as a waiter: a send after the caller's
  // look at the cells changes it.
  Waiter* w = r->waiter;
  if (w == nullptr) {
    if ((w = start_helper(env, ChanSource{r->ch}, r->ch.wake_seq(), argv[1])) == nullptr) return nullptr;
    // Once per record, under the lock senders read it under.
    std::lock_guard<std::mutex> lock(r->peers->mutex);
    r->waiter = w;
  }
  // Counted for the helper before the channel counts the waiter: a send
  // that sees the waiter bumps the wake word (release) and the helper reads
  // this after that word (acquire). relaxed: ordered by that chain.
  w->waiting.store(1, std::memory_order_relaxed);
  w->watching = 1;
  hold(env, w);
  // release, before the channel counts the waiter (a seq_cst RMW): a sender
  // that sees the count (after its fence) sees this flag (its acquire load
  // in wake_channel()) and calls this view back. No lock: a wait that
  // begins and ends on every message does not contend with the senders.
  r->waiting.store(true, std::memory_order_release);
  r->ch.add_waiter();
  return nullptr;
}

// chanWaitEnd(channel): the view no longer waits for the channel.
napi_value ChanWaitEnd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1] = {nullptr};
  Binding* b;
  ChanRec* r = chan_call(env, info, &argc, argv, &b);
  // relaxed: the owner's own flag, on its own thread.
  if (r == nullptr || !r->waiting.load(std::memory_order_relaxed) || r->waiter == nullptr) return nullptr;
  Waiter* w = r->waiter;
  r->ch.remove_waiter();
  // relaxed: a sender that still sees the flag calls back a view that no
  // longer waits, which then finds nothing to serve.
  r->waiting.store(false, std::memory_order_relaxed);
  // relaxed: as in ChanWaitBegin.
  w->waiting.store(0, std::memory_order_relaxed);
  w->watching = 0;
  unhold(env, w);
  return nullptr;
}

// ---- module functions -----------------------------------------------------

// Whole numbers for the module functions' size arguments; a thrown coded
// error and false otherwise. (lib/pool.ts validates first; these guard the
// raw addon.)
bool get_u32_args(napi_env env, const Napi::CallbackInfo& info, size_t from,
                  std::initializer_list<std::pair<const char*, uint32_t*>> args) {
  size_t i = from;
  for (const auto& [name, out] : args) {
    if (!get_index(env, info[i++], name, 4294967296.0, out)) return false;
  }
  return true;
}

Napi::Value MetaBytes(const Napi::CallbackInfo& info) {
  uint32_t capacity, slots;
  if (!get_u32_args(info.Env(), info, 0, {{"capacity", &capacity}, {"slots", &slots}})) return Napi::Value();
  const bool checked = info[2].ToBoolean();
  return Napi::Number::New(info.Env(), double(objpool::meta_bytes_for(capacity, slots, checked)));
}

// format(meta, capacity, slots, objectSize, stride, align, checked, external, zero)
Napi::Value Format(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  void* meta;
  size_t len;
  if (!get_bytes(env, info[0], "meta", &meta, &len)) return Napi::Value();
  objpool::Config c;
  if (!get_u32_args(env, info, 1,
                    {{"capacity", &c.capacity},
                     {"slots", &c.slots},
                     {"objectSize", &c.object_size},
                     {"stride", &c.stride},
                     {"align", &c.align}}))
    return Napi::Value();
  c.checked = info[6].ToBoolean();
  c.external = info[7].ToBoolean();
  c.zero = info[8].ToBoolean();
  if (objpool::Pool::format(meta, len, c) != Status::ok) {
    napi_throw_range_error(env, "ERR_INVALID_ARG_VALUE", "The pool shape is invalid");
    return Napi::Value();
  }
  return Napi::Value();
}

// channelBytes(capacity): the bytes a channel of `capacity` handles needs,
// its capacity rounded up to a power of two (lib/channel.ts does the same).
Napi::Value ChannelBytes(const Napi::CallbackInfo& info) {
  uint32_t capacity;
  if (!get_u32_args(info.Env(), info, 0, {{"capacity", &capacity}})) return Napi::Value();
  if (capacity < 1 || capacity > objpool::kChanMaxCapacity) {
    throw_range(info.Env(), "capacity", objpool::kChanMaxCapacity + 1.0, capacity);
    return Napi::Value();
  }
  return Napi::Number::New(info.Env(), double(objpool::channel_bytes_for(objpool::channel_capacity_for(capacity))));
}

// channelFormat(memory: Uint8Array, capacity): writes a new channel.
Napi::Value ChannelFormat(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  void* mem;
  size_t len;
  if (!get_bytes(env, info[0], "memory", &mem, &len)) return Napi::Value();
  uint32_t capacity;
  if (!get_u32_args(env, info, 1, {{"capacity", &capacity}})) return Napi::Value();
  if (objpool::Channel::format(mem, len, capacity) != Status::ok) {
    napi_throw_range_error(env, "ERR_INVALID_ARG_VALUE", "The channel shape is invalid");
    return Napi::Value();
  }
  return Napi::Value();
}

// open(meta, arena | null, memory, cache, name?): validates the metadata (and
// the arena's length) and returns the pool's bound functions. `meta` and
// `memory` (an Int32Array of 4 + cache words: see MemWord) must be views of
// SharedArrayBuffers; an arena that is not shared is never touched. `name`
// (a string, optional) is shown in the errors this view throws. `objects`
// (optional, a zero pool without an arena only): the pool's objects, one
// Uint8Array over a SharedArrayBuffer per handle, of at least objectSize
// bytes each, which pushes then zero natively.
Napi::Value Open(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  void* meta;
  size_t meta_len;
  bool meta_shared = false;
  if (!get_bytes(env, info[0], "meta", &meta, &meta_len, &meta_shared)) return Napi::Value();
  if (!meta_shared) return throw_type(env, "meta", "a Uint8Array over a SharedArrayBuffer", info[0]), Napi::Value();
  void* arena = nullptr;
  size_t arena_len = 0;
  bool arena_shared = false;
  const bool has_arena = !info[1].IsNull() && !info[1].IsUndefined();
  if (has_arena && !get_bytes(env, info[1], "arena", &arena, &arena_len, &arena_shared)) return Napi::Value();
  void* mem;
  size_t mem_len;
  bool mem_shared = false;
  const char* mem_expected = "an Int32Array over a SharedArrayBuffer, of length >= 4 + cache";
  if (!get_view(env, info[2], napi_int32_array, "memory", mem_expected, &mem, &mem_len, &mem_shared))
    return Napi::Value();
  double cache = 0;
  if (napi_get_value_double(env, info[3], &cache) != napi_ok || !(cache >= 0 && cache <= objpool::kMaxCapacity) ||
      cache != std::floor(cache))
    return throw_range(env, "cache", objpool::kMaxCapacity + 1.0, cache), Napi::Value();
  if (!mem_shared || mem_len < kCacheBase + size_t(cache))
    return throw_type(env, "memory", mem_expected, info[2]), Napi::Value();
  if (has_arena && arena == nullptr) arena = meta;  // an empty arena still counts as given (attach checks its length)
  objpool::Pool pool;
  if (objpool::Pool::attach(meta, meta_len, has_arena ? arena : nullptr, arena_len, pool) != Status::ok) {
    napi_throw_error(env, "ERR_OBJPOOL_BAD_DESCRIPTOR",
                     "The pool metadata is invalid: wrong magic, layout version or sizes, or truncated memory");
    return Napi::Value();
  }
  if (!arena_shared) pool = pool.without_arena();
  std::vector<uint8_t*> objects;
  std::vector<napi_value> views;  // the very values whose bytes `objects` holds (an element read twice could differ)
  if (info.Length() > 5 && !info[5].IsUndefined()) {
    const char* expected = "an Array of capacity Uint8Arrays over SharedArrayBuffers (a zero pool without an arena)";
    if (!info[5].IsArray() || has_arena || !pool.zeroes() || info[5].As<Napi::Array>().Length() != pool.capacity())
      return throw_type(env, "objects", expected, info[5]), Napi::Value();
    Napi::Array list = info[5].As<Napi::Array>();
    objects.resize(pool.capacity());
    views.resize(pool.capacity());
    for (uint32_t i = 0; i < pool.capacity(); ++i) {
      Napi::Value v = list.Get(i);
      views[i] = v;
      void* data = nullptr;
      size_t len = 0;
      bool shared = false;
      if (!get_bytes(env, v, "objects[i]", &data, &len, &shared)) return Napi::Value();
      if (!shared || len < pool.object_size()) return throw_type(env, "objects", expected, info[5]), Napi::Value();
      objects[i] = static_cast<uint8_t*>(data);
    }
  }
  auto* b = new Binding;
  b->pool = pool;
  b->env = env;
  b->key = meta;
  b->mem = static_cast<int32_t*>(mem);
  b->cache_cap = uint32_t(cache);
  if (info.Length() > 4 && info[4].IsString()) b->where = " (pool \"" + info[4].As<Napi::String>().Utf8Value() + "\")";
  std::memset(b->mem, 0, kCacheBase * sizeof(int32_t));
  for (size_t i = 0; i < 3; ++i) {
    if (i == 1 && !arena_shared) continue;
    napi_create_reference(env, info[i], 1, &b->refs[i]);
  }
  if (!objects.empty()) {
    // Strong references to the views: they keep the memory alive while this
    // view may zero it (a SharedArrayBuffer cannot be detached or shrink).
    b->object_refs.reserve(views.size());
    for (napi_value v : views) {
      napi_ref r;
      napi_create_reference(env, v, 1, &r);
      b->object_refs.push_back(r);
    }
    b->objects = std::move(objects);
  }
  if (b->cache_cap > 0) make_flusher(env, b);

  // The functions' finalizers own `b` from here on; if this thread's
  // environment goes first, the cleanup hook gives back what it holds.
  napi_add_env_cleanup_hook(env, env_cleanup, b);
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    static uint64_t opened = 0;  // under the lock
    b->opened = ++opened;
    registry()[b->key].all.push_back(b);
  }
  Napi::Object ops = Napi::Object::New(env);
  const std::pair<const char*, napi_callback> hot[] = {{"popMany", PopMany},
                                                       {"pushMany", PushMany},
                                                       {"popReg", PopReg},
                                                       {"pushReg", PushReg},
                                                       {"pushFree", PushFree},
                                                       {"refill", Refill},
                                                       {"spill", Spill},
                                                       {"flush", Flush},
                                                       {"zeroReg", ZeroReg},
                                                       {"pushManyFree", PushManyFree},
                                                       {"zeroPushFree", ZeroPushFree},
                                                       {"chanSendMany", ChanSendMany},
                                                       {"chanReceiveMany", ChanReceiveMany},
                                                       {"chanSettle", ChanSettle},
                                                       {"chanClose", ChanClose},
                                                       {"chanWaitBegin", ChanWaitBegin},
                                                       {"chanWaitEnd", ChanWaitEnd}};
  for (const auto& [name, cb] : hot) add_c_function(ops, b, name, cb);
  const std::pair<const char*, Napi::Function::Callback> rest[] = {{"close", Close},
                                                                   {"drain", Drain},
                                                                   {"corrupt", Corrupt},
                                                                   {"stats", Stats},
                                                                   {"watch", Watch},
                                                                   {"unwatch", Unwatch},
                                                                   {"waitBegin", WaitBegin},
                                                                   {"waitEnd", WaitEnd},
                                                                   {"onClose", OnClose},
                                                                   {"openChannel", OpenChannel},
                                                                   {"own", Own}};
  for (const auto& [name, cb] : rest) add_function(ops, b, name, cb);
  return ops;
}

// address(view): the address of a view's first byte, as a number. Lets JS
// recognise one object through views created in different threads.
Napi::Value Address(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  bool is_ta = false;
  napi_is_typedarray(env, info[0], &is_ta);
  void* data = nullptr;
  if (!is_ta || napi_get_typedarray_info(env, info[0], nullptr, nullptr, &data, nullptr, nullptr) != napi_ok) {
    throw_type(env, "view", "an instance of TypedArray", info[0]);
    return Napi::Value();
  }
  return Napi::Number::New(env, double(reinterpret_cast<uintptr_t>(data)));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("address", Napi::Function::New(env, Address, "address"));
  exports.Set("metaBytes", Napi::Function::New(env, MetaBytes, "metaBytes"));
  exports.Set("format", Napi::Function::New(env, Format, "format"));
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("views", Napi::Function::New(env, Views, "views"));
  exports.Set("maxCapacity", Napi::Number::New(env, objpool::kMaxCapacity));
  exports.Set("maxSlots", Napi::Number::New(env, objpool::kMaxSlots));
  exports.Set("maxAlign", Napi::Number::New(env, objpool::kMaxAlign));
  exports.Set("attentionWord", Napi::Number::New(env, double(objpool::layout::attention / 4)));
  exports.Set("releasedWord", Napi::Number::New(env, double(objpool::layout::released / 4)));
  exports.Set("headsOffset", Napi::Number::New(env, double(objpool::layout::heads)));
  exports.Set("countersOffset", Napi::Number::New(env, double(objpool::layout::counters)));
  exports.Set("lineBytes", Napi::Number::New(env, double(objpool::kLine)));
  exports.Set("layoutVersion", Napi::Number::New(env, objpool::kLayoutVersion));
  exports.Set("channelBytes", Napi::Function::New(env, ChannelBytes, "channelBytes"));
  exports.Set("channelFormat", Napi::Function::New(env, ChannelFormat, "channelFormat"));
  exports.Set("chanVersion", Napi::Number::New(env, objpool::kChanVersion));
  exports.Set("chanMaxCapacity", Napi::Number::New(env, objpool::kChanMaxCapacity));
  exports.Set("chanAttentionWord", Napi::Number::New(env, double(objpool::chan_layout::attention)));
  exports.Set("chanEnqueueWord", Napi::Number::New(env, double(objpool::chan_layout::enqueue)));
  exports.Set("chanDequeueWord", Napi::Number::New(env, double(objpool::chan_layout::dequeue)));
  exports.Set("chanCellsWord", Napi::Number::New(env, double(objpool::chan_layout::cells)));
  exports.Set("memSendWord", Napi::Number::New(env, double(kSendChan)));
  exports.Set("memRecvWord", Napi::Number::New(env, double(kRecvChan)));
  exports.Set("memCacheBase", Napi::Number::New(env, double(kCacheBase)));
  return exports;
}

}  // namespace

NODE_API_MODULE(objpool, Init)
