// The ssh -L baseline on loopback: the usual way to carry TCP over one encrypted connection, measured
// with the same load generator against the same services as the tunnel, in the same run.
//
//   load ──TCP──▶ ssh -N -L (aes128-gcm) ══ TCP 127.0.0.1 ══▶ sshd ──TCP──▶ service
//
// sshd runs as ./sshd.ts sets it up, on a free port, as bench/lab/baselines.ts does in the lab; the
// directory is removed when it stops. Its CPU is ssh's plus every sshd process below the
// listener (sshd forks one per session).

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnProgram, stop, untilAccepting, type Child } from './children.js';
import { cpuMs, descendants, rssKiB } from './proc.js';
import { freePort } from '../src/cli/loopback.js';
import { missingSshTools, prepareSshd, SSH_CIPHER, SSHD } from './sshd.js';
import type { ServicePorts } from './jobs.js';

/** How long sshd and the forward may take to come up (ms). */
const READY_TIMEOUT_MS = 15_000;

/** Why the ssh -L baseline cannot run here, or null. */
export function sshSkipReason(): string | null {
  const missing = missingSshTools();
  if (missing.length) return `needs ${missing.join(', ')}`;
  if (process.getuid?.() !== 0) return 'sshd on loopback needs root here (it logs in as root by key)';
  return null;
}

/** A forward through ssh -L: the same shape the tunnel offers the scenarios. */
export interface SshPath {
  ports: ServicePorts;
  /** ssh + sshd CPU so far (ms, all processes) */
  cpuMs(): number;
  /** ssh's and sshd's session resident memory (KiB) */
  rssKiB(): { client: number; host: number };
  close(): Promise<void>;
}

/** sshd and ssh -L forwarding the three services; resolves once every forward accepts. */
export async function startSsh(service: ServicePorts): Promise<SshPath> {
  const reason = sshSkipReason();
  if (reason) throw new Error(reason);
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tunnel-bench-ssh-'));
  const children: Child[] = [];
  const close = async () => {
    for (const c of children.reverse()) await stop(c, 1000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const sshdPort = await freePort();
    const { config, key } = prepareSshd(dir, { port: sshdPort, listen: '127.0.0.1', comment: 'bench' });
    const sshd = spawnProgram('sshd', SSHD, ['-D', '-e', '-f', config]);
    children.push(sshd);
    await untilAccepting('sshd', sshdPort, sshd, READY_TIMEOUT_MS);
    const ports: ServicePorts = { sink: await freePort(), source: await freePort(), echo: await freePort() };
    const forward = (local: number, remote: number) => ['-L', `127.0.0.1:${local}:127.0.0.1:${remote}`];
    const ssh = spawnProgram('ssh', 'ssh', [
      '-F', '/dev/null', '-N', '-T', '-i', key, '-p', String(sshdPort), '-c', SSH_CIPHER,
      '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'ExitOnForwardFailure=yes', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10',
      ...forward(ports.sink, service.sink), ...forward(ports.source, service.source), ...forward(ports.echo, service.echo),
      'root@127.0.0.1',
    ]);
    children.push(ssh);
    // the echo forward accepting means ssh has logged in and set up its listeners
    await untilAccepting('ssh -L', ports.echo, ssh, READY_TIMEOUT_MS);
    const sessions = () => descendants(sshd.pid);
    const sum = (pids: number[], f: (pid: number) => number) => pids.reduce((s, pid) => s + (f(pid) || 0), 0);
    return {
      ports,
      cpuMs: () => cpuMs(ssh.pid) + sum(sessions(), cpuMs),
      rssKiB: () => ({ client: rssKiB(ssh.pid), host: sum(sessions(), rssKiB) }),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
