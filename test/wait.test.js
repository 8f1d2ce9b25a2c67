'use strict';
// Waiting for an object: popAsync/acquireAsync resolve on a push from any
// thread (JS or native), in call order, without polling; abort, timeout and
// close reject; no object is lost to a waiter that gave up.
const test = require('ava');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { ObjectPool } = require('..');
const testing = require('./addon');
const { assertIntact, until, spawnWorker } = require('./helpers');

const workerFile = path.join(__dirname, 'fixtures', 'cache-worker.js');

const spawn = (workerData) => spawnWorker(workerFile, workerData);

function drained(pool) {
  const all = [];
  for (let h; (h = pool.pop()) !== -1; ) all.push(h);
  return all;
}

test('popAsync resolves at once when an object is there, and in call order as objects come back', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8 });
  const first = await pool.popAsync();
  t.true(first >= 0 && first < 4);
  const rest = drained(pool);
  const order = [];
  const waits = [0, 1, 2].map((i) => pool.popAsync().then((h) => { order.push(i); return h; }));
  t.is(pool.stats().waiting, 3);
  pool.push(rest[0]);
  await until(() => order.length === 1);
  pool.push(rest[1]);
  pool.push(rest[2]);
  const got = await Promise.all(waits);
  t.deepEqual(order, [0, 1, 2], 'first come, first served');
  t.deepEqual([...got].sort(), [rest[0], rest[1], rest[2]].sort());
  t.is(pool.stats().waiting, 0);
  for (const h of [first, ...got]) pool.push(h);
  assertIntact(t, pool);
});

test('acquireAsync resolves with the object\'s Buffer', async (t) => {
  const pool = new ObjectPool({ capacity: 1, objectSize: 16 });
  const a = await pool.acquireAsync();
  t.is(a, pool.buffer(0));
  const b = pool.acquireAsync();
  pool.release(a);
  t.is(await b, a);
});

test('a push from a worker wakes the main thread\'s waiter', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8, cache: 0 });
  const x = spawn({ task: 'pushLater', descriptor: pool.descriptor, count: 4, cache: 0 });
  await x.wait((m) => m.held !== undefined);
  t.is(pool.pop(), -1);
  const waits = [pool.popAsync(), pool.popAsync(), pool.popAsync(), pool.popAsync()];
  x.w.postMessage('go');
  const got = await Promise.all(waits);
  t.is(new Set(got).size, 4);
  for (const h of got) pool.push(h);
  await x.w.terminate();
  assertIntact(t, pool);
});

test('a push from a native thread (the C++ core, no JS) wakes a waiter', async (t) => {
  const pool = new ObjectPool({ capacity: 2, objectSize: 8, cache: 0 });
  const d = pool.descriptor;
  const gate = new Int32Array(new SharedArrayBuffer(8));
  const native = testing.holdThenReturn(new Uint8Array(d.meta), new Uint8Array(d.arena), gate, 2);
  await until(() => Atomics.load(gate, 0) === 1);
  t.is(pool.pop(), -1, 'the native thread holds both');
  const waiting = pool.popAsync();
  Atomics.store(gate, 1, 1);
  const h = await waiting;
  t.true(h === 0 || h === 1);
  await native;
  pool.push(h);
  assertIntact(t, pool);
});

test.serial('a waiting thread does not poll: no timer, and next to no CPU', async (t) => {
  const pool = new ObjectPool({ capacity: 1, objectSize: 8 });
  const h = pool.pop();
  const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const waiting = pool.popAsync();
  const cpu0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, 300));
  const cpu = process.cpuUsage(cpu0);
  const during = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  t.is(during, before + 0, 'the wait added no timer (the one above is the test\'s own sleep, gone by now)');
  t.log(`CPU while waiting 300 ms: ${(cpu.user + cpu.system) / 1000} ms (${process.platform}-${process.arch})`);
  t.true(cpu.user + cpu.system < 60_000, `CPU while waiting 300 ms: ${(cpu.user + cpu.system) / 1000} ms`);
  pool.push(h);
  t.is(await waiting, h);
});

