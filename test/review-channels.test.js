'use strict';
// Regressions from a hostile review of channels and of the metrics: leak
// tracking untracks exactly what was sent or pushed even when the caller's
// array changes under it; a pool's internals are reachable from no object
// of the library.
const test = require('ava');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { ObjectPool, HandleChannel } = require('..');

// Wraps the view's native call `name` while a pool is made: `hook` sees its
// arguments (the view's native calls are reachable from no object of the pool).
function withNativeHook(name, hook, make) {
  const { native } = require('../dist/native');
  const open = native.open;
  native.open = (...args) => {
    const ops = open(...args);
    const real = ops[name];
    ops[name] = (...a) => { hook(a); return real(...a); };
    return ops;
  };
  try {
    return make();
  } finally {
    native.open = open;
  }
}

for (const [what, call] of [['sendMany', 'chanSendMany'], ['pushMany', 'pushMany']]) {
  test(`leaks on: ${what} sends from one private copy of the handles, taken first, and untracks from that copy`, (t) => {
    const seen = [];
    const pool = withNativeHook(call, (a) => seen.push(what === 'sendMany' ? a[1] : a[0]), () =>
      new ObjectPool({ capacity: 8, objectSize: 8, leaks: { sample: 1 } }));
    const ch = pool.channel({ capacity: 8 });
    const x = pool.acquire(), y = pool.acquire();
    const hx = pool.handleOf(x), hy = pool.handleOf(y);
    const arr = new Uint32Array(new SharedArrayBuffer(4));
    arr[0] = hx;
    const run = (a) => (what === 'sendMany' ? ch.sendMany(a, 1) : pool.pushMany(a, 1));
    run(arr);
    t.is(seen.length, 1);
    t.not(seen[0], arr, 'native code read a copy, not the caller\'s shared array');
    t.deepEqual([...seen[0]], [hx]);
    // Another thread changing the caller's array after the copy changes nothing sent.
    arr[0] = hy;
    t.deepEqual([...seen[0]], [hx]);
    if (what === 'sendMany') t.is(ch.receive(), hx);
    else t.is(pool.stats().inUse, 1);
    // A Proxy of a Uint32Array: the coded error, as without leak tracking.
    t.throws(() => run(new Proxy(arr, {})), { code: 'ERR_INVALID_ARG_TYPE' });
    t.throws(() => run([hy]), { code: 'ERR_INVALID_ARG_TYPE' });
    // The copy is not made through the array's constructor (Symbol.species):
    // one that hands back a longer array, or one over shared memory, is
    // never called, and only what the caller passed goes.
    const hz = what === 'sendMany' ? hx : pool.handleOf(pool.acquire()); // hx went back to the pool above
    const one = Uint32Array.of(hz);
    let called = 0;
    one.constructor = { [Symbol.species]: function (n) { called++; const e = new Uint32Array(n + 1); e[n] = hy; return e; } };
    seen.length = 0;
    if (what === 'sendMany') t.is(ch.sendMany(one), 1);
    else pool.pushMany(one);
    t.is(called, 0, 'Symbol.species was not consulted');
    t.deepEqual([...seen[0]], [hz]);
    if (what === 'sendMany') {
      t.is(ch.receive(), hz);
      t.is(ch.receive(), -1, 'nothing else was sent');
    }
  });
}

test('zero: true with JS zeroing: pushMany copies the handles without Symbol.species or a patched instanceof', (t) => {
  // A pool whose objects JS zeroes (fromBuffers over memory that is not
  // shared): pushMany takes its private copy by the intrinsic, and refuses a
  // Proxy even when Uint32Array[Symbol.hasInstance] says yes.
  const pool = ObjectPool.fromBuffers(Array.from({ length: 4 }, () => new Uint8Array(8)), { zero: true });
  const hs = Uint32Array.of(pool.pop(), pool.pop());
  let called = 0;
  hs.constructor = { [Symbol.species]: function (n) { called++; return new Uint32Array(n); } };
  pool.pushMany(hs);
  t.is(called, 0);
  t.is(pool.stats().inUse, 0);
  const h = pool.pop();
  const fake = new Proxy(Uint32Array.of(h), {});
  const had = Object.getOwnPropertyDescriptor(Uint32Array, Symbol.hasInstance);
  Object.defineProperty(Uint32Array, Symbol.hasInstance, { value: () => true, configurable: true });
  try {
    t.throws(() => pool.pushMany(fake), { code: 'ERR_INVALID_ARG_TYPE' });
  } finally {
    if (had) Object.defineProperty(Uint32Array, Symbol.hasInstance, had);
    else delete Uint32Array[Symbol.hasInstance];
  }
  pool.push(h);
});

