'use strict';
// Across processes (shared/BENCH.md, "Across processes"). Two tables:
//   - the pop+push pair of a process-shared pool against a thread-shared one,
//     in one process (ns per pair);
//   - a round trip to another process: a ping-pong through two
//     process-shared pools (a push in one process wakes a popAsync() in the
//     other, both ways) against a process.send() ping-pong (default and
//     'advanced' serialization) and a Unix socket carrying 4-byte messages;
//   - one way to another process: handles through a process-shared channel,
//     one by one and in batches of 32, against process.send() of a number
//     (both serializations) and 4-byte writes on a Unix socket.
const path = require('node:path');
const os = require('node:os');
const net = require('node:net');
const { fork } = require('node:child_process');
const { ObjectPool } = require('../..');

const CHILD = path.join(__dirname, 'process-child.js');
const SIZE = 4096;

const started = (c) => new Promise((resolve, reject) => {
  c.once('message', (m) => (m === 'ready' ? resolve() : reject(new Error(String(m)))));
  c.once('exit', (code) => reject(new Error(`the child exited (${code})`)));
});

function pairs() {
  const pair = (opts) => () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE, ...opts });
    return { run(n) { for (let i = 0; i < n; i++) pool.push(pool.pop()); } };
  };
  const acq = (opts) => () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: SIZE, ...opts });
    return { run(n) { for (let i = 0; i < n; i++) pool.release(pool.acquire()); } };
  };
  return {
    'thread-shared pool pop+push': pair({}),
    'process-shared pool pop+push': pair({ processShared: true }),
    'thread-shared pool pop+push (cache: 0)': pair({ cache: 0 }),
    'process-shared pool pop+push (cache: 0)': pair({ processShared: true, cache: 0 }),
    'thread-shared pool acquire+release': acq({}),
    'process-shared pool acquire+release': acq({ processShared: true }),
  };
}

async function ipc(serialization) {
  const c = fork(CHILD, ['ipc'], { serialization });
  await started(c);
  let resolve = null;
  c.on('message', () => resolve());
  const msg = serialization === 'advanced' ? new Uint32Array([7]) : 7;
  return {
    async run(n) {
      for (let i = 0; i < n; i++) {
        await new Promise((r) => { resolve = r; c.send(msg); });
      }
    },
    stop: () => c.kill(),
  };
}

// A child in `mode` connected to a Unix socket this process listens on:
// the child, its connection here (no Nagle), and how to close both ends.
async function socketChild(mode) {
  const file = path.join(os.tmpdir(), `objpool-bench-${mode}-${process.pid}.sock`);
  const server = net.createServer();
  await new Promise((r) => server.listen(file, r));
  const accepted = new Promise((r) => server.once('connection', r));
  const c = fork(CHILD, [mode, file]);
  await started(c);
  const s = await accepted;
  s.setNoDelay(true);
  return { c, s, stop: () => { c.kill(); s.destroy(); server.close(); } };
}

async function socket() {
  const { s, stop } = await socketChild('socket');
  let resolve = null, got = 0;
  s.on('data', (b) => { got += b.length; if (got >= 4) { got -= 4; resolve(); } });
  const msg = Buffer.from([1, 2, 3, 4]);
  return {
    async run(n) {
      for (let i = 0; i < n; i++) await new Promise((r) => { resolve = r; s.write(msg); });
    },
    stop,
  };
}

async function pools() {
  const A = new ObjectPool({ capacity: 1, objectSize: 64, processShared: true, cache: 0 });
  const B = new ObjectPool({ capacity: 1, objectSize: 64, processShared: true, cache: 0 });
  let held = A.pop();
  const c = fork(CHILD, ['pools', JSON.stringify(A.processDescriptor), JSON.stringify(B.processDescriptor)]);
  await started(c);
  const ps = [A, B];
  let r = 0;
  return {
    async run(n) {
      for (let i = 0; i < n; i++, r++) {
        ps[r & 1].push(held);
        held = await ps[(r + 1) & 1].popAsync();
      }
    },
    stop: () => c.kill(),
  };
}

