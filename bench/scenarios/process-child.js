'use strict';
// The other process of bench/scenarios/process.js. argv[2]: the mode.
//   ipc: echoes every process.send() message back;
//   socket PATH: connects to the Unix socket PATH and echoes what it reads;
//   pools A B: the ping-pong through two process-shared pools (see process.js).
const net = require('node:net');
const { ObjectPool } = require('../..');

const mode = process.argv[2];
if (mode === 'ipc') {
  process.on('message', (m) => process.send(m));
  process.send('ready');
} else if (mode === 'socket') {
  const s = net.connect(process.argv[3], () => process.send('ready'));
  s.setNoDelay(true);
  s.on('data', (b) => s.write(b));
  process.on('disconnect', () => process.exit(0));
} else if (mode === 'pools') {
  const pools = [ObjectPool.attachProcess(JSON.parse(process.argv[3]), { cache: 0 }), ObjectPool.attachProcess(JSON.parse(process.argv[4]), { cache: 0 })];
  // This side starts with B's object; round r sends on pools[r & 1] (A
  // first) and answers on the other, as the parent does.
  let held = pools[1].pop();
  (async () => {
    process.send('ready');
    for (let r = 0; ; r++) {
      const x = await pools[r & 1].popAsync();
      pools[(r + 1) & 1].push(held);
      held = x;
    }
  })();
  process.on('disconnect', () => process.exit(0));
}
