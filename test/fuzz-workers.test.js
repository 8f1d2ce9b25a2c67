'use strict';
// Model-based fuzzing across worker threads: one pool used by the main
// thread and by two workers, each through its own instance with its own
// cache (automatic, 0 or 1..16), checked after every call against a model
// (which handles are out, whether the pool is closed, what close released).
// Handles popped in one thread are pushed in another; stats are checked in
// every thread; any thread may close the pool, and a few calls follow.
// A handle channel of the pool, attached in every thread, is modelled as a
// FIFO queue: sends (one by one and in batches; of handles out, and refused
// ones of handles in the pool or in the channel), receives, pushes of
// handles in the channel (refused), the channel's close, the pool's close
// (which takes back what the channel holds), and the termination of an idle
// worker (a fresh one takes its place). Objects in the channel count as in
// use, exactly, in every thread.
//
// The workers are synchronous for the main thread (see
// test/fixtures/fuzz-worker.js: a SharedArrayBuffer mailbox per worker,
// Atomics.wait on both sides), so a sequence is deterministic, a failure
// shrinks to a shortest sequence of calls and is printed with the values
// that replay it:
//   OBJPOOL_FUZZ_SEED=<seed> OBJPOOL_FUZZ_PATH=<path> OBJPOOL_FUZZ_REPLAY=<replayPath> npx ava test/fuzz-workers.test.js
// Longer runs: OBJPOOL_FUZZ_STEPS (most calls per sequence, default 300) and
// OBJPOOL_FUZZ_SEEDS (sequences per pool kind, default 100).
//
// Where a cache can hide objects from another thread (an empty pop,
// popMany's count) the documented bounds are checked: pop() may find
// nothing only while every object not out could sit in the other threads'
// caches. Everywhere else (stats, close, the final count) the checks are
// exact.
//
// Between requests a worker is a thread busy in synchronous code: its event
// loop turns only at a `turn` command. After a close elsewhere, a thread
// keeps its cache until its loop turns or until its next pool call (DESIGN:
// "a thread busy in synchronous code returns its cache on its next pool
// call"); stats().cached is checked against that. A close's release callback
// runs on the closing thread; the releases that wait for other threads'
// event loops (their cache flushes, pushes that reach the closer) are
// awaited after the calls, by turning every thread's loop.
const test = require('ava');
const fc = require('fast-check');
const path = require('node:path');
const { Worker, MessageChannel, receiveMessageOnPort } = require('node:worker_threads');
const { ObjectPool } = require('..');
const { fuzzKnobs } = require('./helpers');
const { OP, OP_NAMES, CODES, MAX_HANDLES, W, MAILBOX_BYTES, ACQUIRE_MODES } = require('./fixtures/fuzz-worker');

const { steps: STEPS, runs: RUNS, replay: REPLAY } = fuzzKnobs({ steps: 300, runs: 100 });
// A worker that does not answer a request within this is stuck: a failure, not a hang.
const ANSWER_MS = 30000;
// Turns of every thread's event loop a close may take to release what came back (see settleClose).
const CLOSE_ROUNDS = 100;

const THREADS = ['main', 'w0', 'w1'];
const workerFile = path.join(__dirname, 'fixtures', 'fuzz-worker.js');

// ---- the workers ----------------------------------------------------------------

class Remote {
  constructor(index) {
    this.index = index;
    this.name = THREADS[index + 1];
    this.mb = new Int32Array(new SharedArrayBuffer(MAILBOX_BYTES));
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(workerFile, { workerData: { fuzzMailbox: this.mb.buffer, port: port2 }, transferList: [port2] });
    this.exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.worker.on('error', (e) => { this.error = e; });
    this.seq = 0;
    this.logSeen = 0;
    this.onRelease = null; // set while this worker is the closer of the current pool
  }

  async ready() {
    const r = Atomics.waitAsync(this.mb, W.READY, 0, ANSWER_MS);
    if (r.async) await r.value;
    if (Atomics.load(this.mb, W.READY) !== 1) throw new Error(`worker ${this.name} did not start: ${this.error ?? ''}`);
  }

  /** Runs one request in the worker and waits for its answer; throws what the worker threw, with its code. */
  call(op, args = [], list = null) {
    const mb = this.mb;
    this.ingest();
    mb[W.OP] = op;
    for (let i = 0; i < 3; i++) mb[W.A0 + i] = args[i] ?? 0;
    if (list) {
      if (list.length > MAX_HANDLES) throw new Error(`${list.length} handles do not fit in the mailbox`);
      mb.set(list, W.HANDLES);
    }
    const s = ++this.seq;
    // The request's words above are plain stores: this seq_cst store
    // publishes them with the number, which the worker loads before reading them.
    Atomics.store(mb, W.REQ, s);
    Atomics.notify(mb, W.REQ);
    // Until REP holds this request's number (the worker echoes it): a return
    // from Atomics.wait alone proves nothing. The load is the acquire that
    // makes the answer's words visible.
    for (let r; (r = Atomics.load(mb, W.REP)) !== s;) {
      if (r !== s - 1) throw new Error(`worker ${this.name} answered request ${r} while ${s} was pending`);
      if (Atomics.wait(mb, W.REP, r, ANSWER_MS) === 'timed-out') {
        throw new Error(`worker ${this.name} did not answer ${OP_NAMES[op]} within ${ANSWER_MS} ms ${this.error ?? ''}`);
      }
    }
    const served = Atomics.load(mb, W.SERVED);
    if (served !== s) throw new Error(`worker ${this.name} has run ${served} requests, ${s} were sent: a request ran ${served > s ? 'twice' : 'not at all'}`);
    const e = mb[W.ERR];
    if (e !== 0) {
      const code = CODES[e];
      const text = code === 'OTHER' ? receiveMessageOnPort(this.port)?.message : code;
      throw Object.assign(new Error(`in ${this.name}: ${text}`), { code });
    }
    return mb[W.RESULT];
  }

