// End to end, when things go wrong: a service that refuses the dial, a service the host does not
// expose, a wrong PIN, and a host process killed in the middle of a transfer. Real sockets and real
// PeerConnections on 127.0.0.1; each case runs with workers: 0 and workers: 2.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startHost, type HostHandle } from '../../src/host.js';
import { startClient, type ClientHandle } from '../../src/client.js';
import { releaseDataChannelLibrary } from '../../src/webrtc/peer.js';
import { TunnelError } from '../../src/errors.js';
import {
  CHUNK_BYTES,
  byteSource, connect, destroyAllSockets, echoRoundTrip, eventually, portIsFree, runCli,
  startEchoService, unusedPort, whenEnded, within, type Child, type Service,
} from '../support/helpers.js';
import { answered } from '../support/helpers.js';

const MiB = 1024 * 1024;
const PIN = '13572468';
/** "promptly": a refused or unknown stream must be closed on the client within this (ms) */
const PROMPT_MS = 3000;
/** after the host process dies, the client's connections must end within this (ms) */
const HOST_DEATH_MS = 6000;

for (const workers of [0, 2]) {
  describe(`refused streams and a wrong PIN (workers: ${workers})`, { timeout: 60_000 }, () => {
    let echo: Service;
    let host: HostHandle;
    let client: ClientHandle;
    let echoPort = 0;
    let deadPort = 0;
    let unknownPort = 0;

    before(async () => {
      echo = await startEchoService();
      const nothingListens = await unusedPort();
      host = await startHost({
        pin: PIN,
        listen: '127.0.0.1:0',
        services: { echo: { host: '127.0.0.1', port: echo.port }, dead: { host: '127.0.0.1', port: nothingListens } },
        workers,
        iceBind: '127.0.0.1',
        logLevel: 'error', // the resets below are expected
      });
      echoPort = await unusedPort();
      deadPort = await unusedPort();
      unknownPort = await unusedPort();
      client = await startClient({
        connect: host.url,
        pin: PIN,
        forwards: [
          { host: '127.0.0.1', port: echoPort, service: 'echo' },
          { host: '127.0.0.1', port: deadPort, service: 'dead' },
          { host: '127.0.0.1', port: unknownPort, service: 'no-such-service' },
        ],
        workers,
        iceBind: '127.0.0.1',
        logLevel: 'error',
        reconnect: false,
      });
      await within(client.whenConnected(), 10_000, 'client connected');
    }, { timeout: 30_000 });

    after(async () => {
      destroyAllSockets();
      await client?.close();
      await host?.close();
      await echo?.close();
    }, { timeout: 30_000 });

    /** A refused stream closes promptly, and a good stream running alongside finishes byte-exact. */
    async function refusedAlongsideGood(port: number, what: string): Promise<void> {
      const good = echoRoundTrip(echoPort, 16 * MiB, 42);
      const bad = connect(port);
      const ended = whenEnded(bad);
      bad.write('hello?'); // bytes sent before the refusal arrives must not matter
      const e = await within(ended, PROMPT_MS + 2000, `${what}: the client connection`);
      assert.ok(e.ms < PROMPT_MS, `${what}: closed after ${e.ms} ms (${e.how} ${e.code ?? ''}), want < ${PROMPT_MS}`);
      assert.equal(e.received, 0, `${what}: no bytes may come back`);
      console.log(`# workers=${workers}: ${what}: the client connection saw ${e.how}${e.code ? ` ${e.code}` : ''} after ${e.ms} ms`);
      bad.destroy();
      const r = await good;
      assert.equal(r.received, r.sent, 'the good stream: bytes echoed');
      assert.equal(r.receivedHash, r.sentHash, 'the good stream: SHA-256');
      // and a fresh stream after the refusal still works
      const again = await echoRoundTrip(echoPort, 256 * 1024, 43);
      assert.equal(again.receivedHash, again.sentHash, 'a stream after the refusal: SHA-256');
    }

    test('dial refused: the connection is reset promptly, a good stream alongside is unaffected', { timeout: 30_000 }, async () => {
      await refusedAlongsideGood(deadPort, 'dial refused');
      const shards = answered(await host.stats());
      const dialFailed = shards.reduce((n, s) => n + (s.resets.DIAL_FAILED ?? 0), 0);
      assert.ok(dialFailed >= 1, `host counted DIAL_FAILED resets: ${JSON.stringify(shards.map((s) => s.resets))}`);
    });

    test('unknown service: the connection is closed promptly, others keep working', { timeout: 30_000 }, async () => {
      assert.ok(!client.services.includes('no-such-service'), 'the host does not expose it');
      await refusedAlongsideGood(unknownPort, 'unknown service');
      const shards = answered(await host.stats());
      const unknown = shards.reduce((n, s) => n + (s.resets.UNKNOWN_SERVICE ?? 0), 0);
      assert.ok(unknown >= 1, `host counted UNKNOWN_SERVICE resets: ${JSON.stringify(shards.map((s) => s.resets))}`);
    });

    test('several refused streams at once do not disturb concurrent good ones', { timeout: 30_000 }, async () => {
      const goods = Array.from({ length: 8 }, (_, i) => echoRoundTrip(echoPort, 2 * MiB, 500 + i));
      const bads = Array.from({ length: 20 }, (_, i) => {
        const s = connect(i % 2 ? deadPort : unknownPort);
        return whenEnded(s);
      });
      const ends = await within(Promise.all(bads), PROMPT_MS + 2000, 'refused streams');
      const slow = ends.filter((e) => e.ms >= PROMPT_MS);
      assert.deepEqual(slow, [], 'every refused stream closes promptly');
      for (const r of await Promise.all(goods)) assert.equal(r.receivedHash, r.sentHash, 'good stream SHA-256');
    });

    test('wrong PIN: startClient rejects with TunnelError code WRONG_PIN', { timeout: 20_000 }, async () => {
      const port = await unusedPort();
      const err = await startClient({
        connect: host.url,
        pin: 'not-the-pin',
        forwards: [{ host: '127.0.0.1', port, service: 'echo' }],
        workers,
        iceBind: '127.0.0.1',
        logLevel: 'error',
        reconnect: false,
      }).then(async (c) => { await c.close(); return null; }, (e: unknown) => e);
      assert.ok(err instanceof TunnelError, `rejects with a TunnelError, got ${String(err)}`);
      assert.equal(err.code, 'WRONG_PIN');
      assert.ok(await portIsFree(port), 'the refused client left its forward port free');
      const r = await echoRoundTrip(echoPort, 1 * MiB, 44);
      assert.equal(r.receivedHash, r.sentHash, 'the admitted client is unaffected');
    });
  });
}

