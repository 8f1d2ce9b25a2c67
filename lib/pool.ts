import os = require('node:os');
import { native, type NativeOps } from './native';
import { checkInteger, codes, invalidType, invalidValue, outOfRange, poolError } from './errors';

/** Options of `new ObjectPool()`. */
export interface PoolOptions {
  /** Number of objects, 1 .. 2**24. */
  capacity: number;
  /** Bytes per object, >= 1. */
  objectSize: number;
  /** Power of two, 1 .. 65536 (default 8): each object starts at a multiple of it within the arena. */
  align?: number;
  /** Free lists the objects are spread over; default: the number of CPUs the OS reports. */
  slots?: number;
  /** Catch double pushes and pushes of objects never popped (default true). */
  checked?: boolean;
  /** Called once for every object before the pool is usable (the kernel's objinit). */
  init?: (obj: Buffer, handle: number) => void;
}

/** What `close()` passes to the release callback with each piece of memory. */
export interface ReleaseInfo {
  /** The object's handle, or -1 for the whole memory of a `fromBuffer` pool. */
  handle: number;
  /** The memory came from the user (`fromBuffer`, `fromBuffers`). */
  user: boolean;
  /** An object (true) or the whole memory given to `fromBuffer` (false). */
  element: boolean;
}

export type ReleaseCallback = (obj: Buffer, info: ReleaseInfo) => void;

export interface PoolStats {
  capacity: number;
  /** Objects in the pool now. */
  available: number;
  /** Objects handed out and not yet pushed back (or released, after close). */
  inUse: number;
  /** Objects in each slot. */
  perSlot: number[];
  closed: boolean;
}

/**
 * Everything another thread needs to use the same pool: pass it through
 * `workerData` or `postMessage` (it is structured-cloneable) and call
 * `ObjectPool.attach()` there.
 */
export interface PoolDescriptor {
  readonly kind: 'objpool';
  readonly version: 1;
  readonly meta: SharedArrayBuffer;
  /** The arena, or null for a `fromBuffers` pool. */
  readonly arena: SharedArrayBuffer | null;
  /** The objects of a `fromBuffers` pool, else null. */
  readonly objects: readonly Uint8Array[] | null;
  readonly capacity: number;
  readonly objectSize: number;
  readonly stride: number;
  readonly slots: number;
  readonly checked: boolean;
  /** Whether the pool's memory was given by the user (`fromBuffer`, `fromBuffers`). */
  readonly user: boolean;
}

const enum Mode {
  Own,      // new ObjectPool(): the pool's own SharedArrayBuffer arena
  Memory,   // fromBuffer(): the user's memory carved into objects
  Objects,  // fromBuffers(): one user object per entry
}

/** @internal */
interface Parts {
  mode: Mode;
  meta: SharedArrayBuffer;
  arena: ArrayBuffer | SharedArrayBuffer | null;
  objects: Uint8Array[] | null;
  objectSize: number;
  stride: number;
  capacity: number;
  slots: number;
  checked: boolean;
}

/** @internal */
const token = Symbol('objpool.internal');

function defaultSlots(): number {
  const n = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.min(Math.max(1, n), native.maxSlots);
}

function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object') throw invalidType(name, 'of type object', value);
  return value as Record<string, unknown>;
}

function readShape(options: Record<string, unknown>) {
  const objectSize = checkInteger('options.objectSize', options.objectSize, 1, 0xffffffff);
  const align = options.align === undefined ? 8 : checkInteger('options.align', options.align, 1, native.maxAlign);
  if ((align & (align - 1)) !== 0) throw invalidValue('options.align', 'must be a power of two', align);
  const stride = Math.ceil(objectSize / align) * align;
  if (stride > 0xffffffff) throw invalidValue('options.objectSize', 'rounded up to options.align must be < 2**32', objectSize);
  return { objectSize, align, stride, ...readCommon(options) };
}

function readCommon(options: Record<string, unknown>) {
  const slots = options.slots === undefined ? defaultSlots() : checkInteger('options.slots', options.slots, 1, native.maxSlots);
  if (options.checked !== undefined && typeof options.checked !== 'boolean') throw invalidType('options.checked', 'of type boolean', options.checked);
  const checked = options.checked !== false;
  if (options.init !== undefined && typeof options.init !== 'function') throw invalidType('options.init', 'of type function', options.init);
  return { slots, checked, init: options.init as PoolOptions['init'] };
}

