// The one module that owns the native surface: what the addon exports and
// how it is loaded. Everything else imports it from here.
import fs = require('node:fs');
import path = require('node:path');

/** Functions bound to one attached view of a pool (see native/addon.cc, and native/binding.hpp for the files beside it). */
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
  /** zeroReg() then pushFree(), in one call. */
  zeroPushFree(): void;
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
  stats(): { perSlot: number[]; cached: number; released: number; waiting: number; repairedChannelCells: number; recoveredMidChannelCall: number };
  /** Runs `drain` on this thread whenever a push anywhere finds the pool closed. */
  watch(drain: () => void): void;
  unwatch(): void;
  /** Runs `fn` on this thread once a close by any thread reaches this view (held weakly). */
  onClose(fn: () => void): void;
  /** `owner` is what views() lists for this view (held weakly); once per view. */
  own(owner: object): void;
  /** Registers a waiter (or returns an object that came back meanwhile); `onWake` runs on pushes. */
  waitBegin(onWake: () => void): number;
  waitEnd(): void;
  /** Validates a channel's memory and registers it with the pool (a fresh one gets the pool's tag; another must carry it): the record (an external that keeps it open while held), the id that names it below, and the instance's role token (native/channel.hpp, "The ring"). */
  openChannel(memory: Int32Array, fresh: boolean): [record: object, channel: number, role: number];
  /** A process-shared pool's channel `index` (native/segment.hpp): as above, and an ArrayBuffer over its memory. */
  openChannel(index: number, fresh: false): [record: object, channel: number, role: number, memory?: ArrayBuffer];
  /** A new channel in a process-shared pool's memory: its index in the pool's channel table. */
  chanCreate(capacity: number): number;
  /** One handle, natively (a process-shared channel's send): true, false when full. */
  chanSendOne(channel: number, handle: number): boolean;
  /** One handle, natively (a process-shared channel's receive): -1 when empty. */
  chanReceiveOne(channel: number): number;
  /** Sends a prefix of the handles (all checked first); how many. */
  chanSendMany(channel: number, handles: Uint32Array, count?: number): number;
  /** Takes up to count handles into `out`; how many. */
  chanReceiveMany(channel: number, out: Uint32Array, count?: number): number;
  /** Makes the channel the MPMC queue for good (a second sender or receiver came); true once it is (false: forged memory). */
  chanPromote(channel: number): boolean;
  /** After a JS send found the channel's attention word set: wakes receivers, or gives objects back to a closed pool. */
  chanSettle(channel: number): void;
  /** No more sends; wakes waiting receivers. */
  chanClose(channel: number): void;
  /** This view waits for the channel: `onWake` (the view's wake-up callback) runs on sends. */
  chanWaitBegin(channel: number, onWake: () => void): void;
  chanWaitEnd(channel: number): void;
}

/** A process-shared pool's segment, for lib/parts.ts. */
export interface ProcessSegment {
  segment: object;
  meta: ArrayBuffer;
  arena: ArrayBuffer;
  pid: number;
  fd: number;
  token: string;
  owner: number;
  /** The pool's shape, as the binding checked and copied it. */
  capacity: number;
  slots: number;
  objectSize: number;
  stride: number;
  zero: boolean;
}

export interface NativeAddon {
  metaBytes(capacity: number, slots: number, checked: boolean): number;
  format(meta: Uint8Array, capacity: number, slots: number, objectSize: number, stride: number,
    align: number, checked: boolean, external: boolean, zero: boolean): void;
  open(meta: Uint8Array, arena: Uint8Array | null, memory: Int32Array, cache: number, name?: string, objects?: readonly Uint8Array[], segment?: object): NativeOps;
  /** A new process-shared pool's segment, formatted (native/segment.hpp). */
  processCreate(capacity: number, slots: number, objectSize: number, stride: number, align: number, zero: boolean): ProcessSegment;
  /** The segment of a process descriptor, mapped (the same one if this process has it already). */
  processAttach(pid: number, fd: number, token: string): ProcessSegment;
  /** Whether this build has process-shared pools. */
  processSupported(): boolean;
  /** The objects given to own() by this thread's live views of every pool, in the order the views were opened. */
  views(): object[];
  /** The address of a view's first byte: compares views across threads. */
  address(view: ArrayBufferView): number;
  readonly maxCapacity: number;
  readonly maxSlots: number;
  readonly maxAlign: number;
  /** Index of the attention word (closed bit + 2 x waiters) in an Int32Array over the metadata. */
  readonly attentionWord: number;
  readonly releasedWord: number;
  /** Byte offset of the counters (u64 each; native/layout.hpp, Counter). */
  readonly countersOffset: number;
  /** Byte offset of the slot heads; the links and state words follow them. */
  readonly headsOffset: number;
  readonly lineBytes: number;
  readonly layoutVersion: number;
  /** Bytes of a channel of `capacity` handles (rounded up to a power of two). */
  channelBytes(capacity: number): number;
  /** Writes a new channel of `capacity` (a power of two) handles into `memory`. */
  channelFormat(memory: Uint8Array, capacity: number): void;
  readonly chanVersion: number;
  readonly chanMaxCapacity: number;
  /** Channels a process-shared pool holds at most (its channel table). */
  readonly processChannels: number;
  /** Word indices in a channel's memory (native/channel.hpp, chan_layout). */
  readonly chanAttentionWord: number;
  readonly chanEnqueueWord: number;
  readonly chanDequeueWord: number;
  readonly chanCellsWord: number;
  readonly chanModeWord: number;
  readonly chanSenderRoleWord: number;
  readonly chanReceiverRoleWord: number;
  readonly chanRingEnqueueWord: number;
  readonly chanRingDequeueWord: number;
  /** Word indices in a view's own memory (native/binding.hpp, MemWord): a send and a receive in progress, the cache. */
  readonly memSendWord: number;
  readonly memRecvWord: number;
  readonly memSendRingWord: number;
  readonly memRecvRingWord: number;
  readonly memCacheBase: number;
}

