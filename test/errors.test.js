'use strict';
const test = require('ava');
const { ObjectPool, codes } = require('..');
const { assertIntact } = require('./helpers');

const typeErr = { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' };
const rangeErr = { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' };
const valueErr = { instanceOf: RangeError, code: 'ERR_INVALID_ARG_VALUE' };

test('constructor options are validated with Node-style codes', (t) => {
  t.throws(() => new ObjectPool(), typeErr);
  t.throws(() => new ObjectPool(null), typeErr);
  t.throws(() => new ObjectPool({ objectSize: 8 }), typeErr);
  t.throws(() => new ObjectPool({ capacity: '8', objectSize: 8 }), typeErr);
  t.throws(() => new ObjectPool({ capacity: 0, objectSize: 8 }), rangeErr);
  t.throws(() => new ObjectPool({ capacity: 2 ** 24 + 1, objectSize: 8 }), rangeErr);
  t.throws(() => new ObjectPool({ capacity: 1.5, objectSize: 8 }), rangeErr);
  t.throws(() => new ObjectPool({ capacity: NaN, objectSize: 8 }), rangeErr);
  t.throws(() => new ObjectPool({ capacity: 4, objectSize: 0 }), rangeErr);
  t.throws(() => new ObjectPool({ capacity: 4, objectSize: 8, align: 3 }), valueErr);
  t.throws(() => new ObjectPool({ capacity: 4, objectSize: 8, align: 0 }), rangeErr);
  t.throws(() => new ObjectPool({ capacity: 4, objectSize: 8, slots: 0 }), rangeErr);
  t.throws(() => new ObjectPool({ capacity: 4, objectSize: 8, slots: 1e9 }), rangeErr);
  t.throws(() => new ObjectPool({ capacity: 4, objectSize: 8, checked: 'yes' }), typeErr);
  t.throws(() => new ObjectPool({ capacity: 4, objectSize: 8, init: 5 }), typeErr);
  t.throws(() => new ObjectPool({ capacity: 4, objectSize: 0xffffffff, align: 2 }), valueErr);
});

test('an arena too large for memory is ERR_OBJPOOL_NO_MEMORY', (t) => {
  t.throws(() => new ObjectPool({ capacity: 2 ** 24, objectSize: 0xfffffff8 }), { code: 'ERR_OBJPOOL_NO_MEMORY' });
});

test('push: bad handles are coded errors and leave the pool intact', (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 8 });
  const held = [pool.pop(), pool.pop()];
  t.throws(() => pool.push(), typeErr);
  t.throws(() => pool.push('1'), typeErr);
  t.throws(() => pool.push(null), typeErr);
  t.throws(() => pool.push({ valueOf: () => held[0] }), typeErr);
  t.throws(() => pool.push(1n), typeErr);
  for (const bad of [-1, 8, 1.5, NaN, Infinity, -Infinity, 2 ** 32, -0.5]) t.throws(() => pool.push(bad), rangeErr, String(bad));
  assertIntact(t, pool, held);
});

test('double push and push of a never-popped handle: ERR_OBJPOOL_DOUBLE_PUSH, pool intact', (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 8, slots: 2 });
  const a = pool.pop();
  const b = pool.pop();
  pool.push(a);
  const err = t.throws(() => pool.push(a), { instanceOf: Error, code: codes.DOUBLE_PUSH });
  t.regex(err.message, /not out of the pool/);
  const neverPopped = [0, 1, 2, 3, 4, 5, 6, 7].find((h) => h !== b);
  t.throws(() => pool.push(neverPopped), { code: 'ERR_OBJPOOL_DOUBLE_PUSH' });
  assertIntact(t, pool, [b]);
  pool.push(b);
  assertIntact(t, pool);
});

test('pushMany is all or nothing', (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 8 });
  const out = new Uint32Array(4);
  pool.popMany(out);
  t.throws(() => pool.pushMany(Uint32Array.of(out[0], out[1], out[0])), { code: 'ERR_OBJPOOL_DOUBLE_PUSH' });
  t.throws(() => pool.pushMany(Uint32Array.of(out[0], 99)), rangeErr);
  t.throws(() => pool.pushMany([out[0]]), typeErr);
  t.throws(() => pool.pushMany(new Int32Array(1)), typeErr);
  t.throws(() => pool.pushMany(out, 5), rangeErr);
  t.throws(() => pool.pushMany(out, -1), rangeErr);
  t.throws(() => pool.pushMany(out, '2'), typeErr);
  t.throws(() => pool.pushMany(new Uint32Array(9)), { code: 'ERR_OBJPOOL_DOUBLE_PUSH' }, 'more handles than objects');
  assertIntact(t, pool, [...out]);
  pool.pushMany(out);
  assertIntact(t, pool);
});

test('popMany validates its array and count', (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 8 });
  t.throws(() => pool.popMany(), typeErr);
  t.throws(() => pool.popMany(new Array(4)), typeErr);
  t.throws(() => pool.popMany(new Uint8Array(4)), typeErr);
  t.throws(() => pool.popMany(new Uint32Array(4), 5), rangeErr);
  t.throws(() => pool.popMany(new Uint32Array(4), 1.5), rangeErr);
  const big = new Uint32Array(1 << 20); // far more room than objects: only what exists is popped
  t.is(pool.popMany(big), 8);
  pool.pushMany(big, 8);
  assertIntact(t, pool);
});

