// A real TURN server (coturn's `turnserver`) on a loopback address of its own, for the TURN test:
// with the host's ICE on 127.0.0.1, the client's on 127.0.0.2 and coturn on 127.0.0.3, the only
// working pair is relay to relay (each side's TURN permissions name 127.0.0.3, so a packet from a
// host address is dropped by coturn), so bytes that arrive went through it. Its verbose log counts
// what it relayed ("peer usage: ... sb=N" per allocation and interval), the test's second witness.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomInt } from 'node:crypto';
import { unusedPort } from './services.js';
import { eventually } from './timing.js';

export const TURN_ADDRESS = '127.0.0.3';

export interface TurnServer {
  /** the --ice-server URL, credentials included */
  url: string;
  /** Bytes coturn relayed to peers so far, summed over its log's usage lines. */
  relayedBytes(): number;
  stop(): Promise<void>;
}

/** True if coturn is installed (the test is skipped without it). */
export function haveTurnServer(): boolean {
  return spawnSync('turnserver', ['--help'], { stdio: 'ignore' }).error === undefined;
}

export async function startTurnServer(): Promise<TurnServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tunnel-turn-'));
  const log = path.join(dir, 'turn.log');
  const port = await unusedPort();
  const minPort = 40000 + randomInt(0, 9000);
  const proc: ChildProcess = spawn('turnserver', [
    '-n', '-v', '--no-cli', '--no-tls', '--no-dtls', '--allow-loopback-peers',
    '--listening-ip', TURN_ADDRESS, '--relay-ip', TURN_ADDRESS, '--listening-port', String(port),
    '--min-port', String(minPort), '--max-port', String(minPort + 40),
    '--lt-cred-mech', '--user', 'tunnel:p@ss', '--realm', 'test',
    '--log-file', log, '--simple-log', '--no-stdout-log',
    '--pidfile', path.join(dir, 'pid'), '--userdb', path.join(dir, 'turndb'),
  ], { stdio: 'ignore' });
  const read = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
  const ready = await eventually(() => read().includes(`UDP listener opened on: ${TURN_ADDRESS}:${port}`), 10_000, 100);
  if (!ready) {
    proc.kill('SIGKILL');
    throw new Error(`coturn did not start: ${read().slice(-2000)}`);
  }
  return {
    url: `turn:tunnel:p%40ss@${TURN_ADDRESS}:${port}`, // the password's '@' percent-encoded, as a user must
    relayedBytes: () => [...read().matchAll(/peer usage: .*?, sb=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0),
    async stop() {
      if (proc.exitCode === null) {
        const gone = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
