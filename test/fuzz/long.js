#!/usr/bin/env node
'use strict';
// npm run fuzz:long: the model-based fuzzers (test/fuzz.test.js, one thread;
// test/fuzz-workers.test.js, across threads) for a count or a time, against
// the normal build and the ASan + UBSan build. Each run is a fresh ava
// process with fresh random seeds; a failed run's output is kept and its
// replay lines are printed.
//
//   npm run fuzz:long -- [--mode plain|asan|both] [--runs N | --minutes M]
//                        [--seeds S] [--steps K] [--only model|cross]
//
// --seeds: sequences per pool kind in each run (default 1000; each fuzzer
// has three pool kinds). --runs: runs per mode (default 1). --minutes: keep
// starting runs in each mode until that much time has passed instead.
// Exits non-zero if any run failed.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const asan = require('../asan/setup');

const { values: opt } = parseArgs({
  options: {
    mode: { type: 'string', default: 'both' },
    runs: { type: 'string' },
    minutes: { type: 'string' },
    seeds: { type: 'string', default: '1000' },
    steps: { type: 'string' },
    only: { type: 'string' },
  },
});
const modes = opt.mode === 'both' ? ['plain', 'asan'] : [opt.mode];
if (!modes.every((m) => m === 'plain' || m === 'asan')) throw new Error(`--mode: plain, asan or both, not ${opt.mode}`);
const files = { model: ['test/fuzz.test.js'], cross: ['test/fuzz-workers.test.js'] }[opt.only] ?? ['test/fuzz.test.js', 'test/fuzz-workers.test.js'];
const runs = opt.runs === undefined ? (opt.minutes === undefined ? 1 : Infinity) : Number(opt.runs);
const minutes = opt.minutes === undefined ? Infinity : Number(opt.minutes);
const logs = path.join(asan.root, 'build', 'fuzz-logs');
const ava = path.join(asan.root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');

// One ava run; resolves with its exit code and output.
function run(env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [ava, '--timeout=30m', ...files], { cwd: asan.root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    child.on('close', (code, signal) => resolve({ code: code ?? signal, output }));
  });
}

async function campaign(mode) {
  let env = { ...process.env, OBJPOOL_FUZZ_SEEDS: opt.seeds };
  if (opt.steps) env.OBJPOOL_FUZZ_STEPS = opt.steps;
  if (mode === 'asan') {
    asan.build();
    env = asan.env(env);
    asan.check(env);
  }
  const t0 = Date.now();
  const total = { runs: 0, failed: 0, sequences: 0, cross: 0 };
  while (total.runs < runs && (Date.now() - t0) / 60000 < minutes) {
    const i = ++total.runs;
    const { code, output } = await run(env);
    // Sequences of the fuzz tests that passed, from their titles.
    // (ava names the file only when it runs several.)
    for (const m of output.matchAll(/✔ (?:\S+ › )?(fuzz[^\n]*?)\((\d+) sequences/g)) {
      total.sequences += Number(m[2]);
      if (m[1].startsWith('fuzz across threads')) total.cross += Number(m[2]);
    }
    if (code === 0) continue;
    total.failed++;
    fs.mkdirSync(logs, { recursive: true });
    const file = path.join(logs, `${mode}-${Date.now()}-${i}.log`);
    fs.writeFileSync(file, output);
    console.log(`# ${mode} run ${i} failed (exit ${code}); output in ${path.relative(asan.root, file)}`);
    for (const line of output.split('\n')) if (/✘|replay:|ERROR: AddressSanitizer|runtime error:/.test(line)) console.log(`#   ${line.trim()}`);
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(0);
  console.log(`fuzz:long ${mode}: ${total.runs} runs, ${total.sequences} sequences passed (${total.cross} across threads), ${total.failed} runs failed, ${secs} s`);
  return total.failed;
}

(async () => {
  let failed = 0;
  for (const mode of modes) failed += await campaign(mode);
  process.exit(failed === 0 ? 0 : 1);
})();
