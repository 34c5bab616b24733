// The tunnel under test on a lab path, as deployed across two NATs: `tunnel host` in B (direct mode:
// its signaling port forwarded on RB) exposing the pattern and echo services, `tunnel client` in A
// forwarding two local ports to them, ICE through the lab's STUN server (no --ice-bind), so the
// DataChannel takes the hole-punched direct path. A fresh pair for every measurement: a collapsed
// association must not spoil the next one.
//
//   A: load ──▶ client 127.0.0.1:20001/20002 ══ DataChannel, UDP via RA ⇄ PUB ⇄ RB ══▶ B: host ──▶ service

import { randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { stop, type Child } from '../children.js';
import { cpuMs } from '../proc.js';
import { lineLog } from './processes.js';
import { ready, type LabApps } from './apps.js';
import { READY_TIMEOUT_MS, type Transport } from './baselines.js';
import type { Lab, Site } from './lab.js';

/** The host's signaling port in B, forwarded on RB. */
export const SIGNALING_PORT = 8765;
/** The client's forwarded ports in A. */
const CLIENT_PORTS = { pattern: 20001, echo: 20002 } as const;
/** Time for `tunnel host` to print its URL, and for the client to connect and listen (ms). */
const START_TIMEOUT_MS = 30_000;
/** Grace between SIGTERM and SIGKILL (ms): the CLI forces its own exit after 2 s. */
const STOP_GRACE_MS = 3000;

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface TunnelSettings {
  /** extra flags for host and client alike (--workers 0, --window …) */
  args: string[];
  /** extra environment for host and client */
  env: Record<string, string>;
}

function spawnCli(lab: Lab, site: Site, name: string, args: string[], settings: TunnelSettings): { child: Child; lines: string[] } {
  const proc = lab.spawn(site, process.execPath, [CLI, ...args, ...settings.args], { env: { ...process.env, ...settings.env } });
  if (proc.pid === undefined) throw new Error(`cannot start ${name}`);
  const log = lineLog(proc, ['stdout', 'stderr'], 500);
  return { child: { name, proc, pid: proc.pid, log: log.lines }, lines: log.lines };
}

function waitForLine(child: Child, lines: string[], pattern: RegExp, count: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (lines.filter((l) => pattern.test(l)).length >= count) { finish(null); return; }
      if (child.proc.exitCode !== null || child.proc.signalCode !== null) finish(new Error(`${child.name} exited (${child.proc.signalCode ?? child.proc.exitCode}): ${lines.slice(-6).join(' | ')}`));
    };
    const poll = setInterval(check, 50);
    const timer = setTimeout(() => finish(new Error(`${child.name} not ready in ${timeoutMs} ms: ${lines.slice(-6).join(' | ')}`)), timeoutMs);
    const finish = (err: Error | null) => { clearInterval(poll); clearTimeout(timer); if (err) reject(err); else resolve(); };
    check();
  });
}

/** Forwards the host's signaling port on RB (once per lab). */
export function forwardSignaling(lab: Lab): Promise<void> {
  return lab.portForward(SIGNALING_PORT);
}

/** A host and a client across the lab; resolves once an echo came back through the tunnel. */
export async function startLabTunnel(lab: Lab, apps: LabApps, settings: TunnelSettings): Promise<Transport & { host: Child; client: Child }> {
  const pin = String(randomInt(0, 100_000_000)).padStart(8, '0');
  const common = ['--pin', pin, '--ice-server', lab.stunUrl, '--log-level', 'warn', '--quiet'];
  const host = spawnCli(lab, 'b', 'tunnel host', [
    'host', '--listen', `0.0.0.0:${SIGNALING_PORT}`,
    '--expose', `pattern=127.0.0.1:${apps.ports.pattern}`,
    '--expose', `echo=127.0.0.1:${apps.ports.echo}`,
    ...common,
  ], settings);
  let client: ReturnType<typeof spawnCli> | null = null;
  const stopBoth = async () => {
    // the client first: its streams end while the host still listens
    if (client) await stop(client.child, STOP_GRACE_MS);
    await stop(host.child, STOP_GRACE_MS);
  };
  try {
    await waitForLine(host.child, host.lines, /^tunnel host listening on /, 1, START_TIMEOUT_MS);
    client = spawnCli(lab, 'a', 'tunnel client', [
      'client', '--connect', `ws://${lab.addr.rbWan}:${SIGNALING_PORT}`,
      '--forward', `127.0.0.1:${CLIENT_PORTS.pattern}=pattern`,
      '--forward', `127.0.0.1:${CLIENT_PORTS.echo}=echo`,
      ...common,
    ], settings);
    await waitForLine(client.child, client.lines, /^forwarding /, 2, START_TIMEOUT_MS);
    const c = client.child;
    const transport = {
      name: 'tunnel' as const,
      target: { host: '127.0.0.1', ...CLIENT_PORTS },
      cpuMs: () => cpuMs(host.child.pid) + cpuMs(c.pid),
      stop: stopBoth,
      host: host.child,
      client: c,
    };
    await ready(apps.pinger, transport.target, READY_TIMEOUT_MS);
    return transport;
  } catch (err) {
    await stopBoth();
    throw err;
  }
}
