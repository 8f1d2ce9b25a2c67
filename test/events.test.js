'use strict';
// Names and node:diagnostics_channel events.
const test = require('ava');
const dc = require('node:diagnostics_channel');
const { execFileSync } = require('node:child_process');
const { ObjectPool, channels } = require('..');

// Messages of `name` about the pools `of` (tests run concurrently in this file).
function listen(name, of) {
  const got = [];
  const fn = (message) => { if (of(message.pool)) got.push(message); };
  dc.subscribe(name, fn);
  return { got, off: () => dc.unsubscribe(name, fn) };
}

test('the channel names', (t) => {
  t.deepEqual({ ...channels }, {
    created: 'objpool:pool:created', closed: 'objpool:pool:closed', exhausted: 'objpool:pool:exhausted',
    leak: 'objpool:pool:leak', waitTimeout: 'objpool:wait:timeout',
  });
});

test('created (made and attached) and closed', async (t) => {
  const mine = new Set();
  const created = listen(channels.created, (p) => { mine.add(p); return true; });
  const closed = listen(channels.closed, (p) => mine.has(p));
  const pool = new ObjectPool({ capacity: 2, objectSize: 8, name: 'ev' });
  const other = ObjectPool.attach(pool.descriptor);
  const unnamed = ObjectPool.fromBuffers([new Uint8Array(4)]);
  created.off();
  created.got.splice(0, created.got.length, ...created.got.filter((m) => [pool, other, unnamed].includes(m.pool)));
  t.deepEqual(created.got.map((m) => [m.pool, m.name, m.attached]), [[pool, 'ev', false], [other, 'ev', true], [unnamed, null, false]]);
  await other.close();
  await pool.close(); // lost the race: already closed, nothing published
  closed.off();
  t.deepEqual(closed.got.map((m) => [m.pool, m.name]), [[other, 'ev']]);
});

for (const cache of [0, 4]) {
  test(`exhausted: each pop, acquire or lease that finds the pool empty (cache: ${cache})`, (t) => {
    const pool = new ObjectPool({ capacity: 2, objectSize: 8, slots: 1, cache, name: 'dry' });
    const ex = listen(channels.exhausted, (p) => p === pool);
    const a = pool.pop(), b = pool.acquire();
    t.is(ex.got.length, 0, 'nothing while objects are there');
    t.is(pool.pop(), -1);
    t.is(pool.acquire(), null);
    t.is(pool.lease(), null);
    ex.off();
    t.is(pool.pop(), -1); // nobody listens: nothing published
    t.deepEqual(ex.got.map((m) => [m.pool, m.name]), [[pool, 'dry'], [pool, 'dry'], [pool, 'dry']]);
    t.is(pool.stats().exhausted, 4, 'counted whether or not anyone listens');
    pool.push(a);
    pool.release(b);
  });
}

// The pops that serve waiters when an object comes back are the pool's own:
// only the user's pops that find nothing count (and publish).
for (const cache of [0, 4]) {
  test(`exhausted: a wake-up that serves one of two waiters counts nothing (cache: ${cache})`, async (t) => {
    const pool = new ObjectPool({ capacity: 1, objectSize: 8, slots: 1, cache });
    const ex = listen(channels.exhausted, (p) => p === pool);
    const h = pool.pop();
    const a = pool.popAsync(); // its first try finds the pool empty: 1
    const b = pool.popAsync(); // waits behind a: no first try
    await new Promise((r) => setTimeout(r, 10));
    pool.push(h);
    const got = await a;
    await new Promise((r) => setTimeout(r, 10));
    ex.off();
    t.is(pool.stats().exhausted, 1);
    t.is(ex.got.length, 1);
    pool.push(got);
    pool.push(await b);
  });
}

