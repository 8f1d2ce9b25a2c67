import { native, type NativeOps } from './native';
import { checkInteger, checkNumber, codes, invalidType, outOfRange, poolError } from './errors';
import { BoundedSpin } from './spin';
import { copyU32 } from './hotpath';
import type { WaitOptions } from './types';

/**
 * Everything another thread needs to use the same channel: pass it through
 * `workerData` or `postMessage` (it is structured-cloneable) and call
 * `HandleChannel.attach()` there with that thread's instance of the pool.
 */
export interface ChannelDescriptor {
  readonly kind: 'objpool-channel';
  readonly version: 3;
  /** The channel's memory: its header, positions and cells. */
  readonly memory: SharedArrayBuffer;
  /** The metadata of the pool the channel belongs to. */
  readonly meta: SharedArrayBuffer;
  readonly capacity: number;
}

/**
 * A channel of a process-shared pool, for `HandleChannel.attachProcess()` in
 * any thread of any process of this user that has the pool: plain JSON
 * (`process.send()`, an environment variable, argv).
 */
export interface ProcessChannelDescriptor {
  readonly kind: 'objpool/process-channel';
  readonly version: 1;
  /** The pool's token (its process descriptor's): the channel belongs to that pool. */
  readonly token: string;
  /** The channel's entry in the pool's channel table. */
  readonly index: number;
  readonly capacity: number;
}

/** Options of `pool.channel()`. */
export interface ChannelOptions {
  /** Handles the channel holds at most, 1 .. 2**20 (default 1024); rounded up to a power of two (at least 2). */
  capacity?: number;
}

/**
 * A pool as a channel sees it: this thread's `ObjectPool` instance of the
 * channel's pool. (Structural for the type checker; `HandleChannel.attach()`
 * refuses anything but a real instance with ERR_INVALID_ARG_TYPE.)
 */
export interface ChannelPool {
  readonly capacity: number;
  readonly closed: boolean;
  channel(options?: ChannelOptions): HandleChannel;
}

/**
 * @internal What a channel needs from its pool instance (this thread's view):
 * see registerChannelHost().
 */
export interface ChannelHost {
  /** Whether the pool is closed (in any thread). */
  readonly closed: () => boolean;
  readonly ops: NativeOps;
  /** The view's own memory (native/binding.hpp, MemWord): a channel call in progress is written there. */
  readonly mem: Int32Array;
  /** The state words (checked mode), else null. */
  readonly state: Int32Array | null;
  readonly capacity: number;
  readonly meta: SharedArrayBuffer | ArrayBuffer;
  /** ` (pool "name")` for messages, or ''. */
  readonly where: string;
  /** The leak tracker's untrack, when this view tracks leaks. */
  readonly untrack: ((h: number) => void) | null;
  /** A process-shared pool's token (its channels live in its shared memory), else null. */
  readonly processToken: string | null;
}

// Each pool instance's channel host, module-private (no symbol or property
// of the pool leads to it): the raw native calls and the view's own memory
// must be reachable from no object JS can get at.
const hosts = new WeakMap<object, () => ChannelHost>();

/** @internal Called once by each ObjectPool instance as it is made; an instance is never registered twice. */
export function registerChannelHost(pool: object, host: () => ChannelHost): void {
  if (hosts.has(pool)) throw new TypeError('This pool already has a channel host');
  hosts.set(pool, host);
}
const token = Symbol('objpool.channel.internal');
// A send or receive closure -> its channel's native record (an external),
// which it keeps alive.
const keepAlive = new WeakMap<object, object>();

// Words of the channel's memory (native/channel.hpp, chan_layout), as
// indices of an Int32Array over it.
const A = native.chanAttentionWord, ENQ = native.chanEnqueueWord, DEQ = native.chanDequeueWord, CELLS = native.chanCellsWord;
const MODE = native.chanModeWord, SENDER = native.chanSenderRoleWord, RECEIVER = native.chanReceiverRoleWord;
const RENQ = native.chanRingEnqueueWord, RDEQ = native.chanRingDequeueWord;
const MPMC = 2; // kChanModeMpmc
// The ring's positions (kRingPos) and flags: kRingWait, and kRingFrozen
// (bit 31: a frozen position reads as a negative int32).
const RING_POS = (1 << 28) - 1, RING_WAIT = 1 << 30;
const CLOSED = 1;
const HOLE = -1; // kHole as an int32
const TAKEN = 1, IN_FLIGHT = 3;
const DEFAULT_CAPACITY = 1024;
const I32 = Int32Array; // as loaded: a later global replaced by user code is not used

const sharedByteLengthOf = Function.prototype.call.bind(Object.getOwnPropertyDescriptor(SharedArrayBuffer.prototype, 'byteLength')!.get!) as (b: unknown) => number;


function isShared(b: unknown): b is SharedArrayBuffer {
  try {
    sharedByteLengthOf(b);
    return true;
  } catch {
    return false;
  }
}

function badDescriptor(why: string): Error {
  return poolError(codes.BAD_DESCRIPTOR, `Invalid channel descriptor: ${why}`);
}

