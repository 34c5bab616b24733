// The lab bench's output: per path a table like the loopback bench's (plain TCP as the baseline, the
// tunnel and ssh -L beside it with their ratios, the target and whether the tunnel meets it), then
// every run's per-second series, so a collapse is visible second by second.

import type { LabRow, LabSection } from './summary.js';
import { checkSeries, isLowSecond, COLLAPSE_FRACTION, DROP_FRACTION, RAMP_SECONDS } from './series.js';
import type { PathResult } from './suite.js';

function fmt(value: number | undefined, unit: LabRow['unit']): string {
  if (value === undefined || Number.isNaN(value)) return '-';
  if (!Number.isFinite(value)) return '∞';
  if (unit === 'ms') return value < 10 ? value.toFixed(2) : value.toFixed(1);
  if (unit === 'MB/s') return value < 10 ? value.toFixed(2) : value.toFixed(1);
  if (unit === 'ms/MB') return value.toFixed(1);
  return String(Math.round(value));
}

const ratioText = (v: number, base: number | undefined) => {
  const r = v / (base ?? Number.NaN);
  return Number.isFinite(r) ? r.toFixed(2) : '-';
};

function cell(row: LabRow, t: 'tcp' | 'tunnel' | 'ssh'): string {
  const text = row.text?.[t];
  if (text !== undefined) return text;
  const v = fmt(row.values[t], row.unit);
  return row.lowerBound?.[t] && v !== '-' ? `>=${v}` : v;
}

export function renderSection(section: LabSection): string {
  const header = ['scenario', 'unit', 'TCP', 'tunnel', 'x TCP', 'ssh -L', 'x TCP', 'target', 'met?'];
  const body = section.rows.map((r) => [
    r.label, r.unit, cell(r, 'tcp'), cell(r, 'tunnel'),
    r.ratio && r.values.tunnel !== undefined ? ratioText(r.values.tunnel, r.values.tcp) : '',
    r.tcpFrom ? '' : cell(r, 'ssh'),
    r.ratio && r.values.ssh !== undefined && !r.tcpFrom ? ratioText(r.values.ssh, r.values.tcp) : '',
    r.target, r.met === null ? '' : r.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((c) => (c[i] ?? '').length)));
  const numeric = (i: number) => i >= 2 && i <= 6;
  const line = (cells: string[]) => cells.map((c, i) => (numeric(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  const { path } = section;
  const title = `${path.label} (lab shape ${JSON.stringify(path.shape)}): ${section.load}`;
  return [title, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n') + '\n';
}

/** One line per run: its mean, median and slowest second, a collapse mark, then every second. */
export function renderSeries(results: PathResult[]): string {
  const out = [`per-second MB/s of every run (the first ${RAMP_SECONDS} s are the ramp, left out of the check; `
    + `! marks a second under ${COLLAPSE_FRACTION * 100}% of the run's median second or ${DROP_FRACTION * 100}% of its best: COLLAPSE, DROP)`];
  const line = (name: string, perSecond: number[], extra = '') => {
    const s = checkSeries(perSecond);
    const seconds = perSecond.map((v, i) => `${v < 10 ? v.toFixed(2) : v.toFixed(1)}${isLowSecond(s, i, v) ? '!' : ''}`);
    const verdict = [s.collapse ? 'COLLAPSE' : '', s.drop ? 'DROP' : ''].filter(Boolean).join('+');
    const mean = perSecond.length ? perSecond.reduce((a, b) => a + b, 0) / perSecond.length : Number.NaN;
    out.push(`  ${name.padEnd(44)} mean ${mean.toFixed(1).padStart(5)}  median s ${s.medianSecond.toFixed(1).padStart(5)}  min s ${s.minSecond.toFixed(2).padStart(6)}  ${verdict.padEnd(13)}${extra} | ${seconds.join(' ')}`);
  };
  for (const res of results) {
    for (const r of res.bulk) if (r.ok || r.perSecond.length) line(`${res.path.name} ${r.dir === 'down' ? 'download' : 'upload'} ${r.streams} ${r.transport} run ${r.run}`, r.perSecond, r.ok ? '' : ' (failed)');
    for (const r of res.pings) if (r.bulkPerSecond) line(`${res.path.name} download beside pings ${r.transport} run ${r.run}`, r.bulkPerSecond);
    for (const r of res.raw) if (r.perSecond.length) line(`${res.path.name} raw DC ${r.variant} run ${r.run}`, r.perSecond, r.ok ? '' : ' (failed)');
  }
  return out.join('\n') + '\n';
}
