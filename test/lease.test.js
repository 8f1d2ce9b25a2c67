'use strict';
// Leases, leak reports and zeroing.
const test = require('ava');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const { ObjectPool } = require('..');
const testing = require('./addon');
const { assertIntact, until } = require('./helpers');

const root = JSON.stringify(require.resolve('..'));

test('lease(): handle, buffer, release once; Symbol.dispose returns it; null when empty', (t) => {
  const pool = new ObjectPool({ capacity: 2, objectSize: 16 });
  const a = pool.lease();
  t.is(a.buffer, pool.buffer(a.handle));
  const b = pool.lease();
  t.is(pool.lease(), null);
  a.release();
  a.release(); // a no-op, not a double push
  t.is(pool.stats().inUse, 1);
  b[Symbol.dispose]();
  b.release();
  assertIntact(t, pool);
});

test('`using` returns the leased object at scope exit (run where the syntax exists)', (t) => {
  // Node 20's V8 has no `using` syntax: the same contract is what it calls.
  let supported = true;
  try { new Function('{ using x = null; }'); } catch { supported = false; }
  const pool = new ObjectPool({ capacity: 1, objectSize: 8 });
  if (supported) {
    new Function('pool', '{ using lease = pool.lease(); lease.buffer[0] = 1; }')(pool);
  } else {
    const lease = pool.lease();
    try { lease.buffer[0] = 1; } finally { lease[Symbol.dispose](); }
  }
  t.log(supported ? '`using` ran natively' : '`using` is not supported by this Node; Symbol.dispose called as it would');
  assertIntact(t, pool);
});

test('Symbol.asyncDispose closes the pool', async (t) => {
  const pool = new ObjectPool({ capacity: 2, objectSize: 8 });
  await pool[Symbol.asyncDispose]();
  t.true(pool.closed);
});

function leakScript(body, env = {}) {
  return execFileSync(process.execPath, ['--expose-gc', '-e', `
    const { ObjectPool } = require(${root});
    const settle = async () => { for (let i = 0; i < 4; i++) { gc(); await new Promise((r) => setTimeout(r, 5)); } };
    ${body}`], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } });
}

test('a sampled acquire whose Buffer is collected while the object is out is reported with the acquiring stack', (t) => {
  const out = leakScript(`
    const reports = [];
    const pool = new ObjectPool({ capacity: 8, objectSize: 16, leaks: { sample: 1, onLeak: (r) => reports.push(r) } });
    function acquireAndForget() { pool.acquire(); }
    function leaseAndForget() { pool.lease(); }
    (async () => {
      acquireAndForget();
      leaseAndForget();
      let kept = pool.acquire();             // released: never reported
      pool.release(kept);
      kept = null;
      let byHandle = pool.acquire();         // returned by handle: never reported
      pool.push(pool.handleOf(byHandle));
      byHandle = null;
      await settle();
      console.log(JSON.stringify({ reports, inUse: pool.stats().inUse }));
    })();`);
  const { reports, inUse } = JSON.parse(out);
  t.is(inUse, 2);
  t.is(reports.length, 2);
  const stacks = reports.map((r) => r.stack).join('\n');
  t.regex(stacks, /acquireAndForget/);
  t.regex(stacks, /leaseAndForget/);
  for (const r of reports) {
    t.true(Number.isInteger(r.handle) && r.handle >= 0 && r.handle < 8);
    t.true(r.heldMs >= 0);
  }
});

test('OBJPOOL_LEAKS=all reports through a process warning with code OBJPOOL_LEAK; off by default', (t) => {
  const body = `
    process.on('warning', (w) => { if (w.code === 'OBJPOOL_LEAK') console.log('warning ' + w.message.split('\\n')[0]); });
    const pool = new ObjectPool({ capacity: 4, objectSize: 16 });
    function forget() { pool.acquire(); }
    (async () => { forget(); await settle(); console.log('done'); })();`;
  const on = leakScript(body, { OBJPOOL_LEAKS: 'all' });
  t.regex(on, /warning objpool: object \d+ was never returned/);
  const off = leakScript(body, { OBJPOOL_LEAKS: '' });
  t.is(off.trim(), 'done');
});

