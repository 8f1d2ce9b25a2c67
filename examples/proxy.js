'use strict';
// A TCP proxy whose reads land in pooled buffers: every chunk read from one
// side is written to the other and goes back to the pool once written. A
// slow side slows the other down (back-pressure); memory stays within the
// pool. Copy this into your service.
//
//   node examples/proxy.js --listen 7008 --target 127.0.0.1:7007
//   node examples/proxy.js --listen 0 --target 127.0.0.1:7007 --objects 64 --object-size 16384
//
// --listen [HOST:]PORT   where to accept (HOST defaults to 127.0.0.1; port 0 picks a free one)
// --target HOST:PORT     where to connect for each accepted connection
// --objects N            buffers in the pool (default 256)
// --object-size BYTES    bytes per buffer (default 65536)
// Prints `listening on PORT` once it accepts; SIGINT or SIGTERM shut it down.
const net = require('node:net');
const { ObjectPool, net: pooled } = require('objpool');

function usage(problem) {
  console.error(`${problem}\nusage: node examples/proxy.js --listen [HOST:]PORT --target HOST:PORT [--objects N] [--object-size BYTES]`);
  process.exit(2);
}

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = process.argv[i + 1];
  if (value === undefined || value.startsWith('--')) usage(`--${name} needs a value`);
  return value;
}

function address(text, defaultHost) {
  const m = /^(?:(.+):)?(\d+)$/.exec(text ?? '');
  if (!m || (!m[1] && !defaultHost) || Number(m[2]) > 65535) return null;
  return { host: m[1] ?? defaultHost, port: Number(m[2]) };
}

const listen = address(option('listen'), '127.0.0.1') ?? usage('--listen [HOST:]PORT is required');
const target = address(option('target')) ?? usage('--target HOST:PORT is required');
const objects = Number(option('objects', 256));
const objectSize = Number(option('object-size', 64 * 1024));
if (!Number.isInteger(objects) || objects < 1) usage('--objects must be a positive integer');
if (!Number.isInteger(objectSize) || objectSize < 1) usage('--object-size must be a positive integer');

// Allocated once, shared by every connection: objects x objectSize bytes.
const pool = new ObjectPool({ capacity: objects, objectSize });
const open = new Set();
let served = 0;

// pauseOnConnect: the connection is re-wrapped with pooled reads before any
// byte is read (net.Server has no onread option of its own).
const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
  // Neither socket reads until pipe() joins them.
  const client = pooled.adopt(pool, accepted);
  const upstream = pooled.connect(pool, target);
  const pipe = pooled.pipe(client, upstream, (err) => {
    open.delete(pipe);
    served++;
    if (err && err.code !== 'ECONNRESET') console.error(`connection closed: ${err.message}`);
  });
  open.add(pipe);
});

server.on('error', (err) => {
  console.error(`cannot listen on ${listen.host}:${listen.port}: ${err.message}`);
  process.exit(1);
});

server.listen(listen.port, listen.host, () => {
  console.log(`listening on ${server.address().port}`);
  console.log(`proxying ${listen.host}:${server.address().port} -> ${target.host}:${target.port}; pool: ${objects} x ${objectSize} bytes`);
});

let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  // Stop accepting, tear down what is open, then close the pool: it resolves
  // once every buffer is back.
  server.close();
  for (const pipe of open) pipe.destroy();
  const wait = setInterval(() => {
    if (open.size > 0) return;
    clearInterval(wait);
    const s = pool.stats();
    pool.close().then(() => {
      console.log(`${signal}: served ${served} connections; pool closed with ${s.available}/${s.capacity} buffers back`);
      process.exit(0);
    });
  }, 5);
}
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
