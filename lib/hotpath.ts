// The hot path: each pool instance's pop and push (and the pushMany
// variants) as closures over typed arrays, and what they call. Everything
// they read per call is a closure variable or a constant of this module:
// an import is a property load on every call.
import { native, type NativeOps } from './native';
import { checkInteger, codes, invalidType, outOfRange, poolError } from './errors';
import type { LeakTracker } from './leaks';

const TAKEN = 1;
const FREE = 0;
// A process-shared pool's state words carry their owner (native/layout.hpp):
// kind | owner << 8. This process's views write Taken|owner for what they
// hand out and Cached|owner for what their caches hold (`taken` and `free`
// in the closures below); a thread pool's are TAKEN and FREE.
const KIND_MASK = 0xff;

// The TypedArray intrinsics, taken at load: objects of fromBuffers() pools are
// the user's and may override them (see #zeroer), and a prototype patched
// later does not reach these either. Module-local here, where the pop and
// push closures call them: an imported binding is a property load per call.
const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as object;
const callOf = Function.prototype.call;
const U32 = Uint32Array;
const typedLength = callOf.bind(Object.getOwnPropertyDescriptor(typedArrayProto, 'length')!.get!) as (v: Uint32Array) => number;
const setFrom = callOf.bind((typedArrayProto as { set: (a: Uint32Array) => void }).set) as (to: Uint32Array, from: Uint32Array) => void;

/**
 * @internal A private copy of a Uint32Array (checked by brand first, so a
 * Proxy or a forgery is refused): a new array of its own, filled by the
 * intrinsic set(), which reads the source's elements and length from its
 * internal slots. No user code runs (slice() would build its result through
 * the array's constructor, Symbol.species: longer, or over shared memory).
 */
export function copyU32(handles: unknown, name = 'handles'): Uint32Array {
  if (uint32Tag(handles) !== 'Uint32Array') throw invalidType(name, 'an instance of Uint32Array', handles);
  const h = handles as Uint32Array;
  const out = new U32(typedLength(h));
  setFrom(out, h);
  return out;
}
const fillOf = callOf.bind(Uint8Array.prototype.fill) as (o: Uint8Array, v: number, start?: number, end?: number) => Uint8Array;
const byteLengthOf = callOf.bind(Object.getOwnPropertyDescriptor(typedArrayProto, 'byteLength')!.get!) as (o: Uint8Array) => number;

// `where`: ` (pool "name")`, or '' for a pool without a name.
export function closedError(where = ''): Error {
  return poolError(codes.CLOSED, `The pool${where} is closed`);
}

export function doublePush(handle: number, where = ''): Error {
  return poolError(codes.DOUBLE_PUSH, `Object ${handle} is not out of the pool${where}: pushed twice, or never popped`);
}

/** @internal What JS zeroes: one user object per handle, or a range of a user's ArrayBuffer. */
export interface JsZero {
  objects: Uint8Array[] | null;
  bytes: Uint8Array | null;
  stride: number;
  size: number;
}

// ---- the hot path ---------------------------------------------------------
//
// Built once per instance as closures over typed arrays, so a call reads no
// property. With a cache, pop and push stay in JS until the cache runs empty
// or full (Bonwick's magazines, as one array: refill takes half of it, spill
// gives back the older half, so alternating pops and pushes never cross).
// Checked mode stays exact: a push moves the state word Taken -> Free with
// one atomic compare-exchange (two threads pushing one handle: one wins);
// objects in a cache are Free, and a pop marks its object Taken with a plain
// store (it owns the object: nobody else can take it from this cache).
//
// Plain accesses to shared memory here, and what makes each one visible:
//   - `mem` (this view's own SharedArrayBuffer: registers, count, limit,
//     cached handles): read and written by this thread only (its JS and the
//     native calls it makes: program order). Other threads read the count
//     alone, in stats(), exact once they have synchronized with this thread
//     after its last call (see native/binding.hpp, MemWord).
//   - `state[h] = TAKEN` in pop: the object came from this thread's cache, so
//     no list holds it and no other thread can reach it. Its next reader is
//     the push that returns it: in this thread (program order), or in another
//     thread that got the handle through a hand-off that synchronizes
//     (postMessage, an Atomics store/load of the handle, a channel): that
//     hand-off orders this store before the other thread's compare-exchange.
//     The restores `state[h] = TAKEN` in a failed push are the same case.
//   - `attention[A]` (closed bit and waiters, written by other threads with
//     seq_cst atomics): a plain load is a hint here. A stale 0 after a close
//     lets a pop or push go on in the cache until the close's flush request
//     (queued on this thread's event loop, or this thread's next native
//     call, which reads the word atomically) catches up; a stale 0 after a
//     waiter registered keeps a pushed object in this cache until the
//     waiter's flush request runs here, and the flush then wakes it. The
//     word is re-read on every call (each call writes `mem`, so the load is
//     not hoisted out of a loop).

