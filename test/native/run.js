#!/usr/bin/env node
'use strict';
// npm run test:native: checks of the C++ core (native/objpool.hpp and the
// headers it includes: platform.hpp, layout.hpp, pool.hpp, channel.hpp) alone.
//  1. the stress test (test/native/stress.cc), optimised;
//  2. the same under ThreadSanitizer, which must report nothing;
//  3. a broken variant (pop's acquire weakened to relaxed) under
//     ThreadSanitizer, which must report a data race: the check can fail;
//  4. the spin model of a slot (test/model/treiber.pml): every interleaving
//     of small cases must pass, and two broken variants (no ABA tag; a link
//     not rewritten after a failed CAS) must be caught;
//  5. the handle channel's stress test (test/native/channel_stress.cc),
//     optimised and under ThreadSanitizer (both atomic_refs);
//  6. the spin model of the channel (test/model/channel.pml): batches,
//     holes, waiters, close() and the pool's close racing with sends; and
//     broken variants that must be caught;
//  7. the spin model of the channel's ring and its promotion
//     (test/model/ring.pml), broken variants, and a broken ring order
//     (the receiver's acquire weakened) that ThreadSanitizer must catch;
//  8. forced deaths in process-shared channel calls
//     (test/native/recover_channels.cc), and a broken recovery that must fail.
// OBJPOOL_STRESS_SCALE=10 multiplies the stress operations; OBJPOOL_LONG=1
// adds a larger model (3 objects, 3 threads: ~10 s, ~1 GB).
//
// The checks run as jobs, as many at once as there are CPUs
// (OBJPOOL_NATIVE_JOBS overrides): each is a compile or a spin model, then
// a run, and none depends on another. A job's output is printed whole, in
// the order the jobs are listed, once it and the jobs before it are done.
// Running beside another job changes no verdict: the stress tests count
// every object, a model's search is exhaustive, and ThreadSanitizer judges
// the accesses it sees by happens-before, not by how close in time they
// ran (the broken variants race on every one of their operations, so a
// race always falls in its history window). If the run is stopped
// (SIGTERM, SIGINT: a time limit), the jobs not done are named with what
// they printed so far.
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
const out = path.join(root, 'build', 'native-tests');
fs.mkdirSync(out, { recursive: true });
const cxx = process.env.CXX || 'g++';
const scale = process.env.OBJPOOL_STRESS_SCALE || '1';
const tsanEnv = { TSAN_OPTIONS: 'halt_on_error=1 exitcode=66 second_deadlock_stack=1' };

// The jobs, in the order they are listed; each has its output and verdict.
const jobs = [];
function job(name, fn) {
  jobs.push({ name, fn, text: '', ok: null });
}
function record(j, ok, secs, note = '') {
  j.ok = ok;
  j.text += `# ${ok ? 'ok  ' : 'FAIL'} ${j.name}${note ? ` (${note})` : ''} in ${secs.toFixed(1)} s\n\n`;
}
// Runs a command to its end: { status, stdout, stderr, secs } (status null,
// with `error`, when it could not start).
function exec(cmd, args, { env, cwd } = {}) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    c.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    let error = null;
    c.on('error', (e) => { error = e; });
    c.on('close', (status) => resolve({ status: error ? null : status, error, stdout, stderr, secs: Number(process.hrtime.bigint() - t0) / 1e9 }));
  });
}

async function compile(j, flags, source) {
  const bin = path.join(out, j.name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase());
  const args = ['-std=c++20', '-Wall', '-Wextra', '-Werror', '-pthread', ...flags, path.join(__dirname, source), '-o', bin];
  j.text += `# ${cxx} ${args.join(' ')}\n`;
  const cc = await exec(cxx, args);
  j.text += cc.stdout + cc.stderr + (cc.error ? `${cc.error.message}\n` : '');
  return cc.status === 0 ? bin : null;
}

