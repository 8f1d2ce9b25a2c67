'use strict';
// Model-based fuzzing: long, seeded random sequences of every API call, valid
// and invalid, checked step by step against a small JS model of which
// handles are out. A failure names its seed and step; rerun one seed with
//   OBJPOOL_FUZZ_SEED=1234 npx ava test/fuzz.test.js
// and make it longer with OBJPOOL_FUZZ_STEPS / OBJPOOL_FUZZ_SEEDS.
const test = require('ava');
const { ObjectPool } = require('..');

const STEPS = Number(process.env.OBJPOOL_FUZZ_STEPS ?? 3000);
const SEEDS = process.env.OBJPOOL_FUZZ_SEED ? [Number(process.env.OBJPOOL_FUZZ_SEED)] : Array.from({ length: Number(process.env.OBJPOOL_FUZZ_SEEDS ?? 12) }, (_, i) => 1000 + i);

function rng(seed) {
  let s = seed >>> 0 || 1;
  const next = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32; };
  return { next, int: (n) => Math.floor(next() * n), pick: (a) => a[Math.floor(next() * a.length)] };
}

const GARBAGE = [undefined, null, '1', 1.5, -1, NaN, Infinity, 2 ** 32, {}, [], 1n, () => 1, true, Symbol('x')];

function makePool(r) {
  const capacity = 1 + r.int(40);
  const checked = r.next() < 0.85;
  const slots = 1 + r.int(5);
  const kind = r.int(3);
  if (kind === 0) return new ObjectPool({ capacity, objectSize: 1 + r.int(64), slots, checked });
  if (kind === 1) return ObjectPool.fromBuffer(new ArrayBuffer(capacity * 16 + r.int(16)), { objectSize: 16, slots, checked });
  const mem = new SharedArrayBuffer(capacity * 8);
  return ObjectPool.fromBuffers(Array.from({ length: capacity }, (_, i) => new Uint8Array(mem, i * 8, 8)), { slots, checked });
}

