// Several object sizes behind one interface: a PoolSet is a set of real
// ObjectPools, one per size class, and hands out a Buffer of exactly the
// size asked for from the smallest class that fits (as .NET's ArrayPool and
// Netty's size classes do). Each class keeps everything a pool has: caches,
// workers, channels, waiting, leases, leaks, zeroing, metrics and events
// (named by class).
//
// Handles of a set name their class: (class << 24) | handle in the class's
// pool, with at most 64 classes, so every handle is a non-negative int32 (a
// Smi) below 2**30, and -1 still means "none".
import { ObjectPool, arenaOf, sizedView } from './pool';
import { HandleChannel, waitFor, type ChannelDescriptor, type ChannelOptions, type ProcessChannelDescriptor } from './channel';
import { checkInteger, checkNumber, codes, invalidType, invalidValue, outOfRange, poolError } from './errors';
import { checkObject } from './options';
import { native } from './native';
import { byteLengthOf, callOf, typedArrayProto } from './hotpath';
import { bufferOf, byteOffsetOf } from './parts';
import type { Lease, PoolDescriptor, PoolOptions, PoolStats, ProcessDescriptor, ReleaseCallback, ViewOptions, WaitOptions } from './types';

/** One size class: `capacity` objects of `objectSize` bytes. */
export interface SizeClass {
  objectSize: number;
  capacity: number;
}

/** What `acquire(n)` does when the smallest class that fits `n` is empty. */
export type Fallback = 'none' | 'larger';

/**
 * Options of `new PoolSet()`: the classes, given as a list (`classes`) or
 * generated as powers of two (`min`, `max`, `bytes`), and the options every
 * class's pool shares (`align`, `slots`, `checked`, `zero`, `init`, `name`),
 * with this thread's view options (`cache`, `leaks`) for each class.
 */
export interface PoolSetOptions extends Omit<PoolOptions, 'capacity' | 'objectSize' | 'init'>, ViewOptions {
  /** The classes, 1 to 64, each size different (any order: they are sorted by size). */
  classes?: readonly SizeClass[];
  /** Generated classes: the smallest size, a power of two. */
  min?: number;
  /** Generated classes: the largest size, a power of two at least `min`. */
  max?: number;
  /** Generated classes: the arena bytes of each class (each gets max(1, floor(bytes / size)) objects). */
  bytes?: number;
  /** 'larger' lets acquire(n) and pop(n) take the next class up when the one that fits is empty (default 'none': null or -1). */
  fallback?: Fallback;
  /** Called once for every object of every class (its handle names the class). */
  init?: (obj: Buffer, handle: number) => void;
}

/** `stats()` of a set: the sums over its classes, and each class's own. */
export interface PoolSetStats extends PoolStats {
  classes: (PoolStats & { objectSize: number })[];
}

/** Structured-cloneable description of a set, for `PoolSet.attach()` in another thread. */
export interface PoolSetDescriptor {
  readonly kind: 'objpool-set';
  readonly version: 1;
  readonly classes: readonly PoolDescriptor[];
  readonly fallback: Fallback;
}

/** Structured-cloneable description of a set's channel, for `PoolSetChannel.attach()`. */
export interface PoolSetChannelDescriptor {
  readonly kind: 'objpool-set-channel';
  readonly version: 1;
  readonly channels: readonly ChannelDescriptor[];
}

/**
 * Plain JSON description of a process-shared set (each class's process
 * descriptor), for `PoolSet.attachProcess()` in any thread of any process
 * of the same user.
 */
export interface ProcessPoolSetDescriptor {
  readonly kind: 'objpool/process-set';
  readonly version: 1;
  readonly classes: readonly ProcessDescriptor[];
  readonly fallback: Fallback;
}

/** Plain JSON description of a process-shared set's channel, for `PoolSetChannel.attachProcess()`. */
export interface ProcessPoolSetChannelDescriptor {
  readonly kind: 'objpool/process-set-channel';
  readonly version: 1;
  readonly channels: readonly ProcessChannelDescriptor[];
}

const SHIFT = 24;
const INDEX = (1 << SHIFT) - 1;
const MAX_CLASSES = 64;
const token = Symbol('objpool.poolset');
// Bound once: pool.ts sets it as its class is defined, before this runs.
const sized = sizedView;