function allocate<T>(what: string, bytes: number, make: (n: number) => T): T {
  try {
    return make(bytes);
  } catch (err) {
    if (err instanceof RangeError) throw poolError(codes.NO_MEMORY, `Cannot allocate ${bytes} bytes for the pool ${what}: ${err.message}`);
    throw err;
  }
}

function newMeta(capacity: number, slots: number, checked: boolean): SharedArrayBuffer {
  return allocate('metadata', native.metaBytes(capacity, slots, checked), (n) => new SharedArrayBuffer(n));
}

/**
 * A fixed set of fixed-size objects handed out as integer handles through
 * per-CPU lock-free free lists. One pool can be shared by the main thread,
 * worker threads and native threads (see `descriptor` and `attach`).
 *
 * Limitations: capacity is fixed; there is no order or fairness between
 * threads (LIFO within a slot); `pop()` may report empty while another
 * thread is returning an object; the pool's memory lives until the last
 * thread that sees the pool lets go of it.
 */
export class ObjectPool {
  readonly capacity: number;
  readonly objectSize: number;
  readonly stride: number;
  readonly slots: number;
  readonly checked: boolean;

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
  readonly #closedWord: Int32Array;
  readonly #views: (Buffer | undefined)[] = [];
  #arenaAddress = -1;
  #byAddress: Map<number, number> | null = null;
  #closing: Promise<void> | null = null;
  #released = 0;

  /** A pool with its own arena of `capacity` objects of `objectSize` bytes, in shared memory. */
  constructor(options: PoolOptions);
  /** @internal */
  constructor(options: PoolOptions | typeof token, parts?: Parts, init?: PoolOptions['init']);
  constructor(options: PoolOptions | typeof token, parts?: Parts, init?: PoolOptions['init']) {
    if (options !== token) {
      const o = checkObject('options', options);
      const capacity = checkInteger('options.capacity', o.capacity, 1, native.maxCapacity);
      const shape = readShape(o);
      const arena = allocate('arena', capacity * shape.stride, (n) => new SharedArrayBuffer(n));
      parts = { mode: Mode.Own, meta: newMeta(capacity, shape.slots, shape.checked), arena, objects: null,
        objectSize: shape.objectSize, stride: shape.stride, capacity, slots: shape.slots, checked: shape.checked };
      init = shape.init;
      ObjectPool.#format(parts, shape.align);
    }
    const p = parts!;
    this.#parts = p;
    this.capacity = p.capacity;
    this.objectSize = p.objectSize;
    this.stride = p.stride;
    this.slots = p.slots;
    this.checked = p.checked;
    // Its own ArrayBuffer: the native side keeps a pointer to these 8 bytes,
    // so they must live off the V8 heap (small typed arrays may not).
    const reg = new Int32Array(new ArrayBuffer(8));
    this.#ops = native.open(new Uint8Array(p.meta), p.arena ? new Uint8Array(p.arena, 0, p.capacity * p.stride) : null, reg);
    this.#closedWord = new Int32Array(p.meta, 0, native.closedWord + 1);
    // The hot path: the handle travels through `reg`, so neither native call
    // converts an argument or a return value (bench: npm run bench -- crossing).
    const ops = this.#ops;
    const popReg = ops.popReg;
    const pushReg = ops.pushReg;
    const capacity = p.capacity;
    const pop = (): number => {
      popReg();
      return reg[0]!;
    };
    const push = (handle: number): void => {
      if (typeof handle !== 'number' || (handle >>> 0) !== handle || handle >= capacity) throw badHandle(handle, capacity);
      reg[1] = handle;
      pushReg();
    };
    Object.defineProperties(this, {
      pop: { value: pop, enumerable: false },
      push: { value: push, enumerable: false },
      popMany: { value: ops.popMany, enumerable: false },
      pushMany: { value: ops.pushMany, enumerable: false },
    });
    if (p.objects) {
      this.#byAddress = new Map();
      p.objects.forEach((obj, i) => this.#byAddress!.set(native.address(obj), i));
    } else if (p.arena) {
      this.#arenaAddress = native.address(new Uint8Array(p.arena, 0, 1));
    }
    if (init) for (let h = 0; h < p.capacity; h++) init(this.buffer(h), h);
  }

  static #format(p: Parts, align: number): void {
    native.format(new Uint8Array(p.meta), p.capacity, p.slots, p.objectSize, p.stride, align, p.checked, p.mode === Mode.Objects);
  }