function fuzz(seed, steps) {
  const r = rng(seed);
  const pool = makePool(r);
  const out = new Set();          // the model: handles handed out and not yet pushed
  const released = new Set();     // after close: handles the callback released
  let closed = false;
  let pushedAfterClose = 0;
  let closeDone = null;
  const fail = (step, what) => { throw new Error(`seed ${seed}, step ${step}: ${what}`); };
  const expectCode = (step, fn, code) => {
    try { fn(); } catch (e) { if (e.code !== code) fail(step, `expected ${code}, got ${e.code}: ${e.message}`); return; }
    fail(step, `expected ${code}, nothing thrown`);
  };
  const anyOut = () => [...out][r.int(out.size)];
  const notOut = () => { for (let k = 0; k < 10; k++) { const h = r.int(pool.capacity); if (!out.has(h)) return h; } return -1; };
  for (let step = 0; step < steps; step++) {
    const op = r.int(14);
    switch (op) {
      case 0: case 1: { // pop
        if (closed) { expectCode(step, () => pool.pop(), 'ERR_OBJPOOL_CLOSED'); break; }
        const h = pool.pop();
        if (h === -1) { if (out.size !== pool.capacity) fail(step, `pop empty with ${pool.capacity - out.size} in the pool`); break; }
        if (out.has(h)) fail(step, `handle ${h} handed out twice`);
        out.add(h);
        break;
      }
      case 2: case 3: { // push a handle that is out
        if (!out.size) break;
        const h = anyOut();
        pool.push(h);
        out.delete(h);
        if (closed) pushedAfterClose++;
        break;
      }
      case 4: { // double push / never popped
        if (!pool.checked) break;
        const h = notOut();
        if (h >= 0) expectCode(step, () => pool.push(h), 'ERR_OBJPOOL_DOUBLE_PUSH');
        break;
      }
      case 5: { // garbage handle
        const g = r.pick([...GARBAGE, pool.capacity, pool.capacity + r.int(100)]);
        const code = typeof g === 'number' ? 'ERR_OUT_OF_RANGE' : 'ERR_INVALID_ARG_TYPE';
        expectCode(step, () => pool.push(g), code);
        break;
      }
      case 6: { // popMany
        const arr = new Uint32Array(r.int(8));
        const count = r.next() < 0.5 ? undefined : r.int(arr.length + 1);
        if (closed) { expectCode(step, () => pool.popMany(arr, count), 'ERR_OBJPOOL_CLOSED'); break; }
        const n = pool.popMany(arr, count);
        const want = Math.min(count ?? arr.length, pool.capacity - out.size);
        if (n !== want) fail(step, `popMany gave ${n}, model says ${want}`);
        for (const h of arr.subarray(0, n)) { if (out.has(h)) fail(step, `popMany: ${h} twice`); out.add(h); }
        break;
      }
      case 7: { // pushMany of out handles, sometimes poisoned (all or nothing)
        const hs = [...out].filter(() => r.next() < 0.5);
        const poison = pool.checked && r.next() < 0.3 && hs.length > 0;
        if (poison) {
          const bad = r.next() < 0.5 ? hs[0] : notOut();
          if (bad < 0) break;
          expectCode(step, () => pool.pushMany(Uint32Array.from([...hs, bad])), 'ERR_OBJPOOL_DOUBLE_PUSH');
          break;
        }
        if (r.next() < 0.1) { expectCode(step, () => pool.pushMany(Uint32Array.from([...hs, pool.capacity])), 'ERR_OUT_OF_RANGE'); break; }
        pool.pushMany(Uint32Array.from(hs));
        for (const h of hs) { out.delete(h); if (closed) pushedAfterClose++; }
        break;
      }
      case 8: { // acquire + release by view
        if (closed) { expectCode(step, () => pool.acquire(), 'ERR_OBJPOOL_CLOSED'); break; }
        const b = pool.acquire();
        if (!b) break;
        const h = pool.handleOf(b);
        if (out.has(h)) fail(step, `acquire: ${h} twice`);
        if (b.length !== pool.objectSize) fail(step, 'acquire: wrong length');
        b.fill(step & 255);
        if (r.next() < 0.5) pool.release(r.next() < 0.5 ? b : b.subarray(0, r.int(b.length + 1)));
        else out.add(h);
        break;
      }
      case 9: { // foreign views
        const f = r.pick([Buffer.alloc(pool.objectSize), new Uint8Array(1), pool.buffer(0).subarray(1)]);
        if (f.length === 0 || (f.byteOffset === pool.buffer(0).byteOffset && f.buffer === pool.buffer(0).buffer)) break;
        expectCode(step, () => pool.release(f), 'ERR_OBJPOOL_FOREIGN_BUFFER');
        break;
      }
      case 10: { // stats agree with the model
        const s = pool.stats();
        // After close, objects pushed back wait in the pool until the closer's
        // drain runs (queued to this thread's event loop).
        if (!closed && s.available !== pool.capacity - out.size) fail(step, `stats.available ${s.available}, model ${pool.capacity - out.size}`);
        if (closed && s.available > pushedAfterClose) fail(step, `stats.available ${s.available} after close, only ${pushedAfterClose} pushed since`);
        if (s.closed !== closed) fail(step, 'stats.closed');
        if (s.perSlot.reduce((a, b) => a + b, 0) !== s.available) fail(step, 'perSlot does not add up');
        break;
      }
      case 11: { // buffer() by any handle, valid or not
        const h = r.int(pool.capacity + 3) - 1;
        if (h < 0 || h >= pool.capacity) expectCode(step, () => pool.buffer(h), 'ERR_OUT_OF_RANGE');
        else if (pool.buffer(h).length !== pool.objectSize) fail(step, 'buffer length');
        break;
      }
      case 12: { // close, once, somewhere late in the run
        if (closed || step < steps / 2 || r.next() < 0.9) break;
        closed = true;
        const inPool = pool.capacity - out.size;
        let got = 0;
        closeDone = pool.close((buf, info) => {
          if (info.handle < 0) return;
          if (released.has(info.handle)) fail(step, `released ${info.handle} twice`);
          if (out.has(info.handle)) fail(step, `released ${info.handle} while it is out`);
          released.add(info.handle);
          got++;
        });
        if (got !== inPool) fail(step, `close released ${got} now, model says ${inPool}`);
        break;
      }
      default: { // garbage arrays to the batch calls
        const g = r.pick([[], new Int32Array(2), null, 'x', new Float64Array(1)]);
        expectCode(step, () => pool.pushMany(g), 'ERR_INVALID_ARG_TYPE');
        expectCode(step, () => pool.popMany(g), 'ERR_INVALID_ARG_TYPE');
      }
    }
  }
  // Give everything back: the pool must hold every object exactly once.
  for (const h of out) pool.push(h);
  out.clear();
  if (!closed) {
    const all = new Uint32Array(pool.capacity + 1);
    const n = pool.popMany(all);
    if (n !== pool.capacity || new Set(all.subarray(0, n)).size !== n) fail(steps, `final: ${n} of ${pool.capacity} objects`);
    return null;
  }
  return closeDone.then(() => {
    if (released.size !== pool.capacity) fail(steps, `close released ${released.size} of ${pool.capacity}`);
  });
}

for (const seed of SEEDS) {
  test(`fuzz seed ${seed} (${STEPS} steps)`, async (t) => {
    await fuzz(seed, STEPS);
    t.pass();
  });
}
