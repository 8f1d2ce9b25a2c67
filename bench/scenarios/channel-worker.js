'use strict';
// The other thread(s) of the channel scenario: runs one command at a time
// ({ op, n }) and answers { done: op } (or { error }) on parentPort.
const { parentPort, workerData } = require('node:worker_threads');
const { ObjectPool, HandleChannel } = require('../..');
const { SabQueue, SabRing, miss } = require('./sab-queue');

const pool = ObjectPool.attach(workerData.pool);
const unchecked = ObjectPool.attach(workerData.unchecked);
const ch = {};
for (const [k, d] of Object.entries(workerData.chans)) ch[k] = HandleChannel.attach(d, k === 'unchecked' ? unchecked : pool);
const floor = new SabQueue(workerData.floor);
const ring = new SabRing(workerData.ring);
const ringPool = new SabRing(workerData.ringPool);
const words = new Int32Array(workerData.words); // [0] ping count, [1] pong count
const failed = new Int32Array(workerData.failed);
const port = workerData.port;
// postMessage ping-pong: echo whatever comes (the first worker only).
port?.on('message', (h) => port.postMessage(h));

// Spin (see miss) while the pool is empty: the receiver pushes them back.
const popOne = (p) => {
  let h;
  for (let idle = 0; (h = p.pop()) < 0;) idle = miss(idle);
  return h;
};
const popBatch = (out, want) => {
  let k;
  for (let idle = 0; (k = pool.popMany(out, want)) === 0;) idle = miss(idle);
  return k;
};

// Sends n handles one by one, spinning while the queue is full.
function sendEach(p, send, n) {
  for (let i = 0; i < n; i++) {
    const h = popOne(p);
    for (let idle = 0; !send(h);) idle = miss(idle);
  }
}

function receiveEach(p, c, n) {
  for (let got = 0, idle = 0; got < n;) {
    const h = c.receive();
    if (h >= 0) { p.push(h); got++; idle = 0; } else idle = miss(idle);
  }
}

const ops = {
  post(n) { for (let i = 0; i < n; i++) port.postMessage(popOne(pool)); },
  post32(n) {
    const out = new Uint32Array(32);
    for (let sent = 0; sent < n;) {
      const k = popBatch(out, Math.min(32, n - sent));
      port.postMessage(k === 32 ? out : out.slice(0, k));
      sent += k;
    }
  },
  send(n) { sendEach(pool, ch.one.send, n); },
  sendUnchecked(n) { sendEach(unchecked, ch.unchecked.send, n); },
  floorPool(n) { sendEach(pool, floor.send, n); },
  floor(n) {
    for (let i = 0; i < n; i++) for (let idle = 0; !floor.send(i);) idle = miss(idle);
  },
  ringPool(n) { sendEach(pool, ringPool.send, n); },
  ring(n) {
    for (let i = 0; i < n; i++) for (let idle = 0; !ring.send(i);) idle = miss(idle);
  },
  sendMany(n) {
    const out = new Uint32Array(32);
    for (let sent = 0; sent < n;) {
      const k = popBatch(out, Math.min(32, n - sent));
      for (let at = 0, idle = 0; at < k;) {
        const m = ch.one.sendMany(at === 0 ? out : out.subarray(at), k - at);
        at += m;
        idle = m > 0 ? 0 : miss(idle);
      }
      sent += k;
    }
  },
  // Sends back through `back` each handle that arrives through `fwd`, n in all.
  circulate(n) {
    for (let got = 0, idle = 0; got < n;) {
      const h = ch.fwd.receive();
      if (h >= 0) { while (!ch.back.send(h)) idle = miss(idle); got++; idle = 0; } else idle = miss(idle);
    }
  },
  circulate32(n) {
    const out = new Uint32Array(32);
    for (let got = 0, idle = 0; got < n;) {
      const k = ch.fwd.receiveMany(out);
      if (k === 0) { idle = miss(idle); continue; }
      for (let at = 0; at < k;) { const m = ch.back.sendMany(at === 0 ? out : out.subarray(at), k - at); at += m; idle = m > 0 ? 0 : miss(idle); }
      got += k;
      idle = 0;
    }
  },
  mpmcSend(n) { sendEach(pool, ch.mpmc.send, n); },
  mpmcReceive(n) { receiveEach(pool, ch.mpmc, n); },
  async pingChannel(n) {
    for (let i = 0; i < n; i++) ch.pong.send(await ch.ping.receiveAsync());
  },
  async pingWait(n) {
    let v = Atomics.load(words, 1);
    for (let i = 0; i < n; i++) {
      while (Atomics.load(words, 0) === v) {
        const r = Atomics.waitAsync(words, 0, v);
        if (r.async) await r.value;
      }
      Atomics.store(words, 1, ++v);
      Atomics.notify(words, 1);
    }
  },
};

parentPort.on('message', async ({ op, n }) => {
  try {
    await ops[op](n);
    parentPort.postMessage({ done: op });
  } catch (err) {
    Atomics.store(failed, 0, 1);
    parentPort.postMessage({ error: String(err?.stack ?? err) });
  }
});
parentPort.postMessage({ ready: true });
