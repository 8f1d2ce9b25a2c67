'use strict';
// Lifecycle: pools created and dropped under GC keep memory flat; close()
// racing with pushes from several threads never loses or doubles a release.
const test = require('ava');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const { ObjectPool } = require('..');
const { until } = require('./helpers');

const LONG = Boolean(process.env.OBJPOOL_LONG);

// With objpool/metrics collecting too: its default set must not hold pools.
for (const metrics of [false, true]) test(`thousands of pools created and dropped under GC: memory stays flat${metrics ? ', objpool/metrics collecting' : ''} (--expose-gc)`, (t) => {
  const rounds = LONG ? 20_000 : 3000;
  const script = `
    const { ObjectPool } = require(${JSON.stringify(require.resolve('..'))});
    if (${metrics}) require(${JSON.stringify(require.resolve('../dist/metrics'))}).collectPoolMetrics({ register: new (require('prom-client').Registry)() });
    const churn = async (n) => {
      for (let i = 0; i < n; i++) {
        const p = new ObjectPool({ capacity: 64, objectSize: 1024, slots: 2 });
        const h = p.pop();
        p.buffer(h).fill(i & 255);
        p.push(h);
        if (i % 3 === 0) { const q = ObjectPool.attach(p.descriptor); q.release(q.acquire()); }
        if (i % 5 === 0) p.close();
        if (i % 200 === 0) { gc(); await new Promise(setImmediate); }
      }
      gc(); await new Promise(setImmediate); gc();
    };
    (async () => {
      await churn(${Math.floor(rounds / 4)});  // warm up: the heap and allocator settle
      const before = process.memoryUsage().rss;
      await churn(${rounds});
      const after = process.memoryUsage().rss;
      console.log(JSON.stringify({ before, after }));
    })();`;
  const { before, after } = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 120_000 }));
  const grownMiB = (after - before) / 2 ** 20;
  t.log(`${rounds} pools of 64 KiB (${(rounds * 64) / 1024} MiB in all): RSS ${(before / 2 ** 20).toFixed(1)} -> ${(after / 2 ** 20).toFixed(1)} MiB`);
  t.true(grownMiB < 24, `RSS grew by ${grownMiB.toFixed(1)} MiB`);
});

test('close() racing with pushes from several threads, many times: every object released exactly once', async (t) => {
  const rounds = LONG ? 200 : 25;
  for (let r = 0; r < rounds; r++) {
    const pool = new ObjectPool({ capacity: 48, objectSize: 16, slots: 2 });
    const gate = new SharedArrayBuffer(4);
    const workers = [0, 1].map(() => new Worker(path.join(__dirname, 'fixtures', 'close-race-worker.js'), { workerData: { descriptor: pool.descriptor, gate, count: 12 } }));
    await Promise.all(workers.map((w) => new Promise((res) => w.once('message', res))));
    const mine = [pool.pop(), pool.pop(), pool.pop()];
    const released = [];
    Atomics.store(new Int32Array(gate), 0, 1);
    Atomics.notify(new Int32Array(gate), 0);
    const done = pool.close((_, info) => released.push(info.handle));
    for (const h of mine) pool.push(h); // and this thread races too
    // A pending close does not keep a thread alive by itself (documented):
    // once the workers have pushed and exited, this test's own timer is what
    // keeps the loop running until the drains they queued have run.
    const alive = setInterval(() => {}, 1000);
    await done;
    clearInterval(alive);
    t.is(released.length, 48, `round ${r}`);
    t.is(new Set(released).size, 48, `round ${r}: no double release`);
    await Promise.all(workers.map((w) => w.terminate()));
  }
});

test('the closing worker is terminated while other threads keep pushing: no crash, no hang', async (t) => {
  const rounds = LONG ? 100 : 15;
  for (let r = 0; r < rounds; r++) {
    const pool = new ObjectPool({ capacity: 64, objectSize: 16 });
    const held = [];
    for (let i = 0; i < 48; i++) held.push(pool.pop());
    const w = new Worker(path.join(__dirname, 'fixtures', 'worker.js'), { workerData: { task: 'close', descriptor: pool.descriptor } });
    await new Promise((res) => w.on('message', (m) => m.closing && res()));
    // Push back while the closer's thread is torn down under our feet.
    const dying = w.terminate();
    for (const h of held) pool.push(h);
    await dying;
    t.true(pool.closed);
    t.throws(() => pool.pop(), { code: 'ERR_OBJPOOL_CLOSED' });
  }
});

test('shared pool memory goes when the last thread lets go of it (--expose-gc)', (t) => {
  const script = `
    const { Worker } = require('node:worker_threads');
    const { ObjectPool } = require(${JSON.stringify(require.resolve('..'))});
    const MiB = 2 ** 20;
    const rss = () => process.memoryUsage().rss / MiB;
    const settle = async () => { for (let i = 0; i < 3; i++) { gc(); await new Promise(setImmediate); } };
    (async () => {
      await settle();
      const base = rss();
      let pool = new ObjectPool({ capacity: 64, objectSize: MiB });
      for (let h = 0; h < 64; h++) pool.buffer(h).fill(1);   // touch every page
      const w = new Worker(\`
        const { parentPort, workerData } = require('node:worker_threads');
        const { ObjectPool } = require(\${JSON.stringify(require.resolve(${JSON.stringify(require.resolve('..'))}))});
        const p = ObjectPool.attach(workerData);
        parentPort.postMessage(p.buffer(63)[0]);
        parentPort.once('message', () => process.exit(0));   // hold the pool until told
      \`, { eval: true, workerData: pool.descriptor });
      const seen = await new Promise((r) => w.once('message', r));
      pool = null;
      await settle();
      const heldByWorker = rss() - base;
      w.postMessage('exit');
      await new Promise((r) => w.once('exit', r));
      await settle();
      console.log(JSON.stringify({ seen, heldByWorker, afterExit: rss() - base }));
    })();`;
  const r = JSON.parse(require('node:child_process').execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60_000 }));
  t.log(`64 MiB pool: ${r.heldByWorker.toFixed(1)} MiB above base while only the worker holds it, ${r.afterExit.toFixed(1)} MiB after it exits`);
  t.is(r.seen, 1, 'the worker sees the bytes the main thread wrote');
  t.true(r.heldByWorker > 48, 'the worker keeps the memory alive after the main thread dropped its pool');
  t.true(r.afterExit < r.heldByWorker - 48, 'the memory is freed once the last thread lets go');
});

test('pools that waited are still collected: their wake-up threads end (--expose-gc)', (t) => {
  const script = `
    const { ObjectPool } = require(${JSON.stringify(require.resolve('..'))});
    const threads = () => Number(/Threads:\\s+(\\d+)/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))[1]);
    const settle = async () => { for (let i = 0; i < 4; i++) { gc(); await new Promise((r) => setTimeout(r, 10)); } };
    (async () => {
      await settle();
      const base = threads();
      for (let i = 0; i < 200; i++) {
        const pool = new ObjectPool({ capacity: 1, objectSize: 8 });
        const h = pool.pop();
        const waiting = pool.popAsync();
        pool.push(h);
        await waiting;
      }
      const peak = threads();
      await settle();
      console.log(JSON.stringify({ base, peak, after: threads() }));
    })();`;
  const r = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60_000 }));
  t.log(`threads: ${r.base} before, ${r.peak} after 200 pools waited once, ${r.after} after GC`);
  t.true(r.after < r.base + 20, 'the pools and their wake-up threads are gone');
});
