// The benchmark suite: which scenarios, in which order, how many times. It collects every run's
// figures; summary.ts reduces them to medians and rows.
//
// Each run: the baselines — the raw DataChannel pair (bulk each way, latency) and direct TCP to the
// service (churn, latency), what the tunnel would be if it cost nothing — then every worker count, each
// on a freshly started host + client, in this order:
//   latency (idle tunnel) -> many connections (memory read against a fresh process) -> churn -> bulk
// and, after the runs, one traced ping-pong run with --workers 0: where a round trip goes (breakdown.ts).

import { startRawPair, rawBulk, rawLatency, type RawBulk, type RawPair } from './raw.js';
import { startApps, startTunnel, raiseFdLimits, bulk, latency, churn, many, serviceIdle, exitedPart, tunnelRssKiB, type Apps, type BulkFigure, type ChurnFigure, type ManyFigure, type Tunnel } from './tunnel.js';
import { startSsh, sshSkipReason, type SshPath } from './ssh.js';
import { startNodeProxy, type NodeProxy } from './node-proxy.js';
import type { LatencySummary } from './jobs.js';
import { tracedLatency, type Breakdown } from './breakdown.js';
import type { Progress } from './progress.js';

export const SCENARIOS = ['bulk', 'latency', 'churn', 'many'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface SuiteConfig {
  runs: number;
  /** extra flags for both tunnel processes, e.g. ['--window', '4194304'] */
  tunnelArgs: string[];
  /** measure the ssh -L baseline too (where sshd and ssh are installed) */
  ssh: boolean;
  workers: number[];
  scenarios: Scenario[];
  /** concurrent streams of the bulk scenario */
  streams: number[];
  /** bytes one bulk measurement moves, split over its streams */
  bulkBytes: number;
  bulkTimeoutMs: number;
  /** ping-pong message size (bytes), measured round trips, unmeasured warm-up round trips */
  pingBytes: number;
  pings: number;
  pingWarmup: number;
  latencyTimeoutMs: number;
  /** connections per churn measurement, and how many at a time */
  churnTotal: number;
  churnInflight: number;
  churnTimeoutMs: number;
  /** connections held at once, bytes each exchanges, handshakes at a time while opening */
  connections: number;
  connectionBytes: number;
  opening: number;
  manyTimeoutMs: number;
}

export type Latency = LatencySummary & { ok: boolean; error?: string };

export interface WorkerResults {
  bulk: { up: Record<number, BulkFigure[]>; down: Record<number, BulkFigure[]> };
  latency: Latency[];
  churn: ChurnFigure[];
  many: ManyFigure[];
  /** host and client VmRSS (KiB) with the tunnel up and idle, read IDLE_RSS_SETTLE_MS after start */
  idle: { host: number; client: number }[];
  /** peak VmRSS (KiB) of a fresh host + client during a 64-stream upload and download, the higher per side */
  peak64: { host: number; client: number }[];
  errors: string[];
  /** things that went wrong but were recovered from (a start-up that succeeded on the second try) */
  warnings: string[];
}

export interface BaselineResults {
  rawUp: RawBulk[];
  rawDown: RawBulk[];
  rawLatency: Latency[];
  tcpLatency: Latency[];
  tcpChurn: ChurnFigure[];
  /** ssh -L (aes128-gcm) on loopback through the same services: bulk, latency and churn */
  ssh: { up: Record<number, BulkFigure[]>; down: Record<number, BulkFigure[]>; latency: Latency[]; churn: ChurnFigure[]; idle: { host: number; client: number }[] };
  /** why the ssh -L baseline did not run, if it did not */
  sshSkipped?: string;
  /** a plain Node TCP port forward (./node-proxy.ts): the floor of a tunnel on Node's sockets */
  node: { latency: Latency[]; churn: ChurnFigure[] };
  errors: string[];
}

/** How long a fresh host + client sit idle before their resident memory is read (ms). */
const IDLE_RSS_SETTLE_MS = 1000;

export interface SuiteResults {
  baseline: BaselineResults;
  tunnel: Record<number, WorkerResults>;
  /** connections the processes could hold (open-files limit), when below the request */
  connectionsCapped?: number;
  /** the latency breakdown of one traced run (latency scenario with workers 0 only) */
  breakdown?: Breakdown;
  breakdownError?: string;
}

/** How many progress steps a configuration takes (for the progress indicator). */
export function countSteps(c: SuiteConfig): number {
  const has = (s: Scenario) => c.scenarios.includes(s);
  const ssh = c.ssh && sshSkipReason() === null && (has('bulk') || has('latency') || has('churn'))
    ? 1 + (has('bulk') ? 2 * c.streams.length : 0) + (has('latency') ? 1 : 0) + (has('churn') ? 1 : 0) : 0;
  const node = (has('latency') ? 1 : 0) + (has('churn') ? 1 : 0);
  const perRawRun = (has('bulk') ? 2 : 0) + (has('latency') ? 2 : 0) + (has('churn') ? 1 : 0) + ssh + node;
  const perTunnelRun = 1 + (has('bulk') && c.streams.includes(64) ? 1 : 0) + (has('latency') ? 1 : 0) + (has('many') ? 1 : 0) + (has('churn') ? 1 : 0) + (has('bulk') ? 2 * c.streams.length : 0);
  const traced = has('latency') && c.workers.includes(0) ? 1 : 0;
  return c.runs * (perRawRun + c.workers.length * perTunnelRun) + traced;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export async function runSuite(config: SuiteConfig, progress: Progress): Promise<SuiteResults> {
  const has = (s: Scenario) => config.scenarios.includes(s);
  const apps = await startApps();
  try {
    let connections = config.connections;
    const results: SuiteResults = {
      baseline: { rawUp: [], rawDown: [], rawLatency: [], tcpLatency: [], tcpChurn: [], ssh: { up: {}, down: {}, latency: [], churn: [], idle: [] }, node: { latency: [], churn: [] }, errors: [] },
      tunnel: {},
    };
    const skip = config.ssh ? sshSkipReason() : 'left out (--no-ssh)';
    if (skip) results.baseline.sshSkipped = skip;
    if (has('many')) {
      const allowed = raiseFdLimits(apps, connections);
      if (allowed < connections) {
        progress.note(`many connections: the open-files limit allows ${allowed}, not ${connections}; capped`);
        connections = allowed;
        results.connectionsCapped = allowed;
      }
    }
    for (const workers of config.workers) results.tunnel[workers] = { bulk: { up: {}, down: {} }, latency: [], churn: [], many: [], idle: [], peak64: [], errors: [], warnings: [] };
    // runs outermost: each run measures the baseline and then every worker count, so a change in the
    // machine's load (other work on it) touches baseline and tunnel alike rather than one worker count
    for (let run = 1; run <= config.runs; run++) {
      await baselines(config, apps, results.baseline, run, progress);
      for (const workers of config.workers) {
        const w = results.tunnel[workers];
        if (!w) continue;
        const tag = `workers ${workers}, run ${run}/${config.runs}`;
        progress.step(`${tag}: starting host + client`);
        let t: Tunnel | null = null;
        try {
          t = await startWithRetry(workers, apps, connections, w, tag, progress, config.tunnelArgs);
          await tunnelRun(config, apps, t, w, connections, tag, progress);
        } catch (err) {
          w.errors.push(`${tag}: ${message(err)}`);
          progress.note(`${tag}: ${message(err)}`);
          if (t) progress.note(t.host.log.concat(t.client.log).slice(-6).join('\n'));
        } finally {
          await t?.close();
          // the next run starts against a service with no leftover connections
          await serviceIdle(apps, 10000).catch(() => false);
        }
        if (has('bulk') && config.streams.includes(64)) await peakRun(config, apps, workers, w, tag, progress);
      }
    }
    if (config.scenarios.includes('latency') && config.workers.includes(0)) {
      progress.step('latency breakdown: one traced ping-pong run, workers 0');
      try {
        results.breakdown = await tracedLatency(apps, connections, config.tunnelArgs, config.pingBytes, config.pings, config.pingWarmup, config.latencyTimeoutMs);
      } catch (err) {
        results.breakdownError = message(err);
        progress.note(`latency breakdown: ${message(err)}`);
      }
    }
    return results;
  } finally {
    await apps.close();
  }
}

/**
 * The memory a 64-stream bulk transfer takes, on a fresh host + client: in the main run it comes after
 * 10,000 held connections and churn, whose heap and malloc arenas the processes keep, so its peak there
 * says more about those than about bulk.
 */
async function peakRun(config: SuiteConfig, apps: Apps, workers: number, w: WorkerResults, tag: string, progress: Progress): Promise<void> {
  progress.step(`${tag}: peak RSS, 64 streams each way on a fresh pair`);
  let t: Tunnel | null = null;
  try {
    t = await startTunnel(workers, apps, 1000, {}, config.tunnelArgs);
    const up = await bulk(apps, t, 'up', 64, config.bulkBytes, config.bulkTimeoutMs);
    const down = await bulk(apps, t, 'down', 64, config.bulkBytes, config.bulkTimeoutMs);
    if (up.ok && down.ok && up.peakRssKiB && down.peakRssKiB) {
      w.peak64.push({ host: Math.max(up.peakRssKiB.host, down.peakRssKiB.host), client: Math.max(up.peakRssKiB.client, down.peakRssKiB.client) });
    }
  } catch (err) {
    w.errors.push(`${tag}: peak RSS run: ${message(err)}`);
  } finally {
    await t?.close();
    await serviceIdle(apps, 10000).catch(() => false);
  }
}

/** A failed start-up is not a measurement: it is retried once, and the failure kept as a warning. */
async function startWithRetry(workers: number, apps: Apps, connections: number, w: WorkerResults, tag: string, progress: Progress, tunnelArgs: string[]): Promise<Tunnel> {
  try {
    return await startTunnel(workers, apps, connections, {}, tunnelArgs);
  } catch (err) {
    w.warnings.push(`${tag}: start-up failed, retried: ${message(err)}`);
    progress.note(`${tag}: start-up failed, retrying: ${message(err)}`);
    await serviceIdle(apps, 10000).catch(() => false);
    return startTunnel(workers, apps, connections, {}, tunnelArgs);
  }
}

async function baselines(config: SuiteConfig, apps: Apps, b: BaselineResults, run: number, progress: Progress): Promise<void> {
  const has = (s: Scenario) => config.scenarios.includes(s);
  const needRaw = has('bulk') || has('latency');
  const tag = `baseline, run ${run}/${config.runs}`;
  let pair: RawPair | null = null;
  try {
    if (needRaw) pair = await startRawPair();
    if (pair && has('bulk')) {
      progress.step(`${tag}: raw DataChannel bulk, offerer -> answerer`);
      b.rawUp.push(await rawBulk(pair, 'offer', config.bulkBytes, config.bulkTimeoutMs));
      progress.step(`${tag}: raw DataChannel bulk, answerer -> offerer`);
      b.rawDown.push(await rawBulk(pair, 'answer', config.bulkBytes, config.bulkTimeoutMs));
    }
    if (pair && has('latency')) {
      progress.step(`${tag}: raw DataChannel ${config.pingBytes}-byte ping-pong`);
      b.rawLatency.push(await rawLatency(pair, config.pingBytes, config.pings, config.pingWarmup, config.latencyTimeoutMs));
    }
  } catch (err) {
    b.errors.push(`${tag}: ${message(err)}`);
    progress.note(`${tag}: ${message(err)}`);
  } finally {
    await pair?.close();
  }
  try {
    if (has('latency')) {
      progress.step(`${tag}: direct TCP ping-pong`);
      b.tcpLatency.push(await latency(apps, apps.ports.echo, config.pingBytes, config.pings, config.pingWarmup, config.latencyTimeoutMs));
    }
    if (has('churn')) {
      progress.step(`${tag}: direct TCP churn`);
      b.tcpChurn.push(await churn(apps, null, 1024, config.churnTotal, config.churnInflight, config.churnTimeoutMs));
    }
  } catch (err) {
    b.errors.push(`${tag}: ${message(err)}`);
    progress.note(`${tag}: ${message(err)}`);
  }
  if (has('latency') || has('churn')) await nodeBaseline(config, apps, b, tag, progress);
  if (!b.sshSkipped && (has('bulk') || has('latency') || has('churn'))) await sshBaseline(config, apps, b, tag, progress);
}

/** Latency and churn through a plain Node port forward, started fresh for each run. */
async function nodeBaseline(config: SuiteConfig, apps: Apps, b: BaselineResults, tag: string, progress: Progress): Promise<void> {
  const has = (s: Scenario) => config.scenarios.includes(s);
  let proxy: NodeProxy | null = null;
  try {
    proxy = await startNodeProxy(apps.ports);
    if (has('latency')) {
      progress.step(`${tag}: node proxy ${config.pingBytes}-byte ping-pong`);
      b.node.latency.push(await latency(apps, proxy.ports.echo, config.pingBytes, config.pings, config.pingWarmup, config.latencyTimeoutMs));
    }
    if (has('churn')) {
      progress.step(`${tag}: node proxy churn`);
      b.node.churn.push(await churn(apps, proxy, 1024, config.churnTotal, config.churnInflight, config.churnTimeoutMs));
    }
  } catch (err) {
    b.errors.push(`${tag}: node proxy: ${message(err)}`);
    progress.note(`${tag}: node proxy: ${message(err)}`);
  } finally {
    await proxy?.close();
  }
}

/** The same scenarios through ssh -L, started fresh for each run. */
async function sshBaseline(config: SuiteConfig, apps: Apps, b: BaselineResults, tag: string, progress: Progress): Promise<void> {
  const has = (s: Scenario) => config.scenarios.includes(s);
  let ssh: SshPath | null = null;
  try {
    progress.step(`${tag}: ssh -L (aes128-gcm) up`);
    ssh = await startSsh(apps.ports);
    if (has('latency')) progress.step(`${tag}: ssh -L ${config.pingBytes}-byte ping-pong`);
    if (has('latency')) b.ssh.latency.push(await latency(apps, ssh.ports.echo, config.pingBytes, config.pings, config.pingWarmup, config.latencyTimeoutMs));
    b.ssh.idle.push(ssh.rssKiB());
    if (has('churn')) {
      progress.step(`${tag}: ssh -L churn`);
      b.ssh.churn.push(await churn(apps, ssh, 1024, config.churnTotal, config.churnInflight, config.churnTimeoutMs));
      await serviceIdle(apps, 10000);
    }
    if (has('bulk')) {
      for (const dir of ['up', 'down'] as const) {
        for (const streams of config.streams) {
          progress.step(`${tag}: ssh -L ${dir === 'up' ? 'upload' : 'download'}, ${streams} stream(s)`);
          (b.ssh[dir][streams] ??= []).push(await bulk(apps, ssh, dir, streams, config.bulkBytes, config.bulkTimeoutMs));
        }
      }
    }
  } catch (err) {
    b.errors.push(`${tag}: ssh -L: ${message(err)}`);
    progress.note(`${tag}: ssh -L: ${message(err)}`);
  } finally {
    await ssh?.close();
    await serviceIdle(apps, 10000).catch(() => false);
  }
}

async function tunnelRun(config: SuiteConfig, apps: Apps, t: Tunnel, w: WorkerResults, connections: number, tag: string, progress: Progress): Promise<void> {
  const has = (s: Scenario) => config.scenarios.includes(s);
  const attempt = async (label: string, fn: () => Promise<void>) => {
    progress.step(`${tag}: ${label}`);
    const gone = exitedPart(t);
    if (gone) {
      // no use timing out on every remaining scenario
      w.errors.push(`${tag}: ${label}: skipped, ${gone}`);
      return;
    }
    try {
      await fn();
    } catch (err) {
      w.errors.push(`${tag}: ${label}: ${message(err)}`);
      progress.note(`${tag}: ${label}: ${message(err)}`);
    }
  };
  await new Promise((resolve) => setTimeout(resolve, IDLE_RSS_SETTLE_MS));
  w.idle.push(tunnelRssKiB(t));
  if (has('latency')) {
    await attempt(`${config.pingBytes}-byte ping-pong`, async () => {
      w.latency.push(await latency(apps, t.ports.echo, config.pingBytes, config.pings, config.pingWarmup, config.latencyTimeoutMs));
    });
  }
  if (has('many')) {
    await attempt(`${connections} connections held open`, async () => {
      const figure = await many(apps, t, connections, config.connectionBytes, config.opening, config.manyTimeoutMs);
      w.many.push(figure);
      if (figure.error) progress.note(`${tag}: many connections: ${figure.error}`);
    });
  }
  if (has('churn')) {
    await attempt(`churn, ${config.churnInflight} in flight`, async () => {
      const figure = await churn(apps, t, 1024, config.churnTotal, config.churnInflight, config.churnTimeoutMs);
      w.churn.push(figure);
      if (figure.error) progress.note(`${tag}: churn: ${figure.error}`);
      await serviceIdle(apps, 10000);
    });
  }
  if (has('bulk')) {
    for (const dir of ['up', 'down'] as const) {
      for (const streams of config.streams) {
        await attempt(`${dir === 'up' ? 'upload' : 'download'}, ${streams} stream${streams === 1 ? '' : 's'}`, async () => {
          const figure = await bulk(apps, t, dir, streams, config.bulkBytes, config.bulkTimeoutMs);
          (w.bulk[dir][streams] ??= []).push(figure);
          if (figure.error) progress.note(`${tag}: ${dir} ${streams}: ${figure.error}`);
        });
      }
    }
  }
}