test('release of foreign memory: ERR_OBJPOOL_FOREIGN_BUFFER, pool intact', (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 16, slots: 1 });
  const other = new ObjectPool({ capacity: 4, objectSize: 16, slots: 1 });
  const mine = pool.acquire();
  const foreign = { code: 'ERR_OBJPOOL_FOREIGN_BUFFER' };
  t.throws(() => pool.release(Buffer.alloc(16)), foreign);
  t.throws(() => pool.release(other.buffer(0)), foreign);
  t.throws(() => pool.release(mine.subarray(1)), foreign, 'a view not at the start of an object');
  t.throws(() => pool.release(Buffer.from(mine.buffer, mine.byteOffset, 17)), foreign, 'longer than the object');
  t.throws(() => pool.release(Buffer.from(mine.buffer, 4 * 16)), foreign, 'past the last object');
  t.throws(() => pool.release('buffer'), typeErr);
  t.throws(() => pool.release(new Uint16Array(8)), typeErr);
  assertIntact(t, pool, [pool.handleOf(mine)]);
  pool.release(mine);
  t.throws(() => pool.release(mine), { code: 'ERR_OBJPOOL_DOUBLE_PUSH' });
  assertIntact(t, pool);
});

test('buffer() validates the handle', (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 16 });
  pool.buffer(0); // cached views must not make a string key work
  t.throws(() => pool.buffer('0'), typeErr);
  t.throws(() => pool.buffer([0]), typeErr);
  t.throws(() => pool.buffer(4), rangeErr);
  t.throws(() => pool.buffer(-1), rangeErr);
  t.throws(() => pool.buffer('0'), typeErr);
  t.throws(() => pool.buffer(0.5), rangeErr);
});

test('fromBuffer and fromBuffers validate their inputs', (t) => {
  t.throws(() => ObjectPool.fromBuffer(new Uint8Array(64), { objectSize: 8 }), typeErr);
  t.throws(() => ObjectPool.fromBuffer(new ArrayBuffer(7), { objectSize: 8 }), valueErr);
  t.throws(() => ObjectPool.fromBuffer(new ArrayBuffer(64)), typeErr);
  t.throws(() => ObjectPool.fromBuffers([]), rangeErr);
  t.throws(() => ObjectPool.fromBuffers('abc'), typeErr);
  t.throws(() => ObjectPool.fromBuffers([new Uint8Array(4), [1, 2, 3, 4]]), typeErr);
  t.throws(() => ObjectPool.fromBuffers([new Uint8Array(4), new Uint8Array(5)]), valueErr);
  t.throws(() => ObjectPool.fromBuffers([new Uint8Array(0)]), valueErr);
  const one = Buffer.alloc(8);
  t.throws(() => ObjectPool.fromBuffers([one, one]), valueErr, 'the same object twice');
  const big = new Uint8Array(16);
  t.throws(() => ObjectPool.fromBuffers([big.subarray(0, 8), big.subarray(4, 12)]), valueErr, 'overlapping objects');
  t.throws(() => ObjectPool.fromBuffers([one], { slots: 0 }), rangeErr);
});

test('a pool on non-shared memory has no descriptor: ERR_OBJPOOL_NOT_SHAREABLE', (t) => {
  const pool = ObjectPool.fromBuffer(new ArrayBuffer(64), { objectSize: 8 });
  t.throws(() => pool.descriptor, { code: 'ERR_OBJPOOL_NOT_SHAREABLE' });
  const objs = ObjectPool.fromBuffers([Buffer.alloc(8)]);
  t.throws(() => objs.descriptor, { code: 'ERR_OBJPOOL_NOT_SHAREABLE' });
  assertIntact(t, pool);
});

test('every code a user can see is listed in codes', (t) => {
  t.deepEqual(Object.values(codes).sort(), [
    'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE', 'ERR_OBJPOOL_ACCESS', 'ERR_OBJPOOL_BAD_DESCRIPTOR', 'ERR_OBJPOOL_CLOSED',
    'ERR_OBJPOOL_DOUBLE_PUSH', 'ERR_OBJPOOL_FOREIGN_BUFFER', 'ERR_OBJPOOL_NOT_CREATOR', 'ERR_OBJPOOL_NOT_SHAREABLE', 'ERR_OBJPOOL_NO_ADDON', 'ERR_OBJPOOL_NO_MEMORY', 'ERR_OBJPOOL_NO_PROM_CLIENT',
    'ERR_OBJPOOL_TIMEOUT', 'ERR_OBJPOOL_UNSUPPORTED',
    'ERR_OUT_OF_RANGE',
  ]);
});

test('objects that only look like a Uint8Array (its prototype, a Proxy) are coded errors', (t) => {
  const pool = new ObjectPool({ capacity: 2, objectSize: 8 });
  for (const fake of [Object.create(Uint8Array.prototype), new Proxy(pool.buffer(0), {})]) {
    t.throws(() => pool.release(fake), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' });
    t.throws(() => pool.handleOf(fake), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' });
    t.throws(() => ObjectPool.fromBuffers([fake]), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' });
  }
  assertIntact(t, pool);
});

test('the raw addon checks its size arguments too', (t) => {
  const addon = require(require('..').addonPath);
  t.throws(() => addon.metaBytes('8', 1, true), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => addon.format(new Uint8Array(1024), 4 + 2 ** 32, 1, 8, 8, 8, true, false, false), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => addon.format(new Uint8Array(1024), 4, 1, 8, 8, 3, true, false, false), { code: 'ERR_INVALID_ARG_VALUE' });
});
