// From every run's figures to the rows of the table: the median of the runs for each figure, its
// baseline, the ratio, and whether it meets issue 4's target on this machine.

import { median } from './stats.js';
import type { SuiteConfig, SuiteResults, WorkerResults } from './suite.js';

export interface Row {
  group: 'bulk' | 'cpu' | 'ssh' | 'node' | 'latency' | 'churn' | 'many' | 'memory';
  label: string;
  unit: string;
  /** what the baseline is: 'raw DC' (the DataChannel alone), 'TCP' (no tunnel), 'target', or '' */
  baselineName: string;
  baseline: number;
  /** by worker count: the median over the runs */
  values: Record<number, number>;
  /** by worker count: value / baseline */
  ratios: Record<number, number>;
  /** the largest worker count's value over workers 0's (sharded vs single-threaded), when both ran */
  shardRatio: number | null;
  target: string;
  /** by worker count: meets the target (absent: no target) */
  meets: Record<number, boolean>;
}

type Check = (value: number, baseline: number) => boolean;
interface Spec { target: string; check: Check | null }

const none: Spec = { target: '', check: null };
const atLeastRatio = (r: number): Spec => ({ target: `>= ${r} x raw`, check: (v, b) => v / b >= r });
const atMostRatio = (r: number, what: string): Spec => ({ target: `<= ${r} x ${what}`, check: (v, b) => v / b <= r });

function bulkSpec(streams: number): Spec {
  if (streams === 1 || streams === 64) return atLeastRatio(0.9);
  if (streams === 256) return atLeastRatio(0.85);
  return none;
}

function row(group: Row['group'], label: string, unit: string, baselineName: string, baseline: number, workers: number[], value: (w: WorkerResults) => number, spec: Spec, results: SuiteResults): Row {
  const values: Record<number, number> = {};
  const ratios: Record<number, number> = {};
  const meets: Record<number, boolean> = {};
  for (const w of workers) {
    const r = results.tunnel[w];
    const v = r ? value(r) : Number.NaN;
    values[w] = v;
    ratios[w] = v / baseline;
    if (spec.check) meets[w] = !Number.isNaN(v) && spec.check(v, baseline);
  }
  const max = Math.max(...workers);
  const shardRatio = workers.includes(0) && max > 0 ? (values[max] ?? Number.NaN) / (values[0] ?? Number.NaN) : null;
  return { group, label, unit, baselineName, baseline, values, ratios, shardRatio, target: spec.target, meets };
}

const ok = <T extends { ok: boolean }>(list: T[] | undefined): T[] => (list ?? []).filter((x) => x.ok);

export function summarize(config: SuiteConfig, results: SuiteResults): Row[] {
  const rows: Row[] = [];
  const { workers } = config;
  const b = results.baseline;
  const has = (s: string) => (config.scenarios as string[]).includes(s);
  const plural = (n: number) => `${n} stream${n === 1 ? '' : 's'}`;

  if (has('bulk')) {
    const rawUp = median(ok(b.rawUp).map((r) => r.mbps));
    const rawDown = median(ok(b.rawDown).map((r) => r.mbps));
    for (const [dir, name, raw] of [['up', 'upload', rawUp], ['down', 'download', rawDown]] as const) {
      for (const s of config.streams) {
        rows.push(row('bulk', `${name}, ${plural(s)}`, 'MB/s', 'raw DC', raw, workers, (w) => median(ok(w.bulk[dir][s]).map((f) => f.mbps)), bulkSpec(s), results));
      }
    }
    const rawCpu = median([...ok(b.rawUp), ...ok(b.rawDown)].map((r) => r.cpuMsPerMB));
    for (const [dir, name] of [['up', 'upload'], ['down', 'download']] as const) {
      for (const s of config.streams) {
        rows.push(row('cpu', `CPU, ${name}, ${plural(s)}`, 'ms/MB', 'raw DC', rawCpu, workers, (w) => median(ok(w.bulk[dir][s]).map((f) => f.cpuMsPerMB)), atMostRatio(1.15, 'raw'), results));
      }
    }
  }
  if (has('latency')) {
    const raw = ok(b.rawLatency);
    const lat = (w: WorkerResults) => ok(w.latency);
    rows.push(row('latency', `${config.pingBytes} B ping-pong p50`, 'µs', 'raw DC', median(raw.map((l) => l.p50)), workers, (w) => median(lat(w).map((l) => l.p50)),
      { target: '<= raw + 100 µs', check: (v, base) => v - base <= 100 }, results));
    rows.push(row('latency', `${config.pingBytes} B ping-pong p99`, 'µs', 'raw DC', median(raw.map((l) => l.p99)), workers, (w) => median(lat(w).map((l) => l.p99)), atMostRatio(2, 'raw'), results));
    rows.push(row('latency', `${config.pingBytes} B ping-pong max`, 'µs', 'raw DC', median(raw.map((l) => l.max)), workers, (w) => median(lat(w).map((l) => l.max)), none, results));
  }
  if (has('churn')) {
    const tcp = median(ok(b.tcpChurn).map((c) => c.perS));
    rows.push(row('churn', `churn, ${config.churnInflight} in flight`, 'conn/s', 'TCP', tcp, workers, (w) => median(ok(w.churn).map((c) => c.perS)),
      { target: '>= 5000/s', check: (v) => v >= 5000 }, results));
    rows.push(row('churn', 'CPU per churned connection', 'µs', '', Number.NaN, workers, (w) => median(ok(w.churn).map((c) => c.cpuUsPerConn)), none, results));
  }
  if (has('many')) {
    const n = results.connectionsCapped ?? config.connections;
    rows.push(row('many', `${n} connections: succeeded`, 'conns', 'asked', n, workers, (w) => median(w.many.map((m) => m.exchanged)),
      { target: `all ${n}`, check: (v) => v >= n }, results));
    rows.push(row('many', `${n} connections: opened`, 'conn/s', '', Number.NaN, workers, (w) => median(w.many.map((m) => m.openPerS)), none, results));
    rows.push(row('many', 'RSS per connection, host', 'KiB', 'target', 16, workers, (w) => median(w.many.map((m) => m.hostKiBPerConn)), { target: '<= 16 KiB', check: (v) => v <= 16 }, results));
    rows.push(row('many', 'RSS per connection, client', 'KiB', 'target', 16, workers, (w) => median(w.many.map((m) => m.clientKiBPerConn)), { target: '<= 16 KiB', check: (v) => v <= 16 }, results));
  }
  issue13Rows(config, results, rows);
  return rows;
}

