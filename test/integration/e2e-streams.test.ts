// End to end, stream behaviour beyond the happy path: flow control (a stalled reader must neither
// block the other streams nor make anyone buffer without bound), aborts in either direction,
// a service that closes first, chatty small writes, and many short-lived connections.
// Real sockets and PeerConnections on 127.0.0.1; workers: 0 and workers: 2.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { startHost, type HostHandle } from '../../src/host.js';
import { startClient, type ClientHandle } from '../../src/client.js';
import { releaseDataChannelLibrary } from '../../src/webrtc/peer.js';
import {
  CHUNK_BYTES, LOG_LEVEL,
  byteSource, connect, destroyAllSockets, echoRoundTrip, eventually, prng, sha256,
  startEchoService, unusedPort, whenEnded, within, type Service,
} from '../support/helpers.js';
import { answered } from '../support/helpers.js';
import type { ShardStats } from '../../src/shared/thread-messages.js';

const MiB = 1024 * 1024;
const PIN = '11223344';
/** A small window makes flow control bite quickly (bytes). */
const WINDOW_BYTES = 256 * 1024;
/** "promptly" for a reset travelling through the tunnel (ms) */
const PROMPT_MS = 3000;

/** Services this file needs besides the echo. */
interface Services {
  /** writes SERVER_FIRST_BYTES seeded bytes and ends at once; keeps reading (and hashing) what arrives */
  first: Service;
  /** what the server-first service read on each connection, in order of their end */
  firstRead: { bytes: number; hash: string }[];
  /** writes forever (bounded) until the peer goes; reports how each of its connections ended */
  source: Service;
  sourceEnds: { how: string; atMs: number }[];
}
const SERVER_FIRST_BYTES = 2 * MiB;
const SERVER_FIRST_SEED = 77;

function listen(handler: (socket: net.Socket) => void): Promise<Service> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    handler(socket);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    resolve({
      port: typeof a === 'object' && a ? a.port : 0,
      close: () => new Promise<void>((done) => { for (const s of sockets) s.destroy(); server.close(() => done()); }),
    });
  }));
}

async function startServices(): Promise<Services> {
  const firstRead: Services['firstRead'] = [];
  const sourceEnds: Services['sourceEnds'] = [];
  const first = await listen((socket) => {
    socket.on('error', () => {});
    const hash = createHash('sha256');
    let bytes = 0;
    socket.on('data', (c: Buffer) => { bytes += c.byteLength; hash.update(c); });
    socket.on('end', () => { firstRead.push({ bytes, hash: hash.digest('hex') }); });
    socket.end(byteSource(SERVER_FIRST_SEED)(SERVER_FIRST_BYTES)); // the whole answer, then FIN
  });
  const source = await listen((socket) => {
    const started = Date.now();
    let reported = false;
    const report = (how: string) => { if (!reported) { reported = true; sourceEnds.push({ how, atMs: Date.now() - started }); } };
    socket.on('error', (err: NodeJS.ErrnoException) => report(`error ${err.code ?? err.message}`));
    socket.on('end', () => report('end'));
    socket.on('close', () => report('close'));
    socket.resume();
    const next = byteSource(5);
    let left = 512 * MiB; // bounded
    const pump = () => {
      while (left > 0 && !socket.destroyed) {
        left -= CHUNK_BYTES;
        if (!socket.write(next(CHUNK_BYTES))) { socket.once('drain', pump); return; }
      }
    };
    pump();
  });
  return { first, firstRead, source, sourceEnds };
}

async function liveStreams(handle: { stats(): Promise<{ shards: (ShardStats | null)[] }> }): Promise<number> {
  return answered(await handle.stats()).reduce((n, s) => n + s.streams, 0);
}

