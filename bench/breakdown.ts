// Where a round trip goes: one traced ping-pong run with `--workers 0` (host and client started with
// TUNNEL_TRACE, see src/trace.ts), cut into segments by the stamps of the load generator, the client
// and the host. All three stamp CLOCK_MONOTONIC, so their times compare directly.
//
//   load ─▶ client: READ ─ SEND ─ SENT ═══▶ host: MESSAGE ─ WRITE ─▶ echo ─▶ READ ─ SEND ─ SENT ═══▶
//   client: MESSAGE ─ WRITE ─▶ load
//
// A ping whose window holds anything else (a keepalive, a credit update) is left out, not guessed at.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TraceEvent, type TraceFile } from '../src/shared/trace.js';
import { startTunnel, type Apps } from './tunnel.js';
import { call } from './ipc.js';
import type { LatencyResult } from './jobs.js';

export interface Segment { label: string; kind: 'tcp' | 'tunnel' | 'send' | 'transit' | 'total'; p50: number; p90: number; p99: number }
export interface Breakdown { pings: number; matched: number; segments: Segment[] }

type Stamp = [TraceEvent, bigint];

const { READ, SEND, SENT, MESSAGE, WRITE } = TraceEvent;
const CLIENT_SEQUENCE = [READ, SEND, SENT, MESSAGE, WRITE];
const HOST_SEQUENCE = [MESSAGE, WRITE, READ, SEND, SENT];

const SEGMENTS: { label: string; kind: Segment['kind'] }[] = [
  { label: 'load write -> client TCP read', kind: 'tcp' },
  { label: 'client read -> sendMessageBinary', kind: 'tunnel' },
  { label: 'client sendMessageBinary', kind: 'send' },
  { label: 'client -> host DataChannel message', kind: 'transit' },
  { label: 'host message -> TCP write', kind: 'tunnel' },
  { label: 'host write -> echo -> host read', kind: 'tcp' },
  { label: 'host read -> sendMessageBinary', kind: 'tunnel' },
  { label: 'host sendMessageBinary', kind: 'send' },
  { label: 'host -> client DataChannel message', kind: 'transit' },
  { label: 'client message -> TCP write', kind: 'tunnel' },
  { label: 'client write -> load read', kind: 'tcp' },
  { label: 'round trip', kind: 'total' },
];

function quantile(sorted: number[], q: number): number {
  return sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? Number.NaN) : Number.NaN;
}

/** The stamps of `events` with start <= time <= end (events sorted by time). */
function within(events: Stamp[], start: bigint, end: bigint): Stamp[] {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((events[mid]?.[1] ?? 0n) < start) lo = mid + 1;
    else hi = mid;
  }
  const out: Stamp[] = [];
  for (let i = lo; i < events.length && (events[i]?.[1] ?? end + 1n) <= end; i++) out.push(events[i] as Stamp);
  return out;
}

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Pure: the segments of every ping whose client and host stamps are exactly the expected ones. */
export function analyze(pings: [bigint, bigint][], client: Stamp[], host: Stamp[]): Breakdown {
  const byTime = (a: Stamp, b: Stamp) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
  const c = [...client].sort(byTime);
  const h = [...host].sort(byTime);
  const samples: number[][] = SEGMENTS.map(() => []);
  let matched = 0;
  for (const [start, end] of pings) {
    const ce = within(c, start, end);
    const he = within(h, start, end);
    if (!same(ce.map((e) => e[0]), CLIENT_SEQUENCE) || !same(he.map((e) => e[0]), HOST_SEQUENCE)) continue;
    const [cRead, cSend, cSent, cMessage, cWrite] = ce.map((e) => e[1]) as [bigint, bigint, bigint, bigint, bigint];
    const [hMessage, hWrite, hRead, hSend, hSent] = he.map((e) => e[1]) as [bigint, bigint, bigint, bigint, bigint];
    const points = [start, cRead, cSend, cSent, hMessage, hWrite, hRead, hSend, hSent, cMessage, cWrite, end];
    for (let i = 0; i + 1 < points.length; i++) samples[i]?.push(Number((points[i + 1] ?? 0n) - (points[i] ?? 0n)) / 1000);
    samples[SEGMENTS.length - 1]?.push(Number(end - start) / 1000);
    matched++;
  }
  const segments = SEGMENTS.map((s, i) => {
    const sorted = (samples[i] ?? []).sort((a, b) => a - b);
    return { ...s, p50: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), p99: quantile(sorted, 0.99) };
  });
  return { pings: pings.length, matched, segments };
}

function readTrace(dir: string, pid: number): Stamp[] {
  const file = JSON.parse(readFileSync(join(dir, `trace.${pid}.json`), 'utf8')) as TraceFile;
  return file.events.map(([code, t]) => [code, BigInt(t)]);
}

/** One traced run: a fresh `--workers 0` host and client that stamp, `count` pings, the analysis. */
export async function tracedLatency(apps: Apps, connections: number, tunnelArgs: string[], size: number, count: number, warmup: number, timeoutMs: number): Promise<Breakdown> {
  const dir = mkdtempSync(join(tmpdir(), 'tunnel-trace-'));
  try {
    const env = { TUNNEL_TRACE: dir };
    const t = await startTunnel(0, apps, connections, { host: { env }, client: { env } }, tunnelArgs);
    let r: LatencyResult;
    try {
      r = await call<LatencyResult>(apps.load.proc, { t: 'latency', port: t.ports.echo, size, count, warmup, timeoutMs, stamps: true }, timeoutMs + 10000);
    } finally {
      await t.close(); // the stamps are written as the processes exit
    }
    if (r.error) throw new Error(r.error);
    const pings = (r.stamps ?? []).map(([a, b]) => [BigInt(a), BigInt(b)] as [bigint, bigint]);
    return analyze(pings, readTrace(dir, t.client.pid), readTrace(dir, t.host.pid));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Lines for the terminal, under the table. */
export function renderBreakdown(b: Breakdown): string[] {
  const sum = (kind: Segment['kind']) => b.segments.filter((s) => s.kind === kind).map((s) => s.p50);
  const part = (kind: Segment['kind'], name: string) => {
    const v = sum(kind);
    return `${name} ${v.map((x) => x.toFixed(0)).join(' + ')} = ${v.reduce((a, x) => a + x, 0).toFixed(0)}`;
  };
  const total = b.segments.find((s) => s.kind === 'total');
  const lines = [`latency breakdown (--workers 0, one traced run, ${b.matched} of ${b.pings} pings matched; p50 / p90 / p99 µs):`];
  for (const s of b.segments) lines.push(`  ${s.label.padEnd(36)} ${s.p50.toFixed(0).padStart(6)} ${s.p90.toFixed(0).padStart(6)} ${s.p99.toFixed(0).padStart(6)}  ${s.kind}`);
  lines.push(`  p50 by kind: ${part('tcp', 'TCP legs')}; ${part('tunnel', 'tunnel code')}; ${part('send', 'sendMessageBinary')}; ${part('transit', 'DataChannel transit')}; round trip ${total ? total.p50.toFixed(0) : '?'}`);
  return lines;
}
