'use strict';
// Shared benchmark helpers: machine description, timing rounds, summaries.
const os = require('node:os');

function machine() {
  return {
    cpu: os.cpus()[0]?.model?.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
  };
}

function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1] };
}

/**
 * Times each implementation's `run(n)` (n operations; may return a promise)
 * for `rounds` rounds after a warm-up, interleaving implementations within
 * each round so that drift hits all alike. Returns ns/op samples by name.
 */
async function interleave(impls, { rounds, ops, warmup = Math.ceil(ops / 4) }) {
  const samples = {};
  for (const [name, impl] of Object.entries(impls)) {
    samples[name] = [];
    await impl.run(Math.ceil(warmup / (impl.scale ?? 1)));
  }
  for (let r = 0; r < rounds; r++) {
    for (const [name, impl] of Object.entries(impls)) {
      const n = Math.max(1, Math.ceil(ops / (impl.scale ?? 1)));
      // Collect the young garbage the previous implementation left (the
      // allocating baselines leave plenty), so that it does not bill the next
      // one. A minor collection only: a full one shrinks the young
      // generation, and allocation-heavy code then runs slower for a while
      // (generic-pool measured ~4x slower right after gc()).
      global.gc?.({ type: 'minor' });
      const t0 = process.hrtime.bigint();
      await impl.run(n);
      samples[name].push(Number(process.hrtime.bigint() - t0) / n);
    }
  }
  return samples;
}

/** Builds every implementation from its factory, then times them all with interleave(). */
async function measureAll(factories, opts) {
  const impls = Object.fromEntries(Object.entries(factories).map(([name, make]) => [name, make()]));
  return { impls, samples: await interleave(impls, opts) };
}

/** Rows for the table: ns/op (median, min, max), Mops/s and the ratio to the baseline's median. */
function rows(samples, baseline, per = {}) {
  const base = summary(samples[baseline]).median;
  return Object.entries(samples).map(([impl, s]) => {
    const { median, min, max } = summary(s);
    return { impl, ...(per[impl] ?? {}), median, min, max, mops: 1e3 / median, ratio: median / base };
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

module.exports = { machine, summary, interleave, measureAll, rows, sleep };
