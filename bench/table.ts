// The readable table: one row per figure, the baseline beside it, then per worker count the median and
// its ratio to the baseline, then sharded vs single-threaded and the target.

import type { Row } from './summary.js';

function fmt(value: number, unit: string): string {
  if (value === undefined || Number.isNaN(value)) return '-';
  if (!Number.isFinite(value)) return '∞';
  if (unit === 'ms/MB' || unit === 'KiB') return value.toFixed(2);
  if (unit === 'MB/s' || unit === 'MiB') return value.toFixed(1);
  return Math.round(value).toString();
}

const ratio = (v: number | undefined) => (v === undefined || Number.isNaN(v) || !Number.isFinite(v) ? '-' : `${v.toFixed(2)}`);

export function renderTable(rows: Row[], workers: number[]): string {
  const max = Math.max(...workers);
  const showShard = workers.includes(0) && max > 0;
  const header = ['scenario', 'unit', 'baseline', ''];
  for (const w of workers) header.push(`w=${w}`, 'x base');
  if (showShard) header.push(`w${max}/w0`);
  header.push('target', 'met by');

  const body = rows.map((r) => {
    const cells = [r.label, r.unit, fmt(r.baseline, r.unit), r.baselineName];
    for (const w of workers) cells.push(fmt(r.values[w] ?? Number.NaN, r.unit), r.baselineName && r.baselineName !== 'target' ? ratio(r.ratios[w]) : '');
    if (showShard) cells.push(ratio(r.shardRatio ?? Number.NaN));
    const met = workers.filter((w) => r.meets[w] === true);
    cells.push(r.target, r.target ? (met.length ? met.map((w) => `w${w}`).join(' ') : 'none') : '');
    return cells;
  });

  const widths = header.map((h, i) => Math.max(h.length, ...body.map((c) => (c[i] ?? '').length)));
  const numeric = (i: number) => i >= 2 && header[i] !== '' && header[i] !== 'target' && header[i] !== 'met by';
  const line = (cells: string[]) => cells.map((c, i) => (numeric(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  let group = rows[0]?.group;
  for (let i = 0; i < body.length; i++) {
    const r = rows[i];
    if (r && r.group !== group) { out.push(''); group = r.group; }
    out.push(line(body[i] ?? []));
  }
  return `${out.join('\n')}\n`;
}
