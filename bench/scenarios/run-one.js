'use strict';
// Runs one scenario in this (fresh) process and prints its result as JSON on
// the last line of stdout. Used by bench/run.js.
const [name, json] = process.argv.slice(2);
const scenario = require(`./${name}`);
scenario.run(JSON.parse(json)).then((result) => {
  process.stdout.write('\n' + JSON.stringify(result) + '\n');
  process.exit(0);
}, (err) => {
  console.error(err);
  process.exit(1);
});
