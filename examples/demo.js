'use strict';
// npm start: a TCP echo server on loopback under load, once with plain reads
// (a new Buffer per read) and once with objpool's pooled reads and writes,
// alternating. The clients run in a child process, so this process is the
// server alone: its CPU time per byte and its GC events are the figures
// that carry over to other machines; loopback throughput (shown with the
// range seen) depends on the clients and the kernel as much. Every echoed
// byte is checked. Ends by itself.
//
//   DEMO_MB=256 DEMO_ROUNDS=3 DEMO_CONNECTIONS=4 npm start
const net = require('node:net');
const os = require('node:os');
const { fork } = require('node:child_process');
const { PerformanceObserver } = require('node:perf_hooks');

const MB = Number(process.env.DEMO_MB ?? 512);        // echoed per round, all connections together
const ROUNDS = Number(process.env.DEMO_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.DEMO_CONNECTIONS ?? 4);
const CHUNK = 64 * 1024;

// The data: 17 distinct 64 KiB blocks (seeded, so both processes agree),
// sent over and over. Checking an echoed chunk is a memcmp against the
// block(s) it must equal.
function makePattern() {
  const buf = Buffer.allocUnsafe(CHUNK * 17);
  let x = 0x2545f491;
  for (let i = 0; i < buf.length; i += 4) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    buf.writeUInt32LE(x, i);
  }
  return buf;
}

// ---- the client side (a child process): sends, reads the echo, checks it ----

// One client connection: sends `bytes`, reads the echo into one static
// buffer (the client is the same in both modes) and verifies it.
function client(pattern, port, bytes) {
  const blocks = Array.from({ length: 17 }, (_, i) => pattern.subarray(i * CHUNK, (i + 1) * CHUNK));
  return new Promise((resolve, reject) => {
    let received = 0;
    let bad = 0;
    const inbox = Buffer.allocUnsafe(CHUNK);
    const verify = (buf, len) => {
      let at = 0;
      while (at < len) {
        const off = (received + at) % pattern.length;
        const n = Math.min(len - at, pattern.length - off);
        if (!buf.subarray(at, at + n).equals(pattern.subarray(off, off + n))) bad++;
        at += n;
      }
      received += len;
    };
    const sock = net.connect({ port, host: '127.0.0.1', onread: { buffer: inbox, callback: (n, buf) => verify(buf, n) } }, () => {
      let sent = 0;
      let block = 0;
      const send = () => {
        while (sent < bytes) {
          const b = blocks[block];
          block = (block + 1) % blocks.length;
          sent += b.length;
          if (!sock.write(b)) return void sock.once('drain', send);
        }
        sock.end();
      };
      send();
    });
    sock.on('end', () => resolve({ received, bad }));
    sock.on('error', reject);
  });
}

if (process.argv[2] === '--clients') {
  const pattern = makePattern();
  process.on('message', async ({ port, per, connections }) => {
    const results = await Promise.all(Array.from({ length: connections }, () => client(pattern, port, per)));
    process.send({ received: results.reduce((a, r) => a + r.received, 0), bad: results.reduce((a, r) => a + r.bad, 0) });
  });
  process.on('disconnect', () => process.exit(0));
  return;
}

// ---- the server side (this process) ----

const { ObjectPool, net: pooled } = require('..');

const pool = new ObjectPool({ capacity: 256, objectSize: CHUNK });

