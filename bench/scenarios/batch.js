'use strict';
// popMany/pushMany in batches against single pops and pushes, and against the
// C++ core's own per-op cost measured in the same run. One op = one object
// taken or returned.
const { ObjectPool } = require('../..');
const { coreBench } = require('./core');

const implementations = {
  'objpool popMany+pushMany, batch 32': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: 64 });
    const out = new Uint32Array(32);
    return { scale: 64, run(n) { for (let i = 0; i < n; i++) { const k = pool.popMany(out); pool.pushMany(out, k); } } };
  },
  'objpool popMany+pushMany, batch 8': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: 64 });
    const out = new Uint32Array(8);
    return { scale: 16, run(n) { for (let i = 0; i < n; i++) { const k = pool.popMany(out); pool.pushMany(out, k); } } };
  },
  'objpool pop+push, cache: 0': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: 64, cache: 0 });
    return { scale: 2, run(n) { for (let i = 0; i < n; i++) pool.push(pool.pop()); } };
  },
};

module.exports = {
  name: 'batch',
  title: 'batches: ns per object moved (a pop or a push), JS vs the C++ core',
  baseline: 'objpool popMany+pushMany, batch 32',
  defaults: { ops: 4_000_000, rounds: 7 },
  async run({ ops, rounds }) {
    // run(n) does n batches of `scale` objects: divide to get ns per object.
    const { impls, samples: raw } = await require('../lib').measureAll(implementations, { ops, rounds });
    const samples = {};
    for (const [k, v] of Object.entries(raw)) samples[k] = v.map((ns) => ns / impls[k].scale);
    const core = coreBench({ ops: Math.max(100_000, Math.floor(ops / 4)), maxThreads: 1, rounds });
    for (const row of core.rows) samples[`C++ core: ${row.impl}`] = row.samples;
    return { samples };
  },
};