const KiB_PER_MiB = 1024;

/** Issue 13's memory targets per side, with default settings (MiB; KiB per idle connection). */
export const MEMORY_TARGETS = { idleMiB: 100, peak64MiB: 192, perConnKiB: 16 } as const;

/** The ssh -L rows and the memory rows (issue 13): each figure beside ssh -L or beside its target. */
function issue13Rows(config: SuiteConfig, results: SuiteResults, rows: Row[]): void {
  const { workers } = config;
  const b = results.baseline;
  const has = (s: string) => (config.scenarios as string[]).includes(s);
  const plural = (n: number) => `${n} stream${n === 1 ? '' : 's'}`;
  const ssh = b.ssh;
  if (!b.sshSkipped) {
    if (has('bulk')) {
      for (const [dir, name] of [['up', 'upload'], ['down', 'download']] as const) {
        for (const s of config.streams) {
          rows.push(row('ssh', `${name}, ${plural(s)}`, 'MB/s', 'ssh -L', median(ok(ssh[dir][s]).map((f) => f.mbps)), workers, (w) => median(ok(w.bulk[dir][s]).map((f) => f.mbps)), none, results));
        }
      }
      const sshCpu = median(Object.values(ssh.up).concat(Object.values(ssh.down)).flatMap((l) => ok(l)).map((f) => f.cpuMsPerMB));
      const cpu = (w: WorkerResults) => median([...Object.values(w.bulk.up), ...Object.values(w.bulk.down)].flatMap((l) => ok(l)).map((f) => f.cpuMsPerMB));
      rows.push(row('ssh', 'CPU per MB, all bulk runs', 'ms/MB', 'ssh -L', sshCpu, workers, cpu, none, results));
    }
    if (has('latency')) {
      rows.push(row('ssh', `${config.pingBytes} B ping-pong p50`, 'µs', 'ssh -L', median(ok(ssh.latency).map((l) => l.p50)), workers, (w) => median(ok(w.latency).map((l) => l.p50)), none, results));
    }
    if (has('churn')) {
      const perS = median(ok(ssh.churn).map((c) => c.perS));
      rows.push(row('ssh', `churn, ${config.churnInflight} in flight`, 'conn/s', 'ssh -L', perS, workers, (w) => median(ok(w.churn).map((c) => c.perS)),
        { target: '>= ssh -L', check: (v, base) => v >= base }, results));
      rows.push(row('ssh', 'CPU per churned connection', 'µs', 'ssh -L', median(ok(ssh.churn).map((c) => c.cpuUsPerConn)), workers, (w) => median(ok(w.churn).map((c) => c.cpuUsPerConn)),
        { target: '<= ssh -L', check: (v, base) => v <= base }, results));
    }
  }
  // the floor: what a tunnel built on Node's sockets would do if the tunnel itself cost nothing
  const node = b.node;
  if (has('latency') && ok(node.latency).length) {
    rows.push(row('node', `${config.pingBytes} B ping-pong p50`, 'µs', 'node proxy', median(ok(node.latency).map((l) => l.p50)), workers, (w) => median(ok(w.latency).map((l) => l.p50)), none, results));
  }
  if (has('churn') && ok(node.churn).length) {
    rows.push(row('node', `churn, ${config.churnInflight} in flight`, 'conn/s', 'node proxy', median(ok(node.churn).map((c) => c.perS)), workers, (w) => median(ok(w.churn).map((c) => c.perS)), none, results));
    rows.push(row('node', 'CPU per churned connection', 'µs', 'node proxy', median(ok(node.churn).map((c) => c.cpuUsPerConn)), workers, (w) => median(ok(w.churn).map((c) => c.cpuUsPerConn)), none, results));
  }
  const mib = (kib: number) => kib / KiB_PER_MiB;
  const idle = MEMORY_TARGETS.idleMiB;
  rows.push(row('memory', 'idle RSS, host', 'MiB', 'target', idle, workers, (w) => mib(median(w.idle.map((i) => i.host))), { target: `<= ${idle} MiB`, check: (v) => v <= idle }, results));
  rows.push(row('memory', 'idle RSS, client', 'MiB', 'target', idle, workers, (w) => mib(median(w.idle.map((i) => i.client))), { target: `<= ${idle} MiB`, check: (v) => v <= idle }, results));
  if (has('bulk') && config.streams.includes(64)) {
    const peak = MEMORY_TARGETS.peak64MiB;
    // on a fresh pair (suite.ts peakRun): the higher of upload and download per run, median over runs
    const side = (w: WorkerResults, key: 'host' | 'client') => mib(median(w.peak64.map((p) => p[key])));
    rows.push(row('memory', 'peak RSS, 64 bulk streams, host', 'MiB', 'target', peak, workers, (w) => side(w, 'host'), { target: `<= ${peak} MiB`, check: (v) => v <= peak }, results));
    rows.push(row('memory', 'peak RSS, 64 bulk streams, client', 'MiB', 'target', peak, workers, (w) => side(w, 'client'), { target: `<= ${peak} MiB`, check: (v) => v <= peak }, results));
  }
}

