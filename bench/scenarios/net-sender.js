'use strict';
// Child process of the net scenario: serves `bytes` of the pattern to each
// connection as fast as the socket takes them, then ends it.
const net = require('node:net');
const { CHUNK, BLOCKS, makePattern } = require('./net-pattern');

const bytes = Number(process.argv[2]);
const pattern = makePattern();
const blocks = Array.from({ length: BLOCKS }, (_, i) => pattern.subarray(i * CHUNK, (i + 1) * CHUNK));

const server = net.createServer((s) => {
  let sent = 0;
  let block = 0;
  const send = () => {
    while (sent < bytes) {
      const b = blocks[block];
      block = (block + 1) % BLOCKS;
      sent += b.length;
      if (!s.write(b)) return void s.once('drain', send);
    }
    s.end();
  };
  s.on('error', () => {});
  send();
});
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (m) => { if (m === 'exit') process.exit(0); });
