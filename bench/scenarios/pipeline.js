'use strict';
// End to end: examples/pipeline.js (a TCP stream from another process, cut
// into chunks, each hashed by a worker thread and checked against the
// digests the sender made) with chunks handed over through handle channels,
// by postMessage (transferring or copying each chunk), or all in one thread.
// Each run is a fresh process of the example; the figures are its own:
// wall time per KiB from the first byte to the last digest (throughput) and
// the server process's CPU per KiB (main thread and workers, not the sender).
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const example = path.join(__dirname, '..', '..', 'examples', 'pipeline.js');
const MODES = { channels: 'handle channels (pooled, zero-copy)', transfer: 'postMessage, chunk transferred', copy: 'postMessage, chunk copied', single: 'one thread, no hand-off' };
const SIZES = [65536, 16384, 1024];

function once(mode, size, mib, workers) {
  const out = execFileSync(process.execPath, [example, '--mode', mode, '--object-size', String(size), '--capacity', '256', '--mib', String(mib), '--workers', String(workers)], { encoding: 'utf8', timeout: 300_000 });
  const m = /every byte checked, (\d+) MB\/s, CPU (\d+) ms\/GiB/.exec(out);
  if (!m) throw new Error(`unexpected output: ${out}`);
  return { mbps: Number(m[1]), cpuMsPerGiB: Number(m[2]) };
}

const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const label = (mode, size) => `${MODES[mode]}, ${size / 1024} KiB chunks`;

module.exports = {
  name: 'pipeline',
  title: 'end to end (examples/pipeline.js): TCP stream -> chunks -> worker threads hash them -> checked; wall ns per KiB, 64 KiB chunks',
  baseline: label('single', 65536),
  defaults: { bytes: 64 << 20, rounds: 3, threads: 2 },
  async run({ bytes, rounds, threads }) {
    const mib = Math.max(1, Math.round(bytes / 2 ** 20));
    const wall = {}, cpu = {};
    for (const size of SIZES) for (const mode of Object.keys(MODES)) { wall[label(mode, size)] = []; cpu[label(mode, size)] = []; }
    for (let r = 0; r < rounds; r++) {
      for (const size of SIZES) {
        // Modes in a different order each round: loopback throughput drifts.
        const modes = Object.keys(MODES);
        const order = modes.map((_, i) => modes[(i + r) % modes.length]);
        for (const mode of order) {
          const { mbps, cpuMsPerGiB } = once(mode, size, mib, threads);
          wall[label(mode, size)].push(1024 / (mbps * 1e6) * 1e9); // ns per KiB
          cpu[label(mode, size)].push(cpuMsPerGiB * 1e6 / 2 ** 20); // ns per KiB
        }
      }
    }
    const pick = (series, size) => Object.fromEntries(Object.keys(MODES).map((m) => [label(m, size), series[label(m, size)]]));
    const tables = [];
    for (const size of SIZES) {
      if (size !== 65536) tables.push({ title: `wall ns per KiB, ${size / 1024} KiB chunks`, baseline: label('single', size), samples: pick(wall, size) });
      tables.push({ title: `server CPU (main thread + workers) ns per KiB, ${size / 1024} KiB chunks`, baseline: label('single', size), samples: pick(cpu, size) });
    }
    const extra = {};
    for (const size of SIZES) {
      extra[`MB/s (median of ${rounds}), ${size / 1024} KiB chunks: channels / transfer / copy / one thread`] = Object.keys(MODES).map((m) => (1024 / med(wall[label(m, size)]) * 1e3).toFixed(0)).join(' / ');
      extra[`server CPU ms per GiB (median), ${size / 1024} KiB chunks: channels / transfer / copy / one thread`] = Object.keys(MODES).map((m) => (med(cpu[label(m, size)]) * 2 ** 20 / 1e6).toFixed(0)).join(' / ');
    }
    extra['workers'] = threads;
    return { samples: pick(wall, 65536), tables, extra };
  },
};
