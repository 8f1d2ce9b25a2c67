'use strict';
// Shared checks: "the pool is intact" means every object not held by the
// test is in the pool exactly once, and nothing else is.

/**
 * Pops everything, checks each handle is valid and unique, pushes all back;
 * returns the handles. `views`: other instances over the same pool in this
 * thread, whose caches may hold objects.
 */
function takeAll(t, pool, views = []) {
  const got = [];
  for (const v of [pool, ...views]) for (let h; (h = v.pop()) !== -1; ) got.push(h);
  const unique = new Set(got);
  t.is(unique.size, got.length, 'no handle handed out twice');
  for (const h of got) t.true(Number.isInteger(h) && h >= 0 && h < pool.capacity, `handle ${h} in range`);
  for (const h of got) pool.push(h);
  return got;
}

/** Asserts the pool (with the caches of `views`) holds exactly `capacity - held.length` objects, disjoint from `held`. */
function assertIntact(t, pool, held = [], views = []) {
  const inPool = takeAll(t, pool, views);
  t.is(inPool.length, pool.capacity - held.length, 'no object lost');
  const heldSet = new Set(held);
  t.false(inPool.some((h) => heldSet.has(h)), 'no held object is also in the pool');
}

/** Resolves once `cond()` holds; rejects after `ms` (an event the test waits for never came). */
async function until(cond, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms: ${cond}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * Starts a worker_thread on `file` with `workerData`; collects its messages.
 * `wait(pred)` resolves with the first message that matches; `exited` with
 * the exit code (rejects on an uncaught error in the worker).
 */
function spawnWorker(file, workerData) {
  const { Worker } = require('node:worker_threads');
  const w = new Worker(file, { workerData });
  const messages = [];
  w.on('message', (m) => messages.push(m));
  const exited = new Promise((resolve, reject) => { w.on('exit', resolve); w.on('error', reject); });
  return { w, messages, exited, wait: (pred) => until(() => messages.find(pred)).then(() => messages.find(pred)) };
}

/**
 * The model-based fuzz's knobs from the environment: OBJPOOL_FUZZ_STEPS (most
 * calls per sequence), OBJPOOL_FUZZ_SEEDS (sequences per pool kind), and a
 * replay (OBJPOOL_FUZZ_SEED, OBJPOOL_FUZZ_PATH, OBJPOOL_FUZZ_REPLAY) or null.
 */
function fuzzKnobs(defaults) {
  const env = process.env;
  return {
    steps: Number(env.OBJPOOL_FUZZ_STEPS ?? defaults.steps),
    runs: Number(env.OBJPOOL_FUZZ_SEEDS ?? defaults.runs),
    replay: env.OBJPOOL_FUZZ_SEED ? { seed: Number(env.OBJPOOL_FUZZ_SEED), path: env.OBJPOOL_FUZZ_PATH, replayPath: env.OBJPOOL_FUZZ_REPLAY } : null,
  };
}

module.exports = { takeAll, assertIntact, until, spawnWorker, fuzzKnobs };
