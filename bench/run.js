#!/usr/bin/env node
'use strict';
// Benchmark orchestrator: runs each scenario in a fresh process, prints a
// table per scenario (ns/op median/min/max, Mops/s, ratio to the scenario's
// baseline), writes bench/results/latest.json and the scaling chart. A
// scenario may return more tables ({ title, baseline, samples }), each
// printed after its first with ratios to its own baseline.
//
//   npm run bench                              all scenarios, default sizes
//   npm run bench -- single --ops 500000       one scenario, smaller
//   BENCH_ROUNDS=9 BENCH_OPS=4000000 npm run bench -- single batch
//   npm run bench -- scaling --threads 16 --ms 500
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { machine, rows } = require('./lib');
const { lineChart } = require('./chart');

const ALL = ['single', 'cache', 'crossing', 'batch', 'core', 'scaling', 'net', 'proxy', 'channel', 'channels', 'poolset', 'pipeline', 'process'];
const args = process.argv.slice(2);
const outIndex = args.indexOf('--out');
const outFile = outIndex >= 0 ? args.splice(outIndex, 2)[1] : process.env.BENCH_OUT;
const wanted = args.filter((a) => !a.startsWith('--') && !/^\d/.test(a));
const opt = (name, env) => {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? args[i + 1] : process.env[env];
  return v === undefined ? undefined : Number(v);
};
const overrides = { ops: opt('ops', 'BENCH_OPS'), rounds: opt('rounds', 'BENCH_ROUNDS'), threads: opt('threads', 'BENCH_THREADS'), ms: opt('ms', 'BENCH_MS'), bytes: opt('bytes', 'BENCH_BYTES'), others: opt('others', 'BENCH_OTHERS') };
for (const w of wanted) if (!ALL.includes(w)) { console.error(`unknown scenario '${w}'; known: ${ALL.join(', ')}`); process.exit(2); }
const names = wanted.length ? wanted : ALL;

const resultsDir = path.join(__dirname, 'results');
fs.mkdirSync(resultsDir, { recursive: true });
// --out FILE (or BENCH_OUT): results elsewhere than latest.json (another Node's run, say).
const latestFile = outFile ? path.resolve(outFile) : path.join(resultsDir, 'latest.json');
const report = { machine: machine(), date: new Date().toISOString(), scenarios: {} };
// Running a subset keeps the other scenarios' last results, each with the
// machine and date it was measured on (the file's own are this run's).
if (wanted.length && fs.existsSync(latestFile)) {
  try {
    const last = JSON.parse(fs.readFileSync(latestFile, 'utf8'));
    for (const [name, s] of Object.entries(last.scenarios)) report.scenarios[name] = { machine: last.machine, date: last.date, ...s };
  } catch { /* start afresh */ }
}

const m = report.machine;
console.log(`objpool benchmarks — ${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.platform}`);
// Each scenario runs in a fresh process with --expose-gc (bench/lib.js
// collects young garbage between implementations) and --no-flush-bytecode
// (code of an implementation idle for a while is not thrown away and
// recompiled on the clock).
const fmt = (n, d = 1) => (n >= 1000 ? n.toFixed(0) : n.toFixed(d));
const printRows = (table) => {
  const width = Math.max(...table.map((r) => r.impl.length), 10);
  console.log(`${'scenario'.padEnd(width)}  ${'ns/op'.padStart(9)} ${'min'.padStart(9)} ${'max'.padStart(9)} ${'Mops/s'.padStart(8)}  ratio`);
  for (const r of table) {
    console.log(`${r.impl.padEnd(width)}  ${fmt(r.median).padStart(9)} ${fmt(r.min).padStart(9)} ${fmt(r.max).padStart(9)} ${fmt(r.mops, 2).padStart(8)}  ${r.ratio.toFixed(2)}x`);
  }
};

let failed = 0;
for (const name of names) {
  const scenario = require(`./scenarios/${name}`);
  const opts = { ...scenario.defaults };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined && !Number.isNaN(v)) opts[k] = v;
  const t0 = Date.now();
  const child = spawnSync(process.execPath, ['--expose-gc', '--no-flush-bytecode', path.join(__dirname, 'scenarios', 'run-one.js'), name, JSON.stringify(opts)], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20,
  });
  if (child.status !== 0) {
    console.error(`\n${name}: failed (exit ${child.status})`);
    failed++;
    continue;
  }
  const result = JSON.parse(child.stdout.trim().split('\n').pop());
  const table = rows(result.samples, scenario.baseline, result.per);
  const tables = (result.tables ?? []).map((t) => ({ title: t.title, baseline: t.baseline, rows: rows(t.samples, t.baseline, t.per) }));
  report.scenarios[name] = { title: scenario.title, machine: report.machine, date: report.date, options: opts, baseline: scenario.baseline, rows: table, ...(tables.length ? { tables } : {}), ...(result.series ? { series: result.series } : {}), ...(result.extra ? { extra: result.extra } : {}) };
  console.log(`\n## ${scenario.title}  (${((Date.now() - t0) / 1000).toFixed(1)} s; ${JSON.stringify(opts)})`);
  printRows(table);
  for (const t of tables) {
    console.log(`\n### ${t.title}`);
    printRows(t.rows);
  }
  if (result.extra) for (const [k, v] of Object.entries(result.extra)) console.log(`  ${k}: ${typeof v === 'number' ? fmt(v, 2) : v}`);
}

report.date = new Date().toISOString();
fs.writeFileSync(latestFile, JSON.stringify(report, null, 2) + '\n');
const scaling = names.includes('scaling') ? report.scenarios.scaling : null; // the chart of this run's scaling only
if (scaling?.series) {
  const sm = scaling.machine ?? m;
  const svg = lineChart({ title: 'objpool scaling: one pool, N worker threads', subtitle: `${sm.cpu}, ${sm.cores} cores, Node ${sm.node}`, series: scaling.series });
  fs.writeFileSync(path.join(resultsDir, 'scaling.svg'), svg);
}
console.log(`\nwrote ${path.relative(process.cwd(), latestFile)}${scaling?.series ? ' and bench/results/scaling.svg' : ''}`);
process.exit(failed ? 1 : 0);
