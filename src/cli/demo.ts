// `npm start` / `tunnel demo`: the whole tunnel on loopback in one process, with nothing to set up.
// An echo service, a host exposing it, a client forwarding a local port to it; then several
// connections push random bytes through and check that exactly the same bytes come back (SHA-256).
// Then the quick benchmark table (`--no-bench` skips it).

import net from 'node:net';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { startHost } from '../host.js';
import { startClient } from '../client.js';
import { releaseDataChannelLibrary } from '../webrtc/peer.js';
import { startEcho, freePort } from './loopback.js';
import { runBench } from './run-bench.js';

export async function demo(args: string[]): Promise<number> {
  const echo = await startEcho();
  const pin = String(randomInt(0, 1e8)).padStart(8, '0');
  const host = await startHost({ pin, listen: '127.0.0.1:0', services: { echo: { host: '127.0.0.1', port: echo.port } }, iceBind: '127.0.0.1', logLevel: process.env.TUNNEL_LOG_LEVEL ?? 'warn' });
  const port = await freePort();
  const client = await startClient({ connect: host.url, pin, forwards: [{ host: '127.0.0.1', port, service: 'echo' }], iceBind: '127.0.0.1', logLevel: process.env.TUNNEL_LOG_LEVEL ?? 'warn' });
  process.stdout.write(`host ${host.url} exposes echo -> 127.0.0.1:${echo.port}; client forwards 127.0.0.1:${port} -> echo\n`);

  const connections = 8;
  const bytesEach = 8 * 1024 * 1024;
  const started = process.hrtime.bigint();
  const results = await Promise.all(Array.from({ length: connections }, () => roundTrip(port, bytesEach)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const ok = results.every(Boolean);
  const mb = (2 * connections * bytesEach) / 1e6;
  process.stdout.write(`${connections} connections x ${bytesEach / 1048576} MiB echoed: ${ok ? 'byte-exact (SHA-256 match)' : 'MISMATCH'}; ${mb.toFixed(0)} MB through the tunnel in ${seconds.toFixed(2)} s = ${(mb / seconds).toFixed(1)} MB/s\n`);

  await client.close();
  await host.close();
  echo.close();
  releaseDataChannelLibrary();
  if (!ok) return 1;
  if (args.includes('--no-bench')) return 0;
  // the quick benchmark: host and client as separate processes, beside a raw DataChannel baseline
  process.stdout.write('\nquick benchmark (tunnel bench --quick; npm run bench for the full suite):\n');
  return runBench(['--quick']);
}

function roundTrip(port: number, bytes: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const payload = randomBytes(bytes);
    const want = createHash('sha256').update(payload).digest('hex');
    const got = createHash('sha256');
    let received = 0;
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => socket.end(payload));
    socket.on('data', (chunk) => { received += chunk.byteLength; got.update(chunk); });
    socket.on('end', () => { socket.end(); resolve(received === bytes && got.digest('hex') === want); });
    socket.on('error', reject);
  });
}