function stress(name, flags, env, { expectRace = false, scaleArg = scale, source = 'stress.cc' } = {}) {
  job(name, async (j) => {
    const bin = await compile(j, flags, source);
    if (!bin) return record(j, false, 0, 'build failed');
    const run = await exec(bin, [scaleArg], { env });
    const race = /WARNING: ThreadSanitizer: data race/.test(run.stderr);
    if (expectRace) {
      if (!race) j.text += run.stdout + run.stderr;
      return record(j, race, run.secs, race ? 'ThreadSanitizer caught the weakened order, as it must' : 'the broken variant went unnoticed');
    }
    j.text += run.stdout + run.stderr;
    const report = /WARNING: ThreadSanitizer|ERROR: \w+Sanitizer/.test(run.stderr);
    record(j, run.status === 0 && !report, run.secs, run.status !== 0 ? `exit ${run.status}` : report ? 'sanitizer report' : '');
  });
}

// A spin model (test/model/<file>): pan explores every interleaving.
// `collapse` compresses stored states (the channel model's larger cases:
// ~4x less memory, the same states). A search cut short by the depth limit
// is a failure, not a pass.
function model(name, defines, { expectError, file = 'treiber.pml', collapse = false }) {
  job(name, async (j) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'objpool-spin-'));
    const t0 = process.hrtime.bigint();
    const res = await (async () => {
      const gen = await exec('spin', [...defines, '-a', path.join(root, 'test', 'model', file)], { cwd: dir });
      if (gen.status !== 0) return { error: gen.error?.code === 'ENOENT' ? 'spin is not installed (apt-get install spin)' : gen.stderr || gen.stdout || String(gen.error) };
      const cc = await exec(process.env.CC || 'gcc', ['-O2', '-DSAFETY', ...(collapse ? ['-DCOLLAPSE'] : []), '-o', 'pan', 'pan.c'], { cwd: dir });
      if (cc.status !== 0) return { error: cc.stderr || String(cc.error) };
      const pan = await exec('./pan', ['-m200000'], { cwd: dir });
      const m = /errors: (\d+)/.exec(pan.stdout);
      const states = /(\d+) states, stored/.exec(pan.stdout)?.[1];
      if (!expectError && /max search depth too small/.test(pan.stdout)) return { error: `search cut short at depth 200000 (${states} states)` };
      return { errors: m ? Number(m[1]) : -1, states, violation: /assertion violated.*|invalid end state.*/.exec(pan.stdout)?.[0] };
    })();
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    fs.rmSync(dir, { recursive: true, force: true });
    if (res.error) return record(j, false, secs, res.error.trim());
    const ok = expectError ? res.errors > 0 : res.errors === 0;
    const note = expectError
      ? (res.errors > 0 ? `caught, as it must: ${res.violation}` : `not caught in ${res.states} states`)
      : `${res.states} states, ${res.errors} errors`;
    record(j, ok, secs, note);
  });
}

stress('stress', ['-O2'], {});
stress('stress under ThreadSanitizer', ['-O1', '-g', '-fsanitize=thread'], tsanEnv);
// The stand-in for std::atomic_ref (native/atomic_ref.hpp), which the musl,
// macOS and Windows prebuilds use, under the same stress and ThreadSanitizer.
stress('stress under ThreadSanitizer, with the atomic_ref stand-in', ['-O1', '-g', '-fsanitize=thread', '-DOBJPOOL_FORCE_ATOMIC_REF_SHIM'], tsanEnv);
stress('broken: pop relaxed instead of acquire, under ThreadSanitizer', ['-O1', '-g', '-fsanitize=thread', '-DOBJPOOL_TEST_POP_ORDER=std::memory_order_relaxed'], tsanEnv, { expectRace: true, scaleArg: '0.05' });
model('model: 2 objects, 2 threads, 3 ops each', ['-DN=2', '-DTHREADS=2', '-DOPS=3'], { expectError: false });
model('model: 2 objects, 3 threads, 2 ops each', ['-DN=2', '-DTHREADS=3', '-DOPS=2'], { expectError: false });
if (process.env.OBJPOOL_LONG) model('model: 3 objects, 3 threads, 2 ops each', ['-DN=3', '-DTHREADS=3', '-DOPS=2'], { expectError: false });
model('broken model: no ABA tag', ['-DNO_TAG'], { expectError: true });
model('broken model: link written once, not after each failed CAS', ['-DLINK_ONCE'], { expectError: true });