// BASE a literal, as the others: the pop/push closures index `mem` with it
// on every call. It must be the binding's kCacheBase (checked at load).
const REG_POPPED = 0, REG_PUSH = 1, COUNT = 2, LIMIT = 3, BASE = 12;
if (native.memCacheBase !== BASE) throw new Error(`objpool: the addon's view layout (cache at word ${native.memCacheBase}) does not match lib/pool.ts (${BASE}): rebuild`);

// `empty()`: called when a pop finds nothing (publishes the exhausted event
// if anyone subscribes); returns -1.
export function makePop(ops: NativeOps, mem: Int32Array, attention: Int32Array, state: Int32Array | null, cacheCap: number,
  empty: () => -1, where: string, taken = TAKEN): () => number {
  const popReg = ops.popReg;
  if (cacheCap === 0) {
    return () => {
      popReg();
      const h = mem[REG_POPPED]!;
      return h < 0 ? empty() : h;
    };
  }
  const refill = ops.refill, flush = ops.flush;
  const A = native.attentionWord;
  // The closed flag is read with a plain load (see above): it only ever goes
  // 0 -> 1, and every iteration of a loop of pops and pushes writes the
  // cache, so the load cannot be hoisted out of it.
  const closed = () => {
    flush();
    return closedError(where);
  };
  if (state === null) {
    return () => {
      if ((attention[A]! & 1) !== 0) throw closed();
      let n = mem[COUNT]!;
      if (n === 0 && (n = refill()) === 0) return empty();
      mem[COUNT] = --n;
      return mem[BASE + n]!;
    };
  }
  return () => {
    if ((attention[A]! & 1) !== 0) throw closed();
    let n = mem[COUNT]!;
    if (n === 0 && (n = refill()) === 0) return empty();
    mem[COUNT] = --n;
    const h = mem[BASE + n]!;
    state[h] = taken; // plain: ordered before any other thread's push by the hand-off of h (see above)
    return h;
  };
}

