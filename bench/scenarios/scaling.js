'use strict';
// Aggregate pop+push throughput of 1..N worker threads hammering one pool,
// against the same pool with slots: 1 and an Atomics-mutex free list.
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { ObjectPool } = require('../..');
const { MutexFreeList } = require('./mutex-list');
const { sleep } = require('../lib');

// Each worker attaches with `cache` (undefined: the automatic size, 64 here).
const kinds = {
  'objpool (per-thread caches)': () => ({ kind: 'pool', descriptor: new ObjectPool({ capacity: 1024, objectSize: 64 }).descriptor }),
  'objpool (per-CPU slots, cache: 0)': () => ({ kind: 'pool', cache: 0, descriptor: new ObjectPool({ capacity: 1024, objectSize: 64 }).descriptor }),
  'objpool slots=1, cache: 0': () => ({ kind: 'pool', cache: 0, descriptor: new ObjectPool({ capacity: 1024, objectSize: 64, slots: 1 }).descriptor }),
  'Atomics-mutex SAB free list': () => ({ kind: 'mutex', sab: MutexFreeList.create(1024) }),
};

async function measure(target, threads, { rounds, ms }) {
  const control = new Int32Array(new SharedArrayBuffer(8)); // [0] round number, [1] stop flag
  const workers = [];
  for (let i = 0; i < threads; i++) {
    const w = new Worker(path.join(__dirname, 'scaling-worker.js'), { workerData: { target, control: control.buffer } });
    workers.push(w);
    await new Promise((r) => w.once('message', r)); // attached and warmed up
  }
  const samples = [];
  for (let r = 1; r <= rounds; r++) {
    const counts = workers.map((w) => new Promise((res) => w.once('message', res)));
    Atomics.store(control, 1, 0);
    Atomics.store(control, 0, r);
    Atomics.notify(control, 0);
    const t0 = process.hrtime.bigint();
    await sleep(ms);
    Atomics.store(control, 1, 1);
    const done = await Promise.all(counts);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const ops = done.reduce((a, c) => a + c.ops, 0);
    samples.push(1e9 / (ops / secs)); // ns per op, aggregate (lower is better)
  }
  await Promise.all(workers.map((w) => w.terminate()));
  return samples;
}

module.exports = {
  name: 'scaling',
  title: 'scaling: aggregate pop+push pairs of N worker threads on one pool',
  baseline: 'objpool (per-thread caches) x1',
  defaults: { rounds: 7, ms: 300, threads: require('node:os').availableParallelism() },
  async run({ rounds, ms, threads }) {
    const counts = [];
    for (let n = 1; n <= threads; n *= 2) counts.push(n);
    if (counts[counts.length - 1] !== threads) counts.push(threads);
    const samples = {};
    const series = {};
    // A discarded pass first: whatever is measured first in a fresh process
    // otherwise pays for the process warming up.
    await measure(kinds['objpool (per-thread caches)'](), 1, { rounds: 3, ms: Math.min(ms, 200) });
    for (const [name, make] of Object.entries(kinds)) {
      series[name] = [];
      for (const n of counts) {
        const s = await measure(make(), n, { rounds, ms });
        samples[`${name} x${n}`] = s;
        const sorted = [...s].sort((a, b) => a - b);
        series[name].push({ threads: n, mops: 1e3 / sorted[Math.floor(sorted.length / 2)] });
      }
    }
    // Aggregate throughput relative to one worker of the same kind.
    const extra = {};
    for (const [name, pts] of Object.entries(series)) {
      for (const p of pts.slice(1)) extra[`${name}: ${p.threads} workers vs 1`] = `${(p.mops / pts[0].mops).toFixed(2)}x`;
    }
    return { samples, series, extra };
  },
};
