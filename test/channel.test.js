'use strict';
// Handle channels: a pool's handles handed between threads through a
// lock-free queue in shared memory. Ownership (a handle is in one place at
// a time), exact stats, close (of the channel, of the pool), waiting
// without polling, bad input and forged memory, and termination mid-call.
const test = require('ava');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { ObjectPool, HandleChannel } = require('..');
const testing = require('./addon');
const { assertIntact, until, spawnWorker } = require('./helpers');

const workerFile = path.join(__dirname, 'fixtures', 'channel-worker.js');
const spawn = (task, pool, channels, extra = {}) =>
  spawnWorker(workerFile, { task, pool: pool.descriptor, channels: channels.map((c) => c.descriptor), ...extra });

function popN(pool, n) {
  const hs = [];
  for (let i = 0; i < n; i++) hs.push(pool.pop());
  return hs;
}

// A pool whose view's native chanSettle is counted: the addon's open() is
// wrapped while the pool is made (the view's native calls are reachable
// from no object of the pool).
function countingPool(options, counts) {
  const { native } = require('../dist/native');
  const open = native.open;
  native.open = (...args) => {
    const ops = open(...args);
    const settle = ops.chanSettle;
    ops.chanSettle = (...a) => { counts.settles++; return settle(...a); };
    return ops;
  };
  try {
    return new ObjectPool(options);
  } finally {
    native.open = open;
  }
}

test('capacity is rounded up to a power of two, at least 2; the descriptor is frozen and structured-cloneable', (t) => {
  const pool = new ObjectPool({ capacity: 16, objectSize: 8 });
  t.is(pool.channel().capacity, 1024);
  t.is(pool.channel({ capacity: 5 }).capacity, 8);
  t.is(pool.channel({ capacity: 1 }).capacity, 2, 'at least 2: Vyukov\'s queue needs two cells');
  t.is(pool.channel({ capacity: 2 }).capacity, 2);
  t.is(pool.channel({ capacity: 2 ** 20 }).capacity, 2 ** 20);
  const ch = pool.channel({ capacity: 4 });
  const d = ch.descriptor;
  t.true(Object.isFrozen(d));
  t.is(d.kind, 'objpool-channel');
  t.is(d.capacity, 4);
  const copy = structuredClone(d);
  const again = HandleChannel.attach(copy, pool);
  const h = pool.pop();
  t.true(ch.send(h));
  t.is(again.size, 1, 'the copy names the same memory');
  t.is(again.receive(), h);
  pool.push(h);
  t.throws(() => new HandleChannel(), { instanceOf: TypeError });
});

test('FIFO in one thread; full returns false and the handle stays the sender\'s; empty returns -1', (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 8, cache: 0 });
  const ch = pool.channel({ capacity: 4 });
  const hs = popN(pool, 5);
  for (let i = 0; i < 4; i++) t.true(ch.send(hs[i]));
  t.is(ch.size, 4);
  t.false(ch.send(hs[4]), 'full');
  t.is(pool.stats().inUse, 5);
  pool.push(hs[4]); // still the sender's
  t.deepEqual([ch.receive(), ch.receive(), ch.receive(), ch.receive()], hs.slice(0, 4));
  t.is(ch.receive(), -1);
  t.is(ch.size, 0);
  // Around the ring many times.
  for (let i = 0; i < 100; i++) {
    const h = pool.pop();
    t.true(ch.send(h));
    t.is(ch.receive(), h);
    pool.push(h);
  }
  for (const h of hs.slice(0, 4)) pool.push(h);
  assertIntact(t, pool);
});

test('ownership: a handle in a channel cannot be pushed or sent again; one in the pool cannot be sent; nothing changes', (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 8, cache: 4 });
  const ch = pool.channel({ capacity: 8 });
  const other = pool.channel({ capacity: 8 });
  const [a, b] = popN(pool, 2);
  t.true(ch.send(a));
  const code = { code: 'ERR_OBJPOOL_DOUBLE_PUSH' };
  t.throws(() => pool.push(a), code);
  t.throws(() => ch.send(a), code);
  t.throws(() => other.send(a), code);
  t.throws(() => pool.pushMany(Uint32Array.of(a)), code);
  t.throws(() => ch.sendMany(Uint32Array.of(b, a)), code, 'all or nothing');
  t.is(ch.size, 1);
  t.is(other.size, 0);
  pool.push(b);
  t.throws(() => ch.send(b), code, 'b is in the pool (in the cache)');
  const c = pool.pop();
  t.throws(() => ch.sendMany(Uint32Array.of(c, c)), code, 'one handle twice in a batch');
  t.is(ch.size, 1);
  t.is(pool.stats().inUse, 2, 'a in the channel, c in hand');
  t.is(ch.receive(), a);
  pool.push(a);
  pool.push(c);
  assertIntact(t, pool);
});

