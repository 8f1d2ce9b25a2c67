'use strict';
// Pooled TCP reads (net.Socket onread into objpool buffers) against plain
// 'data' reads and the upper bound, one static buffer reused for every read.
// The sender is another process (socat when it is on PATH, else a Node
// child); this process only reads and checks every byte, so its CPU time
// (user + system, process.cpuUsage()) is the receiver's cost. That figure,
// and the GC events, carry over between machines; loopback throughput is
// set by the sender and the kernel.
const net = require('node:net');
const { PerformanceObserver } = require('node:perf_hooks');
const { ObjectPool, net: pooled } = require('../..');
const { CHUNK, makePattern } = require('./net-pattern');
const { startSender } = require('./net-senders');

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

const PLAIN = "plain 'data' reads";
const POOLED = 'onread, pooled buffers';
const STATIC = 'onread, one static buffer';

const modes = {
  // One Buffer per read, allocated by Node: what most code does.
  [PLAIN]: (port, v, done) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('data', (d) => v.check(d, d.length));
    s.on('end', done);
  },
  // Reads into pooled 64 KiB buffers, each returned as soon as it is checked.
  [POOLED]: (port, v, done, pool, stats) => {
    const reader = new pooled.PooledReader(pool, { onData(chunk, release) { v.check(chunk, chunk.length); release(); } });
    const s = reader.attach(net.connect({ port, host: '127.0.0.1', onread: reader.onread }));
    s.on('end', done);
    // The socket gives its objects back once closed, after 'end'.
    stats.closing.push(new Promise((r) => s.on('close', r)).then(() => { stats.unpooled += reader.unpooled; }));
  },
  // The upper bound: one static buffer for every read.
  [STATIC]: (port, v, done) => {
    const buffer = Buffer.allocUnsafe(CHUNK);
    const s = net.connect({ port, host: '127.0.0.1', onread: { buffer, callback: (n, b) => v.check(b, n) } });
    s.on('end', done);
  },
};

const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const range = (xs) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;

module.exports = {
  name: 'net',
  title: 'TCP loopback reads from another process: receiver CPU (user+system) ns per KiB read, every byte checked',
  baseline: POOLED,
  defaults: { bytes: 1 << 30, rounds: 9 },
  async run({ bytes, rounds }) {
    const sender = await startSender(bytes);
    const names = Object.keys(modes);
    const cpu = {}; // CPU ns per KiB, per round
    const wall = {}; // wall ns per KiB, per round
    const gcs = {};
    for (const n of names) { cpu[n] = []; wall[n] = []; gcs[n] = []; }
    const pool = new ObjectPool({ capacity: 64, objectSize: CHUNK });
    const stats = { unpooled: 0, closing: [] };
    try {
      // A warm-up read per mode, not counted.
      for (const name of names) await new Promise((done) => modes[name](sender.port, verifier(), done, pool, { unpooled: 0, closing: [] }));
      for (let r = 0; r < rounds; r++) {
        // Alternate the order round by round: loopback throughput drifts.
        const order = names.map((_, i) => names[(i + r) % names.length]);
        if (r % 2) order.reverse();
        for (const name of order) {
          global.gc?.();
          let events = 0;
          const obs = new PerformanceObserver((list) => { events += list.getEntries().length; });
          obs.observe({ entryTypes: ['gc'] });
          const v = verifier();
          const c0 = process.cpuUsage();
          const t0 = process.hrtime.bigint();
          await new Promise((done) => modes[name](sender.port, v, done, pool, stats));
          const ns = Number(process.hrtime.bigint() - t0);
          const c = process.cpuUsage(c0);
          await new Promise((res) => setImmediate(res));
          obs.disconnect();
          if (v.received !== bytes || v.bad) throw new Error(`${name}: read ${v.received} of ${bytes} bytes, ${v.bad} chunks differ`);
          const kib = bytes / 1024;
          cpu[name].push(((c.user + c.system) * 1000) / kib);
          wall[name].push(ns / kib);
          gcs[name].push(events);
        }
      }
      await Promise.all(stats.closing);
    } finally {
      sender.stop();
    }
    // Ratios taken round by round, then the median (loopback swings ~30%).
    const ratio = (series, a, b) => med(series[a].map((x, i) => x / series[b][i]));
    const msPerGiB = (n) => (med(cpu[n]) * 1024 * 1024) / 1e6;
    const gbps = (n) => wall[n].map((x) => 1024 / x);
    const extra = {
      sender: sender.name,
      'receiver CPU ms per GiB (median): plain / pooled / static': `${msPerGiB(PLAIN).toFixed(0)} / ${msPerGiB(POOLED).toFixed(0)} / ${msPerGiB(STATIC).toFixed(0)}`,
      "pooled receiver CPU per byte vs plain 'data' (median of per-round ratios)": `${ratio(cpu, POOLED, PLAIN).toFixed(2)}x`,
      'pooled receiver CPU per byte vs one static buffer (median of per-round ratios)': `${ratio(cpu, POOLED, STATIC).toFixed(2)}x`,
      'GC events per round (median): plain / pooled / static': `${med(gcs[PLAIN])} / ${med(gcs[POOLED])} / ${med(gcs[STATIC])}`,
      'GB/s (median, range): plain / pooled / static': [PLAIN, POOLED, STATIC].map((n) => `${med(gbps(n)).toFixed(2)} (${range(gbps(n))})`).join(' / '),
      'pooled throughput vs one static buffer (median of per-round ratios)': `${ratio(wall, STATIC, POOLED).toFixed(2)}x`,
      "pooled throughput vs plain 'data' (median of per-round ratios)": `${ratio(wall, PLAIN, POOLED).toFixed(2)}x`,
      'GB/s pooled (median)': med(gbps(POOLED)).toFixed(2),
      'pooled chunks handed over unpooled (pool empty), all rounds': String(stats.unpooled),
      'bytes per read run': bytes,
      'pool after the runs': JSON.stringify({ available: pool.stats().available, capacity: pool.capacity }),
    };
    return { samples: cpu, extra, gcs };
  },
};