test('abort rejects with signal.reason, timeout with ERR_OBJPOOL_TIMEOUT; the pool is untouched', async (t) => {
  const pool = new ObjectPool({ capacity: 2, objectSize: 8 });
  const held = drained(pool);
  const ac = new AbortController();
  const aborted = pool.popAsync({ signal: ac.signal });
  ac.abort();
  const err = await aborted.catch((e) => e);
  t.is(err.name, 'AbortError', 'a DOMException by default');
  const reason = new Error('mine');
  const ac2 = new AbortController();
  const p2 = pool.popAsync({ signal: ac2.signal });
  ac2.abort(reason);
  await t.throwsAsync(p2, { is: reason });
  await t.throwsAsync(pool.popAsync({ signal: AbortSignal.abort(reason) }), { is: reason }, 'already aborted');
  await t.throwsAsync(pool.popAsync({ timeout: 5 }), { code: 'ERR_OBJPOOL_TIMEOUT' });
  t.is(pool.stats().waiting, 0);
  t.throws(() => pool.popAsync({ timeout: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => pool.popAsync({ signal: {} }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => pool.popAsync(null), { code: 'ERR_INVALID_ARG_TYPE' });
  assertIntact(t, pool, held);
});

test('timeouts and aborts racing with pushes from a worker: no object lost or handed out twice', async (t) => {
  const pool = new ObjectPool({ capacity: 32, objectSize: 8, slots: 2, cache: 0 });
  let served = 0, gaveUp = 0;
  for (let round = 0; round < 10; round++) {
    const x = spawn({ task: 'pushLater', descriptor: pool.descriptor, count: 32, cache: 4 });
    await x.wait((m) => m.held !== undefined);
    const got = [];
    const waits = [];
    for (let i = 0; i < 48; i++) {
      // Every waiter gives up soon (an abort or a timeout) unless an object comes first.
      const ac = new AbortController();
      if (i % 2 === 0) setTimeout(() => ac.abort(), Math.floor(Math.random() * 4));
      const options = i % 2 === 0 ? { signal: ac.signal } : { timeout: 1 + (i % 5) };
      waits.push(pool.popAsync(options).then((h) => { got.push(h); }, (e) => {
        if (e.name !== 'AbortError' && e.code !== 'ERR_OBJPOOL_TIMEOUT') throw e;
        gaveUp++;
      }));
    }
    x.w.postMessage('go');
    await Promise.all(waits);
    await x.wait((m) => m.done);
    served += got.length;
    t.is(new Set(got).size, got.length, `round ${round}: no handle twice`);
    t.is(pool.stats().waiting, 0, `round ${round}: every waiter settled`);
    for (const h of got) pool.push(h);
    await x.w.terminate();
    assertIntact(t, pool);
  }
  t.log(`480 waiters: ${served} served, ${gaveUp} gave up`);
  t.true(served > 0 && gaveUp > 0, 'both outcomes happened');
});

test('close rejects every waiter, in this thread and in others, with ERR_OBJPOOL_CLOSED', async (t) => {
  const pool = new ObjectPool({ capacity: 2, objectSize: 8 });
  const held = drained(pool);
  const w = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const { ObjectPool } = require(${JSON.stringify(require.resolve('..'))});
    const pool = ObjectPool.attach(workerData);
    pool.popAsync().then((h) => parentPort.postMessage('got ' + h), (e) => parentPort.postMessage(e.code));
    parentPort.postMessage('waiting');`, { eval: true, workerData: pool.descriptor });
  const messages = [];
  w.on('message', (m) => messages.push(m));
  await until(() => messages.includes('waiting'));
  await until(() => pool.stats().waiting === 1);
  const mine = pool.popAsync();
  const done = pool.close();
  await t.throwsAsync(mine, { code: 'ERR_OBJPOOL_CLOSED' });
  await until(() => messages.length === 2);
  t.is(messages[1], 'ERR_OBJPOOL_CLOSED');
  await t.throwsAsync(pool.popAsync(), { code: 'ERR_OBJPOOL_CLOSED' });
  for (const h of held) pool.push(h);
  await done;
  await w.terminate();
});
