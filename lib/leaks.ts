// Leak detection (after Netty's ResourceLeakDetector): a sampled acquire()
// or lease() hands out a Buffer of its own and remembers where it was
// called; if that Buffer is garbage-collected while its object is still out,
// the object can never come back, and the acquiring stack is reported.
import { checkNumber, invalidType } from './errors';

/** How leaks are looked for. */
export interface LeakOptions {
  /** The share of acquire()/lease() calls that are tracked, 0 .. 1 (default 1/128). */
  sample?: number;
  /** Called with each leak found; by default a process warning with code OBJPOOL_LEAK. */
  onLeak?: (report: LeakReport) => void;
}

/** A pooled object whose Buffer was garbage-collected while the object was still out. */
export interface LeakReport {
  handle: number;
  /** Milliseconds between the acquire and the collection of its Buffer. */
  heldMs: number;
  /** The stack of the acquiring call. */
  stack: string;
  /** The pool's name, or null. */
  pool?: string | null;
}

interface Record {
  handle: number;
  at: number;
  trace: { stack?: string };
}

/** The leak options to use: the given ones, else OBJPOOL_LEAKS=sample|all from the environment, else none. */
export function leakOptions(name: string, value: unknown): Required<LeakOptions> | null {
  if (value === undefined) {
    const env = process.env.OBJPOOL_LEAKS;
    if (env === 'all') return { sample: 1, onLeak: warn };
    if (env === 'sample') return { sample: 1 / 128, onLeak: warn };
    return null;
  }
  if (value === null || typeof value !== 'object') throw invalidType(name, 'of type object', value);
  const o = value as LeakOptions;
  const sample = o.sample === undefined ? 1 / 128 : checkNumber(`${name}.sample`, o.sample, 0, 1);
  if (o.onLeak !== undefined && typeof o.onLeak !== 'function') throw invalidType(`${name}.onLeak`, 'of type function', o.onLeak);
  return { sample, onLeak: o.onLeak ?? warn };
}

function warn(r: LeakReport): void {
  process.emitWarning(`objpool: object ${r.handle}${r.pool ? ` of pool ${JSON.stringify(r.pool)}` : ''} was never returned: its Buffer was garbage-collected ${r.heldMs} ms after it was acquired at\n${r.stack}`,
    { type: 'ObjectPoolLeakWarning', code: 'OBJPOOL_LEAK' });
}

/**
 * The tracked objects of one pool instance. `isOut(handle)` tells at report
 * time whether the object is still out (its state word, in checked pools).
 */
export class LeakTracker {
  readonly #sample: number;
  readonly #onLeak: (r: LeakReport) => void;
  readonly #live = new Map<number, Record>();
  readonly #registry: FinalizationRegistry<Record>;
  #tick = 0;

  constructor(options: Required<LeakOptions>, isOut: (handle: number) => boolean) {
    this.#sample = options.sample;
    this.#onLeak = options.onLeak;
    this.#registry = new FinalizationRegistry((r: Record) => {
      if (this.#live.get(r.handle) !== r) return;
      this.#live.delete(r.handle);
      if (!isOut(r.handle)) return;
      const stack = (r.trace.stack ?? '').split('\n').slice(1).join('\n');
      this.#onLeak({ handle: r.handle, heldMs: Math.round(performance.now() - r.at), stack });
    });
  }

  /** Whether this acquire is sampled: every 1/sample-th call, deterministically spread. */
  sampled(): boolean {
    if (this.#sample === 0) return false;
    this.#tick += this.#sample;
    if (this.#tick < 1) return false;
    this.#tick -= 1;
    return true;
  }

  /** Tracks `buf` (a Buffer made for this acquire alone) for object `handle`, acquired by `caller`. */
  track(handle: number, buf: Buffer, caller: Function): void {
    const trace: { stack?: string } = {};
    Error.captureStackTrace(trace, caller);
    const r: Record = { handle, at: performance.now(), trace };
    this.#live.set(handle, r);
    this.#registry.register(buf, r, r);
  }

  /** The object came back: stop tracking it. */
  untrack(handle: number): void {
    const r = this.#live.get(handle);
    if (r === undefined) return;
    this.#live.delete(handle);
    this.#registry.unregister(r);
  }

  get size(): number {
    return this.#live.size;
  }
}
