// End to end, one stream's life beyond the happy path: a service that closes first, aborts in either
// direction, dials that are refused or name no service, chatty small writes, and many short-lived
// connections. Flow control has its own file (flow.test.ts). Real sockets and PeerConnections on
// 127.0.0.1; workers: 0 and workers: 2.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { releaseAtEnd, startPair, type Pair } from '../support/pair.js';
import { nothingListens, startEchoService, startSourceService, type SourceService } from '../support/services.js';
import { MiB, byteSource, connect, connected, echoRoundTrip, openFlow, sha256, whenEnded } from '../support/traffic.js';
import { liveStreams, resetCounts } from '../support/stats.js';
import { eventually, within } from '../support/timing.js';
import { prng } from '../support/prng.js';

/** "promptly": a reset or a refusal travelling through the tunnel arrives within this (ms) */
const PROMPT_MS = 3000;
/** The server-first service writes this many seeded bytes and ends at once. */
const SERVER_FIRST_BYTES = 2 * MiB;
const SERVER_FIRST_SEED = 77;

releaseAtEnd();

for (const workers of [0, 2]) {
  describe(`streams (workers: ${workers})`, { timeout: 150_000 }, () => {
    let pair: Pair;
    let first: SourceService;
    let source: SourceService;
    const released = async () => (await liveStreams(pair.host)) === 0 && (await liveStreams(pair.client)) === 0;

    before(async () => {
      first = await startSourceService({ bytes: SERVER_FIRST_BYTES, seed: SERVER_FIRST_SEED });
      // writes until the peer goes (bounded), and says how each connection ended
      source = await startSourceService({ bytes: 512 * MiB, seed: 5, end: false });
      pair = await startPair({
        workers,
        services: { echo: await startEchoService(), first, source, rst: await startEchoService(), dead: await nothingListens() },
        forwards: ['echo', 'first', 'source', 'rst', 'dead', 'no-such-service'],
      });
    }, { timeout: 30_000 });
    after(() => pair?.close(), { timeout: 30_000 });

    test('the service closes first: the client gets every byte and its end, and can still send', { timeout: 30_000 }, async () => {
      const want = sha256(byteSource(SERVER_FIRST_SEED)(SERVER_FIRST_BYTES));
      const before = first.reads.length;
      const s = connect(pair.port.first);
      const got = createHash('sha256');
      let received = 0;
      s.on('data', (c: Buffer) => { received += c.byteLength; got.update(c); });
      await within(new Promise<void>((resolve, reject) => { s.once('end', resolve); s.once('error', reject); }), 15_000, 'the service\'s end');
      assert.equal(received, SERVER_FIRST_BYTES);
      assert.equal(got.digest('hex'), want);
      // our direction is still open: 3 MiB more, then our FIN
      const payload = byteSource(78)(3 * MiB);
      s.end(payload);
      const reached = await eventually(() => first.reads.length > before, 15_000);
      assert.ok(reached, 'the service saw our end');
      assert.deepEqual(first.reads[before], { bytes: payload.byteLength, hash: sha256(payload) });
      await within(new Promise<void>((resolve) => { if (s.destroyed) resolve(); else s.once('close', () => resolve()); }), 5000, 'the client socket closing');
    });

    test('the application aborts mid-transfer: the service\'s connection is closed promptly', { timeout: 30_000 }, async () => {
      const before = source.ends.length;
      const s = connect(pair.port.source);
      let received = 0;
      s.on('data', (c: Buffer) => { received += c.byteLength; });
      s.on('error', () => {});
      assert.ok(await eventually(() => received >= 2 * MiB, 10_000), 'data is flowing');
      const t0 = Date.now();
      s.resetAndDestroy();
      const closed = await eventually(() => source.ends.length > before, PROMPT_MS + 2000, 20);
      assert.ok(closed, `the service's socket still open ${Date.now() - t0} ms after the application reset`);
      console.log(`# workers=${workers}: service saw the abort as ${source.ends[before]?.how} after ${Date.now() - t0} ms`);
      assert.ok(await eventually(released, 3000), 'streams released');
    });

    test('the service aborts mid-transfer: the application sees a reset promptly', { timeout: 30_000 }, async () => {
      const rst = pair.services.rst;
      assert.ok(rst);
      const flow = openFlow(pair.port.rst, 99);
      const ended = whenEnded(flow.socket);
      assert.ok(await eventually(() => flow.received() >= 1 * MiB && rst.sockets().length === 1, 10_000), 'data is flowing');
      const t0 = Date.now();
      rst.sockets()[0]?.resetAndDestroy(); // the service's socket goes with an RST under an open stream
      const e = await within(ended, PROMPT_MS + 2000, 'the application after the service reset');
      const ms = Date.now() - t0;
      assert.ok(ms < PROMPT_MS, `application saw ${e.how} ${e.code ?? ''} after ${ms} ms`);
      assert.equal(e.how, 'error', `a service reset reaches the application as a reset, got ${e.how}`);
      flow.socket.destroy();
    });

    test('chatty traffic: 20,000 small writes and 300 ping-pongs on one stream stay byte-exact', { timeout: 40_000 }, async () => {
      const rand = prng(31 + workers);
      const s = await connected(pair.port.echo);
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
        const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => echoRoundTrip(pair.port.echo, Math.floor(rand() * 20_000), wave * 100 + i)));
        for (const r of results) if (r.status === 'rejected' || r.value.receivedHash !== r.value.sentHash || r.value.received !== r.value.sent) failures++;
      }
      console.log(`# workers=${workers}: 2000 short connections in ${((Date.now() - started) / 1000).toFixed(2)} s`);
      assert.equal(failures, 0, 'failed connections');
      assert.ok(await eventually(released, 5000), `streams still held: host ${await liveStreams(pair.host)}, client ${await liveStreams(pair.client)}`);
    });

    /** A refused stream closes promptly, and a good stream running alongside finishes byte-exact. */
    async function refusedAlongsideGood(port: number, what: string): Promise<void> {
      const good = echoRoundTrip(pair.port.echo, 16 * MiB, 42);
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
      const again = await echoRoundTrip(pair.port.echo, 256 * 1024, 43);
      assert.equal(again.receivedHash, again.sentHash, 'a stream after the refusal: SHA-256');
    }

    test('dial refused: the connection is reset promptly, a good stream alongside is unaffected', { timeout: 30_000 }, async () => {
      await refusedAlongsideGood(pair.port.dead, 'dial refused');
      const resets = resetCounts(await pair.host.stats());
      assert.ok((resets.DIAL_FAILED ?? 0) >= 1, `host counted DIAL_FAILED resets: ${JSON.stringify(resets)}`);
    });

    test('unknown service: the connection is closed promptly, others keep working', { timeout: 30_000 }, async () => {
      assert.ok(!pair.client.services.includes('no-such-service'), 'the host does not expose it');
      await refusedAlongsideGood(pair.port['no-such-service'], 'unknown service');
      const resets = resetCounts(await pair.host.stats());
      assert.ok((resets.UNKNOWN_SERVICE ?? 0) >= 1, `host counted UNKNOWN_SERVICE resets: ${JSON.stringify(resets)}`);
    });

    test('several refused streams at once do not disturb concurrent good ones', { timeout: 30_000 }, async () => {
      const goods = Array.from({ length: 8 }, (_, i) => echoRoundTrip(pair.port.echo, 2 * MiB, 500 + i));
      const bads = Array.from({ length: 20 }, (_, i) => whenEnded(connect(i % 2 ? pair.port.dead : pair.port['no-such-service'])));
      const ends = await within(Promise.all(bads), PROMPT_MS + 2000, 'refused streams');
      const slow = ends.filter((e) => e.ms >= PROMPT_MS);
      assert.deepEqual(slow, [], 'every refused stream closes promptly');
      for (const r of await Promise.all(goods)) assert.equal(r.receivedHash, r.sentHash, 'good stream SHA-256');
    });
  });
}
