'use strict';
// Handle channels (pool.channel()) against postMessage between threads, and
// against a plain JS Vyukov queue in a SharedArrayBuffer (no pool, no
// ownership: the floor). Three tables, all measured in one run:
//   - one way (the main table): a worker sends, this thread receives, both
//     busy (spinning when empty or full); ns per handle;
//   - ping-pong: ns per round trip, awaiting on both sides;
//   - the hand-off added to a pop+push pair: ns per handle.
// Handles are real: popped from a checked pool by the sender, pushed back by
// the receiver. The implementations of a group are interleaved round by round
// (bench/lib.js interleave).
const path = require('node:path');
const { Worker, MessageChannel } = require('node:worker_threads');
const { ObjectPool } = require('../..');
const { SabQueue, SabRing, SPINS, miss } = require('./sab-queue');
const { interleave, summary, sleep } = require('../lib');

const POST = 'postMessage(handle), one by one';
const POST32 = 'postMessage(Uint32Array of 32 handles)';
const CHAN = 'channel send / receive, one by one';
const MANY = 'channel sendMany / receiveMany, batches of 32';
const MPMC = 'channel, 2 sender + 2 receiver workers (aggregate)';
const FLOOR = 'plain JS Vyukov queue over a SAB, no pool (floor)';
const RING_FLOOR = 'plain JS SPSC ring over a SAB, no pool (the goal)';

const PP_POST = 'postMessage ping-pong';
const PP_CHAN = 'channel ping-pong, receiveAsync on both sides';
const PP_WAIT = 'SAB word ping-pong, Atomics.waitAsync on both sides';

const PAIR = 'pop + push, one thread';
const LOCAL = 'pop + send + receive + push, one thread';
const HANDOFF = 'pop + send -> receive + push, two threads (= one by one above)';
const HANDOFF_FLOOR = 'pop + JS Vyukov send -> receive + push, two threads';
const HANDOFF_RING = 'pop + JS SPSC ring send -> receive + push, two threads';
const HANDOFF_UNCHECKED = 'pop + send -> receive + push, two threads, unchecked pool';
const PAIR32 = 'popMany + pushMany (32), one thread';
const LOCAL32 = 'popMany + sendMany + receiveMany + pushMany (32), one thread';
const HANDOFF32 = 'popMany + sendMany -> receiveMany + pushMany (32), two threads (= batches above)';
// The channel's own cost: handles that stay out of the pool, going round
// between this thread and a worker through two channels (no pool call in
// the loop); and the same calls in one thread, where no cache line moves.
const CIRC = 'channel only: send / receive, handles going round two threads, per hop';
const CIRC32 = 'channel only: sendMany / receiveMany (32), handles going round two threads, per hop';
const SELF = 'channel only: send + receive, one thread';
const SELF32 = 'channel only: sendMany + receiveMany (32), one thread';

function startWorker(workerData, transferList) {
  const w = new Worker(path.join(__dirname, 'channel-worker.js'), { workerData, transferList });
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    w.once('message', () => resolve(w));
  });
}

// Runs one command in worker `w`; resolves when it is done.
function command(w, op, n) {
  return new Promise((resolve, reject) => {
    w.once('message', (m) => (m.error ? reject(new Error(`worker: ${m.error}`)) : resolve()));
    w.postMessage({ op, n });
  });
}

