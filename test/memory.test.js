'use strict';
// Memory native code touches can never be reached from JS in a way that
// detaches, empties or replaces it; the per-thread Buffer view cache does not
// grow with walks over the whole pool. Each case runs in a child process with
// --expose-gc, so that collection really happens (and, under npm run
// test:asan, under AddressSanitizer).
const test = require('ava');
const { execFileSync } = require('node:child_process');

const root = JSON.stringify(require.resolve('..'));

function child(script, timeout = 60_000) {
  return JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout }).trim().split('\n').pop());
}

test('everything reachable from a pool and its functions, detached or emptied, leaves pop/push working and every object conserved', (t) => {
  const r = child(`
    const { ObjectPool } = require(${root});
    const settle = async () => { for (let i = 0; i < 3; i++) { gc(); await new Promise(setImmediate); } };
    // Walks every property (string and symbol keys, enumerable or not,
    // getters called) reachable from the roots, skipping the built-in
    // prototypes, and attacks what it finds.
    function attack(roots) {
      const seen = new Set();
      const builtins = new Set([Object.prototype, Function.prototype, Array.prototype, Buffer.prototype, Uint8Array.prototype,
        Object.getPrototypeOf(Uint8Array.prototype), ArrayBuffer.prototype, SharedArrayBuffer.prototype, Promise.prototype]);
      const queue = [...roots];
      let detached = 0, emptied = 0, replaced = 0, visited = 0;
      while (queue.length) {
        const v = queue.shift();
        if ((typeof v !== 'object' && typeof v !== 'function') || v === null || seen.has(v) || builtins.has(v)) continue;
        seen.add(v);
        visited++;
        if (ArrayBuffer.isView(v)) queue.push(v.buffer);
        if (v instanceof ArrayBuffer) {
          try { structuredClone(v, { transfer: [v] }); detached++; } catch {}
          try { if (v.resizable) { v.resize(0); detached++; } } catch {}
          continue;
        }
        if (v instanceof SharedArrayBuffer) {
          try { structuredClone(v, { transfer: [v] }); detached++; } catch {}   // must throw: shared memory cannot be detached
          continue;
        }
        queue.push(Object.getPrototypeOf(v));
        for (const key of Reflect.ownKeys(v)) {
          const d = Object.getOwnPropertyDescriptor(v, key);
          let value = d.value;
          if (d.get) { try { value = d.get.call(v); } catch { value = undefined; } }
          queue.push(value);
          if (Array.isArray(value)) { try { value.length = 0; emptied++; } catch {} }
          if (typeof v === 'function' && key !== 'prototype') {
            try { if (delete v[key] || d.writable) { v[key] = null; replaced++; } } catch {}
          }
        }
      }
      return { detached, emptied, replaced, visited };
    }
    const kinds = {
      own: () => new ObjectPool({ capacity: 64, objectSize: 64, slots: 2, cache: 0 }),
      'own, cached': () => new ObjectPool({ capacity: 64, objectSize: 64, slots: 2, cache: 8 }),
      'fromBuffer(ArrayBuffer)': () => ObjectPool.fromBuffer(new ArrayBuffer(64 * 64), { objectSize: 64, slots: 2, cache: 8 }),
      'fromBuffer(SharedArrayBuffer)': () => ObjectPool.fromBuffer(new SharedArrayBuffer(64 * 64), { objectSize: 64, zero: true }),
      fromBuffers: () => ObjectPool.fromBuffers(Array.from({ length: 64 }, () => Buffer.alloc(16)), { cache: 4 }),
      attached: () => ObjectPool.attach(new ObjectPool({ capacity: 64, objectSize: 64, slots: 2 }).descriptor, { cache: 8 }),
    };
    (async () => {
      const out = {};
      // Every pool is built first: the walk reaches the class itself and
      // replaces its static functions too.
      const pools = Object.entries(kinds).map(([name, make]) => [name, make()]);
      for (const [name, pool] of pools) {
        const { pop, push, popMany, pushMany } = pool;
        const held = [pop(), pop(), pop()];
        const stats = pool.stats.bind(pool);
        const done = attack([pool, pop, push, popMany, pushMany, Object.getPrototypeOf(pool), pool.buffer(held[0]), pool.acquire(), pool.lease()]);
        await settle();
        for (const h of held) push(h);
        // Every object, each once, through the functions kept before the attack.
        const got = [];
        for (let h; (h = pop()) !== -1; ) got.push(h);
        const batch = new Uint32Array(64);
        for (const h of got) push(h);
        const n = popMany(batch);
        pushMany(batch, n);
        out[name] = { ...done, got: got.length, unique: new Set(got).size, valid: got.every((h) => Number.isInteger(h) && h >= 0 && h < 64), batch: n, inUse: stats().inUse };
      }
      console.log(JSON.stringify(out));
    })();
  `);
  for (const [name, c] of Object.entries(r)) {
    t.true(c.visited > 10, `${name}: the walk reached ${c.visited} objects`);
    t.true(c.valid, `${name}: every handle valid`);
    t.is(c.unique, c.got, `${name}: no handle twice`);
    // The views from buffer()/acquire()/lease() above were released back, or are out: two objects are still out.
    t.is(c.got + 2, 64, `${name}: no object lost (${c.got} in the pool, 2 out)`);
    t.is(c.batch, 62, `${name}: popMany sees them all`);
  }
  t.true(r['fromBuffer(ArrayBuffer)'].detached > 0, 'the user ArrayBuffer was detached, and the pool survived it');
});

test('the Buffer view cache holds views only where identity is promised: init and close walk the pool without keeping views', (t) => {
  const r = child(`
    const { ObjectPool } = require(${root});
    const MiB = 2 ** 20;
    const heap = () => { gc(); gc(); return process.memoryUsage().heapUsed / MiB; };
    (async () => {
      const base = heap();
      const pool = new ObjectPool({ capacity: 2 ** 18, objectSize: 8, init: (buf, h) => buf.writeUInt32LE(h) });
      const afterInit = heap() - base;
      let sum = 0;
      await pool.close((buf, info) => { sum += buf.readUInt32LE(0) === info.handle ? 1 : 0; });
      const afterClose = heap() - base;
      // buffer() keeps its view (identity is promised), so the same walk through buffer() grows the heap.
      const other = new ObjectPool({ capacity: 2 ** 18, objectSize: 8 });
      for (let h = 0; h < other.capacity; h++) other.buffer(h);
      const cached = heap() - base;
      console.log(JSON.stringify({ afterInit, afterClose, cached, sum, identity: other.buffer(5) === other.buffer(5) }));
    })();
  `, 120_000);
  t.log(`2^18 objects: heap +${r.afterInit.toFixed(1)} MiB after init, +${r.afterClose.toFixed(1)} MiB after close; +${r.cached.toFixed(1)} MiB with a cached view of every object`);
  t.is(r.sum, 2 ** 18, 'init wrote every object and close released every object with its bytes');
  t.true(r.afterInit < 8 && r.afterClose < 8, 'init and close keep no view per object');
  t.true(r.cached > 16, 'a view of every object costs heap: the reason walks do not keep them');
  t.true(r.identity);
});