test('wait timeout', async (t) => {
  const pool = new ObjectPool({ capacity: 1, objectSize: 8, name: 'slow' });
  const h = pool.pop();
  const ev = listen(channels.waitTimeout, (p) => p === pool);
  const err = await t.throwsAsync(pool.popAsync({ timeout: 5 }), { code: 'ERR_OBJPOOL_TIMEOUT' });
  ev.off();
  t.true(err.message.includes('"slow"'), 'the error names the pool');
  t.deepEqual(ev.got.map((m) => [m.pool, m.name, m.timeout]), [[pool, 'slow', 5]]);
  const s = pool.stats();
  t.is(s.waits, 1);
  t.is(s.waitTimeouts, 1);
  pool.push(h);
});

test('leak: the report carries the pool\'s name, published and counted', (t) => {
  const out = execFileSync(process.execPath, ['--expose-gc', '-e', `
    const dc = require('node:diagnostics_channel');
    const { ObjectPool, channels } = require(${JSON.stringify(require.resolve('..'))});
    const reports = [], events = [];
    dc.subscribe(channels.leak, (m) => events.push(m));
    const pool = new ObjectPool({ capacity: 2, objectSize: 8, name: 'leaky', leaks: { sample: 1, onLeak: (r) => reports.push(r) } });
    (async () => {
      (() => pool.acquire())();
      for (let i = 0; i < 10 && reports.length === 0; i++) { gc(); await new Promise((r) => setTimeout(r, 5)); }
      console.log(JSON.stringify({ reports: reports.map((r) => r.pool), events: events.map((m) => ({ name: m.name, same: m.report === reports[0], pool: m.pool === pool })), leaks: pool.stats().leaks }));
    })();`], { encoding: 'utf8', timeout: 30_000 });
  const r = JSON.parse(out);
  t.deepEqual(r.reports, ['leaky']);
  t.deepEqual(r.events, [{ name: 'leaky', same: true, pool: true }], 'published with the report onLeak got');
  t.is(r.leaks, 1);
});

test('name: validated, carried by the descriptor, shown in errors', (t) => {
  t.throws(() => new ObjectPool({ capacity: 1, objectSize: 8, name: 5 }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => new ObjectPool({ capacity: 1, objectSize: 8, name: '' }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => new ObjectPool({ capacity: 1, objectSize: 8, name: 'x'.repeat(257) }), { code: 'ERR_INVALID_ARG_VALUE' });
  const pool = new ObjectPool({ capacity: 1, objectSize: 8, name: 'rx buffers', cache: 0 });
  t.is(pool.name, 'rx buffers');
  t.is(pool.descriptor.name, 'rx buffers');
  const other = ObjectPool.attach(pool.descriptor);
  t.is(other.name, 'rx buffers');
  t.throws(() => ObjectPool.attach({ ...pool.descriptor, name: 7 }), { code: 'ERR_OBJPOOL_BAD_DESCRIPTOR' });
  t.is(new ObjectPool({ capacity: 1, objectSize: 8 }).name, null);
  const h = pool.pop();
  pool.push(h);
  // Thrown natively (cache: 0) and in JS (a cached instance).
  t.throws(() => pool.push(h), { code: 'ERR_OBJPOOL_DOUBLE_PUSH', message: /pool "rx buffers"/ });
  const cached = ObjectPool.attach(pool.descriptor, { cache: 1 });
  const h2 = cached.pop();
  cached.push(h2);
  t.throws(() => cached.push(h2), { code: 'ERR_OBJPOOL_DOUBLE_PUSH', message: /pool "rx buffers"/ });
  t.throws(() => pool.release(Buffer.alloc(8)), { code: 'ERR_OBJPOOL_FOREIGN_BUFFER', message: /pool "rx buffers"/ });
  pool.close();
  t.throws(() => pool.pop(), { code: 'ERR_OBJPOOL_CLOSED', message: /pool "rx buffers"/ });
  t.throws(() => cached.pop(), { code: 'ERR_OBJPOOL_CLOSED', message: /pool "rx buffers"/ });
});
