'use strict';
// The environment for building an addon from a test script. Inside npm
// scripts npm passes its config (nodedir, where Node's headers are); run
// directly, point the build at the running Node's own headers when they are
// installed, as `npm install` does (no download).
const fs = require('node:fs');
const path = require('node:path');

function buildEnv(base = process.env) {
  const env = { ...base };
  const prefix = path.dirname(path.dirname(process.execPath));
  if (!env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) {
    env.npm_config_nodedir = prefix;
  }
  return env;
}

module.exports = { buildEnv };
