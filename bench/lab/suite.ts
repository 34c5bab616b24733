// `tunnel bench --lab`: what runs on each lab path, in which order, how often. One lab for the whole
// bench (the path changes in place with lab.shape); the services and load generators live as long as
// the lab; a transport (tunnel host + client, ssh -L) is started fresh for each measurement.
//
// Per path and run, each figure measured through plain TCP, the tunnel and ssh -L back to back, so
// load from other work on the machine touches all three alike:
//   bulk       `streams` connections moving the checked pattern for `seconds`, MB/s of every second
//   ping-pong  1 KiB round trips for `pingSeconds`, alone, then beside one bulk download
//   raw DC     one DataChannel A → B without the tunnel (rawdc.ts), 4 MiB SCTP buffers, fully
//              reliable and with maxRetransmits 65535 (issue 12's fix)

import { startApps, timed, pings, type LabApps } from './apps.js';
import { forwardServicePorts, plainTcp, sshForward, startSshd, type Sshd, type Transport, type TransportName } from './baselines.js';
import { forwardSignaling, startLabTunnel, type TunnelSettings } from './tunnel-pair.js';
import { runRawDc } from './rawdc.js';
import { SCTP_SETTINGS } from '../../src/webrtc/sctp-settings.js';
import { checkSeries, meanOf, RAMP_SECONDS, type SeriesCheck } from './series.js';
import { loadSince, snapshot, type LoadSample } from './machine-load.js';
import type { Lab, Shape } from './lab.js';
import type { Progress } from '../progress.js';

export interface LabPath { name: string; label: string; shape: Shape; loss: boolean }

export const PATHS: readonly LabPath[] = [
  { name: 'rtt40', label: 'RTT 40 ms', shape: { delayMs: 20 }, loss: false },
  { name: 'rtt100-400mbit', label: 'RTT 100 ms, 400 Mbit/s', shape: { delayMs: 50, rateMbit: 400 }, loss: false },
  { name: 'rtt40-loss1', label: 'RTT 40 ms, 1% loss each way', shape: { delayMs: 20, lossPct: 1 }, loss: true },
];

export type Direction = 'down' | 'up';
export type RawVariant = 'reliable' | 'maxrtx';
export const RAW_VARIANTS: readonly RawVariant[] = ['reliable', 'maxrtx'];
/** maxRetransmits of the raw channel's second variant: issue 12's fix for the collapse. */
const RAW_MAX_RETRANSMITS = 65535;

export interface LabConfig {
  runs: number;
  paths: LabPath[];
  /** length of a bulk measurement (s) */
  seconds: number;
  streams: number[];
  directions: Direction[];
  /** ping-pong: pings are started for this long (s) */
  pingSeconds: number;
  pingBytes: number;
  pingWarmup: number;
  pingMaxCount: number;
  /** a ping still out this long after the last one started counts with its time so far (ms) */
  pingGraceMs: number;
  /** an upload's wait for the service's final count after its window (ms) */
  drainMs: number;
  transports: TransportName[];
  raw: boolean;
  tunnel: TunnelSettings;
  prefix: string;
  /** TCP congestion control in the two sites (net.ipv4.tcp_congestion_control); the kernel's default if unset */
  tcpCc?: string;
}

export interface BulkRun {
  transport: TransportName; dir: Direction; streams: number; run: number;
  ok: boolean; error?: string;
  /** MB/s over the whole window */
  MBps: number;
  perSecond: number[];
  series: SeriesCheck;
  /** CPU of the transport's processes per MB (ms; NaN for TCP) */
  cpuMsPerMB: number;
  /** upload: the service counted every byte written */
  drained?: boolean;
  load: LoadSample | null;
}

export interface PingRun {
  transport: TransportName; beside: boolean; run: number;
  ok: boolean; error?: string;
  p50Ms: number; p99Ms: number; maxMs: number; n: number;
  /** pings still out at the end, counted with their time so far (p99 is then a lower bound) */
  unanswered: number;
  /** beside: the bulk download's MB/s and seconds during the pings */
  bulkMBps?: number;
  bulkPerSecond?: number[];
  load: LoadSample | null;
}

