// One peer's DataChannel link (src/dataplane/peer-link.ts) over a fake channel: the high-water queues
// (the bulk channel's lower) and their drain, every message handed over exactly once, keepalive and its timeout, ping answers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPeerLink, type LinkCounters } from '../../src/dataplane/peer-link.js';
import type { Outgoing } from '../../src/dataplane/coalesce.js';
import { defaultConfig, type DataPlaneConfig } from '../../src/shared/limits.js';
import { encodePacket, decodePackets, PacketFlag, PacketType } from '../../src/shared/packet.js';
import { fakeChannels } from '../support/fake-channel.js';

const T = { timeout: 5_000 };
const config: DataPlaneConfig = { ...defaultConfig, keepaliveMs: 20, peerTimeoutMs: 100 };

function link(overrides: Partial<DataPlaneConfig> = {}, lanes = 0) {
  const fakes = fakeChannels(lanes);
  const fake = fakes.small;
  const handed: Outgoing[] = [];
  const dead: string[] = [];
  const messages: Buffer[] = [];
  let drained = 0;
  const counters: LinkCounters = { messagesOut: 0, bytesOut: 0, peakQueuedBytes: 0, dropped: 0, copiesOut: 0 };
  const l = createPeerLink(fakes.channels, { ...config, ...overrides }, counters, {
    message: (m) => messages.push(m),
    handedOver: (item) => handed.push(item),
    drained: () => { drained++; },
    dead: (reason) => dead.push(reason),
    rtt: () => {},
  });
  return { l, fake, bulk: fakes.bulk[0] ?? fake, lanes: fakes.bulk, handed, dead, messages, counters, drained: () => drained };
}

const item = (n: number): Outgoing => ({ message: encodePacket(PacketType.DATA, n, 0, new Uint8Array(100)), shard: 0 });

test('under the high-water mark a message leaves at once; above it, it queues and leaves on the low event, in order', T, () => {
  const t = link();
  try {
    t.l.send(item(1));
    assert.equal(t.fake.sent.length, 1);
    t.fake.setBuffered(config.channelHighWaterBytes);
    t.l.send(item(2));
    t.l.send(item(3));
    assert.equal(t.fake.sent.length, 1);
    assert.equal(t.l.queuedBytes(), 2 * 116);
    assert.deepEqual(t.handed.map((i) => decodePackets(i.message)[0]?.streamId), [1], 'queued ones are not handed over yet');
    t.fake.setBuffered(0);
    t.fake.low();
    assert.deepEqual(t.fake.sent.map((m) => decodePackets(m)[0]?.streamId), [1, 2, 3]);
    assert.deepEqual(t.handed.map((i) => decodePackets(i.message)[0]?.streamId), [1, 2, 3]);
    assert.equal(t.drained(), 1);
    assert.equal(t.counters.peakQueuedBytes, 2 * 116);
  } finally {
    t.l.close();
  }
});

test('close hands over what was still queued, once; a send that throws declares the peer dead', T, () => {
  const t = link();
  t.fake.setBuffered(config.channelHighWaterBytes);
  t.l.send(item(1));
  t.l.close();
  t.l.close();
  assert.equal(t.handed.length, 1);
  const u = link();
  try {
    u.fake.fail();
    u.l.send(item(2));
    assert.equal(u.dead.length, 1);
    assert.match(u.dead[0] ?? '', /send failed/);
    assert.equal(u.handed.length, 1, 'its allowance is returned all the same');
  } finally {
    u.l.close();
  }
});

test('keepalive: a ping every interval; a ping from the peer gets a pong; silence past the timeout is death', T, async () => {
  const t = link();
  try {
    await new Promise((r) => setTimeout(r, 3 * config.keepaliveMs));
    const pings = t.fake.pings.flatMap((m) => decodePackets(m)).filter((p) => p.type === PacketType.PING && p.seq === 0);
    assert.ok(pings.length >= 2, 'a ping at once, then one per interval');
    t.fake.pings.length = 0;
    const stamp = new Uint8Array(8);
    new DataView(stamp.buffer).setFloat64(0, performance.now() - 40);
    const theirPing = encodePacket(PacketType.PING, 0, 0, stamp);
    t.fake.deliver(Buffer.from(theirPing));
    t.l.ping(theirPing, 0);
    const [pong] = t.fake.pings.flatMap((m) => decodePackets(m));
    assert.deepEqual([pong?.type, pong?.seq], [PacketType.PING, 1]);
    assert.deepEqual(pong?.payload, stamp, 'the pong echoes the ping\'s timestamp');
    assert.equal(t.l.rttMs(), null, 'answering a ping is not a sample');
    t.l.ping(encodePacket(PacketType.PING, 0, 1, stamp), 1); // a pong to a ping of ours sent 40 ms ago
    assert.equal(t.fake.pings.length, 1, 'a pong is not answered');
    assert.ok((t.l.rttMs() ?? 0) >= 40 && (t.l.rttMs() ?? 0) < 1000, `rtt ${t.l.rttMs()}`);
    assert.equal(t.messages.length, 1);
    await new Promise((r) => setTimeout(r, config.peerTimeoutMs + 3 * config.keepaliveMs));
    assert.ok(t.dead.some((r) => /no answer/.test(r)));
  } finally {
    t.l.close();
  }
});

test('text messages are dropped and counted, not passed on', T, () => {
  const t = link();
  try {
    t.fake.deliver('hello');
    assert.equal(t.messages.length, 0);
    assert.equal(t.counters.dropped, 1);
  } finally {
    t.l.close();
  }
});