module.exports = {
  name: 'channel',
  title: 'handle channels, one way: ns per handle, a worker sends, this thread receives (both busy)',
  baseline: POST,
  // ops: handles per round (postMessage rows fewer, see scale); round trips: ops / 200.
  defaults: { ops: 400_000, rounds: 7 },
  async run({ ops, rounds }) {
    const pool = new ObjectPool({ capacity: 4096, objectSize: 64 });
    const loose = new ObjectPool({ capacity: 4096, objectSize: 64, checked: false });
    const ch = {
      one: pool.channel({ capacity: 1024 }),
      mpmc: pool.channel({ capacity: 1024 }),
      ping: pool.channel({ capacity: 16 }),
      pong: pool.channel({ capacity: 16 }),
      local: pool.channel({ capacity: 1024 }),
      unchecked: loose.channel({ capacity: 1024 }),
      fwd: pool.channel({ capacity: 1024 }),
      back: pool.channel({ capacity: 1024 }),
    };
    const floorSab = SabQueue.create(1024);
    const floor = new SabQueue(floorSab);
    // Two bare rings (each one's positions are its instances' own: one a side).
    const ringSab = SabRing.create(1024), ringPoolSab = SabRing.create(1024);
    const ring = new SabRing(ringSab), ringPool = new SabRing(ringPoolSab);
    const words = new Int32Array(new SharedArrayBuffer(8));
    const failed = new Int32Array(new SharedArrayBuffer(4));
    const { port1, port2 } = new MessageChannel();
    const shared = {
      pool: pool.descriptor, unchecked: loose.descriptor, floor: floorSab, ring: ringSab, ringPool: ringPoolSab, words: words.buffer, failed: failed.buffer,
      chans: Object.fromEntries(Object.entries(ch).filter(([k]) => k !== 'local').map(([k, c]) => [k, c.descriptor])),
    };
    const workers = [];
    try {
      workers.push(await startWorker({ ...shared, port: port2 }, [port2]));
      for (let i = 1; i < 4; i++) workers.push(await startWorker(shared));
      const [w0, w1, w2, w3] = workers;

      // Handles and batches arriving on the postMessage port.
      let onData = () => {};
      port1.on('message', (m) => onData(m));
      const arrivals = (n) => new Promise((resolve) => {
        let got = 0;
        onData = (m) => {
          if (typeof m === 'number') { pool.push(m); got++; } else { pool.pushMany(m, m.length); got += m.length; }
          if (got === n) resolve();
        };
      });
      // A failed try (see miss); stops if a worker failed.
      const missed = (idle) => {
        if (idle === SPINS - 1 && Atomics.load(failed, 0) !== 0) throw new Error('a worker failed');
        return miss(idle);
      };
      // Receives n handles one by one from c, spinning while it is empty.
      const receiveEach = (p, c, n) => {
        for (let got = 0, idle = 0; got < n;) {
          const h = c.receive();
          if (h >= 0) { p.push(h); got++; idle = 0; } else idle = missed(idle);
        }
      };

      const oneWay = {
        [POST]: {
          scale: 20,
          async run(n) { const got = arrivals(n); await command(w0, 'post', n); await got; },
        },
        [POST32]: {
          scale: 2,
          async run(n) { const got = arrivals(n); await command(w0, 'post32', n); await got; },
        },
        [CHAN]: {
          async run(n) { const done = command(w0, 'send', n); receiveEach(pool, ch.one, n); await done; },
        },
        [MANY]: {
          scale: 0.25,
          async run(n) {
            const done = command(w0, 'sendMany', n);
            const out = new Uint32Array(32);
            for (let got = 0, idle = 0; got < n;) {
              const k = ch.one.receiveMany(out);
              if (k > 0) { pool.pushMany(out, k); got += k; idle = 0; } else idle = missed(idle);
            }
            await done;
          },
        },
        [MPMC]: {
          async run(n) {
            const a = n >> 1, b = n - a;
            await Promise.all([command(w0, 'mpmcSend', a), command(w1, 'mpmcSend', b), command(w2, 'mpmcReceive', a), command(w3, 'mpmcReceive', b)]);
          },
        },
        [FLOOR]: {
          async run(n) {
            const done = command(w0, 'floor', n);
            for (let got = 0, idle = 0; got < n;) if (floor.receive() >= 0) { got++; idle = 0; } else idle = missed(idle);
            await done;
          },
        },
        [RING_FLOOR]: {
          async run(n) {
            const done = command(w0, 'ring', n);
            for (let got = 0, idle = 0; got < n;) if (ring.receive() >= 0) { got++; idle = 0; } else idle = missed(idle);
            await done;
          },
        },
        [PAIR]: {
          run(n) { for (let i = 0; i < n; i++) pool.push(pool.pop()); },
        },
        [LOCAL]: {
          run(n) {
            const c = ch.local;
            for (let i = 0; i < n; i++) { c.send(pool.pop()); pool.push(c.receive()); }
          },
        },
        [PAIR32]: {
          scale: 0.5,
          run(n) {
            const out = new Uint32Array(32);
            for (let i = 0; i < n; i += 32) pool.pushMany(out, pool.popMany(out));
          },
        },
        [LOCAL32]: {
          scale: 0.5,
          run(n) {
            const c = ch.local;
            const out = new Uint32Array(32);
            for (let i = 0; i < n; i += 32) {
              c.sendMany(out, pool.popMany(out));
              pool.pushMany(out, c.receiveMany(out));
            }
          },
        },
        // 256 handles go round (popped once, pushed back at the end): this
        // thread sends them through fwd, the worker sends each back through
        // back as it arrives. A hop is one handle through one channel.
        [CIRC]: {
          async run(n) {
            let pre = 0;
            for (let h; pre < 256 && (h = pool.pop()) >= 0; pre++) ch.fwd.send(h);
            const trips = Math.ceil(n / 2), total = pre + trips;
            const done = command(w0, 'circulate', total);
            for (let received = 0, resent = 0, idle = 0; received < total;) {
              const h = ch.back.receive();
              if (h < 0) { idle = missed(idle); continue; }
              received++;
              idle = 0;
              if (resent < trips) { while (!ch.fwd.send(h)) idle = missed(idle); resent++; } else pool.push(h);
            }
            await done;
          },
        },
        [CIRC32]: {
          scale: 0.25,
          async run(n) {
            const out = new Uint32Array(32);
            let pre = 0;
            for (let k = 0; k < 8; k++) { const m = pool.popMany(out); ch.fwd.sendMany(out, m); pre += m; }
            const trips = Math.ceil(n / 2), total = pre + trips;
            const done = command(w0, 'circulate32', total);
            for (let received = 0, resent = 0, idle = 0; received < total;) {
              const k = ch.back.receiveMany(out);
              if (k === 0) { idle = missed(idle); continue; }
              received += k;
              idle = 0;
              const r = Math.min(k, trips - resent);
              for (let at = 0; at < r;) { const m = ch.fwd.sendMany(at === 0 ? out : out.subarray(at), r - at); at += m; if (m === 0) idle = missed(idle); }
              resent += r;
              if (k > r) pool.pushMany(out.subarray(r), k - r);
            }
            await done;
          },
        },
        [SELF]: {
          run(n) {
            const c = ch.local;
            let h = pool.pop();
            for (let i = 0; i < n; i++) { c.send(h); h = c.receive(); }
            pool.push(h);
          },
        },
        [SELF32]: {
          scale: 0.5,
          run(n) {
            const c = ch.local;
            const out = new Uint32Array(32);
            const k = pool.popMany(out);
            for (let i = 0; i < n; i += 32) { c.sendMany(out, k); c.receiveMany(out, k); }
            pool.pushMany(out, k);
          },
        },
        [HANDOFF_FLOOR]: {
          async run(n) { const done = command(w0, 'floorPool', n); receiveEach(pool, floor, n); await done; },
        },
        [HANDOFF_RING]: {
          async run(n) { const done = command(w0, 'ringPool', n); receiveEach(pool, ringPool, n); await done; },
        },
        [HANDOFF_UNCHECKED]: {
          async run(n) { const done = command(w0, 'sendUnchecked', n); receiveEach(loose, ch.unchecked, n); await done; },
        },
      };
      const pingPong = {
        [PP_POST]: {
          run(n) {
            return new Promise((resolve) => {
              let i = 0;
              onData = (h) => { if (++i < n) port1.postMessage(h); else { pool.push(h); resolve(); } };
              port1.postMessage(pool.pop());
            });
          },
        },
        [PP_CHAN]: {
          async run(n) {
            const done = command(w0, 'pingChannel', n);
            let h = pool.pop();
            for (let i = 0; i < n; i++) {
              ch.ping.send(h);
              h = await ch.pong.receiveAsync();
            }
            pool.push(h);
            await done;
          },
        },
        [PP_WAIT]: {
          async run(n) {
            const done = command(w0, 'pingWait', n);
            let v = Atomics.load(words, 0);
            for (let i = 0; i < n; i++) {
              Atomics.store(words, 0, ++v);
              Atomics.notify(words, 0);
              while (Atomics.load(words, 1) !== v) {
                const r = Atomics.waitAsync(words, 1, v - 1);
                if (r.async) await r.value;
              }
            }
            await done;
          },
        },
      };

      const s1 = await interleave(oneWay, { ops, rounds });
      const trips = Math.max(100, Math.round(ops / 200));
      // Process CPU (all threads) per round trip, timed runs only.
      const cpu = {};
      for (const [k, impl] of Object.entries(pingPong)) {
        const run = impl.run;
        cpu[k] = [];
        impl.run = async (n) => {
          const c0 = process.cpuUsage();
          await run(n);
          const c = process.cpuUsage(c0);
          cpu[k].push(((c.user + c.system) * 1000) / n);
        };
      }
      const s2 = await interleave(pingPong, { ops: trips, rounds });
      for (const k of Object.keys(cpu)) cpu[k].shift(); // the warm-up

      // An idle receiveAsync: this process's CPU time while one waits 300 ms
      // (every worker idle), against a plain 300 ms timer. First a full
      // collection and a pause: V8's background threads finish their work.
      global.gc?.();
      await sleep(200);
      const idle = { wait: [], timer: [], thread: [] };
      const threadCpu = process.threadCpuUsage; // Node >= 23.9
      for (let r = 0; r < 3; r++) {
        let c0 = process.cpuUsage();
        await sleep(300);
        let c = process.cpuUsage(c0);
        idle.timer.push((c.user + c.system) / 1000);
        c0 = process.cpuUsage();
        const t0 = threadCpu?.call(process);
        const err = await ch.one.receiveAsync({ timeout: 300 }).then(() => null, (e) => e);
        c = process.cpuUsage(c0);
        if (err?.code !== 'ERR_OBJPOOL_TIMEOUT') throw new Error(`idle receiveAsync: ${err ? err.message : 'got a handle'}`);
        idle.wait.push((c.user + c.system) / 1000);
        if (t0) { const t = threadCpu.call(process, t0); idle.thread.push((t.user + t.system) / 1000); }
      }

      const pick = (from, names) => Object.fromEntries(names.map((k) => [k, from[k]]));
      const med = (xs) => summary(xs).median;
      const x = (base, v) => `${(med(base) / med(v)).toFixed(1)}x`;
      const ms = (xs) => `${med(xs).toFixed(1)} ms (max ${Math.max(...xs).toFixed(1)})`;
      const extra = {
        'channel one by one: throughput vs postMessage(handle) (target >= 6x)': x(s1[POST], s1[CHAN]),
        'sendMany/receiveMany (32): throughput vs postMessage(handle) (target >= 30x)': x(s1[POST], s1[MANY]),
        'channel one by one vs the bare JS Vyukov queue (target <= 1.3x) / the bare JS SPSC ring (the goal)': `${(med(s1[CHAN]) / med(s1[FLOOR])).toFixed(2)}x / ${(med(s1[CHAN]) / med(s1[RING_FLOOR])).toFixed(2)}x`,
        'the same loop with pop and push over the bare queue / the bare ring (the floor with pool calls): channel one by one vs each': `${(med(s1[CHAN]) / med(s1[HANDOFF_FLOOR])).toFixed(2)}x / ${(med(s1[CHAN]) / med(s1[HANDOFF_RING])).toFixed(2)}x`,
        'channel ping-pong round trip vs postMessage ping-pong (goal 0.6x, must be <= 1x)': `${(med(s2[PP_CHAN]) / med(s2[PP_POST])).toFixed(2)}x`,
        'ping-pong: process CPU (all threads) per round trip, us, median: postMessage / channel / waitAsync': [PP_POST, PP_CHAN, PP_WAIT].map((k) => (med(cpu[k]) / 1000).toFixed(1)).join(' / '),
        'hand-off added to a pop+push pair: two threads (pipelined) / one thread, ns per handle': `${(med(s1[CHAN]) - med(s1[PAIR])).toFixed(1)} / ${(med(s1[LOCAL]) - med(s1[PAIR])).toFixed(1)}`,
        'hand-off added to popMany+pushMany (32): two threads (pipelined) / one thread, ns per handle': `${(med(s1[MANY]) - med(s1[PAIR32])).toFixed(1)} / ${(med(s1[LOCAL32]) - med(s1[PAIR32])).toFixed(1)}`,
        'channel only, ns per hop: one by one two threads / one thread; batches of 32 two threads / one thread': [CIRC, SELF, CIRC32, SELF32].map((k) => med(s1[k]).toFixed(1)).join(' / '),
        // Going round, each thread makes one receive and one send per round
        // trip (two hops), as the one-thread loop makes per hop: what a
        // round trip costs beyond that is cache lines moving between the
        // cores (cells, positions, state words) and waiting on them.
        'channel only: share of a round trip (2 hops, two threads) beyond one thread doing the same calls (cache lines moving between cores, and waiting on them): one by one / batches': `${(100 * (1 - med(s1[SELF]) / (2 * med(s1[CIRC])))).toFixed(0)}% / ${(100 * (1 - med(s1[SELF32]) / (2 * med(s1[CIRC32])))).toFixed(0)}%`,
        'idle receiveAsync, 300 ms: process CPU, median of 3 (target < 60 ms)': ms(idle.wait),
        ...(idle.thread.length ? { 'idle receiveAsync, 300 ms: this thread\'s CPU (process.threadCpuUsage)': ms(idle.thread) } : {}),
        'idle 300 ms timer, for reference: process CPU': ms(idle.timer),
        'round trips per ping-pong round': trips,
        'pool after the runs': JSON.stringify({ available: pool.stats().available, inUse: pool.stats().inUse, capacity: pool.capacity }),
      };
      return {
        samples: pick(s1, [POST, POST32, CHAN, MANY, MPMC, FLOOR, RING_FLOOR]),
        tables: [
          { title: 'handle channels, ping-pong between this thread and a worker: ns per round trip', baseline: PP_POST, samples: s2 },
          {
            title: 'handle channels: the hand-off added to pop+push, one by one and in batches of 32: ns per handle (same run as the one-way table)',
            baseline: PAIR,
            samples: {
              ...pick(s1, [PAIR, LOCAL]), [HANDOFF]: s1[CHAN], ...pick(s1, [HANDOFF_UNCHECKED, HANDOFF_FLOOR, HANDOFF_RING, PAIR32, LOCAL32]), [HANDOFF32]: s1[MANY],
            },
          },
          {
            title: 'handle channels, the channel alone (no pool call in the loop): ns per handle per channel hop (same run)',
            baseline: SELF,
            samples: pick(s1, [SELF, CIRC, SELF32, CIRC32]),
          },
        ],
        extra,
      };
    } finally {
      port1.close();
      await Promise.all(workers.map((w) => w.terminate()));
    }
  },
};
