'use strict';
const test = require('ava');
const { ObjectPool } = require('..');
const { until } = require('./helpers');

function recorder() {
  const calls = [];
  const release = (obj, info) => calls.push({ obj, ...info });
  return { calls, release };
}

test('close releases every object in the pool now, then resolves', async (t) => {
  const pool = new ObjectPool({ capacity: 6, objectSize: 8, slots: 2 });
  const { calls, release } = recorder();
  const done = pool.close(release);
  t.true(pool.closed);
  t.is(calls.length, 6, 'released synchronously, on this thread');
  t.deepEqual(calls.map((c) => c.handle).sort(), [0, 1, 2, 3, 4, 5]);
  for (const c of calls) {
    t.deepEqual({ user: c.user, element: c.element }, { user: false, element: true });
    // A Buffer over the object's own bytes (the view this thread caches, if it has one).
    const view = pool.buffer(c.handle);
    t.true(c.obj.buffer === view.buffer && c.obj.byteOffset === view.byteOffset && c.obj.length === view.length);
  }
  await done;
  t.is(pool.close(), done, 'close again returns the same promise');
});

test('after close, pops throw ERR_OBJPOOL_CLOSED and objects out are released when pushed back', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8 });
  const a = pool.pop();
  const b = pool.acquire();
  const { calls, release } = recorder();
  let resolved = false;
  const done = pool.close(release).then(() => { resolved = true; });
  t.is(calls.length, 2);
  t.throws(() => pool.pop(), { code: 'ERR_OBJPOOL_CLOSED' });
  t.throws(() => pool.acquire(), { code: 'ERR_OBJPOOL_CLOSED' });
  t.throws(() => pool.popMany(new Uint32Array(2)), { code: 'ERR_OBJPOOL_CLOSED' });
  pool.push(a);
  await until(() => calls.length === 3);
  t.is(calls[2].handle, a);
  t.false(resolved, 'one object is still out');
  t.deepEqual(pool.stats(), { capacity: 4, available: 0, inUse: 1, cached: 0, waiting: 0, perSlot: pool.stats().perSlot, closed: true,
    exhausted: 0, waits: 0, waitTimeouts: 0, waitAborts: 0, waitSeconds: 0, leaks: 0, released: 3, recovered: 0, recoveredMidOperation: 0, recoveredMidChannelCall: 0, repairedChannelCells: 0 });
  pool.release(b);
  await done;
  t.is(calls.length, 4);
  t.throws(() => pool.push(a), { code: 'ERR_OBJPOOL_DOUBLE_PUSH' }, 'a released object cannot come back');
});

test('a late push on the closing thread keeps the process alive until it is released', async (t) => {
  // Regression: the drain request must not be lost when nothing else keeps the loop alive.
  const { execFileSync } = require('node:child_process');
  const out = execFileSync(process.execPath, ['-e', `
    const { ObjectPool } = require(${JSON.stringify(require.resolve('..'))});
    const pool = new ObjectPool({ capacity: 2, objectSize: 8 });
    const h = pool.pop();
    let n = 0;
    pool.close(() => n++).then(() => console.log('released', n));
    setTimeout(() => pool.push(h), 20);
  `], { encoding: 'utf8' });
  t.is(out.trim(), 'released 2');
});

test('fromBuffer: every object, then the whole memory once, all marked user', async (t) => {
  const memory = new ArrayBuffer(64);
  const pool = ObjectPool.fromBuffer(memory, { objectSize: 16 });
  const { calls, release } = recorder();
  await pool.close(release);
  t.is(calls.length, 5);
  const last = calls[4];
  t.deepEqual({ handle: last.handle, user: last.user, element: last.element }, { handle: -1, user: true, element: false });
  t.is(last.obj.buffer, memory);
  t.is(last.obj.length, 64);
  t.true(calls.slice(0, 4).every((c) => c.user && c.element));
});

test('fromBuffers: each user object is released, no whole-memory call', async (t) => {
  const objects = [Buffer.alloc(4), Buffer.alloc(4)];
  const pool = ObjectPool.fromBuffers(objects);
  const { calls, release } = recorder();
  await pool.close(release);
  t.deepEqual(calls.map((c) => [c.handle, c.user, c.element]).sort(), [[0, true, true], [1, true, true]]);
  for (const c of calls) t.is(c.obj.buffer, objects[c.handle].buffer);
});

test('close without a callback still waits for objects out', async (t) => {
  const pool = new ObjectPool({ capacity: 3, objectSize: 8 });
  const h = pool.pop();
  let resolved = false;
  const done = pool.close().then(() => { resolved = true; });
  await new Promise((r) => setTimeout(r, 10));
  t.false(resolved);
  pool.push(h);
  await done;
  t.true(resolved);
});

test('a release callback that throws rejects the promise after releasing everything', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8 });
  const boom = new Error('release failed');
  let n = 0;
  await t.throwsAsync(pool.close(() => { n++; if (n === 2) throw boom; }), { is: boom });
  t.is(n, 4);
});

