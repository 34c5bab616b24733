// The real PeerJS server (npm `peer`, a devDependency) in PUB, for rendezvous tests: the same program
// a deployment would use, started on the pinned Node (its bin's `#!/usr/bin/env node` could pick the
// system's older one).

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { ADDR, PEERJS } from './topology.js';
import { lineLog, type LineLog, type Tracked } from './processes.js';

/** The project root (this file runs as dist/bench/lab/peerjs.js). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const PEER_BIN = path.join(ROOT, 'node_modules', 'peer', 'dist', 'bin', 'peerjs.js');
const PEERJS_READY_MS = 15_000;

export interface PeerServer { child: ChildProcess; log: LineLog }

export function peerServerAvailable(): boolean {
  return existsSync(PEER_BIN);
}

export async function startPeerServer(pub: string, tracked: Tracked): Promise<PeerServer> {
  if (!peerServerAvailable()) throw new Error(`the PeerJS server is not installed (${PEER_BIN}): npm ci`);
  // --host: the namespaces have IPv6 off, so the default '::' would not bind
  const child = tracked.spawn(pub, process.execPath, [PEER_BIN, '--port', String(PEERJS.port), '--host', ADDR.pub, '--key', PEERJS.key, '--path', PEERJS.path]);
  const log = lineLog(child);
  await log.waitFor(/^Started PeerServer/, PEERJS_READY_MS, 'PeerJS server');
  return { child, log };
}