for (const workers of [0, 2]) {
  describe(`streams (workers: ${workers})`, { timeout: 120_000 }, () => {
    let echo: Service;
    let svc: Services;
    let host: HostHandle;
    let client: ClientHandle;
    const port = { echo: 0, first: 0, source: 0 };

    before(async () => {
      echo = await startEchoService();
      svc = await startServices();
      host = await startHost({
        pin: PIN, listen: '127.0.0.1:0', workers, iceBind: '127.0.0.1', logLevel: 'error',
        services: {
          echo: { host: '127.0.0.1', port: echo.port },
          first: { host: '127.0.0.1', port: svc.first.port },
          source: { host: '127.0.0.1', port: svc.source.port },
        },
        config: { windowBytes: WINDOW_BYTES },
      });
      port.echo = await unusedPort();
      port.first = await unusedPort();
      port.source = await unusedPort();
      client = await startClient({
        connect: host.url, pin: PIN, workers, iceBind: '127.0.0.1', logLevel: LOG_LEVEL === 'warn' ? 'error' : LOG_LEVEL, reconnect: false,
        forwards: [
          { host: '127.0.0.1', port: port.echo, service: 'echo' },
          { host: '127.0.0.1', port: port.first, service: 'first' },
          { host: '127.0.0.1', port: port.source, service: 'source' },
        ],
        config: { windowBytes: WINDOW_BYTES },
      });
      await within(client.whenConnected(), 10_000, 'client connected');
    }, { timeout: 30_000 });

    after(async () => {
      destroyAllSockets();
      await client?.close();
      await host?.close();
      await echo?.close();
      await svc?.first.close();
      await svc?.source.close();
    }, { timeout: 30_000 });

    test('a stalled reader blocks only its own stream, and nobody buffers without bound', { timeout: 60_000 }, async () => {
      // stream A writes into the echo but never reads what comes back
      const size = 48 * MiB;
      const a = connect(port.echo);
      a.pause();
      const next = byteSource(11);
      const hashA = createHash('sha256');
      let sentA = 0;
      let lastProgress = Date.now();
      const pumpA = () => {
        while (sentA < size) {
          const chunk = next(Math.min(CHUNK_BYTES, size - sentA));
          hashA.update(chunk);
          sentA += chunk.byteLength;
          lastProgress = Date.now();
          if (!a.write(chunk)) { a.once('drain', pumpA); return; }
        }
        a.end();
      };
      a.once('connect', pumpA);
      const stalled = await eventually(() => Date.now() - lastProgress > 1000, 20_000, 100);
      assert.ok(stalled, `stream A should stall when nobody reads it (sent ${sentA} B)`);
      assert.ok(sentA < size, 'A cannot have sent everything without a reader');

      // stream B must flow while A is stalled
      const started = Date.now();
      const b = await within(echoRoundTrip(port.echo, 16 * MiB, 12), 20_000, 'stream B while A is stalled');
      assert.equal(b.receivedHash, b.sentHash, 'B is byte-exact');
      const bSeconds = (Date.now() - started) / 1000;

      // the tunnel's own buffers for A are bounded by the window
      const h = await host.stats();
      const c = await client.stats();
      const buffered = Math.max(...answered(h).map((s) => s.peakStreamBufferedBytes), ...answered(c).map((s) => s.peakStreamBufferedBytes));
      console.log(`# workers=${workers}: A stalled after ${(sentA / MiB).toFixed(1)} MiB; B (16 MiB) took ${bSeconds.toFixed(2)} s; peak per-stream buffer ${buffered} B, dispatcher queue host ${h.dispatcher.peakQueuedBytes} B / client ${c.dispatcher.peakQueuedBytes} B`);
      // a stream holds at most its window (reassembler + socket write buffer) plus one packet
      assert.ok(buffered <= 2 * WINDOW_BYTES + 64 * 1024, `per-stream buffer peak ${buffered} B`);

      // now read A: everything arrives, byte-exact
      const gotA = createHash('sha256');
      let receivedA = 0;
      const done = new Promise<void>((resolve, reject) => {
        a.on('data', (chunk: Buffer) => { receivedA += chunk.byteLength; gotA.update(chunk); });
        a.once('end', () => resolve());
        a.once('error', reject);
      });
      a.resume();
      await within(done, 30_000, 'stream A after it is read again');
      assert.equal(receivedA, size);
      assert.equal(gotA.digest('hex'), hashA.digest('hex'), 'A is byte-exact');
      a.destroy();
    });

    test('the service closes first: the client gets every byte and its end, and can still send', { timeout: 30_000 }, async () => {
      const want = sha256(byteSource(SERVER_FIRST_SEED)(SERVER_FIRST_BYTES));
      const before = svc.firstRead.length;
      const s = connect(port.first);
      const got = createHash('sha256');
      let received = 0;
      s.on('data', (c: Buffer) => { received += c.byteLength; got.update(c); });
      await within(new Promise<void>((resolve, reject) => { s.once('end', resolve); s.once('error', reject); }), 15_000, 'the service\'s end');
      assert.equal(received, SERVER_FIRST_BYTES);
      assert.equal(got.digest('hex'), want);
      // our direction is still open: 3 MiB more, then our FIN
      const next = byteSource(78);
      const payload = next(3 * MiB);
      s.end(payload);
      const reached = await eventually(() => svc.firstRead.length > before, 15_000);
      assert.ok(reached, 'the service saw our end');
      assert.deepEqual(svc.firstRead[before], { bytes: payload.byteLength, hash: sha256(payload) });
      await within(new Promise<void>((resolve) => { if (s.destroyed) resolve(); else s.once('close', () => resolve()); }), 5000, 'the client socket closing');
    });

    test('the application aborts mid-transfer: the service\'s connection is closed promptly', { timeout: 30_000 }, async () => {
      const before = svc.sourceEnds.length;
      const s = connect(port.source);
      let received = 0;
      s.on('data', (c: Buffer) => { received += c.byteLength; });
      s.on('error', () => {});
      assert.ok(await eventually(() => received >= 2 * MiB, 10_000), 'data is flowing');
      const t0 = Date.now();
      s.resetAndDestroy();
      const closed = await eventually(() => svc.sourceEnds.length > before, PROMPT_MS + 2000, 20);
      assert.ok(closed, `the service's socket still open ${Date.now() - t0} ms after the application reset`);
      console.log(`# workers=${workers}: service saw the abort as ${svc.sourceEnds[before]?.how} after ${Date.now() - t0} ms`);
      assert.ok(await eventually(async () => (await liveStreams(host)) === 0 && (await liveStreams(client)) === 0, 3000), 'streams released');
    });

    test('the service aborts mid-transfer: the application sees a reset promptly', { timeout: 30_000 }, async () => {
      // the echo service is killed under an open stream by destroying the host-side socket with RST
      const victims: net.Socket[] = [];
      const rst = await listen((socket) => { victims.push(socket); socket.on('error', () => {}); socket.pipe(socket); });
      const rstHost = await startHost({
        pin: PIN, listen: '127.0.0.1:0', workers, iceBind: '127.0.0.1', logLevel: 'error',
        services: { rst: { host: '127.0.0.1', port: rst.port } },
      });
      const fwd = await unusedPort();
      let c2: ClientHandle | undefined;
      try {
        c2 = await startClient({
          connect: rstHost.url, pin: PIN, workers, iceBind: '127.0.0.1', logLevel: 'error', reconnect: false,
          forwards: [{ host: '127.0.0.1', port: fwd, service: 'rst' }],
        });
        const s = connect(fwd);
        let received = 0;
        s.on('data', (c: Buffer) => { received += c.byteLength; });
        const ended = whenEnded(s);
        const next = byteSource(99);
        const pump = () => { while (!s.destroyed && s.write(next(CHUNK_BYTES))) { /* fill */ } if (!s.destroyed) s.once('drain', pump); };
        s.once('connect', pump);
        assert.ok(await eventually(() => received >= 1 * MiB && victims.length === 1, 10_000), 'data is flowing');
        const t0 = Date.now();
        victims[0]?.resetAndDestroy();
        const e = await within(ended, PROMPT_MS + 2000, 'the application after the service reset');
        const ms = Date.now() - t0;
        assert.ok(ms < PROMPT_MS, `application saw ${e.how} ${e.code ?? ''} after ${ms} ms`);
        assert.equal(e.how, 'error', `a service reset reaches the application as a reset, got ${e.how}`);
        s.destroy();
      } finally {
        destroyAllSockets();
        await c2?.close();
        await rstHost.close();
        await rst.close();
      }
    });

    test('chatty traffic: 20,000 small writes and 300 ping-pongs on one stream stay byte-exact', { timeout: 40_000 }, async () => {
      const rand = prng(31 + workers);
      const s = connect(port.echo);
      await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
      const sentHash = createHash('sha256');
      const gotHash = createHash('sha256');
      let sent = 0;
      let received = 0;
      let onData: (() => void) | null = null;
      s.on('data', (c: Buffer) => { received += c.byteLength; gotHash.update(c); onData?.(); });
      const ended = new Promise<void>((resolve, reject) => { s.once('end', resolve); s.once('error', reject); });
      const next = byteSource(32);
      // ping-pong: one small message, wait for all of it to come back
      const pingStarted = Date.now();
      for (let i = 0; i < 300; i++) {
        const msg = next(1 + Math.floor(rand() * 200));
        sentHash.update(msg);
        sent += msg.byteLength;
        s.write(msg);
        await within(new Promise<void>((resolve) => {
          if (received >= sent) { resolve(); return; }
          onData = () => { if (received >= sent) { onData = null; resolve(); } };
        }), 5000, `ping ${i}`);
      }
      const pingMs = (Date.now() - pingStarted) / 300;
      // a burst of tiny writes, each its own write() call (with noDelay most become their own segment)
      s.setNoDelay(true);
      for (let i = 0; i < 20_000; i++) {
        const msg = next(1 + Math.floor(rand() * 64));
        sentHash.update(msg);
        sent += msg.byteLength;
        if (!s.write(msg)) await new Promise((resolve) => s.once('drain', resolve));
        if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve)); // let reads interleave
      }
      s.end();
      await within(ended, 20_000, 'the echo of the burst');
      console.log(`# workers=${workers}: ping-pong ${pingMs.toFixed(2)} ms per round trip`);
      assert.equal(received, sent);
      assert.equal(gotHash.digest('hex'), sentHash.digest('hex'));
      s.destroy();
    });

    test('2,000 short connections in waves of 100: all byte-exact, nothing left behind', { timeout: 60_000 }, async () => {
      const rand = prng(0xBEEF + workers);
      let failures = 0;
      const started = Date.now();
      for (let wave = 0; wave < 20; wave++) {
        const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => echoRoundTrip(port.echo, Math.floor(rand() * 20_000), wave * 100 + i)));
        for (const r of results) if (r.status === 'rejected' || r.value.receivedHash !== r.value.sentHash || r.value.received !== r.value.sent) failures++;
      }
      console.log(`# workers=${workers}: 2000 short connections in ${((Date.now() - started) / 1000).toFixed(2)} s`);
      assert.equal(failures, 0, 'failed connections');
      assert.ok(await eventually(async () => (await liveStreams(host)) === 0 && (await liveStreams(client)) === 0, 5000), `streams still held: host ${await liveStreams(host)}, client ${await liveStreams(client)}`);
    });
  });
}

after(() => {
  destroyAllSockets();
  releaseDataChannelLibrary();
}, { timeout: 30_000 });
