// The tunnel under test, as deployed: `tunnel host` and `tunnel client` as two processes started from
// the CLI, the services (bench/service.ts) behind the host, the load generator (bench/load.ts) in front
// of the client. Each scenario runs a job in the load generator and reads the tunnel's CPU and memory
// from /proc.
//
//   load ──TCP──▶ client ══ DataChannel (127.0.0.1) ══▶ host ──TCP──▶ service (sink | source | echo)

import { randomInt } from 'node:crypto';
import { forkScript, spawnCli, waitForLines, stop, ensureFdLimit, type Child, type Launch } from './children.js';
import { call } from './ipc.js';
import { cpuMs, rssKiB } from './proc.js';
import { freePort } from '../src/cli/loopback.js';
import type { BulkResult, ChurnResult, LatencyResult, LatencySummary, LoadJob, ManyResult, ReleaseResult, ServicePorts } from './jobs.js';

/** Time for a host or client to print its banner (ms): includes ICE on loopback. */
const START_TIMEOUT_MS = 30000;
/** Margin on top of a job's own bound before the harness gives up on the child (ms). */
const CALL_MARGIN_MS = 10000;
/** File descriptors a process needs besides its connections: listeners, pipes, the ICE socket, node itself. */
const FD_SPARE = 512;

export interface Apps {
  service: Child;
  load: Child;
  ports: ServicePorts;
  close(): Promise<void>;
}

export interface Tunnel {
  workers: number;
  host: Child;
  client: Child;
  /** the client's forwarded ports, one per service */
  ports: ServicePorts;
  /** the /metrics URLs, when the tunnel was started with --metrics */
  metrics: { host: string; client: string } | null;
  close(): Promise<void>;
}