interface Loaded {
  addon: NativeAddon;
  file: string;
}

/** The package root: the folder with package.json, build/ and prebuilds/. */
const root = path.join(__dirname, '..');

// The loader is node-gyp-build: it takes the first .node file in build/Release,
// then build/Debug (a source build: npm run build, npm run build:cmake, or the
// install script where no prebuild fits), then the best match in
// prebuilds/<platform>-<arch>/ (the published package's binaries: see README,
// Install). A
// development checkout therefore runs its own build, and an installed package
// runs the prebuild unless `npm install` had to compile.
function load(): Loaded {
  // A specific build (a sanitizer build, say): OBJPOOL_ADDON=/path/to/objpool.node
  const forced = process.env.OBJPOOL_ADDON;
  if (forced) {
    const file = path.resolve(forced);
    return { addon: require(file) as NativeAddon, file };
  }
  const gypBuild = require('node-gyp-build') as { resolve(dir: string): string };
  let file: string;
  try {
    file = gypBuild.resolve(root);
  } catch (err) {
    throw Object.assign(new Error(notFound()), { code: 'ERR_OBJPOOL_NO_ADDON', cause: err });
  }
  try {
    return { addon: require(file) as NativeAddon, file };
  } catch (err) {
    throw Object.assign(new Error(`objpool: the native addon ${file} does not load: ${(err as Error).message}\n` +
      '`npm rebuild objpool` (install scripts on) compiles one from source when this one does not load ' +
      '(needs a C++20 compiler, Python 3 and make)'), { code: 'ERR_OBJPOOL_NO_ADDON', cause: err });
  }
}

/** What the loader looked for, for the error when nothing fits. */
function notFound(): string {
  const list = (dir: string) => {
    try {
      const files = fs.readdirSync(dir).filter((f) => f.endsWith('.node'));
      return files.length ? files.join(', ') : 'no .node file';
    } catch {
      return 'missing';
    }
  };
  const prebuilds = path.join(root, 'prebuilds');
  const tuple = `${process.platform}-${process.arch}`;
  const tried = [
    `${path.join(root, 'build', 'Release')} (${list(path.join(root, 'build', 'Release'))})`,
    `${path.join(root, 'build', 'Debug')} (${list(path.join(root, 'build', 'Debug'))})`,
    `${path.join(prebuilds, tuple)} (${list(path.join(prebuilds, tuple))}; ` +
      `wanted an N-API build for ${tuple}${process.platform === 'linux' ? `, ${isMusl() ? 'musl' : 'glibc'}` : ''})`,
  ];
  return `objpool: no native addon for ${tuple} (Node ${process.version}). Looked in:\n  ${tried.join('\n  ')}\n` +
    'Prebuilt binaries exist for linux-x64 and linux-arm64 (glibc and musl), darwin-x64, darwin-arm64 and win32-x64; ' +
    'elsewhere `npm install` compiles the addon ' +
    '(install scripts on; needs a C++20 compiler, Python 3 and make): run `npm rebuild objpool`, ' +
    'or `npm run build` in a checkout. OBJPOOL_ADDON=/path/to/objpool.node loads a given build.';
}

function isMusl(): boolean {
  return fs.existsSync('/etc/alpine-release');
}

const loaded = load();

export const native: NativeAddon = loaded.addon;

/** The absolute path of the addon file that was loaded (a build, a prebuild, or OBJPOOL_ADDON). */
export const addonPath: string = loaded.file;