  /** Hands the releases this worker's close logged since the last call to the model. */
  ingest() {
    const len = this.mb[W.LOG_LEN];
    if (this.onRelease === null || len === this.logSeen) return;
    for (let i = this.logSeen; i < len; i++) this.onRelease(i < MAX_HANDLES ? this.mb[W.LOG + i] : -1);
    this.logSeen = len;
  }

  attach(descriptor, cache, channel) {
    this.port.postMessage({ descriptor, cache, channel });
    this.onRelease = null;
    this.logSeen = 0;
    this.mb[W.LOG_LEN] = 0;
    return this.call(OP.ATTACH);
  }

  handles(n) {
    return [...this.mb.subarray(W.HANDLES, W.HANDLES + Math.min(n, MAX_HANDLES))];
  }

  stats() {
    const mb = this.mb;
    return {
      capacity: mb[W.S_CAPACITY], available: mb[W.S_AVAILABLE], inUse: mb[W.S_IN_USE], cached: mb[W.S_CACHED],
      waiting: mb[W.S_WAITING], closed: mb[W.S_CLOSED] === 1, perSlotSum: mb[W.S_PER_SLOT], poolClosed: mb[W.S_POOL_CLOSED] === 1,
      chanSize: mb[W.S_CHAN_SIZE], chanClosed: mb[W.S_CHAN_CLOSED] === 1,
    };
  }

