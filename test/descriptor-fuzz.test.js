'use strict';
// Descriptor fuzzing: every field changed, every header byte flipped, random
// bytes of the slot heads and links overwritten, buffers truncated or
// swapped. Each attach() must either refuse with a coded error or give a
// pool that works (and stays in bounds: run under `npm run test:asan` too).
const test = require('ava');
const { ObjectPool } = require('..');

const ROUNDS = Number(process.env.OBJPOOL_FUZZ_STEPS ?? 3000) / 10;

function copySab(sab, length = sab.byteLength) {
  const m = new SharedArrayBuffer(length);
  new Uint8Array(m).set(new Uint8Array(sab).subarray(0, Math.min(length, sab.byteLength)));
  return m;
}

// Whatever attach() returned must survive use: every returned handle in
// range, errors only with codes, and close() must end.
function exercise(t, pool) {
  const seen = [];
  for (let i = 0; i < pool.capacity + 2; i++) {
    let h;
    try { h = pool.pop(); } catch (e) { t.truthy(e.code); break; }
    if (h < 0) break;
    t.true(h < pool.capacity, `pop returned ${h} of ${pool.capacity}`);
    seen.push(h);
  }
  const out = new Uint32Array(8);
  try { const n = pool.popMany(out); for (const h of out.subarray(0, n)) t.true(h < pool.capacity); } catch (e) { t.truthy(e.code); }
  for (const h of seen) { try { pool.push(h); } catch (e) { t.truthy(e.code); } }
  const s = pool.stats();
  t.true(s.available <= pool.capacity * 2 + 8);
  if (pool.capacity <= 4096) for (let h = 0; h < pool.capacity; h++) pool.buffer(h);
  // Forged links can hide objects for good, so the close need not finish:
  // check that it starts and releases only valid handles.
  let bad = 0;
  pool.close((_, info) => { if (info.handle >= pool.capacity) bad++; }).catch(() => {});
  t.is(bad, 0);
  t.true(pool.closed);
}

const KNOWN = new Set(['ERR_OBJPOOL_BAD_DESCRIPTOR', 'ERR_INVALID_ARG_TYPE']);

function tryAttach(t, d, what) {
  let pool;
  try {
    pool = ObjectPool.attach(d);
  } catch (e) {
    t.true(KNOWN.has(e.code), `${what}: ${e.code} ${e.message}`);
    return null;
  }
  return pool;
}

test('every descriptor field replaced by other values', (t) => {
  const base = new ObjectPool({ capacity: 16, objectSize: 24, slots: 3 }).descriptor;
  const values = [undefined, null, 0, -1, 1, 2 ** 31, 2 ** 32 + 1, NaN, 'x', {}, [], true, new SharedArrayBuffer(8), new ArrayBuffer(64), [new Uint8Array(24)]];
  for (const key of Object.keys(base)) {
    for (const v of values) {
      const pool = tryAttach(t, { ...base, [key]: v }, `${key}=${String(v)}`);
      if (pool) exercise(t, pool);
    }
  }
});

test('every header byte flipped, one at a time', (t) => {
  const d = new ObjectPool({ capacity: 8, objectSize: 16, slots: 2 }).descriptor;
  for (let i = 0; i < 256; i++) {
    for (const mask of [0x01, 0x80, 0xff]) {
      const meta = copySab(d.meta);
      new Uint8Array(meta)[i] ^= mask;
      const pool = tryAttach(t, { ...d, meta }, `byte ${i} ^ ${mask}`);
      if (pool) exercise(t, pool);
    }
  }
});

test('random overwrites of slot heads and links still give an in-bounds pool', (t) => {
  let s = 12345;
  const rand = (n) => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s % n; };
  for (let round = 0; round < ROUNDS; round++) {
    const checked = rand(2) === 0;
    const d = new ObjectPool({ capacity: 1 + rand(20), objectSize: 8, slots: 1 + rand(3), checked }).descriptor;
    const meta = copySab(d.meta);
    const bytes = new Uint8Array(meta);
    for (let k = 1 + rand(12); k > 0; k--) bytes[256 + rand(bytes.length - 256)] = rand(256);
    const pool = tryAttach(t, { ...d, meta }, `round ${round}`);
    t.truthy(pool, 'the header is intact: attach accepts it');
    if (pool) exercise(t, pool);
  }
});

test('truncated, grown and swapped buffers', (t) => {
  const a = new ObjectPool({ capacity: 10, objectSize: 32, slots: 2 }).descriptor;
  const b = new ObjectPool({ capacity: 10, objectSize: 32, slots: 2, checked: false }).descriptor;
  const c = new ObjectPool({ capacity: 3, objectSize: 100, slots: 1 }).descriptor;
  const cases = [
    ['meta truncated by 1', { ...a, meta: copySab(a.meta, a.meta.byteLength - 1) }],
    ['meta truncated to the header', { ...a, meta: copySab(a.meta, 256) }],
    ['meta grown', { ...a, meta: copySab(a.meta, a.meta.byteLength + 64) }],
    ['arena truncated', { ...a, arena: copySab(a.arena, a.arena.byteLength - 1) }],
    ['arena grown', { ...a, arena: copySab(a.arena, a.arena.byteLength + 64) }],
    ['metas swapped (checked vs unchecked)', { ...a, meta: b.meta }],
    ['arena of a smaller pool', { ...a, arena: c.arena }],
    ['meta of another shape', { ...a, meta: c.meta }],
    ['arena and meta exchanged', { ...a, meta: a.arena, arena: a.meta }],
  ];
  for (const [name, d] of cases) {
    const pool = tryAttach(t, d, name);
    if (pool) exercise(t, pool);
  }
});
