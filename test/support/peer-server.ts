// The real PeerJS server (npm `peer`, what `npx peer --port 9000` runs) as a child process on
// 127.0.0.1, for the rendezvous tests: started on a free port, killed, restarted on the same port.

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './cli.js';
import { unusedPort } from './services.js';
import { within } from './timing.js';

const BIN = path.join(ROOT, 'node_modules', 'peer', 'dist', 'bin', 'peerjs.js');

export interface PeerServer {
  url: string;
  port: number;
  /** Kills the server (SIGKILL: every registration is gone at once, as in a crash). */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  /** What the server printed, for a failing test's message. */
  output(): string;
}

export async function startPeerServer(args: string[] = []): Promise<PeerServer> {
  const port = await unusedPort();
  let proc: ChildProcess | null = null;
  let out = '';

  const start = async () => {
    const child = spawn(process.execPath, [BIN, '--host', '127.0.0.1', '--port', String(port), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = child;
    const started = new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        out += d.toString();
        if (/Started PeerServer/.test(out)) resolve();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
      child.once('exit', (code) => reject(new Error(`the PeerJS server exited (${code}): ${out}`)));
    });
    await within(started, 15_000, 'starting the PeerJS server');
  };

  const kill = async () => {
    const child = proc;
    proc = null;
    if (!child || child.exitCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  };

  await start();
  return { url: `ws://127.0.0.1:${port}`, port, kill, restart: start, output: () => out };
}
