'use strict';
// The channel's ring (native/channel.hpp, "The ring"): one sender and one
// receiver hand handles through a single-producer/single-consumer ring; a
// second sender or receiver promotes the channel, mid-stream, to the MPMC
// queue. What must hold across the promotion: every handle once, each
// sender's in order, exact stats; a thread stopped inside a ring call loses
// nothing; forged ring memory hands out nothing that is not in flight.
const test = require('ava');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { ObjectPool, HandleChannel } = require('..');

const root = path.join(__dirname, '..');
const MODE = 12, RENQ = 40, RDEQ = 72, CELLS = 128; // word indices (native/channel.hpp, chan_layout)
const modeOf = (ch) => new Int32Array(ch.descriptor.memory)[MODE];

// A worker that sends `n` objects through the channel one by one, each
// stamped with (sender, sequence number) in its first 8 bytes. It writes
// how many it has sent into sync[me] (Atomics.store) and, with `pause`, at
// its n/2-th send waits until sync[0] is not 0.
function sender(pool, ch, me, n, sync, pause = false) {
  return new Worker(`
    const { workerData: d, parentPort } = require('node:worker_threads');
    const { ObjectPool, HandleChannel } = require(d.root);
    const pool = ObjectPool.attach(d.pool);
    const ch = HandleChannel.attach(d.ch, pool);
    for (let i = 0; i < d.n;) {
      if (d.pause && i === d.n / 2) while (Atomics.load(d.sync, 0) === 0) Atomics.wait(d.sync, 0, 0, 10);
      const h = pool.pop();
      if (h < 0) continue;
      const b = pool.buffer(h);
      b.writeUInt32LE(d.me, 0);
      b.writeUInt32LE(i, 4);
      while (!ch.send(h)) {}
      Atomics.store(d.sync, d.me, ++i);
    }
    parentPort.postMessage('done');`, { eval: true, workerData: { root, pool: pool.descriptor, ch: ch.descriptor, me, n, sync, pause } });
}

const settled = (w, what) => new Promise((resolve, reject) => {
  w.on('message', (m) => m === what && resolve());
  w.once('error', reject);
});

test('one sender and one receiver use the ring; a second sender promotes it mid-stream: every handle once, each sender in order', async (t) => {
  const pool = new ObjectPool({ capacity: 64, objectSize: 8 });
  const ch = pool.channel({ capacity: 8 });
  const N = 20000;
  // sync[0]: the gate the first sender waits at, half way; sync[1], sync[2]:
  // how many each sender has sent.
  const sync = new Int32Array(new SharedArrayBuffer(12));
  const a = sender(pool, ch, 1, N, sync, true);
  const aDone = settled(a, 'done');
  const next = [0, 0, 0];
  let got = 0, b = null, bDone = null, modeBefore = -1, aAtPromotion = -1;
  while (got < 2 * N) {
    // The second sender's first send has promoted the channel: let the
    // first one go on, on the ring it still holds the role of (its next
    // publish finds the ring frozen), racing the second one's sends.
    if (b !== null && aAtPromotion < 0 && Atomics.load(sync, 2) > 0) {
      aAtPromotion = Atomics.load(sync, 1);
      Atomics.store(sync, 0, 1);
      Atomics.notify(sync, 0);
    }
    const h = ch.receive();
    if (h < 0) {
      await new Promise(setImmediate);
      continue;
    }
    const buf = pool.buffer(h);
    const who = buf.readUInt32LE(0), seq = buf.readUInt32LE(4);
    if (who < 1 || who > 2 || seq !== next[who]) t.fail(`handle ${h}: sender ${who} number ${seq}, expected ${next[who]}`);
    next[who]++;
    got++;
    pool.push(h);
    if (got === N / 4 && b === null) {
      modeBefore = modeOf(ch);
      b = sender(pool, ch, 2, N, sync);
      bDone = settled(b, 'done');
    }
  }
  await Promise.all([aDone, bDone]);
  t.is(modeBefore, 0, 'the ring while one thread sent');
  t.true(aAtPromotion >= N / 4 && aAtPromotion <= N / 2, `the first sender had sent ${aAtPromotion} of ${N} when the second came`);
  t.is(modeOf(ch), 2, 'the MPMC queue once a second sender came');
  t.deepEqual(next.slice(1), [N, N]);
  t.is(ch.receive(), -1);
  const st = pool.stats();
  if (st.inUse !== 0) {
    // Kept for the next look (a failure seen once under ASan, not yet
    // explained): every object's state word (1 Taken, 3 InFlight) from the
    // metadata (native/layout.hpp, meta_bytes_for: the state words end it),
    // the channel's positions, and the count again later.
    const d = pool.descriptor;
    const words = new Uint32Array(d.meta);
    const base = words.length - d.capacity;
    const out = [];
    for (let h = 0; h < d.capacity; h++) if (words[base + h] !== 0 && words[base + h] !== 4) out.push(`${h}:${words[base + h]}`);
    const c = new Int32Array(ch.descriptor.memory);
    await new Promise((r) => setTimeout(r, 200));
    t.log(`objects neither free nor cached: ${out.join(' ')}; ring ${c[RENQ]}/${c[RDEQ]}, queue ${c[32]}/${c[64]}, mode ${c[MODE]}; inUse 200 ms later: ${pool.stats().inUse}`);
  }
  t.like(st, { inUse: 0, available: 64 });
  await Promise.all([a.terminate(), b.terminate()]);
});

