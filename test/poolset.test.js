'use strict';
// PoolSet: several sizes behind one interface, as a set of real ObjectPools.
const test = require('ava');
const path = require('node:path');
const net = require('node:net');
const { execFileSync } = require('node:child_process');
const { PoolSet, PoolSetChannel, ObjectPool, net: pooled } = require('..');
const { assertIntact, spawnWorker } = require('./helpers');

const CLASSES = [{ objectSize: 4096, capacity: 8 }, { objectSize: 512, capacity: 16 }, { objectSize: 65536, capacity: 4 }];
const worker = path.join(__dirname, 'fixtures', 'poolset-worker.js');

function intact(t, set, held = []) {
  set.pools.forEach((p, c) => assertIntact(t, p, held.filter((h) => h >>> 24 === c).map((h) => h & 0xffffff)));
}

test('acquire(n) gives exactly n bytes from the smallest class that fits; classes are sorted by size', (t) => {
  const set = new PoolSet({ classes: CLASSES, name: 'web' });
  t.deepEqual(set.sizes, [512, 4096, 65536]);
  t.is(set.maxSize, 65536);
  t.deepEqual(set.pools.map((p) => p.name), ['web/512', 'web/4096', 'web/65536']);
  const cases = [[1, 0], [511, 0], [512, 0], [513, 1], [4095, 1], [4096, 1], [4097, 2], [65536, 2]];
  for (const [n, c] of cases) {
    const buf = set.acquire(n);
    t.is(buf.length, n, `acquire(${n}) is ${n} bytes`);
    t.is(buf.buffer, set.pools[c].descriptor.arena, `acquire(${n}) comes from class ${set.sizes[c]}`);
    set.release(buf);
  }
  // A shorter view is a Buffer in every way, and the same one for the same size.
  const short = set.acquire(5);
  t.true(Buffer.isBuffer(short));
  t.is(short.constructor, Buffer);
  short.write('hello');
  t.is(short.toString(), 'hello');
  t.true(short.subarray(1, 3).equals(Buffer.from('el')));
  t.true(Buffer.concat([short, short]).equals(Buffer.from('hellohello')));
  set.release(short);
  const again = set.acquire(5);
  t.is(again, short, 'the view of that length is kept per object');
  set.release(again);
  // A whole object is the class's own cached Buffer.
  const whole = set.acquire(4096);
  t.is(whole, set.pools[1].buffer(set.pools[1].handleOf(whole)));
  set.release(whole);
  intact(t, set);
});

test('release finds a Buffer acquire() gave by its stamp: invisible, per set, and a view its user made non-extensible still comes back', (t) => {
  const { inspect } = require('node:util');
  const set = new PoolSet({ classes: CLASSES });
  for (const n of [100, 512, 4096, 70, 65536]) {
    const buf = set.acquire(n);
    buf.fill(7);
    t.deepEqual(buf, Buffer.alloc(n, 7), 'equal to a plain Buffer of the same bytes');
    t.true(inspect(buf).startsWith('<Buffer 07'));
    t.deepEqual(Object.keys(buf).length, n);
    set.release(buf);
    t.throws(() => set.release(buf), { code: 'ERR_OBJPOOL_DOUBLE_PUSH' });
  }
  // The same object's Buffer, handed out again, keeps working.
  const first = set.acquire(4096);
  set.release(first);
  const again = set.acquire(4096);
  t.is(again, first, 'the cached view');
  set.release(again);
  // A view made non-extensible before the set stamps it.
  const h = set.pools[0].pop();
  const view = set.pools[0].buffer(h);
  Object.preventExtensions(view);
  set.pools[0].push(h);
  const got = [];
  for (let b; (b = set.acquire(512)) !== null;) got.push(b);
  t.true(got.includes(view));
  for (const b of got) set.release(b);
  t.is(set.stats().inUse, 0);
  intact(t, set);
});

