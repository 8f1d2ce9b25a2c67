'use strict';
// A pooled TCP echo server that serves its pool's metrics to Prometheus,
// and logs the pool's events. Needs prom-client (npm install prom-client).
//
//   node examples/metrics.js [echo-port] [metrics-port]
//   curl -s 127.0.0.1:9464/metrics | grep objpool_
const net = require('node:net');
const http = require('node:http');
const dc = require('node:diagnostics_channel');
const client = require('prom-client');
const { ObjectPool, net: pooled, channels } = require('objpool');
const { collectPoolMetrics } = require('objpool/metrics');

// Gauges and counters for every pool of this thread, labelled by name.
collectPoolMetrics({ register: client.register });

// A small pool (8 buffers), so that a few clients at once run it dry and the
// counters move; reads pause until a buffer comes back.
const pool = new ObjectPool({ capacity: 8, objectSize: 16 * 1024, name: 'echo' });

// Library events, for logs or an APM agent: published only while subscribed.
let dry = 0;
dc.subscribe(channels.exhausted, ({ name }) => { if (dry++ % 1000 === 0) console.log(`pool ${name} ran dry (${dry} times so far)`); });
dc.subscribe(channels.leak, ({ name, report }) => console.log(`pool ${name}: object ${report.handle} leaked, acquired at\n${report.stack}`));

const echo = net.createServer({ pauseOnConnect: true }, (accepted) => {
  const socket = pooled.adopt(pool, accepted, { onData: (chunk, done) => pooled.writePooled(socket, chunk, done) });
  socket.on('end', () => socket.end());
  socket.on('error', () => socket.destroy());
});

const metrics = http.createServer(async (req, res) => {
  if (req.url !== '/metrics') {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': client.register.contentType });
  res.end(await client.register.metrics());
});

const echoPort = Number(process.argv[2] ?? 7007);
const metricsPort = Number(process.argv[3] ?? 9464);
echo.listen(echoPort, '127.0.0.1', () => {
  metrics.listen(metricsPort, '127.0.0.1', () => {
    console.log(`echo on 127.0.0.1:${echo.address().port}, metrics on http://127.0.0.1:${metrics.address().port}/metrics`);
  });
});

process.on('SIGINT', () => {
  metrics.close();
  echo.close(() => pool.close().then(() => process.exit(0)));
});
