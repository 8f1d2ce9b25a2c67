'use strict';
// Process-shared pools (processShared: true): attach from other processes,
// ownership and stats across them, waiting across them, access rules,
// forged descriptors, what is left behind, and the SIGKILL campaign: what a
// process held when it was killed comes back, every object exactly once,
// zeroed. Linux only (elsewhere: the coded error).
const test = require('ava');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { ObjectPool } = require('..');

const { child, run, lastJson, until, checkAll, killRound, CHILD } = require('./fixtures/process-harness');
const supported = process.platform === 'linux';
// Kills in the campaign; fewer where each process start costs a second (qemu: see test/platforms/run.js).
const KILLS = Number(process.env.OBJPOOL_KILLS ?? 500);

if (!supported) {
  test('processShared: a coded error where the platform has no process-shared pools yet', (t) => {
    t.throws(() => new ObjectPool({ capacity: 4, objectSize: 8, processShared: true }), { code: 'ERR_OBJPOOL_UNSUPPORTED' });
  });
} else {
  test('a process-shared pool: its descriptor is plain JSON, a child process attaches, ownership and stats cross the boundary', async (t) => {
    const pool = new ObjectPool({ capacity: 32, objectSize: 64, processShared: true, name: 'xproc' });
    const d = pool.processDescriptor;
    t.deepEqual(JSON.parse(JSON.stringify(d)), d, 'JSON round trip');
    t.is(d.kind, 'objpool/process');
    t.regex(d.token, /^[0-9a-f]{32}$/);
    t.is(new ObjectPool({ capacity: 1, objectSize: 1 }).processDescriptor, null);
    t.throws(() => pool.descriptor, { code: 'ERR_OBJPOOL_NOT_SHAREABLE' });
    const c = child(d, 'hold', 5);
    const { held } = await c.next('held');
    t.is(new Set(held).size, 5);
    const s = pool.stats();
    t.is(s.inUse, 5, 'what the child holds is in use here too');
    t.is(s.available, 27);
    // Its bytes are the same memory.
    for (const h of held) t.true(pool.buffer(h).every((b) => b === 0x5a));
    // Objects the child holds are out: a push here of one it never pushed
    // back takes it over (it was handed over by other means than a channel).
    pool.push(held[0]);
    t.throws(() => pool.push(held[0]), { code: 'ERR_OBJPOOL_DOUBLE_PUSH' }, 'a second push of it, here');
    c.proc.kill('SIGKILL');
    await c.exited;
    await until(() => pool.stats().inUse === 0);
    t.true(checkAll(t, pool, { what: 'after the child was killed' }));
    // Every object is in the pool: a push of one from another process is refused there.
    const c3 = child(d, 'push', JSON.stringify([0]));
    t.deepEqual((await c3.next('pushed')).codes, ['ERR_OBJPOOL_DOUBLE_PUSH']);
    // Only the process that made the pool closes it.
    const c2 = child(d, 'attach');
    const m = await c2.next('attached');
    t.is(m.closeCode, 'ERR_OBJPOOL_NOT_CREATOR');
    await pool.close();
  });

  test('a process-shared pool: a push in one process wakes a popAsync() in another, both ways, with no CPU spent waiting', async (t) => {
    const pool = new ObjectPool({ capacity: 2, objectSize: 16, processShared: true, cache: 0 });
    const a = pool.pop(), b = pool.pop();
    const c = child(pool.processDescriptor, 'wait');
    await c.next('waiting');
    await new Promise((r) => setTimeout(r, 200));
    const before = process.cpuUsage();
    pool.push(a);
    const { handle } = await c.next('got');
    t.is(handle, a, 'the child got the object pushed here');
    await c.exited;
    // The child pushed it back on its way out. The other way round: a child
    // pushes `b`, which this process holds (handed over by the handle alone:
    // the push takes it over), and wakes this process's popAsync().
    t.is(pool.pop(), a);
    const woken = pool.popAsync({ timeout: 10000 });
    const c2 = child(pool.processDescriptor, 'push', JSON.stringify([b]));
    t.is(await woken, b);
    const r = await c2.next('pushed');
    t.deepEqual(r.codes, [null]);
    pool.push(a);
    t.true(process.cpuUsage(before).user < 2e6);
    pool.push(b);
    t.true(checkAll(t, pool, { what: 'after the wake-ups' }));
    await pool.close();
  });

  test('a process-shared pool: a forged, truncated or foreign process descriptor is ERR_OBJPOOL_BAD_DESCRIPTOR', async (t) => {
    const pool = new ObjectPool({ capacity: 8, objectSize: 32, processShared: true });
    const other = new ObjectPool({ capacity: 16, objectSize: 32, processShared: true });
    const d = pool.processDescriptor;
    const bad = { code: 'ERR_OBJPOOL_BAD_DESCRIPTOR' };
    const file = path.join(os.tmpdir(), `objpool-not-a-pool-${process.pid}`);
    fs.writeFileSync(file, Buffer.alloc(200000, 1), { mode: 0o600 });
    const fd = fs.openSync(file, 'r+');
    const cases = [
      null, 42, {}, { ...d, kind: 'objpool' }, { ...d, version: 2 }, { ...d, token: d.token.toUpperCase() }, { ...d, token: d.token.slice(1) },
      { ...d, token: other.processDescriptor.token }, { ...d, token: '0'.repeat(32) }, { ...d, pid: 0 }, { ...d, pid: 1.5 }, { ...d, pid: '1' },
      { ...d, fd: -1 }, { ...d, fd: 2 ** 30 }, { ...d, capacity: 9 }, { ...d, objectSize: 31 }, { ...d, zero: true }, { ...d, slots: d.slots + 1 }, { ...d, name: '' },
      { ...d, capacity: undefined },
    ];
    for (const c of cases) t.throws(() => ObjectPool.attachProcess(c), bad, JSON.stringify(c));
    // Where the pool is not mapped yet (a child), the route the descriptor
    // names must lead to it: a file that is no pool, no such descriptor, no
    // such process, the descriptor of another pool under this one's token.
    // A copy of the pool's very memory (its header and token included) in a
    // plain 0600 file: not a sealed memfd, so someone could shrink it under
    // the mapping (a SIGBUS in the victim): refused.
    const copyFile = `${file}-copy`;
    fs.writeFileSync(copyFile, fs.readFileSync(`/proc/self/fd/${d.fd}`), { mode: 0o600 });
    const copyFd = fs.openSync(copyFile, 'r+');
    const routes = [{ ...d, fd: copyFd }, { ...d, fd }, { ...d, fd: 0 }, { ...d, fd: 99999 }, { ...d, pid: 2 ** 22 - 1 }, { ...other.processDescriptor, token: d.token }];
    const c = child(routes, 'try');
    const { codes } = await c.next('tried');
    t.deepEqual(codes, routes.map(() => 'ERR_OBJPOOL_BAD_DESCRIPTOR'));
    fs.closeSync(fd);
    fs.unlinkSync(file);
    fs.closeSync(copyFd);
    fs.unlinkSync(copyFile);
    // The pool is intact, and a right descriptor still attaches.
    const v = ObjectPool.attach(JSON.parse(JSON.stringify(d)));
    t.is(v.capacity, 8);
    t.true(checkAll(t, pool, { what: 'after the forged descriptors' }));
    await pool.close();
    await other.close();
  });

  test('a process-shared pool: memory of its owner only (mode 0600); a process of another user gets ERR_OBJPOOL_ACCESS', async (t) => {
    const pool = new ObjectPool({ capacity: 4, objectSize: 32, processShared: true });
    const d = pool.processDescriptor;
    const st = fs.fstatSync(d.fd);
    t.is(st.mode & 0o777, 0o600, 'mode 0600');
    t.is(st.uid, process.getuid());
    t.regex(fs.readlinkSync(`/proc/self/fd/${d.fd}`), /^\/memfd:objpool/, 'a memfd: no name in any file system');
    t.true(process.getuid() === 0, 'this check runs as root (as CI does), to start a process as nobody');
    const m = lastJson(await run(process.execPath, [CHILD, JSON.stringify(d), 'attach'], { uid: 65534, gid: 65534 }));
    t.is(m.type, 'error');
    t.is(m.code, 'ERR_OBJPOOL_ACCESS', m.message);
    t.true(checkAll(t, pool, { what: 'after the refused attach' }));
    await pool.close();
  });

  test('a process-shared pool: close() by its creator releases every object once, those another process returns late included', async (t) => {
    const pool = new ObjectPool({ capacity: 16, objectSize: 8, processShared: true });
    const c = child(pool.processDescriptor, 'hold', 4);
    const { held } = await c.next('held');
    const released = [];
    const closing = pool.close((buf, info) => released.push(info.handle));
    await new Promise((r) => setTimeout(r, 50));
    t.is(released.length, 12, 'what was in the pool, at once');
    // The child dies holding 4: they come back, and close() settles.
    c.proc.kill('SIGKILL');
    await closing;
    t.is(released.length, 16);
    t.is(new Set(released).size, 16, 'each once');
    t.true(held.every((h) => released.includes(h)));
  });

  // What another process holds keeps nothing in this one alive: a pending
  // close() must (under qemu-user the child was reaped before the watcher's
  // 100 ms tick took its objects back, the event loop emptied, and close()
  // never settled). Here the child is no handle of the closer's (unref'd,
  // no IPC), holds 4 objects and returns them 500 ms after the close; the
  // closer has nothing else to keep it alive.
  test('a process-shared pool: a pending close() keeps its process alive until another process returns what it held', async (t) => {
    const script = `
      const { ObjectPool } = require(${JSON.stringify(path.join(__dirname, '..'))});
      const { spawn } = require('node:child_process');
      const pool = new ObjectPool({ capacity: 8, objectSize: 8, processShared: true, cache: 0 });
      const holder = \`
        const { ObjectPool } = require(\${JSON.stringify(${JSON.stringify(path.join(__dirname, '..'))})});
        const view = ObjectPool.attachProcess(JSON.parse(process.argv[1]));
        const held = [view.pop(), view.pop(), view.pop(), view.pop()];
        setTimeout(() => { for (const h of held) view.push(h); }, 500);\`;
      const c = spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', process.execPath, '-e', holder, JSON.stringify(pool.processDescriptor)], { stdio: 'ignore' });
      c.unref();
      const released = [];
      const wait = setInterval(() => {
        if (pool.stats().inUse !== 4) return;
        clearInterval(wait);
        pool.close((buf, info) => released.push(info.handle)).then(() => console.log(JSON.stringify({ settled: true, released: released.length })));
      }, 5);
      process.on('exit', () => { if (released.length < 8) console.log(JSON.stringify({ settled: false, released: released.length })); });`;
    const r = lastJson(await run(process.execPath, ['-e', script]));
    t.deepEqual(r, { settled: true, released: 8 });
  });

  // ... and only then: what this process holds (here, or in a worker
  // thread of it) keeps it alive no more than a thread pool's close does.
  test('a process-shared pool: a pending close() does not keep its process alive for what this process holds itself', async (t) => {
    const script = `
      const { ObjectPool } = require(${JSON.stringify(path.join(__dirname, '..'))});
      const { Worker } = require('node:worker_threads');
      const pool = new ObjectPool({ capacity: 8, objectSize: 8, processShared: true });
      pool.pop();
      const w = new Worker('const { workerData } = require("node:worker_threads"); const { ObjectPool } = require(' + JSON.stringify(${JSON.stringify(path.join(__dirname, '..'))}) + '); ObjectPool.attachProcess(workerData).pop();', { eval: true, workerData: pool.processDescriptor });
      w.on('exit', () => {
        let settled = false;
        pool.close().then(() => { settled = true; });
        process.on('exit', () => console.log(JSON.stringify({ settled, inUse: pool.stats().inUse })));
      });`;
    const out = await run(process.execPath, ['-e', script], { timeout: 20000 });
    t.is(out.signal, null, 'it ended by itself');
    t.deepEqual(lastJson(out), { settled: false, inUse: 2 });
  });

  test('a process-shared pool: no memory is left behind once the pool is closed and every process has let go', async (t) => {
    // In a process of its own: the segment goes with the last view, which
    // collection decides; --expose-gc makes it now.
    const script = `
      const { ObjectPool } = require(${JSON.stringify(path.join(__dirname, '..'))});
      const fs = require('node:fs');
      const memfds = () => fs.readdirSync('/proc/self/fd').filter((f) => { try { return fs.readlinkSync('/proc/self/fd/' + f).startsWith('/memfd:objpool'); } catch { return false; } }).length;
      (async () => {
        let pool = new ObjectPool({ capacity: 8, objectSize: 8, processShared: true });
        const during = memfds();
        let view = ObjectPool.attachProcess(pool.processDescriptor);
        view.push(view.pop());
        await pool.close();
        pool = view = null;
        for (let i = 0; i < 10; i++) { gc(); await new Promise((r) => setTimeout(r, 20)); }
        console.log(JSON.stringify({ during, after: memfds() }));
      })();`;
    const r = lastJson(await run(process.execPath, ['--expose-gc', '-e', script]));
    t.deepEqual(r, { during: 1, after: 0 });
    // The children of the other tests died or exited: a memfd lives only as
    // long as a process has it, so the kernel freed theirs (none of ours is open here).
    const ours = fs.readdirSync('/proc/self/fd').filter((f) => { try { return fs.readlinkSync(`/proc/self/fd/${f}`).startsWith('/memfd:objpool'); } catch { return false; } });
    t.true(ours.length <= 8, 'only the pools of this test file that are still reachable');
  });

  test('a process-shared pool: a worker thread attaches the process descriptor to the same memory; a lying descriptor is read once', async (t) => {
    const { Worker } = require('node:worker_threads');
    const pool = new ObjectPool({ capacity: 16, objectSize: 32, processShared: true, cache: 0 });
    const d = pool.processDescriptor;
    const h = pool.pop();
    pool.buffer(h).fill(0x77);
    const w = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      const { ObjectPool } = require(${JSON.stringify(path.join(__dirname, '..'))});
      const pool = ObjectPool.attachProcess(workerData.d);
      const byte = pool.buffer(workerData.h)[5];
      pool.push(workerData.h);
      const mine = pool.pop();
      parentPort.postMessage({ byte, mine });`, { eval: true, workerData: { d, h } });
    const exited = new Promise((r) => w.once('exit', r));
    const m = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
    await exited;
    t.is(m.byte, 0x77, 'the same bytes');
    t.is(pool.stats().inUse, 1, 'the worker holds one object after it ended: what a thread held is not taken back while its process lives');
    pool.push(m.mine);
    // A descriptor whose getters answer differently on each read is read once.
    let reads = 0;
    const lying = { ...d, get capacity() { return reads++ === 0 ? d.capacity : 999; } };
    t.is(ObjectPool.attachProcess(lying).capacity, d.capacity);
    t.is(reads, 1);
    await pool.close();
  });

  // ArrayBuffer.prototype.transfer() detaches the arena's ArrayBuffer in JS
  // (Node 22 on; Node 20 with --harmony-rab-gsab-transfer, so the check runs
  // on every version). Native code holds the memory itself: nothing there
  // changes. This instance makes no Buffers any more, and a failed acquire
  // or lease takes nothing (found by a review: each took an object and lost
  // it, and buffer() of a cached handle gave an empty Buffer).
  test('a process-shared pool: after transfer() detached the arena, acquire, lease and buffer refuse with a code and take nothing', (t) => {
    const script = `
      const { ObjectPool } = require(${JSON.stringify(path.join(__dirname, '..'))});
      const pool = new ObjectPool({ capacity: 8, objectSize: 32, processShared: true, cache: 0 });
      const code = (f) => { try { f(); return 'no error'; } catch (e) { return e.code; } };
      const k = pool.pop();
      const kView = pool.buffer(k).subarray(0, 8);
      const cached = pool.pop();
      pool.buffer(cached);
      pool.push(cached);
      const ab = pool.buffer(k).buffer;
      const moved = ab.transfer();
      const r = { detached: ab.byteLength === 0, movedBytes: moved.byteLength };
      r.acquire = code(() => pool.acquire());
      r.inUseAfterAcquire = pool.stats().inUse;
      r.lease = code(() => pool.lease());
      r.inUseAfterLease = pool.stats().inUse;
      r.cachedBuffer = code(() => pool.buffer(cached));
      r.unseenBuffer = code(() => pool.buffer(7 === k || 7 === cached ? 6 : 7));
      r.releaseDetachedView = code(() => pool.release(kView));
      pool.release(new Uint8Array(moved, k * pool.stride, 8));
      const all = new Set();
      for (let h; (h = pool.pop()) >= 0;) all.add(h);
      r.back = all.size;
      pool.acquireAsync().then(() => { r.async = 'no error'; }, (e) => { r.async = e.code; }).then(() => {
        r.inUseAfterAsync = pool.stats().inUse;
        console.log(JSON.stringify(r));
      });
      for (const h of all) pool.push(h);`;
    const flags = typeof ArrayBuffer.prototype.transfer === 'function' ? [] : ['--harmony-rab-gsab-transfer'];
    const r = JSON.parse(execFileSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8', timeout: 30_000 }));
    t.like(r, { detached: true, movedBytes: 8 * 32 });
    t.is(r.acquire, 'ERR_OBJPOOL_UNSUPPORTED');
    t.is(r.inUseAfterAcquire, 1, 'only k is out: the failed acquire took nothing');
    t.is(r.lease, 'ERR_OBJPOOL_UNSUPPORTED');
    t.is(r.inUseAfterLease, 1);
    t.is(r.cachedBuffer, 'ERR_OBJPOOL_UNSUPPORTED', 'no empty Buffer for a cached handle');
    t.is(r.unseenBuffer, 'ERR_OBJPOOL_UNSUPPORTED', 'no new Buffer over a detached arena');
    t.is(r.releaseDetachedView, 'ERR_OBJPOOL_FOREIGN_BUFFER', 'a detached view is not object 0');
    t.is(r.back, 8, 'every object back once, k through a view of the moved memory');
    t.is(r.async, 'ERR_OBJPOOL_UNSUPPORTED');
    t.is(r.inUseAfterAsync, 0);
  });

  // The harness itself: a child's 'exit' can come before its IPC channel's
  // 'disconnect' (here forced: the channel lives on in a grandchild for
  // 2 s). next() must neither spin (its race settled at once on the
  // resolved exit and starved the event loop until its deadline: timers
  // stopped, no message or 'disconnect' was read; the Node 26 failures of
  // a full run looked like that) nor wait out its deadline.
  test('the process harness: a child that ended is reported once its channel closes, and the event loop runs meanwhile', async (t) => {
    const k = child(null, 'orphan-ipc', '2');
    await k.exited;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 50);
    const t0 = Date.now();
    const err = await k.next('never', 10000).then(() => null, (e) => e);
    clearInterval(timer);
    const secs = (Date.now() - t0) / 1000;
    t.regex(err?.message ?? '', /it ended \(exit code null, signal SIGKILL\)/);
    t.true(secs < 8, `reported after ${secs} s, not at the 10 s deadline`);
    t.true(ticks >= 10, `the event loop ran while next() waited (${ticks} ticks of 50 ms in ${secs} s)`);
  });

  // The watcher reads /proc/<pid>/stat through a descriptor of /proc it
  // keeps. User code can close a descriptor it does not own, and the
  // number can come back as another directory, where "<pid>/stat" is
  // missing (found by a review: the live child was then taken for dead).
  test('a process-shared pool: a /proc descriptor closed by user code and its number reused takes no live process for dead', async (t) => {
    const script = `
      const { ObjectPool } = require(${JSON.stringify(path.join(__dirname, '..'))});
      const fs = require('node:fs');
      const { fork } = require('node:child_process');
      const pool = new ObjectPool({ capacity: 8, objectSize: 8, processShared: true, cache: 0 });
      const c = fork(${JSON.stringify(CHILD)}, [JSON.stringify(pool.processDescriptor), 'hold', '2'], { execPath: '/usr/bin/setpriv', execArgv: ['--pdeathsig', 'KILL', '--', process.execPath] });
      c.on('message', async (m) => {
        if (m.type !== 'held') return;
        await new Promise((r) => setTimeout(r, 300));
        const mine = fs.readdirSync('/proc/self/fd').filter((f) => { try { return fs.readlinkSync('/proc/self/fd/' + f) === '/proc'; } catch { return false; } });
        for (const f of mine) fs.closeSync(Number(f));
        const dirs = [];
        for (let i = 0; i < 4; i++) dirs.push(fs.openSync('/tmp', 'r'));
        await new Promise((r) => setTimeout(r, 500));
        const s = pool.stats();
        console.log(JSON.stringify({ found: mine.length, inUse: s.inUse, recovered: s.recovered }));
        c.kill('SIGKILL');
        process.exit(0);
      });`;
    const r = lastJson(await run(process.execPath, ['-e', script]));
    t.is(r.found, 1, 'the watcher keeps one descriptor of /proc');
    t.is(r.recovered, 0, 'nothing taken back from the live child');
    t.is(r.inUse, 2);
  });

  test('a process-shared pool: a watcher out of file descriptors takes no live process for dead', async (t) => {
    // In a process of its own with 256 descriptors at most: it fills them
    // for half a second, while a child holds two objects; its watcher's
    // reads of /proc fail (EMFILE) meanwhile, which says nothing of the child.
    const script = `
      const { ObjectPool } = require(${JSON.stringify(path.join(__dirname, '..'))});
      const fs = require('node:fs');
      const { fork } = require('node:child_process');
      const pool = new ObjectPool({ capacity: 8, objectSize: 8, processShared: true, cache: 0 });
      // Tied to this process, as the harness ties its children.
      const c = fork(${JSON.stringify(CHILD)}, [JSON.stringify(pool.processDescriptor), 'hold', '2'], { execPath: '/usr/bin/setpriv', execArgv: ['--pdeathsig', 'KILL', '--', process.execPath] });
      c.on('message', async (m) => {
        if (m.type !== 'held') return;
        const fds = [];
        try { for (;;) fds.push(fs.openSync('/dev/null', 'r')); } catch {}
        await new Promise((r) => setTimeout(r, 500));
        for (const f of fds) fs.closeSync(f);
        await new Promise((r) => setTimeout(r, 300));
        const s = pool.stats();
        console.log(JSON.stringify({ filled: fds.length, inUse: s.inUse, recovered: s.recovered }));
        c.kill('SIGKILL');
        process.exit(0);
      });`;
    const r = lastJson(await run('sh', ['-c', `ulimit -n 256 && exec "$0" -e "$1"`, process.execPath, script]));
    t.true(r.filled > 0, 'the descriptors ran out');
    t.is(r.recovered, 0, 'nothing taken back from the live child');
    t.is(r.inUse, 2);
  });

  test(`a process-shared pool: ${KILLS} SIGKILLs at random points of pops, pushes, batches, cache refills and spills lose nothing`, async (t) => {
    t.timeout(600000);
    const pool = new ObjectPool({ capacity: 256, objectSize: 64, processShared: true, zero: true, slots: 4 });
    const d = pool.processDescriptor;
    const lanes = 4;
    let kills = 0, round = 0, seed = 1;
    while (kills < KILLS) {
      round++;
      // Four processes at once, two with caches, two without; each is killed
      // at its own random moment while the others go on (so recoveries run
      // beside live processes, and a process may die while it recovers).
      const crashed = await killRound(d, lanes, (i) => ['churn', seed++, i % 2 === 0 ? 16 : 0]);
      if (crashed > 0) {
        t.fail(`round ${round}: ${crashed} processes died before they were killed`);
        break;
      }
      kills += lanes;
      // Every process of the round is dead: all comes back, zeroed.
      try {
        await until(() => pool.stats().inUse === 0 && pool.stats().cached === 0, 20000);
      } catch {
        t.fail(`round ${round}: ${JSON.stringify(pool.stats())}`);
        break;
      }
      if (!checkAll(t, pool, { zero: true, what: `round ${round} (${kills} kills)` })) break;
    }
    t.is(kills >= KILLS, true, `${kills} kills in ${round} rounds`);
    const st = pool.stats();
    t.log(`${kills} kills in ${round} rounds: ${st.recovered} objects taken back, ${st.recoveredMidOperation} of them from the middle of a list operation`);
    t.true(st.recovered > 0);
    await pool.close();
  });
}
