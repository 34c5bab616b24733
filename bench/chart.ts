// The chart: throughput against concurrency, one line per worker count and direction, with the raw
// DataChannel as a dashed level. Hand-written SVG: it opens in any browser, no dependency.

import type { Row } from './summary.js';

const WIDTH = 760;
const HEIGHT = 440;
const MARGIN = { left: 64, right: 170, top: 40, bottom: 52 };
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function renderChart(rows: Row[], workers: number[], streams: number[], title: string): string {
  const bulk = rows.filter((r) => r.group === 'bulk');
  const series: { name: string; colour: string; dashed: boolean; points: [number, number][] }[] = [];
  workers.forEach((w, i) => {
    for (const dir of ['upload', 'download'] as const) {
      const points: [number, number][] = [];
      for (const s of streams) {
        const r = bulk.find((x) => x.label === `${dir}, ${s} stream${s === 1 ? '' : 's'}`);
        const v = r?.values[w];
        if (v !== undefined && !Number.isNaN(v)) points.push([s, v]);
      }
      series.push({ name: `${dir}, workers ${w}`, colour: COLOURS[i % COLOURS.length] ?? '#000', dashed: dir === 'download', points });
    }
  });
  const levels: { name: string; value: number; dash: string }[] = [];
  for (const [dir, dash] of [['upload', '2 4'], ['download', '8 3 2 3']] as const) {
    const value = bulk.find((r) => r.label.startsWith(`${dir},`))?.baseline;
    if (value !== undefined && !Number.isNaN(value)) levels.push({ name: `raw DataChannel, ${dir} direction ${value.toFixed(1)} MB/s`, value, dash });
  }
  const all = [...series.flatMap((s) => s.points.map((p) => p[1])), ...levels.map((l) => l.value)];
  const yMax = niceCeil(Math.max(1, ...all) * 1.1);
  const xs = streams.length ? streams : [1];
  const lx = (s: number) => Math.log2(s);
  const x0 = lx(Math.min(...xs));
  const x1 = Math.max(x0 + 1, lx(Math.max(...xs)));
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const px = (s: number) => MARGIN.left + ((lx(s) - x0) / (x1 - x0)) * plotW;
  const py = (v: number) => MARGIN.top + plotH - (v / yMax) * plotH;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`);
  out.push(`<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const v = (yMax / 5) * i;
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${py(v)}" y2="${py(v)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${MARGIN.left - 8}" y="${py(v) + 4}" text-anchor="end">${Math.round(v)}</text>`);
  }
  for (const s of xs) {
    out.push(`<line x1="${px(s)}" x2="${px(s)}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${px(s)}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${s}</text>`);
  }
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 12}" text-anchor="middle">concurrent streams (log scale)</text>`);
  out.push(`<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">MB/s (median)</text>`);
  const labels: string[] = [];
  levels.sort((a, b) => b.value - a.value).forEach((l, i) => {
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${py(l.value)}" y2="${py(l.value)}" stroke="#000" stroke-dasharray="${l.dash}"/>`);
    // the higher level's label above its line, the lower one's below; drawn last, over a white
    // halo, so a series crossing it does not hide it
    const y = i === 0 ? py(l.value) - 6 : py(l.value) + 14;
    const at = `x="${MARGIN.left + plotW - 4}" y="${y}" text-anchor="end"`;
    labels.push(`<text ${at} stroke="#fff" stroke-width="4">${esc(l.name)}</text>`, `<text ${at}>${esc(l.name)}</text>`);
  });
  series.forEach((s, i) => {
    if (s.points.length) {
      const d = s.points.map(([x, y], j) => `${j ? 'L' : 'M'}${px(x).toFixed(1)} ${py(y).toFixed(1)}`).join(' ');
      out.push(`<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
      for (const [x, y] of s.points) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${s.colour}"><title>${esc(s.name)}: ${x} streams, ${y.toFixed(1)} MB/s</title></circle>`);
    }
    const ly = MARGIN.top + 10 + i * 18;
    const lx0 = MARGIN.left + plotW + 14;
    out.push(`<line x1="${lx0}" x2="${lx0 + 26}" y1="${ly}" y2="${ly}" stroke="${s.colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${lx0 + 32}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push(...labels, '</svg>');
  return `${out.join('\n')}\n`;
}

function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
