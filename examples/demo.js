'use strict';
// npm start: a TCP echo server on loopback under load, once with plain reads
// (a new Buffer per read) and once with objpool's pooled reads and writes,
// alternating. Prints throughput, GC events and pool stats for both, and
// checks every echoed byte against what was sent. Ends by itself.
//
//   DEMO_MB=256 DEMO_ROUNDS=3 DEMO_CONNECTIONS=4 npm start
const net = require('node:net');
const os = require('node:os');
const { PerformanceObserver } = require('node:perf_hooks');
const { ObjectPool, net: pooled } = require('..');

const MB = Number(process.env.DEMO_MB ?? 512);        // echoed per round, all connections together
const ROUNDS = Number(process.env.DEMO_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.DEMO_CONNECTIONS ?? 4);
const CHUNK = 64 * 1024;

// The data: 17 distinct 64 KiB blocks, sent over and over. Checking an echoed
// chunk is a memcmp against the block(s) it must equal.
const pattern = require('node:crypto').randomBytes(CHUNK * 17);
const blocks = Array.from({ length: 17 }, (_, i) => pattern.subarray(i * CHUNK, (i + 1) * CHUNK));

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

// One client connection: sends `bytes`, reads the echo into one static
// buffer (the client is the same in both modes) and verifies it.
function client(port, bytes) {
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

async function round(mode) {
  const server = await startServer(mode);
  const { port } = server.address();
  let gcs = 0;
  const obs = new PerformanceObserver((list) => { gcs += list.getEntries().length; });
  obs.observe({ entryTypes: ['gc'] });
  const per = Math.ceil((MB << 20) / CONNECTIONS / CHUNK) * CHUNK;
  const t0 = process.hrtime.bigint();
  const results = await Promise.all(Array.from({ length: CONNECTIONS }, () => client(port, per)));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await new Promise((r) => setImmediate(r));
  obs.disconnect();
  await new Promise((r) => server.close(r));
  const received = results.reduce((a, r) => a + r.received, 0);
  const bad = results.reduce((a, r) => a + r.bad, 0);
  if (received !== per * CONNECTIONS || bad) throw new Error(`${mode}: echoed ${received} of ${per * CONNECTIONS} bytes, ${bad} chunks differ`);
  return { mbps: received / 1e6 / secs, gcs, secs };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

(async () => {
  console.log(`objpool demo: TCP echo on loopback, ${CONNECTIONS} connections, ${MB} MiB echoed per round, ${ROUNDS} rounds per mode`);
  console.log(`${os.cpus()[0].model.trim()}, ${os.availableParallelism()} cores, Node ${process.version}`);
  console.log(`pool: ${pool.capacity} x ${pool.objectSize / 1024} KiB buffers, ${pool.slots} slots\n`);
  const runs = { plain: [], pooled: [] };
  let maxInUse = 0;
  const sampler = setInterval(() => { maxInUse = Math.max(maxInUse, pool.stats().inUse); }, 5);
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of r % 2 ? ['pooled', 'plain'] : ['plain', 'pooled']) {
      const res = await round(mode);
      runs[mode].push(res);
      console.log(`round ${r + 1} ${mode.padEnd(6)}  ${res.mbps.toFixed(0).padStart(6)} MB/s  ${String(res.gcs).padStart(4)} GC events  (verified byte for byte)`);
    }
  }
  clearInterval(sampler);
  const p = { mbps: median(runs.pooled.map((x) => x.mbps)), gcs: median(runs.pooled.map((x) => x.gcs)) };
  const q = { mbps: median(runs.plain.map((x) => x.mbps)), gcs: median(runs.plain.map((x) => x.gcs)) };
  console.log('\nmedians        MB/s   GC events');
  console.log(`plain reads  ${q.mbps.toFixed(0).padStart(6)}   ${String(q.gcs).padStart(6)}`);
  console.log(`pooled reads ${p.mbps.toFixed(0).padStart(6)}   ${String(p.gcs).padStart(6)}`);
  console.log(`pooled/plain: throughput ${(p.mbps / q.mbps).toFixed(2)}x, GC events ${(q.gcs ? p.gcs / q.gcs : 0).toFixed(2)}x`);
  const s = pool.stats();
  console.log(`pool after the run: ${s.available}/${s.capacity} available, ${s.inUse} in use (peak seen ${maxInUse}); per slot ${JSON.stringify(s.perSlot)}`);
  await pool.close();
  console.log('pool closed: every buffer released');
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