for (const workers of [0, 2]) {
  describe(`host process killed mid-transfer (workers: ${workers})`, { timeout: 60_000 }, () => {
    let echo: Service;
    let hostProc: Child | null = null;
    let client: ClientHandle | null = null;

    before(async () => {
      echo = await startEchoService();
    }, { timeout: 30_000 });

    after(async () => {
      destroyAllSockets();
      await hostProc?.stop();
      await client?.close();
      await echo?.close();
    }, { timeout: 30_000 });

    test('SIGKILL on the host: every client connection ends within 6 s, none hangs', { timeout: 40_000 }, async () => {
      const listenPort = await unusedPort();
      hostProc = runCli([
        'host', '--pin', PIN, '--listen', `127.0.0.1:${listenPort}`, '--expose', `echo=127.0.0.1:${echo.port}`,
        '--ice-bind', '127.0.0.1', '--workers', String(workers), '--log-level', 'warn',
      ]);
      const url = (await hostProc.line(/listening on (ws:\/\/\S+)/, 15_000))[1] ?? '';
      assert.equal(url, `ws://127.0.0.1:${listenPort}`);

      const forwardPort = await unusedPort();
      client = await startClient({
        connect: url, pin: PIN, forwards: [{ host: '127.0.0.1', port: forwardPort, service: 'echo' }],
        workers, iceBind: '127.0.0.1', logLevel: 'error', reconnect: false,
      });
      await within(client.whenConnected(), 10_000, 'client connected');

      // four streams, each sending seeded bytes as fast as the tunnel takes them (bounded at 1 GiB)
      const STREAMS = 4;
      const LIMIT_BYTES = 1024 * MiB;
      const received = new Array<number>(STREAMS).fill(0);
      const streams = Array.from({ length: STREAMS }, (_, i) => {
        const socket = connect(forwardPort);
        const next = byteSource(900 + i);
        let sent = 0;
        const pump = () => {
          while (sent < LIMIT_BYTES && socket.writable) {
            sent += CHUNK_BYTES;
            if (!socket.write(next(CHUNK_BYTES))) {
              socket.once('drain', pump);
              return;
            }
          }
        };
        socket.once('connect', pump);
        socket.on('data', (chunk: Buffer) => { received[i] = (received[i] ?? 0) + chunk.byteLength; });
        socket.on('error', () => { /* expected once the host dies */ });
        return { socket };
      });
      const moving = await eventually(() => received.every((n) => n >= 2 * MiB), 15_000);
      assert.ok(moving, `every stream is moving before the kill: ${received.join(', ')} B echoed`);

      const killedAt = Date.now();
      hostProc.proc.kill('SIGKILL');
      const ends = streams.map(({ socket }) => new Promise<{ ms: number; how: string }>((resolve) => {
        const done = (how: string) => resolve({ ms: Date.now() - killedAt, how });
        if (socket.destroyed) { done('already closed'); return; }
        socket.once('end', () => done('end'));
        socket.once('error', (err: NodeJS.ErrnoException) => done(`error ${err.code ?? err.message}`));
        socket.once('close', () => done('close'));
      }));
      const results = await within(Promise.all(ends), HOST_DEATH_MS + 4000, 'client connections after the host was killed');
      await hostProc.exited;
      for (const [i, r] of results.entries()) {
        assert.ok(r.ms < HOST_DEATH_MS, `stream ${i} ended ${r.ms} ms after the kill (${r.how}), want < ${HOST_DEATH_MS}`);
      }
      assert.ok(await eventually(() => client?.connected() === false, 2000), 'the client knows the host is gone');
      console.log(`# workers=${workers}: after SIGKILL the streams ended in ${results.map((r) => `${r.ms} ms (${r.how})`).join(', ')}`);
    });
  });
}

