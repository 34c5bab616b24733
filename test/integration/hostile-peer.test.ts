// A hostile peer: it passes signaling (it knows the PIN) and then sends garbage on the real
// DataChannel — random bytes, truncated and oversized packets, DATA for streams that never open,
// repeated and out-of-window sequence numbers, more than its window, a flood of CONNECTs. The host
// must stay up, count and reset what it rejects, and a well-behaved stream beside it must complete.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Session } from '../../src/signaling/client-handshake.js';
import { encodePacket, writeHeader, PacketType, HEADER_BYTES } from '../../src/shared/packet.js';
import { releaseAtEnd, startPair, startRawSession, type Pair } from '../support/pair.js';
import { echoExact } from '../support/traffic.js';
import { liveStreams, resetCounts } from '../support/stats.js';
import { sleep } from '../support/timing.js';
import { prng } from '../support/prng.js';

const WINDOW_BYTES = 256 * 1024;
const MAX_STREAMS = 64;

const connectPacket = (sid: number, seq = 0, name = 'echo') => encodePacket(PacketType.CONNECT, sid, seq, Buffer.from(name));
const dataPacket = (sid: number, seq: number, bytes: number) => encodePacket(PacketType.DATA, sid, seq, Buffer.alloc(bytes, 0x61));

releaseAtEnd();

describe('a hostile peer', { timeout: 120_000 }, () => {
  let pair: Pair; // its client is the well-behaved one
  let evil: Session;
  const random = prng(1234);

  before(async () => {
    pair = await startPair({
      // resume off: a peer that vanishes has its streams closed at once, not held for its return
      host: { workers: 2, config: { windowBytes: WINDOW_BYTES, maxStreamsPerPeer: MAX_STREAMS, pendingMs: 300, resumeTimeoutMs: 0 } },
      client: { config: { windowBytes: WINDOW_BYTES } },
    });
    evil = await startRawSession(pair.host.url, { windowBytes: WINDOW_BYTES });
    evil.channels.small.onMessage(() => {}); // RESETs and PINGs come back; ignore them
    for (const lane of evil.channels.bulk) lane.onMessage(() => {});
  }, { timeout: 30_000 });

  after(async () => {
    evil?.end('test over');
    await pair?.close();
  }, { timeout: 30_000 });

  it('survives garbage, resets only the offending streams, and a good stream completes byte-exact', { timeout: 60_000 }, async () => {
    const goodTransfer = echoExact(pair.port.echo, randomBytes(16 * 1024 * 1024), 40_000);
    const send = (m: Uint8Array) => evil.channels.small.sendMessageBinary(m);

    // random bytes of every length
    for (let i = 0; i < 300; i++) send(randomBytes(1 + Math.floor(random() * 200)));
    // truncated: a header cut short, a payload shorter than its length field
    send(connectPacket(0x100).subarray(0, 10));
    const short = new Uint8Array(new ArrayBuffer(HEADER_BYTES + 4));
    writeHeader(short, 0, PacketType.DATA, 0x101, 1, 1000);
    send(short);
    // oversized: a DATA longer than any packet may be, a CONNECT with a 1 KiB name
    send(dataPacket(0x102, 1, 100 * 1024));
    send(encodePacket(PacketType.CONNECT, 0x103, 0, Buffer.alloc(1024, 0x62)));
    // DATA for streams that never open (held, then reset when no CONNECT comes)
    for (let sid = 0x200; sid < 0x210; sid++) send(dataPacket(sid, 3, 100));
    // a repeated sequence number
    send(connectPacket(0x300));
    send(dataPacket(0x300, 1, 10));
    send(dataPacket(0x300, 1, 10));
    // a sequence number far out of the window
    send(connectPacket(0x301));
    send(dataPacket(0x301, 1_000_000, 10));
    // more than the window, to a stream whose CONNECT has not come (so no credit can have returned)
    for (let seq = 1; seq <= 8; seq++) send(dataPacket(0x302, seq, 60 * 1024));
    // an unknown service, and a CONNECT that is not seq 0
    send(connectPacket(0x303, 0, 'nope'));
    send(connectPacket(0x304, 5));
    // a flood of CONNECTs past the per-peer stream limit
    for (let sid = 0x1000; sid < 0x1000 + 4 * MAX_STREAMS; sid++) send(connectPacket(sid));
    // late control packets for streams that never existed: dropped quietly
    for (let sid = 0x2000; sid < 0x2010; sid++) send(encodePacket(PacketType.WINDOW, sid, 1000));

    await goodTransfer; // byte-exact, or it throws
    await sleep(1000); // pending streams time out after 300 ms

    const stats = await pair.host.stats();
    const resets = resetCounts(stats);
    for (const code of ['PACKET_TRUNCATED', 'PACKET_OVERSIZED', 'CONNECT_TIMEOUT', 'SEQ_DUPLICATE', 'SEQ_OUT_OF_WINDOW', 'FLOW_VIOLATION', 'UNKNOWN_SERVICE']) {
      assert.ok((resets[code] ?? 0) > 0, `expected a ${code} reset, got ${JSON.stringify(resets)}`);
    }
    assert.ok(stats.dispatcher.refused > 0, 'the CONNECT flood was refused past the limit');
    assert.ok(stats.dispatcher.dropped > 0, 'late and unroutable packets were dropped');

    // still up: the good client moves bytes on a new stream
    await echoExact(pair.port.echo, randomBytes(1024 * 1024));
  });

  it('a peer that vanishes mid-stream has its streams closed and its routes released', { timeout: 30_000 }, async () => {
    const before = await liveStreams(pair.host);
    evil.channels.small.sendMessageBinary(connectPacket(0x4000));
    evil.channels.small.sendMessageBinary(dataPacket(0x4000, 1, 1000));
    await sleep(200);
    evil.end('vanish');
    await sleep(500);
    const after = await liveStreams(pair.host);
    assert.ok(after <= before, `streams of the vanished peer were closed (${before} -> ${after})`);
  });
});

