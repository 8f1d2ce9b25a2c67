'use strict';
// A small dependency-free SVG line chart: throughput (Mops/s) against threads.

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

// The smallest of 1, 2, 5 x 10^k at or above v: a round grid step.
function niceCeil(v) {
  const k = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * k).find((x) => x >= v);
}

/** series: { name: [{ threads, mops }] }; returns an SVG document. */
function lineChart({ title, subtitle, series, width = 640, height = 360 }) {
  const m = { left: 56, right: 16, top: 48, bottom: 92 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const points = Object.values(series).flat();
  const maxX = Math.max(...points.map((p) => p.threads));
  const top = Math.max(...points.map((p) => p.mops)) * 1.05 || 1;
  const step = niceCeil(top / 4);
  const lines = Math.ceil(top / step);
  const maxY = step * lines;
  const x = (t) => m.left + (maxX === 1 ? w / 2 : ((t - 1) / (maxX - 1)) * w);
  const y = (v) => m.top + h - (v / maxY) * h;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  out.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  if (subtitle) out.push(`<text x="${width / 2}" y="36" text-anchor="middle" fill="#555">${esc(subtitle)}</text>`);
  for (let i = 0; i <= lines; i++) {
    const v = step * i;
    out.push(`<line x1="${m.left}" x2="${m.left + w}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`);
    out.push(`<text x="${m.left - 6}" y="${y(v) + 4}" text-anchor="end">${+v.toFixed(2)}</text>`);
  }
  const ticks = [...new Set(points.map((p) => p.threads))].sort((a, b) => a - b);
  for (const t of ticks) out.push(`<text x="${x(t)}" y="${m.top + h + 16}" text-anchor="middle">${t}</text>`);
  out.push(`<line x1="${m.left}" x2="${m.left + w}" y1="${m.top + h}" y2="${m.top + h}" stroke="#333"/>`);
  out.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + h}" stroke="#333"/>`);
  out.push(`<text x="${m.left + w / 2}" y="${m.top + h + 34}" text-anchor="middle">worker threads</text>`);
  out.push(`<text transform="translate(16 ${m.top + h / 2}) rotate(-90)" text-anchor="middle">Mops/s (pop+push pairs, all threads)</text>`);
  Object.entries(series).forEach(([name, pts], i) => {
    const c = COLORS[i % COLORS.length];
    const path = pts.map((p, k) => `${k ? 'L' : 'M'}${x(p.threads).toFixed(1)} ${y(p.mops).toFixed(1)}`).join(' ');
    out.push(`<path d="${path}" fill="none" stroke="${c}" stroke-width="2"/>`);
    for (const p of pts) out.push(`<circle cx="${x(p.threads).toFixed(1)}" cy="${y(p.mops).toFixed(1)}" r="3" fill="${c}"/>`);
    const ly = m.top + h + 52 + Math.floor(i / 2) * 16;
    const lx = m.left + (i % 2) * (w / 2);
    out.push(`<rect x="${lx}" y="${ly - 9}" width="12" height="3" fill="${c}"/><text x="${lx + 18}" y="${ly - 4}">${esc(name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

module.exports = { lineChart };
