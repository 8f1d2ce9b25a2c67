'use strict';
// zero: true against user memory that user code can reach: objects whose
// methods and getters are the user's, and arenas that shrink.
const test = require('ava');
const { ObjectPool } = require('..');
const { assertIntact } = require('./helpers');

// A user object whose own `fill` and `byteLength` run pool calls: a push that
// zeroes it must not let them in between reading and writing its cache.
for (const cache of [0, 4]) {
  test(`zero: true, fromBuffers: an object's own fill and byteLength run no user code inside push (cache: ${cache})`, (t) => {
    const objects = Array.from({ length: 8 }, () => new Uint8Array(16));
    let pool = null;
    const taken = [];
    const hostile = objects[0];
    const reenter = () => { if (pool !== null) { const h = pool.pop(); if (h >= 0) taken.push(h); } };
    hostile.fill = function (...args) { reenter(); return Uint8Array.prototype.fill.apply(this, args); };
    Object.defineProperty(hostile, 'byteLength', { get() { reenter(); return 16; } });
    pool = ObjectPool.fromBuffers(objects, { slots: 1, zero: true, cache });
    const out = [];
    for (let h; (h = pool.pop()) !== -1;) out.push(h);
    t.true(out.includes(0));
    // Leave a few in the pool (and in the cache): a re-entrant pop would find them.
    for (const h of out) if (h !== 0 && h < 5) pool.push(h);
    objects[0].set([1, 2, 3]);
    pool.push(0);
    t.deepEqual(taken, [], 'no pool call ran inside push');
    t.true(Uint8Array.prototype.every.call(objects[0], (b) => b === 0), 'object 0 was zeroed');
    assertIntact(t, pool, out.filter((h) => h >= 5));
    for (const h of out) if (h >= 5) pool.push(h);
    assertIntact(t, pool);
  });
}

test('zero: true, fromBuffers: pushMany zeroes through the intrinsic, never an object\'s own fill', (t) => {
  const objects = Array.from({ length: 4 }, () => new Uint8Array(16));
  let pool = null;
  let calls = 0;
  objects[1].fill = function () { calls++; pool.pop(); return this; };
  pool = ObjectPool.fromBuffers(objects, { slots: 1, zero: true, cache: 0 });
  const out = new Uint32Array(4);
  t.is(pool.popMany(out), 4);
  for (const o of objects) o.set([7, 7, 7]);
  pool.pushMany(out);
  t.is(calls, 0);
  t.true(objects.every((o) => Uint8Array.prototype.every.call(o, (b) => b === 0)));
  assertIntact(t, pool);
});

// A resizable ArrayBuffer given to fromBuffer: after it shrinks, the objects
// that still lie inside it are zeroed as before; those past its end have no
// bytes to zero.
for (const cache of [0, 4]) {
  test(`zero: true, fromBuffer over a resizable ArrayBuffer that shrinks: objects still inside are zeroed (cache: ${cache})`, (t) => {
    const size = 64;
    const memory = new ArrayBuffer(8 * size, { maxByteLength: 8 * size });
    const pool = ObjectPool.fromBuffer(memory, { objectSize: size, slots: 1, zero: true, cache });
    const out = [];
    for (let h; (h = pool.pop()) !== -1;) out.push(h);
    t.is(out.length, 8);
    memory.resize(5 * size + 10); // objects 0..4 remain whole; 5 is cut, 6 and 7 are gone
    for (const h of [0, 1, 2, 3, 4]) new Uint8Array(memory, h * size, size).fill(0xaa);
    for (const h of out) pool.push(h);
    const bytes = new Uint8Array(memory);
    t.true(bytes.every((b) => b === 0), 'every byte of the objects still in the memory was zeroed');
    assertIntact(t, pool);
  });
}

// User objects all in shared memory: the binding zeroes them, in the call
// that stores the push (no JS runs between the state change and the store).
for (const cache of [0, 4]) {
  test(`zero: true, fromBuffers over shared memory: push and pushMany zero natively (cache: ${cache})`, (t) => {
    const mem = new SharedArrayBuffer(8 * 32);
    const objects = Array.from({ length: 8 }, (_, i) => new Uint8Array(mem, i * 32, 32));
    let calls = 0;
    for (const o of objects) o.fill = function () { calls++; return this; };
    const pool = ObjectPool.fromBuffers(objects, { slots: 1, zero: true, cache });
    const out = new Uint32Array(8);
    t.is(pool.popMany(out), 8);
    new Uint8Array(mem).fill(0xee);
    pool.pushMany(out.subarray(0, 4));
    for (const h of out.subarray(4)) pool.push(h);
    t.is(calls, 0, 'no object\'s own fill was called');
    t.true(new Uint8Array(mem).every((b) => b === 0), 'every byte zeroed');
    assertIntact(t, pool);
  });
}

// Whether user objects are in shared memory is decided by the intrinsic brand
// check, as the binding sees it: JS that fools instanceof builds a pool all
// the same (zeroed in JS), instead of a refusal from the binding.
test('zero: true, fromBuffers: memory that only claims to be shared is zeroed in JS, as before', (t) => {
  const objects = [0, 1].map(() => {
    const ab = new ArrayBuffer(16);
    Object.setPrototypeOf(ab, SharedArrayBuffer.prototype);
    return new Uint8Array(ab);
  });
  const pool = ObjectPool.fromBuffers(objects, { slots: 1, zero: true, cache: 0 });
  const h = pool.pop();
  Uint8Array.prototype.fill.call(objects[h], 5);
  pool.push(h);
  t.true(Uint8Array.prototype.every.call(objects[h], (b) => b === 0));
  assertIntact(t, pool);
});