  async exit() {
    if (this.error === undefined) {
      this.mb[W.OP] = OP.EXIT;
      Atomics.store(this.mb, W.REQ, ++this.seq);
      Atomics.notify(this.mb, W.REQ);
    }
    const timer = setTimeout(() => this.worker.terminate(), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

// Each thread's view of the pool, behind one interface: main calls the pool, workers call through the mailbox.
function mainThread(pool, channel) {
  return {
    name: 'main',
    send: (h) => channel.send(h),
    sendMany: (list) => channel.sendMany(Uint32Array.from(list)),
    receive: () => channel.receive(),
    receiveMany(length) {
      const out = new Uint32Array(length);
      return [...out.subarray(0, channel.receiveMany(out))];
    },
    closeChannel: () => channel.close(),
    pop: () => pool.pop(),
    push: (h) => pool.push(h),
    popMany(length, count) {
      const out = new Uint32Array(length);
      return [...out.subarray(0, pool.popMany(out, count ?? undefined))];
    },
    pushMany: (list) => pool.pushMany(Uint32Array.from(list)),
    acquire(mode, prefix, fill) {
      const b = pool.acquire();
      if (b === null) return null;
      if (b.length !== pool.objectSize) throw new Error(`acquire: length ${b.length}, objectSize ${pool.objectSize}`);
      const h = pool.handleOf(b);
      const blank = b.every((x) => x === 0);
      b.fill(fill);
      if (pool.buffer(h)[0] !== fill) throw new Error(`buffer(${h}) does not see the bytes written through acquire()`);
      if (mode !== 'keep') pool.release(mode === 'whole' ? b : b.subarray(0, prefix % (b.length + 1)));
      return { h, blank };
    },
    stats() {
      const s = pool.stats();
      return { ...s, perSlotSum: s.perSlot.reduce((a, b) => a + b, 0), poolClosed: pool.closed, chanSize: channel.size, chanClosed: channel.closed };
    },
    peek: (h) => pool.buffer(h)[0],
    popAll() {
      const got = [];
      for (let h; (h = pool.pop()) !== -1;) got.push(h);
      return got;
    },
  };
}

function workerThread(w) {
  return {
    name: w.name,
    send: (h) => w.call(OP.SEND, [h]) === 1,
    sendMany: (list) => w.call(OP.SEND_MANY, [list.length], list),
    receive: () => w.call(OP.RECEIVE),
    receiveMany: (length) => w.handles(w.call(OP.RECEIVE_MANY, [length])),
    closeChannel: () => { w.call(OP.CHAN_CLOSE); },
    pop: () => w.call(OP.POP),
    push: (h) => { w.call(OP.PUSH, [h]); },
    popMany: (length, count) => w.handles(w.call(OP.POP_MANY, [length, count ?? -1])),
    pushMany: (list) => { w.call(OP.PUSH_MANY, [list.length], list); },
    acquire(mode, prefix, fill) {
      const h = w.call(OP.ACQUIRE, [ACQUIRE_MODES.indexOf(mode), prefix, fill]);
      return h === -1 ? null : { h, blank: w.mb[W.BLANK] === 1 };
    },
    stats: () => { w.call(OP.STATS); return w.stats(); },
    peek: (h) => w.call(OP.PEEK, [h]),
    popAll: () => w.handles(w.call(OP.POP_ALL)),
  };
}

// ---- the real system and the model ------------------------------------------

/** Builds the pool a generated configuration describes, attaches the workers to it, and builds its model. */
function setup(workers, cfg) {
  const { kind, capacity, slots, checked, zero, objectSize } = cfg;
  const cacheOf = (c) => (c === null ? {} : { cache: c });
  let pool;
  if (kind === 'own') pool = new ObjectPool({ capacity, objectSize, slots, checked, zero, ...cacheOf(cfg.caches[0]) });
  else if (kind === 'fromBuffer') {
    pool = ObjectPool.fromBuffer(new SharedArrayBuffer(capacity * 16 + cfg.slack), { objectSize: 16, slots, checked, zero, ...cacheOf(cfg.caches[0]) });
  } else {
    const mem = new SharedArrayBuffer(capacity * 8);
    pool = ObjectPool.fromBuffers(Array.from({ length: capacity }, (_, i) => new Uint8Array(mem, i * 8, 8)), { slots, checked, zero, ...cacheOf(cfg.caches[0]) });
  }
  const channel = pool.channel({ capacity: cfg.chanCapacity });
  const caches = [pool.cache, ...workers.map((w, i) => w.attach(pool.descriptor, cfg.caches[i + 1], channel.descriptor))];
  const model = {
    capacity: pool.capacity,
    objectSize: pool.objectSize,
    checked: pool.checked,
    zero,
    caches,                    // each thread's cache limit, as its instance reports it
    out: new Set(),            // handles handed out and not yet pushed back
    closed: false,
    closer: -1,
    pushedAfterClose: 0,
    released: new Set(),       // handles a close callback was given
    step: 0,
    closeFrom: cfg.closeFrom,  // close is allowed from this step on
    closedAt: -1,
    // After a close, the threads whose caches may still hold objects: every
    // thread but the closer, until its event loop turns or it makes its next
    // pool call (DESIGN: a thread busy in synchronous code returns its cache
    // on its next pool call).
    holding: [false, false, false],
    afterClose: cfg.afterClose, // calls after the close (then the sequence ends)
    chan: [],                  // the handles in the channel, oldest first (in no thread's hands: in use)
    chanCapacity: channel.capacity,
    chanClosed: false,
    terminateFrom: cfg.terminateFrom, // a worker may be terminated (once) from this step on
    terminated: false,
  };
  const real = { pool, channel, cfg, workers, threads: [mainThread(pool, channel), ...workers.map(workerThread)], closeDone: null, closeState: 0, releaseErrors: [] };
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
const name = (t) => THREADS[t];

/** Objects out of the pool: in some thread's hands, or in the channel. */
const inUse = (m) => m.out.size + m.chan.length;

/** After a refused call: nothing was taken or returned, and the channel holds what it held. */
function intact(m, r, why) {
  const s = r.pool.stats();
  if (!m.closed && s.available !== m.capacity - inUse(m)) throw new Error(`${why}: pool not intact, ${s.available} available, model ${m.capacity - inUse(m)}`);
  if (r.channel.size !== m.chan.length) throw new Error(`${why}: channel holds ${r.channel.size}, model ${m.chan.length}`);
}

function took(m, r, h, what, blank) {
  if (!Number.isInteger(h) || h < 0 || h >= m.capacity) throw new Error(`${what}: handle ${h} out of range`);
  if (m.out.has(h)) throw new Error(`${what}: handle ${h} handed out twice`);
  m.out.add(h);
  // Objects are only written while out, so with zero: true each comes back blank.
  if (m.zero && !(blank ?? r.pool.buffer(h).every((b) => b === 0))) throw new Error(`${what}: handle ${h} was not zeroed when it was pushed back`);
}

/** Most objects the caches of threads other than `t` can hold. */
function othersCache(m, t) {
  return m.caches.reduce((sum, c, i) => sum + (i === t ? 0 : c), 0);
}

/** An empty pop: allowed only when every object not out may sit in another thread's cache. */
function emptyAllowed(m, r, t, what) {
  const free = m.capacity - inUse(m);
  if (free === 0) return;
  const s = r.pool.stats();
  if (free > othersCache(m, t) || s.available !== s.cached) {
    throw new Error(`${what}@${name(t)}: empty with ${free} objects not out (${s.cached} cached, other threads may cache ${othersCache(m, t)})`);
  }
}

/** Calls go on until a few steps after a close: a thread left untouched since keeps its cache until the end. */
function live(m) {
  return !m.closed || m.step <= m.closedAt + m.afterClose;
}

/** A pool call in thread `t` that moves objects (or would: a pop refused because the pool is closed). */
function called(m, t) {
  if (m.closed) m.holding[t] = false;
}

function gaveBack(m, h) {
  m.out.delete(h);
  if (m.closed) m.pushedAfterClose++;
}

function released(m, r, h) {
  if (h < 0 || h >= m.capacity) r.releaseErrors.push(`released handle ${h}`);
  else if (m.released.has(h)) r.releaseErrors.push(`released ${h} twice`);
  if (m.out.has(h)) r.releaseErrors.push(`released ${h} while it is out`);
  m.released.add(h);
}

/** stats() in thread `t` against the model: exact while the pool is open and every other thread is idle. */
function checkStats(m, r, t, what) {
  const s = r.threads[t].stats();
  const where = `${what}@${name(t)}`;
  const caches = m.caches.reduce((a, b) => a + b, 0);
  if (s.capacity !== m.capacity) throw new Error(`${where}: stats.capacity ${s.capacity}`);
  if (s.inUse !== inUse(m)) throw new Error(`${where}: stats.inUse ${s.inUse}, model ${inUse(m)} (${m.chan.length} in the channel)`);
  if (!m.closed && s.available !== m.capacity - inUse(m)) throw new Error(`${where}: stats.available ${s.available}, model ${m.capacity - inUse(m)}`);
  if (s.chanSize !== m.chan.length) throw new Error(`${where}: channel.size ${s.chanSize}, model ${m.chan.length}`);
  if (s.chanClosed !== (m.chanClosed || m.closed)) throw new Error(`${where}: channel.closed ${s.chanClosed}, model ${m.chanClosed || m.closed}`);
  // After close, what is in the pool was pushed back since, or sits in a cache the closer has not seen flushed yet.
  if (m.closed && s.available > m.pushedAfterClose + othersCache(m, m.closer)) {
    throw new Error(`${where}: stats.available ${s.available} after close, only ${m.pushedAfterClose} pushed since and ${othersCache(m, m.closer)} in other caches at most`);
  }
  if (s.cached < 0 || s.cached > caches) throw new Error(`${where}: stats.cached ${s.cached}, the caches hold at most ${caches}`);
  if (m.closed) {
    const may = m.holding.map((h, i) => (h ? m.caches[i] : 0)).reduce((a, b) => a + b, 0);
    if (s.cached > may) {
      const which = m.holding.map((h, i) => (h ? null : name(i))).filter((x) => x !== null && x !== name(m.closer));
      throw new Error(`${where}: stats.cached ${s.cached} after close@${name(m.closer)}, but ${which.join(' and ')} made a pool call or turned its event loop since (the caches that may still hold objects: ${may})`);
    }
  }
  if (s.perSlotSum + s.cached !== s.available) throw new Error(`${where}: stats: perSlot ${s.perSlotSum} + cached ${s.cached} != available ${s.available}`);
  if (s.waiting !== 0) throw new Error(`${where}: stats.waiting ${s.waiting} with nobody waiting`);
  if (s.closed !== m.closed || s.poolClosed !== m.closed) throw new Error(`${where}: stats.closed ${s.closed}, pool.closed ${s.poolClosed}, model ${m.closed}`);
  return s;
}

// ---- commands ----------------------------------------------------------------
// Each names the thread it runs in (0 main, 1 and 2 the workers).

class Pop {
  constructor(t) { this.t = t; }
  check(m) { return live(m); }
  run(m, r) {
    m.step++;
    const th = r.threads[this.t];
    if (m.closed) {
      expectCode(() => th.pop(), 'ERR_OBJPOOL_CLOSED', `pop@${th.name} after close: `);
      return called(m, this.t);
    }
    const h = th.pop();
    if (h === -1) return emptyAllowed(m, r, this.t, 'pop');
    took(m, r, h, `pop@${th.name}`);
  }
  toString() { return `pop@${name(this.t)}`; }
}

// Push of a handle that is out, popped by whichever thread.
class Push {
  constructor(k, t) { this.k = k; this.t = t; }
  check(m) { return live(m) && m.out.size > 0; }
  run(m, r) {
    m.step++;
    const h = nth(m.out, this.k);
    r.threads[this.t].push(h);
    gaveBack(m, h);
    called(m, this.t);
  }
  toString() { return `push(out#${this.k})@${name(this.t)}`; }
}

// Push of a handle that is not out (in the pool, in some thread's cache, or released): checked pools refuse it.
class PushNotOut {
  constructor(h, t) { this.h = h; this.t = t; }
  check(m) { return live(m) && m.checked && !m.out.has(this.h % m.capacity); }
  run(m, r) {
    m.step++;
    const h = this.h % m.capacity;
    expectCode(() => r.threads[this.t].push(h), 'ERR_OBJPOOL_DOUBLE_PUSH', `push(${h})@${name(this.t)} not out: `);
    intact(m, r, 'push of a handle not out');
  }
  toString() { return `pushNotOut(${this.h})@${name(this.t)}`; }
}

class PopMany {
  constructor(length, count, t) { this.length = length; this.count = count; this.t = t; }
  check(m) { return live(m); }
  run(m, r) {
    m.step++;
    const th = r.threads[this.t];
    const count = this.count === null ? null : Math.min(this.count, this.length);
    if (m.closed) {
      expectCode(() => th.popMany(this.length, count), 'ERR_OBJPOOL_CLOSED', `popMany@${th.name} after close: `);
      if ((count ?? this.length) > 0) called(m, this.t);
      return;
    }
    const got = th.popMany(this.length, count);
    // This thread's cache counts as available; other threads' caches may hide objects.
    const want = count ?? this.length;
    const free = m.capacity - inUse(m);
    const most = Math.min(want, free);
    const least = Math.min(want, Math.max(0, free - othersCache(m, this.t)));
    if (!(got.length >= least && got.length <= most)) throw new Error(`popMany@${th.name} gave ${got.length}, model says ${least === most ? most : `${least}..${most}`}`);
    for (const h of got) took(m, r, h, `popMany@${th.name}`);
  }
  toString() { return `popMany(length ${this.length}, count ${this.count})@${name(this.t)}`; }
}

// pushMany of some handles that are out (popped anywhere), maybe with one bad entry added: all or nothing.
class PushMany {
  constructor(mask, poison, extra, t) { this.mask = mask; this.poison = poison; this.extra = extra; this.t = t; }
  check(m) {
    if (!live(m)) return false;
    if (this.poison === 'twice' || this.poison === 'notOut') return m.checked && this.handles(m).length > 0;
    return true;
  }
  handles(m) { return [...m.out].filter((_, i) => (this.mask >>> (i % 31)) & 1); }
  run(m, r) {
    m.step++;
    const th = r.threads[this.t];
    const hs = this.handles(m);
    if (this.poison === 'none') {
      th.pushMany(hs);
      for (const h of hs) gaveBack(m, h);
      if (hs.length > 0) called(m, this.t);
      return;
    }
    let bad;
    if (this.poison === 'twice') bad = hs[this.extra % hs.length];
    else if (this.poison === 'outOfRange') bad = m.capacity + this.extra;
    else {
      const notOut = [...Array(m.capacity).keys()].filter((h) => !m.out.has(h));
      if (notOut.length === 0) return;
      bad = notOut[this.extra % notOut.length];
    }
    const code = this.poison === 'outOfRange' ? 'ERR_OUT_OF_RANGE' : 'ERR_OBJPOOL_DOUBLE_PUSH';
    const list = [...hs];
    list.splice(this.extra % (list.length + 1), 0, bad);
    expectCode(() => th.pushMany(list), code, `pushMany@${th.name} with ${this.poison} entry ${bad}: `);
    intact(m, r, `refused pushMany@${th.name} (${this.poison})`);
  }
  toString() { return `pushMany(mask ${this.mask}, ${this.poison}${this.poison === 'none' ? '' : ` ${this.extra}`})@${name(this.t)}`; }
}

// acquire() and release() by view in one thread (or keep the object); the bytes written are seen in another thread.
class AcquireRelease {
  constructor(release, prefix, fill, t, seeT) { Object.assign(this, { release, prefix, fill, t, seeT }); }
  check(m) { return live(m); }
  run(m, r) {
    m.step++;
    const th = r.threads[this.t];
    if (m.closed) {
      expectCode(() => th.acquire(this.release, this.prefix, this.fill), 'ERR_OBJPOOL_CLOSED', `acquire@${th.name} after close: `);
      return called(m, this.t);
    }
    const got = th.acquire(this.release, this.prefix, this.fill);
    if (got === null) return emptyAllowed(m, r, this.t, 'acquire');
    took(m, r, got.h, `acquire@${th.name}`, got.blank);
    if (this.release !== 'keep') return gaveBack(m, got.h);
    const seen = r.threads[this.seeT].peek(got.h);
    if (seen !== this.fill) throw new Error(`buffer(${got.h})@${name(this.seeT)} reads ${seen}, ${th.name} wrote ${this.fill}`);
  }
  toString() {
    return `acquire@${name(this.t)} + ${this.release === 'keep' ? `keep (read @${name(this.seeT)})` : `release(${this.release === 'prefix' ? `prefix ${this.prefix}` : 'whole'})`}`;
  }
}

class Stats {
  constructor(t) { this.t = t; }
  check(m) { return live(m); }
  run(m, r) {
    m.step++;
    checkStats(m, r, this.t, 'stats');
  }
  toString() { return `stats@${name(this.t)}`; }
}

// A worker's event loop turns once: what other threads queued for it (its
// cache flush after a close elsewhere, the drains of its own close) runs.
// (This thread's loop turns only after the calls.)
class Turn {
  constructor(t) { this.t = t; }
  check(m) { return live(m); }
  run(m, r) {
    m.step++;
    r.workers[this.t - 1].call(OP.TURN);
    m.holding[this.t] = false;
  }
  toString() { return `turn@${name(this.t)}`; }
}

class Close {
  constructor(t) { this.t = t; }
  check(m) { return !m.closed && m.step >= m.closeFrom; }
  run(m, r) {
    m.step++;
    m.closed = true;
    m.closer = this.t;
    m.closedAt = m.step;
    m.holding = m.caches.map((c, i) => i !== this.t && c > 0);
    // What is in the pool, and what the channel held: the pool's close takes it back and releases it at once.
    const inPool = m.capacity - m.out.size;
    m.chan = [];
    let now;
    if (this.t === 0) {
      now = 0;
      r.closeDone = r.pool.close((buf, info) => {
        if (info.handle < 0) {
          if (info.element !== false) r.releaseErrors.push('the whole memory released as an element');
          return; // fromBuffer: the whole memory, last
        }
        if (buf.length !== m.objectSize || info.element !== true) r.releaseErrors.push(`released a ${buf.length}-byte view of ${info.handle}, element ${info.element}`);
        released(m, r, info.handle);
        now++;
      });
      r.closeDone.then(() => { r.closeState = 2; }, (e) => { r.closeState = 3; r.closeError = e; });
    } else {
      const w = r.workers[this.t - 1];
      w.onRelease = (h) => released(m, r, h);
      now = w.call(OP.CLOSE);
      w.ingest();
    }
    // The closer's own cache and the slots are released now; the other threads' caches when their loops turn.
    const s = this.t === 0 ? r.threads[0].stats() : r.workers[this.t - 1].stats();
    if (now !== inPool - s.cached) throw new Error(`close@${name(this.t)} released ${now} objects at once, model says ${inPool} - ${s.cached} in other threads' caches`);
    if (s.available !== s.cached) throw new Error(`close@${name(this.t)}: ${s.available - s.cached} objects left in the slots`);
    if (s.inUse !== m.out.size) throw new Error(`close@${name(this.t)}: stats.inUse ${s.inUse}, model ${m.out.size}`);
    if (r.releaseErrors.length) throw new Error(r.releaseErrors.join('; '));
  }
  toString() { return `close@${name(this.t)}`; }
}

// ---- channel commands: one channel of the pool, attached in every thread ----

const sendable = (m) => !m.closed && !m.chanClosed;

// send() of a handle that is out (held by any thread): true and in the
// channel while there is room, false (nothing changes) when full; CLOSED
// once the channel or the pool is closed.
class Send {
  constructor(k, t) { this.k = k; this.t = t; }
  check(m) { return live(m) && m.out.size > 0; }
  run(m, r) {
    m.step++;
    const th = r.threads[this.t];
    const h = nth(m.out, this.k);
    if (!sendable(m)) {
      expectCode(() => th.send(h), 'ERR_OBJPOOL_CLOSED', `send(${h})@${th.name} on a closed channel: `);
      return intact(m, r, 'send on a closed channel');
    }
    const ok = th.send(h);
    if (ok !== m.chan.length < m.chanCapacity) throw new Error(`send(${h})@${th.name} returned ${ok} with ${m.chan.length} of ${m.chanCapacity} in the channel`);
    if (!ok) return intact(m, r, 'send to a full channel');
    m.out.delete(h);
    m.chan.push(h);
  }
  toString() { return `send(out#${this.k})@${name(this.t)}`; }
}

// send() of a handle that is not the sender's to send (in the pool, in a
// cache, or in the channel): checked pools refuse it and change nothing.
class SendNotOut {
  constructor(h, t) { this.h = h; this.t = t; }
  check(m) { return live(m) && m.checked && sendable(m) && !m.out.has(this.h % m.capacity); }
  run(m, r) {
    m.step++;
    const h = this.h % m.capacity;
    expectCode(() => r.threads[this.t].send(h), 'ERR_OBJPOOL_DOUBLE_PUSH', `send(${h})@${name(this.t)} not out: `);
    intact(m, r, 'send of a handle not out');
  }
  toString() { return `sendNotOut(${this.h})@${name(this.t)}`; }
}

// push() of a handle that sits in the channel: refused (checked pools).
class PushInChannel {
  constructor(k, t) { this.k = k; this.t = t; }
  check(m) { return live(m) && m.checked && m.chan.length > 0; }
  run(m, r) {
    m.step++;
    const h = m.chan[this.k % m.chan.length];
    expectCode(() => r.threads[this.t].push(h), 'ERR_OBJPOOL_DOUBLE_PUSH', `push(${h})@${name(this.t)} in the channel: `);
    intact(m, r, 'push of a handle in the channel');
  }
  toString() { return `pushInChannel(#${this.k})@${name(this.t)}`; }
}

// sendMany() of some handles that are out: the prefix that fits.
class SendMany {
  constructor(mask, t) { this.mask = mask; this.t = t; }
  check(m) { return live(m); }
  run(m, r) {
    m.step++;
    const th = r.threads[this.t];
    const hs = [...m.out].filter((_, i) => (this.mask >>> (i % 31)) & 1);
    if (!sendable(m)) {  // refused even with nothing to send, as send() is
      expectCode(() => th.sendMany(hs), 'ERR_OBJPOOL_CLOSED', `sendMany@${th.name} on a closed channel: `);
      return intact(m, r, 'sendMany on a closed channel');
    }
    const n = th.sendMany(hs);
    const want = Math.min(hs.length, m.chanCapacity - m.chan.length);
    if (n !== want) throw new Error(`sendMany@${th.name} of ${hs.length} sent ${n}, model ${want}`);
    for (const h of hs.slice(0, n)) {
      m.out.delete(h);
      m.chan.push(h);
    }
  }
  toString() { return `sendMany(mask ${this.mask})@${name(this.t)}`; }
}

// receive(): the oldest handle, now the receiver's; -1 when empty (always,
// after the pool's close, which took everything back).
class Receive {
  constructor(t) { this.t = t; }
  check(m) { return live(m); }
  run(m, r) {
    m.step++;
    const th = r.threads[this.t];
    const h = th.receive();
    const want = m.chan.length > 0 ? m.chan[0] : -1;
    if (h !== want) throw new Error(`receive@${th.name} got ${h}, model ${want} (channel ${m.chan})`);
    if (h === -1) return;
    if (m.out.has(h)) throw new Error(`receive@${th.name}: handle ${h} is out already`);
    m.chan.shift();
    m.out.add(h);
  }
  toString() { return `receive@${name(this.t)}`; }
}

class ReceiveMany {
  constructor(length, t) { this.length = length; this.t = t; }
  check(m) { return live(m); }
  run(m, r) {
    m.step++;
    const th = r.threads[this.t];
    const got = th.receiveMany(this.length);
    const want = m.chan.slice(0, this.length);
    if (got.join() !== want.join()) throw new Error(`receiveMany(${this.length})@${th.name} got [${got}], model [${want}]`);
    for (const h of got) {
      m.chan.shift();
      m.out.add(h);
    }
  }
  toString() { return `receiveMany(${this.length})@${name(this.t)}`; }
}

class CloseChannel {
  constructor(t) { this.t = t; }
  check(m) { return live(m) && !m.chanClosed && m.step >= m.closeFrom; }
  run(m, r) {
    m.step++;
    r.threads[this.t].closeChannel();
    m.chanClosed = true;
  }
  toString() { return `closeChannel@${name(this.t)}`; }
}

// worker.terminate() of an idle worker (once a sequence, while the pool is
// open): its teardown gives its cache back and leaves the channel working;
// a fresh worker takes its place. (Terminations in the middle of a send or
// a receive: channel.test.js.)
class Terminate {
  constructor(t) { this.t = t; }
  check(m) { return !m.closed && !m.terminated && m.step >= m.terminateFrom; }
  async run(m, r) {
    m.step++;
    m.terminated = true;
    const i = this.t - 1;
    await r.workers[i].worker.terminate();
    const fresh = new Remote(i);
    await fresh.ready();
    r.workers[i] = fresh; // the shared array: later sequences use it too
    r.threads[this.t] = workerThread(fresh);
    m.caches[this.t] = fresh.attach(r.pool.descriptor, r.cfg.caches[this.t], r.channel.descriptor);
    m.holding[this.t] = false;
    checkStats(m, r, 0, `after terminate@${name(this.t)}`);
  }
  toString() { return `terminate@${name(this.t)}`; }
}

// ---- generation ----------------------------------------------------------------

const thread = fc.nat({ max: 2 });
const commands = [
  thread.map((t) => new Pop(t)),
  thread.map((t) => new Pop(t)),
  fc.tuple(fc.nat({ max: 63 }), thread).map(([k, t]) => new Push(k, t)),
  fc.tuple(fc.nat({ max: 63 }), thread).map(([k, t]) => new Push(k, t)),
  fc.tuple(fc.nat({ max: 63 }), thread).map(([h, t]) => new PushNotOut(h, t)),
  fc.tuple(fc.nat({ max: 12 }), fc.option(fc.nat({ max: 12 })), thread).map(([n, c, t]) => new PopMany(n, c, t)),
  fc.tuple(fc.nat(), fc.constantFrom('none', 'none', 'twice', 'notOut', 'outOfRange'), fc.nat({ max: 99 }), thread)
    .map(([mask, p, x, t]) => new PushMany(mask, p, x, t)),
  fc.tuple(fc.constantFrom('keep', 'whole', 'prefix'), fc.nat({ max: 64 }), fc.integer({ min: 1, max: 255 }), thread, thread)
    .map(([rel, n, f, t, u]) => new AcquireRelease(rel, n, f, t, u)),
  thread.map((t) => new Stats(t)),
  fc.nat({ max: 1 }).map((i) => new Turn(i + 1)),
  thread.map((t) => new Close(t)),
  fc.tuple(fc.nat({ max: 63 }), thread).map(([k, t]) => new Send(k, t)),
  fc.tuple(fc.nat({ max: 63 }), thread).map(([k, t]) => new Send(k, t)),
  fc.tuple(fc.nat({ max: 63 }), thread).map(([h, t]) => new SendNotOut(h, t)),
  fc.tuple(fc.nat({ max: 63 }), thread).map(([k, t]) => new PushInChannel(k, t)),
  fc.tuple(fc.nat(), thread).map(([mask, t]) => new SendMany(mask, t)),
  thread.map((t) => new Receive(t)),
  thread.map((t) => new Receive(t)),
  fc.tuple(fc.nat({ max: 12 }), thread).map(([n, t]) => new ReceiveMany(n, t)),
  thread.map((t) => new CloseChannel(t)),
  fc.nat({ max: 1 }).map((i) => new Terminate(i + 1)),
];

// A thread's cache option: automatic (null), none, or a size.
const cacheOption = fc.oneof(fc.constant(null), fc.constant(0), fc.integer({ min: 1, max: 16 }));

function config(kind) {
  return fc.record({
    kind: fc.constant(kind),
    capacity: fc.integer({ min: 1, max: 64 }),
    slots: fc.integer({ min: 1, max: 4 }),
    checked: fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, { arbitrary: fc.constant(false), weight: 1 }),
    zero: fc.oneof({ arbitrary: fc.constant(false), weight: 3 }, { arbitrary: fc.constant(true), weight: 1 }),
    objectSize: fc.integer({ min: 1, max: 32 }),
    slack: fc.nat({ max: 15 }),
    caches: fc.tuple(cacheOption, cacheOption, cacheOption),
    // Close from some step on, or never: the open pool gets most of the calls. (From step 0 up, so that
    // a failure after a close shrinks to the few calls it needs.)
    closeFrom: fc.oneof(fc.integer({ min: 0, max: Math.floor(STEPS / 2) }), fc.constant(STEPS + 1)),
    afterClose: fc.nat({ max: 12 }),
    chanCapacity: fc.integer({ min: 1, max: 8 }),
    // A worker terminated once from some step on (a third of the sequences), or never.
    terminateFrom: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 40 }), weight: 1 }, { arbitrary: fc.constant(Infinity), weight: 2 }),
    // Which threads push back what is out at the end, and the order the final pops go in.
    finalSeed: fc.nat({ max: 0xffff }),
  });
}

