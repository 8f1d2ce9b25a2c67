'use strict';
// Model-based fuzzing of PoolSet with fast-check: random sequences of its
// synchronous calls (acquire, release, pop, push, buffer), valid and
// invalid (sizes, handles, buffers: held, released, from another set,
// shorter views, the same bytes through another SharedArrayBuffer object,
// garbage), run against a set and a model of it
// (which objects of which class are out, and through what), checked after
// every call: every error has its code, no object is handed out twice,
// `stats()` is exact (one thread, one instance), and at the end every object
// comes back and close releases each once. Replay a failure as
// test/fuzz.test.js says (OBJPOOL_FUZZ_SEED, _PATH, _REPLAY); longer runs:
// OBJPOOL_FUZZ_STEPS, OBJPOOL_FUZZ_SEEDS.
const test = require('ava');
const fc = require('fast-check');
const { PoolSet } = require('..');
const { fuzzKnobs } = require('./helpers');

const { steps: STEPS, runs: RUNS, replay: REPLAY } = fuzzKnobs({ steps: 300, runs: 120 });
const GARBAGE = [undefined, null, '1', 1.5, -1, NaN, Infinity, 2 ** 32, 2 ** 30, {}, [], 1n, true];

const config = fc.record({
  sizes: fc.uniqueArray(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 5 }),
  capacity: fc.integer({ min: 1, max: 6 }),
  fallback: fc.constantFrom('none', 'larger'),
  zero: fc.boolean(),
  cache: fc.constantFrom(undefined, 0, 2),
});

function expectCode(fn, code) {
  try {
    fn();
  } catch (err) {
    if (err.code !== code) throw new Error(`expected ${code}, got ${err.code}: ${err.message}`);
    return;
  }
  throw new Error(`expected ${code}, nothing thrown`);
}

function setup(cfg) {
  const classes = cfg.sizes.map((objectSize, i) => ({ objectSize, capacity: 1 + ((cfg.capacity + i) % 6) }));
  const set = new PoolSet({ classes, fallback: cfg.fallback, zero: cfg.zero, ...(cfg.cache === undefined ? {} : { cache: cfg.cache }) });
  const sizes = set.sizes;
  return {
    set,
    other: new PoolSet({ classes: [{ objectSize: sizes[sizes.length - 1], capacity: 1 }] }),
    sizes,
    zero: cfg.zero,
    caps: set.pools.map((p) => p.capacity),
    held: new Map(), // set handle -> { buf, n } (buf null: held by handle)
    gone: [],        // buffers released, with their handle, for double releases
  };
}

// The class acquire(n)/pop(n) takes from, by the model: the smallest that
// fits with an object left, or with fallback 'larger' the next up; -1: none.
function expectedClass(m, n) {
  const inClass = (c) => [...m.held.keys()].filter((h) => h >>> 24 === c).length;
  const first = m.sizes.findIndex((s) => s >= n);
  for (let c = first; c < m.sizes.length; c++) {
    if (inClass(c) < m.caps[c]) return c;
    if (m.set.fallback !== 'larger') return -1;
  }
  return -1;
}

const pick = (list, i) => list[i % list.length];