test('a second receiver promotes the ring: what the ring held is received once, by one of them', async (t) => {
  const pool = new ObjectPool({ capacity: 16, objectSize: 8, cache: 0 });
  const ch = pool.channel({ capacity: 8 });
  const hs = [];
  for (let i = 0; i < 6; i++) hs.push(pool.pop());
  for (const h of hs.slice(0, 4)) t.true(ch.send(h));
  t.is(ch.receive(), hs[0], 'the ring, in order');
  t.is(modeOf(ch), 0);
  const other = HandleChannel.attach(ch.descriptor, pool); // a second receiver (this thread, another instance)
  t.is(other.receive(), hs[1], 'the conversion kept the order');
  t.is(modeOf(ch), 2);
  t.is(ch.receive(), hs[2], 'the first receiver goes on in the MPMC queue');
  t.true(ch.send(hs[4]), 'and the first sender too');
  t.true(other.send(hs[5]));
  t.is(ch.size, 3);
  t.deepEqual([other.receive(), ch.receive(), other.receive(), ch.receive()], [hs[3], hs[4], hs[5], -1]);
  for (const h of hs) pool.push(h);
  t.like(pool.stats(), { inUse: 0, available: 16 });
});

test('close() promotes the ring: a send after it throws ERR_OBJPOOL_CLOSED, what was in it is still received', (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 8 });
  const ch = pool.channel({ capacity: 4 });
  const [a, b] = [pool.pop(), pool.pop()];
  t.true(ch.send(a));
  t.is(modeOf(ch), 0);
  ch.close();
  t.is(modeOf(ch), 2);
  t.throws(() => ch.send(b), { code: 'ERR_OBJPOOL_CLOSED' });
  t.is(ch.receive(), a);
  t.is(ch.receive(), -1);
  pool.push(a);
  pool.push(b);
  t.like(pool.stats(), { inUse: 0 });
});

// A worker stopped by worker.terminate() inside a ring call: forced by
// wrapping the worker's Atomics.compareExchange on the channel's memory so
// that the call blocks (until terminated) at the ring's publish (a send:
// before it; the object is in flight and in no cell) or just after its free
// (a receive: the object left the ring, and is not the worker's yet). The
// teardown (repair_channels) must give the object back to the pool.
for (const [what, index, after] of [['send', RENQ, false], ['receive', RDEQ, true]]) {
  test(`a worker terminated inside a ring ${what} loses nothing: the object goes back to the pool`, async (t) => {
    const pool = new ObjectPool({ capacity: 8, objectSize: 8, cache: 0 });
    const ch = pool.channel({ capacity: 4 });
    if (what === 'receive') {
      t.true(ch.send(pool.pop()));
    }
    const gate = new Int32Array(new SharedArrayBuffer(8));
    const w = new Worker(`
      const { workerData: d } = require('node:worker_threads');
      const { ObjectPool, HandleChannel } = require(d.root);
      const pool = ObjectPool.attach(d.pool);
      const ch = HandleChannel.attach(d.ch, pool);
      const words = new Int32Array(d.ch.memory);
      const { compareExchange, store, notify, wait } = Atomics;
      const block = () => { store(d.gate, 0, 1); notify(d.gate, 0); for (;;) wait(d.gate, 0, 1); };
      Atomics.compareExchange = function (a, i, ...rest) {
        if (a.buffer === d.ch.memory && i === d.index && !d.after) block();
        const r = compareExchange(a, i, ...rest);
        if (a.buffer === d.ch.memory && i === d.index && d.after) block();
        return r;
      };
      if (d.what === 'send') ch.send(pool.pop());
      else ch.receive();`, { eval: true, workerData: { root, pool: pool.descriptor, ch: ch.descriptor, gate, index, after, what } });
    while (Atomics.load(gate, 0) === 0) await new Promise((r) => setTimeout(r, 5));
    t.is(modeOf(ch), 0, 'on the ring');
    t.like(pool.stats(), { inUse: 1 }, 'the object is out: in flight');
    await w.terminate();
    t.is(ch.receive(), -1, 'nothing in the channel');
    t.like(pool.stats(), { inUse: 0, available: 8 }, 'the object is back in the pool');
    const all = [];
    for (let h; (h = pool.pop()) >= 0;) all.push(h);
    t.is(new Set(all).size, 8, 'each object once');
  });
}

