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
  'objpool pop+push (checked)': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE });
    return { run(n) { for (let i = 0; i < n; i++) pool.push(pool.pop()); } };
  },
  'objpool pop+push (unchecked)': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE, checked: false });
    return { run(n) { for (let i = 0; i < n; i++) pool.push(pool.pop()); } };
  },
  'objpool slots=1 pop+push': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE, slots: 1 });
    return { run(n) { for (let i = 0; i < n; i++) pool.push(pool.pop()); } };
  },
  'objpool acquire+release (Buffer)': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE });
    return { run(n) { for (let i = 0; i < n; i++) pool.release(pool.acquire()); } };
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
  baseline: 'objpool pop+push (checked)',
  defaults: { ops: 2_000_000, rounds: 7 },
  async run({ ops, rounds }) {
    const { samples } = await require('../lib').measureAll(implementations, { ops, rounds });
    return { samples };
  },
};
