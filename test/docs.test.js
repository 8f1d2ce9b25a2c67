'use strict';
// The README and docs/ hold together: every relative link reaches a file (and
// a heading, for #anchors, by GitHub's slug rules), every examples/*.js they
// name exists and is run by test/examples.test.js, every page of docs/ is
// linked from the README and links back to it, and the benchmark tables sit
// between the markers bench/report.js rewrites.
const test = require('ava');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const pages = ['README.md', ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const read = (page) => fs.readFileSync(path.join(root, page), 'utf8');

// The text outside fenced code blocks, line by line (numbers kept), with
// inline code spans blanked: neither holds links or headings.
function prose(text) {
  const lines = [];
  let fence = null;
  text.split('\n').forEach((line, i) => {
    const m = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence) {
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length && line.trim() === m[1][0].repeat(line.trim().length)) fence = null;
      return;
    }
    if (m) {
      fence = m[1];
      return;
    }
    lines.push({ n: i + 1, text: line.replace(/(`+)[^`]*?\1/g, (s) => ' '.repeat(s.length)) });
  });
  return lines;
}

// GitHub's heading anchors: the heading's text as rendered (code spans keep
// their content, links their text), lower-cased, every character that is not
// a letter, a digit, a space, '-' or '_' dropped, spaces made '-'; a repeated
// slug gets -1, -2, ...
function slugs(text) {
  const seen = new Map();
  const out = new Set();
  let fence = null;
  for (const line of text.split('\n')) {
    const f = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence) {
      if (f && f[1][0] === fence[0] && f[1].length >= fence.length) fence = null;
      continue;
    }
    if (f) {
      fence = f[1];
      continue;
    }
    const h = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const rendered = h[1].replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/`([^`]*)`/g, '$1').replace(/[*_]{1,2}([^*_]+)[*_]{1,2}/g, '$1');
    const base = rendered.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    out.add(count === 0 ? base : `${base}-${count}`);
  }
  return out;
}

function links(page) {
  const found = [];
  for (const { n, text } of prose(read(page))) {
    for (const m of text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) found.push({ line: n, target: m[1] });
  }
  return found;
}

const relative = (target) => !/^[a-z][a-z0-9+.-]*:/i.test(target);

test('the README and every page of docs/ exist and have links to check', (t) => {
  t.true(pages.length > 1, 'docs/ has pages');
  for (const page of pages) t.true(links(page).length > 0, `${page} has links`);
});

test('the slug rules match GitHub\'s on the headings these pages use', (t) => {
  const s = slugs('# objpool\n## Three ways to build a pool (the kernel\'s three cases)\n### Operating it: names, metrics, events\n' +
    '## `popAsync()` and [leases](x.md)\n## Errors\n## Errors\n```\n# HELP not a heading\n```\n');
  t.deepEqual([...s], ['objpool', 'three-ways-to-build-a-pool-the-kernels-three-cases', 'operating-it-names-metrics-events', 'popasync-and-leases', 'errors', 'errors-1']);
});

test('every relative link in the README and docs/ reaches a file, and every #anchor a heading of it', (t) => {
  const broken = [];
  let checked = 0;
  for (const page of pages) {
    for (const { line, target } of links(page)) {
      if (!relative(target)) continue;
      checked++;
      const [file, anchor] = target.split('#');
      const to = file === '' ? path.join(root, page) : path.resolve(path.dirname(path.join(root, page)), decodeURIComponent(file));
      const where = `${page}:${line}: ${target}`;
      if (!to.startsWith(root + path.sep) && to !== root) {
        broken.push(`${where} (outside the repository)`);
        continue;
      }
      if (!fs.existsSync(to)) {
        broken.push(`${where} (no such file)`);
        continue;
      }
      if (anchor !== undefined) {
        if (!to.endsWith('.md')) broken.push(`${where} (an anchor into a file that is not Markdown)`);
        else if (!slugs(fs.readFileSync(to, 'utf8')).has(anchor)) broken.push(`${where} (no heading #${anchor} in ${path.relative(root, to)})`);
      }
    }
  }
  t.true(checked > 20, `${checked} links checked`);
  t.deepEqual(broken, []);
});

test('every examples/*.js the README and docs/ name exists and is run by test/examples.test.js', (t) => {
  const suite = read('test/examples.test.js');
  const named = new Set();
  for (const page of pages) for (const m of read(page).matchAll(/examples\/([\w.-]+\.js)\b/g)) named.add(m[1]);
  t.true(named.size > 0);
  const missing = [...named].filter((f) => !fs.existsSync(path.join(root, 'examples', f)));
  t.deepEqual(missing, [], 'named but not there');
  const untested = [...named].filter((f) => !suite.includes(`'examples', '${f}'`));
  t.deepEqual(untested, [], 'named but not run by test/examples.test.js');
});

test('every page of docs/ is linked from the README and links back to it', (t) => {
  const fromReadme = new Set(links('README.md').map((l) => l.target.split('#')[0]).filter(relative).map((f) => path.normalize(f)));
  for (const page of pages.slice(1)) {
    t.true(fromReadme.has(path.normalize(page)), `README.md links to ${page}`);
    t.true(links(page).some((l) => l.target.split('#')[0] === '../README.md'), `${page} links back to the README`);
  }
});

test('the benchmark tables sit between the markers bench/report.js rewrites, in docs/benchmarks.md only', (t) => {
  const begin = '<!-- bench:begin (npm run bench:report -- --readme) -->';
  const end = '<!-- bench:end -->';
  const doc = read('docs/benchmarks.md');
  t.is(doc.split(begin).length, 2, 'one begin marker');
  t.is(doc.split(end).length, 2, 'one end marker');
  t.true(doc.indexOf(begin) < doc.indexOf(end));
  t.regex(doc.slice(doc.indexOf(begin), doc.indexOf(end)), /^\| scenario \| ns\/op \|/m, 'the generated tables between them');
  for (const page of pages.filter((p) => p !== 'docs/benchmarks.md')) t.false(read(page).includes('<!-- bench:'), `no markers in ${page}`);
  t.regex(read('bench/report.js'), /'docs', 'benchmarks\.md'/, 'the report writes docs/benchmarks.md');
});