/** An echo service that also says how many of its connections are open. */
async function countingEcho(): Promise<{ port: number; open(): number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    open: () => sockets.size,
    close: () => new Promise<void>((done) => { for (const x of sockets) x.destroy(); server.close(() => done()); }),
  };
}

/** Opens `n` streams through `port` that send seeded bytes as fast as they are taken (bounded). */
function floodStreams(port: number, n: number, seed: number): { sockets: net.Socket[]; received: number[] } {
  const LIMIT_BYTES = 1024 * MiB;
  const received = new Array<number>(n).fill(0);
  const sockets = Array.from({ length: n }, (_, i) => {
    const socket = connect(port);
    const next = byteSource(seed + i);
    let sent = 0;
    const pump = () => {
      while (sent < LIMIT_BYTES && socket.writable) {
        sent += CHUNK_BYTES;
        if (!socket.write(next(CHUNK_BYTES))) { socket.once('drain', pump); return; }
      }
    };
    socket.once('connect', pump);
    socket.on('data', (chunk: Buffer) => { received[i] = (received[i] ?? 0) + chunk.byteLength; });
    socket.on('error', () => { /* expected when the far side dies */ });
    return socket;
  });
  return { sockets, received };
}

for (const workers of [0, 2]) {
  describe(`host process frozen mid-transfer (SIGSTOP, workers: ${workers})`, { timeout: 60_000 }, () => {
    let echo: Service;
    let hostProc: Child | null = null;
    let client: ClientHandle | null = null;
    /** the client gives up on a silent host after this (ms); short, so the test is quick */
    const PEER_TIMEOUT_MS = 2000;

    before(async () => { echo = await startEchoService(); }, { timeout: 30_000 });
    after(async () => {
      destroyAllSockets();
      if (hostProc && hostProc.proc.exitCode === null) hostProc.proc.kill('SIGCONT');
      await hostProc?.stop();
      await client?.close();
      await echo?.close();
    }, { timeout: 30_000 });

    test('a host that stops answering: the client streams end soon after its peer timeout', { timeout: 40_000 }, async () => {
      const listenPort = await unusedPort();
      hostProc = runCli([
        'host', '--pin', PIN, '--listen', `127.0.0.1:${listenPort}`, '--expose', `echo=127.0.0.1:${echo.port}`,
        '--ice-bind', '127.0.0.1', '--workers', String(workers), '--log-level', 'warn',
      ]);
      const url = (await hostProc.line(/listening on (ws:\/\/\S+)/, 15_000))[1] ?? '';
      const forwardPort = await unusedPort();
      client = await startClient({
        connect: url, pin: PIN, forwards: [{ host: '127.0.0.1', port: forwardPort, service: 'echo' }],
        workers, iceBind: '127.0.0.1', logLevel: 'error', reconnect: false,
        config: { keepaliveMs: 250, peerTimeoutMs: PEER_TIMEOUT_MS },
      });
      await within(client.whenConnected(), 10_000, 'client connected');
      const { sockets, received } = floodStreams(forwardPort, 3, 1300);
      assert.ok(await eventually(() => received.every((n) => n >= 1 * MiB), 15_000), `streams moving: ${received.join(', ')}`);

      const stoppedAt = Date.now();
      hostProc.proc.kill('SIGSTOP'); // the signaling TCP connection stays open: only silence tells
      const ends = sockets.map((s) => whenEnded(s, stoppedAt));
      const bound = PEER_TIMEOUT_MS + 2000;
      const results = await within(Promise.all(ends), bound + 5000, 'client connections after the host froze');
      console.log(`# workers=${workers}: host frozen; streams ended after ${results.map((r) => `${r.ms} ms (${r.how})`).join(', ')}`);
      for (const [i, r] of results.entries()) assert.ok(r.ms < bound, `stream ${i} ended ${r.ms} ms after the freeze, want < ${bound}`);
      assert.ok(await eventually(() => client?.connected() === false, 2000), 'the client knows the host is gone');
      hostProc.proc.kill('SIGKILL');
      await hostProc.exited;
    });
  });

  describe(`client process killed mid-transfer (workers: ${workers})`, { timeout: 60_000 }, () => {
    let echo: Awaited<ReturnType<typeof countingEcho>>;
    let host: HostHandle;
    let clientProc: Child | null = null;

    before(async () => {
      echo = await countingEcho();
      host = await startHost({
        pin: PIN, listen: '127.0.0.1:0', services: { echo: { host: '127.0.0.1', port: echo.port } },
        workers, iceBind: '127.0.0.1', logLevel: 'error',
      });
    }, { timeout: 30_000 });
    after(async () => {
      destroyAllSockets();
      await clientProc?.stop();
      await host?.close();
      await echo?.close();
    }, { timeout: 30_000 });

    test('SIGKILL on the client: the host closes its service connections and releases the streams', { timeout: 40_000 }, async () => {
      const forwardPort = await unusedPort();
      clientProc = runCli([
        'client', '--connect', host.url, '--pin', PIN, '--forward', `127.0.0.1:${forwardPort}=echo`,
        '--ice-bind', '127.0.0.1', '--workers', String(workers), '--log-level', 'warn',
      ]);
      await clientProc.line(/forwarding 127\.0\.0\.1:\d+ -> echo/, 20_000);
      const { received } = floodStreams(forwardPort, 4, 1400);
      assert.ok(await eventually(() => received.every((n) => n >= 1 * MiB), 15_000), `streams moving: ${received.join(', ')}`);
      assert.equal(echo.open(), 4, 'the service holds one connection per stream');

      const killedAt = Date.now();
      clientProc.proc.kill('SIGKILL');
      const released = await eventually(() => echo.open() === 0, HOST_DEATH_MS, 20);
      const ms = Date.now() - killedAt;
      assert.ok(released, `the service still has ${echo.open()} connections ${ms} ms after the client died`);
      console.log(`# workers=${workers}: client killed; the host closed the service connections after ${ms} ms`);
      assert.ok(await eventually(async () => {
        const shards = answered(await host.stats());
        return shards.every((s) => s.streams === 0) && host.peers() === 0;
      }, 3000), 'the host released the streams and the peer');
    });
  });
}

after(() => {
  destroyAllSockets();
  releaseDataChannelLibrary();
}, { timeout: 30_000 });
