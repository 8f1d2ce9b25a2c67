'use strict';
// Model-based fuzzing with fast-check: random sequences of every API call,
// valid and invalid, run against a pool (the real system) and a small model
// of it (which handles are out, whether it is closed, what close released),
// checked after every call. A failure is shrunk to a shortest sequence of
// calls and printed with the values that replay it:
//   OBJPOOL_FUZZ_SEED=<seed> OBJPOOL_FUZZ_PATH=<path> OBJPOOL_FUZZ_REPLAY=<replayPath> npx ava test/fuzz.test.js
// Longer runs: OBJPOOL_FUZZ_STEPS (most calls per sequence, default 600) and
// OBJPOOL_FUZZ_SEEDS (sequences per pool kind, default 250).
//
// Several instances of one pool: a shareable pool is also used through
// `ObjectPool.attach(pool.descriptor)` in this thread, and every command
// names the instance it calls through (`inst`, taken modulo the number of
// instances). Each instance has its own cache (`cache` option: automatic,
// or 0..8); the model knows only each cache's size limit
// (`model.instances[i].cache`), so where a cache can hide objects from
// another instance (an empty pop, popMany's count) it checks the documented
// bounds, and everywhere else (stats, close, the final count) it is exact.
const test = require('ava');
const fc = require('fast-check');
const { ObjectPool } = require('..');
const { fuzzKnobs } = require('./helpers');

const { steps: STEPS, runs: RUNS, replay: REPLAY } = fuzzKnobs({ steps: 600, runs: 250 });

const GARBAGE = [undefined, null, '1', 1.5, -1, NaN, Infinity, 2 ** 32, {}, [], 1n, () => 1, true, Symbol('x')];
const GARBAGE_ARRAYS = [[], new Int32Array(2), null, 'x', new Float64Array(1)];

// ---- the real system and the model ----------------------------------------

/** Builds the pool a generated configuration describes, and its model. */
function setup(cfg) {
  const { kind, capacity, slots, checked, zero, objectSize, shared } = cfg;
  const cacheOf = (i) => (cfg.caches[i] === null ? {} : { cache: cfg.caches[i] });
  let pool;
  if (kind === 'own') pool = new ObjectPool({ capacity, objectSize, slots, checked, zero, ...cacheOf(0) });
  else if (kind === 'fromBuffer') {
    const Memory = shared ? SharedArrayBuffer : ArrayBuffer;
    pool = ObjectPool.fromBuffer(new Memory(capacity * 16 + cfg.slack), { objectSize: 16, slots, checked, zero, ...cacheOf(0) });
  } else {
    const Memory = shared ? SharedArrayBuffer : ArrayBuffer;
    const mem = new Memory(capacity * 8);
    pool = ObjectPool.fromBuffers(Array.from({ length: capacity }, (_, i) => new Uint8Array(mem, i * 8, 8)), { slots, checked, zero, ...cacheOf(0) });
  }
  const pools = [pool];
  const shareable = kind === 'own' || shared;
  if (shareable) {
    for (let i = 1; i < cfg.instances; i++) pools.push(ObjectPool.attach(pool.descriptor, cacheOf(i)));
  } else {
    expectCode(() => pool.descriptor, 'ERR_OBJPOOL_NOT_SHAREABLE');
  }
  const model = {
    capacity: pool.capacity,
    objectSize: pool.objectSize,
    checked: pool.checked,
    zero: zero,
    instances: pools.map((p) => ({ cache: p.cache })),
    out: new Set(),            // handles handed out and not yet pushed back
    closed: false,
    pushedAfterClose: 0,
    released: new Set(),       // handles the close callback was given
    step: 0,
    closeFrom: cfg.closeFrom,  // close is allowed from this step on
  };
  const real = { pools, closeDone: null, releaseErrors: [] };
  return { model, real };
}

function expectCode(fn, code, what = '') {
  try {
    fn();
  } catch (e) {
    if (e.code !== code) throw new Error(`${what}expected ${code}, got ${e.code}: ${e.message}`);
    return;
  }
  throw new Error(`${what}expected ${code}, nothing thrown`);
}

const nth = (set, k) => [...set][k % set.size];
const pick = (m, r, inst) => r.pools[inst % r.pools.length];

/** After a refused call: nothing was taken or returned. */
function intact(m, r, why) {
  const s = r.pools[0].stats();
  if (!m.closed && s.available !== m.capacity - m.out.size) throw new Error(`${why}: pool not intact, ${s.available} available, model ${m.capacity - m.out.size}`);
}

