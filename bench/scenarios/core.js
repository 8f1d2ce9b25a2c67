'use strict';
// Builds and runs bench/native/core_bench.cc: the C++ core alone, no JS.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
const src = path.join(root, 'bench', 'native', 'core_bench.cc');
const bin = path.join(root, 'build', 'bench', 'core_bench');

function build() {
  // The core: objpool.hpp and the headers it includes.
  const headers = ['objpool.hpp', 'platform.hpp', 'layout.hpp', 'pool.hpp', 'channel.hpp'].map((f) => path.join(root, 'native', f));
  if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs > Math.max(...[src, ...headers].map((f) => fs.statSync(f).mtimeMs))) return;
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  execFileSync(process.env.CXX || 'g++', ['-std=c++20', '-O2', '-pthread', src, '-o', bin], { stdio: 'inherit' });
}

/** Rows { impl, threads, samples: [median, min, max] } in ns per op. */
function coreBench({ ops, maxThreads, rounds }) {
  build();
  const out = JSON.parse(execFileSync(bin, [String(ops), String(maxThreads), String(rounds)], { encoding: 'utf8' }));
  // The binary reports its own summary; keep it as three samples so the
  // table can show median, min and max the same way.
  out.rows = out.rows.map((r) => ({ ...r, samples: [r.min, r.median, r.max] }));
  return out;
}

module.exports = {
  coreBench,
  name: 'core',
  title: 'C++ core alone: ns per op (a pop or a push) per thread',
  baseline: 'objpool x1',
  defaults: { ops: 2_000_000, rounds: 5, threads: require('node:os').availableParallelism() },
  async run({ ops, rounds, threads }) {
    const res = coreBench({ ops, maxThreads: threads, rounds });
    const samples = {};
    for (const r of res.rows) samples[`${r.impl} x${r.threads}`] = r.samples;
    return { samples };
  },
};
