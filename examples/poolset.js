'use strict';
// Several sizes from one set: a service that frames 200-byte replies,
// builds 4 KiB headers and assembles 60 KiB bodies takes each from the
// smallest class that fits, and a worker thread does the same with the very
// same objects. Prints what each class served and the time per
// acquire+release against Buffer.allocUnsafe of the same sizes.
//   node examples/poolset.js [rounds]
const { Worker, isMainThread, workerData, parentPort } = require('node:worker_threads');
const { PoolSet } = require('..');

const SIZES = [200, 4000, 60000];

function work(set, rounds) {
  let bytes = 0;
  for (let i = 0; i < rounds; i++) {
    const n = SIZES[i % 3];
    const buf = set.acquire(n);
    if (buf === null) continue; // that class is empty for a moment: the other thread holds some
    buf.fill(i & 255, 0, 64); // "framing": touch what we use
    bytes += buf.length;
    set.release(buf);
  }
  return bytes;
}

if (!isMainThread) {
  const set = PoolSet.attach(workerData.set);
  parentPort.postMessage(work(set, workerData.rounds));
} else {
  const rounds = Number(process.argv[2] ?? 300_000);
  const set = new PoolSet({
    classes: [{ objectSize: 512, capacity: 1024 }, { objectSize: 4096, capacity: 256 }, { objectSize: 65536, capacity: 64 }],
    name: 'service',
  });
  const worker = new Worker(__filename, { workerData: { set: set.descriptor, rounds } });
  const t0 = process.hrtime.bigint();
  const mine = work(set, rounds);
  const poolNs = Number(process.hrtime.bigint() - t0) / rounds;
  worker.once('message', async (theirs) => {
    await new Promise((r) => worker.once('exit', r));
    const t1 = process.hrtime.bigint();
    let sink = 0;
    for (let i = 0; i < rounds; i++) sink += Buffer.allocUnsafe(SIZES[i % 3]).fill(i & 255, 0, 64).length;
    const allocNs = Number(process.hrtime.bigint() - t1) / rounds;
    const s = set.stats();
    console.log(`classes: ${set.sizes.join(', ')} bytes; sizes asked: ${SIZES.join(', ')}`);
    console.log(`main thread ${(mine / 2 ** 20).toFixed(0)} MiB, worker ${(theirs / 2 ** 20).toFixed(0)} MiB through ${s.capacity} pooled objects`);
    console.log(`acquire(n)+release ${poolNs.toFixed(0)} ns/op with a worker at it too; Buffer.allocUnsafe(n) ${allocNs.toFixed(0)} ns/op (${(sink / 2 ** 20).toFixed(0)} MiB allocated)`);
    for (const c of s.classes) console.log(`  class ${String(c.objectSize).padStart(5)}: ${c.available}/${c.capacity} available, ${c.inUse} in use`);
    await set.close();
    console.log('set closed: every object released');
  });
}
