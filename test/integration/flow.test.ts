// Flow control with real sockets and real PeerConnections on 127.0.0.1: a slow reader beside bulk
// streams, in both directions, and a reader that stops reading while hundreds of MiB are offered.
// Assertions are on the tunnel's own counters and on bytes (SHA-256), never on timing.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { startHost, type HostHandle } from '../../src/host.js';
import { startClient, type ClientHandle } from '../../src/client.js';
import { releaseDataChannelLibrary } from '../../src/webrtc/peer.js';
import { startEcho, freePort, type Echo } from '../../src/cli/loopback.js';
import { HEADER_BYTES, MAX_PAYLOAD_BYTES } from '../../src/shared/packet.js';
import { answered } from '../support/helpers.js';

const WINDOW = 256 * 1024;
const ONE_PACKET = MAX_PAYLOAD_BYTES + HEADER_BYTES;
const RATE = 1024 * 1024; // bytes per second of the slow readers

/** Reads `socket` at about `rate` bytes/s, hashing what it reads; resolves at end of stream. */
function readSlowly(socket: net.Socket, rate: number): Promise<{ bytes: number; sha: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let budget = 0;
    const tick = setInterval(() => { budget = rate / 10; socket.resume(); }, 100);
    socket.pause();
    socket.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.byteLength;
      budget -= chunk.byteLength;
      if (budget <= 0) socket.pause();
    });
    socket.on('end', () => { clearInterval(tick); resolve({ bytes, sha: hash.digest('hex') }); });
    socket.on('error', (err) => { clearInterval(tick); reject(err); });
  });
}

/** Writes `data` with backpressure, then half-closes. */
function writeAll(socket: net.Socket, data: Buffer): void {
  let offset = 0;
  const step = 256 * 1024;
  const more = () => {
    while (offset < data.byteLength) {
      const ok = socket.write(data.subarray(offset, offset + step));
      offset += step;
      if (!ok) { socket.once('drain', more); return; }
    }
    socket.end();
  };
  more();
}

/** Sends `data` through an echo at `port` and checks what comes back. */
function echoExact(port: number, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => writeAll(socket, data));
    socket.on('data', (chunk) => { hash.update(chunk); bytes += chunk.byteLength; });
    socket.on('end', () => {
      socket.end();
      try {
        assert.equal(bytes, data.byteLength);
        assert.equal(hash.digest('hex'), createHash('sha256').update(data).digest('hex'));
        resolve();
      } catch (err) { reject(err); }
    });
    socket.on('error', reject);
  });
}

after(() => releaseDataChannelLibrary()); // or the process never exits

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

