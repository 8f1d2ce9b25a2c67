'use strict';
// A TCP proxy on loopback: objpool's pooled.pipe() against the plain
// socket.pipe() proxy a Node user writes, alternated in one run. The sender
// (socat when it is on PATH, else a Node child) and the receiver (a Node
// child that checks every byte) are other processes, so this process's CPU
// time (user + system) is the proxy's cost per byte.
const net = require('node:net');
const path = require('node:path');
const { fork } = require('node:child_process');
const { PerformanceObserver } = require('node:perf_hooks');
const { ObjectPool, net: pooled } = require('../..');
const { CHUNK } = require('./net-pattern');
const { startSender } = require('./net-senders');

const host = '127.0.0.1';
const PLAIN = 'plain proxy (socket.pipe both ways)';
const POOLED = 'pooled proxy (pooled.pipe)';

// Each proxy calls `closed()` once a connection's two sockets have closed.
const proxies = {
  [PLAIN]: (target, closed) => net.createServer((client) => {
    const upstream = net.connect({ port: target, host });
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    let open = 2;
    const one = () => { if (--open === 0) closed(); };
    client.on('close', one);
    upstream.on('close', one);
  }),
  [POOLED]: (target, closed, pool) => net.createServer({ pauseOnConnect: true }, (accepted) => {
    const client = pooled.adopt(pool, accepted);
    const upstream = pooled.connect(pool, { port: target, host });
    pooled.pipe(client, upstream, () => closed());
  }),
};

const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const range = (xs) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;

module.exports = {
  name: 'proxy',
  title: 'TCP proxy on loopback, sender -> proxy -> receiver in three processes: proxy CPU (user+system) ns per KiB',
  baseline: POOLED,
  defaults: { bytes: 512 << 20, rounds: 9 },
  async run({ bytes, rounds }) {
    const sender = await startSender(bytes);
    const sink = fork(path.join(__dirname, 'proxy-sink.js'));
    // The example's pool: 256 objects of 64 KiB.
    const pool = new ObjectPool({ capacity: 256, objectSize: CHUNK });
    const names = Object.keys(proxies);
    const servers = {};
    let onClosed = () => {};
    for (const name of names) {
      servers[name] = proxies[name](sender.port, () => onClosed(), pool);
      await new Promise((r) => servers[name].listen(0, host, r));
    }
    // One transfer through `name`: resolves once the receiver has it all and
    // the proxy's sockets have closed.
    const transfer = async (name) => {
      const closed = new Promise((r) => { onClosed = r; });
      const report = new Promise((r) => sink.once('message', r));
      sink.send({ connect: servers[name].address().port });
      await closed;
      const { received, bad, error } = await report;
      if (error || received !== bytes || bad) throw new Error(`${name}: received ${received} of ${bytes} bytes, ${bad} chunks differ ${error ?? ''}`);
    };
    const cpu = {};
    const wall = {};
    const gcs = {};
    for (const n of names) { cpu[n] = []; wall[n] = []; gcs[n] = []; }
    try {
      for (const name of names) await transfer(name); // warm-up
      for (let r = 0; r < rounds; r++) {
        for (const name of r % 2 ? [...names].reverse() : names) {
          global.gc?.();
          let events = 0;
          const obs = new PerformanceObserver((list) => { events += list.getEntries().length; });
          obs.observe({ entryTypes: ['gc'] });
          const c0 = process.cpuUsage();
          const t0 = process.hrtime.bigint();
          await transfer(name);
          const ns = Number(process.hrtime.bigint() - t0);
          const c = process.cpuUsage(c0);
          await new Promise((res) => setImmediate(res));
          obs.disconnect();
          const kib = bytes / 1024;
          cpu[name].push(((c.user + c.system) * 1000) / kib);
          wall[name].push(ns / kib);
          gcs[name].push(events);
        }
      }
    } finally {
      sender.stop();
      sink.send('exit');
      for (const s of Object.values(servers)) s.close();
    }
    const ratio = (series, a, b) => med(series[a].map((x, i) => x / series[b][i]));
    const msPerGiB = (n) => (med(cpu[n]) * 1024 * 1024) / 1e6;
    const gbps = (n) => wall[n].map((x) => 1024 / x);
    const extra = {
      sender: sender.name,
      receiver: `a Node ${process.version} child process (one static buffer, every byte checked)`,
      'proxy CPU ms per GiB (median): plain / pooled': `${msPerGiB(PLAIN).toFixed(0)} / ${msPerGiB(POOLED).toFixed(0)}`,
      'pooled proxy CPU per byte vs plain (median of per-round ratios)': `${ratio(cpu, POOLED, PLAIN).toFixed(2)}x`,
      'GC events per round (median): plain / pooled': `${med(gcs[PLAIN])} / ${med(gcs[POOLED])}`,
      'GB/s (median, range): plain / pooled': [PLAIN, POOLED].map((n) => `${med(gbps(n)).toFixed(2)} (${range(gbps(n))})`).join(' / '),
      'pooled proxy throughput vs plain (median of per-round ratios)': `${ratio(wall, PLAIN, POOLED).toFixed(2)}x`,
      'bytes per transfer': bytes,
      'pool after the runs': JSON.stringify({ available: pool.stats().available, capacity: pool.capacity }),
    };
    return { samples: cpu, extra, gcs };
  },
};
