'use strict';
// Several sizes (PoolSet): acquire(n)+release of a random size against one
// pool's acquire+release, against Buffer.allocUnsafe(n), and against the
// floor a user would write: power-of-two buckets of Buffers in JS arrays
// (.NET ArrayPool's shape, without its per-core stacks). One op = one
// acquire and one release (or one allocation).
const { ObjectPool, PoolSet } = require('../..');

const CLASSES = [{ objectSize: 512, capacity: 4096 }, { objectSize: 4096, capacity: 1024 }, { objectSize: 65536, capacity: 256 }];
const SIZES = CLASSES.map((c) => c.objectSize);

// 4096 sizes drawn once (a fixed seed: every run draws the same), read in turn.
function draws(pick) {
  let seed = 0x9e3779b9;
  const rand = () => ((seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
  return Int32Array.from({ length: 4096 }, () => pick(rand));
}
const classSize = draws((r) => SIZES[Math.floor(r() * SIZES.length)]);
const anySize = draws((r) => 1 + Math.floor(r() * 65536));
const bigSize = draws((r) => 4096 + Math.floor(r() * (65536 - 4096 + 1)));

// Power-of-two buckets in JS arrays: rent(n) gives a Buffer of the bucket's
// size (at least n), allocating when its bucket is empty; ret(buf) puts it
// back by its length. No ownership checks, one thread.
class Buckets {
  constructor(min, max) {
    this.minLog = Math.log2(min);
    this.lists = [];
    for (let s = min; s <= max; s *= 2) this.lists.push([]);
  }
  rent(n) {
    const i = Math.max(0, 32 - Math.clz32(n - 1) - this.minLog);
    return this.lists[i].pop() ?? Buffer.allocUnsafeSlow(2 ** (i + this.minLog));
  }
  ret(buf) {
    this.lists[31 - Math.clz32(buf.length) - this.minLog].push(buf);
  }
}

const set = () => new PoolSet({ classes: CLASSES });
const implementations = {
  'one pool acquire+release (4 KiB)': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: 4096 });
    return { run(n) { for (let i = 0; i < n; i++) pool.release(pool.acquire()); } };
  },
  'PoolSet acquire(n)+release, n a random class size': () => {
    const s = set();
    return { run(n) { for (let i = 0; i < n; i++) s.release(s.acquire(classSize[i & 4095])); } };
  },
  'PoolSet acquire(n)+release, n random 1 B..64 KiB': () => {
    const s = set();
    return { run(n) { for (let i = 0; i < n; i++) s.release(s.acquire(anySize[i & 4095])); } };
  },
  // The floor of any set of pools in JS: the same calls on three separate
  // pools, the one of the drawn size taken by index (no size lookup).
  'three pools, the drawn one acquire()+release(), n a random class size': () => {
    const pools = CLASSES.map((c) => new ObjectPool(c));
    const which = classSize.map((n) => SIZES.indexOf(n));
    return { run(n) { for (let i = 0; i < n; i++) { const p = pools[which[i & 4095]]; p.release(p.acquire()); } } };
  },
  'three pools, the drawn one pop()+push(), n a random class size': () => {
    const pools = CLASSES.map((c) => new ObjectPool(c));
    const which = classSize.map((n) => SIZES.indexOf(n));
    return { run(n) { for (let i = 0; i < n; i++) { const p = pools[which[i & 4095]]; p.push(p.pop()); } } };
  },
  'one pool pop+push (4 KiB)': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: 4096 });
    return { run(n) { for (let i = 0; i < n; i++) pool.push(pool.pop()); } };
  },
  'PoolSet pop(n)+push, n a random class size': () => {
    const s = set();
    return { run(n) { for (let i = 0; i < n; i++) s.push(s.pop(classSize[i & 4095])); } };
  },
  'JS power-of-two buckets rent(n)+return, n a random class size': () => {
    const b = new Buckets(512, 65536);
    return { run(n) { for (let i = 0; i < n; i++) b.ret(b.rent(classSize[i & 4095])); } };
  },
  'JS power-of-two buckets rent(n)+return, n random 1 B..64 KiB': () => {
    const b = new Buckets(512, 65536);
    return { run(n) { for (let i = 0; i < n; i++) b.ret(b.rent(anySize[i & 4095])); } };
  },
  'PoolSet acquire(n)+release, n random 4..64 KiB': () => {
    const s = set();
    return { run(n) { for (let i = 0; i < n; i++) s.release(s.acquire(bigSize[i & 4095])); } };
  },
  'Buffer.allocUnsafe(n), n random 4..64 KiB': () => {
    const keep = new Array(16);
    return { scale: 32, run(n) { for (let i = 0; i < n; i++) keep[i & 15] = Buffer.allocUnsafe(bigSize[i & 4095]); } };
  },
};

module.exports = {
  name: 'poolset',
  title: 'several sizes (PoolSet of 512 B, 4 KiB, 64 KiB): one acquire and release per op',
  baseline: 'one pool acquire+release (4 KiB)',
  defaults: { ops: 2_000_000, rounds: 7 },
  async run({ ops, rounds }) {
    const { samples } = await require('../lib').measureAll(implementations, { ops, rounds });
    return { samples };
  },
};