// After close: lets every thread's event loop turn (the workers' through a
// request each, this one's by awaiting setImmediate) until the closer has
// released every object. Each round runs what the previous one queued for
// another thread (a cache flush, then the drain it asks the closer for), so a
// close settles in a few rounds; CLOSE_ROUNDS rounds without it is a close
// that never completes (an object lost), counted in turns, not in time.
async function settleClose(m, r) {
  const state = () => (m.closer === 0 ? r.closeState : r.workers[m.closer - 1].mb[W.CLOSE_STATE]);
  for (let round = 0; ; round++) {
    for (const w of r.workers) w.call(OP.TURN);
    for (const w of r.workers) w.ingest();
    if (state() >= 2) break;
    if (round === CLOSE_ROUNDS) {
      throw new Error(`close@${name(m.closer)} not settled after ${CLOSE_ROUNDS} turns of every thread: ${m.released.size} of ${m.capacity} released, stats ${JSON.stringify(r.pool.stats())}`);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (state() === 3) throw new Error(`close@${name(m.closer)} rejected${r.closeError ? `: ${r.closeError.message}` : ''}`);
  const errors = m.closer === 0 ? 0 : r.workers[m.closer - 1].mb[W.RELEASE_ERRORS];
  if (errors) r.releaseErrors.push(`${errors} releases in ${name(m.closer)} had a wrong view or info`);
  if (r.releaseErrors.length) throw new Error(r.releaseErrors.join('; '));
  if (m.released.size !== m.capacity) throw new Error(`close@${name(m.closer)} released ${m.released.size} of ${m.capacity} objects`);
  for (let t = 0; t < 3; t++) {
    const s = checkStats(m, r, t, 'after close');
    if (s.available !== 0 || s.inUse !== 0) throw new Error(`after close@${name(t)}: ${s.available} available, ${s.inUse} in use`);
    expectCode(() => r.threads[t].pop(), 'ERR_OBJPOOL_CLOSED', `pop@${name(t)} after close: `);
  }
}

/** Runs one sequence, returns every object from random threads, then checks each comes back exactly once. */
async function sequence(workers, cfg, cmds) {
  const { model: m, real: r } = setup(workers, cfg);
  await fc.asyncModelRun(() => ({ model: m, real: r }), cmds);
  // Which calls ran (the commands that passed their check print themselves).
  for (const c of String(cmds).replace(/\s*\/\*replayPath=.*\*\//, '').split(/,(?![^(]*\))/)) {
    const k = c.replace(/[(@].*$/, '');
    if (k) tally.set(k, (tally.get(k) ?? 0) + 1);
  }
  let x = cfg.finalSeed;
  // What the channel still holds is received, in order, by random threads.
  while (m.chan.length > 0) {
    x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff;
    const h = r.threads[x % 3].receive();
    if (h !== m.chan[0]) throw new Error(`final receive got ${h}, model ${m.chan[0]}`);
    m.chan.shift();
    m.out.add(h);
  }
  for (const h of [...m.out]) {
    x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff;
    const t = x % 3;
    r.threads[t].push(h);
    gaveBack(m, h);
    called(m, t);
  }
  if (m.closed) {
    for (let t = 0; t < 3; t++) checkStats(m, r, t, 'final');
    return settleClose(m, r);
  }
  for (let t = 0; t < 3; t++) checkStats(m, r, t, 'final');
  // Every thread pops until it finds nothing: its cache first, then the
  // slots; the threads after it then find only what their caches held.
  const got = [];
  for (let i = 0; i < 3; i++) got.push(...r.threads[(cfg.finalSeed + i) % 3].popAll());
  const unique = new Set(got);
  if (unique.size !== got.length) throw new Error(`final: ${got.length - unique.size} handles popped twice`);
  if (got.some((h) => !Number.isInteger(h) || h < 0 || h >= m.capacity)) throw new Error(`final: a handle out of range in ${got}`);
  if (got.length !== m.capacity) throw new Error(`final: ${got.length} of ${m.capacity} objects came back`);
}

let workers = [];
// Calls run, by kind, over every sequence of a test (logged: a kind that never runs tests nothing).
const tally = new Map();

test.before(async () => {
  workers = [new Remote(0), new Remote(1)];
  await Promise.all(workers.map((w) => w.ready()));
});

test.after.always(async () => {
  await Promise.all(workers.map((w) => w.exit()));
});

// The harness itself: a notify that comes late (after the request it
// announced was served) or with nothing new must not run a request again.
// Each worker is blocked in its serve loop when the notifies come.
test.serial('harness: late and spurious notifies of the mailbox run no request twice', async (t) => {
  const pool = new ObjectPool({ capacity: 8, objectSize: 16, slots: 1, cache: 0 });
  const [w0, w1] = workers;
  const channel = pool.channel({ capacity: 2 });
  for (const w of workers) w.attach(pool.descriptor, 0, channel.descriptor);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const h = workerThread(w0).pop();
  t.true(h >= 0);
  for (let i = 0; i < 5; i++) {
    await sleep(10); // w0 is back in Atomics.wait on REQ by now
    t.is(Atomics.notify(w0.mb, W.REQ), 1, 'the worker was blocked on REQ: the notify woke it');
  }
  await sleep(20);
  t.is(Atomics.load(w0.mb, W.SERVED), w0.seq, 'every request ran exactly once');
  t.is(Atomics.load(w0.mb, W.REP), w0.seq);
  t.is(workerThread(w1).stats().inUse, 1, 'one POP, one object out');
  t.is(pool.stats().inUse, 1);
  workerThread(w1).push(h);
  t.is(pool.stats().inUse, 0);
});

for (const kind of ['own', 'fromBuffer', 'fromBuffers']) {
  test.serial(`fuzz across threads: ${kind} pools (${RUNS} sequences of up to ${STEPS} calls)`, async (t) => {
    const property = fc.asyncProperty(config(kind), fc.commands(commands, { maxCommands: STEPS, size: 'max', replayPath: REPLAY?.replayPath }),
      (cfg, cmds) => sequence(workers, cfg, cmds));
    const params = REPLAY ? { seed: REPLAY.seed, path: REPLAY.path, endOnFailure: true } : { numRuns: RUNS };
    tally.clear();
    const result = await fc.check(property, params);
    t.log(`calls run: ${[...tally].map(([k, n]) => `${k} ${n}`).join(', ')}`);
    if (!result.failed) return t.pass();
    const [cfg, cmds] = result.counterexample ?? [];
    const calls = String(cmds);
    const replayPath = /replayPath="([^"]*)"/.exec(calls)?.[1] ?? '';
    t.fail([
      `${result.errorInstance?.message ?? result.error}`,
      `pool: ${JSON.stringify(cfg)}`,
      `calls (shrunk ${result.numShrinks} times): ${calls.replace(/\s*\/\*replayPath=.*\*\//, '')}`,
      `replay: OBJPOOL_FUZZ_SEED=${result.seed} OBJPOOL_FUZZ_PATH=${result.counterexamplePath} OBJPOOL_FUZZ_REPLAY=${replayPath} npx ava test/fuzz-workers.test.js --match '*${kind} pools*'`,
    ].join('\n'));
  });
}