// Which set, and which set handle, a Buffer this set handed out belongs to:
// private fields on the Buffer itself (the return-override idiom, as
// lib/pool.ts's HandleStamp), so that release() finds its class and object
// without the intrinsic getters (byteLength, buffer, byteOffset: each a
// builtin call). Unforgeable, read by a brand check that runs no user code
// (a Proxy has no fields), and true for good: a view of an object stays a
// view of that object. Invisible to inspect, assert and Object.assign. The
// set is named by a number, not held: a Buffer kept alive keeps no set (nor
// its pools) alive.
let nextSetId = 1;
class Stamp {
  constructor(o: object) {
    return o as Stamp;
  }
}
class SetStamp extends Stamp {
  readonly #set: number;
  readonly #handle: number;
  private constructor(o: object, set: number, handle: number) {
    super(o);
    this.#set = set;
    this.#handle = handle;
  }
  // Stamps `o` once (a Buffer handed out again keeps its stamp).
  static stamp(o: Buffer, set: number, handle: number): Buffer {
    if (!(#set in o)) {
      try {
        new SetStamp(o, set, handle);
      } catch {
        // An engine that refuses private fields on an object its user made
        // non-extensible: release() takes the slow path for that one.
      }
    }
    return o;
  }
  // The set handle the set numbered `set` stamped `o` with, else -1.
  static of(o: unknown, set: number): number {
    return typeof o === 'object' && o !== null && #set in o && (o as SetStamp).#set === set ? (o as SetStamp).#handle : -1;
  }
}

// The intrinsic getters: a subclass's own getters, or a Proxy's traps, are
// not asked (release() checks that it has a real Uint8Array first).
const tagOf = callOf.bind(Object.getOwnPropertyDescriptor(typedArrayProto, Symbol.toStringTag)!.get!) as (o: unknown) => string | undefined;

// As a pool's: a non-number is a type error, any other bad handle a range error.
function badHandle(h: unknown): Error {
  if (typeof h !== 'number') return invalidType('handle', 'of type number', h);
  return outOfRange('handle', 'a handle of this pool set', h);
}

// A class pool's error for a set handle `h`: a range error names the set's
// handle (the class's own names its class-local one).
function asSetError(err: unknown, h: number): unknown {
  return (err as { code?: string } | null)?.code === codes.OUT_OF_RANGE ? badHandle(h) : err;
}

// Reads `classes`, or generates them from `min`, `max` and `bytes`: sorted
// by size, each size once.
function readClasses(o: Record<string, unknown>): SizeClass[] {
  const generated = o.min !== undefined || o.max !== undefined || o.bytes !== undefined;
  if (o.classes !== undefined && generated) throw invalidValue('options', 'must give either classes or min, max and bytes, not both', o);
  let list: SizeClass[];
  if (generated) {
    const min = checkInteger('options.min', o.min, 1, 2 ** 31);
    const max = checkInteger('options.max', o.max, min, 2 ** 31);
    const bytes = checkInteger('options.bytes', o.bytes, 1, Number.MAX_SAFE_INTEGER);
    if ((min & (min - 1)) !== 0) throw invalidValue('options.min', 'must be a power of two', min);
    if ((max & (max - 1)) !== 0) throw invalidValue('options.max', 'must be a power of two', max);
    list = [];
    for (let size = min; size <= max; size *= 2) {
      list.push({ objectSize: size, capacity: Math.min(native.maxCapacity, Math.max(1, Math.floor(bytes / size))) });
    }
  } else {
    const given = o.classes;
    if (!Array.isArray(given)) throw invalidType('options.classes', 'an instance of Array', given);
    list = given.map((c: unknown, i) => {
      const k = checkObject(`options.classes[${i}]`, c);
      return {
        objectSize: checkInteger(`options.classes[${i}].objectSize`, k.objectSize, 1, 0xffffffff),
        capacity: checkInteger(`options.classes[${i}].capacity`, k.capacity, 1, native.maxCapacity),
      };
    });
    list.sort((a, b) => a.objectSize - b.objectSize);
  }
  if (list.length < 1 || list.length > MAX_CLASSES) throw outOfRange('options.classes.length', `from 1 to ${MAX_CLASSES}`, list.length);
  for (let i = 1; i < list.length; i++) {
    if (list[i]!.objectSize === list[i - 1]!.objectSize) throw invalidValue('options.classes', `has two classes of objectSize ${list[i]!.objectSize}`, o.classes);
  }
  return list;
}

function readFallback(v: unknown): Fallback {
  if (v === undefined) return 'none';
  if (v !== 'none' && v !== 'larger') throw invalidValue('options.fallback', "must be 'none' or 'larger'", v);
  return v;
}

/**
 * Objects of several sizes: one ObjectPool per size class, shared by every
 * thread that attaches the set. `acquire(n)` gives a Buffer of exactly `n`
 * bytes over an object of the smallest class that fits; `release(buf)`
 * finds the class from the buffer.
 */
export class PoolSet {
  /** The class sizes, ascending. */
  readonly sizes: readonly number[];
  /** Each class's pool, in the order of `sizes`. */
  readonly pools: readonly ObjectPool[];
  /** The largest `n` acquire(n) serves. */
  readonly maxSize: number;
  readonly fallback: Fallback;