test('close validates its callback', (t) => {
  const pool = new ObjectPool({ capacity: 1, objectSize: 8 });
  t.throws(() => pool.close('nope'), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' });
  t.false(pool.closed, 'a bad argument leaves the pool open');
});

test('unchecked pools stay memory-safe after a double push, and release each object at most once', (t) => {
  // Without checked mode a double push corrupts the free list (here into a
  // cycle that hides the other objects), so close() can never finish: run it
  // in a child process that reports what was released and exits.
  const { execFileSync } = require('node:child_process');
  const out = execFileSync(process.execPath, ['-e', `
    const { ObjectPool } = require(${JSON.stringify(require.resolve('..'))});
    const pool = new ObjectPool({ capacity: 4, objectSize: 8, checked: false, slots: 1 });
    const h = pool.pop();
    pool.push(h);
    pool.push(h);
    const seen = [];
    pool.close((_, info) => seen.push(info.handle)).catch((e) => console.log('close:', e.code));
    for (let i = 0; i < 10; i++) try { pool.push(h); } catch (e) { console.log(e.code); }
    setTimeout(() => { console.log(JSON.stringify(seen)); process.exit(0); }, 50);
  `], { encoding: 'utf8', timeout: 20_000 });
  t.regex(out, /^close: ERR_OBJPOOL_DOUBLE_PUSH$/m, 'the close settles, naming the corruption');
  const seen = JSON.parse(out.trim().split('\n').pop());
  t.true(seen.length >= 1 && seen.length <= 4);
  t.is(new Set(seen).size, seen.length, 'no object released twice');
});

test('a close that waits for objects never returned does not keep the process alive', (t) => {
  const { execFileSync } = require('node:child_process');
  const out = execFileSync(process.execPath, ['-e', `
    const { ObjectPool } = require(${JSON.stringify(require.resolve('..'))});
    const pool = new ObjectPool({ capacity: 2, objectSize: 8 });
    pool.pop(); // never returned
    pool.close().then(() => console.log('resolved'));
    process.on('exit', () => console.log('exited, close pending'));
  `], { encoding: 'utf8', timeout: 20_000 });
  t.is(out.trim(), 'exited, close pending');
});

test('stats() agree on every instance of one pool, before and after a close by one of them', async (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 8, slots: 2 });
  const other = ObjectPool.attach(pool.descriptor);
  const counts = (p) => { const s = p.stats(); return { available: s.available, inUse: s.inUse, closed: s.closed }; };
  const a = pool.pop();
  const b = other.pop();
  t.deepEqual(counts(pool), counts(other));
  const done = other.close();
  t.deepEqual(counts(pool), { available: 0, inUse: 2, closed: true });
  t.deepEqual(counts(other), counts(pool));
  pool.push(a);
  await until(() => other.stats().available === 0); // released by the closer
  t.deepEqual(counts(pool), { available: 0, inUse: 1, closed: true }, 'the instance that did not close agrees');
  other.push(b);
  await done;
  t.deepEqual(counts(pool), { available: 0, inUse: 0, closed: true });
  t.deepEqual(counts(other), counts(pool));
});

test('close() called again from inside the release callback returns the same promise, settled only at the end', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8 });
  const h = pool.pop();
  let inner = null;
  const outer = pool.close(() => { inner ??= pool.close(); });
  t.is(inner, outer);
  let settled = false;
  inner.then(() => { settled = true; });
  await new Promise((r) => setTimeout(r, 20));
  t.false(settled, 'one object is still out');
  pool.push(h);
  await outer;
  t.true(settled);
});

test('unchecked: a double push that links a cycle does not stop close() from releasing every reachable object once and settling', (t) => {
  const { execFileSync } = require('node:child_process');
  const out = execFileSync(process.execPath, ['-e', `
    const { ObjectPool } = require(${JSON.stringify(require.resolve('..'))});
    const pool = new ObjectPool({ capacity: 16, objectSize: 8, slots: 2, checked: false, cache: 0 });
    const h = pool.pop();
    pool.push(h);
    pool.push(h);                         // h -> h: a cycle on top of this CPU's slot
    const reachable = pool.stats().perSlot.reduce((a, b) => a + b, 0);
    const released = [];
    let settled = 'no';
    pool.close((_, info) => released.push(info.handle)).then(() => { settled = 'resolved'; }, (e) => { settled = e.code; });
    setTimeout(() => console.log(JSON.stringify({ reachable, released, settled })), 100);
  `], { encoding: 'utf8', timeout: 20_000 });
  const r = JSON.parse(out);
  t.true(r.reachable >= 8, 'the other slot and the cycle are reachable');
  t.is(r.released.length, r.reachable, 'every reachable object released');
  t.is(new Set(r.released).size, r.released.length, 'each once');
  t.is(r.settled, 'ERR_OBJPOOL_DOUBLE_PUSH', 'the close settles, naming the corruption');
});

test('an error while releasing (a user buffer detached) loses no object from the accounting and rejects the close', async (t) => {
  const objects = Array.from({ length: 4 }, () => new Uint8Array(16));
  const pool = ObjectPool.fromBuffers(objects, { cache: 0 });
  const h = pool.pop();
  const released = [];
  const done = pool.close((_, info) => released.push(info.handle));
  t.is(released.length, 3);
  structuredClone(objects[h].buffer, { transfer: [objects[h].buffer] }); // its Buffer can no longer be made
  pool.push(h); // drained on this thread through the closer's thread-safe function
  const deadline = new Promise((_, reject) => setTimeout(() => reject(new Error('close never settled')), 10_000).unref());
  await t.throwsAsync(Promise.race([done, deadline]), { code: 'ERR_BUFFER_OUT_OF_BOUNDS' });
  t.is(released.length, 3, 'the callback could not be given the detached object');
  t.is(pool.stats().inUse, 0, 'every object accounted for');
});
