// The ssh -L baseline on loopback: the usual way to carry TCP over one encrypted connection, measured
// with the same load generator against the same services as the tunnel, in the same run.
//
//   load ──TCP──▶ ssh -N -L (aes128-gcm) ══ TCP 127.0.0.1 ══▶ sshd ──TCP──▶ service
//
// sshd runs from a throw-away directory (its own host key, a client key pair, authorized_keys and
// config; no PAM, StrictModes off, key login only) on a free port, like bench/lab/baselines.ts does in
// the lab; the directory is removed when it stops. Its CPU is ssh's plus every sshd process below the
// listener (sshd forks one per session).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnProgram, stop, type Child } from './children.js';
import { cpuMs, descendants, rssKiB } from './proc.js';
import { freePort } from '../src/cli/loopback.js';
import type { ServicePorts } from './jobs.js';

const CIPHER = 'aes128-gcm@openssh.com';
const SSHD = '/usr/sbin/sshd';
/** How long sshd and the forward may take to come up (ms), and the poll step. */
const READY_TIMEOUT_MS = 15_000;
const POLL_MS = 100;

function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why the ssh -L baseline cannot run here, or null. */
export function sshSkipReason(): string | null {
  const missing = [
    ...(existsSync(SSHD) ? [] : [`${SSHD} (Debian openssh-server)`]),
    ...(hasCommand('ssh') ? [] : ['ssh (Debian openssh-client)']),
    ...(hasCommand('ssh-keygen') ? [] : ['ssh-keygen (Debian openssh-client)']),
  ];
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

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

async function until(what: string, ok: () => Promise<boolean>, child: Child): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await ok())) {
    if (child.proc.exitCode !== null) throw new Error(`${child.name} exited (${child.proc.exitCode}): ${child.log.slice(-5).join(' | ')}`);
    if (Date.now() > deadline) throw new Error(`${what} not ready in ${READY_TIMEOUT_MS} ms: ${child.log.slice(-5).join(' | ')}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
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
    const key = path.join(dir, 'client_key');
    const keygen = (file: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench', '-f', file], { stdio: 'ignore', timeout: 10_000 });
    keygen(path.join(dir, 'host_key'));
    keygen(key);
    execFileSync('cp', [`${key}.pub`, path.join(dir, 'authorized_keys')]);
    const sshdPort = await freePort();
    const config = path.join(dir, 'sshd_config');
    writeFileSync(config, [
      `Port ${sshdPort}`, 'ListenAddress 127.0.0.1', 'AddressFamily inet',
      `HostKey ${path.join(dir, 'host_key')}`, `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      'PermitRootLogin prohibit-password', 'PubkeyAuthentication yes', 'PasswordAuthentication no',
      'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', 'AllowTcpForwarding yes',
      'X11Forwarding no', 'PrintMotd no', 'UseDNS no', `Ciphers ${CIPHER}`, 'LogLevel ERROR', '',
    ].join('\n'));
    const sshd = spawnProgram('sshd', SSHD, ['-D', '-e', '-f', config]);
    children.push(sshd);
    await until('sshd', () => connects(sshdPort), sshd);
    const ports: ServicePorts = { sink: await freePort(), source: await freePort(), echo: await freePort() };
    const forward = (local: number, remote: number) => ['-L', `127.0.0.1:${local}:127.0.0.1:${remote}`];
    const ssh = spawnProgram('ssh', 'ssh', [
      '-F', '/dev/null', '-N', '-T', '-i', key, '-p', String(sshdPort), '-c', CIPHER,
      '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'ExitOnForwardFailure=yes', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10',
      ...forward(ports.sink, service.sink), ...forward(ports.source, service.source), ...forward(ports.echo, service.echo),
      'root@127.0.0.1',
    ]);
    children.push(ssh);
    // the echo forward accepting means ssh has logged in and set up its listeners
    await until('ssh -L', () => connects(ports.echo), ssh);
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
