// waiting.cc: waiting for objects (waitBegin()/waitEnd()) and the wake-up
// helpers: a thread per waiting view, blocked on a pool's (or a channel's)
// wake word, that calls the view's JS thread back when it changes; and
// stopping them. See binding.hpp.

#include <chrono>

#include "binding.hpp"

namespace objpool::binding {

namespace {

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

}  // namespace

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

// The two kinds of helper: a view's, for the pool (ensure_waiter()), and a
// channel's (ChanWaitBegin in channels.cc).
template Waiter* start_helper<objpool::Pool>(napi_env, objpool::Pool, uint32_t, napi_value);
template Waiter* start_helper<ChanSource>(napi_env, ChanSource, uint32_t, napi_value);

namespace {

// The view's helper for the pool's wake word, started on first use.
Waiter* ensure_waiter(napi_env env, Binding* b, napi_value on_wake) {
  if (b->waiter != nullptr) return b->waiter;
  // Read before anyone registers: a push after the caller's retry changes it.
  return b->waiter = start_helper(env, b->pool, b->pool.wake_seq(), on_wake);
}

}  // namespace

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

}  // namespace objpool::binding
