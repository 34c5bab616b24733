// The dispatcher's bookkeeping with a fake DataChannel: what it sends, the hop allowance it returns to
// a shard, and the full-size packet buffers it hands back for reuse (only once they are sent).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDispatcher } from '../../src/dataplane/dispatcher.js';
import { defaultConfig, windowOffer } from '../../src/shared/limits.js';
import { createLogger } from '../../src/shared/log.js';
import { encodePacket, decodePackets, payloadText, FULL_PACKET_BYTES, MAX_PAYLOAD_BYTES, PacketType } from '../../src/shared/packet.js';
import type { ToShard } from '../../src/shared/thread-messages.js';
import { fakeChannel } from '../support/fake-channel.js';

const T = { timeout: 10_000 };
const log = createLogger('test', 'error');

const turn = () => new Promise((resolve) => setImmediate(resolve));

test('sent full-size packet buffers go back to their shard with its credit, queued ones once sent', T, async () => {
  const fake = fakeChannel();
  const received: ToShard[] = [];
  const credits = () => received.filter((m) => m.t === 'turn' && m.allowance > 0);
  const dispatcher = createDispatcher({ role: 'client', config: defaultConfig, shards: [(msg) => { received.push(msg); }], log, onPeerDead: () => {} });
  const sid = 0x00_000001;
  const full = (seq: number) => encodePacket(PacketType.DATA, sid, seq, new Uint8Array(MAX_PAYLOAD_BYTES).fill(seq)).buffer as ArrayBuffer;
  const send = (bufs: ArrayBuffer[]) => dispatcher.fromShard(0, { t: 'turn', pkts: [{ peer: 0, bufs, ids: bufs.map(() => sid) }], closed: [] });
  // an eighth of the shard's budget: below it, credit waits to ride with the next packets
  const packetsPerCredit = Math.ceil(defaultConfig.hopAllowanceBytes / 8 / FULL_PACKET_BYTES);
  try {
    dispatcher.addPeer(0, { small: fake.channel, bulk: [fake.channel] }, windowOffer(defaultConfig));
    const small = encodePacket(PacketType.DATA, sid, 0, new Uint8Array(100));
    send([small.buffer as ArrayBuffer]);
    await turn();
    assert.deepEqual(fake.sent.map((m) => m.byteLength), [small.byteLength]);
    assert.equal(credits().length, 0, 'a little credit is not worth a message of its own');

    const bufs = Array.from({ length: packetsPerCredit }, (_, i) => full(i + 1));
    send(bufs);
    await turn();
    assert.equal(fake.sent.length, 1 + packetsPerCredit);
    assert.deepEqual(decodePackets(fake.sent[1] ?? new Uint8Array()).map((p) => p.seq), [1]);
    let credit = credits();
    assert.equal(credit.length, 1);
    assert.equal(credit[0]?.t === 'turn' && credit[0].allowance, small.byteLength + packetsPerCredit * FULL_PACKET_BYTES);
    assert.deepEqual(credit[0]?.t === 'turn' && credit[0].spare, bufs, 'the sent buffers themselves come back');

    // over the high-water mark packets wait; their buffers come back only after they are sent
    received.length = 0;
    fake.setBuffered(defaultConfig.channelHighWaterBytes);
    const queued = Array.from({ length: packetsPerCredit }, (_, i) => full(100 + i));
    send(queued);
    await turn();
    assert.equal(credits().length, 0);
    assert.equal(dispatcher.queuedBytes(), packetsPerCredit * FULL_PACKET_BYTES);
    fake.setBuffered(0);
    fake.low();
    await turn();
    credit = credits();
    assert.equal(credit.length, 1);
    assert.equal(credit[0]?.t === 'turn' && credit[0].allowance, packetsPerCredit * FULL_PACKET_BYTES);
    assert.deepEqual(credit[0]?.t === 'turn' && credit[0].spare, queued);
    assert.equal(dispatcher.queuedBytes(), 0);
  } finally {
    dispatcher.close();
  }
});

