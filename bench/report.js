#!/usr/bin/env node
'use strict';
// Prints bench/results/latest.json as Markdown: the tables, then the targets
// of ../shared/BENCH.md computed from them. With --readme (or --docs), writes
// the result into docs/benchmarks.md between the bench markers instead.
const fs = require('node:fs');
const path = require('node:path');

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(`usage: node bench/report.js [--in FILE] [--readme | --docs]

Prints the results of the last benchmark run (bench/results/latest.json, or
--in FILE) as Markdown tables, then the targets computed from them.

  --in FILE   read another results file
  --readme    write the tables into docs/benchmarks.md, between the markers
  --docs      the same as --readme`);
  process.exit(0);
}

// --in FILE: another results file than latest.json.
const inIndex = process.argv.indexOf('--in');
const report = JSON.parse(fs.readFileSync(inIndex >= 0 ? path.resolve(process.argv[inIndex + 1]) : path.join(__dirname, 'results', 'latest.json'), 'utf8'));
const m = report.machine;
const fmt = (n) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
const out = [];
const say = (line = '') => out.push(line);

say(`Measured on ${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.platform} (${report.date.slice(0, 10)}). Medians; ratio = ns/op over the scenario's baseline (lower is faster).`);
say();
const on = (x) => `${x.cpu}, ${x.cores} cores, Node ${x.node}`;
for (const s of Object.values(report.scenarios)) {
  say(`**${s.title}** (baseline: ${s.baseline})`);
  say();
  // A scenario measured in another run (a subset run) says where and when.
  if (s.machine && (on(s.machine) !== on(m) || s.date?.slice(0, 10) !== report.date.slice(0, 10))) {
    say(`Measured on ${on(s.machine)} (${s.date.slice(0, 10)}).`);
    say();
  }
  say('| scenario | ns/op | min | max | Mops/s | ratio |');
  say('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of s.rows) say(`| ${r.impl} | ${fmt(r.median)} | ${fmt(r.min)} | ${fmt(r.max)} | ${r.mops.toFixed(2)} | ${r.ratio.toFixed(2)}x |`);
  for (const t of s.tables ?? []) {
    say();
    say(`*${t.title}* (baseline: ${t.baseline})`);
    say();
    say('| scenario | ns/op | min | max | Mops/s | ratio |');
    say('| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const r of t.rows) say(`| ${r.impl} | ${fmt(r.median)} | ${fmt(r.min)} | ${fmt(r.max)} | ${r.mops.toFixed(2)} | ${r.ratio.toFixed(2)}x |`);
  }
  if (s.extra) {
    say();
    for (const [k, v] of Object.entries(s.extra)) say(`- ${k}: ${v}`);
  }
  say();
}

// The targets, each a ratio within one scenario's run.
const med = (scenario, impl) => report.scenarios[scenario]?.rows.find((r) => r.impl === impl)?.median;
const rows = [];
const target = (what, value, shown, ok) => rows.push(`| ${what} | ${value === undefined ? 'not run' : shown} | ${value === undefined ? '' : ok ? 'met' : 'not met'} |`);
const single = (impl) => med('single', impl);
const array = single('JS array free list pop+push');
if (array !== undefined) {
  const ratio = (impl, base, limit, label) => {
    const v = single(impl), b = single(base);
    target(label, v, `${fmt(v)} / ${fmt(b)} ns = ${(v / b).toFixed(2)}x`, v / b <= limit);
  };
  ratio('objpool pop+push (checked)', 'JS array free list pop+push', 3, 'checked pair (cached) <= 3x the JS array free list');
  ratio('objpool pop+push (unchecked)', 'JS array free list pop+push', 1.5, 'unchecked pair (cached) <= 1.5x the JS array free list');
  ratio('objpool acquire+release (Buffer)', 'JS array free list pop+push', 4, 'acquire+release (cached) <= 4x the JS array free list');
  ratio('objpool pop+push (checked, cache: 0)', 'no-op N-API call x2 (C napi_callback)', 3, 'pair with `cache: 0` <= 3x two no-op N-API calls');
  const pair = single('objpool pop+push (checked)');
  for (const alloc of ['Buffer.allocUnsafe(65536)', 'Buffer.allocUnsafe(4096)']) {
    const x = single(alloc) / pair;
    target(`checked pair >= 50x faster than \`${alloc}\``, pair, `${x.toFixed(0)}x`, x >= 50);
  }
}
const batch = med('batch', 'objpool popMany+pushMany, batch 32');
const core = med('batch', 'C++ core: objpool');
target('`popMany`/`pushMany` (32) per object <= 1.5x the C++ core per op', batch, `${fmt(batch)} / ${fmt(core)} ns = ${(batch / core).toFixed(2)}x`, batch / core <= 1.5);
const series = report.scenarios.scaling?.series;
if (series) {
  const gain = (name) => series[name].at(-1).mops / series[name][0].mops;
  const n = series['objpool (per-thread caches)'].at(-1).threads;
  target(`${n} workers >= 1.9x one worker`, 1, `${gain('objpool (per-thread caches)').toFixed(2)}x`, gain('objpool (per-thread caches)') >= 1.9);
  target(`\`slots: 1\` (no cache) with ${n} workers < 0.5x one worker`, 1, `${gain('objpool slots=1, cache: 0').toFixed(2)}x`, gain('objpool slots=1, cache: 0') < 0.5);
}
const net = report.scenarios.net?.extra;
const num = (v) => Number(String(v).replace('x', ''));
if (net) {
  const cpuPlain = net["pooled receiver CPU per byte vs plain 'data' (median of per-round ratios)"];
  const cpuStatic = net['pooled receiver CPU per byte vs one static buffer (median of per-round ratios)'];
  const vsPlain = net["pooled throughput vs plain 'data' (median of per-round ratios)"];
  const [plainGc, pooledGc] = String(net['GC events per round (median): plain / pooled / static']).split(' / ').map(Number);
  target("pooled TCP reads: receiver CPU per byte <= 0.8x plain `'data'` reads", 1, cpuPlain, num(cpuPlain) <= 0.8);
  target('pooled TCP reads: receiver CPU per byte <= 1.1x one static buffer', 1, cpuStatic, num(cpuStatic) <= 1.1);
  target('pooled TCP reads: GC events <= 0.2x plain reads', 1, `${pooledGc} / ${plainGc} = ${(pooledGc / plainGc).toFixed(2)}x`, pooledGc / plainGc <= 0.2);
  target("pooled TCP reads: throughput >= 0.95x plain `'data'` reads", 1, vsPlain, num(vsPlain) >= 0.95);
}
const proxy = report.scenarios.proxy?.extra;
if (proxy) {
  const cpu = proxy['pooled proxy CPU per byte vs plain (median of per-round ratios)'];
  const thr = proxy['pooled proxy throughput vs plain (median of per-round ratios)'];
  target('pooled proxy: CPU per byte below a plain `socket.pipe()` proxy', 1, cpu, num(cpu) < 1);
  target('pooled proxy: throughput >= 0.95x a plain `socket.pipe()` proxy', 1, thr, num(thr) >= 0.95);
}
const cross = (impl) => med('crossing', impl);
if (cross('no-op x2') !== undefined) {
  const bare = cross('no-op x2');
  const data = cross('no-op x2 + get_cb_info(data)');
  const shaped = cross('pop-shaped + push-shaped calls, no pool');
  const real = cross('pool.pop() + pool.push(h), cache: 0');
  say(`Where a pop+push pair without a cache goes (the crossing table): two bare crossings ${fmt(bare)} ns; fetching the bound pool's data pointer in each ${fmt(data - bare)} ns more; ` +
    `the pool's work (the JS check of the handle, the register, and the core's three atomic read-modify-writes: take, state check, link) ${fmt(real - data)} ns. ` +
    `Passing the handle as an argument and a return value instead of through the register would cost ${fmt(shaped - data)} ns more a pair.`);
  say();
}
const channel = report.scenarios.channel;
if (channel) {
  const row = (impl) => [channel.rows, ...(channel.tables ?? []).map((t) => t.rows)].flat().find((r) => r.impl === impl)?.median;
  const faster = (impl, base, limit, label) => {
    const v = row(impl), b = row(base);
    target(label, v, `${fmt(b)} / ${fmt(v)} ns = ${(b / v).toFixed(1)}x`, b / v >= limit);
  };
  faster('channel send / receive, one by one', 'postMessage(handle), one by one', 10, 'channel one by one >= 10x the throughput of `postMessage(handle)` (goal 20x)');
  faster('channel sendMany / receiveMany, batches of 32', 'postMessage(handle), one by one', 100, '`sendMany`/`receiveMany` (32) >= 100x the throughput of `postMessage(handle)`');
  const rt = row('channel ping-pong, receiveAsync on both sides'), rtBase = row('postMessage ping-pong');
  target('channel ping-pong round trip <= 1x `postMessage` ping-pong (goal 0.6x)', rt, `${fmt(rt)} / ${fmt(rtBase)} ns = ${(rt / rtBase).toFixed(2)}x`, rt / rtBase <= 1);
  const idle = channel.extra?.['idle receiveAsync, 300 ms: process CPU, median of 3 (target < 60 ms)'];
  if (idle !== undefined) target('an idle `receiveAsync` (300 ms) uses < 60 ms of CPU', 1, idle, parseFloat(idle) < 60);
}
const lone = (impl) => med('core', impl);
if (lone('objpool slots=1 x2') !== undefined && lone('objpool slots=1 x2') < 2 * lone('objpool slots=1 x1')) {
  say('Note: in this run two C++ threads on one contended word cost little more than one, so the two threads did not run at the same time: this shared 2-core VM gave the run about one core (compare the scaling figures).');
  say();
}
// The headline figures on every Node version measured (bench/results/node*.json: npm run bench -- single net --out ...).
const versions = [report, ...fs.readdirSync(path.join(__dirname, 'results')).filter((f) => /^node\d+\.json$/.test(f))
  .map((f) => JSON.parse(fs.readFileSync(path.join(__dirname, 'results', f), 'utf8')))]
  .sort((a, b) => parseInt(a.machine.node.slice(1)) - parseInt(b.machine.node.slice(1)));
if (versions.length > 1) {
  say('Headline figures per Node version (each row one run of `single` and `net` on that version; ratios within the run):');
  say();
  say('| Node | checked pair / JS array | unchecked pair / JS array | acquire+release / JS array | pair vs `allocUnsafe(65536)` | `cache: 0` pair / 2 no-op calls | receiver CPU/byte vs plain | vs static | GC pooled / plain |');
  say('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of versions) {
    const m1 = (impl) => r.scenarios.single?.rows.find((x) => x.impl === impl)?.median;
    const arr = m1('JS array free list pop+push');
    const pair = m1('objpool pop+push (checked)');
    const x = (a, b) => (a === undefined || b === undefined ? '' : `${(a / b).toFixed(2)}x`);
    const n = r.scenarios.net?.extra ?? {};
    const gc = String(n['GC events per round (median): plain / pooled / static'] ?? '').split(' / ');
    say(`| ${r.machine.node} | ${x(pair, arr)} | ${x(m1('objpool pop+push (unchecked)'), arr)} | ${x(m1('objpool acquire+release (Buffer)'), arr)} | ` +
      `${pair ? `${(m1('Buffer.allocUnsafe(65536)') / pair).toFixed(0)}x faster` : ''} | ${x(m1('objpool pop+push (checked, cache: 0)'), m1('no-op N-API call x2 (C napi_callback)'))} | ` +
      `${n["pooled receiver CPU per byte vs plain 'data' (median of per-round ratios)"] ?? ''} | ${n['pooled receiver CPU per byte vs one static buffer (median of per-round ratios)'] ?? ''} | ${gc.length > 1 ? `${gc[1]} / ${gc[0]}` : ''} |`);
  }
  say();
}
say('The targets of the project, each a ratio within one scenario of the run above:');
say();
say('| target | measured | |');
say('| --- | --- | --- |');
for (const r of rows) say(r);

const text = out.join('\n');
if (process.argv.includes('--readme') || process.argv.includes('--docs')) {
  // The tables live in docs/benchmarks.md (the README links to them); the
  // flag keeps its old name.
  const file = path.join(__dirname, '..', 'docs', 'benchmarks.md');
  const doc = fs.readFileSync(file, 'utf8');
  const begin = '<!-- bench:begin (npm run bench:report -- --readme) -->';
  const end = '<!-- bench:end -->';
  const a = doc.indexOf(begin);
  const b = doc.indexOf(end);
  if (a < 0 || b < a) throw new Error('docs/benchmarks.md has no bench markers');
  fs.writeFileSync(file, doc.slice(0, a + begin.length) + '\n' + text + '\n' + doc.slice(b));
} else {
  console.log(text);
}