  /**
   * A pool over memory you provide: `floor(memory.byteLength / stride)`
   * objects. A SharedArrayBuffer makes the pool shareable; an ArrayBuffer
   * keeps it to this thread. `close()` releases every object, then the
   * whole memory once (`handle: -1, element: false`).
   */
  static fromBuffer(memory: ArrayBuffer | SharedArrayBuffer, options: Omit<PoolOptions, 'capacity'>): ObjectPool {
    const isShared = memory instanceof SharedArrayBuffer;
    if (!isShared && !(memory instanceof ArrayBuffer)) throw invalidType('memory', 'an instance of ArrayBuffer or SharedArrayBuffer', memory);
    const o = checkObject('options', options);
    const shape = readShape(o);
    const capacity = Math.floor(memory.byteLength / shape.stride);
    if (capacity < 1) throw invalidValue('memory', `must hold at least one object of ${shape.stride} bytes (byteLength ${memory.byteLength})`, memory);
    if (capacity > native.maxCapacity) throw outOfRangeCapacity(capacity);
    const parts: Parts = { mode: Mode.Memory, meta: newMeta(capacity, shape.slots, shape.checked), arena: memory, objects: null,
      objectSize: shape.objectSize, stride: shape.stride, capacity, slots: shape.slots, checked: shape.checked };
    ObjectPool.#format(parts, shape.align);
    return new ObjectPool(token, parts, shape.init);
  }

  /**
   * A pool of objects you provide: one per entry, all of one length, none
   * overlapping another. Shareable when every object is a view of a
   * SharedArrayBuffer.
   */
  static fromBuffers(objects: readonly Uint8Array[], options: { slots?: number; checked?: boolean } = {}): ObjectPool {
    if (!Array.isArray(objects)) throw invalidType('objects', 'an instance of Array', objects);
    if (objects.length < 1 || objects.length > native.maxCapacity) throw outOfRangeCapacity(objects.length, 'objects.length');
    const list: Uint8Array[] = [];
    for (let i = 0; i < objects.length; i++) {
      const obj: unknown = objects[i];
      if (!(obj instanceof Uint8Array)) throw invalidType(`objects[${i}]`, 'an instance of Uint8Array', obj);
      if (obj.byteLength !== objects[0]!.byteLength || obj.byteLength === 0) {
        throw invalidValue(`objects[${i}]`, `must have the same non-zero byteLength as objects[0] (${objects[0]!.byteLength})`, obj);
      }
      list.push(obj);
    }
    const size = list[0]!.byteLength;
    const spans = list.map((obj, i) => ({ at: native.address(obj), i })).sort((a, b) => a.at - b.at);
    for (let k = 1; k < spans.length; k++) {
      if (spans[k]!.at < spans[k - 1]!.at + size) {
        throw invalidValue(`objects[${spans[k]!.i}]`, `overlaps objects[${spans[k - 1]!.i}]: every object must be distinct memory`, list[spans[k]!.i]);
      }
    }
    const o = checkObject('options', options);
    const common = readCommon({ slots: o.slots, checked: o.checked });
    const parts: Parts = { mode: Mode.Objects, meta: newMeta(list.length, common.slots, common.checked), arena: null, objects: list,
      objectSize: size, stride: size, capacity: list.length, slots: common.slots, checked: common.checked };
    ObjectPool.#format(parts, 1);
    return new ObjectPool(token, parts);
  }