/** The service and the load generator: they live for the whole run. */
export async function startApps(): Promise<Apps> {
  const service = forkScript('service', 'service.js');
  const load = forkScript('load', 'load.js');
  const close = async () => { await Promise.all([stop(service, 1000), stop(load, 1000)]); };
  try {
    const ports = await call<ServicePorts>(service.proc, { t: 'ports' }, 10000);
    return { service, load, ports, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Makes sure the load generator and the service may hold `connections` sockets; returns what they may. */
export function raiseFdLimits(apps: Apps, connections: number): number {
  const need = connections + FD_SPARE;
  return Math.min(ensureFdLimit(apps.load, need), ensureFdLimit(apps.service, need)) - FD_SPARE;
}

export async function startTunnel(workers: number, apps: Apps, connections: number, launch: { host?: Launch; client?: Launch } = {}, extraArgs: string[] = []): Promise<Tunnel> {
  const pin = String(randomInt(0, 100_000_000)).padStart(8, '0');
  const common = ['--pin', pin, '--ice-bind', '127.0.0.1', '--workers', String(workers), '--log-level', 'warn', ...extraArgs];
  const host = spawnCli(`host(w=${workers})`, [
    'host', '--listen', '127.0.0.1:0',
    '--expose', `sink=127.0.0.1:${apps.ports.sink}`,
    '--expose', `source=127.0.0.1:${apps.ports.source}`,
    '--expose', `echo=127.0.0.1:${apps.ports.echo}`,
    ...common,
  ], launch.host);
  let client: Child | null = null;
  const watch = (c: Child) => call(apps.service.proc, { t: 'watch', pid: c.pid }, 5000).catch(() => {});
  const unwatch = (c: Child) => call(apps.service.proc, { t: 'unwatch', pid: c.pid }, 5000).catch(() => {});
  await watch(host);
  const close = async () => {
    // the client first: its shards send their RESETs while the host still listens
    if (client) { await stop(client); await unwatch(client); }
    await stop(host);
    await unwatch(host);
  };
  const withMetrics = extraArgs.includes('--metrics');
  const metricsUrl = (lines: string[]) => /^metrics on (\S+)/.exec(lines.find((l) => l.startsWith('metrics on ')) ?? '')?.[1];
  try {
    const banner = await waitForLines(host, (lines) => lines.some((l) => l.startsWith('tunnel host listening on ')) && (!withMetrics || metricsUrl(lines) !== undefined), START_TIMEOUT_MS);
    const url = banner.find((l) => l.startsWith('tunnel host listening on '))?.slice('tunnel host listening on '.length).trim();
    if (!url) throw new Error('host printed no URL');
    const ports: ServicePorts = { sink: await freePort(), source: await freePort(), echo: await freePort() };
    const c = spawnCli(`client(w=${workers})`, [
      'client', '--connect', url,
      '--forward', `127.0.0.1:${ports.sink}=sink`,
      '--forward', `127.0.0.1:${ports.source}=source`,
      '--forward', `127.0.0.1:${ports.echo}=echo`,
      ...common,
    ], launch.client);
    client = c;
    await watch(c);
    const clientBanner = await waitForLines(c, (lines) => lines.filter((l) => l.startsWith('forwarding ')).length >= 3 && (!withMetrics || metricsUrl(lines) !== undefined), START_TIMEOUT_MS);
    ensureFdLimit(host, connections + FD_SPARE);
    ensureFdLimit(c, connections + FD_SPARE);
    const metrics = withMetrics ? { host: metricsUrl(banner) ?? '', client: metricsUrl(clientBanner) ?? '' } : null;
    return { workers, host, client: c, ports, metrics, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Null while host and client both run, else which one has exited. */
export function exitedPart(t: Tunnel): string | null {
  for (const c of [t.host, t.client]) if (c.proc.exitCode !== null || c.proc.signalCode !== null) return `${c.name} exited (${c.proc.signalCode ?? c.proc.exitCode}): ${c.log.slice(-3).join(' | ')}`;
  return null;
}

/** CPU of the tunnel's two processes together (ms, all threads). */
function tunnelCpuMs(t: Tunnel): number {
  return cpuMs(t.host.pid) + cpuMs(t.client.pid);
}

/** A baseline that forwards the services like the tunnel (ssh -L), with its own CPU reading. */
export interface Forward { ports: ServicePorts; cpuMs(): number }

const isTunnel = (t: Tunnel | Forward): t is Tunnel => 'host' in t;
const pathCpuMs = (t: Tunnel | Forward) => (isTunnel(t) ? tunnelCpuMs(t) : t.cpuMs());

/** Resident memory of host and client at this moment (KiB). */
export function tunnelRssKiB(t: Tunnel): { host: number; client: number } {
  return { host: rssKiB(t.host.pid), client: rssKiB(t.client.pid) };
}

/** How often the harness reads host and client VmRSS during a bulk run, for its peak (ms). */
const RSS_SAMPLE_MS = 50;

/** Samples the tunnel's RSS until stopped; returns the highest reading per side (KiB). */
function peakRss(t: Tunnel): () => { host: number; client: number } {
  const peak = tunnelRssKiB(t);
  const timer = setInterval(() => {
    const now = tunnelRssKiB(t);
    if (now.host > peak.host) peak.host = now.host;
    if (now.client > peak.client) peak.client = now.client;
  }, RSS_SAMPLE_MS);
  return () => { clearInterval(timer); return peak; };
}

function job<T>(apps: Apps, j: LoadJob & { timeoutMs: number }): Promise<T> {
  return call<T>(apps.load.proc, j, j.timeoutMs + CALL_MARGIN_MS);
}

export interface BulkFigure {
  ok: boolean;
  mbps: number;
  /** host + client CPU per MB moved (ms, all threads); NaN without a tunnel */
  cpuMsPerMB: number;
  /** load generator + service CPU per MB: the applications, sharing the same cores */
  appsCpuMsPerMB: number;
  /** the highest VmRSS of host and client during the run (KiB; sampled every 50 ms); tunnel only */
  peakRssKiB?: { host: number; client: number };
  bytes: number;
  ms: number;
  error?: string;
}

/** `streams` connections move `totalBytes` between them through the tunnel (or directly, with t = null). */
export async function bulk(apps: Apps, t: Tunnel | Forward | null, dir: 'up' | 'down', streams: number, totalBytes: number, timeoutMs: number, slowReaderBytesPerSecond?: number): Promise<BulkFigure> {
  const port = t ? (dir === 'up' ? t.ports.sink : t.ports.source) : (dir === 'up' ? apps.ports.sink : apps.ports.source);
  const bytesPerStream = Math.max(1, Math.floor(totalBytes / streams));
  const appsCpu = () => cpuMs(apps.load.pid) + cpuMs(apps.service.pid);
  const cpu0 = t ? pathCpuMs(t) : 0;
  const apps0 = appsCpu();
  const stopPeak = t && isTunnel(t) ? peakRss(t) : null;
  let r: BulkResult;
  let peak: { host: number; client: number } | undefined;
  try {
    r = await job<BulkResult>(apps, { t: 'bulk', port, dir, streams, bytesPerStream, timeoutMs, ...(slowReaderBytesPerSecond ? { slowReaderBytesPerSecond } : {}) });
  } finally {
    peak = stopPeak?.();
  }
  const cpu = t ? pathCpuMs(t) - cpu0 : Number.NaN;
  const appsMs = appsCpu() - apps0;
  const mb = r.bytes / 1e6;
  const figure: BulkFigure = {
    ok: r.ok, mbps: r.ok ? mb / (r.ms / 1000) : Number.NaN,
    cpuMsPerMB: r.ok ? cpu / mb : Number.NaN, appsCpuMsPerMB: r.ok ? appsMs / mb : Number.NaN,
    bytes: r.bytes, ms: r.ms,
  };
  if (peak) figure.peakRssKiB = peak;
  if (r.error) figure.error = r.error;
  return figure;
}

export async function latency(apps: Apps, port: number, size: number, count: number, warmup: number, timeoutMs: number): Promise<LatencySummary & { ok: boolean; error?: string }> {
  const r = await job<LatencyResult>(apps, { t: 'latency', port, size, count, warmup, timeoutMs });
  return r.error ? { ...r.latency, ok: r.ok, error: r.error } : { ...r.latency, ok: r.ok };
}

export interface ChurnFigure {
  ok: boolean;
  perS: number;
  done: number;
  failed: number;
  /** host + client CPU per connection (µs, all threads); NaN without a tunnel */
  cpuUsPerConn: number;
  error?: string;
}

/** Open, exchange, close, `inflight` at a time, through the tunnel `t` (its echo forward) or directly to the echo service. */
export async function churn(apps: Apps, t: Tunnel | Forward | null, size: number, total: number, inflight: number, timeoutMs: number): Promise<ChurnFigure> {
  const port = t ? t.ports.echo : apps.ports.echo;
  const cpu0 = t ? pathCpuMs(t) : Number.NaN;
  const r = await job<ChurnResult>(apps, { t: 'churn', port, size, total, inflight, timeoutMs });
  const cpuUs = ((t ? pathCpuMs(t) : Number.NaN) - cpu0) * 1000;
  const figure: ChurnFigure = { ok: r.ok, perS: r.done / (r.ms / 1000), done: r.done, failed: r.failed, cpuUsPerConn: cpuUs / Math.max(1, r.done) };
  if (r.error) figure.error = r.error;
  return figure;
}

export interface ManyFigure {
  ok: boolean;
  n: number;
  exchanged: number;
  failed: number;
  openPerS: number;
  hostKiBPerConn: number;
  clientKiBPerConn: number;
  hostRssKiB: number;
  clientRssKiB: number;
  releaseMs: number;
  error?: string;
}

/** Time the tunnel is left idle with everything open before memory is read (ms). */
const IDLE_SETTLE_MS = 1000;

/** N connections open at once through the tunnel, each exchanging `size` bytes, then held idle. */
export async function many(apps: Apps, t: Tunnel, n: number, size: number, opening: number, timeoutMs: number): Promise<ManyFigure> {
  const host0 = rssKiB(t.host.pid);
  const client0 = rssKiB(t.client.pid);
  let r: ManyResult;
  let host1: number;
  let client1: number;
  let released: ReleaseResult;
  try {
    r = await job<ManyResult>(apps, { t: 'many', port: t.ports.echo, n, size, opening, timeoutMs });
    await new Promise((resolve) => setTimeout(resolve, IDLE_SETTLE_MS));
    host1 = rssKiB(t.host.pid);
    client1 = rssKiB(t.client.pid);
  } finally {
    // whatever happened, the next scenario starts without these connections
    released = await job<ReleaseResult>(apps, { t: 'release', timeoutMs });
    await serviceIdle(apps, timeoutMs);
  }
  const figure: ManyFigure = {
    ok: r.ok, n, exchanged: r.exchanged, failed: r.failed,
    openPerS: r.exchanged / (r.ms / 1000),
    hostKiBPerConn: (host1 - host0) / Math.max(1, r.exchanged),
    clientKiBPerConn: (client1 - client0) / Math.max(1, r.exchanged),
    hostRssKiB: host1, clientRssKiB: client1,
    releaseMs: released.ms,
  };
  if (r.error) figure.error = r.error;
  return figure;
}

/** Waits until the service holds no connections: the host has closed every stream (bounded). */
export async function serviceIdle(apps: Apps, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { open } = await call<{ open: number }>(apps.service.proc, { t: 'count' }, 5000);
    if (open === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}
