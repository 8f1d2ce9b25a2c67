// binding.hpp: what the files of the N-API binding share (addon.cc: module
// set-up, argument checks, errors and the hot-path callbacks; registry.cc:
// the process-wide registry, flushing, draining and close; waiting.cc: the
// wake-up helpers and waiting; channels.cc: handle channels and the repair
// of stopped threads). Internal to the addon; the core (objpool.hpp) knows
// nothing of it. Holds the records of a view and its channels, and the
// declarations of what one file calls in another. What the hot-path
// callbacks call on their fast path is inline here or in addon.cc (no pop or
// push calls into another file except on a slow path: an empty pool, a
// closed one, an error).
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
#ifndef OBJPOOL_BINDING_HPP
#define OBJPOOL_BINDING_HPP

#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "objpool.hpp"

namespace objpool::binding {

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
  // Which queue the call is on: 1 the ring, 0 the MPMC queue (channel.hpp, "The ring").
  kSendRing = 10,
  kRecvRing = 11,
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
struct Segment;  // segment.hpp: a process-shared pool's OS shared memory

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
  // A process-shared pool: its segment (which holds the metadata and arena
  // mapped while this view lives) and this view's record in it (see
  // segment.hpp), or null and -1.
  std::shared_ptr<Segment> segment;
  int view = -1;

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
std::mutex& registry_mutex();
std::unordered_map<const void*, Members>& registry();

// ---- registry.cc: the registry, flushing, draining, close -----------------

void unlist_channel_locked(Members& m, ChanRec* r);
bool flush_others_locked(Binding* b, bool holders = false, bool* drain = nullptr);
void flush_all(const void* key);
bool reclaim(Binding* b);
void request_drain(napi_env env, const void* key);
void call_js(napi_env env, napi_value fn);
bool make_flusher(napi_env env, Binding* b);
void teardown(Binding* b);
void env_cleanup(void* arg);
Napi::Value Close(const Napi::CallbackInfo& info);
Napi::Value Drain(const Napi::CallbackInfo& info);
Napi::Value Corrupt(const Napi::CallbackInfo& info);
Napi::Value Stats(const Napi::CallbackInfo& info);
Napi::Value Watch(const Napi::CallbackInfo& info);
Napi::Value Unwatch(const Napi::CallbackInfo& info);
Napi::Value Own(const Napi::CallbackInfo& info);
Napi::Value Views(const Napi::CallbackInfo& info);
Napi::Value OnClose(const Napi::CallbackInfo& info);

// ---- waiting.cc: wake-up helpers and waiting ------------------------------

// Instantiated in waiting.cc for objpool::Pool and ChanSource.
template <class Source>
Waiter* start_helper(napi_env env, Source src, uint32_t seq, napi_value on_wake);
void stop_chan_waiter(napi_env env, ChanRec* r);
void stop_waiter(Binding* b);
void hold(napi_env env, Waiter* w);
void unhold(napi_env env, Waiter* w);
Napi::Value WaitBegin(const Napi::CallbackInfo& info);
Napi::Value WaitEnd(const Napi::CallbackInfo& info);

// ---- channels.cc: handle channels, repair of stopped threads --------------

bool repair_channels(Binding* b);
Napi::Value OpenChannel(const Napi::CallbackInfo& info);
Napi::Value ChanCreate(const Napi::CallbackInfo& info);
napi_value ChanSendMany(napi_env env, napi_callback_info info);
napi_value ChanSendOne(napi_env env, napi_callback_info info);
napi_value ChanReceiveOne(napi_env env, napi_callback_info info);
napi_value ChanReceiveMany(napi_env env, napi_callback_info info);
napi_value ChanPromote(napi_env env, napi_callback_info info);
napi_value ChanSettle(napi_env env, napi_callback_info info);
napi_value ChanClose(napi_env env, napi_callback_info info);
napi_value ChanWaitBegin(napi_env env, napi_callback_info info);
napi_value ChanWaitEnd(napi_env env, napi_callback_info info);
Napi::Value ChannelBytes(const Napi::CallbackInfo& info);
Napi::Value ChannelFormat(const Napi::CallbackInfo& info);

// ---- addon.cc: errors, argument checks, module set-up ---------------------

napi_value throw_type(napi_env env, const char* name, const char* expected, napi_value got);
napi_value throw_range(napi_env env, const char* name, double limit, double got);
napi_value throw_pool(napi_env env, const Binding* b, Status st, double handle = -1);
bool get_view(napi_env env, napi_value v, napi_typedarray_type want, const char* name, const char* expected,
              void** data, size_t* len, bool* shared);
bool get_bytes(napi_env env, napi_value v, const char* name, void** data, size_t* len, bool* shared = nullptr);
bool get_u32_args(napi_env env, const Napi::CallbackInfo& info, size_t from,
                  std::initializer_list<std::pair<const char*, uint32_t*>> args);
bool get_shape_args(napi_env env, const Napi::CallbackInfo& info, size_t from, objpool::Config& c);
void finalize_function(napi_env env, void* data, void*);

// ---- what the hot-path callbacks call on their fast path -----------------
//
// Inline here, or defined in addon.cc beside them (flush_cache(),
// get_u32_array(), scratch()): never in another file.

bool flush_cache(Binding* b, bool rezero = false);
bool get_u32_array(napi_env env, napi_value arr, napi_value count_v, const char* name, uint32_t** data, size_t* count);
uint32_t* scratch(napi_env env, size_t n);

inline Binding* binding_of(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  void* data = nullptr;
  napi_get_cb_info(env, info, argc, argv, nullptr, &data);
  return static_cast<Binding*>(data);
}

// A whole number in [0, limit), else a thrown error and false.
inline bool get_index(napi_env env, napi_value v, const char* name, double limit, uint32_t* out) {
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

}  // namespace objpool::binding

#endif  // OBJPOOL_BINDING_HPP
