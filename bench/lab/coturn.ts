// coturn (`turnserver`, Debian's coturn) in PUB: STUN and TURN on 3478, long-term credentials, a fixed
// relay port range, foreground, logging to stdout (kept in memory, so a test can look for denials).
//
// What it needs here:
// - `-n` (no config file: /etc/turnserver.conf is the machine's, not ours) and its own `--userdb` and
//   `--pidfile` in the lab's directory (the defaults are under /var, shared with a system coturn).
// - `--allowed-peer-ip` for the lab's public range: coturn relays only to peers its rules allow (it
//   refuses loopback and some special ranges on its own); a refused peer shows as a 403 in the log,
//   which `turnDenials()` picks out.
// - a default route in PUB (see lab.ts, the `sink` link): when a client asks for a permission to a
//   peer's private host candidate, coturn's send to it must fail silently. With no route at all the
//   send fails with ENETUNREACH and coturn closes the whole allocation.

import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ADDR, TURN } from './topology.js';
import { nsRun } from './netns.js';
import { lineLog, type LineLog, type Tracked } from './processes.js';

/** coturn opens its sockets within a second; this much covers a loaded machine (ms). */
const COTURN_READY_MS = 10_000;

export interface Coturn { child: ChildProcess; log: LineLog }

export async function startCoturn(pub: string, dir: string, tracked: Tracked): Promise<Coturn> {
  const child = tracked.spawn(pub, 'turnserver', [
    '-n', '-v',
    `--listening-ip=${ADDR.pub}`, `--relay-ip=${ADDR.pub}`, `--listening-port=${TURN.port}`,
    `--min-port=${TURN.relayMin}`, `--max-port=${TURN.relayMax}`,
    '--lt-cred-mech', `--user=${TURN.user}:${TURN.pass}`, `--realm=${TURN.realm}`,
    `--allowed-peer-ip=203.0.113.0-203.0.113.255`,
    '--fingerprint', '--no-tls', '--no-dtls', '--no-cli', '--no-software-attribute',
    '--log-file=stdout', '--simple-log',
    `--pidfile=${path.join(dir, 'turnserver.pid')}`, `--userdb=${path.join(dir, 'turndb')}`,
  ]);
  const log = lineLog(child);
  // ready once both its UDP and TCP listeners are there
  const deadline = Date.now() + COTURN_READY_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`turnserver exited (${child.exitCode}):\n  ${log.lines.slice(-10).join('\n  ')}`);
    const udp = await nsRun(pub, 'ss', ['-Hlnu', `src ${ADDR.pub}:${TURN.port}`]).catch(() => ({ stdout: '' }));
    const tcp = await nsRun(pub, 'ss', ['-Hlnt', `src ${ADDR.pub}:${TURN.port}`]).catch(() => ({ stdout: '' }));
    if (udp.stdout.trim() && tcp.stdout.trim()) break;
    if (Date.now() > deadline) throw new Error(`turnserver did not listen on ${ADDR.pub}:${TURN.port} in ${COTURN_READY_MS} ms:\n  ${log.lines.slice(-10).join('\n  ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, log };
}

/**
 * Log lines where coturn refused something: a peer address or permission (403), a known user's
 * credentials (401 with a user name). A 401 for `user <>` is the normal first round of long-term
 * credentials (the client learns the realm and nonce), not a refusal.
 */
export function turnDenials(log: LineLog): string[] {
  return log.lines.filter((l) => /\b403\b|forbidden|denied|not allowed/i.test(l) || (/\b401\b/.test(l) && !/user <>/.test(l)));
}