function took(m, r, h, what) {
  if (!Number.isInteger(h) || h < 0 || h >= m.capacity) throw new Error(`${what}: handle ${h} out of range`);
  if (m.out.has(h)) throw new Error(`${what}: handle ${h} handed out twice`);
  m.out.add(h);
  // Objects are only written while out, so with zero: true each comes back blank.
  if (m.zero && r.pools[0].buffer(h).some((b) => b !== 0)) throw new Error(`${what}: handle ${h} was not zeroed when it was pushed back`);
}

/** Most objects the caches of instances other than `inst` can hold. */
function othersCache(m, r, inst) {
  const self = inst % r.pools.length;
  return m.instances.reduce((sum, x, i) => sum + (i === self ? 0 : x.cache), 0);
}

/** pop()/acquire() found nothing: allowed only when every object not out sits in another instance's cache. */
function emptyAllowed(m, r, inst, what) {
  const free = m.capacity - m.out.size;
  if (free === 0) return;
  const s = r.pools[0].stats();
  if (free > othersCache(m, r, inst) || s.available !== s.cached) {
    throw new Error(`${what}: empty with ${free} objects not out (${s.cached} cached, others may cache ${othersCache(m, r, inst)})`);
  }
}

function gaveBack(m, h) {
  m.out.delete(h);
  if (m.closed) m.pushedAfterClose++;
}

// ---- commands ----------------------------------------------------------------
// Each one: check(model) says whether it applies now; run(model, real) calls
// the pool and compares with the model; toString() is how a failing sequence
// is printed.

class Pop {
  constructor(inst) { this.inst = inst; }
  check() { return true; }
  run(m, r) {
    m.step++;
    const pool = pick(m, r, this.inst);
    if (m.closed) return expectCode(() => pool.pop(), 'ERR_OBJPOOL_CLOSED', 'pop after close: ');
    const h = pool.pop();
    if (h === -1) return emptyAllowed(m, r, this.inst, 'pop');
    took(m, r, h, 'pop');
  }
  toString() { return `pop@${this.inst}`; }
}

class Push {
  constructor(k, inst) { this.k = k; this.inst = inst; }
  check(m) { return m.out.size > 0; }
  run(m, r) {
    m.step++;
    const h = nth(m.out, this.k);
    pick(m, r, this.inst).push(h);
    gaveBack(m, h);
  }
  toString() { return `push(out#${this.k})@${this.inst}`; }
}

class PushNotOut {
  constructor(h, inst) { this.h = h; this.inst = inst; }
  check(m) { return m.checked && !m.out.has(this.h % m.capacity); }
  run(m, r) {
    m.step++;
    const h = this.h % m.capacity;
    expectCode(() => pick(m, r, this.inst).push(h), 'ERR_OBJPOOL_DOUBLE_PUSH', `push(${h}) not out: `);
    intact(m, r, 'push of a handle not out');
  }
  toString() { return `pushNotOut(${this.h})@${this.inst}`; }
}

class PushGarbage {
  constructor(g, extra, inst) { this.g = g; this.extra = extra; this.inst = inst; }
  check() { return true; }
  value(m) { return this.g < GARBAGE.length ? GARBAGE[this.g] : m.capacity + this.extra; }
  run(m, r) {
    m.step++;
    const g = this.value(m);
    const code = typeof g === 'number' ? 'ERR_OUT_OF_RANGE' : 'ERR_INVALID_ARG_TYPE';
    expectCode(() => pick(m, r, this.inst).push(g), code, `push(${String(g)}): `);
    intact(m, r, 'push of garbage');
  }
  toString() { return `pushGarbage(${this.g < GARBAGE.length ? String(GARBAGE[this.g]) : `capacity+${this.extra}`})@${this.inst}`; }
}

class PopMany {
  constructor(length, count, inst) { this.length = length; this.count = count; this.inst = inst; }
  check() { return true; }
  run(m, r) {
    m.step++;
    const pool = pick(m, r, this.inst);
    const arr = new Uint32Array(this.length);
    const count = this.count === null ? undefined : Math.min(this.count, this.length);
    if (m.closed) return expectCode(() => pool.popMany(arr, count), 'ERR_OBJPOOL_CLOSED', 'popMany after close: ');
    const n = pool.popMany(arr, count);
    // This instance's cache counts as available; other instances' caches may hide objects.
    const free = m.capacity - m.out.size;
    const most = Math.min(count ?? arr.length, free);
    const least = Math.min(count ?? arr.length, Math.max(0, free - othersCache(m, r, this.inst)));
    if (!(n >= least && n <= most)) throw new Error(`popMany gave ${n}, model says ${least === most ? most : `${least}..${most}`}`);
    for (const h of arr.subarray(0, n)) took(m, r, h, 'popMany');
  }
  toString() { return `popMany(length ${this.length}, count ${this.count})@${this.inst}`; }
}