  readonly #pools: ObjectPool[];
  readonly #sizes: number[];
  readonly #pops: (() => number)[];
  readonly #pushes: ((h: number) => void)[];
  readonly #arenas: (ArrayBufferLike | null)[];
  // Each class's arena as [first address, end address), for a buffer whose
  // memory came by another message (another SharedArrayBuffer object).
  readonly #spans: [number, number][];
  // #lo[k]: the first class larger than 2**(k-1): where the search for an n
  // in (2**(k-1), 2**k] starts.
  readonly #lo = new Uint8Array(34);
  readonly #larger: boolean;
  // Whether the classes are process-shared pools (all or none: see attachSet).
  readonly #process: boolean;
  // Names this set in its Buffers' stamps (SetStamp).
  readonly #id = nextSetId++;

  /** A set with its own pools, one per class (see PoolSetOptions). */
  constructor(options: PoolSetOptions);
  /** @internal */
  constructor(options: PoolSetOptions | typeof token, pools?: ObjectPool[], fallback?: Fallback);
  constructor(options: PoolSetOptions | typeof token, pools?: ObjectPool[], fallback?: Fallback) {
    if (options !== token) {
      const o = checkObject('options', options);
      const classes = readClasses(o);
      fallback = readFallback(o.fallback);
      if (o.name !== undefined && (typeof o.name !== 'string' || o.name.length < 1 || o.name.length > 240)) {
        throw invalidValue('options.name', 'must be a string of 1 to 240 characters', o.name);
      }
      const base = (o.name as string | undefined) ?? 'poolset';
      const init = o.init;
      if (init !== undefined && typeof init !== 'function') throw invalidType('options.init', 'of type function', init);
      const processShared = o.processShared; // read once
      if (processShared !== undefined && typeof processShared !== 'boolean') throw invalidType('options.processShared', 'of type boolean', processShared);
      const shared = { align: o.align, slots: o.slots, checked: o.checked, zero: o.zero, cache: o.cache, leaks: o.leaks, processShared } as Record<string, unknown>;
      pools = classes.map((k, c) => new ObjectPool({
        ...shared, capacity: k.capacity, objectSize: k.objectSize, name: `${base}/${k.objectSize}`,
        init: init === undefined ? undefined : (obj: Buffer, h: number) => (init as (obj: Buffer, h: number) => void)(obj, (c << SHIFT) | h),
      } as PoolOptions & ViewOptions));
    }
    const ps = pools!;
    this.#pools = ps;
    this.pools = Object.freeze(ps.slice());
    this.#sizes = ps.map((p) => p.objectSize);
    this.sizes = Object.freeze(this.#sizes.slice());
    this.maxSize = this.#sizes[ps.length - 1]!;
    this.fallback = fallback!;
    this.#larger = fallback === 'larger';
    this.#process = ps[0]!.processDescriptor !== null;
    this.#pops = ps.map((p) => p.pop);
    this.#pushes = ps.map((p) => p.push);
    this.#arenas = ps.map((p) => arenaOf(p));
    this.#spans = ps.map((p) => {
      const at = native.address(new Uint8Array(arenaOf(p)!, 0, 1));
      return [at, at + p.capacity * p.stride];
    });
    for (let k = 0, c = 0; k < this.#lo.length; k++) {
      const above = k === 0 ? 0 : 2 ** (k - 1);
      while (c < ps.length - 1 && this.#sizes[c]! <= above) c++;
      this.#lo[k] = c;
    }
  }

  // The smallest class that fits n bytes; a coded error for any other n.
  #classOf(n: number): number {
    if (typeof n !== 'number') throw invalidType('n', 'of type number', n);
    if (!(n >= 1 && n <= this.maxSize) || n % 1 !== 0) throw outOfRange('n', `an integer from 1 to ${this.maxSize} (the largest class)`, n);
    const sizes = this.#sizes;
    let c = this.#lo[32 - Math.clz32(n - 1)]!;
    while (sizes[c]! < n) c++;
    return c;
  }

