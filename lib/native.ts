// The one module that owns the native surface: what the addon exports and
// how it is loaded. Everything else imports it from here.
import path = require('node:path');

/** Functions bound to one attached view of a pool (see native/addon.cc). */
export interface NativeOps {
  popMany(out: Uint32Array, count?: number): number;
  pushMany(handles: Uint32Array, count?: number): void;
  /** pop() that leaves the handle (or -1) in memory word 0. */
  popReg(): void;
  /** push() of the handle in memory word 1 (range-checked again natively). */
  pushReg(): void;
  /** push() of the handle in memory word 1, already moved Taken -> Free by the caller. */
  pushFree(): void;
  /** pushMany() of objects the caller already moved Taken -> Free. */
  pushManyFree(handles: Uint32Array, count: number): void;
  /** Zeroes the object in memory word 1 (shared arenas only). */
  zeroReg(): void;
  /** Fills the empty cache with up to half its room; returns the new count. */
  refill(): number;
  /** Gives the cache's older half back to the pool; returns the new count. */
  spill(): number;
  /** Gives the whole cache back to the pool. */
  flush(): void;
  /** True for the one call, in any thread, that closed the pool; empties every thread's cache. */
  close(): boolean;
  /** After close: takes objects out for release, each once; `out` has room for capacity. */
  drain(out: Uint32Array): number;
  /** True once a drain met an object linked twice (unchecked misuse). */
  corrupt(): boolean;
  stats(): { perSlot: number[]; cached: number; released: number; waiting: number };
  /** Runs `drain` on this thread whenever a push anywhere finds the pool closed. */
  watch(drain: () => void): void;
  unwatch(): void;
  /** Registers a waiter (or returns an object that came back meanwhile); `onWake` runs on pushes. */
  waitBegin(onWake: () => void): number;
  waitEnd(): void;
}

export interface NativeAddon {
  metaBytes(capacity: number, slots: number, checked: boolean): number;
  format(meta: Uint8Array, capacity: number, slots: number, objectSize: number, stride: number,
    align: number, checked: boolean, external: boolean, zero: boolean): void;
  open(meta: Uint8Array, arena: Uint8Array | null, memory: Int32Array, cache: number): NativeOps;
  /** The address of a view's first byte: compares views across threads. */
  address(view: ArrayBufferView): number;
  readonly maxCapacity: number;
  readonly maxSlots: number;
  readonly maxAlign: number;
  /** Index of the attention word (closed bit + 2 x waiters) in an Int32Array over the metadata. */
  readonly attentionWord: number;
  readonly releasedWord: number;
  /** Byte offset of the slot heads; the links and state words follow them. */
  readonly headsOffset: number;
  readonly lineBytes: number;
  readonly layoutVersion: number;
}

function load(): NativeAddon {
  // A specific build (a sanitizer build, say): OBJPOOL_ADDON=/path/to/objpool.node
  const forced = process.env.OBJPOOL_ADDON;
  if (forced) return require(path.resolve(forced)) as NativeAddon;
  const root = path.join(__dirname, '..', 'build');
  const tried: string[] = [];
  for (const dir of ['Release', 'Debug']) {
    const file = path.join(root, dir, 'objpool.node');
    try {
      return require(file) as NativeAddon;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
      tried.push(file);
    }
  }
  throw new Error(`objpool: the native addon is not built (looked for ${tried.join(', ')}); run \`npm install\` or \`npm run build\``);
}

export const native: NativeAddon = load();
