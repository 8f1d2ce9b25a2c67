'use strict';
// Single thread: the cost of one pop+push pair against the N-API floor and
// what a Node user does without a pool. One op = one pair (or one allocation).
const { ObjectPool } = require('../..');
const testing = require('../../test/addon');
const genericPool = require('generic-pool');
const { MutexFreeList } = require('./mutex-list');

const SIZE = 4096;

// Each factory returns its own loop function, so every loop stays monomorphic.
const implementations = {
  // The pools use the automatic per-thread cache (64 objects here) unless
  // the name says otherwise.
  'objpool pop+push (checked)': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE });
    return { run(n) { for (let i = 0; i < n; i++) pool.push(pool.pop()); } };
  },
  'objpool pop+push (unchecked)': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE, checked: false });
    return { run(n) { for (let i = 0; i < n; i++) pool.push(pool.pop()); } };
  },
  'objpool acquire+release (Buffer)': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE });
    return { run(n) { for (let i = 0; i < n; i++) pool.release(pool.acquire()); } };
  },
  'objpool lease()+release()': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE });
    return { run(n) { for (let i = 0; i < n; i++) pool.lease().release(); } };
  },
  'objpool 48 pops then 48 pushes (per pair)': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE });
    const held = new Int32Array(48);
    return {
      run(n) {
        for (let i = 0; i < n; i += 48) {
          for (let k = 0; k < 48; k++) held[k] = pool.pop();
          for (let k = 0; k < 48; k++) pool.push(held[k]);
        }
      },
    };
  },
  'objpool acquire+release, leaks sample 1/128': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE, leaks: { sample: 1 / 128 } });
    return { run(n) { for (let i = 0; i < n; i++) pool.release(pool.acquire()); } };
  },
  'objpool acquire+release, leaks sample 1': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE, leaks: { sample: 1 } });
    return { scale: 8, run(n) { for (let i = 0; i < n; i++) pool.release(pool.acquire()); } };
  },
  'objpool pop+push, zero: true (4 KiB zeroed)': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE, zero: true });
    return { run(n) { for (let i = 0; i < n; i++) pool.push(pool.pop()); } };
  },
  'objpool pop+push (checked, cache: 0)': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE, cache: 0 });
    return { run(n) { for (let i = 0; i < n; i++) pool.push(pool.pop()); } };
  },
  'objpool pop+push (unchecked, cache: 0)': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE, checked: false, cache: 0 });
    return { run(n) { for (let i = 0; i < n; i++) pool.push(pool.pop()); } };
  },
  'objpool slots=1 pop+push (cache: 0)': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE, slots: 1, cache: 0 });
    return { run(n) { for (let i = 0; i < n; i++) pool.push(pool.pop()); } };
  },
  'no-op N-API call x2 (C napi_callback)': () => {
    const noop = testing.noop;
    return { run(n) { for (let i = 0; i < n; i++) { noop(); noop(i); } } };
  },
  'no-op N-API call x2 (node-addon-api)': () => {
    const noop = testing.noopWrapped;
    return { run(n) { for (let i = 0; i < n; i++) { noop(); noop(i); } } };
  },
  'JS array free list pop+push': () => {
    const list = Array.from({ length: 1024 }, (_, i) => i);
    return { run(n) { for (let i = 0; i < n; i++) list.push(list.pop()); } };
  },
  'Atomics-mutex SAB free list pop+push': () => {
    const list = new MutexFreeList(MutexFreeList.create(1024));
    return { run(n) { for (let i = 0; i < n; i++) list.push(list.pop()); } };
  },
  'Buffer.allocUnsafe(4096)': () => {
    const keep = new Array(16);
    return { scale: 16, run(n) { for (let i = 0; i < n; i++) keep[i & 15] = Buffer.allocUnsafe(SIZE); } };
  },
  'Buffer.alloc(4096)': () => {
    const keep = new Array(16);
    return { scale: 16, run(n) { for (let i = 0; i < n; i++) keep[i & 15] = Buffer.alloc(SIZE); } };
  },
  'Buffer.allocUnsafe(65536)': () => {
    const keep = new Array(16);
    return { scale: 64, run(n) { for (let i = 0; i < n; i++) keep[i & 15] = Buffer.allocUnsafe(65536); } };
  },
  'Buffer.alloc(65536)': () => {
    const keep = new Array(16);
    return { scale: 64, run(n) { for (let i = 0; i < n; i++) keep[i & 15] = Buffer.alloc(65536); } };
  },
  'new ArrayBuffer(4096)': () => {
    const keep = new Array(16);
    return { scale: 16, run(n) { for (let i = 0; i < n; i++) keep[i & 15] = new ArrayBuffer(SIZE); } };
  },
  'generic-pool acquire+release': () => {
    let next = 0;
    const pool = genericPool.createPool({ create: async () => Buffer.allocUnsafe(SIZE).fill(next++ & 255), destroy: async () => {} }, { max: 1024, min: 0 });
    return {
      scale: 200,
      async run(n) {
        for (let i = 0; i < n; i++) await pool.release(await pool.acquire());
      },
    };
  },
};

module.exports = {
  name: 'single',
  title: 'single thread: one pop+push pair (or one allocation) per op',
  baseline: 'JS array free list pop+push',
  defaults: { ops: 2_000_000, rounds: 7 },
  async run({ ops, rounds }) {
    const { samples } = await require('../lib').measureAll(implementations, { ops, rounds });
    return { samples };
  },
};