test('an unchecked pool sends without ownership checks', (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8, checked: false });
  const ch = pool.channel({ capacity: 4 });
  t.true(ch.send(3));
  t.is(ch.receive(), 3);
});

test('sendMany sends the prefix that fits; receiveMany takes up to count; both all-or-nothing on errors', (t) => {
  const pool = new ObjectPool({ capacity: 32, objectSize: 8, cache: 0 });
  const ch = pool.channel({ capacity: 8 });
  const hs = new Uint32Array(12);
  t.is(pool.popMany(hs), 12);
  t.is(ch.sendMany(hs, 0), 0);
  t.is(ch.sendMany(hs), 8, 'a prefix: as many as fit');
  t.is(ch.sendMany(hs.subarray(8)), 0, 'full');
  t.is(pool.stats().inUse, 12);
  const out = new Uint32Array(16);
  t.is(ch.receiveMany(out, 3), 3);
  t.deepEqual([...out.subarray(0, 3)], [...hs.subarray(0, 3)]);
  t.is(ch.receiveMany(out.subarray(3)), 5);
  t.deepEqual([...out.subarray(0, 8)], [...hs.subarray(0, 8)], 'FIFO');
  t.is(ch.receiveMany(out), 0);
  t.throws(() => ch.sendMany(Uint32Array.of(hs[8], 99)), { code: 'ERR_OUT_OF_RANGE' });
  t.is(ch.size, 0, 'nothing sent');
  pool.pushMany(hs);
  assertIntact(t, pool);
});

test('bad input gets coded errors and changes nothing', (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8 });
  const ch = pool.channel({ capacity: 4 });
  const type = { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' };
  const range = { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' };
  for (const v of ['1', null, undefined, 1n, {}]) t.throws(() => ch.send(v), type);
  for (const v of [-1, 1.5, 4, 2 ** 32, NaN, Infinity]) t.throws(() => ch.send(v), range);
  t.throws(() => ch.sendMany([1]), type);
  t.throws(() => ch.sendMany(new Int32Array(1)), type);
  t.throws(() => ch.sendMany(new Uint32Array(1), 2), range);
  t.throws(() => ch.receiveMany([0]), type);
  t.throws(() => ch.receiveMany(new Uint32Array(1), 2), range);
  t.throws(() => pool.channel('x'), type);
  t.throws(() => pool.channel({ capacity: 0 }), range);
  t.throws(() => pool.channel({ capacity: 2 ** 20 + 1 }), range);
  t.throws(() => pool.channel({ capacity: 1.5 }), range);
  t.throws(() => pool.channel({ capacity: '8' }), type);
  t.throws(() => ch.receiveAsync(null), type);
  t.throws(() => ch.receiveAsync({ signal: {} }), type);
  t.throws(() => ch.receiveAsync({ timeout: -1 }), range);
  t.is(ch.size, 0);
  assertIntact(t, pool);
});

test('objects in channels count as in use, exactly, in every thread', async (t) => {
  const pool = new ObjectPool({ capacity: 64, objectSize: 8, cache: 8 });
  const ch = pool.channel({ capacity: 64 });
  const x = spawn('stats', pool, [ch]);
  const hs = popN(pool, 10);
  for (const h of hs.slice(0, 7)) t.true(ch.send(h));
  t.is(pool.stats().inUse, 10);
  x.w.postMessage('stats');
  await until(() => x.messages.length === 2);
  t.is(x.messages[1].inUse, 10, 'the worker sees the same');
  t.is(x.messages[1].size, 7);
  for (const h of hs.slice(7)) pool.push(h);
  for (let h; (h = ch.receive()) !== -1; ) pool.push(h);
  t.is(pool.stats().inUse, 0);
  x.w.postMessage('exit');
  await x.exited;
  assertIntact(t, pool);
});

