#!/usr/bin/env node
'use strict';
// Builds and runs the C++ stress test of native/objpool.hpp twice: optimised,
// and under ThreadSanitizer (any report fails the run). No Node headers needed.
//   OBJPOOL_STRESS_SCALE=10 npm run test:native   # ten times the operations
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
const out = path.join(root, 'build', 'native-tests');
fs.mkdirSync(out, { recursive: true });
const cxx = process.env.CXX || 'g++';
const scale = process.env.OBJPOOL_STRESS_SCALE || '1';

const variants = [
  { name: 'stress', flags: ['-O2'], env: {} },
  {
    name: 'stress-tsan',
    flags: ['-O1', '-g', '-fsanitize=thread'],
    env: { TSAN_OPTIONS: 'halt_on_error=1 exitcode=66 second_deadlock_stack=1' },
  },
];

let failed = 0;
for (const v of variants) {
  const bin = path.join(out, v.name);
  const args = ['-std=c++20', '-Wall', '-Wextra', '-Werror', '-pthread', ...v.flags, path.join(__dirname, 'stress.cc'), '-o', bin];
  console.log(`# ${cxx} ${args.join(' ')}`);
  const build = spawnSync(cxx, args, { stdio: 'inherit' });
  if (build.status !== 0) {
    console.error(`# build of ${v.name} failed`);
    failed++;
    continue;
  }
  const t0 = process.hrtime.bigint();
  const run = spawnSync(bin, [scale], { env: { ...process.env, ...v.env }, encoding: 'utf8' });
  process.stdout.write(run.stdout);
  process.stderr.write(run.stderr);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const sanitizerReport = /WARNING: ThreadSanitizer|ERROR: \w+Sanitizer/.test(run.stderr);
  const ok = run.status === 0 && !sanitizerReport;
  console.log(`# ${v.name}: ${ok ? 'ok' : `FAILED (exit ${run.status}${sanitizerReport ? ', sanitizer report' : ''})`} in ${secs.toFixed(1)} s`);
  if (!ok) failed++;
}
console.log(`\nnative: ${variants.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
