'use strict';
// A TCP echo server whose reads land in pooled buffers and whose writes give
// them back once the kernel has the bytes. Copy this into your service.
//
//   node examples/pooled-echo-server.js [port]
//   (then, for example: printf 'hello\n' | nc -q1 127.0.0.1 7007)
const net = require('node:net');
const { ObjectPool, net: pooled } = require('objpool');

// 256 buffers of 64 KiB: 16 MiB, allocated once, shared by every connection.
const pool = new ObjectPool({ capacity: 256, objectSize: 64 * 1024 });

// pauseOnConnect: the connection is re-wrapped with pooled reads before any
// byte is read (net.Server has no onread option of its own).
const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
  const socket = pooled.adopt(pool, accepted, {
    // `chunk` is a view of a pooled buffer; `done` returns it to the pool.
    // Here it goes back when the echo write has completed (or failed).
    onData(chunk, done) {
      pooled.writePooled(socket, chunk, done);
    },
    // When every buffer is out, reading pauses until one comes back.
    whenEmpty: 'pause',
  });
  socket.on('end', () => socket.end());
  socket.on('error', () => socket.destroy());
});

const port = Number(process.argv[2] ?? 7007);
server.listen(port, '127.0.0.1', () => {
  console.log(`pooled echo server on 127.0.0.1:${server.address().port}`);
  const timer = setInterval(() => {
    const s = pool.stats();
    console.log(`pool: ${s.inUse} in use, ${s.available} available`);
  }, 5000);
  timer.unref();
});

process.on('SIGINT', () => server.close(() => pool.close().then(() => process.exit(0))));
