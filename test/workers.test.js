'use strict';
const test = require('ava');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { execFileSync } = require('node:child_process');
const { ObjectPool } = require('..');
const testing = require('./addon');
const { assertIntact, until, spawnWorker } = require('./helpers');

const workerFile = path.join(__dirname, 'fixtures', 'worker.js');

const spawn = (workerData) => spawnWorker(workerFile, workerData);

test('descriptor is structured-cloneable and attach sees the same objects', async (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 64, slots: 2 });
  const d = pool.descriptor;
  t.is(d.kind, 'objpool');
  t.true(d.meta instanceof SharedArrayBuffer && d.arena instanceof SharedArrayBuffer);
  const clone = structuredClone(d);
  const other = ObjectPool.attach(clone);
  t.deepEqual([other.capacity, other.objectSize, other.stride, other.slots], [8, 64, 64, 2]);
  const h = other.pop();
  other.buffer(h).write('hello');
  t.is(pool.buffer(h).toString('utf8', 0, 5), 'hello', 'one handle names the same bytes in both views');
  t.not(pool.buffer(h), other.buffer(h), 'each view keeps its own Buffer cache');
  pool.push(h); // popped through one view, pushed through the other
  t.throws(() => other.push(h), { code: 'ERR_OBJPOOL_DOUBLE_PUSH' });
  other.release(pool.acquire()); // a Buffer of one view released through the other
  assertIntact(t, pool, [], [other]);
});

test('fromBuffer on a SharedArrayBuffer and fromBuffers over shared memory are shareable', (t) => {
  const a = ObjectPool.fromBuffer(new SharedArrayBuffer(256), { objectSize: 64 });
  const a2 = ObjectPool.attach(structuredClone(a.descriptor));
  t.is(a2.capacity, 4);
  const sab = new SharedArrayBuffer(32);
  const b = ObjectPool.fromBuffers([new Uint8Array(sab, 0, 16), new Uint8Array(sab, 16, 16)]);
  const b2 = ObjectPool.attach(structuredClone(b.descriptor));
  const buf = b2.acquire();
  buf.fill(1);
  b.release(b.buffer(b2.handleOf(buf)));
  assertIntact(t, b);
});

test('forged, truncated or mismatched descriptors: ERR_OBJPOOL_BAD_DESCRIPTOR, never a crash', (t) => {
  const pool = new ObjectPool({ capacity: 16, objectSize: 32, slots: 2 });
  const d = pool.descriptor;
  const bad = { code: 'ERR_OBJPOOL_BAD_DESCRIPTOR' };
  const copyMeta = (mutate, length = d.meta.byteLength) => {
    const m = new SharedArrayBuffer(length);
    new Uint8Array(m).set(new Uint8Array(d.meta).subarray(0, Math.min(length, d.meta.byteLength)));
    mutate?.(new DataView(m));
    return m;
  };
  t.throws(() => ObjectPool.attach(null), { code: 'ERR_INVALID_ARG_TYPE' });
  const cases = {
    'wrong kind': { ...d, kind: 'other' },
    'wrong version': { ...d, version: 1 },
    'meta not shared': { ...d, meta: new ArrayBuffer(d.meta.byteLength) },
    'meta empty': { ...d, meta: new SharedArrayBuffer(0) },
    'meta truncated': { ...d, meta: copyMeta(null, d.meta.byteLength - 4) },
    'magic flipped': { ...d, meta: copyMeta((v) => v.setUint32(0, v.getUint32(0, true) ^ 1, true)) },
    'layout version': { ...d, meta: copyMeta((v) => v.setUint32(4, 9, true)) },
    'capacity grown in header and descriptor': { ...d, capacity: 17, meta: copyMeta((v) => v.setUint32(8, 17, true)) },
    'slots grown in header and descriptor': { ...d, slots: 3, meta: copyMeta((v) => v.setUint32(12, 3, true)) },
    'stride below object size': { ...d, stride: 16, meta: copyMeta((v) => v.setUint32(20, 16, true)) },
    'unknown flags': { ...d, meta: copyMeta((v) => v.setUint32(28, 0xff, true)) },
    'meta size field': { ...d, meta: copyMeta((v) => v.setUint32(40, 1, true)) },
    'descriptor capacity differs': { ...d, capacity: 15 },
    'arena truncated': { ...d, arena: new SharedArrayBuffer(16 * 32 - 1) },
    'arena missing': { ...d, arena: null },
    'arena not shared': { ...d, arena: new ArrayBuffer(16 * 32) },
    'objects on an arena pool': { ...d, objects: [] },
  };
  for (const [name, forged] of Object.entries(cases)) t.throws(() => ObjectPool.attach(forged), bad, name);
  // Checked flag cleared: the metadata is then too long for the declared shape.
  t.throws(() => ObjectPool.attach({ ...d, checked: false, meta: copyMeta((v) => v.setUint32(28, 0, true)) }), bad);
  assertIntact(t, pool);
});