/**
 * @internal Waits on `ch` with callbacks instead of a promise (for
 * PoolSetChannel, which waits on several channels at once): `resolve` runs
 * synchronously with the handle taken for this wait, so the caller can give
 * up its other waits (abort `signal`) before any of them takes one; `reject`
 * runs with the reason of a wait that gave up (the channel closed and
 * empty, `signal` aborted, a native error).
 */
export let waitFor: (ch: HandleChannel, resolve: (h: number) => void, reject: (e: unknown) => void, signal: AbortSignal) => void;

/** @internal A pending receiveAsync(). */
interface Waiter {
  resolve: (h: number) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * A bounded lock-free queue of a pool's handles in shared memory, for
 * handing objects from thread to thread: made by `pool.channel()`, used in
 * any thread through `HandleChannel.attach(descriptor, pool)`. Any number of
 * senders and receivers; handles from one sender arrive in the order sent.
 *
 * Ownership (checked pools): a handle is in exactly one place at a time: the
 * pool (or a cache), a thread's hands, or one channel. `send` takes it from
 * the sender's hands (it must be out of the pool, and in no channel);
 * `receive` puts it in the receiver's. Pushing or sending a handle that sits
 * in a channel, or sending one that is in the pool, throws
 * ERR_OBJPOOL_DOUBLE_PUSH and changes nothing. Objects in a channel count
 * as in use in `stats()`.
 */
export class HandleChannel {
  /** Handles the channel holds at most: a power of two (at least 2), at least what was asked for. */
  readonly capacity: number;
  /**
   * Sends one handle: true, or false when the channel is full (the handle
   * stays the caller's). Throws ERR_OBJPOOL_CLOSED once the channel is
   * closed, ERR_OBJPOOL_DOUBLE_PUSH when the handle is not the caller's to
   * send (checked pools). Wakes a waiting receiver in any thread; when
   * nobody waits, stays in JS.
   */
  declare readonly send: (handle: number) => boolean;
  /** Takes one handle: the receiving thread owns it; -1 when the channel is empty. */
  declare readonly receive: () => number;

  readonly #host: ChannelHost;
  // The channel's memory: a SharedArrayBuffer, or for a process-shared
  // pool's channel an ArrayBuffer over the pool's shared memory that no
  // property leads to (native code holds the mapping, not this).
  readonly #memory: SharedArrayBuffer | null;
  readonly #index: number;
  readonly #words: Int32Array;
  // The id of this channel's native record, which names it in the native
  // calls; the record itself (an external) is held by send and receive.
  readonly #id: number;
  readonly #waiters: Waiter[] = [];
  /** This instance is counted as a waiter in the channel (chanWaitBegin). */
  #registered = false;
  // The bounded spin before a wait (lib/spin.ts): it runs only when no call
  // of this instance waits, and only calls receive().
  readonly #spin = new BoundedSpin();
  readonly #look = () => this.receive();
  // Called back on this thread by the channel's wake-up helper (held by the
  // binding: strongly while this instance waits, which keeps it alive).
  #onWake: (() => void) | null = null;

