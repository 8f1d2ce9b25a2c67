// The N-API binding: argument checks and error mapping over objpool.hpp.
//
// pop/push (and the batch calls) are the hot path and are plain C
// `napi_callback`s bound to one pool through the callback's data pointer, so
// a call costs little more than the JS-to-native crossing itself (a
// node-addon-api CallbackInfo wrapper costs about twice the crossing; see
// bench/). Everything else uses node-addon-api.
//
// Pool memory is never owned here: the metadata and the arena are
// SharedArrayBuffers (or the user's ArrayBuffer) owned by V8. open() stores
// the views it got its pointers from on every function it returns (a plain
// JS property), so the memory outlives every function that can touch it and
// is collected in the same GC as the last of them.

#include <napi.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "objpool.hpp"

namespace {

using objpool::Status;

// One attached view of a pool, shared by the functions created for it. All of
// its fields are used on the thread that created it, except `pool`, whose
// methods are thread-safe.
struct Binding {
  objpool::Pool pool;
  napi_env env = nullptr;
  int functions = 0;                          // live bound functions; the last finalizer frees this
  napi_threadsafe_function closer = nullptr;  // set while this view drains a closed pool
  bool closer_ref = false;                    // a push on this thread queued a drain: keep the loop alive until it runs
  const void* key = nullptr;                  // the metadata's address: one per pool in the process
  int32_t* reg = nullptr;                     // this thread's 2-word register: [0] popped handle, [1] handle to push
};

// Closers by pool: a push that finds the pool closed asks the closing thread,
// whichever it is, to drain again. Only touched on that slow path and by
// close(); never on pop/push's fast path. Deliberately leaked so that threads
// still running at process exit never see it destroyed.
std::mutex& closers_mutex() {
  static auto* m = new std::mutex;
  return *m;
}
std::unordered_map<const void*, Binding*>& closers() {
  static auto* m = new std::unordered_map<const void*, Binding*>;
  return *m;
}

void request_drain(napi_env env, const void* key) {
  std::lock_guard<std::mutex> lock(closers_mutex());
  auto it = closers().find(key);
  if (it == closers().end()) return;
  // Under the lock, so unwatch() cannot release the function in between.
  Binding* closer = it->second;
  if (closer->env == env && !closer->closer_ref) {
    // A push on the closing thread itself: the drain it queues must run
    // before this loop may exit. (Only that thread may ref the function.)
    napi_ref_threadsafe_function(env, closer->closer);
    closer->closer_ref = true;
  }
  napi_call_threadsafe_function(closer->closer, nullptr, napi_tsfn_nonblocking);
}

// Runs on the closing thread for each drain request.
void call_drain(napi_env env, napi_value fn, void* context, void*) {
  if (env == nullptr) return;  // torn down
  auto* b = static_cast<Binding*>(context);
  if (b->closer_ref && b->closer != nullptr) {
    napi_unref_threadsafe_function(env, b->closer);
    b->closer_ref = false;
  }
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, fn, 0, nullptr, nullptr);
}

void unwatch(Binding* b) {
  if (b->closer == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(closers_mutex());
    auto it = closers().find(b->key);
    if (it != closers().end() && it->second == b) closers().erase(it);
  }
  napi_release_threadsafe_function(b->closer, napi_tsfn_abort);
  b->closer = nullptr;
}

void env_cleanup(void* arg) { unwatch(static_cast<Binding*>(arg)); }

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