test('conservation: main thread + 2 workers + 2 native threads over one pool', async (t) => {
  const pool = new ObjectPool({ capacity: 64, objectSize: 64 });
  const d = pool.descriptor;
  const words = new Int32Array(d.arena);
  const at = (h) => (h * pool.stride) / 4;
  const MAIN = 7, TRANSIT = 999;
  const workers = [1, 2].map((id) => spawn({ task: 'stress', descriptor: d, id, ops: 300_000, handEvery: 97 }));
  let mainErrors = 0, handedIn = 0;
  for (const { w } of workers) {
    w.on('message', (m) => {
      if (m.handed === undefined) return;
      // A handle popped in a worker, pushed here.
      if (Atomics.compareExchange(words, at(m.handed), TRANSIT, 0) !== TRANSIT) mainErrors++;
      pool.push(m.handed);
      handedIn++;
    });
  }
  const native = testing.runThreads(new Uint8Array(d.meta), new Uint8Array(d.arena), { threads: 2, ops: 250_000, bulk: 4, id: 100 });
  let mainOps = 0;
  while (mainOps < 100_000) {
    for (let i = 0; i < 1000; i++, mainOps++) {
      const h = pool.pop();
      if (h < 0) continue;
      if (Atomics.exchange(words, at(h), MAIN) !== 0) mainErrors++;
      if (Atomics.exchange(words, at(h), 0) !== MAIN) mainErrors++;
      pool.push(h);
    }
    await new Promise((r) => setImmediate(r));
  }
  const nat = await native;
  await Promise.all(workers.map((x) => x.exited));
  const results = workers.map((x) => x.messages.find((m) => m.done).done);
  const handed = results.reduce((a, r) => a + r.handed, 0);
  await until(() => handedIn === handed);
  const totalOps = mainOps + nat.ops + 600_000;
  t.log(`ops: ${totalOps} (native ${nat.ops}, hits ${nat.hits}); handed between threads: ${handed}`);
  t.true(totalOps >= 1_000_000);
  t.is(mainErrors, 0);
  t.is(nat.ownerErrors, 0);
  t.is(nat.statusErrors, 0);
  for (const r of results) t.is(r.ownerErrors, 0);
  t.true(handed > 0);
  for (let h = 0; h < pool.capacity; h++) t.is(words[at(h)], 0, `object ${h} has no owner left`);
  assertIntact(t, pool);
});

test('main closes, a worker returns its objects late: released here', async (t) => {
  const pool = new ObjectPool({ capacity: 6, objectSize: 16 });
  const x = spawn({ task: 'hold', descriptor: pool.descriptor, count: 2 });
  const { held } = await x.wait((m) => m.held);
  const released = [];
  let resolved = false;
  const done = pool.close((buf, info) => released.push(info.handle)).then(() => { resolved = true; });
  t.is(released.length, 4);
  x.w.postMessage('return');
  await done;
  t.true(resolved);
  t.deepEqual(released.slice(4).sort(), [...held].sort());
  await x.w.terminate();
});

test('main closes while C++ threads hold objects: their late pushes are released here', async (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 16 });
  const d = pool.descriptor;
  const gate = new Int32Array(new SharedArrayBuffer(8));
  const back = testing.holdThenReturn(new Uint8Array(d.meta), new Uint8Array(d.arena), gate, 3);
  await until(() => Atomics.load(gate, 0) === 1); // the native thread holds 3
  const released = [];
  const done = pool.close((_, info) => released.push(info.handle));
  t.is(released.length, 5);
  Atomics.store(gate, 1, 1); // now push them back
  t.is(await back, 3, 'each native push found the pool closed');
  // A pending close does not keep a thread alive by itself (documented), and
  // the native thread's pushes reach it through a poll that does not either:
  // this test's own timer keeps the loop running until it has found them.
  const alive = setInterval(() => {}, 1000);
  await done;
  clearInterval(alive);
  t.deepEqual([...released].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7]);
});