test('forged ring memory: no handle that is not in flight comes out, nothing crashes, a promotion still works', (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 8, cache: 0 });
  const ch = pool.channel({ capacity: 8 });
  const words = new Int32Array(ch.descriptor.memory);
  const ring = CELLS + 2 * 8;
  const h = pool.pop();
  t.true(ch.send(h));
  // Three forged values after it: out of range, a handle in the pool, a hole.
  [1 << 30, 5, -1].forEach((v, i) => { words[ring + 1 + i] = v; });
  words[RENQ] = 4;
  t.is(ch.receive(), h);
  t.is(ch.receive(), -1, 'every forged value skipped');
  const out = new Uint32Array(8);
  for (let round = 0; round < 200; round++) {
    // Garbage in the ring's positions and cells (the header's magic kept).
    for (const i of [RENQ, RDEQ]) if ((round + i) % 3 !== 0) words[i] = (Math.random() * 2 ** 32) | 0;
    for (let i = ring; i < ring + 8; i++) if ((i + round) % 2 === 0) words[i] = (Math.random() * 16) | 0;
    t.is(ch.receive(), -1, 'nothing in flight: nothing to receive');
    t.is(ch.receiveMany(out), 0);
    const x = pool.pop();
    if (ch.send(x)) {
      const back = ch.receive();
      if (back !== -1) t.is(back, x);
      else if (ch.receiveMany(out) === 1) t.is(out[0], x);
    }
    // x is the caller's again, or stuck in flight in the forged channel.
    try { pool.push(x); } catch (err) { t.is(err.code, 'ERR_OBJPOOL_DOUBLE_PUSH'); }
  }
  // A second instance promotes the channel, whatever the ring held.
  const other = HandleChannel.attach(ch.descriptor, pool);
  other.receive();
  t.is(modeOf(ch), 2);
  const y = pool.pop();
  if (y >= 0) {
    t.true(other.send(y));
    const back = [ch.receive(), ch.receive(), ch.receive()].find((v) => v === y);
    t.is(back, y);
    pool.push(y);
  }
  pool.push(h);
});

// Positions are 28 bits: after 2^28 positions moved by an instance's batch
// calls, what its single send (receive) last loaded of the other position
// falls back inside the window. Each closure trusts that only while the
// position is where it left it (found by an independent review: before, a
// send on a full ring overwrote an unread cell, and a receive on an empty
// ring handed out a stale cell's handle).
test('a send after 2^28 positions of sendMany/receiveMany still sees a full ring as full', (t) => {
  const CAP = 1024;
  const pool = new ObjectPool({ capacity: CAP + 8, objectSize: 4, cache: 0 });
  const ch = pool.channel({ capacity: CAP });
  const hs = new Uint32Array(CAP);
  t.is(pool.popMany(hs), CAP);
  const extra = pool.pop();
  t.true(ch.send(extra)); // the send closure's first look, at position 0
  t.is(ch.receive(), extra);
  for (let lap = 0, laps = 2 ** 28 / CAP; lap < laps; lap++) {
    ch.sendMany(hs, lap === laps - 1 ? CAP - 1 : CAP);
    if (lap < laps - 1) ch.receiveMany(hs);
  }
  // Position 2^28 - 1 + 1 = 0 modulo 2^28 would be the next; the ring holds CAP - 1.
  t.true(ch.send(extra), 'one cell left');
  t.false(ch.send(pool.pop()), 'full: nothing overwritten');
  const got = new Set();
  for (let h; (h = ch.receive()) >= 0;) got.add(h);
  t.is(got.size, CAP);
  t.true(got.has(extra));
  t.like(pool.stats(), { inUse: CAP + 2 }); // the CAP received, and the one the refused send kept
});

test('a receive after 2^28 positions of sendMany/receiveMany still sees an empty ring as empty', (t) => {
  const CAP = 1024;
  const pool = new ObjectPool({ capacity: CAP + 8, objectSize: 4, cache: 0 });
  const ch = pool.channel({ capacity: CAP });
  const other = pool.channel({ capacity: 4 });
  const hs = new Uint32Array(CAP);
  t.is(pool.popMany(hs), CAP);
  t.is(ch.receive(), -1); // the receive closure's first look, at position 0
  const total = 2 ** 28 - 1;
  for (let moved = 0; moved < total;) {
    const n = Math.min(CAP, total - moved);
    ch.sendMany(hs, n);
    ch.receiveMany(hs, n);
    moved += n;
  }
  const stale = new Uint32Array(ch.descriptor.memory)[CELLS + 2 * CAP + (total & (CAP - 1))];
  t.true(other.send(stale), 'the object of the last cell goes in flight elsewhere');
  t.is(ch.receive(), -1, 'the ring is empty');
  t.is(other.receive(), stale, 'and the other channel still holds its object');
  t.true(ch.send(stale));
  t.is(ch.receive(), stale);
});