// The handle channel (objpool::Channel). Its fences (the waiter and close
// pairings) are beyond ThreadSanitizer, which GCC says with -Wtsan (an error
// under -Werror): the model checks those pairings; the stress test under
// ThreadSanitizer checks the seq words' hand-off of the objects' bytes.
const noTsanWarning = spawnSync(cxx, ['-Wno-tsan', '-Werror', '-fsyntax-only', '-x', 'c++', '-'], { input: '' }).status === 0 ? ['-Wno-tsan'] : [];
const channel = { source: 'channel_stress.cc' };
stress('channel stress', ['-O2'], {}, channel);
stress('channel stress under ThreadSanitizer', ['-O1', '-g', '-fsanitize=thread', ...noTsanWarning], tsanEnv, channel);
stress('channel stress under ThreadSanitizer, with the atomic_ref stand-in', ['-O1', '-g', '-fsanitize=thread', ...noTsanWarning, '-DOBJPOOL_FORCE_ATOMIC_REF_SHIM'], tsanEnv, channel);
const chan = (expectError) => ({ expectError, file: 'channel.pml', collapse: true });
model('channel model: a batch and a single producer (one hole), a batch and a single consumer, 2 cells', ['-DHOLES'], chan(false));
model('channel model: a waiting consumer (the waiter pairing), holes', ['-DHOLES', '-DWAIT', '-DNCONS=1'], chan(false));
model('channel model: close() racing with sends, a polling consumer', ['-DCLOSE_RACE', '-DNCONS=1'], chan(false));
model('channel model: close() racing with sends, a waiting consumer', ['-DCLOSE_RACE', '-DWAIT', '-DNCONS=1'], chan(false));
model('channel model: the pool closing while senders send (give-backs only), holes', ['-DPOOL_CLOSE', '-DHOLES'], chan(false));
model('channel model: close(), then the pool closing, while senders send (holes, give-backs)', ['-DPOOL_CLOSE', '-DCLOSE_FIRST', '-DHOLES'], chan(false));
model('channel model: the pool closing under a waiting consumer', ['-DPOOL_CLOSE', '-DWAIT', '-DNCONS=1', '-DPRODUCERS=1'], chan(false));
model('broken channel model: one cell', ['-DCAP=1'], chan(true));
model('broken channel model: a batch claim checks only its first cell', ['-DBATCH_UNCHECKED'], chan(true));
model('broken channel model: a consumer frees its cell before reading it', ['-DFREE_BEFORE_READ'], chan(true));
model('broken channel model: a waiter sleeps without looking again', ['-DHOLES', '-DWAIT', '-DNCONS=1', '-DNO_WAITER_RECHECK'], chan(true));
model('broken channel model: no closed check after the claim', ['-DCLOSE_RACE', '-DNCONS=1', '-DNO_RECHECK'], chan(true));
model('broken channel model: a hole without the attention check, a waiting consumer', ['-DHOLES', '-DWAIT', '-DNCONS=1', '-DHOLE_NO_SETTLE'], chan(true));
model('broken channel model: a hole without the attention check, the pool closing', ['-DPOOL_CLOSE', '-DHOLES', '-DHOLE_NO_SETTLE'], chan(true));
model('broken channel model: close_for_pool() wakes no waiter', ['-DPOOL_CLOSE', '-DWAIT', '-DNCONS=1', '-DPRODUCERS=1', '-DPOOL_CLOSE_NO_WAKE'], chan(true));

