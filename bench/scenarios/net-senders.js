'use strict';
// The sending side of the net and proxy scenarios, outside the measured
// process: socat serving a file of the pattern when socat is on PATH (not
// Node, so the figures do not depend on a Node sender), else a Node child
// process (net-sender.js). Either listens on 127.0.0.1 only and sends
// `bytes` of the pattern to every connection, then ends it.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync, fork } = require('node:child_process');
const { makePattern } = require('./net-pattern');

function hasSocat() {
  return spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0;
}

// A file of `bytes` bytes: the pattern over and over.
function patternFile(bytes) {
  const pattern = makePattern();
  const file = path.join(os.tmpdir(), `objpool-bench-${process.pid}-${bytes}.bin`);
  const fd = fs.openSync(file, 'w');
  try {
    for (let at = 0; at < bytes; at += pattern.length) fs.writeSync(fd, pattern, 0, Math.min(pattern.length, bytes - at));
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

async function socatSender(bytes) {
  const file = patternFile(bytes);
  // Port 0 is not an option with fork; ask the kernel for a free port first.
  const port = await new Promise((resolve) => {
    const probe = require('node:net').createServer().listen(0, '127.0.0.1', () => {
      const p = probe.address().port;
      probe.close(() => resolve(p));
    });
  });
  // -U: from the right address to the left; the listening address comes
  // first so that each forked connection opens the file afresh.
  const child = spawn('socat', ['-d', '-d', '-U', '-b', '65536', `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `OPEN:${file},rdonly`], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise((resolve, reject) => {
    let log = '';
    const onData = (d) => {
      log += d;
      if (/listening on/.test(log)) {
        child.stderr.off('data', onData);
        child.stderr.resume();
        resolve();
      }
    };
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`socat exited with ${code}: ${log}`)));
  });
  return {
    name: `socat ${spawnSync('socat', ['-V'], { encoding: 'utf8' }).stdout.match(/socat version (\S+)/)?.[1] ?? '?'} (a file of the pattern -> TCP-LISTEN on 127.0.0.1, 64 KiB blocks)`,
    port,
    stop() {
      child.kill();
      fs.rmSync(file, { force: true });
    },
  };
}

async function nodeSender(bytes) {
  const child = fork(path.join(__dirname, 'net-sender.js'), [String(bytes)]);
  const { port } = await new Promise((r) => child.once('message', r));
  return { name: `a Node ${process.version} child process (64 KiB writes)`, port, stop: () => child.send('exit') };
}

/** Starts the sender: socat if it is on PATH (or BENCH_SENDER=socat), a Node child if not (or BENCH_SENDER=node). */
function startSender(bytes) {
  const want = process.env.BENCH_SENDER;
  if (want === 'node' || (want !== 'socat' && !hasSocat())) return nodeSender(bytes);
  return socatSender(bytes);
}

module.exports = { startSender };