  /** @internal `memory`, or for a process-shared pool's channel its `index` in the pool's table. */
  constructor(key: typeof token, host: ChannelHost, memory: SharedArrayBuffer | null, capacity: number, fresh: boolean, index = -1) {
    if (key !== token) throw new TypeError('HandleChannel cannot be constructed directly: use pool.channel() or HandleChannel.attach()');
    this.#host = host;
    this.#memory = memory;
    this.#index = index;
    if (memory === null) {
      // A process-shared channel: native calls only (they run inside the
      // view's channel gap, which a recovery from a dead process relies on:
      // native/segment.hpp, ChanGap), the MPMC queue from the start.
      // Indexed, not destructured: destructuring runs the array iterator,
      // which user code can patch to see the channel's memory.
      const opened = host.ops.openChannel(index, false);
      const ext = opened[0], id = opened[1];
      const words = (this.#words = new I32(opened[3]!));
      const got = (words.length - CELLS) / 3;
      if (got !== capacity) throw badDescriptor('its capacity does not match the channel\'s');
      this.capacity = capacity;
      this.#id = id;
      Object.defineProperties(this, {
        send: { value: makeProcessSend(host, ext, id), enumerable: false },
        receive: { value: makeProcessReceive(host, ext, id), enumerable: false },
      });
      return;
    }
    this.capacity = capacity;
    const words = (this.#words = new I32(memory, 0, CELLS + 3 * capacity));
    const opened = host.ops.openChannel(words, fresh); // indexed: as above
    const ext = opened[0], id = opened[1], role = opened[2];
    this.#id = id;
    Object.defineProperties(this, {
      send: { value: makeSend(words, capacity - 1, host, ext, id, role), enumerable: false },
      receive: { value: makeReceive(words, capacity - 1, host, ext, id, role), enumerable: false },
    });
  }

  /** @internal pool.channel(): a new channel of the pool behind `host`. */
  static create(host: ChannelHost, options: ChannelOptions = {}): HandleChannel {
    if (options === null || typeof options !== 'object') throw invalidType('options', 'of type object', options);
    const want = options.capacity === undefined ? DEFAULT_CAPACITY : checkInteger('options.capacity', options.capacity, 1, native.chanMaxCapacity);
    if (host.closed()) throw poolError(codes.CLOSED, `The pool${host.where} is closed`);
    // A power of two, and at least 2: with one cell, Vyukov's queue cannot
    // tell a cell full for one position from one free for the next.
    let capacity = 2;
    while (capacity < want) capacity *= 2;
    if (host.processToken !== null) return new HandleChannel(token, host, null, capacity, false, host.ops.chanCreate(capacity));
    let memory: SharedArrayBuffer;
    try {
      memory = new SharedArrayBuffer(native.channelBytes(capacity));
    } catch (err) {
      if (err instanceof RangeError) throw poolError(codes.NO_MEMORY, `Cannot allocate a channel of ${capacity} handles: ${err.message}`);
      throw err;
    }
    native.channelFormat(new Uint8Array(memory), capacity);
    return new HandleChannel(token, host, memory, capacity, true);
  }

  /**
   * Uses, in this thread, the channel another thread described, with this
   * thread's instance of its pool. Everything is validated before native
   * code forms a pointer: a forged or truncated descriptor, or one of
   * another pool's channel, throws ERR_OBJPOOL_BAD_DESCRIPTOR.
   */
  static attach(descriptor: ChannelDescriptor | ProcessChannelDescriptor, pool: ChannelPool): HandleChannel {
    if (descriptor === null || typeof descriptor !== 'object') throw invalidType('descriptor', 'of type object', descriptor);
    if (descriptor.kind === 'objpool/process-channel') return HandleChannel.attachProcess(descriptor, pool);
    const host = pool !== null && typeof pool === 'object' ? hosts.get(pool) : undefined;
    if (host === undefined) throw invalidType('pool', 'an instance of ObjectPool', pool);
    const h = host();
    if (h.processToken !== null) throw badDescriptor('a process-shared pool\'s channels are attached by their processDescriptor');
    const d = descriptor as Partial<Record<keyof ChannelDescriptor, unknown>>;
    if (d.kind !== 'objpool-channel' || d.version !== native.chanVersion) throw badDescriptor(`not an objpool channel descriptor of version ${native.chanVersion}`);
    const memory = d.memory, meta = d.meta;
    if (!isShared(memory)) throw badDescriptor('memory must be a SharedArrayBuffer');
    if (!isShared(meta) || sharedByteLengthOf(meta) === 0 ||
      native.address(new Uint8Array(meta, 0, 1)) !== native.address(new Uint8Array(h.meta, 0, 1))) {
      throw badDescriptor('it belongs to another pool (meta is not this pool\'s metadata)');
    }
    const bytes = sharedByteLengthOf(memory);
    if (bytes < (CELLS + 2) * 4) throw badDescriptor('memory is truncated');
    // The header is the authority; openChannel() validates it again against
    // the memory's real length before native code reads anything else. A
    // plain read: channelFormat() wrote it before the descriptor left its
    // thread (postMessage orders that), and it never changes.
    const capacity = new Uint32Array(memory, 0, 4)[2]!;
    if (capacity < 2 || capacity > native.chanMaxCapacity || (capacity & (capacity - 1)) !== 0 || d.capacity !== capacity) {
      throw badDescriptor('its capacity does not match the channel\'s memory');
    }
    if (bytes < native.channelBytes(capacity)) throw badDescriptor('memory is truncated');
    return new HandleChannel(token, h, memory, capacity, false);
  }

  /**
   * Uses, in this thread of any process of this user, a channel of a
   * process-shared pool, with this thread's instance of that pool (from
   * `ObjectPool.attachProcess()`). A descriptor that was forged, names
   * another pool or no channel of it throws ERR_OBJPOOL_BAD_DESCRIPTOR.
   */
  static attachProcess(descriptor: ProcessChannelDescriptor, pool: ChannelPool): HandleChannel {
    if (descriptor === null || typeof descriptor !== 'object') throw invalidType('descriptor', 'of type object', descriptor);
    const host = pool !== null && typeof pool === 'object' ? hosts.get(pool) : undefined;
    if (host === undefined) throw invalidType('pool', 'an instance of ObjectPool', pool);
    const h = host();
    const d = descriptor as Partial<Record<keyof ProcessChannelDescriptor, unknown>>;
    if (d.kind !== 'objpool/process-channel' || d.version !== 1) throw badDescriptor('not an objpool process channel descriptor of version 1');
    if (h.processToken === null || d.token !== h.processToken) throw badDescriptor('it belongs to another pool (its token is not this pool\'s)');
    const index = d.index, capacity = d.capacity;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= native.processChannels) throw badDescriptor('index must name an entry of the pool\'s channel table');
    if (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity < 2 || capacity > native.chanMaxCapacity || (capacity & (capacity - 1)) !== 0) {
      throw badDescriptor('capacity must be a power of two, 2 .. 2**20');
    }
    return new HandleChannel(token, h, null, capacity, false, index);
  }

  /**
   * Structured-cloneable description of this channel for
   * `HandleChannel.attach()` in another thread. A process-shared pool's
   * channel has `processDescriptor` instead (this throws ERR_OBJPOOL_NOT_SHAREABLE).
   */
  get descriptor(): ChannelDescriptor {
    if (this.#memory === null) throw poolError(codes.NOT_SHAREABLE, 'A process-shared pool\'s channel is shared through its processDescriptor, with any thread of any process of this user: pass channel.processDescriptor to HandleChannel.attachProcess() (or attach())');
    return Object.freeze({ kind: 'objpool-channel', version: 3, memory: this.#memory, meta: this.#host.meta as SharedArrayBuffer, capacity: this.capacity });
  }

  /** A process-shared pool's channel's description (plain JSON) for `HandleChannel.attachProcess()`; null for other channels. */
  get processDescriptor(): ProcessChannelDescriptor | null {
    if (this.#memory !== null || this.#host.processToken === null) return null;
    return Object.freeze({ kind: 'objpool/process-channel', version: 1, token: this.#host.processToken, index: this.#index, capacity: this.capacity });
  }

  /** Handles in the channel now (approximate while other threads work). */
  get size(): number {
    // Atomics loads: both positions move in other threads.
    const c = this.#words;
    if (Atomics.load(c, MODE) !== MPMC) return Math.min((Atomics.load(c, RENQ) - Atomics.load(c, RDEQ)) & RING_POS, this.capacity);
    const n = (Atomics.load(c, ENQ) - Atomics.load(c, DEQ)) | 0;
    return n < 0 ? 0 : Math.min(n, this.capacity);
  }

  /** True once close() was called (in any thread) or the pool was closed. */
  get closed(): boolean {
    return (Atomics.load(this.#words, A) & CLOSED) !== 0;
  }

  /**
   * Sends the first `count` (default all) handles, in order, as far as there
   * is room: returns how many were sent (a prefix). Every handle is checked
   * first (range and ownership): on an error nothing is sent. Throws
   * ERR_OBJPOOL_CLOSED on a closed channel, even for no handles.
   */
  sendMany(handles: Uint32Array, count?: number): number {
    const untrack = this.#host.untrack;
    if (untrack === null) return this.#host.ops.chanSendMany(this.#id, handles, count);
    // With leak tracking, the handles are copied once, first, and native
    // code sends from that very copy: the caller's array may be shared
    // memory that another thread changes meanwhile, and what is untracked
    // must be exactly what was sent.
    const copy = copyU32(handles);
    const n = this.#host.ops.chanSendMany(this.#id, copy, count);
    for (let i = 0; i < n; i++) untrack(copy[i]!);
    return n;
  }

  /** Takes up to `count` (default `out.length`) handles into `out`; returns how many. */
  receiveMany(out: Uint32Array, count?: number): number {
    return this.#host.ops.chanReceiveMany(this.#id, out, count);
  }

  /**
   * Takes one handle, waiting while the channel is empty: resolves as soon
   * as any thread (JS or native) sends, in the order of the calls in this
   * thread. Rejects with `signal.reason` on abort, ERR_OBJPOOL_TIMEOUT after
   * `timeout` ms, and ERR_OBJPOOL_CLOSED once the channel is closed and
   * empty. A handle is only taken for a call that is still waiting: one
   * that arrives as its waiter gives up goes to the next waiter or stays in
   * the channel. Like pending I/O, a pending call keeps the thread alive;
   * it uses no CPU while it waits.
   */
  receiveAsync(options: WaitOptions = {}): Promise<number> {
    if (options === null || typeof options !== 'object') throw invalidType('options', 'of type object', options);
    const signal = options.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an instance of AbortSignal', signal);
    const timeout = options.timeout === undefined ? undefined : checkNumber('options.timeout', options.timeout, 0, 2 ** 31 - 1);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#waiters.length === 0) {
      const h = this.receive();
      if (h >= 0) return Promise.resolve(h);
      if (this.#drained()) return Promise.reject(this.#closedError());
      const spun = this.#spin.run(this.#look);
      if (spun >= 0) return Promise.resolve(spun);
    }
    const w: Waiter = { resolve: () => {}, reject: () => {}, timer: undefined, signal, onAbort: undefined };
    const promise = new Promise<number>((resolve, reject) => { w.resolve = resolve; w.reject = reject; });
    this.#wait(w, timeout);
    return promise;
  }

  // Queues a waiter, registers this instance as waiting and looks at the
  // channel again; `w.resolve` and `w.reject` run synchronously when the
  // waiter is served or gives up.
  #wait(w: Waiter, timeout: number | undefined): void {
    const signal = w.signal;
    this.#waiters.push(w);
    if (!this.#registered) {
      try {
        this.#host.ops.chanWaitBegin(this.#id, this.#onWake ??= () => this.#serve());
      } catch (err) {
        this.#giveUp(w, err);
        return;
      }
      this.#registered = true;
    }
    // Registered first, then looked at again: a send that missed the
    // registration published before this look (native/channel.hpp, the waiter pairing).
    this.#serve();
    if (!this.#waiters.includes(w)) return;
    if (timeout !== undefined) {
      w.timer = setTimeout(() => {
        this.#giveUp(w, poolError(codes.TIMEOUT, `No handle arrived in the channel${this.#host.where} within ${timeout} ms`));
      }, timeout);
    }
    if (signal) {
      w.onAbort = () => this.#giveUp(w, signal.reason);
      signal.addEventListener('abort', w.onAbort, { once: true });
    }
  }

  static {
    waitFor = (ch, resolve, reject, signal) => {
      if (signal.aborted) return reject(signal.reason);
      ch.#wait({ resolve, reject, timer: undefined, signal, onAbort: undefined }, undefined);
    };
  }

  /**
   * No more sends, in any thread: `send` throws ERR_OBJPOOL_CLOSED from now
   * on. What is in the channel can still be received; then `receive`
   * returns -1, `receiveAsync` rejects with ERR_OBJPOOL_CLOSED and
   * `for await` ends. The pool's close() closes its channels too, and takes
   * back (and releases) what they hold.
   */
  close(): void {
    this.#host.ops.chanClose(this.#id);
    this.#serve();
  }

  /** Receives until the channel is closed and empty. */
  async *[Symbol.asyncIterator](): AsyncGenerator<number, void, undefined> {
    for (;;) {
      let h: number;
      try {
        h = await this.receiveAsync();
      } catch (err) {
        // Rejected as closed: the channel was closed and empty when the
        // waiter was served. Only holes can follow (a send that claimed a
        // cell as it closed publishes one), so `drained` may read false
        // again for a moment: ask nothing more, it is the end.
        if ((err as { code?: string }).code === codes.CLOSED) return;
        throw err;
      }
      yield h;
    }
  }

  // Serves the waiters in order while handles come; rejects them once the
  // channel is closed and empty.
  #serve(): void {
    const waiters = this.#waiters;
    while (waiters.length > 0) {
      let h: number;
      try {
        h = this.receive();
      } catch (err) {
        for (const w of [...waiters]) this.#giveUp(w, err);
        break;
      }
      if (h < 0) {
        if (this.#drained()) for (const w of [...waiters]) this.#giveUp(w, this.#closedError());
        break;
      }
      const w = waiters[0]!;
      this.#settle(w);
      w.resolve(h);
    }
    if (waiters.length === 0) this.#unregister();
  }

  // Closed, and every handle sent has been received (or taken back by the pool's close).
  #drained(): boolean {
    const c = this.#words;
    // A closed channel is the MPMC queue (close() promotes it); a promotion
    // still under way is not drained (its conversion may bring handles).
    return (Atomics.load(c, A) & CLOSED) !== 0 && Atomics.load(c, MODE) === MPMC && Atomics.load(c, ENQ) === Atomics.load(c, DEQ);
  }

  #closedError(): Error {
    return poolError(codes.CLOSED, `The channel${this.#host.where} is closed`);
  }

  #unregister(): void {
    if (!this.#registered) return;
    this.#registered = false;
    this.#host.ops.chanWaitEnd(this.#id);
  }

  #settle(w: Waiter): void {
    const i = this.#waiters.indexOf(w);
    if (i >= 0) this.#waiters.splice(i, 1);
    if (w.timer !== undefined) clearTimeout(w.timer);
    if (w.onAbort) w.signal!.removeEventListener('abort', w.onAbort);
    if (this.#waiters.length === 0) this.#unregister();
  }

  #giveUp(w: Waiter, reason: unknown): void {
    this.#settle(w);
    w.reject(reason);
  }
}

// ---- the hot path ---------------------------------------------------------
//
// Two queues over the channel's words, as in native/channel.hpp (Channel),
// which the batch calls and C++ threads use on the same memory:
//   - the ring, while this instance is the channel's only sender (receiver):
//     a send writes its value (plain) and publishes it with one
//     compare-exchange of the ring's enqueue position; a receive reads that
//     position (an Atomics load) only when what it saw last is used up, and
//     frees the cell with one compare-exchange of its dequeue position;
//   - Vyukov's bounded MPMC queue, once a second sender or receiver came
//     (the channel is then promoted for good: channel.hpp, "The ring").
// Atomics calls cost 6-17 ns each whatever their kind, so the count is the
// cost: a ring send makes 2 (the state word's compare-exchange, the
// publish), a ring receive 1 (the free) plus a load per batch of what it
// found; an MPMC send 6, an MPMC receive 3.
//
// Memory orders (Atomics are sequentially consistent; each plain access says
// what orders it):
//   - ring: the value words are plain: written before the compare-exchange
//     that publishes them and read after the Atomics load that saw that
//     position; a sender overwrites a cell only after an Atomics load of the
//     dequeue position that the receiver's free (after its read) moved past.
//     Each endpoint reads its own position with a plain load: only it moves
//     the position (others set flags, which its compare-exchange checks).
//   - MPMC: every access to a position, a seq word and the attention word is
//     an Atomics operation (the Dekker pairings in channel.hpp need no
//     more); the value words are plain as above, ordered by the cell's seq.
//
// worker.terminate() stops a thread at a JS function entry, a loop
// back-edge, or an Atomics call (measured: a send stopped at the
// Atomics.store that publishes its cell in 12 of 150 terminations). A cell
// claimed and never published would stall the channel for good, and an
// object taken and never handed over would be lost. So between claiming a
// cell (or, on the ring, putting an object in flight or reading a cell) and
// finishing with it, a call says what it is doing in the view's own memory
// (`mem`: this thread's alone, plain stores, no call between the claim and
// them); the binding's teardown of a stopped thread finishes the call from
// there (native/channels.cc, repair_channels). The batch calls are native
// and cannot be cut.

const S_CHAN = native.memSendWord, S_POS = S_CHAN + 1, S_HANDLE = S_CHAN + 2, S_RING = native.memSendRingWord;
const R_CHAN = native.memRecvWord, R_POS = R_CHAN + 1, R_HANDLE = R_CHAN + 2, R_RING = native.memRecvRingWord;

// Which queue an instance's send (receive) uses: 0 not known yet, RING while
// it holds the sender (receiver) role, QUEUE once the channel is promoted.
const UNKNOWN = 0, RING = 1, QUEUE = 2;

// The first call of an instance's send (receive): the ring if it takes (or
// holds) the role, else the channel is promoted. 0 (UNKNOWN) only when a
// promotion does not finish (forged memory): the call reports full (empty).
function choosePath(c: Int32Array, roleWord: number, role: number, promote: (id: number) => boolean, id: number): number {
  // An Atomics load: a channel seen promoted is then seen converted (the
  // promoter's release store of the mode), and so is one promote() returns for.
  if (Atomics.load(c, MODE) !== MPMC) {
    const holder = Atomics.compareExchange(c, roleWord, 0, role);
    if (holder === 0 || holder === role) return RING;
    if (!promote(id)) return UNKNOWN;
  }
  return QUEUE;
}

function makeSend(c: Int32Array, mask: number, host: ChannelHost, ext: object, id: number, role: number): (handle: number) => boolean {
  const { state, capacity, ops, where, untrack, mem } = host;
  const settle = ops.chanSettle, promote = ops.chanPromote;
  const cap = mask + 1, ringBase = CELLS + 2 * cap;
  let path = UNKNOWN;
  // The ring's dequeue position as this sender last loaded it (never ahead
  // of the real one): room is looked up again only when it shows none, or
  // when the enqueue position is not where this closure left it (`sent`:
  // the instance's sendMany moved it, and `freed` may be a lap or more
  // behind, which positions modulo 2^28 cannot tell).
  let freed = 0, sent = -1;

  // Vyukov's send; `marked`: the object is already in flight (a ring send
  // that found the channel promoted), so the ownership check is done.
  const queueSend = (h: number, marked: boolean): boolean => {
    let pos = c[ENQ]!; // plain: a guess, validated by the compare-exchange
    let i: number;
    for (;;) {
      i = CELLS + ((pos & mask) << 1);
      const d = (Atomics.load(c, i) - pos) | 0;
      if (d === 0) {
        const seen = Atomics.compareExchange(c, ENQ, pos, (pos + 1) | 0);
        if (seen === pos) break;
        pos = seen;
      } else if (d < 0) {
        return unsent(h, marked); // full
      } else {
        // Another sender moved on. The position not moving means forged
        // memory (a seq ahead of every position): full, not a spin forever.
        const now = Atomics.load(c, ENQ);
        if (now === pos) return unsent(h, marked);
        pos = now;
      }
    }
    // The cell is ours (plain stores: this thread's own words; see above).
    mem[S_RING] = 0;
    mem[S_POS] = pos;
    mem[S_HANDLE] = h;
    mem[S_CHAN] = id;
    if ((Atomics.load(c, A) & CLOSED) !== 0) {
      // Closed since the check above: a receiver may have seen the channel
      // closed and drained, and nothing may arrive after that (channel.hpp,
      // send_checked). A hole; the handle stays the caller's. The view's
      // memory says so first: a teardown that finishes this publish
      // (repair_channels) publishes what S_HANDLE holds, and in an
      // unchecked pool no state word tells it the object stayed here.
      mem[S_HANDLE] = HOLE;
      // plain: the object is in flight in no cell, so only this thread can
      // reach it; its next reader gets the handle by a hand-off.
      if (marked && state !== null) state[h] = TAKEN;
      c[i + 1] = HOLE;
      Atomics.store(c, i, (pos + 1) | 0);
      mem[S_CHAN] = 0;
      if (Atomics.load(c, A) > CLOSED) settle(id);
      throw poolError(codes.CLOSED, `The channel${where} is closed`);
    }
    if (!marked && state !== null && Atomics.compareExchange(state, h, TAKEN, IN_FLIGHT) !== TAKEN) {
      // Another thread sent or pushed it since the check: a hole, which
      // receivers skip (S_HANDLE as above; here its state word says so too).
      mem[S_HANDLE] = HOLE;
      c[i + 1] = HOLE;
      Atomics.store(c, i, (pos + 1) | 0);
      mem[S_CHAN] = 0;
      // As after any publish: a receiver that looked while this cell was
      // claimed (and found the cells behind it blocked), or a pool close
      // that stopped at it, is owed a wake-up or a take-back.
      if (Atomics.load(c, A) > CLOSED) settle(id);
      throw notSendable(h, state, where);
    }
    c[i + 1] = h; // plain: published by the Atomics.store of the seq word
    Atomics.store(c, i, (pos + 1) | 0);
    mem[S_CHAN] = 0;
    // Receivers wait, or the pool closed meanwhile: native code wakes them
    // (through the wake word: only this channel's waiters), or gives the
    // channel's objects back to the pool.
    if (Atomics.load(c, A) > CLOSED) settle(id);
    if (untrack !== null) untrack(h);
    return true;
  };

  // Not sent after all: a marked object is the caller's again (plain: it
  // is in flight in no cell, so only this thread can reach it), and the
  // view's memory forgets the call.
  const unsent = (h: number, marked: boolean): false => {
    if (marked && state !== null) state[h] = TAKEN;
    mem[S_CHAN] = 0;
    return false;
  };

  const send = (h: number): boolean => {
    if (typeof h !== 'number' || (h >>> 0) !== h || h >= capacity) throw badHandle(h, capacity);
    // Plain loads (hints, to refuse early; the decisions are made
    // atomically later): the closed flag (a stale 0 is caught by the ring's
    // compare-exchange, a closed channel being promoted, or by the queue's
    // load after its claim) and the object's state (this thread's own write
    // if it popped or received the object, or ordered by the hand-off that
    // gave it the handle; a stale TAKEN is caught by the compare-exchange).
    if ((c[A]! & CLOSED) !== 0) throw poolError(codes.CLOSED, `The channel${where} is closed`);
    if (state !== null && state[h] !== TAKEN) throw notSendable(h, state, where);
    if (path !== RING && (path === QUEUE || (path = choosePath(c, SENDER, role, promote, id)) !== RING)) {
      return path === QUEUE ? queueSend(h, false) : false;
    }
    let v = c[RENQ]!; // plain: this sender's own position (see above); the flags are checked by the compare-exchange
    let marked = false;
    if (v >= 0) ring: {
      const e = v & RING_POS;
      if (e !== sent || ((e - freed) & RING_POS) >= cap) {
        // An Atomics load: the receiver read the cells it freed before it
        // moved this position; they are overwritten only after this.
        const dv = Atomics.load(c, RDEQ);
        if (dv < 0) break ring; // promoted
        freed = dv & RING_POS;
        if (((e - freed) & RING_POS) >= cap) return false; // full
      }
      // The call, in the view's memory first (plain: see above): a stop
      // after the state's compare-exchange gives the object back to the pool.
      mem[S_RING] = 1;
      mem[S_POS] = e;
      mem[S_HANDLE] = h;
      mem[S_CHAN] = id;
      if (state !== null && Atomics.compareExchange(state, h, TAKEN, IN_FLIGHT) !== TAKEN) {
        mem[S_CHAN] = 0;
        throw notSendable(h, state, where);
      }
      marked = state !== null;
      c[ringBase + (e & mask)] = h; // plain: published by the compare-exchange below
      for (;;) {
        const seen = Atomics.compareExchange(c, RENQ, v, ((e + 1) & RING_POS) | (v & RING_WAIT));
        if (seen === v) break;
        // A flag changed: waiters came or left (try again with them), or
        // the channel was promoted. Another position is forged memory.
        if (seen < 0) break ring;
        if ((seen & RING_POS) !== e) return unsent(h, marked);
        v = seen;
      }
      mem[S_CHAN] = 0;
      sent = (e + 1) & RING_POS;
      if ((v & RING_WAIT) !== 0) settle(id); // receivers wait: wake them (native/channels.cc)
      if (untrack !== null) untrack(h);
      return true;
    }
    // Promoted (the Frozen bit): the MPMC queue from now on, once the
    // conversion is done; an object already marked goes as it is.
    if (!promote(id)) return unsent(h, marked);
    path = QUEUE;
    return queueSend(h, marked);
  };
  keepAlive.set(send, ext); // as for receive (see there)
  return send;
}
function makeReceive(c: Int32Array, mask: number, host: ChannelHost, ext: object, id: number, role: number): () => number {
  const { state, capacity, mem, ops } = host;
  const promote = ops.chanPromote;
  const cap = mask + 1, ringBase = CELLS + 2 * cap;
  let path = UNKNOWN;
  // The ring's enqueue position as this receiver last loaded it (never
  // ahead of the real one): cells before it are published. Trusted only
  // while the dequeue position is where this closure left it (`taken`; as
  // `sent` in send).
  let filled = 0, taken = -1;

  // A handle out of a cell this receive took: a hole, or a value only
  // forged memory holds (out of range, or an object not in flight), is
  // skipped (false). The state word: a plain load and store. The load comes
  // after the Atomics load that saw the cell published, which orders the
  // sender's compare-exchange to InFlight before it; only this receive took
  // the cell, so nothing else moves the object now (a push or send of it
  // fails while it is InFlight); the store reaches this thread's next push
  // of it in program order, another thread's through the hand-off that
  // gives it the handle. Two cells naming one object only come from forged
  // memory: two receivers may then both take it (as forged state words in
  // the pool's metadata could do); memory stays safe.
  const take = (h: number): boolean => {
    if ((h >>> 0) < capacity && (state === null || state[h] === IN_FLIGHT)) {
      if (state !== null) state[h] = TAKEN;
      mem[R_CHAN] = 0;
      return true;
    }
    mem[R_CHAN] = 0;
    return false;
  };

  const queueReceive = (): number => {
    let pos = c[DEQ]!; // plain: a guess, validated by the compare-exchange
    for (;;) {
      const i = CELLS + ((pos & mask) << 1);
      const d = (Atomics.load(c, i) - ((pos + 1) | 0)) | 0;
      if (d === 0) {
        const seen = Atomics.compareExchange(c, DEQ, pos, (pos + 1) | 0);
        if (seen === pos) {
          // The cell is ours (plain stores to `mem`: see above).
          mem[R_RING] = 0;
          mem[R_POS] = pos;
          mem[R_CHAN] = id;
          const h = c[i + 1]!; // plain: ordered after the Atomics.load that saw the seq
          mem[R_HANDLE] = h;
          Atomics.store(c, i, (pos + mask + 1) | 0);
          if (take(h)) return h;
          pos = (pos + 1) | 0;
        } else {
          pos = seen;
        }
      } else if (d < 0) {
        return -1; // empty
      } else {
        // As in send: the position not moving means forged memory.
        const now = Atomics.load(c, DEQ);
        if (now === pos) return -1;
        pos = now;
      }
    }
  };

  const receive = (): number => {
    if (path !== RING && (path === QUEUE || (path = choosePath(c, RECEIVER, role, promote, id)) !== RING)) {
      return path === QUEUE ? queueReceive() : -1;
    }
    // At most a lap of skipped values (forged memory), then empty for now.
    for (let skipped = 0; ; skipped++) {
      if (skipped === cap) return -1;
      const d = c[RDEQ]!; // plain: this receiver's own position (see above)
      if (d < 0) break; // promoted
      let n = (filled - d) & RING_POS;
      if (d !== taken || n === 0 || n > cap) {
        // An Atomics load: the values the sender published before it moved
        // this position are read after it.
        const e = Atomics.load(c, RENQ);
        if (e < 0) break; // promoted
        filled = e & RING_POS;
        n = (filled - d) & RING_POS;
        if (n === 0 || n > cap) return -1; // empty (or forged)
      }
      const h = c[ringBase + (d & mask)]!; // plain: published (see above)
      // The call, in the view's memory (plain: see above): a stop after the
      // compare-exchange below gives an object still in flight back to the pool.
      mem[R_RING] = 1;
      mem[R_POS] = d;
      mem[R_HANDLE] = h;
      mem[R_CHAN] = id;
      const seen = Atomics.compareExchange(c, RDEQ, d, (d + 1) & RING_POS);
      if (seen !== d) {
        mem[R_CHAN] = 0;
        if (seen < 0) break; // promoted: the value read goes with the conversion
        return -1; // forged
      }
      taken = (d + 1) & RING_POS;
      if (take(h)) return h;
    }
    // Promoted (the Frozen bit): the MPMC queue from now on, once the conversion is done.
    if (!promote(id)) return -1;
    path = QUEUE;
    return queueReceive();
  };
  // The closure holds the channel's native record: while it can run, its id
  // names this channel (ids are reused once a record is freed), the repair
  // of a call a stopped thread cut short finds it (repair_channels), and the
  // pool's close finds the channel. (`const { receive } = channel` must keep
  // working.)
  keepAlive.set(receive, ext);
  return receive;
}

// A process-shared channel's send and receive: one native call each (see
// the constructor). The closures hold the channel's record as above.
function makeProcessSend(host: ChannelHost, ext: object, id: number): (handle: number) => boolean {
  const { capacity, untrack } = host;
  const sendOne = host.ops.chanSendOne;
  const send = (h: number): boolean => {
    if (typeof h !== 'number' || (h >>> 0) !== h || h >= capacity) throw badHandle(h, capacity);
    if (!sendOne(id, h)) return false;
    if (untrack !== null) untrack(h);
    return true;
  };
  keepAlive.set(send, ext);
  return send;
}
function makeProcessReceive(host: ChannelHost, ext: object, id: number): () => number {
  const receiveOne = host.ops.chanReceiveOne;
  const receive = (): number => receiveOne(id);
  keepAlive.set(receive, ext);
  return receive;
}

function badHandle(handle: unknown, capacity: number): Error {
  if (typeof handle !== 'number') return invalidType('handle', 'of type number', handle);
  return outOfRange('handle', `an integer >= 0 and < ${capacity}`, handle);
}

function notSendable(h: number, state: Int32Array, where: string): Error {
  const s = Atomics.load(state, h);
  const why = s === IN_FLIGHT ? 'it is in a channel' : s === TAKEN ? 'it was sent or pushed by another thread meanwhile' : 'it is in the pool (never popped, or pushed back)';
  return poolError(codes.DOUBLE_PUSH, `Object ${h} cannot be sent${where}: ${why}`);
}