test('handles cross threads both ways, stamped bytes intact, nothing lost or twice (2 senders, 2 receivers)', async (t) => {
  const pool = new ObjectPool({ capacity: 64, objectSize: 16 });
  const ch = pool.channel({ capacity: 8 });
  const senders = [spawn('send', pool, [ch], { count: 500 }), spawn('send', pool, [ch], { count: 500 })];
  const receivers = [spawn('receiveAll', pool, [ch]), spawn('receiveAll', pool, [ch])];
  await Promise.all(senders.map((s) => s.wait((m) => m.sent === 500)));
  ch.close();
  const results = await Promise.all(receivers.map((r) => r.wait((m) => m.received !== undefined)));
  t.is(results[0].received + results[1].received, 1000);
  t.is(results[0].badStamps + results[1].badStamps, 0);
  await Promise.all([...senders, ...receivers].map((x) => x.exited));
  t.is(pool.stats().inUse, 0);
  assertIntact(t, pool);
});

test('an echo through a worker keeps each sender\'s order', async (t) => {
  const pool = new ObjectPool({ capacity: 32, objectSize: 8, cache: 0 });
  const to = pool.channel({ capacity: 4 });
  const back = pool.channel({ capacity: 4 });
  const x = spawn('echo', pool, [to, back]);
  const order = [];
  let next = 0;
  for (let i = 0; i < 300; i++) {
    const h = pool.pop();
    order.push(h);
    while (!to.send(h)) {
      const r = await back.receiveAsync();
      t.is(r, order[next++]);
      pool.push(r);
    }
  }
  to.close();
  while (next < order.length) {
    const r = await back.receiveAsync();
    t.is(r, order[next++]);
    pool.push(r);
  }
  t.like(await x.wait((m) => m.echoed !== undefined), { echoed: 300 });
  await x.exited;
  assertIntact(t, pool);
});

test('close(): sends throw ERR_OBJPOOL_CLOSED, receivers take what is left, then -1, rejection and the end of for await', async (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 8 });
  const ch = pool.channel({ capacity: 4 });
  const [a, b, c] = popN(pool, 3);
  ch.send(a);
  ch.send(b);
  ch.close();
  ch.close(); // again: nothing
  t.true(ch.closed);
  t.throws(() => ch.send(c), { code: 'ERR_OBJPOOL_CLOSED' });
  t.throws(() => ch.sendMany(Uint32Array.of(c)), { code: 'ERR_OBJPOOL_CLOSED' });
  t.is(await ch.receiveAsync(), a);
  const rest = [];
  for await (const h of ch) rest.push(h);
  t.deepEqual(rest, [b]);
  t.is(ch.receive(), -1);
  await t.throwsAsync(ch.receiveAsync(), { code: 'ERR_OBJPOOL_CLOSED' });
  for (const h of [a, b, c]) pool.push(h);
  assertIntact(t, pool);
});

test('a send racing with close(): nothing arrives once a receiver has seen the channel closed and empty', async (t) => {
  for (let trial = 0; trial < 40; trial++) {
    const pool = new ObjectPool({ capacity: 64, objectSize: 8, cache: 0 });
    const ch = pool.channel({ capacity: 64 });
    const x = spawn('sendUntilClosed', pool, [ch]);
    await x.wait((m) => m === 'go');
    let received = 0;
    const drain = (async () => { for await (const h of ch) { received++; pool.push(h); } })();
    await new Promise((r) => setTimeout(r, trial % 4));
    ch.close();
    await drain; // ended: the channel was closed and empty
    const { sent } = await x.wait((m) => m.sent !== undefined);
    t.is(ch.receive(), -1, `trial ${trial}: nothing arrived after the end`);
    t.is(received, sent, `trial ${trial}: every send that succeeded was received before the end`);
    await x.exited;
    t.is(pool.stats().inUse, 0);
  }
});

