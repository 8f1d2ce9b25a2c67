// The public types of a pool, shared by the pool, its channels and the
// networking helpers: options, waiting, leases, release, stats, descriptors.
import type { LeakOptions } from './leaks';

/** Options of this thread's view of a pool: accepted by every constructor and by `attach()`. */
export interface ViewOptions {
  /**
   * Objects this thread may keep for itself, so that pop() and push() do not
   * cross into native code (0: none). Default: automatic, at most 64 and at
   * most capacity / (4 x slots), so 0 for small pools. All threads' caches
   * together hold at most a quarter of the pool, whatever their sizes.
   */
  cache?: number;
  /** Leak detection for acquire() and lease(); default off (or OBJPOOL_LEAKS=sample|all). */
  leaks?: LeakOptions;
}

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
  /** Zero each object when it is pushed back, from any thread (default false). */
  zero?: boolean;
  /** Called once for every object before the pool is usable (the kernel's objinit). */
  init?: (obj: Buffer, handle: number) => void;
  /** A name for errors, leak reports, metrics and events (1 to 256 characters); carried by the descriptor. */
  name?: string;
  /**
   * Put the pool in OS shared memory, so that other processes of this user
   * can use it (see `processDescriptor` and `ObjectPool.attachProcess()`);
   * what a process that dies held comes back to the pool. Linux only for
   * now; always checked. Default false.
   */
  processShared?: boolean;
}

/** Options of `popAsync()` and `acquireAsync()`. */
export interface WaitOptions {
  /** Gives up when aborted: the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Gives up after this many milliseconds: the promise rejects with ERR_OBJPOOL_TIMEOUT. */
  timeout?: number;
}

/** One object, for `using`: returned to the pool by `release()` or at scope exit. */
export interface Lease {
  readonly handle: number;
  readonly buffer: Buffer;
  /** Returns the object; a second call does nothing. */
  release(): void;
  [Symbol.dispose](): void;
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
  /** Objects in the pool now, every thread's cache included. */
  available: number;
  /** Objects handed out and not yet pushed back (or released, after close); the same in every thread. */
  inUse: number;
  /** Objects held in the caches of every thread. */
  cached: number;
  /** Pending popAsync()/acquireAsync() calls, in every thread. */
  waiting: number;
  /** Objects in each slot (not counting caches). */
  perSlot: number[];
  closed: boolean;
  // Counters since the pool was made, over every thread (kept in the shared metadata):
  /** Pops (pop, acquire, lease, popMany, popAsync's first try) that found the pool empty. */
  exhausted: number;
  /** popAsync()/acquireAsync() calls that had to wait. */
  waits: number;
  /** Waits that gave up on their timeout. */
  waitTimeouts: number;
  /** Waits that gave up on their signal. */
  waitAborts: number;
  /** Time spent in waits that have ended, in seconds. */
  waitSeconds: number;
  /** Leaks reported. */
  leaks: number;
  /** Objects released by close() so far. */
  released: number;
  /** Process-shared pools: objects taken back from processes that died (0 otherwise). */
  recovered: number;
  /** Of those, objects a process died with in the middle of a pool operation or a channel call. */
  recoveredMidOperation: number;
  /** Of those, objects a process died with in the middle of a channel call (a send before its publish, a receive after its take). */
  recoveredMidChannelCall: number;
  /** Process-shared pools: channel cells that dead processes' calls left half done, repaired (0 otherwise). */
  repairedChannelCells: number;
}

/**
 * Everything another process (or thread) needs to use a process-shared
 * pool: plain JSON, for `process.send()`, argv or an environment variable.
 * It names the pool's shared memory through a process that has it mapped;
 * only processes of the same user can open it.
 */
export interface ProcessDescriptor {
  readonly kind: 'objpool/process';
  readonly version: 1;
  /** A process that has the pool mapped (the one that made this descriptor). */
  readonly pid: number;
  /** Its file descriptor of the pool's memory. */
  readonly fd: number;
  /** 128 random bits, in hexadecimal, that the pool's memory must carry. */
  readonly token: string;
  readonly capacity: number;
  readonly objectSize: number;
  readonly stride: number;
  readonly slots: number;
  readonly zero: boolean;
  readonly name: string | null;
}

/**
 * Everything another thread needs to use the same pool: pass it through
 * `workerData` or `postMessage` (it is structured-cloneable) and call
 * `ObjectPool.attach()` there.
 */
export interface PoolDescriptor {
  readonly kind: 'objpool';
  readonly version: 3;
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
  readonly zero: boolean;
  /** Whether the pool's memory was given by the user (`fromBuffer`, `fromBuffers`). */
  readonly user: boolean;
  /** The pool's name, or null. */
  readonly name: string | null;
}
