// Reading and validating a pool's options: the shape of its objects, its
// slots and modes, and each thread's view options (cache, leak detection).
// Every bad value gets a coded error here, before any memory is allocated.
import os = require('node:os');
import { native } from './native';
import { checkInteger, invalidType, invalidValue } from './errors';
import { leakOptions, type LeakOptions } from './leaks';
import type { PoolOptions } from './types';

export const enum Mode {
  Own,      // new ObjectPool(): the pool's own SharedArrayBuffer arena
  Memory,   // fromBuffer(): the user's memory carved into objects
  Objects,  // fromBuffers(): one user object per entry
}

/** @internal */
export interface Parts {
  mode: Mode;
  /** A SharedArrayBuffer, or for a process-shared pool an ArrayBuffer over its segment. */
  meta: SharedArrayBuffer | ArrayBuffer;
  arena: ArrayBuffer | SharedArrayBuffer | null;
  objects: Uint8Array[] | null;
  objectSize: number;
  stride: number;
  capacity: number;
  slots: number;
  checked: boolean;
  zero: boolean;
  name: string | null;
  /** Made by attach(): another thread made the pool. */
  attached?: boolean;
  /** A process-shared pool's segment (see native/segment.hpp), else absent. */
  process?: ProcessPart;
}

/** @internal A process-shared pool's segment, as processCreate()/processAttach() give it. */
export interface ProcessPart {
  /** The native segment (an External): held by every view opened with it. */
  segment: object;
  pid: number;
  fd: number;
  token: string;
  /** This process's owner tag in the pool's state words. */
  owner: number;
  /** This process made the pool (and so closes it). */
  creator: boolean;
}

function defaultSlots(): number {
  const n = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.min(Math.max(1, n), native.maxSlots);
}

export function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object') throw invalidType(name, 'of type object', value);
  return value as Record<string, unknown>;
}

export function readShape(options: Record<string, unknown>) {
  const objectSize = checkInteger('options.objectSize', options.objectSize, 1, 0xffffffff);
  const align = options.align === undefined ? 8 : checkInteger('options.align', options.align, 1, native.maxAlign);
  if ((align & (align - 1)) !== 0) throw invalidValue('options.align', 'must be a power of two', align);
  const stride = Math.ceil(objectSize / align) * align;
  if (stride > 0xffffffff) throw invalidValue('options.objectSize', 'rounded up to options.align must be < 2**32', objectSize);
  return { objectSize, align, stride, ...readCommon(options) };
}

export function readCommon(options: Record<string, unknown>) {
  const slots = options.slots === undefined ? defaultSlots() : checkInteger('options.slots', options.slots, 1, native.maxSlots);
  if (options.checked !== undefined && typeof options.checked !== 'boolean') throw invalidType('options.checked', 'of type boolean', options.checked);
  const checked = options.checked !== false;
  if (options.zero !== undefined && typeof options.zero !== 'boolean') throw invalidType('options.zero', 'of type boolean', options.zero);
  const zero = options.zero === true;
  if (options.init !== undefined && typeof options.init !== 'function') throw invalidType('options.init', 'of type function', options.init);
  return { slots, checked, zero, init: options.init as PoolOptions['init'], name: readName('options.name', options.name) };
}

export function readName(what: string, name: unknown): string | null {
  if (name === undefined || name === null) return null;
  if (typeof name !== 'string') throw invalidType(what, 'of type string', name);
  if (name.length < 1 || name.length > 256) throw invalidValue(what, 'must have 1 to 256 characters', name);
  return name;
}

/** The most objects a thread may cache. */
const MAX_CACHE = 1 << 16;

/** @internal ViewOptions, validated. */
export interface View {
  cache: number | undefined;
  leaks: Required<LeakOptions> | null;
  /** `leaks` came from the options, not from OBJPOOL_LEAKS. */
  leaksGiven: boolean;
}

export function readView(name: string, options: Record<string, unknown>): View {
  const cache = options.cache === undefined ? undefined : checkInteger(`${name}.cache`, options.cache, 0, MAX_CACHE);
  return { cache, leaks: leakOptions(`${name}.leaks`, options.leaks), leaksGiven: options.leaks !== undefined };
}

// Leak detection needs state words: a report checks that the object is
// still out. Asked for explicitly on an unchecked pool it is an error; from
// OBJPOOL_LEAKS it is left off there.
export function leaksFor(view: View, checked: boolean): View['leaks'] {
  if (checked || view.leaks === null) return view.leaks;
  if (!view.leaksGiven) return null;
  throw invalidValue('options.leaks', 'needs a checked pool (checked: true): a report checks that the object is still out', view.leaks);
}

/** The automatic cache size: a bounded share of the pool per thread (see DESIGN). */
export function autoCache(capacity: number, slots: number): number {
  return Math.min(64, Math.floor(capacity / (4 * slots)));
}
