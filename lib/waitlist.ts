// The readers of a pool that wait for an object to come back (see
// lib/net.ts): one wait on the pool per thread, handed to the readers in
// order. A module of its own so that tests can drive it without sockets.
import type { ObjectPool } from './pool';

/** A reader that waits: tryResume(h) takes object h (or pops one when h is -1); false if it got none. */
export interface Waiting {
  tryResume(h?: number): boolean;
}

// Waits for an object to come back to the pool (pushed by any thread, JS or
// native) and resolves with it, now the caller's; no polling. Aborted when
// the waiting reader goes away.
function nextObject(pool: ObjectPool, signal: AbortSignal): Promise<number> {
  return pool.popAsync({ signal });
}

// The readers of one pool (in this thread) that wait for an object, first
// come first served. Objects pushed back on this thread are handed out at
// once (serve()); those from other threads arrive through one nextObject()
// wait, which runs only while some reader waits.
export class Waitlist {
  readonly #pool: ObjectPool;
  readonly #readers = new Set<Waiting>();
  #wait: AbortController | null = null;

  constructor(pool: ObjectPool) {
    this.#pool = pool;
  }

  add(reader: Waiting): void {
    this.#readers.add(reader);
    this.#arm();
  }

  delete(reader: Waiting): void {
    this.#readers.delete(reader);
    if (this.#readers.size === 0) this.#disarm();
  }

  /** Hands objects now in the pool to waiting readers, in order. */
  serve(): void {
    for (const reader of this.#readers) {
      if (!reader.tryResume()) break;
      this.#readers.delete(reader);
    }
    if (this.#readers.size === 0) this.#disarm();
  }

  #arm(): void {
    if (this.#wait || this.#readers.size === 0) return;
    const wait = (this.#wait = new AbortController());
    nextObject(this.#pool, wait.signal).then(
      (h) => {
        // This wait may have been disarmed, and another armed, before this
        // ran (the promise settled first): that one stays the current wait.
        if (this.#wait === wait) this.#wait = null;
        const first = this.#readers.values().next();
        if (first.done) {
          this.#pool.push(h);
        } else {
          this.#readers.delete(first.value);
          first.value.tryResume(h);
        }
        this.serve();
        this.#arm();
      },
      () => {
        // Aborted (nobody waits any more), or the pool closed: each waiting
        // reader finds out on its next pop.
        if (this.#wait !== wait) return;
        this.#wait = null;
        this.serve();
      },
    );
  }

  #disarm(): void {
    this.#wait?.abort();
    this.#wait = null;
  }
}

const waitlists = new WeakMap<ObjectPool, Waitlist>();

export function waitlist(pool: ObjectPool): Waitlist {
  let list = waitlists.get(pool);
  if (!list) waitlists.set(pool, (list = new Waitlist(pool)));
  return list;
}

