// End to end, happy paths: real TCP services, a real host and client in this process, one real
// PeerConnection on 127.0.0.1, bytes checked with SHA-256. Each case runs with the shards on the
// main thread (workers: 0) and on two worker threads (workers: 2).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { releaseAtEnd, startPair, type Pair } from '../support/pair.js';
import { RESPONSE_BODY_BYTES, RESPONSE_SEED, startDigestService, startEchoService } from '../support/services.js';
import { MiB, byteSource, echoRoundTrip, sha256 } from '../support/traffic.js';
import { liveStreams } from '../support/stats.js';
import { eventually } from '../support/timing.js';
import { prng } from '../support/prng.js';

releaseAtEnd();

for (const workers of [0, 2]) {
  describe(`e2e (workers: ${workers})`, { timeout: 150_000 }, () => {
    let pair: Pair;

    before(async () => {
      pair = await startPair({ workers, services: { echo: await startEchoService(), digest: await startDigestService() } });
    }, { timeout: 30_000 });
    after(() => pair?.close(), { timeout: 30_000 });

    test('one stream, 64 MiB each way through an echo, byte-exact', { timeout: 60_000 }, async () => {
      const size = 64 * MiB;
      const started = Date.now();
      const r = await echoRoundTrip(pair.port.echo, size, 1);
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
      const results = await Promise.allSettled(sizes.map((size, i) => echoRoundTrip(pair.port.echo, size, 1000 + i)));
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
      const released = await eventually(async () => (await liveStreams(pair.client)) === 0 && (await liveStreams(pair.host)) === 0, 5000);
      assert.ok(released, `streams still held after all closed: client ${await liveStreams(pair.client)}, host ${await liveStreams(pair.host)}`);
    });

    test('half-close: the client ends its request and still receives the whole response', { timeout: 30_000 }, async () => {
      // the digest service answers only after our FIN: the SHA-256 of what it read, then a seeded body
      const body = sha256(byteSource(RESPONSE_SEED)(RESPONSE_BODY_BYTES));
      const sizes = [0, 1, 100_000, 3 * MiB];
      const results = await Promise.all(sizes.map(async (size, i) => {
        const parts: Buffer[] = [];
        const r = await echoRoundTrip(pair.port.digest, size, 7000 + i, (chunk) => parts.push(chunk));
        return { requestHash: r.sentHash, response: Buffer.concat(parts) };
      }));
      results.forEach(({ requestHash, response }, i) => {
        assert.equal(response.byteLength, 32 + RESPONSE_BODY_BYTES, `request of ${sizes[i]} B: response length`);
        assert.equal(response.subarray(0, 32).toString('hex'), requestHash, `request of ${sizes[i]} B: the service saw exactly our request`);
        assert.equal(sha256(response.subarray(32)), body, `request of ${sizes[i]} B: response body SHA-256`);
      });
    });
  });
}
