// What the tunnel is compared with on the same lab path, from the same load generator in A to the same
// services in B:
//
//   plain TCP  RB forwards the services' ports (DNAT) and the load generator connects to RB's WAN
//              address: the kernel's TCP (this machine's default congestion control) end to end.
//   ssh -L     sshd in B on a forwarded port, `ssh -N -L` in A (aes128-gcm), the services forwarded
//              through it: the usual way to carry TCP over one encrypted connection.
//
// sshd is set up as ../sshd.ts says, in a directory inside the lab's. OpenSSH's sshd needs its privilege-separation directory /run/sshd even so; it is made if missing.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { stop, type Child } from '../children.js';
import { cpuMs, descendants } from '../proc.js';
import { lineLog } from './processes.js';
import { missingSshTools, prepareSshd, SSH_CIPHER, SSHD } from '../sshd.js';
import { ready, type LabApps, type Target } from './apps.js';
import type { Lab } from './lab.js';

export type TransportName = 'tcp' | 'tunnel' | 'ssh';

/** One way through the lab, started for one measurement and stopped after it. */
export interface Transport {
  name: TransportName;
  /** where the load generator in A connects */
  target: Target;
  /** CPU of the transport's own processes so far (ms, all threads); NaN when it has none (TCP) */
  cpuMs(): number;
  stop(): Promise<void>;
}

/** How long the path through a transport may take to carry its first echo (ms). */
export const READY_TIMEOUT_MS = 30_000;

// ---- plain TCP ----

/** Forwards the services' ports on RB (once per lab). */
export async function forwardServicePorts(lab: Lab, apps: LabApps): Promise<void> {
  await lab.portForward(apps.ports.pattern);
  await lab.portForward(apps.ports.echo);
}

export function plainTcp(lab: Lab, apps: LabApps): Transport {
  return {
    name: 'tcp',
    target: { host: lab.addr.rbWan, pattern: apps.ports.pattern, echo: apps.ports.echo },
    cpuMs: () => Number.NaN,
    stop: async () => {},
  };
}

// ---- ssh -L ----

/** sshd's port in B, forwarded on RB. */
const SSHD_PORT = 2222;
/** The local ports `ssh -L` listens on in A. */
const SSH_LOCAL = { pattern: 30001, echo: 30002 } as const;
/** sshd prints nothing when it is ready: the harness polls the port (ms between tries, tries). */
const SSHD_POLL = { ms: 200, tries: 100 } as const;

/** Why the ssh -L baseline cannot run here, or null. */
export function sshSkipReason(): string | null {
  const missing = missingSshTools();
  return missing.length ? `the ssh -L baseline needs ${missing.join(', ')}: apt-get install -y openssh-server openssh-client` : null;
}

export interface Sshd {
  child: Child;
  /** the client's private key */
  key: string;
  close(): Promise<void>;
}

/** sshd in B on a forwarded port, for the whole bench. */
export async function startSshd(lab: Lab): Promise<Sshd> {
  const reason = sshSkipReason();
  if (reason) throw new Error(reason);
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });
  // inside the lab's directory, so a lab taken down by a signal takes the keys with it
  const dir = mkdtempSync(path.join(lab.dir, 'ssh-'));
  const { config, key } = prepareSshd(dir, { port: SSHD_PORT, listen: '0.0.0.0', comment: 'labbench' });
  const proc = lab.spawn('b', SSHD, ['-D', '-e', '-f', config]);
  if (proc.pid === undefined) throw new Error('cannot start sshd');
  const child: Child = { name: 'sshd', proc, pid: proc.pid, log: lineLog(proc, ['stdout', 'stderr'], 200).lines };
  const close = async () => { await stop(child, 1000); rmSync(dir, { recursive: true, force: true }); };
  try {
    await lab.portForward(SSHD_PORT);
    for (let i = 0; ; i++) {
      if (proc.exitCode !== null) throw new Error(`sshd exited (${proc.exitCode}): ${child.log.slice(-5).join(' | ')}`);
      const up = await lab.exec('b', 'ss', ['-Hltn', `sport = :${SSHD_PORT}`]).then((r) => r.stdout.trim() !== '', () => false);
      if (up) break;
      if (i >= SSHD_POLL.tries) throw new Error(`sshd not listening after ${SSHD_POLL.ms * SSHD_POLL.tries} ms: ${child.log.slice(-5).join(' | ')}`);
      await new Promise((resolve) => setTimeout(resolve, SSHD_POLL.ms));
    }
    return { child, key, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** `ssh -N -L` in A for one measurement; resolves once an echo came back through it. */
export async function sshForward(lab: Lab, apps: LabApps, sshd: Sshd): Promise<Transport> {
  const proc = lab.spawn('a', 'ssh', [
    '-F', '/dev/null', '-N', '-T', '-i', sshd.key, '-p', String(SSHD_PORT), '-c', SSH_CIPHER,
    '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'ExitOnForwardFailure=yes', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=20',
    '-L', `127.0.0.1:${SSH_LOCAL.pattern}:127.0.0.1:${apps.ports.pattern}`,
    '-L', `127.0.0.1:${SSH_LOCAL.echo}:127.0.0.1:${apps.ports.echo}`,
    `root@${lab.addr.rbWan}`,
  ]);
  if (proc.pid === undefined) throw new Error('cannot start ssh');
  const child: Child = { name: 'ssh', proc, pid: proc.pid, log: lineLog(proc, ['stdout', 'stderr'], 200).lines };
  // sshd forks a process per connection: its CPU is the server side's share
  const sshdSide = () => descendants(sshd.child.pid);
  const transport: Transport = {
    name: 'ssh',
    target: { host: '127.0.0.1', pattern: SSH_LOCAL.pattern, echo: SSH_LOCAL.echo },
    cpuMs: () => cpuMs(child.pid) + sshdSide().reduce((sum, pid) => sum + (cpuMs(pid) || 0), 0),
    stop: () => stop(child, 1000),
  };
  try {
    await Promise.race([
      ready(apps.pinger, transport.target, READY_TIMEOUT_MS),
      new Promise((_, reject) => proc.once('exit', (code) => reject(new Error(`ssh exited (${code}): ${child.log.slice(-5).join(' | ')}`)))),
    ]);
    return transport;
  } catch (err) {
    await transport.stop();
    throw err;
  }
}