test('a send stopped between its look at the closed flag and its claim, while the channel closes and is seen empty, sends nothing', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8, cache: 0 });
  const ch = pool.channel({ capacity: 4 });
  const d = pool.descriptor;
  const gate = new Int32Array(new SharedArrayBuffer(8));
  const sending = testing.sendPaused(new Uint8Array(d.meta), new Uint8Array(d.arena), new Int32Array(ch.descriptor.memory), gate);
  await until(() => Atomics.load(gate, 0) === 1); // the native send saw the channel open
  ch.close();
  t.is(ch.receive(), -1);
  await t.throwsAsync(ch.receiveAsync(), { code: 'ERR_OBJPOOL_CLOSED' }, 'closed and empty');
  Atomics.store(gate, 1, 1);
  t.is(await sending, 'closed', 'the send refused after its claim');
  t.is(ch.receive(), -1, 'nothing arrived after the end (the claimed cell was a hole)');
  t.is(ch.size, 0);
  t.is(pool.stats().inUse, 0, 'the object went back');
});

// The interleavings below are fixed by wrapping Atomics.compareExchange,
// which a JS send looks up at each call: the wrapper runs what "other
// threads" do at the exact point between a send's claim of a cell and its
// ownership check.
function between(claimOf, pool, action) {
  const real = Atomics.compareExchange;
  const meta = pool.descriptor.meta;
  Atomics.compareExchange = function (arr, i, expected, replacement) {
    if (arr.buffer === meta && i === claimOf && replacement === 3) {
      Atomics.compareExchange = real;
      action();
    }
    return real(arr, i, expected, replacement);
  };
  return () => { Atomics.compareExchange = real; };
}

test.serial('a send refused after its claim (its handle pushed meanwhile) leaves a hole that a closing pool gets past', async (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 8, cache: 0 });
  const ch = pool.channel({ capacity: 4 });
  const [a, b] = popN(pool, 2);
  let closing;
  const undo = between(a, pool, () => {
    t.true(ch.send(b)); // another sender: the next cell
    pool.push(a);       // the misuse, in "another thread"
    closing = pool.close(); // the close's take-back stops at a's claimed cell
  });
  try {
    t.throws(() => ch.send(a), { code: 'ERR_OBJPOOL_DOUBLE_PUSH' });
  } finally {
    undo();
  }
  let settled = false;
  closing.then(() => { settled = true; });
  await until(() => settled, 5000); // b was taken back: every object released
  t.is(pool.stats().released, 8);
});

test('the receive closure alone keeps the channel known to its pool: a close still takes back what it holds (--expose-gc)', (t) => {
  const script = `
    const { ObjectPool } = require(${JSON.stringify(require.resolve('..'))});
    (async () => {
      const pool = new ObjectPool({ capacity: 8, objectSize: 8, cache: 0 });
      let ch = pool.channel({ capacity: 4 });
      const { receive } = ch;
      for (let i = 0; i < 3; i++) ch.send(pool.pop());
      const gone = new WeakRef(ch);
      ch = null;
      // (No deref() before the collections: it keeps the target alive for the job.)
      for (let i = 0; i < 5; i++) { await new Promise((r) => setTimeout(r, 10)); gc(); }
      const collected = gone.deref() === undefined;
      const first = receive();
      pool.push(first);
      let settled = false;
      pool.close().then(() => { settled = true; });
      for (let i = 0; i < 200 && !settled; i++) await new Promise((r) => setTimeout(r, 10));
      console.log(JSON.stringify({ collected, first, settled, released: pool.stats().released, after: receive() }));
    })();`;
  const r = JSON.parse(require('node:child_process').execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60_000 }));
  t.true(r.collected, 'the HandleChannel itself was collected');
  t.true(r.first >= 0, 'receive() still works');
  t.true(r.settled, 'the close took back the two objects left in the channel');
  t.is(r.released, 8);
  t.is(r.after, -1);
});

test('for await ends at the close even when a send claims a cell (its hole) right after the last look', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8, cache: 0 });
  const ch = pool.channel({ capacity: 4 });
  const d = pool.descriptor;
  const words = new Int32Array(ch.descriptor.memory);
  const ENQ = 32; // the enqueue position's word (native/channel.hpp, chan_layout)
  const gate = new Int32Array(new SharedArrayBuffer(8));
  const sending = testing.sendPaused(new Uint8Array(d.meta), new Uint8Array(d.arena), words, gate);
  await until(() => Atomics.load(gate, 0) === 1); // the native send saw the channel open
  const loop = (async () => { for await (const h of ch) pool.push(h); return 'ended'; })();
  await new Promise((r) => setImmediate(r)); // the loop waits in receiveAsync
  ch.close(); // the waiter is rejected: closed and empty
  // Before that rejection reaches the loop: the paused send claims its cell
  // (and makes it a hole), so the channel reads "not drained" for a moment.
  const before = Atomics.load(words, ENQ);
  Atomics.store(gate, 1, 1);
  while (Atomics.load(words, ENQ) === before) { /* the native thread claims */ }
  t.is(await loop, 'ended', 'for await ended, it did not throw');
  t.is(await sending, 'closed');
  t.is(ch.receive(), -1);
  t.is(pool.stats().inUse, 0);
});

