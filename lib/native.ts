// The one module that owns the native surface: what the addon exports and
// how it is loaded. Everything else imports it from here.
import path = require('node:path');

/** Functions bound to one attached view of a pool (see native/addon.cc). */
export interface NativeOps {
  popMany(out: Uint32Array, count?: number): number;
  pushMany(handles: Uint32Array, count?: number): void;
  /** pop() that leaves the handle (or -1) in register[0]. */
  popReg(): void;
  /** push() of the handle in register[1] (range-checked again natively). */
  pushReg(): void;
  /** True for the one call, in any thread, that closed the pool. */
  close(): boolean;
  isClosed(): boolean;
  /** After close: takes objects out for release; returns how many. */
  drain(out: Uint32Array): number;
  perSlot(): number[];
  /** Runs `drain` on this thread whenever a push anywhere finds the pool closed. */
  watch(drain: () => void): void;
  unwatch(): void;
}

export interface NativeAddon {
  metaBytes(capacity: number, slots: number, checked: boolean): number;
  format(meta: Uint8Array, capacity: number, slots: number, objectSize: number, stride: number,
    align: number, checked: boolean, external: boolean): void;
  open(meta: Uint8Array, arena: Uint8Array | null, register: Int32Array): NativeOps;
  /** The address of a view's first byte: compares views across threads. */
  address(view: ArrayBufferView): number;
  readonly maxCapacity: number;
  readonly maxSlots: number;
  readonly maxAlign: number;
  /** Index of the closed flag in an Int32Array over the metadata. */
  readonly closedWord: number;
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
