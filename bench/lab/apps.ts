// The applications of the lab bench, each a process in its site with Node's IPC channel (which crosses
// `ip netns exec`): the services (bench/service.ts: sink, source, echo, the checked pattern) in B,
// listening on 0.0.0.0 so a forwarded port on RB reaches them; two load generators (bench/load.ts) in
// A, one for the bulk and one for the ping-pong, so a ping beside a bulk stream never waits for the
// bulk's event loop.
//
//   A: load, pinger ──▶ (tunnel client | RB's forwarded ports | ssh -L) ──▶ … ──▶ B: service

import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { call } from '../ipc.js';
import { stop, type Child } from '../children.js';
import { lineLog } from './processes.js';
import type { Lab, Site } from './lab.js';
import type { LoadJob, PingsResult, ServicePorts, TimedResult } from '../jobs.js';

/** Beyond a job's own bound before the harness gives up on the child (ms). */
const CALL_MARGIN_MS = 15_000;
/** A started child must answer its first call within this (ms): Node starts slowly on a busy machine. */
const READY_MS = 20_000;

export interface LabApps {
  service: Child;
  load: Child;
  pinger: Child;
  /** the services' ports in B (the same on 127.0.0.1 and on B's LAN address) */
  ports: Required<ServicePorts>;
  close(): Promise<void>;
}

/** A bench/ script (dist/bench/NAME.js) in a lab site, with an IPC channel, as a Child. */
export function spawnScript(lab: Lab, site: Site, name: string, script: string, args: string[] = [], env?: NodeJS.ProcessEnv): Child {
  const path = fileURLToPath(new URL(`../${script}`, import.meta.url));
  const proc: ChildProcess = lab.spawn(site, process.execPath, [path, ...args], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], ...(env ? { env } : {}) });
  if (proc.pid === undefined) throw new Error(`cannot start ${name} in ${site}`);
  return { name, proc, pid: proc.pid, log: lineLog(proc, ['stderr'], 200).lines };
}

export async function startApps(lab: Lab): Promise<LabApps> {
  const service = spawnScript(lab, 'b', 'service', 'service.js', ['--host', '0.0.0.0']);
  const load = spawnScript(lab, 'a', 'load', 'load.js');
  const pinger = spawnScript(lab, 'a', 'pinger', 'load.js');
  const close = async () => { await Promise.all([stop(service, 1000), stop(load, 1000), stop(pinger, 1000)]); };
  try {
    const ports = await call<ServicePorts>(service.proc, { t: 'ports' }, READY_MS);
    if (ports.pattern === undefined) throw new Error('the service has no pattern port');
    // the load generators answer once their IPC handler runs
    await Promise.all([load, pinger].map((c) => call(c.proc, { t: 'release', timeoutMs: 1000 }, READY_MS)));
    return { service, load, pinger, ports: { ...ports, pattern: ports.pattern }, close };
  } catch (err) {
    await close();
    throw new Error(`the lab's applications did not start: ${(err as Error).message} ${[service, load, pinger].flatMap((c) => c.log.slice(-3)).join(' | ')}`);
  }
}

/** Where the load generator connects: an address in A's view and the pattern/echo ports there. */
export interface Target { host: string; pattern: number; echo: number }

export function timed(child: Child, target: Target, dir: 'up' | 'down', streams: number, seconds: number, drainMs: number): Promise<TimedResult> {
  const timeoutMs = seconds * 1000 + drainMs + 10_000;
  const job: LoadJob = { t: 'timed', host: target.host, port: target.pattern, dir, streams, seconds, drainMs, timeoutMs };
  return call<TimedResult>(child.proc, job, timeoutMs + CALL_MARGIN_MS);
}

/** Ping-pong for `seconds`; a ping still out `graceMs` later is counted with its time so far. */
export function pings(child: Child, target: Target, size: number, seconds: number, maxCount: number, warmup: number, graceMs: number): Promise<PingsResult> {
  const timeoutMs = seconds * 1000 + graceMs;
  const job: LoadJob = { t: 'pings', host: target.host, port: target.echo, size, seconds, maxCount, warmup, timeoutMs };
  return call<PingsResult>(child.proc, job, timeoutMs + CALL_MARGIN_MS);
}

/** A few round trips until one answers: the path through a transport works. Rejects after `timeoutMs`. */
export async function ready(child: Child, target: Target, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const left = deadline - Date.now();
    const r = await pings(child, target, 64, 0.001, 1, 0, Math.min(left, 10_000)).catch((err: Error) => ({ ok: false, error: err.message, unanswered: 0 }));
    if (r.ok && r.unanswered === 0) return;
    last = r.error ?? 'no answer';
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`no echo through it in ${timeoutMs} ms (${last})`);
}
