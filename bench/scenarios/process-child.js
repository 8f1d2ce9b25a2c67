'use strict';
// The other process of bench/scenarios/process.js. argv[2]: the mode.
//   ipc: echoes every process.send() message back;
//   socket PATH: connects to the Unix socket PATH and echoes what it reads;
//   pools A B: the ping-pong through two process-shared pools (see process.js);
//   sink: counts process.send() messages; {expect: n} starts a count, 'done' ends it;
//   socketsink PATH: the same for 4-byte messages on the Unix socket PATH ({expect} by IPC);
//   channel POOL CH one|batch: receives from a process-shared channel, one
//     by one or in batches of 32, and pushes each handle back to its pool.
const net = require('node:net');
const { ObjectPool, HandleChannel } = require('../..');

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
 else if (mode === 'sink') {
  let count = 0, target = -1;
  process.on('message', (m) => {
    if (typeof m === 'object' && m !== null && 'expect' in m) {
      count = 0;
      target = m.expect;
      process.send('ok');
    } else if (++count === target) {
      process.send('done');
    }
  });
  process.send('ready');
} else if (mode === 'socketsink') {
  let bytes = 0, target = -1;
  const s = net.connect(process.argv[3], () => process.send('ready'));
  process.on('message', (m) => {
    bytes = 0;
    target = m.expect * 4;
    process.send('ok');
  });
  s.on('data', (b) => {
    bytes += b.length;
    if (bytes === target) process.send('done');
  });
  process.on('disconnect', () => process.exit(0));
} else if (mode === 'channel') {
  const pool = ObjectPool.attachProcess(JSON.parse(process.argv[3]));
  const ch = HandleChannel.attachProcess(JSON.parse(process.argv[4]), pool);
  const batch = process.argv[5] === 'batch';
  const out = new Uint32Array(32);
  (async () => {
    process.send('ready');
    for (;;) {
      if (batch) {
        const n = ch.receiveMany(out);
        if (n > 0) {
          pool.pushMany(out, n);
          continue;
        }
      } else {
        const h = ch.receive();
        if (h >= 0) {
          pool.push(h);
          continue;
        }
      }
      pool.push(await ch.receiveAsync());
    }
  })();
  process.on('disconnect', () => process.exit(0));
}