test('close() of a channel wakes receivers waiting in other threads', async (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 8 });
  const ch = pool.channel({ capacity: 4 });
  const x = spawn('receiveOnce', pool, [ch]);
  await x.wait((m) => m.waiting);
  await new Promise((r) => setTimeout(r, 20));
  ch.close();
  t.like(await x.wait((m) => m.rejected !== undefined || m.got !== undefined), { rejected: 'ERR_OBJPOOL_CLOSED' });
  await x.exited;
});

test('the pool\'s close() closes its channels in every thread and releases what they hold exactly once', async (t) => {
  const pool = new ObjectPool({ capacity: 32, objectSize: 8, cache: 0 });
  const a = pool.channel({ capacity: 8 });
  const b = pool.channel({ capacity: 8 });
  const waiter = spawn('receiveOnce', pool, [pool.channel({ capacity: 2 })]);
  const watcher = spawn('stats', pool, [b]);
  await waiter.wait((m) => m.waiting);
  await watcher.wait((m) => m.inUse !== undefined);
  const held = popN(pool, 12);
  for (const h of held.slice(0, 5)) a.send(h);
  for (const h of held.slice(5, 8)) b.send(h);
  const pending = a.receiveAsync(); // resolves at once: a holds handles
  t.is(await pending, held[0]);
  const released = [];
  const closing = pool.close((obj, info) => released.push(info.handle));
  t.true(a.closed && b.closed);
  t.is(a.receive(), -1, 'emptied into the pool');
  t.throws(() => a.send(held[8]), { code: 'ERR_OBJPOOL_CLOSED' });
  t.like(await waiter.wait((m) => m.rejected !== undefined || m.got !== undefined), { rejected: 'ERR_OBJPOOL_CLOSED' });
  watcher.w.postMessage('stats');
  await until(() => watcher.messages.length === 2);
  t.true(watcher.messages[1].closed, 'closed in the other thread too');
  // What is still out comes back by push.
  for (const h of [held[0], ...held.slice(8)]) pool.push(h);
  await closing;
  t.is(released.length, 32);
  t.is(new Set(released).size, 32, 'each object released once');
  t.is(pool.stats().released, 32);
  watcher.w.postMessage('exit');
  await Promise.all([waiter.exited, watcher.exited]);
});

test('a send racing with the pool\'s close: every object is released exactly once', async (t) => {
  for (let round = 0; round < 20; round++) {
    const pool = new ObjectPool({ capacity: 64, objectSize: 8, cache: 0 });
    const ch = pool.channel({ capacity: 16 });
    const x = spawn('send', pool, [ch], { count: 100000 });
    await until(() => ch.size > 0);
    await new Promise((r) => setTimeout(r, round % 4));
    const released = [];
    const closing = pool.close((obj, info) => released.push(info.handle));
    await x.exited.catch(() => {}); // the worker's popAsync/send throws ERR_OBJPOOL_CLOSED
    // The worker stops with at most one object in hand: push it back.
    for (let h = 0; h < 64; h++) {
      try { pool.push(h); } catch (err) { t.is(err.code, 'ERR_OBJPOOL_DOUBLE_PUSH'); }
    }
    await closing;
    t.is(new Set(released).size, 64, `round ${round}: every object released`);
    t.is(released.length, 64, `round ${round}: none twice`);
  }
});

test('a channel made or attached after the pool closed', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8 });
  const ch = pool.channel();
  await pool.close();
  t.throws(() => pool.channel(), { code: 'ERR_OBJPOOL_CLOSED' });
  const again = HandleChannel.attach(ch.descriptor, pool);
  t.true(again.closed);
  t.is(again.receive(), -1);
  await t.throwsAsync(again.receiveAsync(), { code: 'ERR_OBJPOOL_CLOSED' });
});

