'use strict';
// objpool/metrics against a real prom-client registry: scraped in the text
// exposition format and parsed back.
const test = require('ava');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const client = require('prom-client');
const { ObjectPool } = require('..');
const { collectPoolMetrics } = require('../dist/metrics');

/** Parses the text format: { name: { type, help, samples: { labelValue: number } } }. */
function parse(text) {
  const out = {};
  for (const line of text.split('\n')) {
    let m;
    if ((m = /^# HELP (\S+) (.*)$/.exec(line))) (out[m[1]] ??= { samples: {} }).help = m[2];
    else if ((m = /^# TYPE (\S+) (\S+)$/.exec(line))) (out[m[1]] ??= { samples: {} }).type = m[2];
    else if ((m = /^(\w+)\{pool="([^"]*)"\} (\S+)$/.exec(line))) (out[m[1]] ??= { samples: {} }).samples[m[2]] = Number(m[3]);
    else if (line !== '') throw new Error(`unexpected line: ${line}`);
  }
  return out;
}

test('every metric, named by Prometheus conventions, with the pool\'s figures', async (t) => {
  const register = new client.Registry();
  const pool = new ObjectPool({ capacity: 8, objectSize: 64, name: 'rx', cache: 0 });
  const held = [];
  for (let h; (h = pool.pop()) !== -1;) held.push(h); // 8 out, then one empty pop
  t.is(pool.pop(), -1);
  await t.throwsAsync(pool.popAsync({ timeout: 5 }), { code: 'ERR_OBJPOOL_TIMEOUT' });
  const ac = new AbortController();
  const aborted = pool.popAsync({ signal: ac.signal });
  setTimeout(() => ac.abort(), 5);
  await t.throwsAsync(aborted.catch((e) => { throw Object.assign(new Error(e.name), { code: e.name }); }), { code: 'AbortError' });
  const served = pool.popAsync();
  setTimeout(() => pool.push(held.pop()), 5);
  held.push(await served);
  pool.push(held.pop());
  const m = collectPoolMetrics({ register, pools: [pool] });
  const got = parse(await register.metrics());
  t.deepEqual(Object.keys(got).sort(), [...m.names].sort());
  for (const name of m.names) {
    t.true(/^objpool_[a-z_]+$/.test(name), name);
    t.is(got[name].type, name.endsWith('_total') ? 'counter' : 'gauge', name);
    t.true(got[name].help.length > 10, name);
  }
  const v = (name) => got[`objpool_${name}`].samples.rx;
  t.is(v('capacity'), 8);
  t.is(v('in_use'), 7);
  t.is(v('available'), 1);
  t.is(v('cached'), 0);
  t.is(v('waiting'), 0);
  t.is(v('exhausted_total'), 5, 'the empty pop() twice, and each popAsync()\'s first try');
  t.is(v('waits_total'), 3);
  t.is(v('wait_timeouts_total'), 1);
  t.is(v('wait_aborts_total'), 1);
  t.true(v('wait_seconds_total') > 0.005 && v('wait_seconds_total') < 60);
  t.is(v('leaks_total'), 0);
  t.is(v('released_total'), 0);
  for (const h of held) pool.push(h);
  await pool.close();
  t.is(parse(await register.metrics()).objpool_released_total.samples.rx, 8);
  m.unregister();
  t.is((await register.metrics()).trim(), '', 'nothing left in the registry');
});

test('counters count every thread: a worker\'s empty pops and waits show in this thread\'s scrape', async (t) => {
  const register = new client.Registry();
  const pool = new ObjectPool({ capacity: 4, objectSize: 16, name: 'shared' });
  collectPoolMetrics({ register, pools: [pool] });
  const w = new Worker(`
    const { workerData, parentPort } = require('node:worker_threads');
    const { ObjectPool } = require(${JSON.stringify(require.resolve('..'))});
    const pool = ObjectPool.attach(workerData);
    const held = [];
    for (let h; (h = pool.pop()) !== -1;) held.push(h);
    pool.popAsync({ timeout: 5 }).catch(() => { for (const h of held) pool.push(h); parentPort.postMessage('done'); });`,
  { eval: true, workerData: pool.descriptor });
  await new Promise((r) => w.once('message', r));
  await w.terminate();
  const got = parse(await register.metrics());
  t.is(got.objpool_exhausted_total.samples.shared, 2);
  t.is(got.objpool_wait_timeouts_total.samples.shared, 1);
  t.is(got.objpool_in_use.samples.shared, 0);
});

test('by default: every live pool made or attached in this thread, each once; unnamed ones numbered', async (t) => {
  const register = new client.Registry();
  const a = new ObjectPool({ capacity: 2, objectSize: 8 });
  const b = new ObjectPool({ capacity: 3, objectSize: 8, name: 'b' });
  const a2 = ObjectPool.attach(a.descriptor); // the same pool: counted once
  collectPoolMetrics({ register, prefix: 'app_pool_' });
  a2.pop();
  const got = parse(await register.metrics());
  const capacity = got.app_pool_capacity.samples;
  t.is(capacity.b, 3);
  const unnamed = Object.entries(capacity).filter(([label]) => label.startsWith('unnamed-'));
  t.true(unnamed.some(([, v]) => v === 2), 'pool a, unnamed');
  const label = unnamed.find(([, v]) => v === 2)[0];
  t.is(got.app_pool_in_use.samples[label], 1);
  t.is(Object.keys(capacity).filter((l) => got.app_pool_in_use.samples[l] === 1 && capacity[l] === 2).length, 1, 'a and a2: one pool, one sample');
});

test('without prom-client: a coded error that says what to install', (t) => {
  const out = execFileSync(process.execPath, ['-e', `
    const Module = require('node:module');
    const resolve = Module._resolveFilename;
    Module._resolveFilename = function (req, ...rest) {
      if (req === 'prom-client') throw Object.assign(new Error('not found'), { code: 'MODULE_NOT_FOUND' });
      return resolve.call(this, req, ...rest);
    };
    try { require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'metrics.js'))}).collectPoolMetrics(); }
    catch (err) { console.log(err.code, err.message); }`], { encoding: 'utf8' });
  t.is(out.trim(), 'ERR_OBJPOOL_NO_PROM_CLIENT objpool/metrics needs prom-client: npm install prom-client');
});

// The default set is every live pool of the thread, whenever it was made:
// pools made before objpool/metrics first loaded are listed too, and a
// dropped pool goes once collected (the addon holds each weakly).
test('by default: pools made before objpool/metrics loaded are listed too, and dropped ones go once collected (--expose-gc)', (t) => {
  const script = `
    const { ObjectPool } = require(${JSON.stringify(path.join(__dirname, '..'))});
    const early = new ObjectPool({ capacity: 2, objectSize: 8, name: 'early' });
    let dropped = new ObjectPool({ capacity: 2, objectSize: 8, name: 'dropped' });
    const client = require('prom-client');
    const { collectPoolMetrics } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'metrics'))});
    const late = new ObjectPool({ capacity: 4, objectSize: 8, name: 'late' });
    const register = new client.Registry();
    collectPoolMetrics({ register });
    (async () => {
      const first = await register.metrics();
      dropped = null;
      for (let i = 0; i < 5; i++) { global.gc(); await new Promise((r) => setImmediate(r)); }
      const second = await register.metrics();
      console.log(JSON.stringify({ first, second, keep: [early.name, late.name] }));
    })();`;
  const r = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60_000 }));
  const first = parse(r.first).objpool_capacity.samples;
  t.deepEqual(first, { early: 2, dropped: 2, late: 4 });
  t.deepEqual(parse(r.second).objpool_capacity.samples, { early: 2, late: 4 });
});