const commands = [
  // acquire(n): a size of the set, one at a boundary, or garbage.
  fc.tuple(fc.nat(), fc.constantFrom('size', 'minus', 'plus', 'random', 'garbage')).map(([i, how]) => ({
    name: `acquire(${how} ${i})`,
    run(m) {
      const top = m.sizes[m.sizes.length - 1];
      const base = pick(m.sizes, i);
      const n = how === 'size' ? base : how === 'minus' ? base - 1 : how === 'plus' ? base + 1 : how === 'random' ? 1 + (i % (top + 2)) : pick(GARBAGE, i);
      if (typeof n !== 'number') return expectCode(() => m.set.acquire(n), 'ERR_INVALID_ARG_TYPE');
      if (!(n >= 1 && n <= top) || n % 1 !== 0) return expectCode(() => m.set.acquire(n), 'ERR_OUT_OF_RANGE');
      const want = expectedClass(m, n);
      const buf = m.set.acquire(n);
      if (want < 0) {
        if (buf !== null) throw new Error(`acquire(${n}) gave a buffer with its classes empty`);
        return;
      }
      if (buf === null || buf.length !== n) throw new Error(`acquire(${n}) gave ${buf === null ? 'null' : buf.length + ' bytes'}`);
      const c = m.set.pools.findIndex((p) => p.descriptor.arena === buf.buffer);
      if (c !== want) throw new Error(`acquire(${n}) took class ${c}, the model says ${want}`);
      const h = (c << 24) | m.set.pools[c].handleOf(buf);
      if (m.held.has(h)) throw new Error(`handle ${h} handed out twice`);
      if (m.zero && buf.some((b) => b !== 0)) throw new Error(`acquire(${n}) of a zero set gave bytes that are not zero`);
      buf.fill(0x5a);
      m.held.set(h, { buf, n });
    },
  })),
  // release(buf): of a held buffer (or a view at its start), a gone one, another set's, garbage.
  fc.tuple(fc.nat(), fc.constantFrom('held', 'view', 'remote', 'gone', 'other', 'garbage', 'offset')).map(([i, how]) => ({
    name: `release(${how} ${i})`,
    run(m) {
      const byBuf = [...m.held].filter(([, v]) => v.buf !== null);
      if (how === 'held' || how === 'view' || how === 'remote') {
        if (byBuf.length === 0) return;
        const [h, { buf }] = pick(byBuf, i);
        // remote: the same bytes through another SharedArrayBuffer object,
        // as a Buffer posted to another thread on its own arrives there.
        const view = how === 'view' ? buf.subarray(0, 1 + (i % buf.length))
          : how === 'remote' ? new Uint8Array(structuredClone(buf.buffer), buf.byteOffset, 1 + (i % buf.length)) : buf;
        m.set.release(view);
        m.held.delete(h);
        m.gone.push({ h, buf });
      } else if (how === 'gone') {
        const stale = m.gone.filter((g) => !m.held.has(g.h));
        if (stale.length === 0) return;
        expectCode(() => m.set.release(pick(stale, i).buf), 'ERR_OBJPOOL_DOUBLE_PUSH');
      } else if (how === 'other') {
        const b = m.other.acquire(1);
        if (b === null) return;
        expectCode(() => m.set.release(b), 'ERR_OBJPOOL_FOREIGN_BUFFER');
        m.other.release(b);
      } else if (how === 'offset') {
        const long = byBuf.filter(([, v]) => v.buf.length > 1);
        if (long.length === 0) return;
        expectCode(() => m.set.release(pick(long, i)[1].buf.subarray(1)), 'ERR_OBJPOOL_FOREIGN_BUFFER');
      } else {
        const foreign = Buffer.alloc(8);
        const g = pick([...GARBAGE, new Proxy(new Uint8Array(4), {}), new DataView(new ArrayBuffer(4)), foreign], i);
        expectCode(() => m.set.release(g), g === foreign ? 'ERR_OBJPOOL_FOREIGN_BUFFER' : 'ERR_INVALID_ARG_TYPE');
      }
    },
  })),
  // pop(n) / push(h) / buffer(h): handles.
  fc.tuple(fc.nat(), fc.constantFrom('pop', 'push', 'pushAgain', 'pushGarbage', 'buffer')).map(([i, how]) => ({
    name: `${how}(${i})`,
    run(m) {
      if (how === 'pop') {
        const n = pick(m.sizes, i);
        const want = expectedClass(m, n);
        const h = m.set.pop(n);
        if (want < 0) {
          if (h !== -1) throw new Error(`pop(${n}) gave ${h} with its classes empty`);
          return;
        }
        if (h >>> 24 !== want || m.held.has(h) || h < 0 || h >= 2 ** 30) throw new Error(`pop(${n}) gave ${h}; the model says class ${want}`);
        m.held.set(h, { buf: null, n });
      } else if (how === 'push') {
        const byHandle = [...m.held.keys()];
        if (byHandle.length === 0) return;
        const h = pick(byHandle, i);
        m.set.push(h);
        m.held.delete(h);
      } else if (how === 'pushAgain') {
        const c = i % m.sizes.length;
        const h = (c << 24) | (i % m.caps[c]);
        if (m.held.has(h)) return;
        expectCode(() => m.set.push(h), 'ERR_OBJPOOL_DOUBLE_PUSH');
      } else if (how === 'pushGarbage') {
        const c = i % (m.sizes.length + 1);
        const h = c === m.sizes.length ? (c << 24) : (c << 24) | m.caps[c];
        expectCode(() => m.set.push(h), 'ERR_OUT_OF_RANGE');
        const g = pick(GARBAGE, i);
        expectCode(() => m.set.push(g), typeof g === 'number' ? 'ERR_OUT_OF_RANGE' : 'ERR_INVALID_ARG_TYPE');
      } else {
        const byHandle = [...m.held.keys()];
        if (byHandle.length === 0) return;
        const h = pick(byHandle, i);
        if (m.set.buffer(h).length !== m.sizes[h >>> 24]) throw new Error(`buffer(${h}) is not its class's size`);
      }
    },
  })),
];