test('no symbol or property of a pool or channel leads to its native calls or its own memory', (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8 });
  const ch = pool.channel({ capacity: 2 });
  for (const o of [pool, Object.getPrototypeOf(pool), ch, Object.getPrototypeOf(ch), ch.send, ch.receive]) {
    for (const s of Object.getOwnPropertySymbols(o)) {
      t.not(String(s), 'Symbol(objpool.channelHost)');
      t.not(String(s), 'Symbol(objpool.channel.record)');
    }
  }
  // attach() takes only a real pool instance.
  t.throws(() => HandleChannel.attach(ch.descriptor, Object.create(ObjectPool.prototype)), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => HandleChannel.attach(ch.descriptor, {}), { code: 'ERR_INVALID_ARG_TYPE' });
  const h = pool.pop();
  t.true(HandleChannel.attach(ch.descriptor, pool).send(h));
  t.is(ch.receive(), h);
});


// Channel calls name a channel by an id into the view's table (O(1) in the
// number of channels), reused once a channel's record is collected: a
// reused id must never reach the channel that had it before, and a channel
// whose send and receive outlive it keeps its id.
test('channel ids are reused only after a channel is collected, and name the right channel (--expose-gc)', (t) => {
  const script = `
    const { ObjectPool } = require(${JSON.stringify(path.join(__dirname, '..'))});
    const { native } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'native'))});
    const ids = [];  // every id openChannel gave out, in order
    const open = native.open;
    native.open = (...args) => {
      const ops = open(...args);
      const openChannel = ops.openChannel;
      ops.openChannel = (...a) => { const r = openChannel(...a); ids.push(r[1]); return r; };
      return ops;
    };
    const pool = new ObjectPool({ capacity: 256, objectSize: 8 });
    native.open = open;
    const tick = () => new Promise((r) => setImmediate(r));
    (async () => {
      let chans = [];
      for (let i = 0; i < 60; i++) chans.push(pool.channel({ capacity: 2 }));
      const { send, receive } = chans[7];  // outlive their channel
      const kept = chans.filter((_, i) => i % 2 === 1 && i !== 7);
      chans = null;
      for (let i = 0; i < 10; i++) { global.gc(); await tick(); }
      const fresh = [];
      for (let i = 0; i < 40; i++) fresh.push(pool.channel({ capacity: 2 }));
      const all = [...kept, ...fresh];
      const mine = new Map();
      const one = new Uint32Array(1), out = new Uint32Array(2);
      for (const ch of all) { one[0] = pool.pop(); mine.set(ch, one[0]); if (ch.sendMany(one) !== 1) throw new Error('sendMany'); }
      const orphan = pool.pop();
      if (!send(orphan)) throw new Error('send');
      const wrong = [];
      for (const ch of all) {
        const n = ch.receiveMany(out);
        if (n !== 1 || out[0] !== mine.get(ch)) wrong.push([n, out[0], mine.get(ch)]);
        pool.push(out[0]);
      }
      const back = receive();
      console.log(JSON.stringify({ wrong, back, orphan, empty: receive(), available: pool.stats().available + 1, ids }));
    })();`;
  const r = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60_000 }));
  t.deepEqual(r.wrong, []);
  t.is(r.back, r.orphan);
  t.is(r.empty, -1);
  t.is(r.available, 256);
  // The first 60 ids were 1..60. The 30 channels dropped (every other one,
  // ids 1, 3, ..., 59) gave theirs back, which the 40 new ones took before
  // growing the table; 8, whose channel's closures live on, stayed taken.
  t.deepEqual(r.ids.slice(0, 60), Array.from({ length: 60 }, (_, i) => i + 1));
  const reused = r.ids.slice(60).filter((id) => id <= 60).sort((a, b) => a - b);
  t.deepEqual(reused, Array.from({ length: 30 }, (_, i) => 2 * i + 1));
  t.false(r.ids.slice(60).includes(8));
});

