// End to end, happy paths: real TCP services, a real host and client in this process, one real
// PeerConnection on 127.0.0.1, bytes checked with SHA-256. Each case runs with the shards on the
// main thread (workers: 0) and on two worker threads (workers: 2).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startHost, type HostHandle } from '../../src/host.js';
import { startClient, type ClientHandle } from '../../src/client.js';
import { releaseDataChannelLibrary } from '../../src/webrtc/peer.js';
import {
  LOG_LEVEL, CHUNK_BYTES, RESPONSE_BODY_BYTES, RESPONSE_SEED,
  byteSource, connect, destroyAllSockets, echoRoundTrip, eventually, prng, sha256,
  startDigestService, startEchoService, unusedPort, within, type Service,
} from '../support/helpers.js';
import { answered } from '../support/helpers.js';
import type { ShardStats } from '../../src/shared/thread-messages.js';

const MiB = 1024 * 1024;
const PIN = '24681357';

/** Sum of the streams the shards still hold. */
async function liveStreams(handle: { stats(): Promise<{ shards: (ShardStats | null)[] }> }): Promise<number> {
  return answered(await handle.stats()).reduce((n, s) => n + s.streams, 0);
}

/** Sends `size` seeded bytes, half-closes, and collects the whole response. */
function requestResponse(port: number, size: number, seed: number): Promise<{ requestHash: Buffer; response: Buffer }> {
  return new Promise((resolve, reject) => {
    const next = byteSource(seed);
    const hash = createHash('sha256');
    const parts: Buffer[] = [];
    let sent = 0;
    const socket = connect(port);
    const pump = () => {
      while (sent < size) {
        const chunk = next(Math.min(CHUNK_BYTES, size - sent));
        hash.update(chunk);
        sent += chunk.byteLength;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end(); // our request is complete: the service answers only after this
    };
    socket.once('connect', pump);
    socket.on('data', (chunk: Buffer) => parts.push(chunk));
    socket.once('end', () => {
      socket.destroy();
      resolve({ requestHash: hash.digest(), response: Buffer.concat(parts) });
    });
    socket.once('error', (err) => reject(new Error(`request of ${size} B: ${err.message}`)));
    socket.once('close', () => reject(new Error(`request of ${size} B: closed without an end`)));
  });
}

for (const workers of [0, 2]) {
  describe(`e2e (workers: ${workers})`, { timeout: 150_000 }, () => {
    let echo: Service;
    let digest: Service;
    let host: HostHandle;
    let client: ClientHandle;
    let echoPort = 0;
    let digestPort = 0;

    before(async () => {
      echo = await startEchoService();
      digest = await startDigestService();
      host = await startHost({
        pin: PIN,
        listen: '127.0.0.1:0',
        services: { echo: { host: '127.0.0.1', port: echo.port }, digest: { host: '127.0.0.1', port: digest.port } },
        workers,
        iceBind: '127.0.0.1',
        logLevel: LOG_LEVEL,
      });
      echoPort = await unusedPort();
      digestPort = await unusedPort();
      client = await startClient({
        connect: host.url,
        pin: PIN,
        forwards: [
          { host: '127.0.0.1', port: echoPort, service: 'echo' },
          { host: '127.0.0.1', port: digestPort, service: 'digest' },
        ],
        workers,
        iceBind: '127.0.0.1',
        logLevel: LOG_LEVEL,
        reconnect: false,
      });
      await within(client.whenConnected(), 10_000, 'client connected');
    }, { timeout: 30_000 });

    after(async () => {
      destroyAllSockets();
      await client?.close();
      await host?.close();
      await echo?.close();
      await digest?.close();
    }, { timeout: 30_000 });

    test('one stream, 64 MiB each way through an echo, byte-exact', { timeout: 60_000 }, async () => {
      const size = 64 * MiB;
      const started = Date.now();
      const r = await echoRoundTrip(echoPort, size, 1);
      const seconds = (Date.now() - started) / 1000;
      assert.equal(r.sent, size);
      assert.equal(r.received, size, 'bytes echoed back');
      assert.equal(r.receivedHash, r.sentHash, 'SHA-256 of the echo');
      console.log(`# workers=${workers}: 64 MiB each way in ${seconds.toFixed(2)} s (${((2 * size) / 1e6 / seconds).toFixed(1)} MB/s)`);
    });

    test('200 concurrent streams of seeded random sizes (0 B .. 4 MiB), all byte-exact', { timeout: 90_000 }, async () => {
      const rand = prng(0xC0FFEE + workers);
      // the edges first (empty, one byte, around one 64 KiB packet, the maximum), then sizes spread
      // log-uniformly over 1 B .. 4 MiB so every order of magnitude is covered without 400 MiB of load
      const edges = [0, 0, 1, 65535, 65536, 65537, 1024 * 1024, 4 * MiB];
      const sizes = Array.from({ length: 200 }, (_, i) => edges[i] ?? Math.min(4 * MiB, Math.floor(Math.exp(rand() * Math.log(4 * MiB + 1)))));
      const total = sizes.reduce((a, b) => a + b, 0);
      const started = Date.now();
      const results = await Promise.allSettled(sizes.map((size, i) => echoRoundTrip(echoPort, size, 1000 + i)));
      const seconds = (Date.now() - started) / 1000;
      const failures: string[] = [];
      results.forEach((r, i) => {
        if (r.status === 'rejected') failures.push(`#${i} (${sizes[i]} B): ${(r.reason as Error).message}`);
        else if (r.value.received !== sizes[i] || r.value.receivedHash !== r.value.sentHash) {
          failures.push(`#${i} (${sizes[i]} B): got ${r.value.received} B, hash ${r.value.receivedHash === r.value.sentHash ? 'ok' : 'MISMATCH'}`);
        }
      });
      console.log(`# workers=${workers}: 200 streams, ${(total / MiB).toFixed(1)} MiB each way, in ${seconds.toFixed(2)} s`);
      assert.deepEqual(failures, [], `${failures.length} of 200 streams failed`);
      // both FINs delivered everywhere: every stream is released on both sides
      const released = await eventually(async () => (await liveStreams(client)) === 0 && (await liveStreams(host)) === 0, 5000);
      assert.ok(released, `streams still held after all closed: client ${await liveStreams(client)}, host ${await liveStreams(host)}`);
    });

    test('half-close: the client ends its request and still receives the whole response', { timeout: 30_000 }, async () => {
      const body = byteSource(RESPONSE_SEED)(RESPONSE_BODY_BYTES);
      const sizes = [0, 1, 100_000, 3 * MiB];
      const results = await Promise.all(sizes.map((size, i) => requestResponse(digestPort, size, 7000 + i)));
      results.forEach(({ requestHash, response }, i) => {
        assert.equal(response.byteLength, 32 + RESPONSE_BODY_BYTES, `request of ${sizes[i]} B: response length`);
        assert.equal(response.subarray(0, 32).toString('hex'), requestHash.toString('hex'), `request of ${sizes[i]} B: the service saw exactly our request`);
        assert.equal(sha256(response.subarray(32)), sha256(body), `request of ${sizes[i]} B: response body SHA-256`);
      });
    });
  });
}

after(() => {
  destroyAllSockets();
  releaseDataChannelLibrary();
}, { timeout: 30_000 });
