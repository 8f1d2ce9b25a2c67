'use strict';
const test = require('ava');
const { ObjectPool } = require('..');
const { takeAll, assertIntact } = require('./helpers');

test('new ObjectPool: every handle once, then empty', (t) => {
  const pool = new ObjectPool({ capacity: 64, objectSize: 100, slots: 4 });
  t.is(pool.capacity, 64);
  t.is(pool.objectSize, 100);
  t.is(pool.stride, 104, 'default align 8 rounds the stride up');
  t.is(pool.slots, 4);
  t.true(pool.checked);
  t.false(pool.closed);
  const got = [];
  for (let i = 0; i < 64; i++) got.push(pool.pop());
  t.deepEqual([...got].sort((a, b) => a - b), Array.from({ length: 64 }, (_, i) => i));
  t.is(pool.pop(), -1, 'empty is a value, not an error');
  for (const h of got) pool.push(h);
  assertIntact(t, pool);
});

test('default slots is the CPU count the OS reports', (t) => {
  const os = require('node:os');
  const pool = new ObjectPool({ capacity: 8, objectSize: 8 });
  t.is(pool.slots, os.availableParallelism());
});

test('LIFO: the object pushed last comes back first', (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 8, slots: 1 });
  const a = pool.pop();
  const b = pool.pop();
  pool.push(a);
  pool.push(b);
  t.is(pool.pop(), b);
  t.is(pool.pop(), a);
});

test('pop steals from other slots when the local one is empty', (t) => {
  // One object per slot: whichever CPU we run on, every object must be reachable.
  const pool = new ObjectPool({ capacity: 16, objectSize: 8, slots: 16 });
  t.is(takeAll(t, pool).length, 16);
  t.deepEqual(pool.stats().perSlot.length, 16);
});

test('align and stride', (t) => {
  const pool = new ObjectPool({ capacity: 3, objectSize: 100, align: 64 });
  t.is(pool.stride, 128);
  const a = pool.buffer(1);
  t.is(a.byteOffset, 128);
  t.is(a.length, 100);
  t.is(new ObjectPool({ capacity: 3, objectSize: 5, align: 1 }).stride, 5);
});

test('buffer(): zero-copy, cached, distinct memory per object', (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 16 });
  const h = pool.pop();
  const buf = pool.buffer(h);
  t.true(Buffer.isBuffer(buf));
  t.is(buf, pool.buffer(h), 'the same view each time');
  t.true(buf.buffer instanceof SharedArrayBuffer, 'the arena is shared memory');
  buf.fill(0xab);
  for (let i = 0; i < 4; i++) if (i !== h) t.false(pool.buffer(i).includes(0xab), `object ${i} untouched`);
  t.is(pool.buffer(h)[15], 0xab);
});

test('acquire/release round trip, also by a subarray starting at the object', (t) => {
  const pool = new ObjectPool({ capacity: 2, objectSize: 32, slots: 1 });
  const a = pool.acquire();
  const b = pool.acquire();
  t.truthy(a && b);
  t.is(pool.acquire(), null, 'null when empty');
  pool.release(a);
  pool.release(b.subarray(0, 10));
  assertIntact(t, pool);
  t.is(pool.handleOf(pool.buffer(1)), 1);
});

test('popMany/pushMany move batches, count limits them', (t) => {
  const pool = new ObjectPool({ capacity: 100, objectSize: 8, slots: 3 });
  const out = new Uint32Array(64);
  t.is(pool.popMany(out), 64);
  t.is(new Set(out).size, 64);
  const rest = new Uint32Array(64);
  t.is(pool.popMany(rest, 50), 36, 'only what is left');
  t.is(pool.popMany(rest.subarray(36)), 0);
  t.is(pool.pop(), -1);
  pool.pushMany(out, 10);
  t.is(pool.stats().available, 10);
  pool.pushMany(out.subarray(10));
  pool.pushMany(rest, 36);
  assertIntact(t, pool);
  t.is(pool.popMany(out, 0), 0);
  pool.pushMany(out, 0);
  assertIntact(t, pool);
});