test('two channels: full-size DATA goes on the bulk one; a small message does not wait behind queued bulk', T, () => {
  const t = link({}, 1);
  try {
    t.bulk.setBuffered(config.channelHighWaterBytes);
    t.l.send(item(1), 1);
    t.l.send(item(2), 2);
    t.l.send(item(3));
    assert.equal(t.bulk.sent.length, 0, 'bulk waits for its channel');
    assert.deepEqual(t.fake.sent.map((m) => decodePackets(m)[0]?.streamId), [3], 'the small message left at once');
    t.bulk.setBuffered(0);
    t.bulk.low();
    assert.deepEqual(t.bulk.sent.map((m) => decodePackets(m)[0]?.streamId), [1, 2]);
    t.bulk.deliver(Buffer.from(encodePacket(PacketType.DATA, 9, 0, new Uint8Array(1))));
    assert.equal(t.messages.length, 1, 'messages from either channel are read');
  } finally {
    t.l.close();
  }
});

test('the bulk channel keeps libdatachannel\'s shared FIFO short (its own lower mark, low event at 0); the small one may fill it up to its mark', T, () => {
  const t = link({}, 1);
  try {
    assert.equal(t.bulk.lowThreshold(), 0);
    assert.equal(t.fake.lowThreshold(), config.channelLowWaterBytes);
    t.bulk.setBuffered(config.bulkHighWaterBytes);
    t.fake.setBuffered(config.bulkHighWaterBytes);
    t.l.send(item(1), 1);
    t.l.send(item(2));
    assert.equal(t.bulk.sent.length, 0, 'full-size DATA waits in the dispatcher past the bulk mark');
    assert.deepEqual(t.fake.sent.map((m) => decodePackets(m)[0]?.streamId), [2], 'a small message still goes, under its own mark');
    t.bulk.setBuffered(0);
    t.bulk.low();
    assert.deepEqual(t.bulk.sent.map((m) => decodePackets(m)[0]?.streamId), [1]);
  } finally {
    t.l.close();
  }
});

test('bulk lanes: a new stream takes the lane with the fewest streams and keeps it; a stalled lane holds only its own streams', T, () => {
  const t = link({}, 3);
  try {
    const on = () => t.lanes.map((lane) => lane.sent.map((m) => decodePackets(m)[0]?.streamId));
    for (const id of [10, 11, 12, 13]) t.l.send(item(id), id);
    t.l.send(item(11), 11);
    assert.deepEqual(on(), [[10, 13], [11, 11], [12]]);
    assert.deepEqual(t.l.lanes(), [2, 1, 1]);
    t.l.forget([11, 99]);
    assert.deepEqual(t.l.lanes(), [2, 0, 1], 'an ended stream frees its lane; an unknown id is ignored');
    t.l.send(item(14), 14);
    assert.deepEqual(on()[1], [11, 11, 14]);
    t.lanes[0]?.setBuffered(config.bulkHighWaterBytes); // lane 0 stalls (its association in loss recovery)
    t.l.send(item(10), 10);
    t.l.send(item(12), 12);
    assert.deepEqual(on(), [[10, 13], [11, 11, 14], [12, 12]], 'stream 12 goes on while stream 10 waits for its lane');
    t.lanes[0]?.setBuffered(0);
    t.lanes[0]?.low();
    assert.deepEqual(on()[0], [10, 13, 10]);
    t.lanes[2]?.deliver(Buffer.from(encodePacket(PacketType.DATA, 9, 0, new Uint8Array(1))));
    assert.equal(t.messages.length, 1, 'messages from any lane are read');
  } finally {
    t.l.close();
  }
});

test('copy: small DATA again over an idle lane, only on a path of 5 ms or more, within its budget', T, async () => {
  const t = link({ keepaliveMs: 60_000 }, 3);
  try {
    const message = encodePacket(PacketType.DATA, 9, 0, new Uint8Array(1000), undefined, PacketFlag.TWICE);
    assert.equal(t.l.copy(message), false, 'no round-trip sample yet: as on loopback, no copy');
    const stamp = new Uint8Array(8);
    new DataView(stamp.buffer).setFloat64(0, performance.now() - 40);
    t.l.ping(encodePacket(PacketType.PING, 0, 1, stamp), 1); // a 40 ms path
    // lane 0 carries a stream, lane 1 has bytes buffered: the copy goes on lane 2
    t.l.send({ message: encodePacket(PacketType.DATA, 1, 0, new Uint8Array(64 * 1024)), shard: 0 }, 1);
    t.lanes[1]?.setBuffered(1);
    assert.equal(t.l.copy(message), true);
    assert.deepEqual(t.lanes.map((l) => l.sent.length), [1, 0, 1]);
    assert.equal(t.fake.sent.length, 0, 'the original is the dispatcher\'s to send');
    assert.equal(t.counters.copiesOut, 1);
    // every lane busy: none
    t.lanes[2]?.setBuffered(1);
    assert.equal(t.l.copy(message), false);
    t.lanes[2]?.setBuffered(0);
    // the budget: a burst of 64 KiB, then 256 KiB/s
    let copied = 1;
    while (t.l.copy(message)) copied++;
    assert.ok(copied >= 60 && copied <= 70, `${copied} copies of 1016 bytes in a burst`);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(t.l.copy(message), true, 'the bucket refills');
  } finally {
    t.l.close();
  }
});

test('copy: never over the small channel itself (one association, nothing to gain)', T, () => {
  const t = link({ keepaliveMs: 60_000 }, 0);
  try {
    const stamp = new Uint8Array(8);
    new DataView(stamp.buffer).setFloat64(0, performance.now() - 40);
    t.l.ping(encodePacket(PacketType.PING, 0, 1, stamp), 1);
    assert.equal(t.l.copy(encodePacket(PacketType.DATA, 9, 0, new Uint8Array(10), undefined, PacketFlag.TWICE)), false);
    assert.equal(t.fake.sent.length, 0);
  } finally {
    t.l.close();
  }
});