// pushMany of some handles that are out, maybe with one bad entry added: all or nothing.
class PushMany {
  constructor(mask, poison, extra, inst) { this.mask = mask; this.poison = poison; this.extra = extra; this.inst = inst; }
  check(m) {
    if (this.poison === 'twice' || this.poison === 'notOut') return m.checked && this.handles(m).length > 0;
    return true;
  }
  handles(m) { return [...m.out].filter((_, i) => (this.mask >>> (i % 31)) & 1); }
  run(m, r) {
    m.step++;
    const pool = pick(m, r, this.inst);
    const hs = this.handles(m);
    if (this.poison === 'none') {
      pool.pushMany(Uint32Array.from(hs));
      for (const h of hs) gaveBack(m, h);
      return;
    }
    let bad;
    if (this.poison === 'twice') bad = hs[this.extra % hs.length];
    else if (this.poison === 'outOfRange') bad = m.capacity + this.extra;
    else {
      bad = [...Array(m.capacity).keys()].find((h) => !m.out.has(h));
      if (bad === undefined) return;
    }
    const code = this.poison === 'outOfRange' ? 'ERR_OUT_OF_RANGE' : 'ERR_OBJPOOL_DOUBLE_PUSH';
    expectCode(() => pool.pushMany(Uint32Array.from([...hs, bad])), code, `pushMany with ${this.poison} entry ${bad}: `);
    intact(m, r, `refused pushMany (${this.poison})`);
  }
  toString() { return `pushMany(mask ${this.mask}, ${this.poison}${this.poison === 'none' ? '' : ` ${this.extra}`})@${this.inst}`; }
}

// acquire(), then release() by the whole view or a prefix of it, maybe through another instance.
class AcquireRelease {
  constructor(release, prefix, fill, inst, releaseInst) { Object.assign(this, { release, prefix, fill, inst, releaseInst }); }
  check() { return true; }
  run(m, r) {
    m.step++;
    const pool = pick(m, r, this.inst);
    if (m.closed) return expectCode(() => pool.acquire(), 'ERR_OBJPOOL_CLOSED', 'acquire after close: ');
    const b = pool.acquire();
    if (!b) return emptyAllowed(m, r, this.inst, 'acquire');
    if (b.length !== m.objectSize) throw new Error(`acquire: length ${b.length}, objectSize ${m.objectSize}`);
    const h = pool.handleOf(b);
    took(m, r, h, 'acquire');
    b.fill(this.fill);
    const other = pick(m, r, this.releaseInst);
    if (other.buffer(h)[0] !== this.fill) throw new Error(`buffer(${h}) through instance ${this.releaseInst % r.pools.length} does not see the bytes written`);
    if (this.release === 'keep') return;
    other.release(this.release === 'whole' ? b : b.subarray(0, this.prefix % (b.length + 1)));
    gaveBack(m, h);
  }
  toString() { return `acquire@${this.inst} + release(${this.release === 'prefix' ? `prefix ${this.prefix}` : this.release})@${this.releaseInst}`; }
}

class ReleaseForeign {
  constructor(which, inst) { this.which = which; this.inst = inst; }
  check(m) { return !(this.which === 'offset' && m.objectSize === 1); }
  run(m, r) {
    m.step++;
    const pool = pick(m, r, this.inst);
    const views = { copy: () => Buffer.alloc(m.objectSize), small: () => new Uint8Array(1), offset: () => pool.buffer(0).subarray(1) };
    expectCode(() => pool.release(views[this.which]()), 'ERR_OBJPOOL_FOREIGN_BUFFER', `release(${this.which} view): `);
    intact(m, r, 'release of a foreign view');
  }
  toString() { return `releaseForeign(${this.which})@${this.inst}`; }
}