napi_value throw_pool(napi_env env, Status st, double handle = -1) {
  char msg[160];
  switch (st) {
    case Status::closed:
      napi_throw_error(env, "ERR_OBJPOOL_CLOSED", "The pool is closed");
      break;
    case Status::double_push:
      if (handle >= 0)
        snprintf(msg, sizeof msg, "Object %.0f is not out of the pool: pushed twice, or never popped", handle);
      else
        snprintf(msg, sizeof msg,
                 "A handle in the batch is not out of the pool (pushed twice, given twice, or never popped); nothing "
                 "was pushed");
      napi_throw_error(env, "ERR_OBJPOOL_DOUBLE_PUSH", msg);
      break;
    default:
      napi_throw_error(env, "ERR_OBJPOOL_BAD_DESCRIPTOR", "The pool metadata is invalid");
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
  if (v.size() < n) {
    try {
      v.resize(n);
    } catch (const std::bad_alloc&) {
      napi_throw_error(env, "ERR_OBJPOOL_NO_MEMORY", "Cannot allocate the scratch space for a batch");
      return nullptr;
    }
  }
  return v.data();
}

// ---- bound functions ------------------------------------------------------

// pop/push: the handle travels through a small Int32Array that the JS side
// reads and writes, so a call needs no argument or return value conversion
// (measured: 11 ns of a ~70 ns pair; npm run bench -- crossing).
// lib/pool.ts checks the handle's type and range before writing it (for the
// error codes); the core's own bounds check stays the one that guards memory.
napi_value PopReg(napi_env env, napi_callback_info info) {
  Binding* b = binding_of(env, info, nullptr, nullptr);
  uint32_t h;
  const Status st = b->pool.pop(h);
  if (st == Status::closed) return throw_pool(env, st);
  b->reg[0] = st == Status::ok ? static_cast<int32_t>(h) : -1;
  return nullptr;
}

napi_value PushReg(napi_env env, napi_callback_info info) {
  Binding* b = binding_of(env, info, nullptr, nullptr);
  const uint32_t h = static_cast<uint32_t>(b->reg[1]);
  const Status st = b->pool.push(h);
  if (st == Status::drain_needed)
    request_drain(env, b->key);
  else if (st == Status::out_of_range)
    return throw_range(env, "handle", b->pool.capacity(), double(int32_t(h)));
  else if (st != Status::ok)
    return throw_pool(env, st, h);
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
  Status st;
  const size_t got = b->pool.pop_many(tmp, n, &st);
  if (st == Status::closed) return throw_pool(env, st);
  std::copy(tmp, tmp + got, out);
  napi_value r;
  napi_create_uint32(env, static_cast<uint32_t>(got), &r);
  return r;
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
    return throw_pool(env, Status::double_push);  // none: more handles than objects, so one is given twice
  };
  if (n > b->pool.capacity()) return out_of_range(in);
  uint32_t* tmp = scratch(env, n);
  if (tmp == nullptr) return nullptr;
  std::copy(in, in + n, tmp);
  const Status st = b->pool.push_many(tmp, n);  // checks every handle's range first, all or nothing
  if (st == Status::drain_needed)
    request_drain(env, b->key);
  else if (st == Status::out_of_range)
    return out_of_range(tmp);
  else if (st != Status::ok)
    return throw_pool(env, st);
  return nullptr;
}

// close(): true for the one call, in any thread, that closed the pool.
Napi::Value Close(const Napi::CallbackInfo& info) {
  auto* b = static_cast<Binding*>(info.Data());
  return Napi::Boolean::New(info.Env(), b->pool.close());
}

Napi::Value IsClosed(const Napi::CallbackInfo& info) {
  auto* b = static_cast<Binding*>(info.Data());
  return Napi::Boolean::New(info.Env(), b->pool.is_closed());
}

// drain(out: Uint32Array): after close(), takes objects out for release.
Napi::Value Drain(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  auto* b = static_cast<Binding*>(info.Data());
  uint32_t* out;
  size_t n;
  if (!get_u32_array(env, info[0], nullptr, "out", &out, &n)) return Napi::Value();
  n = std::min<size_t>(n, b->pool.capacity());
  uint32_t* tmp = scratch(env, n);
  if (tmp == nullptr) return Napi::Value();
  const size_t got = b->pool.drain(tmp, n);
  std::copy(tmp, tmp + got, out);
  return Napi::Number::New(env, double(got));
}

Napi::Value PerSlot(const Napi::CallbackInfo& info) {
  auto* b = static_cast<Binding*>(info.Data());
  const std::vector<uint32_t> counts = b->pool.per_slot();
  Napi::Array arr = Napi::Array::New(info.Env(), counts.size());
  for (uint32_t i = 0; i < counts.size(); ++i) arr.Set(i, Napi::Number::New(info.Env(), counts[i]));
  return arr;
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
  if (b->closer != nullptr) return Napi::Value();
  napi_value name;
  napi_create_string_utf8(env, "objpool.drain", NAPI_AUTO_LENGTH, &name);
  napi_threadsafe_function tsfn;
  NAPI_THROW_IF_FAILED(
      env, napi_create_threadsafe_function(env, info[0], nullptr, name, 0, 1, nullptr, nullptr, b, call_drain, &tsfn),
      Napi::Value());
  // A pending close does not keep the thread alive by itself.
  napi_unref_threadsafe_function(env, tsfn);
  b->closer = tsfn;
  // Added after the thread-safe function, so it runs before the function's
  // own teardown (cleanup hooks run in reverse order).
  napi_add_env_cleanup_hook(env, env_cleanup, b);
  std::lock_guard<std::mutex> lock(closers_mutex());
  closers()[b->key] = b;
  return Napi::Value();
}

Napi::Value Unwatch(const Napi::CallbackInfo& info) {
  auto* b = static_cast<Binding*>(info.Data());
  if (b->closer != nullptr) {
    unwatch(b);
    napi_remove_env_cleanup_hook(info.Env(), env_cleanup, b);
  }
  return Napi::Value();
}

