// Flow control end to end (DESIGN.md section 3): a stalled or slow reader on either side must
// neither block the other streams nor make anyone buffer more than a window; a reader that stops
// while hundreds of MiB are offered must not grow memory; and host and client that chose different
// --window values must still carry every byte. Assertions are on the tunnel's own counters and on
// bytes (SHA-256); the few durations logged are for the reader, not asserted.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { HEADER_BYTES, MAX_PAYLOAD_BYTES } from '../../src/shared/packet.js';
import { releaseAtEnd, startPair, type Pair } from '../support/pair.js';
import { serve, startEchoService, startSourceService } from '../support/services.js';
import { CHUNK_BYTES, MiB, byteSource, connect, echoRoundTrip, readAll, sha256, writeSeeded, type ReadResult } from '../support/traffic.js';
import { peakStreamBuffer, resetCounts } from '../support/stats.js';
import { eventually, within } from '../support/timing.js';

/** A small window makes flow control bite quickly (bytes). */
const WINDOW_BYTES = 256 * 1024;
const ONE_PACKET_BYTES = MAX_PAYLOAD_BYTES + HEADER_BYTES;
/** How fast the slow readers read (bytes per second). */
const SLOW_RATE = 1024 * 1024;
const SOURCE_BYTES = 4 * MiB;
const SOURCE_SEED = 606;

releaseAtEnd();

for (const workers of [0, 2]) {
  describe(`flow control (workers: ${workers})`, { timeout: 150_000 }, () => {
    let pair: Pair;
    /** what the slow service read, one entry per connection */
    const slowReads: Promise<ReadResult>[] = [];

    before(async () => {
      const slow = await serve((socket) => { slowReads.push(readAll(socket, { bytesPerSecond: SLOW_RATE }).finally(() => socket.end())); });
      pair = await startPair({
        workers,
        config: { windowBytes: WINDOW_BYTES },
        services: { echo: await startEchoService(), slow, source: await startSourceService({ bytes: SOURCE_BYTES, seed: SOURCE_SEED }) },
      });
    }, { timeout: 30_000 });
    after(() => pair?.close(), { timeout: 30_000 });

    // These two come first: they bound the shards' peak per-stream buffer at one window, and the
    // peak is kept for the life of the pair; the stalled reader below holds up to two.
    test('a slow service beside 8 bulk streams: bulk completes exactly, the host holds at most a window', { timeout: 60_000 }, async () => {
      const upload = byteSource(600)(SOURCE_BYTES);
      const slowSocket = connect(pair.port.slow);
      slowSocket.on('error', () => {});
      slowSocket.once('connect', () => slowSocket.end(upload));
      const bulk = await Promise.all(Array.from({ length: 8 }, (_, i) => echoRoundTrip(pair.port.echo, 4 * MiB, 610 + i)));
      for (const r of bulk) assert.equal(r.receivedHash, r.sentHash, 'a bulk stream is byte-exact');
      // the slow stream is still going at ~1 MiB/s: it was not allowed to hold the others up
      assert.ok(await eventually(() => slowReads.length > 0, 10_000), 'the slow service got its connection');
      const slow = await within(slowReads[0] ?? Promise.reject(new Error('no read')), 30_000, 'the slow service reading everything');
      assert.equal(slow.bytes, upload.byteLength);
      assert.equal(slow.hash, sha256(upload));
      const stats = await pair.host.stats();
      assert.ok(peakStreamBuffer(stats) <= WINDOW_BYTES + ONE_PACKET_BYTES, `the host held ${peakStreamBuffer(stats)} bytes for one stream`);
      assert.deepEqual(resetCounts(stats), {});
    });

    test('a slow client-side reader: bytes arrive exactly, the client holds at most a window', { timeout: 30_000 }, async () => {
      const socket = connect(pair.port.source);
      const got = await readAll(socket, { bytesPerSecond: 2 * SLOW_RATE });
      socket.end();
      assert.deepEqual(got, { how: 'end', bytes: SOURCE_BYTES, hash: sha256(byteSource(SOURCE_SEED)(SOURCE_BYTES)) });
      const stats = await pair.client.stats();
      assert.ok(peakStreamBuffer(stats) <= WINDOW_BYTES + ONE_PACKET_BYTES, `the client held ${peakStreamBuffer(stats)} bytes for one stream`);
    });

    test('a stalled reader blocks only its own stream, and nobody buffers without bound', { timeout: 60_000 }, async () => {
      // stream A writes into the echo but never reads what comes back
      const size = 48 * MiB;
      const a = connect(pair.port.echo);
      a.pause();
      const hashA = createHash('sha256');
      let sentA = 0;
      let lastProgress = Date.now();
      a.once('connect', () => writeSeeded(a, size, byteSource(11), { onChunk: (c) => { hashA.update(c); sentA += c.byteLength; lastProgress = Date.now(); } }));
      const stalled = await eventually(() => Date.now() - lastProgress > 1000, 20_000, 100);
      assert.ok(stalled, `stream A should stall when nobody reads it (sent ${sentA} B)`);
      assert.ok(sentA < size, 'A cannot have sent everything without a reader');

      // stream B must flow while A is stalled
      const started = Date.now();
      const b = await within(echoRoundTrip(pair.port.echo, 16 * MiB, 12), 20_000, 'stream B while A is stalled');
      assert.equal(b.receivedHash, b.sentHash, 'B is byte-exact');
      const bSeconds = (Date.now() - started) / 1000;

      // the tunnel's own buffers for A are bounded by the window
      const h = await pair.host.stats();
      const c = await pair.client.stats();
      const buffered = Math.max(peakStreamBuffer(h), peakStreamBuffer(c));
      console.log(`# workers=${workers}: A stalled after ${(sentA / MiB).toFixed(1)} MiB; B (16 MiB) took ${bSeconds.toFixed(2)} s; peak per-stream buffer ${buffered} B, dispatcher queue host ${h.dispatcher.peakQueuedBytes} B / client ${c.dispatcher.peakQueuedBytes} B`);
      // a stream holds at most its window (reassembler + socket write buffer) plus one packet
      assert.ok(buffered <= 2 * WINDOW_BYTES + CHUNK_BYTES, `per-stream buffer peak ${buffered} B`);

      // now read A: everything arrives, byte-exact
      const gotA = await within(readAll(a), 30_000, 'stream A after it is read again');
      assert.deepEqual(gotA, { how: 'end', bytes: size, hash: hashA.digest('hex') }, 'A is byte-exact');
      a.destroy();
    });
  });
}

