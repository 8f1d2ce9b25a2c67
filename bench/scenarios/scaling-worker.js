'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { ObjectPool } = require('../..');
const { MutexFreeList } = require('./mutex-list');

const { target } = workerData;
const control = new Int32Array(workerData.control);

function loop(pop, push) {
  // Counts pairs until the stop flag is set; checks it every 256 pairs.
  let ops = 0;
  while (Atomics.load(control, 1) === 0) {
    for (let i = 0; i < 256; i++) {
      const h = pop();
      if (h >= 0) push(h);
    }
    ops += 256;
  }
  return ops;
}

let pop, push;
if (target.kind === 'pool') {
  const pool = ObjectPool.attach(target.descriptor, target.cache === undefined ? {} : { cache: target.cache });
  pop = pool.pop;
  push = pool.push;
} else {
  const list = new MutexFreeList(target.sab);
  pop = () => list.pop();
  push = (h) => list.push(h);
}
for (let i = 0; i < 200_000; i++) { const h = pop(); if (h >= 0) push(h); }
parentPort.postMessage('ready');

for (let round = 1; ; round++) {
  // Until main starts this round (a wake-up alone is no proof of it).
  while (Atomics.load(control, 0) < round) Atomics.wait(control, 0, round - 1);
  parentPort.postMessage({ ops: loop(pop, push) });
}