test('receiveAsync: a send from a worker wakes it; waiters of one thread are served in call order', async (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 8 });
  const ch = pool.channel({ capacity: 8 });
  const order = [];
  const waits = [0, 1, 2].map((i) => ch.receiveAsync().then((h) => { order.push(i); return h; }));
  const x = spawn('send', pool, [ch], { count: 3 });
  const got = await Promise.all(waits);
  t.deepEqual(order, [0, 1, 2]);
  t.is(new Set(got).size, 3);
  await x.exited;
  for (const h of got) pool.push(h);
  assertIntact(t, pool);
});

test('receiveAsync: a send from a native thread (the C++ core, no JS) wakes it', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8, cache: 0 });
  const ch = pool.channel({ capacity: 4 });
  const d = pool.descriptor;
  const gate = new Int32Array(new SharedArrayBuffer(8));
  const sending = testing.sendFromThread(new Uint8Array(d.meta), new Uint8Array(d.arena), new Int32Array(ch.descriptor.memory), gate, 2);
  await until(() => Atomics.load(gate, 0) === 1);
  const first = ch.receiveAsync();
  const second = ch.receiveAsync();
  Atomics.store(gate, 1, 1);
  const got = [await first, await second];
  t.is(await sending, 2);
  t.is(new Set(got).size, 2);
  for (const h of got) pool.push(h);
  t.is(pool.stats().inUse, 0);
});

test('a send when nobody waits makes no native call; one with a waiter does', async (t) => {
  const counts = { settles: 0 };
  const pool = countingPool({ capacity: 8, objectSize: 8 }, counts);
  const ch = pool.channel({ capacity: 8 }); // its send captures the counting chanSettle
  const hs = popN(pool, 4);
  for (const h of hs.slice(0, 3)) ch.send(h);
  for (let i = 0; i < 3; i++) ch.receive();
  t.is(counts.settles, 0, 'no waiter: no native call');
  const waiting = ch.receiveAsync();
  ch.send(hs[3]);
  t.is(counts.settles, 1, 'a waiter: one native call to wake it');
  t.is(await waiting, hs[3]);
  for (const h of hs) pool.push(h);
});

test('receiveAsync: abort and timeout; a handle that arrives after its waiter gave up stays for the next', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8 });
  const ch = pool.channel({ capacity: 4 });
  const ac = new AbortController();
  const aborted = ch.receiveAsync({ signal: ac.signal });
  const timedOut = ch.receiveAsync({ timeout: 10 });
  ac.abort(new Error('stop'));
  await t.throwsAsync(aborted, { message: 'stop' });
  await t.throwsAsync(timedOut, { code: 'ERR_OBJPOOL_TIMEOUT' });
  await t.throwsAsync(ch.receiveAsync({ signal: AbortSignal.abort(new Error('already')) }), { message: 'already' });
  const h = pool.pop();
  ch.send(h);
  t.is(ch.size, 1, 'nobody took it');
  t.is(await ch.receiveAsync(), h);
  pool.push(h);
  assertIntact(t, pool);
});

test('receiveAsync keeps a worker alive while it waits, and lets it exit once served', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8 });
  const ch = pool.channel({ capacity: 4 });
  const x = spawn('receiveOnce', pool, [ch]);
  await x.wait((m) => m.waiting);
  let exited = false;
  x.exited.then(() => { exited = true; });
  await new Promise((r) => setTimeout(r, 100));
  t.false(exited, 'still waiting');
  ch.send(pool.pop());
  t.true(Number.isInteger((await x.wait((m) => m.got !== undefined)).got));
  t.is(await x.exited, 0);
  t.is(pool.stats().inUse, 0);
});

test.serial('an idle receiveAsync uses no CPU and no timer', async (t) => {
  const pool = new ObjectPool({ capacity: 1, objectSize: 8 });
  const ch = pool.channel({ capacity: 2 });
  const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const waiting = ch.receiveAsync();
  const cpu0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, 300));
  const cpu = process.cpuUsage(cpu0);
  const during = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  t.is(during, before, 'the wait added no timer');
  t.log(`CPU while waiting 300 ms: ${(cpu.user + cpu.system) / 1000} ms`);
  t.true(cpu.user + cpu.system < 60_000, `CPU while waiting 300 ms: ${(cpu.user + cpu.system) / 1000} ms`);
  const h = pool.pop();
  ch.send(h);
  t.is(await waiting, h);
});

