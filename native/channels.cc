// channels.cc: the binding's handle channel calls (openChannel(), the batch
// sends and receives, settle, close, waiting on a channel), the waking of a
// channel's waiting views, the repair of a channel call that a stopped thread
// left half done, and channelBytes()/channelFormat(). See binding.hpp.

#include "binding.hpp"
#include "segment.hpp"

namespace objpool::binding {

// A thread that stops (worker.terminate() stops JS at a function entry or
// an Atomics call) may leave a channel call half done: a cell claimed and
// not published (the channel would stall), or one taken and the object not
// yet in the thread's hands. The view's memory says which (kSendChan,
// kRecvChan): a send is published (the object, if it went in flight, else
// a hole); a received object goes back to the pool. On the ring (kSendRing,
// kRecvRing) nothing is claimed: an object put in flight by a send that did
// not publish it goes back to the pool, as does one a receive took. Then each channel gets
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
      const uint32_t pos = uint32_t(word(kSendPos).load(std::memory_order_relaxed));
      const uint32_t h = uint32_t(word(kSendHandle).load(std::memory_order_relaxed));
      if (word(kSendRing).load(std::memory_order_relaxed) != 0)
        drain |= r->ch.finish_ring_send(b->pool, pos, h, zero);
      else
        r->ch.finish_send(b->pool, pos, h);
      word(kSendChan).store(0, std::memory_order_relaxed);
    }
    if (word(kRecvChan).load(std::memory_order_relaxed) == r->id) {
      const uint32_t pos = uint32_t(word(kRecvPos).load(std::memory_order_relaxed));
      const uint32_t h = uint32_t(word(kRecvHandle).load(std::memory_order_relaxed));
      if (word(kRecvRing).load(std::memory_order_relaxed) != 0)
        drain |= r->ch.finish_ring_receive(b->pool, pos, h, zero);
      else
        drain |= r->ch.finish_receive(b->pool, pos, h, zero);
      word(kRecvChan).store(0, std::memory_order_relaxed);
    }
    drain |= r->ch.after_send(b->pool, zero) == Status::drain_needed;
  }
  return drain;
}

// ---- handle channels --------------------------------------------------------
//
// Single sends and receives run in JS (lib/channel.ts) over the channel's
// memory; these are the batch calls and the slow paths. A channel's record
// is owned by the external that openChannel() returned, which only the
// HandleChannel's send and receive hold; the calls name it by its id, an
// index into the view's table.