test("every shard's small packets of a turn leave as one message; each shard gets its own bytes back", T, async () => {
  const fake = fakeChannel();
  const received: ToShard[][] = [[], []];
  const config = { ...defaultConfig, hopAllowanceBytes: 64 * 1024 }; // an eighth is 8 KiB: credit below it waits
  const dispatcher = createDispatcher({ role: 'client', config, shards: [0, 1].map((i) => (msg: ToShard) => { received[i]?.push(msg); }), log, onPeerDead: () => {} });
  try {
    dispatcher.addPeer(0, { small: fake.channel, bulk: [fake.channel] }, windowOffer(config));
    const packet = (sid: number, bytes: number) => encodePacket(PacketType.DATA, sid, 0, new Uint8Array(bytes)).buffer as ArrayBuffer;
    const a = [packet(0x00_000001, 1000), packet(0x00_000002, 10_000)];
    const b = [packet(0x01_000003, 7000)];
    dispatcher.fromShard(0, { t: 'turn', pkts: [{ peer: 0, bufs: a, ids: [0x00_000001, 0x00_000002] }], closed: [] });
    dispatcher.fromShard(1, { t: 'turn', pkts: [{ peer: 0, bufs: b, ids: [0x01_000003] }], closed: [] });
    assert.equal(fake.sent.length, 0, 'small packets wait for the end of the turn');
    await turn();
    // 1016 + 10016 + 7016 bytes: over 16 KiB, so two messages, not three
    assert.equal(fake.sent.length, 2);
    assert.deepEqual(fake.sent.flatMap((m) => decodePackets(m)).map((p) => p.streamId).sort((x, y) => x - y), [0x00_000001, 0x00_000002, 0x01_000003]);
    const credit = (i: number) => received[i]?.reduce((n, m) => n + (m.t === 'turn' ? m.allowance : 0), 0);
    assert.equal(credit(0), 1016 + 10_016);
    assert.equal(credit(1), 0, 'below an eighth of the budget, credit waits for the next packets');
    dispatcher.fromShard(1, { t: 'turn', pkts: [{ peer: 0, bufs: [packet(0x01_000003, 10_000)], ids: [0x01_000003] }], closed: [] });
    await turn();
    assert.equal(credit(1), 7016 + 10_016);
  } finally {
    dispatcher.close();
  }
});

test('small packets waiting for the end of the turn go out before a full-size one (CONNECT stays first)', T, async () => {
  const fake = fakeChannel();
  const dispatcher = createDispatcher({ role: 'client', config: defaultConfig, shards: [() => {}, () => {}], log, onPeerDead: () => {} });
  try {
    dispatcher.addPeer(0, { small: fake.channel, bulk: [fake.channel] }, windowOffer(defaultConfig));
    const sid = 0x00_000001;
    const connect = encodePacket(PacketType.CONNECT, sid, 0, Buffer.from('web')).buffer as ArrayBuffer;
    const data = encodePacket(PacketType.DATA, sid, 1, new Uint8Array(MAX_PAYLOAD_BYTES)).buffer as ArrayBuffer;
    dispatcher.fromShard(0, { t: 'turn', pkts: [{ peer: 0, bufs: [connect, data], ids: [sid, sid] }], closed: [] });
    await turn();
    assert.deepEqual(fake.sent.flatMap((m) => decodePackets(m)).map((p) => p.type), [PacketType.CONNECT, PacketType.DATA]);
  } finally {
    dispatcher.close();
  }
});

test('the dispatcher resets on the peer every stream of a lost shard, and only those', T, () => {
  const fake = fakeChannel();
  const dispatcher = createDispatcher({ role: 'client', config: defaultConfig, shards: [() => {}, () => {}], log, onPeerDead: () => {} });
  try {
    dispatcher.addPeer(0, { small: fake.channel, bulk: [fake.channel] }, windowOffer(defaultConfig));
    // client streams: the shard index in the top byte of the id
    for (const id of [0x00_000001, 0x00_000002, 0x01_000003]) {
      const buf = encodePacket(PacketType.CONNECT, id, 0, Buffer.from('web')).buffer as ArrayBuffer;
      dispatcher.fromShard(id >>> 24, { t: 'turn', pkts: [{ peer: 0, bufs: [buf], ids: [id] }], closed: [] });
    }
    fake.sent.length = 0;
    dispatcher.shardLost(0);
    const resets = fake.sent.flatMap((m) => decodePackets(m)).filter((p) => p.type === PacketType.RESET);
    assert.deepEqual(resets.map((p) => p.streamId).sort(), [0x00_000001, 0x00_000002]);
    assert.match(payloadText(resets[0]?.payload ?? new Uint8Array()), /WORKER_CRASHED/);
    assert.equal(dispatcher.routes(0), 1);
  } finally {
    dispatcher.close();
  }
});
