// What a pool is made of (its Parts: metadata, arena or objects, shape), for
// each way to make one: its own arena, the user's memory, the user's
// objects, or another thread's descriptor. Every input is validated here,
// with a coded error, before any memory is allocated or native code forms
// a pointer; the metadata of a new pool is formatted here too.
import { native } from './native';
import { codes, invalidType, invalidValue, poolError, checkInteger } from './errors';
import { Mode, type Parts, type View, checkObject, readCommon, readName, readShape, readView } from './options';
import { callOf, typedArrayProto } from './hotpath';
import type { PoolDescriptor, PoolOptions, ProcessDescriptor, ViewOptions } from './types';

/** A pool's parts, the init callback to run over its objects, and this thread's view options. */
export interface Made {
  parts: Parts;
  init: PoolOptions['init'];
  view: View;
}

function allocate<T>(what: string, bytes: number, make: (n: number) => T): T {
  try {
    return make(bytes);
  } catch (err) {
    if (err instanceof RangeError) throw poolError(codes.NO_MEMORY, `Cannot allocate ${bytes} bytes for the pool ${what}: ${err.message}`);
    throw err;
  }
}

// The intrinsics (see lib/hotpath.ts), taken at load.
export const bufferOf = callOf.bind(Object.getOwnPropertyDescriptor(typedArrayProto, 'buffer')!.get!) as (o: ArrayBufferView) => ArrayBufferLike;
export const byteOffsetOf = callOf.bind(Object.getOwnPropertyDescriptor(typedArrayProto, 'byteOffset')!.get!) as (o: ArrayBufferView) => number;
export const arrayBufferByteLengthOf = callOf.bind(Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength')!.get!) as (b: unknown) => number;
export const sharedByteLengthOf = callOf.bind(Object.getOwnPropertyDescriptor(SharedArrayBuffer.prototype, 'byteLength')!.get!) as (b: unknown) => number;

/**
 * Whether a view's memory is a SharedArrayBuffer, by the intrinsic's brand
 * check (instanceof can be fooled from JS: a replaced prototype or
 * Symbol.hasInstance), so that it agrees with what the binding sees.
 */
export function inSharedMemory(o: Uint8Array): boolean {
  try {
    sharedByteLengthOf(bufferOf(o));
    return true;
  } catch {
    return false;
  }
}

/**
 * A real Uint8Array (or Buffer): not an object that only inherits from its
 * prototype, nor a Proxy of one, whose getters throw uncoded errors.
 */
export function isUint8Array(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && ArrayBuffer.isView(v);
}

function outOfRangeCapacity(n: number, name = 'capacity'): RangeError {
  return Object.assign(new RangeError(`The value of "${name}" is out of range. It must be >= 1 and <= ${native.maxCapacity}. Received ${n}`), { code: codes.OUT_OF_RANGE });
}

function newMeta(capacity: number, slots: number, checked: boolean): SharedArrayBuffer {
  return allocate('metadata', native.metaBytes(capacity, slots, checked), (n) => new SharedArrayBuffer(n));
}

function format(p: Parts, align: number): Parts {
  native.format(new Uint8Array(p.meta), p.capacity, p.slots, p.objectSize, p.stride, align, p.checked, p.mode === Mode.Objects, p.zero);
  return p;
}

/** `new ObjectPool(options)`: an arena of its own, in shared memory. */
export function ownParts(options: unknown): Made {
  const o = checkObject('options', options);
  const capacity = checkInteger('options.capacity', o.capacity, 1, native.maxCapacity);
  const shape = readShape(o);
  const view = readView('options', o);
  const processShared = o.processShared; // read once: a getter may answer differently each time
  if (processShared !== undefined && typeof processShared !== 'boolean') throw invalidType('options.processShared', 'of type boolean', processShared);
  if (processShared === true) {
    // Owner tags live in the state words: a process-shared pool is checked.
    if (!shape.checked) throw invalidValue('options.checked', 'must be true for a process-shared pool: what a dead process held is found by its state words', false);
    if (capacity * shape.stride > Number.MAX_SAFE_INTEGER) throw poolError(codes.NO_MEMORY, 'The arena is too large');
    const r = native.processCreate(capacity, shape.slots, shape.objectSize, shape.stride, shape.align, shape.zero);
    const parts: Parts = { mode: Mode.Own, meta: r.meta, arena: r.arena, objects: null, objectSize: shape.objectSize, stride: shape.stride,
      capacity, slots: shape.slots, checked: true, zero: shape.zero, name: shape.name,
      process: { segment: r.segment, pid: r.pid, fd: r.fd, token: r.token, owner: r.owner, creator: true } };
    return { parts, init: shape.init, view };
  }
  const arena = allocate('arena', capacity * shape.stride, (n) => new SharedArrayBuffer(n));
  const parts = format({ mode: Mode.Own, meta: newMeta(capacity, shape.slots, shape.checked), arena, objects: null,
    objectSize: shape.objectSize, stride: shape.stride, capacity, slots: shape.slots, checked: shape.checked, zero: shape.zero, name: shape.name }, shape.align);
  return { parts, init: shape.init, view };
}

/** `ObjectPool.fromBuffer(memory, options)`: the user's memory carved into objects. */
export function memoryParts(memory: unknown, options: unknown): Made {
  const isShared = memory instanceof SharedArrayBuffer;
  if (!isShared && !(memory instanceof ArrayBuffer)) throw invalidType('memory', 'an instance of ArrayBuffer or SharedArrayBuffer', memory);
  const o = checkObject('options', options);
  const shape = readShape(o);
  const view = readView('options', o);
  const capacity = Math.floor(memory.byteLength / shape.stride);
  if (capacity < 1) throw invalidValue('memory', `must hold at least one object of ${shape.stride} bytes (byteLength ${memory.byteLength})`, memory);
  if (capacity > native.maxCapacity) throw outOfRangeCapacity(capacity);
  const parts = format({ mode: Mode.Memory, meta: newMeta(capacity, shape.slots, shape.checked), arena: memory, objects: null,
    objectSize: shape.objectSize, stride: shape.stride, capacity, slots: shape.slots, checked: shape.checked, zero: shape.zero, name: shape.name }, shape.align);
  return { parts, init: shape.init, view };
}

/** `ObjectPool.fromBuffers(objects, options)`: one user object per entry, all of one length, none overlapping. */
export function objectsParts(objects: unknown, options: unknown): Made {
  if (!Array.isArray(objects)) throw invalidType('objects', 'an instance of Array', objects);
  if (objects.length < 1 || objects.length > native.maxCapacity) throw outOfRangeCapacity(objects.length, 'objects.length');
  const list: Uint8Array[] = [];
  for (let i = 0; i < objects.length; i++) {
    const obj: unknown = objects[i];
    if (!isUint8Array(obj)) throw invalidType(`objects[${i}]`, 'an instance of Uint8Array', obj);
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
  const common = readCommon({ slots: o.slots, checked: o.checked, zero: o.zero, name: o.name });
  const view = readView('options', o);
  const parts = format({ mode: Mode.Objects, meta: newMeta(list.length, common.slots, common.checked), arena: null, objects: list,
    objectSize: size, stride: size, capacity: list.length, slots: common.slots, checked: common.checked, zero: common.zero, name: common.name }, 1);
  return { parts, init: undefined, view };
}

/**
 * `ObjectPool.attachProcess(descriptor, options)`: a process-shared pool,
 * mapped from the process the descriptor names. Plain JSON is checked here;
 * the binding checks the memory itself (its owner and mode, its token, its
 * header against its real size) before it forms a pointer into it.
 */
export function processParts(descriptor: unknown, options: ViewOptions): Made & { bad: (why: string) => Error } {
  const bad = (why: string) => poolError(codes.BAD_DESCRIPTOR, `Invalid process descriptor: ${why}`);
  if (descriptor === null || typeof descriptor !== 'object') throw bad('not an object');
  // Each field read once (a getter may answer differently each time), then
  // only these copies are used.
  const { kind, version, pid, fd, token, capacity, objectSize, stride, slots, zero, name: given } =
    descriptor as Partial<Record<keyof ProcessDescriptor, unknown>>;
  const view = readView('options', checkObject('options', options));
  if (kind !== 'objpool/process' || version !== 1) throw bad('not an objpool process descriptor of version 1');
  const int = (v: unknown, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
  if (!int(pid, 2 ** 22) || pid < 1) throw bad('pid must be a process ID');
  if (!int(fd, 2 ** 20)) throw bad('fd must be a file descriptor number');
  if (typeof token !== 'string' || !/^[0-9a-f]{32}$/.test(token)) throw bad('token must be 32 lowercase hexadecimal digits');
  if (!int(capacity, 2 ** 32) || !int(objectSize, 2 ** 32) || !int(stride, 2 ** 32) || !int(slots, 2 ** 32) || typeof zero !== 'boolean') {
    throw bad('capacity, objectSize, stride, slots and zero must be given');
  }
  const name = descriptorName(bad, given);
  if (!native.processSupported()) throw poolError(codes.UNSUPPORTED, `Process-shared pools are not available on ${process.platform} yet (Linux only)`);
  // The shape is the binding's copy, checked against the memory's real size
  // at attach: the live header, which any process of the pool can write,
  // is not read here.
  const r = native.processAttach(pid, fd, token);
  if (capacity !== r.capacity || slots !== r.slots || objectSize !== r.objectSize || stride !== r.stride || zero !== r.zero) {
    throw bad('its sizes do not match the pool metadata');
  }
  const parts: Parts = { mode: Mode.Own, meta: r.meta, arena: r.arena, objects: null, objectSize, stride, capacity, slots, checked: true,
    zero, name, attached: true, process: { segment: r.segment, pid: r.pid, fd: r.fd, token: r.token, owner: r.owner, creator: false } };
  return { parts, init: undefined, view, bad };
}

// A descriptor's name, or the descriptor's error.
function descriptorName(bad: (why: string) => Error, name: unknown): string | null {
  try {
    return readName('descriptor.name', name);
  } catch {
    throw bad('name must be a string of 1 to 256 characters, or null');
  }
}

/**
 * `ObjectPool.attach(descriptor, options)`: another thread's pool, checked
 * against its own metadata; `bad(why)` makes the ERR_OBJPOOL_BAD_DESCRIPTOR
 * error for what the binding refuses later.
 */
export function descriptorParts(descriptor: unknown, options: ViewOptions): Made & { bad: (why: string) => Error } {
  const d = checkObject('descriptor', descriptor) as Partial<Record<keyof PoolDescriptor, unknown>>;
  const view = readView('options', checkObject('options', options));
  const bad = (why: string) => poolError(codes.BAD_DESCRIPTOR, `Invalid pool descriptor: ${why}`);
  if (d.kind !== 'objpool' || d.version !== native.layoutVersion) throw bad(`not an objpool descriptor of layout version ${native.layoutVersion}`);
  if (!(d.meta instanceof SharedArrayBuffer)) throw bad('meta must be a SharedArrayBuffer');
  if (d.arena !== null && !(d.arena instanceof SharedArrayBuffer)) throw bad('arena must be a SharedArrayBuffer or null');
  if (d.meta.byteLength < native.headsOffset) throw bad('meta is truncated');
  // The header is the authority; native.open() validates it against the
  // real byte lengths before anything else reads it. Plain reads: format()
  // wrote it before the descriptor left its thread (postMessage orders
  // that), and it never changes; a forged one is caught by open().
  const header = new Uint32Array(d.meta, 0, 8);
  const capacity = header[2]!, slots = header[3]!, objectSize = header[4]!, stride = header[5]!, flags = header[7]!;
  const checked = (flags & 1) !== 0, external = (flags & 2) !== 0, zero = (flags & 4) !== 0;
  if (d.capacity !== capacity || d.slots !== slots || d.objectSize !== objectSize || d.stride !== stride || d.checked !== checked) {
    throw bad('its sizes do not match the pool metadata');
  }
  let objects: Uint8Array[] | null = null;
  if (external) {
    if (d.arena !== null || !Array.isArray(d.objects) || d.objects.length !== capacity) throw bad('objects do not match the pool');
    objects = d.objects.map((obj: unknown) => {
      if (!isUint8Array(obj) || obj.byteLength !== objectSize) throw bad('objects do not match the pool');
      return obj;
    });
  } else if (d.arena === null || d.objects !== null) {
    throw bad('arena does not match the pool');
  } else if (d.arena.byteLength < capacity * stride) {
    throw bad('arena is truncated');
  }
  const name = descriptorName(bad, d.name);
  const parts: Parts = { mode: external ? Mode.Objects : d.user === true ? Mode.Memory : Mode.Own, meta: d.meta,
    arena: d.arena as SharedArrayBuffer | null, objects, objectSize, stride, capacity, slots, checked, zero, name, attached: true };
  return { parts, init: undefined, view, bad };
}