test('leak options are validated', (t) => {
  t.throws(() => new ObjectPool({ capacity: 1, objectSize: 1, leaks: 1 }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => new ObjectPool({ capacity: 1, objectSize: 1, leaks: { sample: 2 } }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => new ObjectPool({ capacity: 1, objectSize: 1, leaks: { onLeak: 'x' } }), { code: 'ERR_INVALID_ARG_TYPE' });
});

const allZero = (buf) => buf.every((b) => b === 0);

test('zero: true zeroes every object pushed back from JS, with and without a cache, on every kind of pool', (t) => {
  for (const cache of [0, 4]) {
    const pools = [
      new ObjectPool({ capacity: 16, objectSize: 100, zero: true, cache }),
      ObjectPool.fromBuffer(new ArrayBuffer(16 * 64), { objectSize: 64, zero: true, cache }),
      ObjectPool.fromBuffers(Array.from({ length: 16 }, () => new Uint8Array(32)), { zero: true, cache }),
    ];
    for (const pool of pools) {
      t.true(pool.zero);
      const held = [];
      for (let i = 0; i < 10; i++) { const b = pool.acquire(); b.fill(0xab); held.push(b); }
      pool.release(held.pop());
      pool.pushMany(Uint32Array.from(held.splice(0, 4).map((b) => pool.handleOf(b))));
      for (const b of held) pool.push(pool.handleOf(b));
      for (let h = 0; h < pool.capacity; h++) t.true(allZero(pool.buffer(h)), `cache ${cache}: object ${h} zeroed`);
    }
  }
  const plain = new ObjectPool({ capacity: 2, objectSize: 8 });
  const b = plain.acquire();
  b.fill(1);
  plain.release(b);
  t.false(plain.zero);
  t.is(b[0], 1, 'off by default');
});

test('zero: true zeroes objects pushed back by a worker and by a native thread', async (t) => {
  const pool = new ObjectPool({ capacity: 16, objectSize: 64, zero: true, cache: 0 });
  const w = new Worker(path.join(__dirname, 'fixtures', 'cache-worker.js'), { workerData: { task: 'dirtyAndPush', descriptor: pool.descriptor, count: 16, cache: 8 } });
  await new Promise((r) => w.once('message', r));
  await w.terminate();
  const arena = new Uint8Array(pool.descriptor.arena);
  t.true(allZero(arena), 'a worker\'s pushes, through its cache and back');
  // A native thread takes every object; JS scribbles over them meanwhile; the thread's pushes zero them.
  const d = pool.descriptor;
  const gate = new Int32Array(new SharedArrayBuffer(8));
  const native = testing.holdThenReturn(new Uint8Array(d.meta), new Uint8Array(d.arena), gate, 16);
  await until(() => Atomics.load(gate, 0) === 1);
  arena.fill(0xcd);
  Atomics.store(gate, 1, 1);
  await native;
  t.true(allZero(arena), 'the native thread\'s pushes');
  assertIntact(t, pool);
});

test('zero: true, a push that throws part-way (a stack overflow) leaves the object out, never lost', (t) => {
  const kinds = {
    'shared arena, cached': () => new ObjectPool({ capacity: 4, objectSize: 64, slots: 1, zero: true, cache: 8 }),
    'shared arena, no cache': () => new ObjectPool({ capacity: 4, objectSize: 64, slots: 1, zero: true, cache: 0 }),
    'ArrayBuffer, cached': () => ObjectPool.fromBuffer(new ArrayBuffer(256), { objectSize: 64, slots: 1, zero: true, cache: 8 }),
    'fromBuffers, no cache': () => ObjectPool.fromBuffers([0, 1, 2, 3].map(() => new Uint8Array(64)), { slots: 1, zero: true, cache: 0 }),
  };
  for (const [name, make] of Object.entries(kinds)) {
    for (let depthOffset = 0; depthOffset < 40; depthOffset += 3) {
      const pool = make();
      const h = pool.pop();
      pool.buffer(h).fill(9);
      let outcome = null;
      let frames = 0;
      // Recurse until the stack overflows, then try the push `depthOffset` frames up from the limit.
      (function probe(depth) {
        try { probe(depth + 1); } catch { frames = depth; }
        if (outcome !== null || depth !== Math.max(0, frames - depthOffset)) return;
        try { pool.push(h); outcome = 'pushed'; } catch (err) { outcome = err instanceof RangeError && !err.code ? 'overflow' : `error ${err.code}`; }
      })(0);
      if (outcome === 'pushed') {
        assertIntact(t, pool);
        t.true(pool.buffer(h).every((b) => b === 0), `${name}: zeroed`);
      } else {
        t.is(outcome, 'overflow', name);
        assertIntact(t, pool, [h]);
        pool.push(h); // still out, and still ours to push
        assertIntact(t, pool);
      }
    }
  }
});

test('leak detection needs a checked pool: asked for on an unchecked pool it is an error; from OBJPOOL_LEAKS it is off there', (t) => {
  t.throws(() => new ObjectPool({ capacity: 2, objectSize: 8, checked: false, leaks: {} }), { code: 'ERR_INVALID_ARG_VALUE' });
  const out = leakScript(`
    process.on('warning', (w) => { if (w.code === 'OBJPOOL_LEAK') console.log('warning'); });
    const pool = new ObjectPool({ capacity: 4, objectSize: 16, checked: false });
    (async () => { (() => pool.acquire())(); await settle(); console.log('done'); })();`, { OBJPOOL_LEAKS: 'all' });
  t.is(out.trim(), 'done');
});