export function makePush(ops: NativeOps, mem: Int32Array, attention: Int32Array, state: Int32Array | null, cacheCap: number,
  capacity: number, zeroing: boolean, sharedArena: boolean, leaks: LeakTracker | null, where: string,
  inline: JsZero | null, taken = TAKEN, free = FREE): (handle: number) => void {
  const pushReg = ops.pushReg, pushFree = ops.pushFree, spill = ops.spill;
  const A = native.attentionWord;
  // Between a push's state change (Taken -> Free) and the moment its object
  // is accounted for (in the cache, or linked into the pool) every call can
  // throw before it runs (a stack overflow): then the state goes back to
  // Taken, and the object is still the caller's. Native calls are the only
  // calls there, and worker.terminate() acts at JS function entries, not
  // between native calls. The restore is a plain store, in the catch block
  // itself: a call there could overflow the stack again. (A plain store is
  // enough: the object is in no list, so nobody else can change its state.)
  let push: (h: number) => void;
  if (cacheCap === 0 && !zeroing) {
    // Native code checks and pushes, all in one call.
    push = (h) => {
      if (typeof h !== 'number' || (h >>> 0) !== h || h >= capacity) throw badHandle(h, capacity);
      mem[REG_PUSH] = h;
      pushReg();
    };
  } else if (!zeroing && state !== null) {
    push = (h) => {
      if (typeof h !== 'number' || (h >>> 0) !== h || h >= capacity) throw badHandle(h, capacity);
      const was = Atomics.compareExchange(state, h, taken, free);
      if (was !== taken && (taken === TAKEN || !retake(state, h, was, free))) throw doublePush(h, where);
      let n = mem[COUNT]!;
      try {
        // Closed, or threads wait for objects: straight to the pool (a plain
        // load: a hint; see above).
        if (attention[A] !== 0) {
          mem[REG_PUSH] = h;
          return pushFree();
        }
        // At the cache's share of the budget: spill() makes room, or pushes
        // the handle itself (-1) when the cache has no share.
        if (n >= mem[LIMIT]!) {
          mem[REG_PUSH] = h;
          if ((n = spill()) < 0) return;
        }
      } catch (err) {
        state[h] = taken;
        throw err;
      }
      mem[BASE + n] = h;
      mem[COUNT] = n + 1;
    };
  } else if (!zeroing) {
    // Unchecked: no state to restore.
    push = (h) => {
      if (typeof h !== 'number' || (h >>> 0) !== h || h >= capacity) throw badHandle(h, capacity);
      let n = mem[COUNT]!;
      if (attention[A] !== 0) {
        mem[REG_PUSH] = h;
        return pushFree();
      }
      if (n >= mem[LIMIT]!) {
        mem[REG_PUSH] = h;
        if ((n = spill()) < 0) return;
      }
      mem[BASE + n] = h;
      mem[COUNT] = n + 1;
    };
  } else {
    // Zeroing: once this thread owns the object (after the state check) and
    // before anyone else can take it. Shared arenas with a memset, in the
    // same native call that links the object when it is not cached; other
    // memory (a user's ArrayBuffer, fromBuffers objects) by JS fills through
    // the intrinsics (see #zeroer), so no user code runs in a push. The
    // registers and the cache count are read only after zeroing all the
    // same. A terminated thread's cleanup hook zeroes the cache it gives back.
    //
    // Between the state change and the object's store (in the cache, or
    // linked by a native call) no function of ours may be entered:
    // worker.terminate() acts at JS function entries and loop back-edges,
    // and would leave the object Free but in no list, lost for good (it was,
    // through a zeroing closure, in a third of the terminations measured).
    // So JS zeroing is written out here, calling only the intrinsics.
    const zeroPushFree = ops.zeroPushFree, zeroReg = ops.zeroReg;
    const zObjects = inline?.objects ?? null, zBytes = inline?.bytes ?? null, zStride = inline?.stride ?? 0, zSize = inline?.size ?? 0;
    push = (h) => {
      if (typeof h !== 'number' || (h >>> 0) !== h || h >= capacity) throw badHandle(h, capacity);
      if (state !== null) {
        const was = Atomics.compareExchange(state, h, taken, free);
        if (was !== taken && (taken === TAKEN || !retake(state, h, was, free))) throw doublePush(h, where);
      }
      let n: number;
      try {
        if (sharedArena) {
          mem[REG_PUSH] = h;
          if (cacheCap === 0 || attention[A] !== 0) return zeroPushFree();
          zeroReg();
        } else {
          if (zObjects !== null) {
            const o = zObjects[h]!;
            if (byteLengthOf(o) !== 0) fillOf(o, 0);
          } else if (byteLengthOf(zBytes!) !== 0) {
            fillOf(zBytes!, 0, h * zStride, h * zStride + zSize);
          }
          if (cacheCap === 0 || attention[A] !== 0) {
            mem[REG_PUSH] = h;
            return pushFree();
          }
        }
        n = mem[COUNT]!;
        if (n >= mem[LIMIT]!) {
          mem[REG_PUSH] = h;
          if ((n = spill()) < 0) return;
        }
      } catch (err) {
        if (state !== null) state[h] = taken;
        throw err;
      }
      mem[BASE + n] = h;
      mem[COUNT] = n + 1;
    };
  }
  if (leaks === null) return push;
  return (h) => {
    push(h);
    if (leaks.size !== 0) leaks.untrack(h);
  };
}

