// The floor of any tunnel written on Node's sockets: a plain TCP port forward in one Node process
// (accept, connect, pipe both ways), measured in the same run as the tunnel. It has the two TCP legs
// and the socket handling the tunnel has, and none of the tunnel: no DataChannel, no second process,
// no packets. The tunnel's churn and round trip cannot beat it; ssh -L is measured beside it.
//
//   load ──TCP──▶ node proxy (net.Server + net.connect + pipe) ──TCP──▶ service
//
// The bench starts it as a child process of its own (`node dist/bench/node-proxy.js LISTEN=TARGET...`)
// so that its CPU is read like the tunnel's and ssh's.

import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { spawnProgram, stop, untilAccepting } from './children.js';
import { cpuMs, rssKiB } from './proc.js';
import { freePort } from '../src/cli/loopback.js';
import type { ServicePorts } from './jobs.js';

/** How long the proxy may take to accept (ms). */
const READY_TIMEOUT_MS = 10_000;

export interface NodeProxy {
  ports: ServicePorts;
  /** the proxy process's CPU so far (ms) */
  cpuMs(): number;
  rssKiB(): number;
  close(): Promise<void>;
}

/** A Node port forward of the three services, in a process of its own; resolves once it accepts. */
export async function startNodeProxy(service: ServicePorts): Promise<NodeProxy> {
  const ports: ServicePorts = { sink: await freePort(), source: await freePort(), echo: await freePort() };
  const pairs = [[ports.sink, service.sink], [ports.source, service.source], [ports.echo, service.echo]].map(([from, to]) => `${from}=${to}`);
  const child = spawnProgram('node proxy', process.execPath, [fileURLToPath(import.meta.url), ...pairs]);
  try {
    await untilAccepting('node proxy', ports.echo, child, READY_TIMEOUT_MS);
  } catch (err) {
    await stop(child, 1000);
    throw err;
  }
  return { ports, cpuMs: () => cpuMs(child.pid), rssKiB: () => rssKiB(child.pid), close: () => stop(child, 1000) };
}

/** The child: one listener per LISTEN=TARGET port pair, each connection piped to its target. */
function serve(pairs: string[]): void {
  for (const pair of pairs) {
    const [listen, target] = pair.split('=').map(Number);
    net.createServer({ noDelay: true }, (client) => {
      const upstream = net.connect({ host: '127.0.0.1', port: target ?? 0, noDelay: true });
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    }).listen(listen, '127.0.0.1');
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) serve(process.argv.slice(2));
