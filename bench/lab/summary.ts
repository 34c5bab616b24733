// From every run on a lab path to the rows of its table: the median over the runs of each figure for
// each transport, the ratio to plain TCP, and issue 12's targets:
//   - tunnel bulk >= 0.8 x plain TCP at every stream count, on the paths without loss;
//   - no second of any tunnel run under 25% of that run's median second (no collapse), and, as a check
//     of our own, none under 10% of its best second (a collapse long enough to be the median);
//   - under loss, the tunnel's ping-pong p99 beside a bulk download <= 2 x its p99 alone, and below
//     ssh -L's p99 beside a bulk download.
// Only runs that completed count; failures are listed under the table.

import { median } from '../stats.js';
import type { TransportName } from './baselines.js';
import type { LoadSample } from './machine-load.js';
import { checkSeries, COLLAPSE_FRACTION, DROP_FRACTION, type SeriesCheck } from './series.js';
import type { BulkRun, Direction, LabConfig, LabPath, PathResult, PingRun, RawRun, RawVariant } from './suite.js';

export const BULK_TARGET_RATIO = 0.8;
export const PING_BESIDE_TARGET_RATIO = 2;

export interface LabRow {
  label: string;
  unit: 'MB/s' | 'ms' | 'ms/MB' | 'runs' | '%';
  /** medians over the completed runs, by transport */
  values: Partial<Record<TransportName, number>>;
  /** instead of a number: "collapsed/completed" runs */
  text?: Partial<Record<TransportName, string>>;
  /** the median includes a ping that never came back: the true figure is at least this */
  lowerBound?: Partial<Record<TransportName, boolean>>;
  /** show value / TCP's */
  ratio: boolean;
  /** the TCP figure a raw-DC row is compared with (the raw channel has no TCP of its own) */
  tcpFrom?: string;
  target: string;
  met: boolean | null;
}

export interface LabSection { path: LabPath; load: string; rows: LabRow[] }

const TRANSPORTS: readonly TransportName[] = ['tcp', 'tunnel', 'ssh'];
const done = <T extends { ok: boolean }>(runs: T[]): T[] => runs.filter((r) => r.ok);
const dirLabel = (dir: Direction) => (dir === 'down' ? 'download' : 'upload');
const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

function perTransport(config: LabConfig, fn: (t: TransportName) => number): Partial<Record<TransportName, number>> {
  const out: Partial<Record<TransportName, number>> = {};
  for (const t of TRANSPORTS) if (config.transports.includes(t)) out[t] = fn(t);
  return out;
}

type Which = 'collapse' | 'drop';
const CHECK_LABEL: Record<Which, string> = {
  collapse: `  runs with a second < ${COLLAPSE_FRACTION * 100}% of median`,
  drop: `  runs with a second < ${DROP_FRACTION * 100}% of best`,
};

/** "collapsed/completed" runs per transport; the tunnel's target is none. */
function checkRow(config: LabConfig, runsOf: (t: TransportName) => { series: SeriesCheck }[], which: Which, target: boolean): LabRow {
  const text: Partial<Record<TransportName, string>> = {};
  const values = perTransport(config, (t) => {
    const runs = runsOf(t);
    const failed = runs.filter((r) => r.series[which]).length;
    text[t] = runs.length ? `${failed}/${runs.length}` : '-';
    return failed;
  });
  const tunnelRuns = runsOf('tunnel').length;
  return {
    label: CHECK_LABEL[which], unit: 'runs', values, text, ratio: false,
    target: target ? '0 (tunnel)' : '', met: target && config.transports.includes('tunnel') ? tunnelRuns > 0 && values.tunnel === 0 : null,
  };
}

function bulkRows(config: LabConfig, path: LabPath, bulk: BulkRun[], dir: Direction, streams: number): LabRow[] {
  const runsOf = (t: TransportName) => done(bulk.filter((r) => r.transport === t && r.dir === dir && r.streams === streams));
  const values = perTransport(config, (t) => median(runsOf(t).map((r) => r.MBps)));
  const hasTcp = values.tcp !== undefined && !Number.isNaN(values.tcp);
  const target = !path.loss && hasTcp;
  const main: LabRow = {
    label: `${dirLabel(dir)}, ${plural(streams, 'stream')}`, unit: 'MB/s', values, ratio: true,
    target: target ? `>= ${BULK_TARGET_RATIO} x TCP` : '',
    met: target && values.tunnel !== undefined ? (values.tunnel ?? 0) / (values.tcp ?? Number.NaN) >= BULK_TARGET_RATIO : null,
  };
  const cpu: LabRow = {
    label: '  CPU of the transport per MB', unit: 'ms/MB', ratio: false, target: '', met: null,
    values: perTransport(config, (t) => (t === 'tcp' ? Number.NaN : median(runsOf(t).map((r) => r.cpuMsPerMB)))),
  };
  return [main, checkRow(config, runsOf, 'collapse', true), checkRow(config, runsOf, 'drop', true), cpu,
    ...machineRows((t) => runsOf(t).map((r) => r.load), (f) => perTransport(config, f))];
}

/** How busy the machine was while a figure was measured: near 100 % of all cores, the figure is this
 *  machine's CPU, not the path (both sites, the "internet" and the applications share the cores). */