for (const workers of [0, 2]) {
  describe(`flow control (workers ${workers})`, { timeout: 120_000 }, () => {
    let echo: Echo;
    let slowSink: net.Server;
    let source: net.Server;
    let host: HostHandle;
    let client: ClientHandle;
    const ports = { echo: 0, slow: 0, source: 0 };
    const slowResults: Promise<{ bytes: number; sha: string }>[] = [];
    const sourceData = randomBytes(4 * 1024 * 1024);
    const sockets = new Set<net.Socket>();

    before(async () => {
      echo = await startEcho();
      // a service that reads at ~1 MiB/s
      slowSink = net.createServer({ allowHalfOpen: true }, (socket) => {
        sockets.add(socket);
        slowResults.push(readSlowly(socket, RATE).finally(() => socket.end()));
      });
      // a service that sends 4 MiB as fast as it may, then ends
      source = net.createServer({ allowHalfOpen: true }, (socket) => {
        sockets.add(socket);
        socket.on('error', () => {});
        writeAll(socket, sourceData);
      });
      await new Promise<void>((r) => slowSink.listen(0, '127.0.0.1', r));
      await new Promise<void>((r) => source.listen(0, '127.0.0.1', r));
      ports.slow = (slowSink.address() as net.AddressInfo).port;
      ports.source = (source.address() as net.AddressInfo).port;
      host = await startHost({
        pin: '5555', listen: '127.0.0.1:0', workers, iceBind: '127.0.0.1', logLevel: 'warn',
        services: { echo: { host: '127.0.0.1', port: echo.port }, slow: { host: '127.0.0.1', port: ports.slow }, source: { host: '127.0.0.1', port: ports.source } },
        config: { windowBytes: WINDOW },
      });
      ports.echo = await freePort();
      ports.slow = await freePort();
      ports.source = await freePort();
      client = await startClient({
        connect: host.url, pin: '5555', workers, iceBind: '127.0.0.1', logLevel: 'warn',
        forwards: [
          { host: '127.0.0.1', port: ports.echo, service: 'echo' },
          { host: '127.0.0.1', port: ports.slow, service: 'slow' },
          { host: '127.0.0.1', port: ports.source, service: 'source' },
        ],
        config: { windowBytes: WINDOW },
      });
    });

    after(async () => {
      for (const s of sockets) s.destroy();
      await client?.close();
      await host?.close();
      echo?.close();
      slowSink?.close();
      source?.close();
    });

    it('a slow service beside 8 bulk streams: bulk completes exactly, the host holds at most a window', async () => {
      const upload = randomBytes(4 * 1024 * 1024);
      const slowSocket = net.connect({ port: ports.slow, host: '127.0.0.1', allowHalfOpen: true }, () => writeAll(slowSocket, upload));
      slowSocket.on('error', () => {});
      sockets.add(slowSocket);
      const bulk = Array.from({ length: 8 }, () => echoExact(ports.echo, randomBytes(4 * 1024 * 1024)));
      await Promise.all(bulk);
      // the slow stream is still going at ~1 MiB/s: it was not allowed to hold the others up
      await new Promise<void>((r) => { const t = setInterval(() => { if (slowResults.length > 0) { clearInterval(t); r(); } }, 20); });
      const slow = await slowResults[0];
      assert.ok(slow);
      assert.equal(slow.bytes, upload.byteLength);
      assert.equal(slow.sha, sha(upload));
      const stats = await host.stats();
      for (const shard of answered(stats)) {
        assert.ok(shard.peakStreamBufferedBytes <= WINDOW + ONE_PACKET, `host shard ${shard.index} held ${shard.peakStreamBufferedBytes} bytes for one stream`);
        assert.deepEqual(shard.resets, {});
      }
    });

    it('a slow client-side reader: bytes arrive exactly, the client holds at most a window', async () => {
      const socket = net.connect({ port: ports.source, host: '127.0.0.1', allowHalfOpen: true });
      sockets.add(socket);
      const got = await readSlowly(socket, 2 * RATE);
      socket.end();
      assert.equal(got.bytes, sourceData.byteLength);
      assert.equal(got.sha, sha(sourceData));
      const stats = await client.stats();
      for (const shard of answered(stats)) {
        assert.ok(shard.peakStreamBufferedBytes <= WINDOW + ONE_PACKET, `client shard ${shard.index} held ${shard.peakStreamBufferedBytes} bytes for one stream`);
      }
    });
  });
}

describe('memory stays bounded when a reader stops reading', { timeout: 120_000 }, () => {
  let host: HostHandle;
  let client: ClientHandle;
  let source: net.Server;
  let forward = 0;
  const TOTAL = 256 * 1024 * 1024;
  const chunk = randomBytes(1024 * 1024);
  const sockets = new Set<net.Socket>();

  before(async () => {
    // offers TOTAL bytes (the same random MiB over and over) with backpressure
    source = net.createServer({ allowHalfOpen: true }, (socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      let sent = 0;
      const more = () => {
        while (sent < TOTAL) {
          sent += chunk.byteLength;
          if (!socket.write(chunk)) { socket.once('drain', more); return; }
        }
        socket.end();
      };
      more();
    });
    await new Promise<void>((r) => source.listen(0, '127.0.0.1', r));
    const port = (source.address() as net.AddressInfo).port;
    host = await startHost({ pin: '7777', listen: '127.0.0.1:0', workers: 1, iceBind: '127.0.0.1', logLevel: 'warn', services: { source: { host: '127.0.0.1', port } } });
    forward = await freePort();
    client = await startClient({ connect: host.url, pin: '7777', workers: 1, iceBind: '127.0.0.1', logLevel: 'warn', forwards: [{ host: '127.0.0.1', port: forward, service: 'source' }] });
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await client?.close();
    await host?.close();
    source?.close();
  });

  it(`offers ${TOTAL / 1048576} MiB to a paused reader: RSS grows < 64 MiB, then every byte arrives`, async () => {
    global.gc?.();
    const before = process.memoryUsage().rss;
    const socket = net.connect({ port: forward, host: '127.0.0.1' });
    sockets.add(socket);
    socket.pause();
    let peak = before;
    const sample = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 50);
    await new Promise((r) => setTimeout(r, 3000));
    const grown = peak - before;
    const expected = createHash('sha256');
    for (let i = 0; i < TOTAL / chunk.byteLength; i++) expected.update(chunk);
    const hash = createHash('sha256');
    let bytes = 0;
    socket.on('data', (c: Buffer) => { hash.update(c); bytes += c.byteLength; });
    socket.resume();
    await new Promise<void>((resolve, reject) => { socket.on('end', resolve); socket.on('error', reject); });
    clearInterval(sample);
    assert.ok(grown < 64 * 1024 * 1024, `RSS grew by ${(grown / 1048576).toFixed(1)} MiB while the reader was paused`);
    assert.equal(bytes, TOTAL);
    assert.equal(hash.digest('hex'), expected.digest('hex'));
  });
});