namespace {

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

// chan_call() for the calls that take the channel alone.
ChanRec* chan_call(napi_env env, napi_callback_info info, Binding** b) {
  size_t argc = 1;
  napi_value argv[1] = {nullptr};
  return chan_call(env, info, &argc, argv, b);
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

}  // namespace

// openChannel(memory: Int32Array over a SharedArrayBuffer, fresh): validates the
// channel's header against the memory's real length and returns [the
// external that owns the record (its finalizer frees it), the id that names
// it in the calls below and in the view's memory, the instance's role token
// (channel.hpp, "The ring")]. A channel opened on a
// closed pool is closed at once (and emptied into the pool).
//
// A process-shared pool's channel lives in the pool's shared memory (see
// segment.hpp): `memory` is then its index in the channel table (from
// chanCreate()), and the result has a fourth element, an ArrayBuffer over
// the channel's memory (for size and closed in JS; its calls are native).
Napi::Value OpenChannel(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  auto* b = static_cast<Binding*>(info.Data());
  objpool::Channel ch;
  napi_value memory = nullptr;
  if (b->segment != nullptr) {
    uint32_t index = 0;
    if (!get_u32_args(env, info, 0, {{"index", &index}})) return Napi::Value();
    if (b->torn_down || !b->segment->channel(index, ch) || ch.pool_tag() != b->segment->channel_tag()) {
      napi_throw_error(env, "ERR_OBJPOOL_BAD_DESCRIPTOR",
                       "Invalid process descriptor: no such channel of this pool, or its memory is not a channel's");
      return Napi::Value();
    }
    if ((memory = segment_memory(env, b->segment, ch.memory(), size_t(objpool::channel_bytes_for(ch.capacity())))) ==
        nullptr)
      return Napi::Value();
  } else {
    void* mem;
    size_t len;
    bool shared = false;
    const char* expected = "an Int32Array over a SharedArrayBuffer";
    if (!get_view(env, info[0], napi_int32_array, "memory", expected, &mem, &len, &shared)) return Napi::Value();
    if (!shared) return throw_type(env, "memory", expected, info[0]), Napi::Value();
    if (b->torn_down || objpool::Channel::attach(mem, len * 4, ch) != Status::ok) {
      napi_throw_error(env, "ERR_OBJPOOL_BAD_DESCRIPTOR",
                       "Invalid channel descriptor: wrong magic, layout version or capacity, or truncated memory");
      return Napi::Value();
    }
  }
  // A new channel gets this pool's tag (the metadata's address: the same in
  // every thread of the process); an attached one must carry it.
  const uint64_t tag = uint64_t(reinterpret_cast<uintptr_t>(b->key));
  if (b->segment != nullptr) {
    // Tagged by chanCreate() and checked above.
  } else if (info[1].ToBoolean()) {
    ch.set_pool_tag(tag);
  } else if (ch.pool_tag() != tag) {
    napi_throw_error(env, "ERR_OBJPOOL_BAD_DESCRIPTOR",
                     "Invalid channel descriptor: the channel belongs to another pool");
    return Napi::Value();
  }
  auto* r = new ChanRec;
  // This instance's role: the ring while it is the only sender (receiver).
  // A process-shared channel is the MPMC queue from the start.
  r->ch = b->segment != nullptr ? ch : ch.endpoint();
  r->owner = b;
  napi_value ext;
  if ((b->segment == nullptr && napi_create_reference(env, info[0], 1, &r->ref) != napi_ok) ||
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
  if (closed) {
    ChanGap gap(b->segment.get(), b->view);
    if (r->ch.close_for_pool(b->pool, b->zeroer()) > 0) request_drain(env, b->key);
  }
  Napi::Array out = Napi::Array::New(env, memory != nullptr ? 4 : 3);
  out.Set(uint32_t(0), Napi::Value(env, ext));
  out.Set(uint32_t(1), Napi::Number::New(env, r->id));
  out.Set(uint32_t(2), Napi::Number::New(env, r->ch.role()));
  if (memory != nullptr) out.Set(uint32_t(3), Napi::Value(env, memory));
  return out;
}

// chanCreate(capacity): a new channel in a process-shared pool's memory (a
// power of two of at least 2 cells): its index in the pool's channel table.
Napi::Value ChanCreate(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  auto* b = static_cast<Binding*>(info.Data());
  uint32_t capacity;
  if (!get_u32_args(env, info, 0, {{"capacity", &capacity}})) return Napi::Value();
  if (b->segment == nullptr || capacity < objpool::kChanMinCapacity || capacity > objpool::kChanMaxCapacity ||
      (capacity & (capacity - 1)) != 0) {
    napi_throw_range_error(env, "ERR_INVALID_ARG_VALUE", "The channel shape is invalid");
    return Napi::Value();
  }
  std::string code, message;
  const int index = b->segment->create_channel(capacity, &code, &message);
  if (index < 0) {
    napi_throw_error(env, code.c_str(), message.c_str());
    return Napi::Value();
  }
  return Napi::Number::New(env, index);
}

namespace {

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

// The send of chanSendMany() and chanSendOne(): hs[0..n) (the call's own
// copy), inside the view's channel gap; then the waiting receivers called
// back, and the status reported. How many went; -1 after a thrown error.
ptrdiff_t send_call(napi_env env, Binding* b, ChanRec* r, const uint32_t* hs, size_t n) {
  Status st;
  uint32_t waiters = 0;
  size_t sent;
  {
    ChanGap gap(b->segment.get(), b->view);
    sent = r->ch.send_many(b->pool, hs, n, &st, b->zeroer(), &waiters);
  }
  wake_channel(r, waiters);
  uint32_t bad = 0;
  if (st == Status::out_of_range)
    for (size_t i = 0; i < n; ++i)
      if (hs[i] >= b->pool.capacity()) bad = hs[i];
  // Refused as closed after its claim (its cells became holes): a pool that
  // closed meanwhile may have taken back what sat behind them; its closer
  // drains again (a spare request does nothing).
  if (st == Status::closed && b->pool.is_closed()) request_drain(env, b->key);
  if (st != Status::ok && st != Status::full && st != Status::drain_needed) return chan_status(env, b, st, bad), -1;
  chan_status(env, b, st, 0);
  return ptrdiff_t(sent);
}

}  // namespace

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
  const ptrdiff_t sent = send_call(env, b, r, tmp, n);
  if (sent < 0) return nullptr;
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
  size_t got;
  {
    ChanGap gap(b->segment.get(), b->view);
    got = r->ch.receive_many(b->pool, tmp, n);
  }
  std::copy(tmp, tmp + got, out);
  napi_value v;
  napi_create_uint32(env, uint32_t(got), &v);
  return v;
}

// chanSendOne(channel, handle): sends one handle natively (a process-shared
// channel's send): true, or false when the channel is full; errors as
// chanSendMany's.
napi_value ChanSendOne(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2] = {nullptr, nullptr};
  Binding* b;
  ChanRec* r = chan_call(env, info, &argc, argv, &b);
  if (r == nullptr) return nullptr;
  uint32_t h = 0;
  if (argc < 2 || napi_get_value_uint32(env, argv[1], &h) != napi_ok)
    return throw_type(env, "handle", "a number", argv[1]);
  const ptrdiff_t sent = send_call(env, b, r, &h, 1);
  if (sent < 0) return nullptr;
  napi_value out;
  napi_get_boolean(env, sent == 1, &out);
  return out;
}