test('attach refuses forged and foreign descriptors with ERR_OBJPOOL_BAD_DESCRIPTOR', (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8 });
  const other = new ObjectPool({ capacity: 4, objectSize: 8 });
  const d = pool.channel({ capacity: 4 }).descriptor;
  const bad = { code: 'ERR_OBJPOOL_BAD_DESCRIPTOR' };
  t.throws(() => HandleChannel.attach(d, other), bad, 'another pool\'s channel');
  t.throws(() => HandleChannel.attach({ ...d, meta: other.descriptor.meta }, other), bad, 'another pool\'s channel, its meta swapped');
  t.throws(() => HandleChannel.attach({ ...d, kind: 'objpool' }, pool), bad);
  t.throws(() => HandleChannel.attach({ ...d, version: 1 }, pool), bad);
  t.throws(() => HandleChannel.attach({ ...d, memory: new ArrayBuffer(d.memory.byteLength) }, pool), bad);
  t.throws(() => HandleChannel.attach({ ...d, memory: new SharedArrayBuffer(64) }, pool), bad);
  t.throws(() => HandleChannel.attach({ ...d, meta: new SharedArrayBuffer(d.meta.byteLength) }, pool), bad);
  t.throws(() => HandleChannel.attach({ ...d, capacity: 8 }, pool), bad);
  // A header that lies about the capacity (the memory holds 4 cells).
  const forged = new SharedArrayBuffer(d.memory.byteLength);
  new Uint8Array(forged).set(new Uint8Array(d.memory));
  new Uint32Array(forged)[2] = 1 << 20;
  t.throws(() => HandleChannel.attach({ ...d, memory: forged, capacity: 1 << 20 }, pool), bad);
  new Uint32Array(forged)[2] = 3;
  t.throws(() => HandleChannel.attach({ ...d, memory: forged, capacity: 3 }, pool), bad);
  new Uint32Array(forged)[0] = 0;
  new Uint32Array(forged)[2] = 4;
  t.throws(() => HandleChannel.attach({ ...d, memory: forged }, pool), bad, 'wrong magic');
  t.throws(() => HandleChannel.attach(null, pool), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => HandleChannel.attach(d, {}), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('forged channel memory cannot make receive hand out a handle that is not in flight, nor crash', (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 8, cache: 0 });
  const ch = pool.channel({ capacity: 8 });
  // A second receiver makes it the MPMC queue, whose cells are forged below
  // (the ring's forgery: test/channel-ring.test.js).
  t.is(ch.receive(), -1);
  t.is(HandleChannel.attach(ch.descriptor, pool).receive(), -1);
  const words = new Int32Array(ch.descriptor.memory);
  t.is(words[12], 2, 'the MPMC queue');
  const CELLS = 128; // word indices (native/channel.hpp, chan_layout)
  const h = pool.pop();
  ch.send(h);
  // Forge three more full cells: out of range, a handle in the pool, a hole.
  const values = [1 << 30, 5, -1];
  for (let i = 0; i < 3; i++) {
    words[CELLS + 2 * (1 + i)] = 2 + i; // seq = position + 1: full
    words[CELLS + 2 * (1 + i) + 1] = values[i];
  }
  words[32] = 4; // the enqueue position
  t.is(ch.receive(), h);
  t.is(ch.receive(), -1, 'every forged cell skipped');
  const out = new Uint32Array(8);
  t.is(ch.receiveMany(out), 0);
  // Garbage everywhere: positions, seqs, values; each call stays in bounds.
  for (let round = 0; round < 200; round++) {
    for (let i = 0; i < words.length; i++) if ((i * 7 + round) % 3 === 0) words[i] = (Math.random() * 2 ** 32) | 0;
    words[0] = 0x4e48434f;
    let r = ch.receive();
    t.true(r === -1, 'nothing in flight: nothing to receive');
    r = ch.receiveMany(out);
    t.is(r, 0);
    const x = pool.pop();
    try {
      if (ch.send(x)) {
        const back = ch.receive();
        if (back !== -1) t.is(back, x);
        else { const n = ch.receiveMany(out); if (n === 1) t.is(out[0], x); }
      }
    } catch (err) {
      t.true(['ERR_OBJPOOL_CLOSED'].includes(err.code), err.message);
    }
    // x is now the caller's, or stuck in flight in the forged channel.
    try { pool.push(x); } catch (err) { t.is(err.code, 'ERR_OBJPOOL_DOUBLE_PUSH'); }
  }
  pool.push(h);
});