function check(m) {
  const s = m.set.stats();
  if (s.inUse !== m.held.size) throw new Error(`stats().inUse ${s.inUse}, the model holds ${m.held.size}`);
  s.classes.forEach((c, i) => {
    const held = [...m.held.keys()].filter((h) => h >>> 24 === i).length;
    if (c.inUse !== held || c.available !== m.caps[i] - held) throw new Error(`class ${i}: inUse ${c.inUse}, available ${c.available}; the model holds ${held} of ${m.caps[i]}`);
  });
}

let calls = 0;
async function sequence(cfg, cmds) {
  const m = setup(cfg);
  calls += cmds.length;
  for (const cmd of cmds) {
    cmd.run(m);
    check(m);
  }
  for (const [h, v] of m.held) (v.buf ? m.set.release(v.buf) : m.set.push(h));
  m.held.clear();
  check(m);
  const released = new Set();
  await m.set.close((obj, info) => {
    if (released.has(info.handle)) throw new Error(`handle ${info.handle} released twice`);
    if (obj.length !== m.sizes[info.handle >>> 24]) throw new Error(`handle ${info.handle} released with ${obj.length} bytes`);
    released.add(info.handle);
  });
  const total = m.caps.reduce((a, b) => a + b, 0);
  if (released.size !== total) throw new Error(`close released ${released.size} of ${total} objects`);
}

test(`fuzz: PoolSet (${RUNS} sequences of up to ${STEPS} calls)`, async (t) => {
  const arb = fc.array(fc.oneof(...commands), { maxLength: STEPS, size: 'max' });
  const property = fc.asyncProperty(config, arb, sequence);
  const params = REPLAY ? { seed: REPLAY.seed, path: REPLAY.path, endOnFailure: true } : { numRuns: RUNS };
  const result = await fc.check(property, params);
  t.log(`${calls} calls in all`);
  if (!result.failed) return t.pass();
  const [cfg, cmds] = result.counterexample ?? [];
  t.fail([
    `${result.errorInstance?.message ?? result.error}`,
    `set: ${JSON.stringify(cfg)}`,
    `calls: ${(cmds ?? []).map((c) => c.name).join(', ')}`,
    `replay: OBJPOOL_FUZZ_SEED=${result.seed} OBJPOOL_FUZZ_PATH=${result.counterexamplePath} npx ava test/fuzz-poolset.test.js`,
  ].join('\n'));
});