// chanReceiveOne(channel): takes one handle natively (a process-shared
// channel's receive); -1 when the channel is empty.
napi_value ChanReceiveOne(napi_env env, napi_callback_info info) {
  Binding* b;
  ChanRec* r = chan_call(env, info, &b);
  if (r == nullptr) return nullptr;
  uint32_t h = 0;
  size_t got;
  {
    ChanGap gap(b->segment.get(), b->view);
    got = r->ch.receive_many(b->pool, &h, 1);
  }
  napi_value v;
  napi_create_int32(env, got == 1 ? int32_t(h) : -1, &v);
  return v;
}

// chanPromote(channel): makes the channel the MPMC queue (a second sender or
// receiver came); true once it is (false only for forged memory).
napi_value ChanPromote(napi_env env, napi_callback_info info) {
  Binding* b;
  ChanRec* r = chan_call(env, info, &b);
  if (r == nullptr) return nullptr;
  bool promoted;
  {
    ChanGap gap(b->segment.get(), b->view);
    promoted = r->ch.promote();
  }
  napi_value v;
  napi_get_boolean(env, promoted, &v);
  return v;
}

// chanSettle(channel): a send from JS found the channel's attention word set:
// wakes the waiting receivers, and when the pool closed meanwhile gives what
// the channel holds back to it.
napi_value ChanSettle(napi_env env, napi_callback_info info) {
  Binding* b;
  ChanRec* r = chan_call(env, info, &b);
  if (r == nullptr) return nullptr;
  uint32_t waiters = 0;
  Status st;
  {
    ChanGap gap(b->segment.get(), b->view);
    st = r->ch.after_send(b->pool, b->zeroer(), &waiters);
  }
  wake_channel(r, waiters);
  return chan_status(env, b, st, 0);
}

// chanClose(channel): no more sends; waiting receivers are woken.
napi_value ChanClose(napi_env env, napi_callback_info info) {
  Binding* b;
  ChanRec* r = chan_call(env, info, &b);
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
  Binding* b;
  ChanRec* r = chan_call(env, info, &b);
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

}  // namespace objpool::binding