class Stats {
  constructor(inst) { this.inst = inst; }
  check() { return true; }
  run(m, r) {
    m.step++;
    const s = pick(m, r, this.inst).stats();
    // After close, objects pushed back wait in the pool until the closer's
    // drain runs (queued to this thread's event loop).
    // `available` counts every instance's cache too.
    if (!m.closed && s.available !== m.capacity - m.out.size) throw new Error(`stats.available ${s.available}, model ${m.capacity - m.out.size}`);
    const caches = m.instances.reduce((sum, x) => sum + x.cache, 0);
    if (s.cached < 0 || s.cached > caches) throw new Error(`stats.cached ${s.cached}, the caches hold at most ${caches}`);
    if (s.waiting !== 0) throw new Error(`stats.waiting ${s.waiting} with nobody waiting`);
    if (!m.closed && s.inUse !== m.out.size) throw new Error(`stats.inUse ${s.inUse}, model ${m.out.size}`);
    if (m.closed && s.available > m.pushedAfterClose) throw new Error(`stats.available ${s.available} after close, only ${m.pushedAfterClose} pushed since`);
    if (s.closed !== m.closed) throw new Error(`stats.closed ${s.closed}, model ${m.closed}`);
    if (s.capacity !== m.capacity) throw new Error(`stats.capacity ${s.capacity}`);
    if (s.perSlot.reduce((a, b) => a + b, 0) + s.cached !== s.available) throw new Error(`stats: perSlot ${s.perSlot} + cached ${s.cached} != available ${s.available}`);
    if (pick(m, r, this.inst).closed !== m.closed) throw new Error('pool.closed disagrees with the model');
  }
  toString() { return `stats@${this.inst}`; }
}

class BufferAt {
  constructor(h, inst) { this.h = h; this.inst = inst; }
  check() { return true; }
  run(m, r) {
    m.step++;
    const h = this.h - 1; // -1 .. capacity + 1
    const pool = pick(m, r, this.inst);
    if (h < 0 || h >= m.capacity) return expectCode(() => pool.buffer(h), 'ERR_OUT_OF_RANGE', `buffer(${h}): `);
    const b = pool.buffer(h);
    if (b.length !== m.objectSize) throw new Error(`buffer(${h}).length ${b.length}`);
    if (pool.buffer(h) !== b) throw new Error(`buffer(${h}) is not the same Buffer each time`);
    if (pool.handleOf(b) !== h) throw new Error(`handleOf(buffer(${h})) is ${pool.handleOf(b)}`);
  }
  toString() { return `buffer(${this.h - 1})@${this.inst}`; }
}

class BatchGarbage {
  constructor(g, inst) { this.g = g; this.inst = inst; }
  check() { return true; }
  run(m, r) {
    m.step++;
    const pool = pick(m, r, this.inst);
    const g = GARBAGE_ARRAYS[this.g];
    expectCode(() => pool.pushMany(g), 'ERR_INVALID_ARG_TYPE', 'pushMany(garbage): ');
    expectCode(() => pool.popMany(g), 'ERR_INVALID_ARG_TYPE', 'popMany(garbage): ');
    intact(m, r, 'batch call with garbage');
  }
  toString() { return `batchGarbage(${this.g})@${this.inst}`; }
}

class Close {
  constructor(inst) { this.inst = inst; }
  check(m) { return !m.closed && m.step >= m.closeFrom; }
  run(m, r) {
    m.step++;
    m.closed = true;
    const inPool = m.capacity - m.out.size;
    let now = 0;
    r.closeDone = pick(m, r, this.inst).close((buf, info) => {
      if (info.handle < 0) return; // fromBuffer: the whole memory, last
      if (m.released.has(info.handle)) r.releaseErrors.push(`released ${info.handle} twice`);
      if (m.out.has(info.handle)) r.releaseErrors.push(`released ${info.handle} while it is out`);
      if (buf.length !== m.objectSize) r.releaseErrors.push(`released a ${buf.length}-byte view of ${info.handle}`);
      m.released.add(info.handle);
      now++;
    });
    if (now !== inPool) throw new Error(`close released ${now} objects at once, model says ${inPool}`);
    if (r.releaseErrors.length) throw new Error(r.releaseErrors.join('; '));
  }
  toString() { return `close@${this.inst}`; }
}

// ---- generation ----------------------------------------------------------------