/** Reference figures printed under the table: what the tunnel's path costs without the tunnel. */
export function references(config: SuiteConfig, results: SuiteResults): string[] {
  const b = results.baseline;
  const lines: string[] = [];
  const has = (s: string) => (config.scenarios as string[]).includes(s);
  if (has('bulk')) {
    const up = ok(b.rawUp);
    const down = ok(b.rawDown);
    lines.push(`raw DataChannel (2 processes, ${up.length}+${down.length} runs): offerer->answerer (the client's direction) ${median(up.map((r) => r.mbps)).toFixed(1)} MB/s, `
      + `answerer->offerer ${median(down.map((r) => r.mbps)).toFixed(1)} MB/s, CPU ${median([...up, ...down].map((r) => r.cpuMsPerMB)).toFixed(2)} ms/MB (both processes)`);
  }
  if (has('bulk') && config.runs > 1) {
    // the noise to read the ratios against: on a shared 2-core machine runs differ by 10-20 %
    const spread = (v: number[]) => (v.length > 1 ? (Math.max(...v) - Math.min(...v)) / median(v) : Number.NaN);
    const pct = (x: number) => `${(100 * x).toFixed(0)} %`;
    const raw = [ok(b.rawUp), ok(b.rawDown)].map((l) => spread(l.map((r) => r.mbps))).filter((x) => !Number.isNaN(x));
    const cells = Object.values(results.tunnel).flatMap((w) => [...Object.values(w.bulk.up), ...Object.values(w.bulk.down)])
      .map((runs) => spread(ok(runs).map((f) => f.mbps))).filter((x) => !Number.isNaN(x));
    if (raw.length && cells.length) {
      lines.push(`run-to-run spread of a throughput figure ((max - min) / median of its ${config.runs} runs): raw DC ${raw.map(pct).join(' and ')}, `
        + `tunnel cells median ${pct(median(cells))}, widest ${pct(Math.max(...cells))}`);
    }
  }
  if (has('bulk')) {
    const apps = Object.values(results.tunnel).flatMap((w) => [...Object.values(w.bulk.up), ...Object.values(w.bulk.down)].flat()).filter((f) => f.ok);
    if (apps.length) lines.push(`the load generator and the service (the applications, on the same cores) used ${median(apps.map((f) => f.appsCpuMsPerMB)).toFixed(2)} ms CPU/MB besides`);
  }
  if (b.sshSkipped) lines.push(`ssh -L baseline skipped: ${b.sshSkipped}`);
  else if (b.ssh.idle.length) {
    const mib = (k: number) => (k / 1024).toFixed(1);
    lines.push(`ssh -L idle RSS: ssh ${mib(median(b.ssh.idle.map((i) => i.client)))} MiB, sshd session ${mib(median(b.ssh.idle.map((i) => i.host)))} MiB`);
  }
  if (has('latency')) {
    const tcp = ok(b.tcpLatency);
    if (tcp.length) {
      lines.push(`direct TCP to the echo service (no tunnel): p50 ${median(tcp.map((l) => l.p50)).toFixed(0)} µs, p99 ${median(tcp.map((l) => l.p99)).toFixed(0)} µs `
        + '(the tunnel path adds two such TCP legs to the raw DataChannel round trip)');
    }
  }
  return lines;
}