// The ring (one sender, one receiver) and its promotion to the MPMC queue
// (test/model/ring.pml), and broken variants that must be caught.
const ring = (expectError) => ({ expectError, file: 'ring.pml' });
model('ring model: one sender, one receiver', [], ring(false));
model('ring model: a waiting receiver (the Wait bit)', ['-DWAIT'], ring(false));
model('ring model: a second sender promotes it mid-stream', ['-DPROMOTE'], ring(false));
model('ring model: promoted mid-stream, a waiting receiver', ['-DPROMOTE', '-DWAIT'], ring(false));
model('broken ring model: publish with a plain store', ['-DPROMOTE', '-DSTORE_PUBLISH'], ring(true));
model('broken ring model: the ring in the MPMC cells', ['-DPROMOTE', '-DSHARED_CELLS'], ring(true));
model('broken ring model: promotion freezes only the enqueue position', ['-DPROMOTE', '-DFREEZE_ENQ_ONLY'], ring(true));
model('broken ring model: promotion reads the positions before it freezes them', ['-DPROMOTE', '-DREAD_THEN_FREEZE'], ring(true));
model('broken ring model: a waiter sets no Wait bit', ['-DWAIT', '-DNO_WAIT_BIT'], ring(true));
stress('broken: the ring receiver\'s load relaxed instead of acquire, under ThreadSanitizer', ['-O1', '-g', '-fsanitize=thread', ...noTsanWarning, '-DOBJPOOL_TEST_RING_ORDER=std::memory_order_relaxed'], tsanEnv, { ...channel, expectRace: true, scaleArg: '0.05' });

// 8. Forced deaths in process-shared channel calls (test/native/recover_channels.cc):
// a child killed at each step of a send or receive, then the recovery; under
// AddressSanitizer and UBSan too; and a broken recovery (cells skipped) that must fail.
function deaths(name, flags, { expectFail = false } = {}) {
  job(name, async (j) => {
    const bin = await compile(j, flags, 'recover_channels.cc');
    if (!bin) return record(j, false, 0, 'build failed');
    const run = await exec(bin, [], { env: { ASAN_OPTIONS: 'detect_leaks=0' } });
    if (expectFail) {
      const caught = run.status === 1 && /FAIL/.test(run.stderr);
      return record(j, caught, run.secs, caught ? 'the broken recovery was caught, as it must be' : 'the broken recovery went unnoticed');
    }
    if (run.status !== 0) j.text += run.stdout + run.stderr;
    record(j, run.status === 0 && !/runtime error|AddressSanitizer/.test(run.stderr), run.secs, run.status !== 0 ? `exit ${run.status}` : '');
  });
}
deaths('process-shared channels: a process killed at each step of a send or receive, then recovered', ['-O2']);
deaths('the same under AddressSanitizer and UBSan', ['-O1', '-g', '-fsanitize=address,undefined', '-fno-sanitize-recover=undefined']);
deaths('broken: a recovery that leaves the cells as they are', ['-O2', '-DOBJPOOL_TEST_BROKEN_RECOVERY'], { expectFail: true });

// Runs the jobs, `width` at once; prints each in list order.
async function main() {
  const width = Math.max(1, Number(process.env.OBJPOOL_NATIVE_JOBS) || os.availableParallelism?.() || os.cpus().length);
  const t0 = Date.now();
  let next = 0;
  let printed = 0;
  const done = new Array(jobs.length).fill(false);
  const flush = () => {
    while (printed < jobs.length && done[printed]) process.stdout.write(jobs[printed++].text);
  };
  const lane = async () => {
    while (next < jobs.length) {
      const i = next++;
      const j = jobs[i];
      try {
        await j.fn(j);
      } catch (err) {
        record(j, false, 0, `the check itself failed: ${err.stack || err}`);
      }
      if (j.ok === null) record(j, false, 0, 'no verdict');
      done[i] = true;
      flush();
    }
  };
  const stopped = (sig) => {
    flush();
    for (let i = printed; i < jobs.length; i++) {
      if (!done[i] && i < next) process.stdout.write(`${jobs[i].text}# FAIL ${jobs[i].name} (not done: stopped by ${sig})\n\n`);
    }
    process.exit(1);
  };
  process.on('SIGTERM', () => stopped('SIGTERM'));
  process.on('SIGINT', () => stopped('SIGINT'));
  await Promise.all(Array.from({ length: Math.min(width, jobs.length) }, lane));
  const failed = jobs.filter((j) => !j.ok).length;
  console.log(`native: ${jobs.length - failed} passed, ${failed} failed (${width} at once, ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  process.exit(failed ? 1 : 0);
}
main();
