#!/usr/bin/env node
'use strict';
// Prints bench/results/latest.json as Markdown tables (for the README).
const fs = require('node:fs');
const path = require('node:path');

const report = JSON.parse(fs.readFileSync(path.join(__dirname, 'results', 'latest.json'), 'utf8'));
const m = report.machine;
const fmt = (n) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
console.log(`Measured on ${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.platform} (${report.date.slice(0, 10)}). Medians; ratio = ns/op over the scenario's baseline (lower is faster).\n`);
for (const s of Object.values(report.scenarios)) {
  console.log(`**${s.title}** (baseline: ${s.baseline})\n`);
  console.log('| scenario | ns/op | min | max | Mops/s | ratio |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of s.rows) console.log(`| ${r.impl} | ${fmt(r.median)} | ${fmt(r.min)} | ${fmt(r.max)} | ${r.mops.toFixed(2)} | ${r.ratio.toFixed(2)}x |`);
  if (s.extra) console.log('\n' + Object.entries(s.extra).map(([k, v]) => `- ${k}: ${v}`).join('\n'));
  console.log('');
}
