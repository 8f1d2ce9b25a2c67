// registry.cc: the binding's process-wide registry (every view of every
// pool in the process, and their channels), and what goes through it:
// flushing the per-thread caches (a close, waiters, an empty pool), drain
// requests to a pool's closer, close(), drain(), stats(), watch()/unwatch(),
// own()/views() (metrics), onClose(), and a view's teardown (its last
// finalizer, or its thread's environment going away). See binding.hpp.

#include "binding.hpp"
#include "segment.hpp"

namespace objpool::binding {

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

namespace {

// flush_cache(), and the cache's share of the budget goes back too: for a
// thread asked to give back what it holds (it reserves again on its next
// refill or spill) and for one that goes away.
bool flush_and_release(Binding* b, bool rezero = false) {
  const bool drain = flush_cache(b, rezero);
  b->pool.release_cache(b->limit());
  b->set_limit(0);
  return drain;
}

}  // namespace

// Asks every other view of the pool to empty its cache and give back its
// share of the budget: this thread's at once, other threads' on their event
// loops (one queued request each). `holders`: only the views whose cache
// holds objects or budget (a reclaim, not a close). Registry lock held by
// the caller. True if a view of this thread gave objects back; `drain` (if
// given) is set when they went into a closed pool: the caller asks the closer
// to drain once the lock is released (request_drain takes it).
bool flush_others_locked(Binding* b, bool holders, bool* drain) {
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

// Every view of the pool in this process empties its cache on its own
// thread: a close by another process (the segment's watcher calls this).
void flush_all(const void* key) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto it = registry().find(key);
  if (it == registry().end()) return;
  for (Binding* m : it->second.all) {
    if (m->flusher == nullptr) continue;
    // acq_rel: as in flush_others_locked().
    if (!m->flush_queued.exchange(true, std::memory_order_acq_rel))
      napi_call_threadsafe_function(m->flusher, nullptr, napi_tsfn_nonblocking);
  }
}

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

namespace {

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

}  // namespace

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

// Everything a view holds in the pool and the process, given back once: on
// the last finalizer, or when its thread's environment is torn down (a
// worker that exits or is terminated runs no more JS, so its cached objects
// are pushed back here).
void teardown(Binding* b) {
  if (b->torn_down) return;
  b->torn_down = true;
  stop_waiter(b);
  bool repaired;
  {
    // Its channel calls (a process-shared pool's) inside the channel gap, as every other.
    ChanGap gap(b->segment.get(), b->view);
    repaired = repair_channels(b);
  }
  const bool drain = flush_and_release(b, true) || repaired;
  if (b->segment != nullptr) b->segment->free_view(b->view);
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

// close(): true for the one call, in any thread, that closed the pool. Every
// view's cache is emptied: this thread's now, other threads' on their event
// loops (a thread busy in synchronous code empties its own on its next call).
Napi::Value Close(const Napi::CallbackInfo& info) {
  auto* b = static_cast<Binding*>(info.Data());
  const bool won = b->pool.close();
  if (won) {
    flush_cache(b);  // the caller drains next
    // A process-shared pool's channels are closed inside the view's channel
    // gap (see segment.hpp), entered before the lock: a recovery under way
    // makes it wait, and other threads of the process must not wait with it.
    ChanGap gap(b->segment.get(), b->view);
    std::lock_guard<std::mutex> lock(registry_mutex());
    flush_others_locked(b);
    // Every channel of the pool in this process: closed, and what it holds
    // goes back into the pool, which the caller drains next.
    auto it = registry().find(b->key);
    if (b->segment != nullptr) {
      // A process-shared pool: every channel in its memory, opened in this
      // process or not (the segment's table lists them all).
      for (uint32_t i = 0; i < seg::kMaxChannels; ++i) {
        objpool::Channel ch;
        if (b->segment->channel(i, ch)) ch.close_for_pool(b->pool, b->zeroer());
      }
    } else if (it != registry().end()) {
      // One record of each (a listed channel has one at least): they share the memory.
      for (auto& [memory, peers] : it->second.channels) peers->recs.front()->ch.close_for_pool(b->pool, b->zeroer());
    }
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
  if (b->pool.process_shared()) {
    // Every process's caches: their objects are Cached in the shared states.
    cached = b->pool.count_kind(objpool::kStateCached);
  } else {
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
  // A process-shared pool's channel calls that dead processes cut short.
  r.Set("repairedChannelCells", b->segment != nullptr ? double(b->segment->counted(seg::chan_repaired)) : 0.0);
  r.Set("recoveredMidChannelCall", b->segment != nullptr ? double(b->segment->counted(seg::chan_recovered)) : 0.0);
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

}  // namespace objpool::binding
