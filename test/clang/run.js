#!/usr/bin/env node
'use strict';
// npm run test:clang: the core, the binding and the C++ tests compiled by
// clang with -Wall -Wextra -Werror (the builds use g++; a second compiler
// catches what the first lets through). Syntax and semantic analysis only
// (-fsyntax-only: clang's warnings all come from that stage). The binding
// is checked with the same defines as binding.gyp, against node-addon-api and
// the running Node's headers. CLANGXX picks another clang++.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
const clang = process.env.CLANGXX || 'clang++';
const gyp = JSON.parse(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8')).targets.find((t) => t.target_name === 'objpool');
const napi = path.join(root, require('node-addon-api').include_dir);
const nodedir = process.env.npm_config_nodedir || path.dirname(path.dirname(process.execPath));
const nodeInclude = path.join(nodedir, 'include', 'node');
if (!fs.existsSync(path.join(nodeInclude, 'node_api.h'))) {
  console.error(`no Node headers in ${nodeInclude} (set npm_config_nodedir)`);
  process.exit(1);
}
const version = spawnSync(clang, ['--version'], { encoding: 'utf8' });
if (version.error) {
  console.error(`${clang} not found (apt-get install clang)`);
  process.exit(1);
}
console.log(`# ${version.stdout.split('\n')[0]}`);

const base = ['-std=c++20', '-Wall', '-Wextra', '-Werror', '-fsyntax-only', '-pthread'];
const addon = [...gyp.defines.map((d) => `-D${d}`), '-fexceptions', `-I${napi}`, `-I${nodeInclude}`, `-I${path.join(root, 'native')}`];
const units = [
  ['native/objpool.hpp (the core on its own)', ['-x', 'c++', 'native/objpool.hpp']],
  // Each header of the core, and the binding's shared header, compiles alone.
  ...['platform.hpp', 'layout.hpp', 'pool.hpp', 'channel.hpp'].map((h) => [`native/${h} (alone)`, ['-x', 'c++', `native/${h}`]]),
  ['native/binding.hpp (alone)', [...addon, '-x', 'c++', 'native/binding.hpp']],
  ...gyp.sources.map((src) => [src, [...addon, src]]),
  ...gyp.conditions.flatMap(([, c]) => c.sources ?? []).map((src) => [src, [...addon, src]]),
  ['test/native/stress.cc', ['test/native/stress.cc']],
  ['test/addon/testing.cc', [...addon, 'test/addon/testing.cc']],
  ['bench/native/core_bench.cc', ['bench/native/core_bench.cc']],
];
let passed = 0;
let failed = 0;
for (const [name, args] of units) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(clang, [...base, ...args], { cwd: root, encoding: 'utf8' });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const ok = r.status === 0 && !/warning:/.test(r.stderr);
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name} (${secs.toFixed(1)} s)`);
  if (r.stderr) process.stdout.write(r.stderr);
}
console.log(`clang: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