test('worker.terminate() in the middle of sends and receives: nothing lost, nothing twice, the channel never stalls', async (t) => {
  const workerSrc = (file) => `require(${JSON.stringify(file)})`;
  let heldByWorker = 0, lost = 0;
  for (let trial = 0; trial < 30; trial++) {
    const pool = new ObjectPool({ capacity: 32, objectSize: 8, slots: 1, cache: 0 });
    const ch = pool.channel({ capacity: 4 });
    const w = new Worker(workerSrc(workerFile), { eval: true, workerData: { task: 'churn', pool: pool.descriptor, channels: [ch.descriptor] } });
    await new Promise((r) => w.once('message', r));
    await new Promise((r) => setTimeout(r, trial % 6));
    await w.terminate();
    // The channel still works: what is in it comes out, and a send and a
    // receive go through (a cell claimed but never published would stall it).
    const got = [];
    for (let h; (h = ch.receive()) !== -1; ) got.push(h);
    t.is(ch.size, 0, `trial ${trial}: no cell left claimed`);
    const probe = pool.pop();
    if (probe >= 0) {
      t.true(ch.send(probe));
      t.is(ch.receive(), probe);
      pool.push(probe);
    }
    for (const h of got) pool.push(h);
    const inPool = [];
    for (let h; (h = pool.pop()) !== -1; ) inPool.push(h);
    const seen = new Set(inPool);
    t.is(seen.size, inPool.length, 'none twice');
    // Missing objects were in the worker's hands (still Taken: a push
    // succeeds) or lost (a push is refused).
    for (let h = 0; h < 32; h++) {
      if (seen.has(h)) continue;
      try {
        pool.push(h);
        heldByWorker++;
      } catch (err) {
        if (err.code !== 'ERR_OBJPOOL_DOUBLE_PUSH') throw err;
        lost++;
      }
    }
  }
  t.is(lost, 0, 'no object lost in flight');
  t.log(`30 terminations: ${heldByWorker} objects were in the worker's hands when it stopped`);
});

test.serial('receiveAsync spins briefly before it sleeps, and a spin that catches nothing makes the next ones skip it (1, 2, 4 ... up to 64 calls)', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8 });
  const ch = pool.channel();
  // A clock that moves 1 ms a look (every spin ends after one), counting the
  // spins (each starts with one look), and that can send a handle from
  // inside a spin, as a peer thread would.
  const real = performance.now;
  let looks = 0, sendOnLook = -1;
  performance.now = () => {
    looks++;
    if (looks !== sendOnLook) return looks;
    ch.send(pool.pop());
    return looks - 1; // within that spin still
  };
  const spins = [];
  try {
    const wait = async () => {
      const before = looks;
      const ac = new AbortController();
      const p = ch.receiveAsync({ signal: ac.signal });
      spins.push(looks > before);
      ac.abort();
      await p.catch(() => {});
    };
    for (let i = 0; i < 200; i++) await wait();
    const at = spins.flatMap((s, i) => (s ? [i + 1] : []));
    t.deepEqual(at, [1, 3, 6, 11, 20, 37, 70, 135, 200]);
    // The skips run out, a spin catches a handle sent meanwhile: it is taken
    // at once, without a wait, and the next call spins again.
    for (let i = 0; i < 64; i++) await wait();
    sendOnLook = looks + 2;
    const h = await ch.receiveAsync();
    t.true(h >= 0);
    pool.push(h);
    spins.length = 0;
    await wait();
    t.deepEqual(spins, [true]);
  } finally {
    performance.now = real;
  }
});

test.serial('receiveAsync does not hang when the clock stands still (fake timers): its spin is bounded by looks too', async (t) => {
  const pool = new ObjectPool({ capacity: 2, objectSize: 8 });
  const ch = pool.channel();
  const real = performance.now;
  performance.now = () => 1000;
  let err;
  try {
    err = await ch.receiveAsync({ timeout: 20 }).then(() => null, (e) => e);
  } finally {
    performance.now = real;
  }
  t.is(err?.code, 'ERR_OBJPOOL_TIMEOUT');
});
