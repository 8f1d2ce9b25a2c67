'use strict';
// pooled.pipe() under a slow reader: back-pressure keeps the proxy's memory
// bounded. In a file (so a process) of its own: the memory figure must not
// see other tests' garbage.
const test = require('ava');
const net = require('node:net');
const crypto = require('node:crypto');
const { ObjectPool } = require('..');
const { until } = require('./helpers');
const { host, listen, close, startProxy } = require('./fixtures/net-proxy');

const pattern = crypto.randomBytes((1 << 20) + 13);

test('a slow reader keeps the proxy bounded: the pool never runs dry, the queue to the reader stays small', async (t) => {
  // The target sends as fast as the proxy takes it; the client reads a
  // little every few ms. Without back-pressure the proxy would read it all
  // and queue it on the client socket.
  const total = 24 << 20;
  const source = net.createServer((s) => {
    s.on('error', () => {});
    let sent = 0;
    const more = () => {
      while (sent < total) {
        const off = sent % pattern.length;
        const piece = pattern.subarray(off, off + Math.min(64 * 1024, total - sent, pattern.length - off));
        sent += piece.length;
        if (!s.write(piece)) return void s.once('drain', more);
      }
      s.end();
    };
    more();
  });
  const sourcePort = await listen(source);
  const pool = new ObjectPool({ capacity: 16, objectSize: 64 * 1024 });
  const { server, pipes, port } = await startProxy(pool, sourcePort);
  global.gc?.();
  const before = process.memoryUsage();
  let minAvailable = pool.capacity;
  let maxQueued = 0;
  let maxExternal = 0;
  const sample = () => {
    minAvailable = Math.min(minAvailable, pool.stats().available);
    if (pipes[0]) maxQueued = Math.max(maxQueued, pipes[0].client.writableLength);
    const m = process.memoryUsage();
    maxExternal = Math.max(maxExternal, m.arrayBuffers - before.arrayBuffers);
  };
  const hash = crypto.createHash('sha256');
  let received = 0;
  await new Promise((resolve, reject) => {
    // The slow reader: at most 64 KiB per read and a read per 2 ms or less
    // often (~32 MB/s), into one buffer of its own (no garbage to blur the
    // memory figure).
    const inbox = Buffer.allocUnsafe(64 * 1024);
    const c = net.connect({
      port, host,
      onread: {
        buffer: inbox,
        callback(n, buf) {
          hash.update(buf.subarray(0, n));
          received += n;
          sample();
          setTimeout(() => c.resume(), 2);
          return false; // stop reading until then
        },
      },
    });
    c.on('error', reject);
    c.on('end', resolve);
  });
  const expected = crypto.createHash('sha256');
  for (let at = 0; at < total; ) {
    const off = at % pattern.length;
    const n = Math.min(total - at, pattern.length - off);
    expected.update(pattern.subarray(off, off + n));
    at += n;
  }
  t.is(received, total);
  t.is(hash.digest('hex'), expected.digest('hex'));
  t.log(`pool: fewest available ${minAvailable}/${pool.capacity}; most queued to the slow reader ${(maxQueued / 1024).toFixed(0)} KiB; most extra ArrayBuffer memory ${(maxExternal / 1048576).toFixed(1)} MiB`);
  t.true(minAvailable >= pool.capacity - 4, 'a slow reader holds a few objects, never the pool');
  t.true(maxQueued <= 3 * pool.objectSize, 'no more than the high-water mark and one chunk queued to the slow reader');
  t.true(maxExternal < 8 << 20, 'no buffer memory grows with what the target sent');
  await until(() => pipes[0].done);
  t.is(pool.stats().available, 16);
  await close(server);
  await close(source);
});