// pushMany for pools whose objects JS zeroes: every state word goes Taken ->
// Free first (all or nothing), then each object is zeroed, then the batch is
// linked in by one native call.
export function zeroingPushMany(ops: NativeOps, state: Int32Array | null, zero: (h: number) => void, capacity: number,
  taken = TAKEN, free = FREE): NativeOps['pushMany'] {
  return (handles, count) => {
    const hs = copyU32(handles); // a private copy: the caller's array may be shared memory
    const n = count === undefined ? hs.length : checkInteger('count', count, 0, hs.length);
    for (let i = 0; i < n; i++) if (hs[i]! >= capacity) throw outOfRange('handles', `an integer >= 0 and < ${capacity}`, hs[i]);
    if (state !== null) {
      for (let i = 0; i < n; i++) {
        const was = Atomics.compareExchange(state, hs[i]!, taken, free);
        if (was !== taken && (taken === TAKEN || !retake(state, hs[i]!, was, free))) {
          for (let j = 0; j < i; j++) Atomics.store(state, hs[j]!, taken);
          throw poolError(codes.DOUBLE_PUSH, 'A handle in the batch is not out of the pool (pushed twice, given twice, or never popped); nothing was pushed');
        }
      }
    }
    try {
      for (let i = 0; i < n; i++) zero(hs[i]!);
    } catch (err) {
      if (state !== null) for (let i = 0; i < n; i++) state[hs[i]!] = taken; // plain stores: see makePush
      throw err;
    }
    ops.pushManyFree(hs, n);
  };
}

export function leakAwarePushMany(pushMany: NativeOps['pushMany'], leaks: LeakTracker | null): NativeOps['pushMany'] {
  if (leaks === null) return pushMany;
  return (handles, count) => {
    // The handles are copied once, first, and pushed from that very copy:
    // the caller's array may be shared memory that another thread changes
    // meanwhile, and what is untracked must be exactly what was pushed.
    const copy = copyU32(handles);
    pushMany(copy, count);
    if (leaks.size === 0) return;
    const n = count ?? copy.length;
    for (let i = 0; i < n; i++) leaks.untrack(copy[i]!);
  };
}
const uint32Tag = callOf.bind(Object.getOwnPropertyDescriptor(typedArrayProto, Symbol.toStringTag)!.get!) as (v: unknown) => string | undefined;

// A process-shared pool: a push of an object that another process took (it
// was handed over by other means than a channel) takes it over, by one
// compare-exchange from the Taken state seen: a race with that process's
// own push, or with a recovery of it, has one winner.
function retake(state: Int32Array, h: number, was: number, free: number): boolean {
  return (was & KIND_MASK) === TAKEN && Atomics.compareExchange(state, h, was, free) === was;
}

export function badHandle(handle: unknown, capacity: number): Error {
  if (typeof handle !== 'number') return invalidType('handle', 'of type number', handle);
  return outOfRange('handle', `an integer >= 0 and < ${capacity}`, handle);
}


// The zeroing of memory only JS reaches (see JsZero), through the
// intrinsics: an object's own fill or byteLength runs no user code.
export function jsZeroer(js: JsZero): (h: number) => void {
  const { objects, bytes, stride, size } = js;
  if (objects !== null) return (h) => { const o = objects[h]!; if (byteLengthOf(o) !== 0) fillOf(o, 0); };
  return (h) => { if (byteLengthOf(bytes!) !== 0) fillOf(bytes!, 0, h * stride, h * stride + size); };
}

// Exported by a list, not at their declarations: TypeScript compiles a use
// of an `export const` inside its own module as a property load.
export { TAKEN, FREE, KIND_MASK, typedArrayProto, callOf, fillOf, byteLengthOf, REG_POPPED, REG_PUSH, COUNT, LIMIT, BASE };