function machineRows(loadsOf: (t: TransportName) => (LoadSample | null)[], over: (f: (t: TransportName) => number) => LabRow['values']): LabRow[] {
  const of = (t: TransportName, pick: (l: LoadSample) => number) =>
    median(loadsOf(t).filter((l): l is LoadSample => l !== null).map(pick));
  return [
    { label: '  machine busy, all cores', unit: '%', ratio: false, target: '', met: null, values: over((t) => of(t, (l) => l.machineBusyPct)) },
    { label: '    of it in PUB (forwarders, coturn)', unit: '%', ratio: false, target: '', met: null, values: over((t) => of(t, (l) => l.pubCpuPct)) },
  ];
}

function pingRows(config: LabConfig, path: LabPath, pings: PingRun[]): LabRow[] {
  const runsOf = (t: TransportName, beside: boolean) => done(pings.filter((r) => r.transport === t && r.beside === beside));
  const figure = (beside: boolean, pick: (r: PingRun) => number, label: string): LabRow => {
    const lowerBound: Partial<Record<TransportName, boolean>> = {};
    const values = perTransport(config, (t) => {
      const runs = runsOf(t, beside);
      lowerBound[t] = runs.some((r) => r.unanswered > 0);
      return median(runs.map(pick));
    });
    return { label, unit: 'ms', values, lowerBound, ratio: true, target: '', met: null };
  };
  const rows = [
    figure(false, (r) => r.p50Ms, `${config.pingBytes} B ping-pong p50, alone`),
    figure(false, (r) => r.p99Ms, `${config.pingBytes} B ping-pong p99, alone`),
    figure(true, (r) => r.p50Ms, 'ping-pong p50 beside 1 download'),
    figure(true, (r) => r.p99Ms, 'ping-pong p99 beside 1 download'),
  ];
  const beside99 = rows[3];
  const alone99 = rows[1];
  if (path.loss && beside99 && alone99 && config.transports.includes('tunnel')) {
    const hasSsh = config.transports.includes('ssh');
    const t = beside99.values.tunnel ?? Number.NaN;
    beside99.target = `<= ${PING_BESIDE_TARGET_RATIO} x alone${hasSsh ? ', < ssh -L' : ''}`;
    beside99.met = !Number.isNaN(t) && t <= PING_BESIDE_TARGET_RATIO * (alone99.values.tunnel ?? Number.NaN)
      && (!hasSsh || t < (beside99.values.ssh ?? Number.NaN));
  }
  rows.push({
    label: '  the download beside the pings', unit: 'MB/s', ratio: true, target: '', met: null,
    values: perTransport(config, (t) => median(runsOf(t, true).map((r) => r.bulkMBps ?? Number.NaN))),
  });
  const besideSeries = (t: TransportName) => runsOf(t, true).filter((r) => r.bulkPerSecond).map((r) => ({ series: checkSeries(r.bulkPerSecond ?? []) }));
  rows.push(checkRow(config, besideSeries, 'collapse', true), checkRow(config, besideSeries, 'drop', true));
  return rows;
}

const RAW_LABEL: Record<RawVariant, string> = { reliable: 'reliable', maxrtx: 'maxRetransmits 65535' };

function rawRows(config: LabConfig, raw: RawRun[], tcpOneStream: number): LabRow[] {
  if (!config.raw) return [];
  return (['reliable', 'maxrtx'] as const).flatMap((variant): LabRow[] => {
    const runs = done(raw.filter((r) => r.variant === variant));
    const check = (which: Which): LabRow => {
      const failed = runs.filter((r) => r.series[which]).length;
      return { label: CHECK_LABEL[which], unit: 'runs', values: { tunnel: failed }, text: { tunnel: runs.length ? `${failed}/${runs.length}` : '-' }, ratio: false, target: '', met: null };
    };
    return [
      { label: `raw DC A->B (no tunnel), ${RAW_LABEL[variant]}`, unit: 'MB/s', values: { tcp: tcpOneStream, tunnel: median(runs.map((r) => r.MBps)) }, ratio: true, tcpFrom: 'TCP 1 stream', target: '', met: null },
      check('collapse'), check('drop'),
      ...machineRows(() => runs.map((r) => r.load), (f) => ({ tunnel: f('tunnel') })),
    ];
  });
}

function range(values: number[], unit: string): string {
  const v = values.filter((x) => !Number.isNaN(x));
  if (!v.length) return '?';
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  const f = (x: number) => (unit === '%' ? String(Math.round(x)) : x.toFixed(1));
  return lo === hi ? `${f(lo)}${unit}` : `${f(lo)}-${f(hi)}${unit}`;
}

/** The machine during a path's measurements: load average range, CPU used by others, steal. */
export function loadLine(samples: (LoadSample | null)[]): string {
  const s = samples.filter((x): x is LoadSample => x !== null);
  return `load average ${range(s.flatMap((x) => x.loadAverage), '')}, other processes ${range(s.map((x) => x.otherCpuPct), '%')} of the CPU (median ${Math.round(median(s.map((x) => x.otherCpuPct)))}%), steal ${range(s.map((x) => x.stealPct), '%')}`;
}

export function summarizeLab(config: LabConfig, results: PathResult[]): LabSection[] {
  return results.map((res) => {
    const rows: LabRow[] = [];
    for (const dir of config.directions) for (const streams of config.streams) rows.push(...bulkRows(config, res.path, res.bulk, dir, streams));
    rows.push(...pingRows(config, res.path, res.pings));
    const tcpOne = median(done(res.bulk.filter((r) => r.transport === 'tcp' && r.dir === 'down' && r.streams === 1)).map((r) => r.MBps));
    rows.push(...rawRows(config, res.raw, tcpOne));
    const load = loadLine([...res.bulk, ...res.pings, ...res.raw].map((r) => r.load));
    return { path: res.path, load, rows };
  });
}
