'use strict';
// The floor for handle channels: Vyukov's bounded MPMC queue of int32 values
// in a SharedArrayBuffer, in plain JS, with the channel's layout and the same
// Atomics (lib/channel.ts) but no pool, no ownership, no attention word.
const ENQ = 32, DEQ = 64, CELLS = 96; // word indices, as in the channel

class SabQueue {
  static create(capacity) {
    const sab = new SharedArrayBuffer((CELLS + 2 * capacity) * 4);
    const c = new Int32Array(sab);
    for (let i = 0; i < capacity; i++) c[CELLS + 2 * i] = i;
    return sab;
  }

  constructor(sab) {
    const c = new Int32Array(sab);
    const mask = (c.length - CELLS) / 2 - 1;
    // false when full
    this.send = (v) => {
      let pos = Atomics.load(c, ENQ);
      let i;
      for (;;) {
        i = CELLS + ((pos & mask) << 1);
        const d = (Atomics.load(c, i) - pos) | 0;
        if (d === 0) {
          const seen = Atomics.compareExchange(c, ENQ, pos, (pos + 1) | 0);
          if (seen === pos) break;
          pos = seen;
        } else if (d < 0) {
          return false;
        } else {
          pos = Atomics.load(c, ENQ);
        }
      }
      c[i + 1] = v;
      Atomics.store(c, i, (pos + 1) | 0);
      return true;
    };
    // -1 when empty
    this.receive = () => {
      let pos = Atomics.load(c, DEQ);
      for (;;) {
        const i = CELLS + ((pos & mask) << 1);
        const d = (Atomics.load(c, i) - ((pos + 1) | 0)) | 0;
        if (d === 0) {
          const seen = Atomics.compareExchange(c, DEQ, pos, (pos + 1) | 0);
          if (seen === pos) {
            const v = c[i + 1];
            Atomics.store(c, i, (pos + mask + 1) | 0);
            return v;
          }
          pos = seen;
        } else if (d < 0) {
          return -1;
        } else {
          pos = Atomics.load(c, DEQ);
        }
      }
    };
  }
}

// The goal for a channel with one sender and one receiver: a bare
// single-producer/single-consumer ring (Lamport's) of int32 values in a
// SharedArrayBuffer, in plain JS: each side keeps its own position and the
// other's as last loaded; a send writes its value (plain) and publishes
// with one Atomics.store, a receive loads the sender's position only when
// what it saw is used up and frees with one Atomics.store. One instance a
// thread; the sending thread's only sends, the receiving thread's only
// receives. No pool, no ownership, no promotion, no waiters.
const RENQ = 32, RDEQ = 64, RCELLS = 96;

class SabRing {
  static create(capacity) {
    return new SharedArrayBuffer((RCELLS + capacity) * 4);
  }

  constructor(sab) {
    const c = new Int32Array(sab);
    const cap = c.length - RCELLS, mask = cap - 1;
    let e = 0, freed = 0, d = 0, filled = 0;
    // false when full
    this.send = (v) => {
      if (((e - freed) | 0) >= cap) {
        freed = Atomics.load(c, RDEQ);
        if (((e - freed) | 0) >= cap) return false;
      }
      c[RCELLS + (e & mask)] = v; // plain: published by the store below
      e = (e + 1) | 0;
      Atomics.store(c, RENQ, e);
      return true;
    };
    // -1 when empty
    this.receive = () => {
      if (filled === d) {
        filled = Atomics.load(c, RENQ);
        if (filled === d) return -1;
      }
      const v = c[RCELLS + (d & mask)]; // plain: after the load that saw it published
      d = (d + 1) | 0;
      Atomics.store(c, RDEQ, d);
      return v;
    };
  }
}

// Spin-waits of the channel scenario: `idle = miss(idle)` after each failed
// try; after SPINS in a row the thread naps (a 50 us futex wait), so that a
// peer sharing its core (2 cores, 2 to 4 busy threads) gets to run.
const SPINS = 1 << 14;
const napWord = new Int32Array(new SharedArrayBuffer(4));
function miss(idle) {
  if (++idle < SPINS) return idle;
  Atomics.wait(napWord, 0, 0, 0.05);
  return 0;
}

module.exports = { SabQueue, SabRing, SPINS, miss };