test('generated classes: powers of two from min to max, bytes per class', (t) => {
  const set = new PoolSet({ min: 256, max: 4096, bytes: 64 * 1024 });
  t.deepEqual(set.sizes, [256, 512, 1024, 2048, 4096]);
  t.deepEqual(set.pools.map((p) => p.capacity), [256, 128, 64, 32, 16]);
  t.deepEqual(new PoolSet({ min: 1024, max: 1024, bytes: 10 }).pools.map((p) => p.capacity), [1]);
});

test('bad options and sizes get coded errors', (t) => {
  t.throws(() => new PoolSet(), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => new PoolSet({}), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => new PoolSet({ classes: [] }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => new PoolSet({ classes: Array.from({ length: 65 }, (_, i) => ({ objectSize: i + 1, capacity: 1 })) }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => new PoolSet({ classes: [{ objectSize: 8, capacity: 1 }, { objectSize: 8, capacity: 2 }] }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => new PoolSet({ classes: [{ objectSize: 0, capacity: 1 }] }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => new PoolSet({ classes: [null] }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => new PoolSet({ classes: CLASSES, min: 8 }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => new PoolSet({ min: 3, max: 8, bytes: 64 }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => new PoolSet({ min: 16, max: 8, bytes: 64 }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => new PoolSet({ classes: CLASSES, fallback: 'smaller' }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => new PoolSet({ classes: CLASSES, name: 'x'.repeat(241) }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => new PoolSet({ classes: CLASSES, init: 1 }), { code: 'ERR_INVALID_ARG_TYPE' });
  const set = new PoolSet({ classes: CLASSES });
  for (const n of [0, -1, 1.5, 65537, NaN, Infinity]) t.throws(() => set.acquire(n), { code: 'ERR_OUT_OF_RANGE' }, `acquire(${n})`);
  for (const n of ['1', undefined, null, 1n]) t.throws(() => set.acquire(n), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => set.pop(65537), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => set.lease(0), { code: 'ERR_OUT_OF_RANGE' });
  intact(t, set);
});

test('release finds the class from the buffer; foreign, double and fake releases are caught and lose nothing', (t) => {
  const set = new PoolSet({ classes: CLASSES });
  const other = new PoolSet({ classes: CLASSES });
  const a = set.acquire(100), b = set.acquire(5000), c = set.acquire(512);
  // A view that starts at the object and stays inside it returns it too.
  set.release(b.subarray(0, 10));
  t.throws(() => set.release(b), { code: 'ERR_OBJPOOL_DOUBLE_PUSH' });
  t.throws(() => set.release(other.acquire(100)), { code: 'ERR_OBJPOOL_FOREIGN_BUFFER' });
  t.throws(() => set.release(Buffer.alloc(100)), { code: 'ERR_OBJPOOL_FOREIGN_BUFFER' });
  t.throws(() => set.release(a.subarray(1, 5)), { code: 'ERR_OBJPOOL_FOREIGN_BUFFER' });
  t.throws(() => set.release(new Proxy(a, {})), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => set.release(Object.create(Uint8Array.prototype)), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => set.release({ buffer: a.buffer, byteLength: 100 }), { code: 'ERR_INVALID_ARG_TYPE' });
  // A subclass whose getters lie about its memory: the real ones are read.
  class Liar extends Uint8Array { get buffer() { return a.buffer; } get byteLength() { return 100; } }
  t.throws(() => set.release(new Liar(100)), { code: 'ERR_OBJPOOL_FOREIGN_BUFFER' });
  t.is(set.stats().inUse, 2);
  set.release(a);
  set.release(c);
  t.is(set.stats().inUse, 0);
  intact(t, set);
});

test('handles name their class: pop(n), push(h), buffer(h), classOf(h); bad handles are refused', (t) => {
  const set = new PoolSet({ classes: CLASSES });
  const h = set.pop(40000);
  t.deepEqual(set.classOf(h), { class: 2, handle: h & 0xffffff });
  t.is(set.buffer(h).length, 65536);
  t.is(set.buffer(h), set.pools[2].buffer(h & 0xffffff));
  t.true(h >= 0 && h < 2 ** 30);
  set.push(h);
  t.throws(() => set.push(h), { code: 'ERR_OBJPOOL_DOUBLE_PUSH' });
  for (const bad of [1.5, -1, 2 ** 32, '1', null, 3 << 24, 63 << 24, (2 << 24) | 4]) {
    const err = t.throws(() => set.push(bad), undefined, `push(${String(bad)})`);
    t.true(['ERR_OUT_OF_RANGE', 'ERR_INVALID_ARG_TYPE'].includes(err.code), err.code);
  }
  t.throws(() => set.buffer(3 << 24), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => set.classOf(-1), { code: 'ERR_OUT_OF_RANGE' });
  intact(t, set);
});

test("fallback: 'larger' takes the next class up when the one that fits is empty; 'none' returns null", (t) => {
  const classes = [{ objectSize: 16, capacity: 2 }, { objectSize: 64, capacity: 1 }, { objectSize: 256, capacity: 1 }];
  const none = new PoolSet({ classes, cache: 0 });
  const held = [none.acquire(10), none.acquire(10)];
  t.is(none.acquire(10), null);
  t.is(none.pop(10), -1);
  for (const b of held) none.release(b);
  const set = new PoolSet({ classes, fallback: 'larger', cache: 0 });
  const got = [set.acquire(10), set.acquire(10), set.acquire(10), set.acquire(10)];
  t.deepEqual(got.map((b) => b.length), [10, 10, 10, 10]);
  t.deepEqual(got.map((b) => set.pools.findIndex((p) => p.descriptor.arena === b.buffer)), [0, 0, 1, 2]);
  t.is(set.acquire(10), null);
  for (const b of got) set.release(b);
  const hs = [set.pop(1), set.pop(1), set.pop(1)];
  t.deepEqual(hs.map((h) => h >>> 24), [0, 0, 1]);
  for (const h of hs) set.push(h);
  intact(t, set);
});

test('leases, acquireAsync and zeroing work per class', async (t) => {
  const set = new PoolSet({ classes: [{ objectSize: 32, capacity: 1 }, { objectSize: 128, capacity: 1 }], zero: true, cache: 0 });
  const lease = set.lease(100);
  t.is(lease.buffer.length, 100);
  lease.buffer.fill(7);
  t.is(set.lease(100), null);
  lease[Symbol.dispose]();
  lease.release();
  const again = set.acquire(128);
  t.true(again.every((x) => x === 0), 'zeroed when it came back');
  const waiting = set.acquireAsync(50);
  let done = false;
  waiting.then(() => { done = true; });
  await new Promise((r) => setTimeout(r, 20));
  t.false(done, 'waits while its class is empty');
  set.release(again);
  const got = await waiting;
  t.is(got.length, 50);
  set.release(got);
  const big = set.acquire(128);
  await t.throwsAsync(set.acquireAsync(120, { timeout: 10 }), { code: 'ERR_OBJPOOL_TIMEOUT' });
  set.release(big);
  // Aborted before the call: rejected, and nothing taken, though the class has an object.
  await t.throwsAsync(set.acquireAsync(120, { signal: AbortSignal.abort(new Error('stop')) }), { message: 'stop' });
  await t.throwsAsync(set.acquireAsync(1e6), { code: 'ERR_OUT_OF_RANGE' });
  intact(t, set);
});

test('init runs for every object with its set handle; stats sum the classes; close releases every object once with its set handle', async (t) => {
  const seen = [];
  const set = new PoolSet({ classes: CLASSES, init: (obj, h) => { seen.push(h); obj[0] = h >>> 24; } });
  t.is(seen.length, 28);
  t.is(new Set(seen).size, 28);
  for (const h of seen) t.is(set.buffer(h)[0], h >>> 24);
  const held = set.acquire(70);
  const s = set.stats();
  t.is(s.capacity, 28);
  t.is(s.inUse, 1);
  t.is(s.classes.length, 3);
  t.deepEqual(s.classes.map((c) => [c.objectSize, c.inUse]), [[512, 1], [4096, 0], [65536, 0]]);
  const released = [];
  const closing = set.close((obj, info) => released.push([info.handle, obj.length]));
  t.true(set.closed);
  t.throws(() => set.acquire(1), { code: 'ERR_OBJPOOL_CLOSED' });
  set.release(held);
  await closing;
  t.is(released.length, 28);
  t.is(new Set(released.map(([h]) => h)).size, 28);
  for (const [h, len] of released) t.is(len, set.sizes[h >>> 24]);
});

test('descriptor and attach: a forged set descriptor is refused', (t) => {
  const set = new PoolSet({ classes: CLASSES });
  const d = set.descriptor;
  const again = PoolSet.attach(d, { cache: 0 });
  const buf = again.acquire(1000);
  set.release(buf);
  t.throws(() => PoolSet.attach({ ...d, kind: 'x' }), { code: 'ERR_OBJPOOL_BAD_DESCRIPTOR' });
  t.throws(() => PoolSet.attach({ ...d, classes: [] }), { code: 'ERR_OBJPOOL_BAD_DESCRIPTOR' });
  t.throws(() => PoolSet.attach({ ...d, classes: [...d.classes].reverse() }), { code: 'ERR_OBJPOOL_BAD_DESCRIPTOR' });
  t.throws(() => PoolSet.attach({ ...d, fallback: 1 }), { code: 'ERR_OBJPOOL_BAD_DESCRIPTOR' });
  t.throws(() => PoolSet.attach({ ...d, classes: [{ ...d.classes[0], capacity: 99 }] }), { code: 'ERR_OBJPOOL_BAD_DESCRIPTOR' });
  t.throws(() => PoolSet.attach(null), { code: 'ERR_INVALID_ARG_TYPE' });
  intact(t, set);
});

test('two workers churn every size at once: no object is handed to two holders, none is lost', async (t) => {
  const set = new PoolSet({ classes: [{ objectSize: 64, capacity: 64 }, { objectSize: 1000, capacity: 32 }, { objectSize: 20000, capacity: 8 }] });
  const ws = [1, 2].map((seed) => spawnWorker(worker, { set: set.descriptor, job: 'churn', seed, steps: 40000 }));
  const results = await Promise.all(ws.map((w) => w.wait((m) => m.done)));
  await Promise.all(ws.map((w) => w.exited));
  t.deepEqual(results.map((r) => r.bad), [0, 0]);
  t.is(set.stats().inUse, 0);
  intact(t, set);
});

test('a set channel carries every class between threads: each handle once, in order within its class', async (t) => {
  const set = new PoolSet({ classes: [{ objectSize: 8, capacity: 16 }, { objectSize: 16, capacity: 16 }, { objectSize: 32, capacity: 16 }] });
  const ch = set.channel({ capacity: 8 });
  const w = spawnWorker(worker, { set: set.descriptor, channel: ch.descriptor, job: 'send', seed: 7, steps: 3000 });
  const next = [0, 0, 0];
  let got = 0, outOfOrder = 0;
  for await (const h of ch) {
    const c = h >>> 24;
    if (set.buffer(h).readUInt32LE(0) !== next[c]++) outOfOrder++;
    got++;
    set.push(h);
  }
  const { sent } = await w.wait((m) => m.done);
  await w.exited;
  t.is(got, 3000);
  t.is(outOfOrder, 0);
  t.deepEqual(next, sent);
  intact(t, set);
});

test('a set channel receiveAsync waits on every class and takes one handle: the others stay in the channel', async (t) => {
  const set = new PoolSet({ classes: [{ objectSize: 8, capacity: 4 }, { objectSize: 16, capacity: 4 }] });
  const ch = set.channel();
  const other = PoolSetChannel.attach(ch.descriptor, set);
  const waits = [ch.receiveAsync(), other.receiveAsync()];
  const a = set.pop(16), b = set.pop(8);
  // Both classes get a handle before either wait is served: each wait takes one.
  t.true(ch.send(a));
  t.true(ch.send(b));
  const got = await Promise.all(waits);
  t.deepEqual(got.sort(), [a, b].sort());
  t.is(ch.size, 0);
  for (const h of got) set.push(h);
  // One handle, two waits: one takes it, the other still waits.
  const c1 = ch.receiveAsync({ timeout: 200 }), c2 = ch.receiveAsync({ timeout: 200 });
  const h = set.pop(8);
  ch.send(h);
  const settled = await Promise.allSettled([c1, c2]);
  t.deepEqual(settled.map((s) => s.status).sort(), ['fulfilled', 'rejected']);
  t.is(settled.find((s) => s.status === 'rejected').reason.code, 'ERR_OBJPOOL_TIMEOUT');
  set.push(settled.find((s) => s.status === 'fulfilled').value);
  const aborted = new AbortController();
  const p = ch.receiveAsync({ signal: aborted.signal });
  aborted.abort(new Error('gone'));
  await t.throwsAsync(p, { message: 'gone' });
  ch.send(set.pop(16));
  t.is(ch.receiveMany(new Uint32Array(4)), 1, 'an aborted wait took nothing');
  ch.close();
  t.true(ch.closed);
  await t.throwsAsync(ch.receiveAsync(), { code: 'ERR_OBJPOOL_CLOSED' });
  t.throws(() => ch.send(set.pop(8)), { code: 'ERR_OBJPOOL_CLOSED' });
  t.throws(() => PoolSetChannel.attach({ ...ch.descriptor, channels: [] }, set), { code: 'ERR_OBJPOOL_BAD_DESCRIPTOR' });
  t.throws(() => PoolSetChannel.attach(ch.descriptor, {}), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('networking: a pooled reader reads into a class of the set and writePooled sends replies of any class', async (t) => {
  const set = new PoolSet({ classes: [{ objectSize: 256, capacity: 32 }, { objectSize: 4096, capacity: 8 }, { objectSize: 65536, capacity: 4 }] });
  const received = [];
  const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
    const socket = pooled.adopt(set.poolFor(65536), accepted, {
      onData(chunk, done) {
        // Reply with a buffer of the set sized to the chunk, then let the read buffer go.
        const reply = set.acquire(chunk.length);
        chunk.copy(reply);
        done();
        pooled.writePooled(socket, reply, () => set.release(reply));
      },
    });
    socket.on('error', () => {});
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const client = net.connect(server.address().port, '127.0.0.1');
  const payload = Buffer.alloc(200_000, 0).map((_, i) => i % 251);
  client.on('data', (d) => received.push(d));
  client.end(payload);
  await new Promise((r) => client.on('end', r));
  client.destroy();
  await new Promise((r) => server.close(r));
  t.true(Buffer.concat(received).equals(payload));
  await new Promise((r) => setTimeout(r, 20));
  t.is(set.stats().inUse, 0);
});

test('a Buffer kept alive does not keep its set alive (the stamp names the set by number)', (t) => {
  const out = execFileSync(process.execPath, ['--expose-gc', '-e', `
    const { PoolSet } = require(${JSON.stringify(path.join(__dirname, '..'))});
    let collected = false;
    const registry = new FinalizationRegistry(() => { collected = true; });
    function make() {
      const set = new PoolSet({ classes: [{ objectSize: 64, capacity: 4 }] });
      registry.register(set, 0);
      const buf = set.acquire(64);
      set.release(buf);
      return set.acquire(64);   // stamped, and kept below
    }
    const kept = make();
    (async () => {
      for (let i = 0; i < 6 && !collected; i++) { gc(); await new Promise((r) => setTimeout(r, 5)); }
      console.log(JSON.stringify({ collected, length: kept.length }));
    })();`], { encoding: 'utf8', timeout: 30_000 });
  t.deepEqual(JSON.parse(out), { collected: true, length: 64 });
});

test('a sampled acquire(n) whose Buffer is collected is reported as a leak of its class', (t) => {
  const out = execFileSync(process.execPath, ['--expose-gc', '-e', `
    const { PoolSet } = require(${JSON.stringify(path.join(__dirname, '..'))});
    const reports = [];
    const set = new PoolSet({ classes: [{ objectSize: 64, capacity: 4 }, { objectSize: 256, capacity: 4 }], leaks: { sample: 1, onLeak: (r) => reports.push(r) } });
    function forget() { set.acquire(100); }
    (async () => {
      forget();
      let kept = set.acquire(10);   // a view of 10 bytes, released: never reported
      set.release(kept);
      kept = null;
      for (let i = 0; i < 4; i++) { gc(); await new Promise((r) => setTimeout(r, 5)); }
      console.log(JSON.stringify({ reports: reports.map((r) => ({ name: r.name, stack: r.stack })), inUse: set.stats().inUse }));
    })();`], { encoding: 'utf8', timeout: 30_000 });
  const { reports, inUse } = JSON.parse(out);
  t.is(inUse, 1);
  t.is(reports.length, 1);
  t.regex(reports[0].stack, /forget/);
});

test('metrics and events name each class', (t) => {
  const set = new PoolSet({ classes: CLASSES, name: 'replies' });
  t.deepEqual(set.pools.map((p) => p.name), ['replies/512', 'replies/4096', 'replies/65536']);
  t.true(set.pools.every((p) => p instanceof ObjectPool));
});

test('a Buffer posted to another thread on its own is released there by its set', async (t) => {
  const set = new PoolSet({ classes: [{ objectSize: 512, capacity: 4 }, { objectSize: 4096, capacity: 4 }] });
  const w = spawnWorker(worker, { set: set.descriptor, job: 'release' });
  const held = [set.acquire(100), set.acquire(512), set.acquire(3000)];
  w.w.postMessage(held);
  const { codes } = await w.wait((m) => m.codes);
  await w.w.terminate();
  t.deepEqual(codes, ['ok', 'ok', 'ok']);
  t.is(set.stats().inUse, 0);
});

test('what user code can reach changes nothing: prototype setters, lying getters, own map, subarray of a subclass', async (t) => {
  const set = new PoolSet({ classes: [{ objectSize: 512, capacity: 4 }, { objectSize: 4096, capacity: 2 }], cache: 0 });
  // A shorter view carries no property or symbol: nothing for inspect, assert or Object.assign to see.
  const four = set.acquire(4).fill(1);
  t.deepEqual(Object.getOwnPropertySymbols(four), []);
  require('node:assert').deepStrictEqual(four, Buffer.alloc(4, 1));
  set.release(four);
  // A read-only or throwing property on the prototypes: acquire(n) neither throws nor loses its object.
  const whole = set.acquire(512);
  const syms = [Symbol('x'), ...Object.getOwnPropertySymbols(whole)];
  set.release(whole);
  for (const sym of syms) {
    Object.defineProperty(Uint8Array.prototype, sym, { value: -1, writable: false, configurable: true });
  }
  try {
    const got = [set.acquire(100), set.acquire(200), set.acquire(300)];
    t.true(got.every((b) => b !== null));
    for (const b of got) set.release(b);
  } finally {
    for (const sym of syms) delete Uint8Array.prototype[sym];
  }
  // A subclass that lies about byteOffset names another object: the real offset decides.
  const mine = set.acquire(512), theirs = set.acquire(512);
  class Liar extends Uint8Array { get byteOffset() { return theirs.byteOffset; } get byteLength() { return 1; } }
  set.release(new Liar(mine.buffer, mine.byteOffset, 10));
  t.throws(() => set.release(mine), { code: 'ERR_OBJPOOL_DOUBLE_PUSH' }, 'mine was the one released');
  set.release(theirs);
  // A DataView dressed as a Buffer has no Uint8Array brand.
  const dv = new DataView(new ArrayBuffer(8));
  Object.setPrototypeOf(dv, Buffer.prototype);
  t.throws(() => set.release(dv), { code: 'ERR_INVALID_ARG_TYPE' });
  // attach reads the list once, by index: an own map cannot add classes.
  const d = set.descriptor;
  const classes = [d.classes[0]];
  classes.map = () => Array.from({ length: 129 }, () => d.classes[0]);
  const one = PoolSet.attach({ ...d, classes });
  t.deepEqual(one.sizes, [512]);
  // receiveMany writes through its own array over out's memory, whatever out's subarray does.
  const ch = set.channel();
  const hs = [set.pop(10), set.pop(10), set.pop(1000), set.pop(1000)];
  for (const h of hs) ch.send(h);
  class Out extends Uint32Array { subarray() { return new Uint32Array(this.buffer); } }
  const out = new Out(4);
  t.is(ch.receiveMany(out), 4);
  t.deepEqual([...out].sort(), [...hs].sort());
  for (const h of out) set.push(h);
  intact(t, set);
});

test("acquireAsync checks its options with fallback: 'larger' too; handle errors name the set's handle", async (t) => {
  const set = new PoolSet({ classes: [{ objectSize: 16, capacity: 2 }, { objectSize: 64, capacity: 2 }], fallback: 'larger' });
  await t.throwsAsync(set.acquireAsync(10, { signal: 'x' }), { code: 'ERR_INVALID_ARG_TYPE' });
  await t.throwsAsync(set.acquireAsync(10, { timeout: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  await t.throwsAsync(set.acquireAsync(10, null), { code: 'ERR_INVALID_ARG_TYPE' });
  await t.throwsAsync(set.acquireAsync(10, { signal: AbortSignal.abort(new Error('no')) }), { message: 'no' });
  const big = (1 << 24) | 5;
  t.throws(() => set.classOf(big), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => set.push(big), { code: 'ERR_OUT_OF_RANGE', message: new RegExp(`Received ${big}`) });
  t.throws(() => set.buffer(big), { code: 'ERR_OUT_OF_RANGE', message: new RegExp(`Received ${big}`) });
  intact(t, set);
});

test('a set channel serves receiveAsync calls in the order they were made', async (t) => {
  const set = new PoolSet({ classes: [{ objectSize: 8, capacity: 4 }, { objectSize: 16, capacity: 4 }] });
  const ch = set.channel();
  const first = ch.receiveAsync();
  const a = set.pop(16);
  ch.send(a); // in the channel: the waiting call is owed it, not a newer one
  const second = ch.receiveAsync();
  t.is(await first, a);
  const b = set.pop(8);
  ch.send(b);
  t.is(await second, b);
  set.push(a);
  set.push(b);
  intact(t, set);
});

test("acquireAsync and lease with fallback: 'larger' take the next class up at once when the one that fits is empty", async (t) => {
  const set = new PoolSet({ classes: [{ objectSize: 8, capacity: 1 }, { objectSize: 16, capacity: 1 }, { objectSize: 32, capacity: 1 }], fallback: 'larger', cache: 0 });
  const classOfBuf = (b) => set.pools.findIndex((p) => p.descriptor.arena === b.buffer);
  const a = set.acquire(8);
  const b = await set.acquireAsync(8);
  t.deepEqual([classOfBuf(a), classOfBuf(b), b.length], [0, 1, 8]);
  const lease = set.lease(8);
  t.deepEqual([lease.handle >>> 24, classOfBuf(lease.buffer), lease.buffer.length], [2, 2, 8]);
  t.is(set.lease(8), null);
  lease.release();
  set.release(a);
  set.release(b);
  intact(t, set);
});

test('attach refuses a set descriptor whose class is a pool over user memory', (t) => {
  const set = new PoolSet({ classes: [{ objectSize: 8, capacity: 2 }] });
  const user = require('..').ObjectPool.fromBuffer(new SharedArrayBuffer(64), { objectSize: 16 });
  t.throws(() => PoolSet.attach({ ...set.descriptor, classes: [user.descriptor] }), { code: 'ERR_OBJPOOL_BAD_DESCRIPTOR' });
});