export interface RawRun {
  variant: RawVariant; run: number;
  ok: boolean; error?: string;
  MBps: number;
  perSecond: number[];
  series: SeriesCheck;
  path: string;
  load: LoadSample | null;
}

export interface PathResult {
  path: LabPath;
  bulk: BulkRun[];
  pings: PingRun[];
  raw: RawRun[];
  errors: string[];
}

export function countSteps(config: LabConfig): number {
  const perRun = config.directions.length * config.streams.length * config.transports.length
    + 2 * config.transports.length + (config.raw ? RAW_VARIANTS.length : 0);
  return config.paths.length * config.runs * perRun;
}

interface Context { lab: Lab; apps: LabApps; sshd: Sshd | null; config: LabConfig; progress: Progress }

async function open(ctx: Context, name: TransportName): Promise<Transport> {
  if (name === 'tcp') return plainTcp(ctx.lab, ctx.apps);
  if (name === 'tunnel') return startLabTunnel(ctx.lab, ctx.apps, ctx.config.tunnel);
  if (!ctx.sshd) throw new Error('sshd is not running');
  return sshForward(ctx.lab, ctx.apps, ctx.sshd);
}

/** Starts the transport, runs `measure` with it, always stops it. */
async function through<T>(ctx: Context, name: TransportName, measure: (t: Transport) => Promise<T>): Promise<T> {
  const t = await open(ctx, name);
  try {
    return await measure(t);
  } finally {
    await t.stop();
  }
}

const NO_SERIES: SeriesCheck = { medianSecond: Number.NaN, minSecond: Number.NaN, maxSecond: Number.NaN, lowSeconds: 0, dropSeconds: 0, collapse: false, drop: false };

async function bulkRun(ctx: Context, name: TransportName, dir: Direction, streams: number, run: number): Promise<BulkRun> {
  const base = { transport: name, dir, streams, run };
  try {
    return await through(ctx, name, async (t) => {
      const cpu0 = t.cpuMs();
      const start = snapshot(ctx.lab);
      const r = await timed(ctx.apps.load, t.target, dir, streams, ctx.config.seconds, ctx.config.drainMs);
      const load = loadSince(ctx.lab, start);
      const MBps = r.bytes / 1e6 / (r.ms / 1000);
      const out: BulkRun = {
        ...base, ok: r.ok, MBps, perSecond: r.perSecond, series: checkSeries(r.perSecond),
        cpuMsPerMB: (t.cpuMs() - cpu0) / (r.bytes / 1e6), load,
      };
      if (r.drained !== undefined) out.drained = r.drained;
      if (r.error) out.error = r.error;
      return out;
    });
  } catch (err) {
    return { ...base, ok: false, error: (err as Error).message, MBps: Number.NaN, perSecond: [], series: NO_SERIES, cpuMsPerMB: Number.NaN, load: null };
  }
}

async function pingRun(ctx: Context, name: TransportName, beside: boolean, run: number): Promise<PingRun> {
  const { config } = ctx;
  const base = { transport: name, beside, run };
  try {
    return await through(ctx, name, async (t) => {
      const start = snapshot(ctx.lab);
      // beside: one download that ramps up first and outlasts the pings by a little
      const bulk = beside ? timed(ctx.apps.load, t.target, 'down', 1, config.pingSeconds + RAMP_SECONDS + 2, config.drainMs) : null;
      bulk?.catch(() => {});
      if (beside) await new Promise((resolve) => setTimeout(resolve, RAMP_SECONDS * 1000));
      const r = await pings(ctx.apps.pinger, t.target, config.pingBytes, config.pingSeconds, config.pingMaxCount, config.pingWarmup, config.pingGraceMs);
      const b = bulk ? await bulk : null;
      const load = loadSince(ctx.lab, start);
      const out: PingRun = {
        ...base, ok: r.ok && (b ? b.ok : true), p50Ms: r.latency.p50 / 1000, p99Ms: r.latency.p99 / 1000, maxMs: r.latency.max / 1000,
        n: r.latency.n, unanswered: r.unanswered, load,
      };
      if (b) { out.bulkMBps = meanOf(b.perSecond.slice(RAMP_SECONDS)); out.bulkPerSecond = b.perSecond; }
      const error = r.error ?? (b && !b.ok ? `the bulk beside: ${b.error ?? 'failed'}` : undefined);
      if (error) out.error = error;
      return out;
    });
  } catch (err) {
    return { ...base, ok: false, error: (err as Error).message, p50Ms: Number.NaN, p99Ms: Number.NaN, maxMs: Number.NaN, n: 0, unanswered: 0, load: null };
  }
}