// One way, n messages: process.send() of a number (json, advanced), 4-byte
// writes on a Unix socket, and handles through a process-shared channel
// (one by one, batches of 32) to a child that pushes them back to the pool.
// Each run ends when the other side has everything (an ack, or every
// object back in the pool).
async function sink(serialization) {
  const c = fork(CHILD, ['sink'], { serialization });
  await started(c);
  const next = () => new Promise((r) => c.once('message', r));
  return {
    async run(n) {
      c.send({ expect: n });
      await next();
      const done = next();
      for (let i = 0; i < n; i++) c.send(7);
      await done;
    },
    stop: () => c.kill(),
  };
}

async function socketSink() {
  const { c, s, stop } = await socketChild('socketsink');
  const next = () => new Promise((r) => c.once('message', r));
  const msg = Buffer.from([1, 2, 3, 4]);
  return {
    async run(n) {
      c.send({ expect: n });
      await next();
      const done = next();
      for (let i = 0; i < n; i++) s.write(msg);
      await done;
    },
    stop,
  };
}

async function channel(batch) {
  const pool = new ObjectPool({ capacity: 2048, objectSize: 64, processShared: true });
  const ch = pool.channel({ capacity: 1024 });
  const c = fork(CHILD, ['channel', JSON.stringify(pool.processDescriptor), JSON.stringify(ch.processDescriptor), batch ? 'batch' : 'one']);
  await started(c);
  const hs = new Uint32Array(32);
  const later = () => new Promise((r) => setImmediate(r));
  return {
    async run(n) {
      if (batch) {
        for (let i = 0; i < n; i += 32) {
          let k = pool.popMany(hs, Math.min(32, n - i));
          while (k === 0) { await later(); k = pool.popMany(hs, Math.min(32, n - i)); }
          let sent = 0;
          while ((sent += ch.sendMany(hs.subarray(sent, k))) < k) await later();
          i -= 32 - k;
        }
      } else {
        for (let i = 0; i < n; i++) {
          let h = pool.pop();
          if (h < 0) h = await pool.popAsync();
          while (!ch.send(h)) await later();
        }
      }
      while (pool.stats().inUse !== 0) await later();
    },
    stop: () => { c.kill(); },
  };
}

module.exports = {
  name: 'process',
  title: 'process-shared pools: one pop+push pair in this process, ns per pair',
  baseline: 'thread-shared pool pop+push',
  defaults: { ops: 2_000_000, rounds: 7 },
  async run({ ops, rounds }) {
    const { measureAll, interleave } = require('../lib');
    const { samples } = await measureAll(pairs(), { ops, rounds });
    const trips = {
      'process.send() ping-pong (json)': await ipc('json'),
      'process.send() ping-pong (advanced)': await ipc('advanced'),
      'Unix socket ping-pong, 4-byte messages': await socket(),
      'process-shared pools ping-pong (push wakes popAsync)': await pools(),
    };
    const roundTrips = await interleave(trips, { ops: Math.ceil(ops / 400), rounds });
    for (const t of Object.values(trips)) t.stop();
    const ways = {
      'process.send() of a number (json)': await sink('json'),
      'process.send() of a number (advanced)': await sink('advanced'),
      'Unix socket, 4-byte writes': await socketSink(),
      'process-shared channel, one by one': await channel(false),
      'process-shared channel, batches of 32': await channel(true),
    };
    const oneWay = await interleave(ways, { ops: Math.ceil(ops / 40), rounds });
    for (const t of Object.values(ways)) t.stop();
    return {
      samples,
      tables: [
        { title: 'a round trip to another process: ns per round trip', baseline: 'process.send() ping-pong (json)', samples: roundTrips },
        { title: 'handles to another process, one way: ns per message (per handle)', baseline: 'process.send() of a number (json)', samples: oneWay },
      ],
    };
  },
};