describe('memory stays bounded when a reader stops reading', { timeout: 120_000 }, () => {
  const TOTAL_BYTES = 256 * MiB;
  const SEED = 707;
  let pair: Pair;

  before(async () => {
    pair = await startPair({ services: { source: await startSourceService({ bytes: TOTAL_BYTES, seed: SEED }) } });
  }, { timeout: 30_000 });
  after(() => pair?.close(), { timeout: 30_000 });

  test(`offers ${TOTAL_BYTES / MiB} MiB to a paused reader: RSS grows < 64 MiB, then every byte arrives`, { timeout: 90_000 }, async () => {
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sample = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 50);
    const socket = connect(pair.port.source);
    const read = readAll(socket, { pauseMs: 3000 });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const grown = peak - before;
    const got = await within(read, 60_000, 'reading everything after the pause');
    clearInterval(sample);
    socket.end();
    const expected = createHash('sha256');
    const next = byteSource(SEED);
    for (let left = TOTAL_BYTES; left > 0; left -= MiB) expected.update(next(MiB));
    assert.ok(grown < 64 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB while the reader was paused`);
    assert.deepEqual(got, { how: 'end', bytes: TOTAL_BYTES, hash: expected.digest('hex') });
  });
});

describe('host and client with different --window', { timeout: 90_000 }, () => {
  // `--window` is a per-process flag of both sides; nothing says they must match
  const BULK_BYTES = 24 * MiB;
  const BULK_SEED = 4242;
  /** how long the lazy reader and the lazy service read nothing (ms): long enough to fill any window */
  const STALL_MS = 1500;
  const want = sha256(byteSource(BULK_SEED)(BULK_BYTES));
  const detail = async (pair: Pair) => `resets: host ${JSON.stringify(resetCounts(await pair.host.stats()))}, client ${JSON.stringify(resetCounts(await pair.client.stats()))}`;

  for (const [name, hostWindow, clientWindow] of [
    ['host --window 4 MiB, client default (1 MiB)', 4 * MiB, undefined],
    ['client --window 4 MiB, host default (1 MiB)', undefined, 4 * MiB],
  ] as const) {
    describe(name, () => {
      let pair: Pair;
      before(async () => {
        pair = await startPair({
          workers: 2,
          services: { source: await startSourceService({ bytes: BULK_BYTES, seed: BULK_SEED }), lazy: await startEchoService({ stallMs: STALL_MS }) },
          host: { config: hostWindow ? { windowBytes: hostWindow } : {} },
          client: { config: clientWindow ? { windowBytes: clientWindow } : {} },
        });
      }, { timeout: 30_000 });
      after(() => pair?.close(), { timeout: 30_000 });

      test('host -> client: a reader that pauses for 1.5 s still gets every byte', { timeout: 30_000 }, async () => {
        const r = await within(readAll(connect(pair.port.source), { pauseMs: STALL_MS }), 25_000, 'lazy reader');
        const why = await detail(pair);
        assert.deepEqual({ how: r.how, bytes: r.bytes, sha: r.hash === want }, { how: 'end', bytes: BULK_BYTES, sha: true }, why);
      });

      test('client -> host: a service that pauses for 1.5 s still gets every byte', { timeout: 30_000 }, async () => {
        const r = await within(echoRoundTrip(pair.port.lazy, BULK_BYTES, 4343).catch((e: Error) => e), 25_000, 'round trip via a lazy echo');
        const why = await detail(pair);
        assert.ok(!(r instanceof Error), `${r instanceof Error ? r.message : ''}; ${why}`);
        assert.equal(r.received, BULK_BYTES, why);
        assert.equal(r.receivedHash, r.sentHash, why);
      });
    });
  }
});