  // Pops from the classes above `c` (fallback: 'larger'): [class, handle] in
  // one number, or -1.
  #popAbove(c: number): number {
    const pops = this.#pops;
    for (let k = c + 1; k < pops.length; k++) {
      const h = pops[k]!();
      if (h >= 0) return (k << SHIFT) | h;
    }
    return -1;
  }

  /** The pool of the smallest class that fits `n` bytes (for the networking helpers, batches, channels of one class). */
  poolFor(n: number): ObjectPool {
    return this.#pools[this.#classOf(n)]!;
  }

  /** Takes an object of the smallest class that fits `n` bytes: its handle (naming its class), or -1 when that class is empty. */
  pop(n: number): number {
    const c = this.#classOf(n);
    const h = this.#pops[c]!();
    if (h >= 0) return (c << SHIFT) | h;
    return this.#larger ? this.#popAbove(c) : -1;
  }

  /** Returns an object by its handle (checked as the class's pool checks it). */
  push(handle: number): void {
    if (typeof handle !== 'number' || (handle >>> 0) !== handle) throw badHandle(handle);
    const push = this.#pushes[handle >>> SHIFT];
    if (push === undefined) throw badHandle(handle);
    try {
      push(handle & INDEX);
    } catch (err) {
      throw asSetError(err, handle);
    }
  }

  /** The whole object of a handle (its class's objectSize bytes); the same Buffer each time in a thread. */
  buffer(handle: number): Buffer {
    if (typeof handle !== 'number' || (handle >>> 0) !== handle) throw badHandle(handle);
    const pool = this.#pools[handle >>> SHIFT];
    if (pool === undefined) throw badHandle(handle);
    try {
      return pool.buffer(handle & INDEX);
    } catch (err) {
      throw asSetError(err, handle);
    }
  }

  /** The class of a handle (an index into `sizes`) and its handle in that class's pool. */
  classOf(handle: number): { class: number; handle: number } {
    if (typeof handle !== 'number' || (handle >>> 0) !== handle) throw badHandle(handle);
    const pool = this.#pools[handle >>> SHIFT];
    if (pool === undefined || (handle & INDEX) >= pool.capacity) throw badHandle(handle);
    return { class: handle >>> SHIFT, handle: handle & INDEX };
  }

  /**
   * A Buffer of exactly `n` bytes over an object of the smallest class that
   * fits, or null when that class is empty (with `fallback: 'larger'`, the
   * next class up that is not). Throws ERR_OUT_OF_RANGE for `n` above the
   * largest class.
   */
  acquire(n: number): Buffer | null {
    let c = this.#classOf(n);
    let h = this.#pops[c]!();
    if (h < 0) {
      if (!this.#larger || (h = this.#popAbove(c)) < 0) return null;
      c = h >>> SHIFT;
      h &= INDEX;
    }
    return this.#buffer(c, h, n, this.acquire);
  }

  // The Buffer of n bytes over object h of class c, stamped (see SetStamp).
  #buffer(c: number, h: number, n: number, caller: Function): Buffer {
    return SetStamp.stamp(sized(this.#pools[c]!, h, n, caller), this.#id, (c << SHIFT) | h);
  }

  /**
   * Returns an object by a view of it (what acquire() gave, or any view that
   * starts at the object's first byte and stays inside it), in any thread.
   * ERR_OBJPOOL_FOREIGN_BUFFER for memory of no class; ERR_OBJPOOL_DOUBLE_PUSH
   * for one already back (checked pools).
   */
  release(buf: Uint8Array): void {
    // Fast path: a Buffer this set's acquire() handed out names its class
    // and object itself (a double release is the class pool's push's to catch).
    const sh = SetStamp.of(buf, this.#id);
    if (sh >= 0) return this.#pushes[sh >>> SHIFT]!(sh & INDEX);
    // The brand, by the intrinsic getter: a Proxy, a DataView or an object
    // that only inherits from Uint8Array.prototype has none.
    if (tagOf(buf) !== 'Uint8Array') throw invalidType('buf', 'an instance of Buffer or Uint8Array', buf);
    const len = byteLengthOf(buf);
    const memory = bufferOf(buf);
    const arenas = this.#arenas;
    // A buffer from acquire(n) is n bytes long, so without fallback its
    // class is the one that fits n: one comparison. Else look at them all,
    // and then by address: memory that reached this thread by another
    // message is another SharedArrayBuffer object over the same bytes.
    let c = len >= 1 && len <= this.maxSize ? this.#fit(len) : 0;
    if (arenas[c] !== memory) {
      c = arenas.indexOf(memory);
      if (c < 0 && len > 0) {
        const at = native.address(buf);
        c = this.#spans.findIndex(([lo, hi]) => at >= lo && at < hi);
      }
      if (c < 0) throw poolError(codes.FOREIGN_BUFFER, 'The buffer is not an object of this pool set (or does not start at one, or is longer than its objectSize)');
    }
    this.#pools[c]!.release(buf);
  }

  // #classOf() for a length known to be an integer in range.
  #fit(n: number): number {
    const sizes = this.#sizes;
    let c = this.#lo[32 - Math.clz32(n - 1)]!;
    while (sizes[c]! < n) c++;
    return c;
  }

  /** One object of exactly `n` bytes as a lease (see ObjectPool.lease()), or null when its class is empty. */
  lease(n: number): Lease | null {
    const h = this.pop(n);
    if (h < 0) return null;
    const buffer = sized(this.#pools[h >>> SHIFT]!, h & INDEX, n, this.lease);
    let out = true;
    const release = () => {
      if (!out) return;
      out = false;
      this.push(h);
    };
    return { handle: h, buffer, release, [Symbol.dispose]: release };
  }

  /**
   * A Buffer of exactly `n` bytes, waiting while the class that fits is
   * empty (see ObjectPool.acquireAsync()). With `fallback: 'larger'`, a
   * larger class is taken at once if the one that fits is empty; the wait is
   * for the one that fits.
   */
  async acquireAsync(n: number, options?: WaitOptions): Promise<Buffer> {
    const c = this.#classOf(n);
    const pool = this.#pools[c]!;
    if (this.#larger) {
      // The options checked (and read once) as popAsync checks them, before
      // anything is taken; a signal aborted before the call takes nothing.
      const o = checkObject('options', options === undefined ? {} : options) as WaitOptions;
      const signal = o.signal, timeout = o.timeout;
      if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an instance of AbortSignal', signal);
      if (timeout !== undefined) checkNumber('options.timeout', timeout, 0, 2 ** 31 - 1);
      options = { signal, timeout };
      if (signal?.aborted !== true) {
        const h = this.#pops[c]!();
        if (h >= 0) return this.#buffer(c, h, n, this.acquireAsync);
        const above = this.#popAbove(c);
        if (above >= 0) return this.#buffer(above >>> SHIFT, above & INDEX, n, this.acquireAsync);
      }
    }
    return this.#buffer(c, await pool.popAsync(options), n, this.acquireAsync);
  }

  /** Handles of every class, in one channel (see PoolSetChannel). */
  channel(options?: ChannelOptions): PoolSetChannel {
    return new PoolSetChannel(token, this.#pools.map((p) => p.channel(options)));
  }

  /** True once any thread has closed the set. */
  get closed(): boolean {
    return this.#pools.every((p) => p.closed);
  }

  /** Whether the set's classes live in OS shared memory (`processShared: true`). */
  get processShared(): boolean {
    return this.#process;
  }

  /**
   * Structured-cloneable description for `PoolSet.attach()` in another
   * thread. A process-shared set has `processDescriptor` instead (this
   * throws ERR_OBJPOOL_NOT_SHAREABLE), as a process-shared pool has.
   */
  get descriptor(): PoolSetDescriptor {
    if (this.processShared) {
      throw poolError(codes.NOT_SHAREABLE, 'A process-shared pool set is shared through its processDescriptor, with any thread of any process of this user: pass set.processDescriptor to PoolSet.attachProcess() (or attach())');
    }
    return Object.freeze({ kind: 'objpool-set', version: 1, classes: Object.freeze(this.#pools.map((p) => p.descriptor)), fallback: this.fallback });
  }

  /** Plain JSON description for `PoolSet.attachProcess()` in any process of this user; null unless the set is process-shared. */
  get processDescriptor(): ProcessPoolSetDescriptor | null {
    if (!this.processShared) return null;
    return Object.freeze({ kind: 'objpool/process-set', version: 1, classes: Object.freeze(this.#pools.map((p) => p.processDescriptor!)), fallback: this.fallback });
  }

  /**
   * Uses, in this thread of any process of the same user, the process-shared
   * set a process described (each class attached as
   * ObjectPool.attachProcess() does, with these view options). A forged or
   * truncated descriptor, or one whose classes are not process-shared
   * pools growing in size, throws ERR_OBJPOOL_BAD_DESCRIPTOR.
   */
  static attachProcess(descriptor: ProcessPoolSetDescriptor, options: ViewOptions = {}): PoolSet {
    return attachSet(descriptor, 'objpool/process-set', 'process pool set', (d) => ObjectPool.attachProcess(d as ProcessDescriptor, options), () => null);
  }


  /**
   * Uses, in this thread, the set another thread described (each class
   * attached as ObjectPool.attach() does, with these view options). A forged
   * or truncated descriptor throws ERR_OBJPOOL_BAD_DESCRIPTOR.
   */
  static attach(descriptor: PoolSetDescriptor | ProcessPoolSetDescriptor, options: ViewOptions = {}): PoolSet {
    if ((descriptor as { kind?: unknown } | null)?.kind === 'objpool/process-set') return PoolSet.attachProcess(descriptor as ProcessPoolSetDescriptor, options);
    return attachSet(descriptor, 'objpool-set', 'pool set', (d) => ObjectPool.attach(d as PoolDescriptor, options), (p) => {
      if (p.processDescriptor !== null) return 'a class is a process-shared pool: a process-shared set is attached by its processDescriptor';
      const cd = p.descriptor;
      return cd.arena === null || cd.user ? 'a class is not a pool with its own arena' : null;
    });
  }


  /** Sums over the classes (perSlot element by element), with each class's own stats in `classes`. */
  stats(): PoolSetStats {
    const each = this.#pools.map((p) => ({ ...p.stats(), objectSize: p.objectSize }));
    const sum = (k: keyof PoolStats) => each.reduce((a, s) => a + (s[k] as number), 0);
    return {
      capacity: sum('capacity'), available: sum('available'), inUse: sum('inUse'), cached: sum('cached'), waiting: sum('waiting'),
      perSlot: each[0]!.perSlot.map((_, i) => each.reduce((a, s) => a + (s.perSlot[i] ?? 0), 0)),
      closed: each.every((s) => s.closed),
      exhausted: sum('exhausted'), waits: sum('waits'), waitTimeouts: sum('waitTimeouts'), waitAborts: sum('waitAborts'),
      waitSeconds: sum('waitSeconds'), leaks: sum('leaks'), released: sum('released'),
      recovered: sum('recovered'), recoveredMidOperation: sum('recoveredMidOperation'),
      recoveredMidChannelCall: sum('recoveredMidChannelCall'), repairedChannelCells: sum('repairedChannelCells'), classes: each,
    };
  }

  /**
   * Closes every class (see ObjectPool.close()): `release` gets each object
   * with its handle in the set (naming its class). Resolves once every
   * class has released everything.
   */
  close(release?: ReleaseCallback): Promise<void> {
    if (release !== undefined && typeof release !== 'function') throw invalidType('release', 'of type function', release);
    return Promise.all(this.#pools.map((p, c) => p.close(release === undefined ? undefined
      : (obj, info) => release(obj, { ...info, handle: info.handle < 0 ? info.handle : (c << SHIFT) | info.handle }))))
      .then(() => undefined);
  }
}

/**
 * Handles of any class of a set, between threads: one HandleChannel per
 * class underneath (`channels`), so handles of one class from one sender
 * arrive in the order sent (there is no order between classes). Made by
 * `set.channel()`; `PoolSetChannel.attach(descriptor, set)` in another
 * thread. Batches go through a class's own channel (`channels[c]`).
 */
export class PoolSetChannel {
  /** The class channels, in the order of the set's `sizes`. */
  readonly channels: readonly HandleChannel[];
  readonly #chans: HandleChannel[];
  // The class a receive looks at first: classes take turns.
  #next = 0;
  // receiveAsync() calls of this instance that wait.
  #waiting = 0;

  /** @internal */
  constructor(key: typeof token, chans: HandleChannel[]) {
    if (key !== token) throw new TypeError('PoolSetChannel cannot be constructed directly: use set.channel() or PoolSetChannel.attach()');
    this.#chans = chans;
    this.channels = Object.freeze(chans.slice());
  }

  /** Uses, in this thread, the channel another thread described, with this thread's instance of its set. */
  static attach(descriptor: PoolSetChannelDescriptor | ProcessPoolSetChannelDescriptor, set: PoolSet): PoolSetChannel {
    if ((descriptor as { kind?: unknown } | null)?.kind === 'objpool/process-set-channel') return PoolSetChannel.attachProcess(descriptor as ProcessPoolSetChannelDescriptor, set);
    return attachSetChannel(descriptor, set, 'objpool-set-channel', 'pool set channel', (d, pool) => HandleChannel.attach(d as ChannelDescriptor, pool));
  }


  /**
   * Uses, in this thread of any process of the same user, the channel of a
   * process-shared set that a process described, with this thread's
   * instance of that set (one class channel per class, each attached as
   * HandleChannel.attachProcess() does).
   */
  static attachProcess(descriptor: ProcessPoolSetChannelDescriptor, set: PoolSet): PoolSetChannel {
    return attachSetChannel(descriptor, set, 'objpool/process-set-channel', 'process pool set channel', (d, pool) => HandleChannel.attachProcess(d as ProcessChannelDescriptor, pool));
  }


  /** Structured-cloneable description for `PoolSetChannel.attach()`; a process-shared set's channel has `processDescriptor` instead (this throws ERR_OBJPOOL_NOT_SHAREABLE). */
  get descriptor(): PoolSetChannelDescriptor {
    return Object.freeze({ kind: 'objpool-set-channel', version: 1, channels: Object.freeze(this.#chans.map((c) => c.descriptor)) });
  }

  /** Plain JSON description for `PoolSetChannel.attachProcess()`; null unless the set is process-shared. */
  get processDescriptor(): ProcessPoolSetChannelDescriptor | null {
    if (this.#chans[0]!.processDescriptor === null) return null;
    return Object.freeze({ kind: 'objpool/process-set-channel', version: 1, channels: Object.freeze(this.#chans.map((c) => c.processDescriptor!)) });
  }

  /** Sends a set handle through its class's channel: false when that channel is full (see HandleChannel.send). */
  send(handle: number): boolean {
    if (typeof handle !== 'number' || (handle >>> 0) !== handle) throw badHandle(handle);
    const ch = this.#chans[handle >>> SHIFT];
    if (ch === undefined) throw badHandle(handle);
    return ch.send(handle & INDEX);
  }

  /** Takes a handle of any class (classes take turns): the receiving thread owns it; -1 when every class's channel is empty. */
  receive(): number {
    const chans = this.#chans, n = chans.length;
    for (let i = 0, c = this.#next; i < n; i++, c = c + 1 === n ? 0 : c + 1) {
      const h = chans[c]!.receive();
      if (h >= 0) {
        this.#next = c + 1 === n ? 0 : c + 1;
        return (c << SHIFT) | h;
      }
    }
    return -1;
  }

  /** Takes up to `count` (default `out.length`) handles of any class into `out`; returns how many. */
  receiveMany(out: Uint32Array, count?: number): number {
    // The intrinsics, and an array of its own over out's memory: a
    // subclass's or a Proxy's subarray could hand back any array, and the
    // handles taken into it would be lost.
    if (tagOf(out) !== 'Uint32Array') throw invalidType('out', 'an instance of Uint32Array', out);
    const length = byteLengthOf(out as unknown as Uint8Array) / 4;
    const want = count === undefined ? length : checkInteger('count', count, 0, length);
    const mine = new Uint32Array(bufferOf(out), byteOffsetOf(out), length);
    let got = 0;
    for (let c = 0; c < this.#chans.length && got < want; c++) {
      const k = this.#chans[c]!.receiveMany(mine.subarray(got, want));
      for (let i = got; i < got + k; i++) mine[i] = (c << SHIFT) | mine[i]!;
      got += k;
    }
    return got;
  }

  /** Handles in the channel now, every class (approximate while other threads work). */
  get size(): number {
    return this.#chans.reduce((a, c) => a + c.size, 0);
  }

  /** True once close() was called (in any thread) or the set was closed. */
  get closed(): boolean {
    return this.#chans.every((c) => c.closed);
  }

  /** No more sends of any class (see HandleChannel.close()). */
  close(): void {
    for (const c of this.#chans) c.close();
  }

  /**
   * Takes a handle of any class, waiting while every class's channel is
   * empty (see HandleChannel.receiveAsync()): one wait on each class's
   * channel, and the first handle ends them all before any other takes one.
   * Rejects with ERR_OBJPOOL_CLOSED once every class's channel is closed
   * and empty.
   */
  receiveAsync(options: WaitOptions = {}): Promise<number> {
    const o = checkObject('options', options) as WaitOptions;
    const signal = o.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an instance of AbortSignal', signal);
    const timeout = o.timeout === undefined ? undefined : checkNumber('options.timeout', o.timeout, 0, 2 ** 31 - 1);
    if (signal?.aborted) return Promise.reject(signal.reason);
    // In the order of the calls in this thread: only when none waits here
    // may a call take a handle that is there now (as HandleChannel's).
    if (this.#waiting === 0) {
      const now = this.receive();
      if (now >= 0) return Promise.resolve(now);
    }
    this.#waiting++;
    return new Promise<number>((resolve, reject) => {
      const chans = this.#chans;
      const ends = new AbortController();
      let done = false, closed = 0, timer: NodeJS.Timeout | undefined;
      const onAbort = () => finish(() => reject(signal!.reason));
      // Ends every class's wait (synchronously: none of them can take a
      // handle after this), then settles.
      const finish = (settle: () => void) => {
        if (done) return;
        done = true;
        this.#waiting--;
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        ends.abort();
        settle();
      };
      for (let c = 0; c < chans.length && !done; c++) {
        waitFor(chans[c]!, (h) => finish(() => resolve((c << SHIFT) | h)), (err) => {
          if (done) return;
          if ((err as { code?: string }).code !== codes.CLOSED) return finish(() => reject(err));
          if (++closed === chans.length) finish(() => reject(err));
        }, ends.signal);
      }
      if (done) return;
      if (timeout !== undefined) {
        timer = setTimeout(() => finish(() => reject(poolError(codes.TIMEOUT, `No handle arrived in the pool set channel within ${timeout} ms`))), timeout);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Receives until every class's channel is closed and empty. */
  async *[Symbol.asyncIterator](): AsyncGenerator<number, void, undefined> {
    for (;;) {
      let h: number;
      try {
        h = await this.receiveAsync();
      } catch (err) {
        if ((err as { code?: string }).code === codes.CLOSED) return;
        throw err;
      }
      yield h;
    }
  }
}

// PoolSet.attach() and attachProcess(): a set descriptor of `kind`, each
// field read once and the list copied by index (a getter or an own `map`
// cannot make the set longer than what was checked); each class attached
// with `attachOne`, refused when `check` gives a reason, and the classes
// must grow in size. ERR_OBJPOOL_BAD_DESCRIPTOR for anything else.
function attachSet(descriptor: unknown, kind: string, what: string, attachOne: (d: unknown) => ObjectPool, check: (p: ObjectPool) => string | null): PoolSet {
  const d = checkObject('descriptor', descriptor) as Partial<Record<keyof PoolSetDescriptor, unknown>>;
  const bad = (why: string) => poolError(codes.BAD_DESCRIPTOR, `Invalid ${what} descriptor: ${why}`);
  if (d.kind !== kind || d.version !== 1) throw bad(`not an objpool ${what} descriptor of version 1`);
  const classes = d.classes, fallback = d.fallback;
  const count = Array.isArray(classes) ? classes.length : 0;
  if (!(count >= 1 && count <= MAX_CLASSES)) throw bad(`classes must be an array of 1 to ${MAX_CLASSES} pool descriptors`);
  if (fallback !== 'none' && fallback !== 'larger') throw bad("fallback must be 'none' or 'larger'");
  // The sizes the class descriptors state must grow before anything is
  // attached: an attach that fails part-way leaves the views it opened to
  // the collector (each holds a view record of a process-shared pool until
  // then). The pools' own sizes are checked again below: a descriptor may lie.
  for (let i = 0, last = 0; i < count; i++) {
    const size = ((classes as unknown[])[i] as { objectSize?: unknown } | null | undefined)?.objectSize;
    if (typeof size !== 'number') continue;
    if (size <= last) throw bad('classes must grow in objectSize');
    last = size;
  }
  const pools: ObjectPool[] = [];
  for (let i = 0; i < count; i++) pools.push(attachOne((classes as unknown[])[i]));
  for (let i = 0; i < pools.length; i++) {
    const why = check(pools[i]!);
    if (why !== null) throw bad(why);
    if (i > 0 && pools[i]!.objectSize <= pools[i - 1]!.objectSize) throw bad('classes must grow in objectSize');
  }
  return new PoolSet(token, pools, fallback);
}

// PoolSetChannel.attach() and attachProcess(): one channel per class of
// `set`, each attached with `attachOne` to its class's pool.
function attachSetChannel(descriptor: unknown, set: PoolSet, kind: string, what: string, attachOne: (d: unknown, pool: ObjectPool) => HandleChannel): PoolSetChannel {
  if (!(set instanceof PoolSet)) throw invalidType('set', 'an instance of PoolSet', set);
  const d = checkObject('descriptor', descriptor) as Partial<Record<keyof PoolSetChannelDescriptor, unknown>>;
  const bad = (why: string) => poolError(codes.BAD_DESCRIPTOR, `Invalid ${what} descriptor: ${why}`);
  if (d.kind !== kind || d.version !== 1) throw bad(`not an objpool ${what} descriptor of version 1`);
  const channels = d.channels; // read once
  const count = set.pools.length;
  if (!Array.isArray(channels) || channels.length !== count) throw bad('it has not one channel per class of this set');
  const chans: HandleChannel[] = [];
  for (let i = 0; i < count; i++) chans.push(attachOne((channels as unknown[])[i], set.pools[i]!));
  return new PoolSetChannel(token, chans);
}