  /**
   * Uses, in this thread, the pool another thread described. Everything is
   * validated before native code forms a pointer: a forged or truncated
   * descriptor throws ERR_OBJPOOL_BAD_DESCRIPTOR.
   */
  static attach(descriptor: PoolDescriptor): ObjectPool {
    const d = checkObject('descriptor', descriptor) as Partial<Record<keyof PoolDescriptor, unknown>>;
    const bad = (why: string) => poolError(codes.BAD_DESCRIPTOR, `Invalid pool descriptor: ${why}`);
    if (d.kind !== 'objpool' || d.version !== 1) throw bad('not an objpool descriptor of layout version 1');
    if (!(d.meta instanceof SharedArrayBuffer)) throw bad('meta must be a SharedArrayBuffer');
    if (d.arena !== null && !(d.arena instanceof SharedArrayBuffer)) throw bad('arena must be a SharedArrayBuffer or null');
    if (d.meta.byteLength < 256) throw bad('meta is truncated');
    // The header is the authority; native.open() validates it against the
    // real byte lengths before anything else reads it.
    const header = new Uint32Array(d.meta, 0, 8);
    const capacity = header[2]!, slots = header[3]!, objectSize = header[4]!, stride = header[5]!, flags = header[7]!;
    const checked = (flags & 1) !== 0, external = (flags & 2) !== 0;
    if (d.capacity !== capacity || d.slots !== slots || d.objectSize !== objectSize || d.stride !== stride || d.checked !== checked) {
      throw bad('its sizes do not match the pool metadata');
    }
    let objects: Uint8Array[] | null = null;
    if (external) {
      if (d.arena !== null || !Array.isArray(d.objects) || d.objects.length !== capacity) throw bad('objects do not match the pool');
      objects = d.objects.map((obj: unknown) => {
        if (!(obj instanceof Uint8Array) || obj.byteLength !== objectSize) throw bad('objects do not match the pool');
        return obj;
      });
    } else if (d.arena === null || d.objects !== null) {
      throw bad('arena does not match the pool');
    } else if (d.arena.byteLength < capacity * stride) {
      throw bad('arena is truncated');
    }
    const parts: Parts = { mode: external ? Mode.Objects : d.user === true ? Mode.Memory : Mode.Own, meta: d.meta,
      arena: d.arena as SharedArrayBuffer | null, objects, objectSize, stride, capacity, slots, checked };
    try {
      return new ObjectPool(token, parts);
    } catch (err) {
      if ((err as { code?: string }).code === codes.BAD_DESCRIPTOR) throw err;
      throw bad((err as Error).message);
    }
  }