test('a worker closes, main pushes late: the release callback runs on the worker', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 16 });
  const mine = [pool.pop(), pool.pop()];
  const x = spawn({ task: 'close', descriptor: pool.descriptor });
  await x.wait((m) => m.closing);
  t.true(pool.closed, 'closed in every thread');
  t.throws(() => pool.pop(), { code: 'ERR_OBJPOOL_CLOSED' });
  await until(() => x.messages.filter((m) => m.released !== undefined).length === 2);
  pool.push(mine[0]);
  pool.release(pool.buffer(mine[1]));
  await x.wait((m) => m.closeResolved);
  const released = x.messages.filter((m) => m.released !== undefined).map((m) => m.released);
  t.deepEqual([...released].sort(), [0, 1, 2, 3]);
  t.true(x.messages.filter((m) => m.released !== undefined).every((m) => m.bytes === 16));
  await x.w.terminate();
});

test('the closing thread exits before everything is back: later pushes neither crash nor hang', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 16 });
  const h = pool.pop();
  const x = spawn({ task: 'close', descriptor: pool.descriptor, exitAfterClose: true });
  await x.exited;
  t.true(pool.closed);
  pool.push(h); // the closer is gone: the object stays in the pool memory
  t.throws(() => pool.pop(), { code: 'ERR_OBJPOOL_CLOSED' });
  t.throws(() => pool.push(h), { code: 'ERR_OBJPOOL_DOUBLE_PUSH' });
  t.is(pool.stats().available, 1);
});

test('worker.terminate() in the middle of a pop/push loop leaves the pool working', async (t) => {
  const pool = new ObjectPool({ capacity: 32, objectSize: 16 });
  for (let round = 0; round < 3; round++) {
    const x = spawn({ task: 'spin', descriptor: pool.descriptor });
    await x.wait((m) => m.spinning);
    await new Promise((r) => setTimeout(r, 20));
    await x.w.terminate();
  }
  // The spinning worker held at most one object when it was stopped.
  const n = pool.stats().available;
  t.true(n >= 29 && n <= 32, `available ${n}`);
  const out = new Uint32Array(32);
  const got = pool.popMany(out);
  t.is(new Set(out.subarray(0, got)).size, got);
});

test('process exit with pools alive in workers and objects out: no crash, no hang', (t) => {
  const script = `
    const { Worker } = require('node:worker_threads');
    const { ObjectPool } = require(${JSON.stringify(require.resolve('..'))});
    const pool = new ObjectPool({ capacity: 8, objectSize: 16 });
    pool.pop();
    let ready = 0;
    for (let i = 0; i < 2; i++) {
      const w = new Worker(${JSON.stringify(workerFile)}, { workerData: { task: 'holdForever', descriptor: pool.descriptor } });
      w.on('message', () => { if (++ready === 2) { pool.close(); console.log('exiting'); process.exit(0); } });
    }`;
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
  t.is(out.trim(), 'exiting');
});

test('a view collected in one thread leaves the others working (--expose-gc)', (t) => {
  const script = `
    if (typeof gc !== 'function') { console.log('no gc'); process.exit(3); }
    const { Worker } = require('node:worker_threads');
    const { ObjectPool } = require(${JSON.stringify(require.resolve('..'))});
    let pool = new ObjectPool({ capacity: 4, objectSize: 16 });
    const d = pool.descriptor;
    pool.buffer(0).write('kept');
    pool = null;
    const w = new Worker(\`
      const { parentPort, workerData } = require('node:worker_threads');
      const { ObjectPool } = require(\${JSON.stringify(require.resolve(${JSON.stringify(require.resolve('..'))}))});
      parentPort.on('message', () => {
        const p = ObjectPool.attach(workerData);
        const hs = [p.pop(), p.pop(), p.pop(), p.pop()];
        hs.forEach((h) => p.push(h));
        parentPort.postMessage(p.buffer(0).toString('utf8', 0, 4) + ':' + new Set(hs).size);
      });\`, { eval: true, workerData: d });
    // Collect the main thread's view (the descriptor still holds the memory).
    for (let i = 0; i < 5; i++) gc();
    w.postMessage('go');
    w.on('message', (m) => { console.log(m); w.terminate(); });`;
  const out = execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  t.is(out.trim(), 'kept:4');
});