test('stats() counts objects per slot without disturbing them', (t) => {
  const pool = new ObjectPool({ capacity: 10, objectSize: 8, slots: 2 });
  let s = pool.stats();
  t.deepEqual(s, { capacity: 10, available: 10, inUse: 0, cached: 0, waiting: 0, perSlot: [5, 5], closed: false,
    exhausted: 0, waits: 0, waitTimeouts: 0, waitAborts: 0, waitSeconds: 0, leaks: 0, released: 0, recovered: 0, recoveredMidOperation: 0, recoveredMidChannelCall: 0, repairedChannelCells: 0 });
  const held = [pool.pop(), pool.pop(), pool.pop()];
  s = pool.stats();
  t.is(s.available, 7);
  t.is(s.inUse, 3);
  t.is(s.perSlot.reduce((a, b) => a + b), 7);
  assertIntact(t, pool, held);
});

test('unchecked pools pop and push the same way', (t) => {
  const pool = new ObjectPool({ capacity: 32, objectSize: 8, checked: false });
  t.false(pool.checked);
  const got = takeAll(t, pool);
  t.is(got.length, 32);
});

test('init runs once per object, with its Buffer and handle, before the first pop', (t) => {
  const seen = [];
  const pool = new ObjectPool({
    capacity: 5, objectSize: 4, init: (obj, handle) => { seen.push(handle); obj.writeUInt32LE(1000 + handle); },
  });
  t.deepEqual(seen, [0, 1, 2, 3, 4]);
  const h = pool.pop();
  t.is(pool.buffer(h).readUInt32LE(0), 1000 + h);
});

test('an init that throws fails the construction with its own error', (t) => {
  const boom = new Error('init failed');
  t.throws(() => new ObjectPool({ capacity: 4, objectSize: 4, init: (_, h) => { if (h === 2) throw boom; } }), { is: boom });
});

test('fromBuffer carves floor(byteLength / stride) objects out of user memory', (t) => {
  const memory = new ArrayBuffer(1000);
  const pool = ObjectPool.fromBuffer(memory, { objectSize: 96, align: 32, slots: 2 });
  t.is(pool.stride, 96);
  t.is(pool.capacity, 10);
  const buf = pool.acquire();
  t.is(buf.buffer, memory, 'objects are views of the given memory');
  buf[0] = 7;
  t.is(new Uint8Array(memory)[buf.byteOffset], 7);
  pool.release(buf);
  assertIntact(t, pool);
  const shared = ObjectPool.fromBuffer(new SharedArrayBuffer(4096), { objectSize: 1024 });
  t.is(shared.capacity, 4);
  t.truthy(shared.descriptor);
});

test('fromBuffers uses one user object per entry', (t) => {
  const objects = [Buffer.alloc(10), new Uint8Array(10), new Uint8Array(new ArrayBuffer(30), 10, 10)];
  const pool = ObjectPool.fromBuffers(objects, { slots: 2 });
  t.is(pool.capacity, 3);
  t.is(pool.objectSize, 10);
  const seen = new Set();
  for (let i = 0; i < 3; i++) {
    const b = pool.acquire();
    const h = pool.handleOf(b);
    t.is(b.buffer, objects[h].buffer);
    t.is(b.byteOffset, objects[h].byteOffset);
    seen.add(h);
  }
  t.is(seen.size, 3);
  for (const h of seen) pool.release(objects[h]);
  assertIntact(t, pool);
});

test('require and the ESM import give the same class', async (t) => {
  const esm = await import('objpool');
  t.is(esm.ObjectPool, ObjectPool);
  t.is(typeof esm.default.ObjectPool, 'function');
});

test('popMany into an empty array returns 0, also as the first batch call of a fresh thread', async (t) => {
  const { Worker } = require('node:worker_threads');
  const pool = new ObjectPool({ capacity: 4, objectSize: 8 });
  const w = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const { ObjectPool } = require(${JSON.stringify(require.resolve('..'))});
    const pool = ObjectPool.attach(workerData);
    parentPort.postMessage([pool.popMany(new Uint32Array(0)), pool.popMany(new Uint32Array(4), 0)]);`, { eval: true, workerData: pool.descriptor });
  t.deepEqual(await new Promise((r) => w.once('message', r)), [0, 0]);
  await w.terminate();
});