void finalize_function(napi_env env, void* data, void*) {
  auto* b = static_cast<Binding*>(data);
  if (--b->functions > 0) return;
  if (b->closer != nullptr) {
    unwatch(b);
    napi_remove_env_cleanup_hook(env, env_cleanup, b);
  }
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

// A Uint8Array's bytes. Works for views of SharedArrayBuffers, which
// napi_get_arraybuffer_info rejects on Node 20.
bool get_bytes(napi_env env, napi_value v, const char* name, void** data, size_t* len) {
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  napi_typedarray_type type;
  if (!is_ta || napi_get_typedarray_info(env, v, &type, len, data, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    throw_type(env, name, "an instance of Uint8Array", v);
    return false;
  }
  return true;
}

// ---- module functions -----------------------------------------------------

Napi::Value MetaBytes(const Napi::CallbackInfo& info) {
  const uint32_t capacity = info[0].As<Napi::Number>().Uint32Value();
  const uint32_t slots = info[1].As<Napi::Number>().Uint32Value();
  const bool checked = info[2].ToBoolean();
  return Napi::Number::New(info.Env(), double(objpool::meta_bytes_for(capacity, slots, checked)));
}

// format(meta, capacity, slots, objectSize, stride, align, checked, external)
Napi::Value Format(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  void* meta;
  size_t len;
  if (!get_bytes(env, info[0], "meta", &meta, &len)) return Napi::Value();
  objpool::Config c;
  c.capacity = info[1].As<Napi::Number>().Uint32Value();
  c.slots = info[2].As<Napi::Number>().Uint32Value();
  c.object_size = info[3].As<Napi::Number>().Uint32Value();
  c.stride = info[4].As<Napi::Number>().Uint32Value();
  c.align = info[5].As<Napi::Number>().Uint32Value();
  c.checked = info[6].ToBoolean();
  c.external = info[7].ToBoolean();
  if (objpool::Pool::format(meta, len, c) != Status::ok) {
    napi_throw_range_error(env, "ERR_INVALID_ARG_VALUE", "The pool shape is invalid");
    return Napi::Value();
  }
  return Napi::Value();
}

// open(meta, arena | null): validates the metadata (and the arena's length)
// and returns the pool's bound functions.
Napi::Value Open(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  void* meta;
  size_t meta_len;
  if (!get_bytes(env, info[0], "meta", &meta, &meta_len)) return Napi::Value();
  void* arena = nullptr;
  size_t arena_len = 0;
  const bool has_arena = !info[1].IsNull() && !info[1].IsUndefined();
  if (has_arena && !get_bytes(env, info[1], "arena", &arena, &arena_len)) return Napi::Value();
  bool is_ta = false;
  napi_is_typedarray(env, info[2], &is_ta);
  napi_typedarray_type reg_type;
  size_t reg_len = 0;
  void* reg = nullptr;
  napi_value reg_buffer;
  bool shared = true;
  if (!is_ta || napi_get_typedarray_info(env, info[2], &reg_type, &reg_len, &reg, &reg_buffer, nullptr) != napi_ok ||
      reg_type != napi_int32_array || reg_len < 2 || napi_is_arraybuffer(env, reg_buffer, &shared) != napi_ok ||
      !shared) {
    // A private ArrayBuffer (not shared memory another thread could write).
    throw_type(env, "register", "an Int32Array of length >= 2 over an ArrayBuffer", info[2]);
    return Napi::Value();
  }
  if (has_arena && arena == nullptr) arena = meta;  // an empty arena still counts as given
  objpool::Pool pool;
  if (objpool::Pool::attach(meta, meta_len, arena, arena_len, pool) != Status::ok) {
    napi_throw_error(env, "ERR_OBJPOOL_BAD_DESCRIPTOR",
                     "The pool metadata is invalid: wrong magic, layout version or sizes, or truncated memory");
    return Napi::Value();
  }
  auto* b = new Binding;
  b->pool = pool;
  b->env = env;
  b->key = meta;
  b->reg = static_cast<int32_t*>(reg);
  Napi::Object ops = Napi::Object::New(env);
  // The first function's finalizer owns `b` from here on.
  add_c_function(ops, b, "popMany", PopMany);
  add_c_function(ops, b, "pushMany", PushMany);
  add_c_function(ops, b, "popReg", PopReg);
  add_c_function(ops, b, "pushReg", PushReg);
  add_function(ops, b, "close", Close);
  add_function(ops, b, "isClosed", IsClosed);
  add_function(ops, b, "drain", Drain);
  add_function(ops, b, "perSlot", PerSlot);
  add_function(ops, b, "watch", Watch);
  add_function(ops, b, "unwatch", Unwatch);
  Napi::Array memory = Napi::Array::New(env, 3);
  memory.Set(0u, info[0]);
  memory.Set(1u, info[1]);
  memory.Set(2u, info[2]);
  for (const char* name :
       {"popMany", "pushMany", "popReg", "pushReg", "close", "isClosed", "drain", "perSlot", "watch", "unwatch"}) {
    napi_property_descriptor keep = {"memory", nullptr, nullptr, nullptr, nullptr, memory, napi_default, nullptr};
    napi_define_properties(env, ops.Get(name), 1, &keep);  // not enumerable, not writable
  }
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
  exports.Set("maxCapacity", Napi::Number::New(env, objpool::kMaxCapacity));
  exports.Set("maxSlots", Napi::Number::New(env, objpool::kMaxSlots));
  exports.Set("maxAlign", Napi::Number::New(env, objpool::kMaxAlign));
  exports.Set("closedWord", Napi::Number::New(env, double(objpool::layout::closed / 4)));
  return exports;
}

}  // namespace

NODE_API_MODULE(objpool, Init)
