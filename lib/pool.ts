import { native, type NativeOps } from './native';
import { checkInteger, checkNumber, codes, invalidType, poolError } from './errors';
import { BoundedSpin } from './spin';
import { LeakTracker, type LeakReport } from './leaks';
import * as events from './events';
import { HandleChannel, registerChannelHost, type ChannelHost, type ChannelOptions } from './channel';
import type { PoolDescriptor, PoolOptions, PoolStats, ProcessDescriptor, ReleaseCallback, ReleaseInfo, ViewOptions, WaitOptions, Lease } from './types';
import { Mode, type Parts, type View, autoCache, checkObject, leaksFor } from './options';
import { arrayBufferByteLengthOf, bufferOf, byteOffsetOf, descriptorParts, inSharedMemory, isUint8Array, memoryParts, objectsParts, ownParts, processParts } from './parts';
import { BASE, TAKEN, FREE, KIND_MASK, type JsZero, byteLengthOf, closedError, jsZeroer, leakAwarePushMany, makePop, makePush, zeroingPushMany } from './hotpath';

export type { PoolDescriptor, PoolOptions, PoolStats, ProcessDescriptor, ReleaseCallback, ReleaseInfo, ViewOptions, WaitOptions, Lease } from './types';

/** @internal */
const token = Symbol('objpool.internal');


// The counters in the metadata (native/layout.hpp, Counter), u64 each.
const C_EXHAUSTED = 0, C_WAITS = 1, C_WAIT_TIMEOUTS = 2, C_WAIT_ABORTS = 3, C_WAIT_NS = 4, C_LEAKS = 5, C_RECOVERED = 6, C_RECOVERED_MID = 7, COUNTERS = 8;

/** @internal `pool[metaOf]`: the pool's metadata, the same for every instance of one pool. */
export const metaOf = Symbol('objpool.meta');

// A cached view's handle, on the view itself: release() finds it without
// reading byteOffset (a getter that costs about as much as a pop+push pair).
// Only trusted when the instance's own cache holds that very view.
const kHandle = Symbol('objpool.handle');

/**
 * @internal For the net helpers: `pool[onCloseHook](fn)` calls `fn(err)` once,
 * on this thread, as soon as this thread learns that any thread closed the
 * pool (at once for a close here, through the binding's close notice for a
 * close elsewhere); returns an unsubscribe function. Keeps nothing alive.
 */
export const onCloseHook = Symbol('objpool.onClose');

// Stamps a handle on a Buffer as a private field (the return-override
// idiom: Stamp's constructor returns the Buffer, so the field lands on it).
// For PoolSet's views shorter than their object: invisible to JS (no
// property or symbol for inspect, assert or Object.assign to see), and no
// prototype's setter runs, whatever user code put there. Only trusted when
// the instance's own cache holds that very view.
class Stamp {
  constructor(o: object) {
    return o as Stamp;
  }
}
class HandleStamp extends Stamp {
  readonly #handle: number;
  constructor(o: object, handle: number) {
    super(o);
    this.#handle = handle;
  }
  static of(o: unknown): number {
    return typeof o === 'object' && o !== null && #handle in o ? (o as HandleStamp).#handle : -1;
  }
}
const bufferFrom = Buffer.from as (memory: ArrayBufferLike, offset: number, length: number) => Buffer;

/**
 * @internal A Buffer of the first `n` bytes (1 .. objectSize) of object `h`,
 * which the caller has just popped (for PoolSet): the cached view when `n`
 * is the whole object, else a view of it; a tracked Buffer of its own when
 * the pool's leak detection samples this one (`caller` names the API call
 * in the report).
 */
export let sizedView: (pool: ObjectPool, h: number, n: number, caller: Function) => Buffer;

/**
 * @internal The memory of a pool's own arena as this instance sees it (for
 * PoolSet: its class of a buffer by its memory), or null for a pool over
 * the user's objects.
 */
export let arenaOf: (pool: ObjectPool) => ArrayBufferLike | null;

/**
 * A fixed set of fixed-size objects handed out as integer handles through
 * per-CPU lock-free free lists. One pool can be shared by the main thread,
 * worker threads and native threads (see `descriptor` and `attach`). Each
 * instance is one thread's view of the pool and may keep a few objects in a
 * cache of its own, so that pop() and push() usually stay in JS.
 *
 * Limitations: capacity is fixed; there is no order or fairness between
 * threads (LIFO within a slot and within a cache); `pop()` may report empty
 * while another thread is returning an object, or while objects sit in
 * other threads' caches (all caches together hold at most a quarter of the
 * pool; an empty pop asks them back); the pool's memory lives until
 * the last thread that sees the pool lets go of it.
 */

export class ObjectPool {
  readonly capacity: number;
  readonly objectSize: number;
  readonly stride: number;
  readonly slots: number;
  readonly checked: boolean;
  readonly zero: boolean;
  /** How many objects this instance (this thread's view) may cache. */
  readonly cache: number;
  /** The pool's name (the `name` option), or null. */
  readonly name: string | null;

