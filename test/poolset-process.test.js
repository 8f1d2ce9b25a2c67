'use strict';
// A PoolSet across processes: every class a process-shared pool, the set and
// its channels described by plain JSON, handles of every class carried
// between processes, a killed process's objects back in every class, and
// forged set descriptors refused. Linux only, as process-shared pools are.
const test = require('ava');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { PoolSet, PoolSetChannel, ObjectPool } = require('..');
const { child, until, checkAll } = require('./fixtures/process-harness');

const supported = process.platform === 'linux';
const classes = [{ objectSize: 256, capacity: 16 }, { objectSize: 4096, capacity: 8 }, { objectSize: 65536, capacity: 4 }];

if (!supported) {
  test('a process-shared pool set: a coded error where the platform has no process-shared pools yet', (t) => {
    t.throws(() => new PoolSet({ classes, processShared: true }), { code: 'ERR_OBJPOOL_UNSUPPORTED' });
    t.is(new PoolSet({ classes }).processDescriptor, null);
  });
} else {
  test('a process-shared pool set: a child attaches by plain JSON, sends a handle of every class through a set channel, and what it held comes back in every class when it is killed', async (t) => {
    const set = new PoolSet({ classes, processShared: true, zero: true });
    const ch = set.channel({ capacity: 8 });
    t.true(set.processShared);
    const d = set.processDescriptor;
    t.deepEqual(JSON.parse(JSON.stringify(d)), d, 'plain JSON');
    t.is(d.kind, 'objpool/process-set');
    t.deepEqual(d.classes.map((c) => c.kind), ['objpool/process', 'objpool/process', 'objpool/process']);
    t.is(ch.processDescriptor.kind, 'objpool/process-set-channel');
    const k = child(d, 'set-work', JSON.stringify(ch.processDescriptor));
    const m = await k.next('ready');
    t.deepEqual(m.lengths, [true, true, true], 'acquire(n) gave n bytes in the child, in every class');
    // What was sent arrives here, once, in its class, with the bytes the child wrote.
    const got = [];
    for (let h; (h = ch.receive()) >= 0;) got.push(h);
    t.deepEqual(got.slice().sort((a, b) => a - b), m.sent.slice().sort((a, b) => a - b));
    for (const h of got) {
      const { class: c } = set.classOf(h);
      const b = set.buffer(h);
      t.is(b.length, classes[c].objectSize);
      t.is(b.readUInt32LE(0), c);
      t.is(b.readUInt32LE(4), 0xc0ffee00 + c);
    }
    t.deepEqual(m.kept.map((h) => set.classOf(h).class), [0, 1, 2], 'the child keeps one of every class');
    t.like(set.stats(), { inUse: got.length + m.kept.length, recovered: 0 });
    for (const h of got) set.push(h);
    t.is(set.stats().inUse, m.kept.length, 'what the child keeps is on its account, in this process too');
    // Killed: what it kept comes back, zeroed, one object in each class.
    k.proc.kill('SIGKILL');
    await k.exited;
    await until(() => set.stats().inUse === 0);
    const st = set.stats();
    t.is(st.recovered, 3);
    t.deepEqual(st.classes.map((c) => c.recovered), [1, 1, 1]);
    for (const [c, pool] of set.pools.entries()) t.true(checkAll(t, pool, { zero: true, what: `class ${c}` }));
    // close() releases every object of every class once, with its set handle.
    const released = [];
    await set.close((buf, info) => released.push(info.handle));
    t.is(released.length, 16 + 8 + 4);
    t.is(new Set(released).size, released.length);
    t.deepEqual([0, 1, 2].map((c) => released.filter((h) => h >>> 24 === c).length), [16, 8, 4]);
  });

  test('a process-shared pool set: attach() and attachProcess() take its processDescriptor; descriptor throws ERR_OBJPOOL_NOT_SHAREABLE; forged set descriptors are ERR_OBJPOOL_BAD_DESCRIPTOR, here and in a child', async (t) => {
    const set = new PoolSet({ classes, processShared: true });
    const d = set.processDescriptor;
    t.throws(() => set.descriptor, { code: 'ERR_OBJPOOL_NOT_SHAREABLE' });
    t.throws(() => set.channel().descriptor, { code: 'ERR_OBJPOOL_NOT_SHAREABLE' });
    // Another view in this process, by either call: the same objects.
    const view = PoolSet.attach(d);
    t.true(view instanceof PoolSet);
    t.deepEqual(view.sizes, set.sizes);
    const h = view.pop(4096);
    view.buffer(h).writeUInt32LE(0xabcd, 0);
    t.is(set.buffer(h).readUInt32LE(0), 0xabcd);
    set.push(h);
    t.deepEqual(PoolSet.attachProcess(d).sizes, set.sizes);
    t.throws(() => new PoolSet({ classes, processShared: 'yes' }), { code: 'ERR_INVALID_ARG_TYPE' });
    t.throws(() => new PoolSet({ classes, processShared: true, checked: false }), { code: 'ERR_INVALID_ARG_VALUE' });
    const thread = new PoolSet({ classes });
    t.is(thread.processDescriptor, null);
    t.is(thread.channel().processDescriptor, null);
    t.false(thread.processShared);
    const other = new ObjectPool({ capacity: 4, objectSize: 128, processShared: true });
    const forged = [
      { ...d, kind: 'objpool-set' },
      { ...d, version: 2 },
      { ...d, classes: [] },
      { ...d, classes: d.classes.slice().reverse() },
      { ...d, classes: [d.classes[0], d.classes[0]] },
      { ...d, classes: [d.classes[1], other.processDescriptor] },
      { ...d, classes: [{ ...d.classes[0], token: 'f'.repeat(32) }] },
      { ...d, classes: [thread.pools[0].descriptor] },
      { ...d, fallback: 'smaller' },
      { kind: 'objpool/process-set', version: 1 },
    ];
    for (const f of forged) t.throws(() => PoolSet.attachProcess(f), { code: 'ERR_OBJPOOL_BAD_DESCRIPTOR' }, JSON.stringify(f).slice(0, 120));
    // A thread set's descriptor naming a process-shared class.
    t.throws(() => PoolSet.attach({ ...thread.descriptor, classes: [d.classes[0]] }), { code: 'ERR_OBJPOOL_BAD_DESCRIPTOR' });
    // A set channel's descriptor with one channel too few, or of a thread set.
    const pch = set.channel({ capacity: 4 });
    const pd = pch.processDescriptor;
    t.throws(() => PoolSetChannel.attachProcess({ ...pd, channels: pd.channels.slice(1) }, set), { code: 'ERR_OBJPOOL_BAD_DESCRIPTOR' });
    t.throws(() => PoolSetChannel.attachProcess(thread.channel().descriptor, set), { code: 'ERR_OBJPOOL_BAD_DESCRIPTOR' });
    t.true(PoolSetChannel.attach(pd, set) instanceof PoolSetChannel);
    // In a child: the same refusals, and the real one attaches.
    const k = child([d, ...forged.slice(0, 7)], 'set-try');
    const m = await k.next('tried');
    t.deepEqual(m.codes, [null, ...Array(7).fill('ERR_OBJPOOL_BAD_DESCRIPTOR')]);
    await k.exited;
    await Promise.all([set.close(), thread.close(), other.close()]);
  });

  // A process-shared class's arena is an ArrayBuffer its user can detach
  // (transfer()). The set's acquire(n), lease(n) and acquireAsync(n) then
  // refuse with a code and take nothing, whatever n (found by a review:
  // each took an object and lost it, one with Node's own RangeError, and
  // acquire(256) of a cached view gave an empty Buffer as a success).
  test('a process-shared pool set: after transfer() detached a class arena, acquire(n), lease(n) and acquireAsync(n) refuse with a code and take nothing', (t) => {
    const script = `
      const { PoolSet } = require(${JSON.stringify(path.join(__dirname, '..'))});
      const set = new PoolSet({ classes: [{ objectSize: 256, capacity: 4 }, { objectSize: 4096, capacity: 2 }], processShared: true, cache: 0 });
      const code = (f) => { try { const b = f(); return b === null ? 'null' : 'a Buffer of ' + b.length; } catch (e) { return e.code; } };
      const whole = set.acquire(256), part = set.acquire(100);
      set.release(whole);
      set.release(part);
      set.pools[0].buffer(0).buffer.transfer();
      const r = {};
      for (const n of [256, 100, 256, 100, 1]) r['acquire' + n] = code(() => set.acquire(n));
      r.lease = code(() => set.lease(100)?.buffer ?? null);
      r.inUse = set.stats().classes[0].inUse;
      r.other = code(() => set.acquire(4000));
      set.acquireAsync(200, { timeout: 2000 }).then(() => { r.async = 'no error'; }, (e) => { r.async = e.code; }).then(() => {
        r.inUseAfterAsync = set.stats().classes[0].inUse;
        console.log(JSON.stringify(r));
      });`;
    const flags = typeof ArrayBuffer.prototype.transfer === 'function' ? [] : ['--harmony-rab-gsab-transfer'];
    const r = JSON.parse(execFileSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8', timeout: 30_000 }));
    for (const n of [256, 100, 1]) t.is(r['acquire' + n], 'ERR_OBJPOOL_UNSUPPORTED', `acquire(${n})`);
    t.is(r.lease, 'ERR_OBJPOOL_UNSUPPORTED');
    t.is(r.inUse, 0, 'the failed calls took nothing');
    t.is(r.other, 'a Buffer of 4000', 'another class, whose arena is whole, still serves');
    t.is(r.async, 'ERR_OBJPOOL_UNSUPPORTED');
    t.is(r.inUseAfterAsync, 0);
  });
}

