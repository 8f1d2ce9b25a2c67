'use strict';
// Pooled TCP reads (net.Socket onread into objpool buffers) against plain
// 'data' reads and the upper bound, one static buffer reused for every read.
// A child process sends; this process reads and checks every byte.
const net = require('node:net');
const path = require('node:path');
const { fork } = require('node:child_process');
const { PerformanceObserver } = require('node:perf_hooks');
const { ObjectPool, net: pooled } = require('../..');
const { CHUNK, makePattern } = require('./net-pattern');

const pattern = makePattern();

function verifier() {
  let received = 0;
  let bad = 0;
  return {
    check(buf, len) {
      let at = 0;
      while (at < len) {
        const off = (received + at) % pattern.length;
        const n = Math.min(len - at, pattern.length - off);
        if (!buf.subarray(at, at + n).equals(pattern.subarray(off, off + n))) bad++;
        at += n;
      }
      received += len;
    },
    get received() { return received; },
    get bad() { return bad; },
  };
}

const modes = {
  // One Buffer per read, allocated by Node: what most code does.
  "plain 'data' reads": (port, v, done) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('data', (d) => v.check(d, d.length));
    s.on('end', done);
  },
  // Reads into pooled 64 KiB buffers, each returned as soon as it is checked.
  'onread, pooled buffers': (port, v, done, pool) => {
    const s = pooled.connect(pool, { port, host: '127.0.0.1' }, {
      onData(chunk, release) { v.check(chunk, chunk.length); release(); },
    });
    s.on('end', done);
  },
  // The upper bound: one static buffer for every read.
  'onread, one static buffer': (port, v, done) => {
    const buffer = Buffer.allocUnsafe(CHUNK);
    const s = net.connect({ port, host: '127.0.0.1', onread: { buffer, callback: (n, b) => v.check(b, n) } });
    s.on('end', done);
  },
};

module.exports = {
  name: 'net',
  title: 'TCP loopback reads (a child process sends): ns per KiB read',
  baseline: 'onread, pooled buffers',
  defaults: { bytes: 1 << 30, rounds: 9 },
  async run({ bytes, rounds }) {
    const sender = fork(path.join(__dirname, 'net-sender.js'), [String(bytes)]);
    const { port } = await new Promise((r) => sender.once('message', r));
    const pool = new ObjectPool({ capacity: 64, objectSize: CHUNK });
    const samples = {};
    const gcs = {};
    const names = Object.keys(modes);
    for (const n of names) { samples[n] = []; gcs[n] = []; }
    for (let r = 0; r < rounds; r++) {
      // Alternate the order: loopback throughput drifts between runs.
      const order = r % 2 ? [...names].reverse() : names;
      for (const name of order) {
        global.gc?.();
        let events = 0;
        const obs = new PerformanceObserver((list) => { events += list.getEntries().length; });
        obs.observe({ entryTypes: ['gc'] });
        const v = verifier();
        const t0 = process.hrtime.bigint();
        await new Promise((done) => modes[name](port, v, done, pool));
        const ns = Number(process.hrtime.bigint() - t0);
        await new Promise((res) => setImmediate(res));
        obs.disconnect();
        if (v.received !== bytes || v.bad) throw new Error(`${name}: read ${v.received} of ${bytes} bytes, ${v.bad} chunks differ`);
        samples[name].push(ns / (bytes / 1024));
        gcs[name].push(events);
      }
    }
    sender.send('exit');
    const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    // Ratios taken round by round, then the median (loopback swings ~30%).
    const ratio = (a, b) => med(samples[a].map((x, i) => samples[b][i] / x));
    const pooledName = 'onread, pooled buffers';
    const extra = {
      'pooled throughput vs one static buffer (median of per-round ratios)': `${ratio(pooledName, 'onread, one static buffer').toFixed(2)}x`,
      "pooled throughput vs plain 'data' (median of per-round ratios)": `${ratio(pooledName, "plain 'data' reads").toFixed(2)}x`,
      "GC events per round (median): plain / pooled / static": `${med(gcs["plain 'data' reads"])} / ${med(gcs[pooledName])} / ${med(gcs['onread, one static buffer'])}`,
      'GB/s pooled (median)': (1024 / 1e9 / (med(samples[pooledName]) / 1e9)).toFixed(2),
      'bytes per read run': bytes,
      'pool after the runs': JSON.stringify({ available: pool.stats().available, capacity: pool.capacity }),
    };
    return { samples, extra, gcs };
  },
};