  /** Takes an object: its handle, or -1 when the pool is empty. Throws ERR_OBJPOOL_CLOSED after close(). */
  declare readonly pop: () => number;
  /** Returns an object by handle. Throws ERR_OBJPOOL_DOUBLE_PUSH if it is not out (checked mode). */
  declare readonly push: (handle: number) => void;
  /** Takes up to `count` (default `out.length`) objects into `out`; returns how many. */
  declare readonly popMany: (out: Uint32Array, count?: number) => number;
  /** Returns the first `count` (default all) handles of `handles`; all or nothing. */
  declare readonly pushMany: (handles: Uint32Array, count?: number) => void;

  readonly #parts: Parts;
  readonly #ops: NativeOps;
  readonly #attention: Int32Array;
  readonly #counters: BigInt64Array;
  /** ` (pool "name")` for messages, or ''. */
  readonly #where: string;
  readonly #views: (Buffer | undefined)[] = [];
  // A process-shared pool's arena is an ArrayBuffer user code can detach
  // (transfer()): a private view of its first byte, whose element read
  // gives undefined once it is (an element read runs no getter, patched
  // prototypes included, and is no builtin call; the byte itself, object
  // 0's and written by any thread, is not looked at). Null otherwise.
  readonly #probe: Uint8Array | null;
  // PoolSet's views shorter than the object (see sizedView), by handle.
  #sizedViews: (Buffer | undefined)[] | null = null;
  readonly #leaks: LeakTracker | null = null;
  readonly #waiters: Waiter[] = [];
  #onWake: (() => void) | null = null;
  /** #serveWaiters() is popping. */
  #serving = false;
  // popAsync()'s bounded spin on a process-shared pool (lib/spin.ts): waking
  // a sleeping process costs the OS, the helper thread and the event loop.
  // Its looks are not the user's pops: uncounted and unpublished (#serving).
  readonly #spin = new BoundedSpin();
  readonly #look = () => {
    this.#serving = true;
    try {
      return this.pop();
    } finally {
      this.#serving = false;
    }
  };
  #zeroTarget: JsZero | null = null;
  /** The binding zeroes this pool's user objects (see the constructor). */
  #nativeObjects = false;
  #closeListeners: Set<(err: Error) => void> | null = null;
  // The close notice the binding holds weakly: kept alive here, with this view.
  #closeNotice: (() => void) | null = null;
  #arenaAddress = -1;
  #byAddress: Map<number, number> | null = null;
  #closing: Promise<void> | null = null;
  #channelHost: ChannelHost | null = null;
  #mem!: Int32Array;
  #state: Int32Array | null = null;

  /** A pool with its own arena of `capacity` objects of `objectSize` bytes, in shared memory. */
  constructor(options: PoolOptions & ViewOptions);
  /** @internal */
  constructor(options: (PoolOptions & ViewOptions) | typeof token, parts?: Parts, init?: PoolOptions['init'], view?: View);
  constructor(options: (PoolOptions & ViewOptions) | typeof token, parts?: Parts, init?: PoolOptions['init'], view?: View) {
    if (options !== token) ({ parts, init, view } = ownParts(options));
    const p = parts!;
    const v: View = view ?? { cache: undefined, leaks: null, leaksGiven: false };
    const leakOpts = leaksFor(v, p.checked);
    this.#parts = p;
    this.#probe = p.process !== undefined ? new Uint8Array(p.arena!, 0, 1) : null;
    this.capacity = p.capacity;
    this.objectSize = p.objectSize;
    this.stride = p.stride;
    this.slots = p.slots;
    this.checked = p.checked;
    this.zero = p.zero;
    this.name = p.name;
    const where = (this.#where = p.name === null ? '' : ` (pool ${JSON.stringify(p.name)})`);
    this.#counters = new BigInt64Array(p.meta, native.countersOffset, COUNTERS);
    const cacheCap = Math.min(v.cache ?? autoCache(p.capacity, p.slots), p.capacity);
    this.cache = cacheCap;
    // This view's own words (see native/binding.hpp, MemWord): [0] popped
    // handle, [1] handle to push, [2] cached count, [3] its limit, [4..9] a
    // channel call in progress, [BASE..] cached handles. A
    // SharedArrayBuffer, so it can never be detached, and reachable from
    // nowhere but these closures and the native binding.
    const mem = (this.#mem = new Int32Array(new SharedArrayBuffer((BASE + cacheCap) * 4)));
    const arenaView = p.arena ? new Uint8Array(p.arena, 0, p.capacity * p.stride) : null;
    // A zero pool of user objects all in shared memory: the binding zeroes
    // them too (it holds them; shared memory cannot be detached), so that a
    // push runs no JS between its state change and its store.
    this.#nativeObjects = p.zero && p.objects !== null && p.objects.every(inSharedMemory);
    const ops = native.open(new Uint8Array(p.meta), arenaView, mem, cacheCap, p.name ?? undefined, this.#nativeObjects ? p.objects! : undefined,
      p.process?.segment);
    // Native code zeroes a push in a shared arena (a process-shared pool's
    // included) or of shared objects.
    const nativeZero = p.arena instanceof SharedArrayBuffer || p.process !== undefined || this.#nativeObjects;
    // Where native code cannot reach the objects (memory that is not
    // shared), JS zeroes what it pushes, pushMany included.
    const jsZero = p.zero && !nativeZero;
    this.#ops = ops;
    this.#attention = new Int32Array(p.meta, 0, native.attentionWord + 1);
    const state = (this.#state = p.checked ? new Int32Array(p.meta, native.headsOffset + p.slots * native.lineBytes + p.capacity * 4, p.capacity) : null);
    // A process-shared pool's state words carry this process's owner tag
    // (see lib/hotpath.ts): Taken|owner out of the pool, Cached|owner in a cache.
    const taken = p.process ? TAKEN | p.process.owner << 8 : TAKEN;
    const free = p.process ? 4 | p.process.owner << 8 : FREE;
    const leaks = leakOpts ? new LeakTracker({ ...leakOpts, onLeak: (r) => this.#leaked(r, leakOpts.onLeak) }, (h) => (Atomics.load(state!, h) & KIND_MASK) === TAKEN) : null;
    this.#leaks = leaks;
    Object.defineProperties(this, {
      pop: { value: makePop(ops, mem, this.#attention, state, cacheCap, () => this.#exhausted(), where, taken), enumerable: false },
      // Without a cache, pushes into a shared arena are zeroed by the core itself.
      push: { value: makePush(ops, mem, this.#attention, state, cacheCap, p.capacity,
        p.zero && !(cacheCap === 0 && (p.arena instanceof SharedArrayBuffer || p.process !== undefined)), nativeZero, leaks, where,
        this.#jsZero(), taken, free), enumerable: false },
      popMany: { value: ops.popMany, enumerable: false },
      pushMany: { value: leakAwarePushMany(jsZero ? zeroingPushMany(ops, state, this.#zeroer()!, p.capacity, taken, free) : ops.pushMany, leaks), enumerable: false },
    });
    // acquire() and release() as closures of this instance too (without leak
    // tracking), so that their calls of pop/push stay monomorphic however
    // many pools a program has; the prototype methods do the rest.
    if (leaks === null) {
      const pop = this.pop, push = this.push, views = this.#views, probe = this.#probe;
      const release = ObjectPool.prototype.release;
      Object.defineProperties(this, {
        acquire: {
          value: probe === null
            ? (): Buffer | null => {
              const h = pop();
              if (h < 0) return null;
              return views[h] ?? this.buffer(h);
            }
            : (): Buffer | null => {
              const h = pop();
              if (h < 0) return null;
              // A cached view of a detached arena has no bytes: buffer() refuses.
              return (probe[0] !== undefined ? views[h] : undefined) ?? this.#handOut(h, null);
            },
          enumerable: false,
        },
        release: {
          value: (obj: Uint8Array): void => {
            const h = (obj as { [kHandle]?: number } | null | undefined)?.[kHandle];
            if (h !== undefined && views[h] === obj) return push(h);
            release.call(this, obj);
          },
          enumerable: false,
        },
      });
    }
    if (p.objects) {
      this.#byAddress = new Map();
      p.objects.forEach((obj, i) => this.#byAddress!.set(native.address(obj), i));
    } else if (p.arena) {
      this.#arenaAddress = native.address(new Uint8Array(p.arena, 0, 1));
    }
    if (init) for (let h = 0; h < p.capacity; h++) init(this.#view(h), h);
    registerChannelHost(this, () => this.#channelHostOf());
    // Listed by native.views() (objpool/metrics) from now on, however early
    // the metrics load; held weakly, and only once fully made.
    this.#ops.own(this);
    if (events.created.hasSubscribers) events.created.publish({ pool: this, name: this.name, attached: p.attached === true });
  }

  // A pop found the pool empty (counted natively): tell the subscribers.
  // The pops that serve waiters on a wake-up are not the user's: uncounted
  // (Atomics.sub of the native count's own 1: the sum stays exact whatever
  // other threads add meanwhile) and unpublished.
  #exhausted(): -1 {
    if (this.#serving) Atomics.sub(this.#counters, C_EXHAUSTED, 1n);
    else if (events.exhausted.hasSubscribers) events.exhausted.publish({ pool: this, name: this.name });
    return -1;
  }

  // A leak report: counted, published, then handed to the user's onLeak (or the warning).
  #leaked(r: LeakReport, onLeak: (r: LeakReport) => void): void {
    Atomics.add(this.#counters, C_LEAKS, 1n);
    const report: LeakReport = { ...r, pool: this.name };
    if (events.leak.hasSubscribers) events.leak.publish({ pool: this, name: this.name, report });
    onLeak(report);
  }

  // How a push from JS zeroes an object, or null when it need not: the core
  // zeroes what it pushes itself when it can reach the arena (shared memory),
  // so JS zeroes only what goes into its cache or what the core cannot reach.
  // zeroingPushMany's zeroing, for memory only JS can reach (see #jsZero).
  // The user's objects may carry their own fill or byteLength: the
  // intrinsics, taken at load, run no user code.
  #zeroer(): ((h: number) => void) | null {
    const js = this.#jsZero();
    if (js === null) return null;
    return jsZeroer(js);
  }

  // What JS zeroes, for memory the core cannot reach (fromBuffers objects, a
  // user's ArrayBuffer), or null. A user's ArrayBuffer may be resizable: the
  // view tracks its length, so that after it shrinks the objects still inside
  // it are zeroed (fill clamps to the end; a detached buffer has no bytes).
  #jsZero(): JsZero | null {
    const p = this.#parts;
    if (!p.zero || p.arena instanceof SharedArrayBuffer || p.process !== undefined || this.#nativeObjects) return null;
    this.#zeroTarget ??= p.objects
      ? { objects: p.objects, bytes: null, stride: p.stride, size: p.objectSize }
      : { objects: null, bytes: new Uint8Array(p.arena as ArrayBuffer), stride: p.stride, size: p.objectSize };
    return this.#zeroTarget;
  }

  /**
   * A pool over memory you provide: `floor(memory.byteLength / stride)`
   * objects. A SharedArrayBuffer makes the pool shareable; an ArrayBuffer
   * keeps it to this thread. `close()` releases every object, then the
   * whole memory once (`handle: -1, element: false`).
   */
  static fromBuffer(memory: ArrayBuffer | SharedArrayBuffer, options: Omit<PoolOptions, 'capacity'> & ViewOptions): ObjectPool {
    const { parts, init, view } = memoryParts(memory, options);
    return new ObjectPool(token, parts, init, view);
  }


  /**
   * A pool of objects you provide: one per entry, all of one length, none
   * overlapping another. Shareable when every object is a view of a
   * SharedArrayBuffer.
   */
  static fromBuffers(objects: readonly Uint8Array[], options: { slots?: number; checked?: boolean; zero?: boolean; name?: string } & ViewOptions = {}): ObjectPool {
    const { parts, view } = objectsParts(objects, options);
    return new ObjectPool(token, parts, undefined, view);
  }


  /**
   * Uses, in this thread, the pool another thread described. Everything is
   * validated before native code forms a pointer: a forged or truncated
   * descriptor throws ERR_OBJPOOL_BAD_DESCRIPTOR.
   */
  static attach(descriptor: PoolDescriptor | ProcessDescriptor, options: ViewOptions = {}): ObjectPool {
    if ((descriptor as { kind?: unknown } | null)?.kind === 'objpool/process') return ObjectPool.attachProcess(descriptor as ProcessDescriptor, options);
    const { parts, view, bad } = descriptorParts(descriptor, options);
    try {
      return new ObjectPool(token, parts, undefined, view);
    } catch (err) {
      if ((err as { code?: string }).code === codes.BAD_DESCRIPTOR) throw err;
      throw bad((err as Error).message);
    }
  }


  /**
   * Uses, in this thread, a process-shared pool that another process (or
   * thread) described with `processDescriptor`. The memory is opened through
   * the process the descriptor names, which must still have it; only a
   * process of the same user may (otherwise ERR_OBJPOOL_ACCESS). A forged,
   * truncated or foreign descriptor throws ERR_OBJPOOL_BAD_DESCRIPTOR.
   */
  static attachProcess(descriptor: ProcessDescriptor, options: ViewOptions = {}): ObjectPool {
    const { parts, view, bad } = processParts(descriptor, options);
    try {
      return new ObjectPool(token, parts, undefined, view);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === codes.BAD_DESCRIPTOR || code === codes.NO_MEMORY) throw err;
      throw bad((err as Error).message);
    }
  }

  /**
   * A process-shared pool's description (plain JSON) for
   * `ObjectPool.attachProcess()` in another process or thread; null for a
   * pool that is not process-shared. It names this process: hand it on from
   * a process that will keep the pool while the other attaches.
   */
  get processDescriptor(): ProcessDescriptor | null {
    const p = this.#parts;
    if (!p.process) return null;
    return Object.freeze({
      kind: 'objpool/process', version: 1, pid: p.process.pid, fd: p.process.fd, token: p.process.token, capacity: p.capacity,
      objectSize: p.objectSize, stride: p.stride, slots: p.slots, zero: p.zero, name: p.name,
    });
  }

  /** True once any thread has called close(). */
  get closed(): boolean {
    return (Atomics.load(this.#attention, native.attentionWord) & 1) !== 0;
  }

  /** Structured-cloneable description of this pool for `ObjectPool.attach()` in another thread. */
  get descriptor(): PoolDescriptor {
    const p = this.#parts;
    if (p.process) throw poolError(codes.NOT_SHAREABLE, 'A process-shared pool is shared through its processDescriptor, with any thread of any process of this user: pass pool.processDescriptor to ObjectPool.attachProcess() (or attach())');
    const shared = p.objects ? p.objects.every((o) => o.buffer instanceof SharedArrayBuffer) : p.arena instanceof SharedArrayBuffer;
    if (!shared) throw poolError(codes.NOT_SHAREABLE, 'This pool is built on memory that is not shared (an ArrayBuffer), so only this thread can use it; build it on a SharedArrayBuffer to share it');
    return Object.freeze({
      kind: 'objpool', version: 3, meta: p.meta as SharedArrayBuffer, arena: (p.arena as SharedArrayBuffer | null),
      objects: p.objects ? Object.freeze(p.objects.slice()) : null, capacity: p.capacity, objectSize: p.objectSize,
      stride: p.stride, slots: p.slots, checked: p.checked, zero: p.zero, user: p.mode !== Mode.Own, name: p.name,
    });
  }

  /** A zero-copy Buffer over the object's bytes; the same Buffer each time in a thread. */
  buffer(handle: number): Buffer {
    if (typeof handle === 'number') {
      const view = this.#views[handle];
      // A cached view of a detached arena (an empty Buffer) is not given
      // out: #makeView() below says why.
      if (view !== undefined && (this.#probe === null || this.#probe[0] !== undefined)) return view;
    }
    checkInteger('handle', handle, 0, this.capacity - 1);
    const made = this.#makeView(handle);
    Object.defineProperty(made, kHandle, { value: handle });
    return (this.#views[handle] = made);
  }

  // A new Buffer over the object's first `n` bytes (all of them by default).
  #makeView(h: number, n = this.#parts.objectSize): Buffer {
    const p = this.#parts;
    // A process-shared pool's arena is an ArrayBuffer that user code can
    // detach (transfer()); nothing native depends on it, but this view can
    // make no more Buffers over it.
    if (p.process !== undefined && arrayBufferByteLengthOf(p.arena) === 0) {
      throw poolError(codes.UNSUPPORTED, `This view's arena of the pool${this.#where} was detached (transfer()): it makes no more Buffers; attach the pool again (ObjectPool.attachProcess) for a view that does`);
    }
    // bufferFrom: Buffer.from as the module loaded it (a user's replacement is not called).
    return p.objects
      ? bufferFrom(bufferOf(p.objects[h]!), byteOffsetOf(p.objects[h]!), n)
      : bufferFrom(p.arena!, h * p.stride, n);
  }

  static {
    arenaOf = (pool) => (pool.#parts.objects === null ? pool.#parts.arena : null);
    // As #handOut(): when no Buffer can be made (a process-shared pool whose
    // arena this view's user detached), h goes back and the error is thrown,
    // so a failed acquire(n) takes nothing.
    sizedView = (pool, h, n, caller) => {
      try {
        return pool.#sized(h, n, caller);
      } catch (err) {
        pool.push(h);
        throw err;
      }
    };
  }

  // sizedView()'s Buffer.
  #sized(h: number, n: number, caller: Function): Buffer {
    const leaks = this.#leaks;
    if (leaks !== null && leaks.sampled()) {
      const buf = this.#makeView(h, n);
      leaks.track(h, buf, caller);
      return buf;
    }
    // The cached view, unless the arena can be detached: buffer() then
    // checks it first (it gives out no view of a detached arena).
    if (n === this.#parts.objectSize) return (this.#probe === null ? this.#views[h] : undefined) ?? this.buffer(h);
    // The last view of another length, kept per object: services ask for
    // the same few sizes again and again. One of a detached arena is empty,
    // so it never has the length asked for.
    const sized = (this.#sizedViews ??= []);
    const last = sized[h];
    if (last !== undefined && last.length === n) return last;
    const made = this.#makeView(h, n);
    new HandleStamp(made, h);
    return (sized[h] = made);
  }

  // The cached view if this thread has one, else a fresh one that is not
  // kept: walks over the whole pool (init, close) must not grow the cache.
  #view(h: number): Buffer {
    return this.#views[h] ?? this.#makeView(h);
  }

  /** pop() + buffer(): an object's Buffer, or null when the pool is empty. */
  acquire(): Buffer | null {
    const h = this.pop();
    if (h < 0) return null;
    return this.#handOut(h, this.acquire);
  }

  // The Buffer for object h, just taken by a pop: a tracked one of its own
  // when leak detection samples it (`caller` names the API call; null: never
  // tracked). When none can be made (a process-shared pool whose arena was
  // detached), h goes back to the pool and the error is thrown: a failed
  // acquire takes nothing.
  #handOut(h: number, caller: Function | null): Buffer {
    try {
      const leaks = this.#leaks;
      return caller !== null && leaks !== null && leaks.sampled() ? this.#tracked(h, caller) : this.buffer(h);
    } catch (err) {
      this.push(h);
      throw err;
    }
  }

  // A Buffer of its own for a sampled acquire, watched for collection.
  #tracked(h: number, caller: Function): Buffer {
    const buf = this.#makeView(h);
    this.#leaks!.track(h, buf, caller);
    return buf;
  }

  /**
   * Returns an object by a view of it: the Buffer from `buffer()`/`acquire()`,
   * or any Uint8Array that starts at the object's first byte and stays
   * inside it (a `subarray(0, n)` of it, say), in any thread.
   */
  release(obj: Uint8Array): void {
    this.push(this.handleOf(obj));
  }

  /**
   * One object as a lease, or null when the pool is empty: `using lease =
   * pool.lease()` returns it at the end of the scope; `release()` returns it
   * sooner, and a second release does nothing.
   */
  lease(): Lease | null {
    const h = this.pop();
    if (h < 0) return null;
    const buffer = this.#handOut(h, this.lease);
    let out = true;
    const release = () => {
      if (!out) return;
      out = false;
      this.push(h);
    };
    return { handle: h, buffer, release, [Symbol.dispose]: release };
  }

  /**
   * Takes an object, waiting while the pool is empty: resolves with its
   * handle as soon as any thread (JS or native) pushes one back, in the
   * order of the calls in this thread. Rejects with `signal.reason` on
   * abort, ERR_OBJPOOL_TIMEOUT after `timeout` ms, ERR_OBJPOOL_CLOSED when
   * the pool is closed. An object is only taken for a call that is still
   * waiting, so none is lost to one that gave up. Like pending I/O, a
   * pending wait keeps the thread alive.
   */
  popAsync(options: WaitOptions = {}): Promise<number> {
    const o = checkObject('options', options) as WaitOptions;
    const signal = o.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an instance of AbortSignal', signal);
    const timeout = o.timeout === undefined ? undefined : checkNumber('options.timeout', o.timeout, 0, 2 ** 31 - 1);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#waiters.length === 0) {
      try {
        const h = this.pop();
        if (h >= 0) return Promise.resolve(h);
        if (this.#parts.process) {
          const spun = this.#spin.run(this.#look);
          if (spun >= 0) return Promise.resolve(spun);
        }
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const w: Waiter = { resolve: () => {}, reject: () => {}, registered: false, since: 0n, timer: undefined, signal, onAbort: undefined };
    const promise = new Promise<number>((resolve, reject) => { w.resolve = resolve; w.reject = reject; });
    this.#waiters.push(w);
    // Register with the pool; an object that came back meanwhile goes to the
    // first in line, and registering is tried again.
    for (;;) {
      let h: number;
      try {
        h = this.#ops.waitBegin(this.#onWake ??= () => this.#serveWaiters());
      } catch (err) {
        this.#giveUp(w, err);
        return promise;
      }
      if (h < 0) {
        w.registered = true;
        w.since = process.hrtime.bigint();
        Atomics.add(this.#counters, C_WAITS, 1n);
        break;
      }
      const first = this.#waiters[0]!;
      this.#settle(first);
      first.resolve(h);
      if (first === w) return promise;
    }
    if (timeout !== undefined) {
      w.timer = setTimeout(() => {
        Atomics.add(this.#counters, C_WAIT_TIMEOUTS, 1n);
        this.#giveUp(w, poolError(codes.TIMEOUT, `No object came back to the pool${this.#where} within ${timeout} ms`));
        if (events.waitTimeout.hasSubscribers) events.waitTimeout.publish({ pool: this, name: this.name, timeout });
      }, timeout);
    }
    if (signal) {
      w.onAbort = () => {
        Atomics.add(this.#counters, C_WAIT_ABORTS, 1n);
        this.#giveUp(w, signal.reason);
      };
      signal.addEventListener('abort', w.onAbort, { once: true });
    }
    return promise;
  }

  /**
   * A new handle channel of this pool: a bounded lock-free queue of handles
   * in shared memory, for handing objects to other threads
   * (`HandleChannel.attach(channel.descriptor, pool)` there). Throws
   * ERR_OBJPOOL_CLOSED on a closed pool.
   */
  channel(options?: ChannelOptions): HandleChannel {
    return HandleChannel.create(this.#channelHostOf(), options);
  }

  // What this view's channels need (see lib/channel.ts).
  #channelHostOf(): ChannelHost {
    if (this.#channelHost) return this.#channelHost;
    const p = this.#parts;
    const leaks = this.#leaks;
    return this.#channelHost = {
      closed: () => this.closed, ops: this.#ops, mem: this.#mem, state: this.#state,
      capacity: p.capacity, meta: p.meta, where: this.#where,
      untrack: leaks === null ? null : (h) => { if (leaks.size !== 0) leaks.untrack(h); },
      processToken: p.process ? p.process.token : null,
    };
  }

  /** popAsync() + buffer(): resolves with an object's Buffer. */
  async acquireAsync(options?: WaitOptions): Promise<Buffer> {
    return this.#handOut(await this.popAsync(options), null);
  }

  // Settles a waiter and takes it out of the queue and the pool's count.
  #settle(w: Waiter): void {
    const i = this.#waiters.indexOf(w);
    if (i >= 0) this.#waiters.splice(i, 1);
    if (w.timer !== undefined) clearTimeout(w.timer);
    if (w.onAbort) w.signal!.removeEventListener('abort', w.onAbort);
    if (w.registered) this.#ops.waitEnd();
    w.registered = false;
    if (w.since !== 0n) Atomics.add(this.#counters, C_WAIT_NS, process.hrtime.bigint() - w.since);
    w.since = 0n;
  }

  #giveUp(w: Waiter, reason: unknown): void {
    this.#settle(w);
    w.reject(reason);
  }

  // A push or a close may have made progress possible: serve the waiters in
  // order while objects come.
  #serveWaiters(): void {
    while (this.#waiters.length > 0) {
      let h: number;
      try {
        this.#serving = true;
        h = this.pop();
      } catch (err) {
        for (const w of [...this.#waiters]) this.#giveUp(w, err);
        return;
      } finally {
        this.#serving = false;
      }
      if (h < 0) return;
      const w = this.#waiters[0]!;
      this.#settle(w);
      w.resolve(h);
    }
  }

  /** The handle of the object a view starts at; throws ERR_OBJPOOL_FOREIGN_BUFFER for any other memory. */
  handleOf(obj: Uint8Array): number {
    // Fast path: a Buffer this instance handed out.
    const cached = (obj as { [kHandle]?: number } | null | undefined)?.[kHandle];
    if (cached !== undefined && this.#views[cached] === obj) return cached;
    // A shorter view PoolSet took from this instance.
    if (this.#sizedViews !== null) {
      const stamped = HandleStamp.of(obj);
      if (stamped >= 0 && this.#sizedViews[stamped] === obj) return stamped;
    }
    if (!isUint8Array(obj)) throw invalidType('obj', 'an instance of Buffer or Uint8Array', obj);
    const p = this.#parts;
    let h = -1;
    // The intrinsic getters: a subclass's own could name another object.
    if (byteLengthOf(obj) <= p.objectSize) {
      if (p.objects) {
        h = this.#byAddress!.get(native.address(obj)) ?? -1;
      } else {
        // By offset within this view's arena; by address otherwise, and when
        // a process-shared pool's arena was detached (transfer()), where every
        // view reads offset 0 and a detached view has no address at all.
        const own = bufferOf(obj) === p.arena && !(p.process !== undefined && arrayBufferByteLengthOf(p.arena) === 0);
        const rel = own ? byteOffsetOf(obj) : native.address(obj) - this.#arenaAddress;
        if (rel >= 0 && rel % p.stride === 0 && rel / p.stride < p.capacity) h = rel / p.stride;
      }
    }
    if (h < 0) throw poolError(codes.FOREIGN_BUFFER, `The buffer is not an object of this pool${this.#where} (or does not start at one, or is longer than objectSize)`);
    return h;
  }

  /** Counts, taken without slowing pop/push; approximate while other threads work. */
  stats(): PoolStats {
    const s = this.#ops.stats();
    const available = s.perSlot.reduce((a, b) => a + b, 0) + s.cached;
    // Atomics loads: the counters are written by every thread (relaxed
    // atomics natively, Atomics.add here); no ordering is needed for counts.
    const c = (i: number) => Number(Atomics.load(this.#counters, i));
    return {
      capacity: this.capacity, available, inUse: Math.max(0, this.capacity - available - s.released), cached: s.cached,
      waiting: s.waiting, perSlot: s.perSlot, closed: this.closed,
      exhausted: c(C_EXHAUSTED), waits: c(C_WAITS), waitTimeouts: c(C_WAIT_TIMEOUTS), waitAborts: c(C_WAIT_ABORTS),
      waitSeconds: c(C_WAIT_NS) / 1e9, leaks: c(C_LEAKS), released: s.released,
      recovered: c(C_RECOVERED), recoveredMidOperation: c(C_RECOVERED_MID),
      recoveredMidChannelCall: s.recoveredMidChannelCall, repairedChannelCells: s.repairedChannelCells,
    };
  }

  /** @internal See metaOf. */
  get [metaOf](): SharedArrayBuffer | string {
    // A process-shared pool's memory is a new ArrayBuffer in each view: its
    // token names it instead.
    return this.#parts.process ? this.#parts.process.token : this.#parts.meta as SharedArrayBuffer;
  }

  /**
   * Closes the pool, in every thread: pops throw ERR_OBJPOOL_CLOSED from now
   * on, and waiting calls reject with it. Every object in the pool (every
   * thread's cache included) is released; objects still out are released
   * when they are pushed back, from whichever thread. `release` always runs
   * on this thread. The promise resolves once every object has been released
   * (rejecting with the first error `release` threw, if any). If another
   * thread closed the pool first, that thread releases and this promise
   * resolves at once. Releases run on this thread for as long as it lives; a
   * pending close does not by itself keep the thread alive (objects out are
   * normally held by something that does, and a push on this thread keeps it
   * alive until that object is released). A process-shared pool's pending
   * close also keeps this process alive while another process holds
   * objects (a dead one's included, until they are taken back): what other
   * processes hold keeps nothing here alive, and their pushes, or the
   * watcher taking back a dead process's objects, reach this process only
   * through the close's poll.
   */
  close(release?: ReleaseCallback): Promise<void> {
    if (release !== undefined && typeof release !== 'function') throw invalidType('release', 'of type function', release);
    if (this.#parts.process && !this.#parts.process.creator) {
      throw poolError(codes.NOT_CREATOR, `A process-shared pool${this.#where} is closed by the process that made it, and this process (pid ${process.pid}) did not; it lets go of the pool when its views are collected`);
    }
    if (this.#closing) return this.#closing;
    let resolve!: () => void, reject!: (e: unknown) => void;
    // Set before anything runs: a close() from inside `release` gets this promise.
    this.#closing = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
    const won = this.#ops.close();
    if (won && events.closed.hasSubscribers) events.closed.publish({ pool: this, name: this.name });
    this.#serveWaiters();
    this.#notifyClosed();
    if (!won) {
      resolve();
      return this.#closing;
    }
    const p = this.#parts;
    const user = p.mode !== Mode.Own;
    const out = new Uint32Array(p.capacity);
    let released = 0;
    let failure: { error: unknown } | null = null;
    let settled = false;
    // Memory native code cannot reach (see #jsZero) is zeroed here: what a
    // push gave back is zero already, but what sat in a channel at the close
    // was taken back natively, unzeroed. Shared memory was zeroed natively.
    const zero = this.#zeroer();
    const call = (h: number, info: ReleaseInfo) => {
      try {
        if (zero !== null && h >= 0) zero(h);
        const obj = h < 0 ? Buffer.from(p.arena!) : this.#view(h);
        if (release) release(obj, info);
      } catch (error) {
        failure ??= { error };
      }
    };
    // Pushes from C++ threads that use the core directly cannot reach this
    // thread: a slow poll finds them. It does not keep the thread alive,
    // except while another process holds objects of a process-shared pool
    // (see above): then it is the one thing that does. Without it, a creator
    // whose last child died holding objects exited before the watcher took
    // them back, its close() never settled (seen under qemu-user, where
    // pidfds never turn readable and the watcher's 100 ms tick came after
    // the child was reaped). What this process holds (its threads share its
    // owner tag) keeps it alive as for a thread pool: not by itself.
    let ticks = 0;
    const poll = setInterval(() => {
      if (++ticks % 10 === 0) holdAlive();
      drain();
    }, 10);
    poll.unref();
    const mine = p.process?.owner ?? 0;
    const state = this.#state;
    // Every 100 ms: is an object's state word tagged with another process's
    // owner (Taken or Cached there, or a dead process's not yet taken back)?
    // Plain loads of shared memory: other processes change these words with
    // atomics; a stale word only moves this decision to the next look.
    const holdAlive = () => {
      if (p.process === undefined || state === null) return;
      let foreign = false;
      for (let h = 0; h < p.capacity && !foreign; h++) {
        const owner = state[h]! >>> 8;
        foreign = owner !== 0 && owner !== mine;
      }
      if (foreign) poll.ref();
      else poll.unref();
    };
    const drain = () => {
      if (released === p.capacity) return;
      const n = this.#ops.drain(out);
      for (let i = 0; i < n; i++) {
        released++;
        call(out[i]!, { handle: out[i]!, user, element: true });
      }
      if (released === p.capacity) {
        clearInterval(poll);
        this.#ops.unwatch();
        if (p.mode === Mode.Memory) call(-1, { handle: -1, user: true, element: false });
        if (settled) return;
        settled = true;
        if (failure) reject(failure.error);
        else resolve();
      } else if (!settled && !p.checked && this.#ops.corrupt()) {
        // Unchecked misuse linked an object twice: objects may be lost for
        // good. Settle now; objects that still come back are released.
        settled = true;
        reject(poolError(codes.DOUBLE_PUSH, `The pool's free lists were corrupted by a double push (checked: false); ${released} of ${p.capacity} objects were released, the rest may never be found`));
      }
    };
    this.#ops.watch(drain);
    drain();
    if (!settled) holdAlive();
    return this.#closing;
  }

  /** @internal See onCloseHook. */
  [onCloseHook](fn: (err: Error) => void): () => void {
    if (!this.#closeListeners) {
      this.#closeListeners = new Set();
      this.#closeNotice = () => this.#notifyClosed();
      this.#ops.onClose(this.#closeNotice);
    }
    const listeners = this.#closeListeners;
    listeners.add(fn);
    // Closed already (or while registering): tell it on the next tick.
    if (this.closed) process.nextTick(() => this.#notifyClosed());
    return () => { listeners.delete(fn); };
  }

  // Calls every close listener once, if the pool is closed.
  #notifyClosed(): void {
    const listeners = this.#closeListeners;
    if (!listeners || listeners.size === 0 || !this.closed) return;
    const fns = [...listeners];
    listeners.clear();
    for (const fn of fns) fn(closedError(this.#where));
  }

  /** close(), for `await using pool = new ObjectPool(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** @internal A pending popAsync(). */
interface Waiter {
  resolve: (h: number) => void;
  reject: (e: unknown) => void;
  /** Counted in the pool's waiters (waitBegin() returned -1 for it). */
  registered: boolean;
  /** When it started to wait (hrtime), or 0n. */
  since: bigint;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