// zero: true for what sits in a channel when the pool closes: in memory
// native code cannot reach (a plain ArrayBuffer, objects that are not all
// shared), JS zeroes each object before the release callback sees it, as it
// zeroes a push; shared arenas are zeroed natively as the channel is emptied.
const zeroPools = {
  'fromBuffer(ArrayBuffer)': () => ObjectPool.fromBuffer(new ArrayBuffer(8 * 64), { objectSize: 64, zero: true }),
  'fromBuffers, objects not shared': () => ObjectPool.fromBuffers(Array.from({ length: 8 }, () => new Uint8Array(64)), { zero: true }),
  'fromBuffer(SharedArrayBuffer)': () => ObjectPool.fromBuffer(new SharedArrayBuffer(8 * 64), { objectSize: 64, zero: true }),
  'new ObjectPool': () => new ObjectPool({ capacity: 8, objectSize: 64, zero: true }),
};
for (const [what, make] of Object.entries(zeroPools)) {
  test(`zero: true, ${what}: objects left in a channel at close reach release zeroed`, async (t) => {
    const pool = make();
    const ch = pool.channel({ capacity: 8 });
    const sent = [];
    for (let i = 0; i < 3; i++) {
      const h = pool.pop();
      pool.buffer(h).fill(0xab);
      t.true(ch.send(h));
      sent.push(h);
    }
    const h = pool.pop();
    pool.buffer(h).fill(0xcd);
    const seen = new Map();
    const closing = pool.close((obj, info) => { if (info.element) seen.set(info.handle, obj.some((b) => b !== 0)); });
    pool.push(h); // after the close: zeroed as any push
    await closing;
    t.is(seen.size, 8);
    t.deepEqual([...seen.values()].filter(Boolean), [], 'every released object was zeroed');
  });
}

// A send that claimed a cell, then found the channel closed, publishes a
// hole. A thread stopped by worker.terminate() at that very publish (an
// Atomics call) leaves it to its teardown, which must publish the hole too:
// in an unchecked pool no state word tells it the object never went in
// flight, so the view's memory must say so. Forced here: the worker's
// Atomics are wrapped so that the claim closes the channel and the hole's
// publish blocks until the worker is terminated.
test('unchecked pool: a worker terminated while publishing the hole of a send refused as closed leaves a hole, not its handle', async (t) => {
  const { Worker } = require('node:worker_threads');
  const pool = new ObjectPool({ capacity: 8, objectSize: 8, checked: false });
  const ch = pool.channel({ capacity: 4 });
  const gate = new Int32Array(new SharedArrayBuffer(8));
  const w = new Worker(`
    const { workerData, parentPort } = require('node:worker_threads');
    const { ObjectPool, HandleChannel } = require(workerData.root);
    const pool = ObjectPool.attach(workerData.pool);
    const ch = HandleChannel.attach(workerData.ch, pool);
    const gate = workerData.gate;
    const mem = workerData.ch.memory;
    const h = pool.pop();
    const { compareExchange, store, wait } = Atomics;
    let claimed = false;
    Atomics.compareExchange = function (a, ...rest) {
      const r = compareExchange(a, ...rest);
      if (a.buffer === mem && !claimed) { claimed = true; ch.close(); }
      return r;
    };
    Atomics.store = function (a, ...rest) {
      if (a.buffer === mem && claimed) {
        store(gate, 1, h);
        store(gate, 0, 1);
        Atomics.notify(gate, 0);
        for (;;) wait(gate, 0, 1);  // until terminated
      }
      return store(a, ...rest);
    };
    ch.send(h);
    parentPort.postMessage('returned');`, { eval: true, workerData: { root: path.join(__dirname, '..'), pool: pool.descriptor, ch: ch.descriptor, gate } });
  w.on('message', (m) => t.fail(`the send ${m}`));
  while (Atomics.load(gate, 0) === 0) await new Promise((r) => setTimeout(r, 5));
  const h = Atomics.load(gate, 1);
  await w.terminate();
  t.true(ch.closed);
  t.is(ch.receive(), -1, 'the cell was published as a hole: nothing arrives in a closed channel');
  t.is(ch.size, 0);
  t.true(h >= 0 && h < 8);
});

// A closed channel refuses every send, one that sends nothing included (as
// send() and sendMany() of some handles do), with leak tracking or without.
for (const leaks of [false, { sample: 1 }]) {
  test(`sendMany of no handles on a closed channel: ERR_OBJPOOL_CLOSED (leaks: ${JSON.stringify(leaks)})`, (t) => {
    const pool = new ObjectPool({ capacity: 4, objectSize: 8, ...(leaks ? { leaks } : {}) });
    const ch = pool.channel({ capacity: 2 });
    const h = pool.pop();
    t.is(ch.sendMany(new Uint32Array(0)), 0, 'open: nothing sent, no error');
    ch.close();
    t.throws(() => ch.sendMany(new Uint32Array(0)), { code: 'ERR_OBJPOOL_CLOSED' });
    t.throws(() => ch.sendMany(Uint32Array.of(h), 0), { code: 'ERR_OBJPOOL_CLOSED' });
    t.throws(() => ch.sendMany(Uint32Array.of(h)), { code: 'ERR_OBJPOOL_CLOSED' });
    pool.push(h);
    t.is(pool.stats().available, 4);
  });
}
