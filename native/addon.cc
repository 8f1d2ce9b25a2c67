// The N-API binding: argument checks and error mapping over objpool.hpp.
//
// pop/push (and the batch calls) are the hot path and are plain C
// `napi_callback`s bound to one pool through the callback's data pointer, so
// a call costs little more than the JS-to-native crossing itself (a
// node-addon-api CallbackInfo wrapper costs about twice the crossing; see
// bench/). Everything else uses node-addon-api.
//
// The binding's files: this one (module set-up, argument checks and errors,
// and the hot-path callbacks), registry.cc (the process-wide registry,
// flushing, draining, close), waiting.cc (wake-up helpers and waiting),
// channels.cc (handle channels); binding.hpp holds what they share.

#include "binding.hpp"
#include "segment.hpp"

namespace objpool::binding {

// ---- errors ---------------------------------------------------------------

namespace {

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

}  // namespace

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
napi_value throw_pool(napi_env env, const Binding* b, Status st, double handle) {
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

// Returns the cache's objects to the pool (this binding's thread only). True
// if the pool is closed and the closer must drain again. `rezero`: zero them
// first (a zero pool's thread torn down between caching an object and
// zeroing it).
bool flush_cache(Binding* b, bool rezero) {
  const uint32_t n = b->cached();
  if (n == 0) return false;
  if (rezero && b->pool.zeroes())
    for (uint32_t i = 0; i < n; ++i) b->zero_object(b->cache()[i]);
  // relaxed: the cache is this thread's; the count is read racily by stats().
  objpool::atomic_ref<int32_t>(b->mem[kCached]).store(0, std::memory_order_relaxed);
  return b->pool.give(b->cache(), n) == Status::drain_needed;
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

namespace {

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

}  // namespace

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

namespace {

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

}  // namespace

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

bool get_bytes(napi_env env, napi_value v, const char* name, void** data, size_t* len, bool* shared) {
  return get_view(env, v, napi_uint8_array, name, "an instance of Uint8Array", data, len, shared);
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

// The five size arguments of format() and processCreate(), from info[from]
// on, into `c`; a thrown coded error and false otherwise.
bool get_shape_args(napi_env env, const Napi::CallbackInfo& info, size_t from, objpool::Config& c) {
  return get_u32_args(env, info, from,
                      {{"capacity", &c.capacity},
                       {"slots", &c.slots},
                       {"objectSize", &c.object_size},
                       {"stride", &c.stride},
                       {"align", &c.align}});
}

namespace {

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
  if (!get_shape_args(env, info, 1, c)) return Napi::Value();
  c.checked = info[6].ToBoolean();
  c.external = info[7].ToBoolean();
  c.zero = info[8].ToBoolean();
  if (objpool::Pool::format(meta, len, c) != Status::ok) {
    napi_throw_range_error(env, "ERR_INVALID_ARG_VALUE", "The pool shape is invalid");
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
// bytes each, which pushes then zero natively. `segment` (optional, a
// process-shared pool): the External from processCreate()/processAttach();
// the metadata and arena are then the segment's own (`meta` and `arena` are
// ignored), held by the segment for as long as this view lives.
Napi::Value Open(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  std::shared_ptr<Segment> segment = info.Length() > 6 ? segment_of(env, info[6]) : nullptr;
  void* meta;
  size_t meta_len;
  bool meta_shared = false;
  void* arena = nullptr;
  size_t arena_len = 0;
  bool arena_shared = false;
  const bool has_arena = segment != nullptr || (!info[1].IsNull() && !info[1].IsUndefined());
  if (segment != nullptr) {
    meta = segment->meta();
    meta_len = size_t(segment->meta_len);
    arena = segment->arena();
    arena_len = size_t(segment->arena_len);
    meta_shared = arena_shared = true;  // mapped by the segment, which nothing in JS can unmap
  } else {
    if (!get_bytes(env, info[0], "meta", &meta, &meta_len, &meta_shared)) return Napi::Value();
    if (!meta_shared) return throw_type(env, "meta", "a Uint8Array over a SharedArrayBuffer", info[0]), Napi::Value();
    if (has_arena && !get_bytes(env, info[1], "arena", &arena, &arena_len, &arena_shared)) return Napi::Value();
  }
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
  if (segment != nullptr) {
    // The shape the segment checked and copied at attach: the live header,
    // which any process can write, is not read again.
    pool = segment->pool;
  } else if (objpool::Pool::attach(meta, meta_len, has_arena ? arena : nullptr, arena_len, pool) != Status::ok) {
    napi_throw_error(env, "ERR_OBJPOOL_BAD_DESCRIPTOR",
                     "The pool metadata is invalid: wrong magic, layout version or sizes, or truncated memory");
    return Napi::Value();
  }
  if (!arena_shared) pool = pool.without_arena();
  if (pool.process_shared() != (segment != nullptr)) {
    napi_throw_error(env, "ERR_OBJPOOL_BAD_DESCRIPTOR",
                     "The pool metadata is invalid: process-shared metadata outside its segment");
    return Napi::Value();
  }
  int view = -1;
  if (segment != nullptr) {
    view = segment->claim_view();
    if (view < 0) {
      napi_throw_error(env, "ERR_OBJPOOL_NO_MEMORY",
                       ("A process-shared pool has room for " + std::to_string(seg::kMaxViews) +
                        " views (ObjectPool instances over all threads and processes): none is free")
                           .c_str());
      return Napi::Value();
    }
    pool.set_owner(segment->me, segment->view_word(uint32_t(view), seg::v_gap),
                   segment->proc_word(segment->me - 1, seg::p_budget));
  }
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
  b->segment = std::move(segment);
  b->view = view;
  b->env = env;
  b->key = meta;
  b->mem = static_cast<int32_t*>(mem);
  b->cache_cap = uint32_t(cache);
  if (info.Length() > 4 && info[4].IsString()) b->where = " (pool \"" + info[4].As<Napi::String>().Utf8Value() + "\")";
  std::memset(b->mem, 0, kCacheBase * sizeof(int32_t));
  for (size_t i = 0; i < 3; ++i) {
    if (i == 1 && !arena_shared) continue;
    if (i < 2 && b->segment != nullptr) continue;  // the segment holds them
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
                                                       {"chanSendOne", ChanSendOne},
                                                       {"chanReceiveOne", ChanReceiveOne},
                                                       {"chanPromote", ChanPromote},
                                                       {"chanSettle", ChanSettle},
                                                       {"chanClose", ChanClose},
                                                       {"chanWaitBegin", ChanWaitBegin},
                                                       {"chanWaitEnd", ChanWaitEnd}};
  for (const auto& [name, cb] : hot) add_c_function(ops, b, name, cb);
  const std::pair<const char*, Napi::Function::Callback> rest[] = {
      {"close", Close},           {"drain", Drain},
      {"corrupt", Corrupt},       {"stats", Stats},
      {"watch", Watch},           {"unwatch", Unwatch},
      {"waitBegin", WaitBegin},   {"waitEnd", WaitEnd},
      {"onClose", OnClose},       {"openChannel", OpenChannel},
      {"chanCreate", ChanCreate}, {"own", Own}};
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
  exports.Set("processCreate", Napi::Function::New(env, ProcessCreate, "processCreate"));
  exports.Set("processAttach", Napi::Function::New(env, ProcessAttach, "processAttach"));
  exports.Set("processSupported", Napi::Function::New(env, ProcessSupported, "processSupported"));
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
  exports.Set("processChannels", Napi::Number::New(env, seg::kMaxChannels));
  exports.Set("chanAttentionWord", Napi::Number::New(env, double(objpool::chan_layout::attention)));
  exports.Set("chanEnqueueWord", Napi::Number::New(env, double(objpool::chan_layout::enqueue)));
  exports.Set("chanDequeueWord", Napi::Number::New(env, double(objpool::chan_layout::dequeue)));
  exports.Set("chanCellsWord", Napi::Number::New(env, double(objpool::chan_layout::cells)));
  exports.Set("chanModeWord", Napi::Number::New(env, double(objpool::chan_layout::mode)));
  exports.Set("chanSenderRoleWord", Napi::Number::New(env, double(objpool::chan_layout::sender_role)));
  exports.Set("chanReceiverRoleWord", Napi::Number::New(env, double(objpool::chan_layout::receiver_role)));
  exports.Set("chanRingEnqueueWord", Napi::Number::New(env, double(objpool::chan_layout::ring_enqueue)));
  exports.Set("chanRingDequeueWord", Napi::Number::New(env, double(objpool::chan_layout::ring_dequeue)));
  exports.Set("memSendWord", Napi::Number::New(env, double(kSendChan)));
  exports.Set("memRecvWord", Napi::Number::New(env, double(kRecvChan)));
  exports.Set("memSendRingWord", Napi::Number::New(env, double(kSendRing)));
  exports.Set("memRecvRingWord", Napi::Number::New(env, double(kRecvRing)));
  exports.Set("memCacheBase", Napi::Number::New(env, double(kCacheBase)));
  return exports;
}

}  // namespace

}  // namespace objpool::binding

using objpool::binding::Init;

NODE_API_MODULE(objpool, Init)