  /** True once any thread has called close(). */
  get closed(): boolean {
    return Atomics.load(this.#closedWord, native.closedWord) !== 0;
  }

  /** Structured-cloneable description of this pool for `ObjectPool.attach()` in another thread. */
  get descriptor(): PoolDescriptor {
    const p = this.#parts;
    const shared = p.objects ? p.objects.every((o) => o.buffer instanceof SharedArrayBuffer) : p.arena instanceof SharedArrayBuffer;
    if (!shared) throw poolError(codes.NOT_SHAREABLE, 'This pool is built on memory that is not shared (an ArrayBuffer), so only this thread can use it; build it on a SharedArrayBuffer to share it');
    return Object.freeze({
      kind: 'objpool', version: 1, meta: p.meta, arena: (p.arena as SharedArrayBuffer | null),
      objects: p.objects ? Object.freeze(p.objects.slice()) : null, capacity: p.capacity, objectSize: p.objectSize,
      stride: p.stride, slots: p.slots, checked: p.checked, user: p.mode !== Mode.Own,
    });
  }

  /** A zero-copy Buffer over the object's bytes; the same Buffer each time in a thread. */
  buffer(handle: number): Buffer {
    if (typeof handle === 'number') {
      const view = this.#views[handle];
      if (view !== undefined) return view;
    }
    checkInteger('handle', handle, 0, this.capacity - 1);
    const p = this.#parts;
    const made = p.objects
      ? Buffer.from(p.objects[handle]!.buffer, p.objects[handle]!.byteOffset, p.objectSize)
      : Buffer.from(p.arena!, handle * p.stride, p.objectSize);
    this.#views[handle] = made;
    return made;
  }

  /** pop() + buffer(): an object's Buffer, or null when the pool is empty. */
  acquire(): Buffer | null {
    const h = this.pop();
    return h < 0 ? null : this.buffer(h);
  }

  /**
   * Returns an object by a view of it: the Buffer from `buffer()`/`acquire()`,
   * or any Uint8Array that starts at the object's first byte and stays
   * inside it (a `subarray(0, n)` of it, say), in any thread.
   */
  release(obj: Uint8Array): void {
    this.push(this.handleOf(obj));
  }

  /** The handle of the object a view starts at; throws ERR_OBJPOOL_FOREIGN_BUFFER for any other memory. */
  handleOf(obj: Uint8Array): number {
    if (!(obj instanceof Uint8Array)) throw invalidType('obj', 'an instance of Buffer or Uint8Array', obj);
    const p = this.#parts;
    // Fast path: a Buffer this view handed out (arena pools start at offset 0).
    const guess = obj.byteOffset / p.stride;
    if (this.#views[guess] === obj && !p.objects) return guess;
    let h = -1;
    if (obj.byteLength <= p.objectSize) {
      if (p.objects) {
        h = this.#byAddress!.get(native.address(obj)) ?? -1;
      } else {
        const rel = obj.buffer === p.arena ? obj.byteOffset : native.address(obj) - this.#arenaAddress;
        if (rel >= 0 && rel % p.stride === 0 && rel / p.stride < p.capacity) h = rel / p.stride;
      }
    }
    if (h < 0) throw poolError(codes.FOREIGN_BUFFER, 'The buffer is not an object of this pool (or does not start at one, or is longer than objectSize)');
    return h;
  }

  /** Counts, taken without slowing pop/push; approximate while other threads work. */
  stats(): PoolStats {
    const perSlot = this.#ops.perSlot();
    const available = perSlot.reduce((a, b) => a + b, 0);
    return { capacity: this.capacity, available, inUse: Math.max(0, this.capacity - available - this.#released), perSlot, closed: this.closed };
  }

  /**
   * Closes the pool, in every thread: pops throw ERR_OBJPOOL_CLOSED from now
   * on. Every object in the pool is released now; objects still out are
   * released when they are pushed back, from whichever thread. `release`
   * always runs on this thread. The promise resolves once every object has
   * been released (rejecting with the first error `release` threw, if any).
   * If another thread closed the pool first, that thread releases and this
   * promise resolves at once. Releases run on this thread for as long as it
   * lives; a pending close does not by itself keep the thread alive (objects
   * out are normally held by something that does, and a push on this thread
   * keeps it alive until that object is released).
   */
  close(release?: ReleaseCallback): Promise<void> {
    if (release !== undefined && typeof release !== 'function') throw invalidType('release', 'of type function', release);
    if (this.#closing) return this.#closing;
    if (!this.#ops.close()) return (this.#closing = Promise.resolve());
    const p = this.#parts;
    const user = p.mode !== Mode.Own;
    const seen = new Uint8Array(p.capacity);
    const out = new Uint32Array(Math.min(p.capacity, 4096));
    let failure: { error: unknown } | null = null;
    const call = (obj: Buffer, info: ReleaseInfo) => {
      if (!release) return;
      try {
        release(obj, info);
      } catch (error) {
        failure ??= { error };
      }
    };
    let finish = () => {};
    this.#closing = new Promise<void>((resolve, reject) => {
      const drain = () => {
        if (this.#released === p.capacity) return;
        for (let n, fresh = 1; fresh > 0 && (n = this.#ops.drain(out)) > 0; ) {
          fresh = 0;
          for (let i = 0; i < n; i++) {
            const h = out[i]!;
            // Unchecked mode only: a double push can link an object twice
            // (even into a cycle); release it once and stop on a batch with
            // nothing new.
            if (seen[h]) continue;
            seen[h] = 1;
            fresh++;
            this.#released++;
            call(this.buffer(h), { handle: h, user, element: true });
          }
        }
        if (this.#released < p.capacity) return;
        finish();
        this.#ops.unwatch();
        if (p.mode === Mode.Memory) call(Buffer.from(p.arena!), { handle: -1, user: true, element: false });
        if (failure) reject(failure.error);
        else resolve();
      };
      // Pushes from this process's addon threads ask for a drain at once;
      // pushes from C++ threads (which cannot reach the closer) are picked
      // up by a slow poll, which does not keep the thread alive.
      const poll = setInterval(drain, 10);
      poll.unref();
      finish = () => clearInterval(poll);
      this.#ops.watch(drain);
      drain();
    });
    return this.#closing;
  }
}

function badHandle(handle: unknown, capacity: number): Error {
  if (typeof handle !== 'number') return invalidType('handle', 'of type number', handle);
  return outOfRange('handle', `an integer >= 0 and < ${capacity}`, handle);
}

function outOfRangeCapacity(n: number, name = 'capacity'): RangeError {
  return Object.assign(new RangeError(`The value of "${name}" is out of range. It must be >= 1 and <= ${native.maxCapacity}. Received ${n}`), { code: codes.OUT_OF_RANGE });
}