function startServer(mode) {
  let server;
  if (mode === 'plain') {
    server = net.createServer((s) => {
      s.on('data', (d) => s.write(d));
      s.on('end', () => s.end());
    });
  } else {
    server = net.createServer({ pauseOnConnect: true }, (accepted) => {
      const s = pooled.adopt(pool, accepted, { onData: (chunk, done) => pooled.writePooled(s, chunk, done) });
      s.on('end', () => s.end());
    });
  }
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function round(clients, mode) {
  const server = await startServer(mode);
  const { port } = server.address();
  let gcs = 0;
  const obs = new PerformanceObserver((list) => { gcs += list.getEntries().length; });
  obs.observe({ entryTypes: ['gc'] });
  const per = Math.ceil((MB << 20) / CONNECTIONS / CHUNK) * CHUNK;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const done = new Promise((resolve) => clients.once('message', resolve));
  clients.send({ port, per, connections: CONNECTIONS });
  const { received, bad } = await done;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  await new Promise((r) => setImmediate(r));
  obs.disconnect();
  await new Promise((r) => server.close(r));
  if (received !== per * CONNECTIONS || bad) throw new Error(`${mode}: echoed ${received} of ${per * CONNECTIONS} bytes, ${bad} chunks differ`);
  const gib = received / 2 ** 30;
  return { cpuMsPerGiB: (cpu.user + cpu.system) / 1000 / gib, gcs, mbps: received / 1e6 / secs };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

(async () => {
  console.log(`objpool demo: TCP echo server on loopback, ${CONNECTIONS} connections, ${MB} MiB echoed per round, ${ROUNDS} rounds per mode`);
  console.log(`${os.cpus()[0].model.trim()}, ${os.availableParallelism()} cores, Node ${process.version}`);
  console.log(`pool: ${pool.capacity} x ${pool.objectSize / 1024} KiB buffers, ${pool.slots} slots; the clients run in a child process, so CPU and GC are the server's\n`);
  const clients = fork(__filename, ['--clients']);
  const runs = { plain: [], pooled: [] };
  let maxInUse = 0;
  const sampler = setInterval(() => { maxInUse = Math.max(maxInUse, pool.stats().inUse); }, 5);
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of r % 2 ? ['pooled', 'plain'] : ['plain', 'pooled']) {
      const res = await round(clients, mode);
      runs[mode].push(res);
      console.log(`round ${r + 1} ${mode.padEnd(6)}  CPU ${res.cpuMsPerGiB.toFixed(0).padStart(5)} ms/GiB  ${String(res.gcs).padStart(4)} GC events  ${res.mbps.toFixed(0).padStart(6)} MB/s  (verified byte for byte)`);
    }
  }
  clearInterval(sampler);
  clients.disconnect();
  const sum = (mode) => {
    const xs = runs[mode];
    const mbps = xs.map((x) => x.mbps);
    return { cpu: median(xs.map((x) => x.cpuMsPerGiB)), gcs: median(xs.map((x) => x.gcs)), mbps: median(mbps), lo: Math.min(...mbps), hi: Math.max(...mbps) };
  };
  const q = sum('plain');
  const p = sum('pooled');
  // Ratios round by round (the modes alternate), then the median.
  const perRound = (f) => median(runs.pooled.map((x, i) => f(x, runs.plain[i])));
  console.log('\nmedians        server CPU per GiB   GC events   MB/s (range seen)');
  for (const [name, s] of [['plain reads ', q], ['pooled reads', p]]) {
    console.log(`${name}   ${s.cpu.toFixed(0).padStart(8)} ms        ${String(s.gcs).padStart(6)}      ${s.mbps.toFixed(0).padStart(5)} (${s.lo.toFixed(0)}-${s.hi.toFixed(0)})`);
  }
  console.log(`pooled/plain: CPU per byte ${perRound((a, b) => a.cpuMsPerGiB / b.cpuMsPerGiB).toFixed(2)}x, GC events ${(q.gcs ? p.gcs / q.gcs : 0).toFixed(2)}x, throughput ${perRound((a, b) => a.mbps / b.mbps).toFixed(2)}x`);
  const s = pool.stats();
  console.log(`pool after the run: ${s.available}/${s.capacity} available, ${s.inUse} in use (peak seen ${maxInUse}); per slot ${JSON.stringify(s.perSlot)}`);
  await pool.close();
  console.log('pool closed: every buffer released');
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
