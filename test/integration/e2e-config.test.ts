// End to end, the two sides configured differently. `--window` and `--keepalive` are per-process
// flags of both `tunnel host` and `tunnel client`; nothing in the docs says they must match, so a
// host and a client that chose different values must still carry streams correctly.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { startHost, type HostHandle } from '../../src/host.js';
import { startClient, type ClientHandle } from '../../src/client.js';
import { releaseDataChannelLibrary } from '../../src/webrtc/peer.js';
import type { DataPlaneConfig } from '../../src/shared/limits.js';
import {
  CHUNK_BYTES,
  byteSource, connect, destroyAllSockets, echoRoundTrip, sha256, sleep, unusedPort, within, type Service,
} from '../support/helpers.js';
import { answered } from '../support/helpers.js';
import type { ShardStats } from '../../src/shared/thread-messages.js';

const MiB = 1024 * 1024;
const PIN = '55667788';
const BULK_BYTES = 24 * MiB;
const BULK_SEED = 4242;

/** Sends BULK_BYTES seeded bytes to every connection (with backpressure), then ends; ignores input. */
function startSource(): Promise<Service> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.resume();
    const next = byteSource(BULK_SEED);
    let left = BULK_BYTES;
    const pump = () => {
      while (left > 0) {
        const chunk = next(Math.min(CHUNK_BYTES, left));
        left -= chunk.byteLength;
        if (!socket.write(chunk)) { socket.once('drain', pump); return; }
      }
      socket.end();
    };
    pump();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    resolve({
      port: typeof a === 'object' && a ? a.port : 0,
      close: () => new Promise<void>((done) => { for (const s of sockets) s.destroy(); server.close(() => done()); }),
    });
  }));
}

/** An echo that does not read for its first `stallMs`, then echoes with half-close. */
function startLazyEcho(stallMs: number): Promise<Service> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    setTimeout(() => socket.pipe(socket), stallMs);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    resolve({
      port: typeof a === 'object' && a ? a.port : 0,
      close: () => new Promise<void>((done) => { for (const s of sockets) s.destroy(); server.close(() => done()); }),
    });
  }));
}

/** Reads a connection that does not read for `stallMs` first; resolves with what arrived. */
function readLazily(port: number, stallMs: number): Promise<{ bytes: number; hash: string; how: string }> {
  return new Promise((resolve) => {
    const s = connect(port);
    const hash = createHash('sha256');
    let bytes = 0;
    s.pause();
    setTimeout(() => s.resume(), stallMs);
    s.on('data', (c: Buffer) => { bytes += c.byteLength; hash.update(c); });
    let over = false;
    const done = (how: string) => {
      if (over) return;
      over = true;
      s.destroy();
      resolve({ bytes, hash: hash.digest('hex'), how });
    };
    s.once('end', () => done('end'));
    s.once('error', (err: NodeJS.ErrnoException) => done(`error ${err.code ?? err.message}`));
    s.once('close', () => done('close'));
  });
}

interface Pair { host: HostHandle; client: ClientHandle; ports: Record<string, number> }

async function startPair(services: Record<string, number>, hostConfig: Partial<DataPlaneConfig>, clientConfig: Partial<DataPlaneConfig>, workers: number): Promise<Pair> {
  const host = await startHost({
    pin: PIN, listen: '127.0.0.1:0', workers, iceBind: '127.0.0.1', logLevel: 'error', config: hostConfig,
    services: Object.fromEntries(Object.entries(services).map(([name, port]) => [name, { host: '127.0.0.1', port }])),
  });
  const ports: Record<string, number> = {};
  for (const name of Object.keys(services)) ports[name] = await unusedPort();
  try {
    const client = await startClient({
      connect: host.url, pin: PIN, workers, iceBind: '127.0.0.1', logLevel: 'error', reconnect: false, config: clientConfig,
      forwards: Object.keys(services).map((service) => ({ host: '127.0.0.1', port: ports[service] ?? 0, service })),
    });
    await within(client.whenConnected(), 10_000, 'client connected');
    return { host, client, ports };
  } catch (err) {
    await host.close(); // a failed start must not leave the host's workers keeping the process alive
    throw err;
  }
}

async function stopPair(pair: Pair | undefined): Promise<void> {
  destroyAllSockets();
  await pair?.client.close();
  await pair?.host.close();
}

function resets(stats: { shards: (ShardStats | null)[] }): Record<string, number> {
  const all: Record<string, number> = {};
  for (const s of answered(stats)) for (const [k, v] of Object.entries(s.resets)) all[k] = (all[k] ?? 0) + v;
  return all;
}