const inst = fc.nat({ max: 7 });
const commands = [
  inst.map((i) => new Pop(i)),
  inst.map((i) => new Pop(i)),
  fc.tuple(fc.nat({ max: 63 }), inst).map(([k, i]) => new Push(k, i)),
  fc.tuple(fc.nat({ max: 63 }), inst).map(([k, i]) => new Push(k, i)),
  fc.tuple(fc.nat({ max: 63 }), inst).map(([h, i]) => new PushNotOut(h, i)),
  fc.tuple(fc.nat({ max: GARBAGE.length }), fc.nat({ max: 99 }), inst).map(([g, x, i]) => new PushGarbage(g, x, i)),
  fc.tuple(fc.nat({ max: 7 }), fc.option(fc.nat({ max: 7 })), inst).map(([n, c, i]) => new PopMany(n, c, i)),
  fc.tuple(fc.nat(), fc.constantFrom('none', 'none', 'twice', 'notOut', 'outOfRange'), fc.nat({ max: 99 }), inst)
    .map(([mask, p, x, i]) => new PushMany(mask, p, x, i)),
  fc.tuple(fc.constantFrom('keep', 'whole', 'prefix'), fc.nat({ max: 64 }), fc.integer({ min: 1, max: 255 }), inst, inst)
    .map(([rel, n, f, i, j]) => new AcquireRelease(rel, n, f, i, j)),
  fc.tuple(fc.constantFrom('copy', 'small', 'offset'), inst).map(([w, i]) => new ReleaseForeign(w, i)),
  inst.map((i) => new Stats(i)),
  fc.tuple(fc.nat({ max: 66 }), inst).map(([h, i]) => new BufferAt(h, i)),
  fc.tuple(fc.nat({ max: GARBAGE_ARRAYS.length - 1 }), inst).map(([g, i]) => new BatchGarbage(g, i)),
  inst.map((i) => new Close(i)),
];

function config(kind) {
  return fc.record({
    kind: fc.constant(kind),
    capacity: fc.integer({ min: 1, max: 40 }),
    slots: fc.integer({ min: 1, max: 5 }),
    checked: fc.oneof({ arbitrary: fc.constant(true), weight: 6 }, { arbitrary: fc.constant(false), weight: 1 }),
    zero: fc.boolean(),
    objectSize: fc.integer({ min: 1, max: 64 }),
    slack: fc.nat({ max: 15 }),
    shared: kind === 'own' ? fc.constant(true) : fc.boolean(),
    instances: fc.integer({ min: 1, max: 2 }),
    // Each instance's cache option: automatic (null) or a size.
    caches: fc.tuple(fc.option(fc.nat({ max: 8 })), fc.option(fc.nat({ max: 8 }))),
    // Close late in the sequence, or never: the open pool gets most of the calls.
    closeFrom: fc.oneof(fc.integer({ min: Math.floor(STEPS / 8), max: Math.floor(STEPS / 2) }), fc.constant(STEPS + 1)),
  });
}

/** Runs one sequence, then returns every object and checks that each comes back exactly once. */
async function sequence(cfg, cmds) {
  const { model: m, real: r } = setup(cfg);
  fc.modelRun(() => ({ model: m, real: r }), cmds);
  for (const h of [...m.out]) {
    r.pools[0].push(h);
    gaveBack(m, h);
  }
  if (!m.closed) {
    // popMany() through each instance: its own cache first, then the slots.
    const got = [];
    for (const pool of r.pools) {
      const all = new Uint32Array(m.capacity + 1);
      got.push(...all.subarray(0, pool.popMany(all)));
    }
    if (got.length !== m.capacity || new Set(got).size !== got.length) throw new Error(`final: ${got.length} of ${m.capacity} objects came back (${new Set(got).size} distinct)`);
    r.pools[0].pushMany(Uint32Array.from(got));
    return;
  }
  await r.closeDone;
  if (r.releaseErrors.length) throw new Error(r.releaseErrors.join('; '));
  if (m.released.size !== m.capacity) throw new Error(`close released ${m.released.size} of ${m.capacity} objects`);
}

for (const kind of ['own', 'fromBuffer', 'fromBuffers']) {
  test(`fuzz: ${kind} pools (${RUNS} sequences of up to ${STEPS} calls)`, async (t) => {
    const property = fc.asyncProperty(config(kind), fc.commands(commands, { maxCommands: STEPS, size: 'max', replayPath: REPLAY?.replayPath }), sequence);
    const params = REPLAY ? { seed: REPLAY.seed, path: REPLAY.path, endOnFailure: true } : { numRuns: RUNS };
    const result = await fc.check(property, params);
    if (!result.failed) return t.pass();
    const [cfg, cmds] = result.counterexample ?? [];
    const calls = String(cmds);
    const replayPath = /replayPath="([^"]*)"/.exec(calls)?.[1] ?? '';
    t.fail([
      `${result.errorInstance?.message ?? result.error}`,
      `pool: ${JSON.stringify(cfg)}`,
      `calls (shrunk ${result.numShrinks} times): ${calls.replace(/\s*\/\*replayPath=.*\*\//, '')}`,
      `replay: OBJPOOL_FUZZ_SEED=${result.seed} OBJPOOL_FUZZ_PATH=${result.counterexamplePath} OBJPOOL_FUZZ_REPLAY=${replayPath} npx ava test/fuzz.test.js --match '*${kind} pools*'`,
    ].join('\n'));
  });
}
