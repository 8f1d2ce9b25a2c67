'use strict';
// Child process of the proxy scenario: the far end of the proxy. Told a
// port, it connects there, reads everything into one static buffer, checks
// every byte against the pattern and reports. It sends nothing.
//   <- { connect: port }     -> { received, bad }
const net = require('node:net');
const { CHUNK, makePattern } = require('./net-pattern');

const pattern = makePattern();
const inbox = Buffer.allocUnsafe(CHUNK);

process.on('message', (m) => {
  if (m === 'exit') process.exit(0);
  if (!m.connect) return;
  let received = 0;
  let bad = 0;
  const s = net.connect({
    port: m.connect, host: '127.0.0.1',
    onread: {
      buffer: inbox,
      callback(n, buf) {
        for (let at = 0; at < n; ) {
          const off = (received + at) % pattern.length;
          const k = Math.min(n - at, pattern.length - off);
          if (!buf.subarray(at, at + k).equals(pattern.subarray(off, off + k))) bad++;
          at += k;
        }
        received += n;
      },
    },
  });
  s.on('end', () => {
    s.end();
    process.send({ received, bad });
  });
  s.on('error', (err) => process.send({ error: err.message }));
});