const workers = 2;

describe('host and client with different --window', { timeout: 90_000 }, () => {
  let source: Service;
  let lazy: Service;
  const want = sha256(byteSource(BULK_SEED)(BULK_BYTES));

  before(async () => {
    source = await startSource();
    lazy = await startLazyEcho(1500);
  }, { timeout: 30_000 });
  after(async () => {
    destroyAllSockets();
    await source?.close();
    await lazy?.close();
  }, { timeout: 30_000 });

  for (const [name, hostWindow, clientWindow] of [
    ['host --window 4 MiB, client default (1 MiB)', 4 * MiB, undefined],
    ['client --window 4 MiB, host default (1 MiB)', undefined, 4 * MiB],
  ] as const) {
    describe(name, () => {
      let pair: Pair | undefined;
      before(async () => {
        pair = await startPair(
          { source: source.port, lazy: lazy.port },
          hostWindow ? { windowBytes: hostWindow } : {},
          clientWindow ? { windowBytes: clientWindow } : {},
          workers,
        );
      }, { timeout: 30_000 });
      after(() => stopPair(pair), { timeout: 30_000 });

      test('host -> client: a reader that pauses for 1.5 s still gets every byte', { timeout: 30_000 }, async () => {
        const r = await within(readLazily(pair?.ports.source ?? 0, 1500), 25_000, 'lazy reader');
        const [h, c] = await Promise.all([pair?.host.stats(), pair?.client.stats()]);
        assert.deepEqual({ how: r.how, bytes: r.bytes, sha: r.hash === want }, { how: 'end', bytes: BULK_BYTES, sha: true },
          `resets: host ${JSON.stringify(h && resets(h))}, client ${JSON.stringify(c && resets(c))}`);
      });

      test('client -> host: a service that pauses for 1.5 s still gets every byte', { timeout: 30_000 }, async () => {
        const r = await within(echoRoundTrip(pair?.ports.lazy ?? 0, BULK_BYTES, 4343).catch((e: Error) => e), 25_000, 'round trip via a lazy echo');
        const [h, c] = await Promise.all([pair?.host.stats(), pair?.client.stats()]);
        const detail = `resets: host ${JSON.stringify(h && resets(h))}, client ${JSON.stringify(c && resets(c))}`;
        assert.ok(!(r instanceof Error), `${r instanceof Error ? r.message : ''}; ${detail}`);
        assert.equal(r.received, BULK_BYTES, detail);
        assert.equal(r.receivedHash, r.sentHash, detail);
      });
    });
  }
});

describe('host and client with different --keepalive', { timeout: 60_000 }, () => {
  let echo: Service;
  let pair: Pair | undefined;

  before(async () => {
    const sockets = new Set<net.Socket>();
    const server = net.createServer({ allowHalfOpen: true }, (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => {}); s.pipe(s); });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const a = server.address();
    echo = { port: typeof a === 'object' && a ? a.port : 0, close: () => new Promise<void>((done) => { for (const s of sockets) s.destroy(); server.close(() => done()); }) };
    // exactly what `tunnel host --keepalive 10000` configures; the client keeps the default (1000)
    pair = await startPair({ echo: echo.port }, { keepaliveMs: 10_000, peerTimeoutMs: 50_000 }, {}, workers);
  }, { timeout: 30_000 });
  after(async () => {
    await stopPair(pair);
    await echo?.close();
  }, { timeout: 30_000 });

  test('an idle tunnel stays up for 9 s and an idle open stream survives (host --keepalive 10000, client default)', { timeout: 30_000 }, async () => {
    const s = connect(pair?.ports.echo ?? 0);
    await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
    let ended = '';
    s.once('error', (err: NodeJS.ErrnoException) => { ended = `error ${err.code}`; });
    s.once('close', () => { ended ||= 'close'; });
    let drops = 0;
    for (let i = 0; i < 18; i++) {
      await sleep(500);
      if (!pair?.client.connected()) drops++;
    }
    assert.equal(ended, '', 'the idle stream was closed by the tunnel');
    assert.equal(drops, 0, 'the client thought the host was gone while the tunnel was idle');
    const r = await echoRoundTrip(pair?.ports.echo ?? 0, 1 * MiB, 1);
    assert.equal(r.receivedHash, r.sentHash);
    s.destroy();
  });
});

after(() => {
  destroyAllSockets();
  releaseDataChannelLibrary();
}, { timeout: 30_000 });