async function rawRun(ctx: Context, variant: RawVariant, run: number): Promise<RawRun> {
  const start = snapshot(ctx.lab);
  try {
    const r = await runRawDc(ctx.lab, {
      seconds: ctx.config.seconds,
      iceServers: [ctx.lab.stunUrl],
      // the tunnel's SCTP settings (buffers, congestion control), so the baseline is its transport
      sctp: SCTP_SETTINGS,
      ...(variant === 'maxrtx' ? { maxRetransmits: RAW_MAX_RETRANSMITS } : {}),
    });
    const perSecond = r.perSecond.slice(0, ctx.config.seconds);
    const out: RawRun = {
      variant, run, ok: r.ok, MBps: meanOf(perSecond), perSecond, series: checkSeries(perSecond),
      path: r.offer ? `${r.offer.local} -> ${r.offer.remote}` : '?', load: loadSince(ctx.lab, start),
    };
    if (r.error) out.error = r.error;
    return out;
  } catch (err) {
    return { variant, run, ok: false, error: (err as Error).message, MBps: Number.NaN, perSecond: [], series: NO_SERIES, path: '?', load: null };
  }
}

const TRANSPORT_LABEL: Record<TransportName, string> = { tcp: 'TCP', tunnel: 'tunnel', ssh: 'ssh -L' };

/** Everything on every path. `lab` is up; the applications, forwards and sshd are set up here. */
export async function runLabSuite(lab: Lab, config: LabConfig, progress: Progress): Promise<PathResult[]> {
  const apps = await startApps(lab);
  let sshd: Sshd | null = null;
  try {
    await forwardServicePorts(lab, apps);
    await forwardSignaling(lab);
    if (config.transports.includes('ssh')) sshd = await startSshd(lab);
    const ctx: Context = { lab, apps, sshd, config, progress };
    const results: PathResult[] = [];
    for (const path of config.paths) {
      await lab.shape(path.shape);
      const result: PathResult = { path, bulk: [], pings: [], raw: [], errors: [] };
      results.push(result);
      const note = (what: string, r: { ok: boolean; error?: string }) => {
        if (r.ok) return;
        const line = `${path.name}: ${what}: ${r.error ?? 'failed'}`;
        result.errors.push(line);
        progress.note(line);
      };
      for (let run = 1; run <= config.runs; run++) {
        const tag = `${path.name} run ${run}/${config.runs}`;
        for (const dir of config.directions) {
          for (const streams of config.streams) {
            for (const name of config.transports) {
              progress.step(`${tag}: ${dir === 'down' ? 'download' : 'upload'} ${streams} stream(s), ${TRANSPORT_LABEL[name]}`);
              const r = await bulkRun(ctx, name, dir, streams, run);
              result.bulk.push(r);
              note(`${dir} ${streams} via ${name}, run ${run}`, r);
            }
          }
        }
        for (const beside of [false, true]) {
          for (const name of config.transports) {
            progress.step(`${tag}: ping-pong ${beside ? 'beside a bulk download' : 'alone'}, ${TRANSPORT_LABEL[name]}`);
            const r = await pingRun(ctx, name, beside, run);
            result.pings.push(r);
            note(`ping-pong ${beside ? 'beside bulk' : 'alone'} via ${name}, run ${run}`, r);
          }
        }
        if (config.raw) {
          for (const variant of RAW_VARIANTS) {
            progress.step(`${tag}: raw DataChannel, ${variant === 'maxrtx' ? `maxRetransmits ${RAW_MAX_RETRANSMITS}` : 'reliable'}`);
            const r = await rawRun(ctx, variant, run);
            result.raw.push(r);
            note(`raw DC ${variant}, run ${run}`, r);
          }
        }
      }
    }
    return results;
  } finally {
    await lab.shape({}).catch(() => {});
    await sshd?.close();
    await apps.close();
  }
}
