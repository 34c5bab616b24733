// The dispatcher's bookkeeping with a fake DataChannel: what it sends, the credit it returns to a
// shard, and the full-size packet buffers it hands back for reuse (only once they are sent).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDispatcher, type Channel } from '../src/dispatcher.js';
import { defaultConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { encodePacket, decodePackets, FULL_PACKET_BYTES, MAX_PAYLOAD_BYTES, PacketType } from '../src/packet.js';
import type { ToShard } from '../src/messages.js';

const T = { timeout: 10_000 };
const log = createLogger('test', 'error');

function fakeChannel() {
  const sent: Uint8Array[] = [];
  let buffered = 0;
  let onLow: () => void = () => {};
  const channel = {
    sendMessageBinary: (m: Uint8Array) => { sent.push(new Uint8Array(m)); return true; }, // copies, as node-datachannel does
    bufferedAmount: () => buffered,
    setBufferedAmountLowThreshold: () => {},
    onBufferedAmountLow: (cb: () => void) => { onLow = cb; },
    onMessage: () => {},
    isOpen: () => true,
  } as unknown as Channel;
  return { channel, sent, setBuffered: (n: number) => { buffered = n; }, low: () => onLow() };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

test('a sent full-size packet buffer goes back to its shard with the credit; a queued one only once sent', T, async () => {
  const fake = fakeChannel();
  const received: ToShard[] = [];
  const dispatcher = createDispatcher({ role: 'client', config: defaultConfig, shards: [(msg) => { received.push(msg); }], log, onPeerDead: () => {} });
  try {
    dispatcher.addPeer(0, fake.channel, defaultConfig.windowBytes);
    const sid = 0x00_000001;
    const full = encodePacket(PacketType.DATA, sid, 1, new Uint8Array(MAX_PAYLOAD_BYTES).fill(7));
    const small = encodePacket(PacketType.DATA, sid, 2, new Uint8Array(100));
    dispatcher.fromShard(0, { t: 'pkts', peer: 0, bufs: [full.buffer as ArrayBuffer, small.buffer as ArrayBuffer], sids: [sid, sid] });
    await turn();
    assert.deepEqual(fake.sent.map((m) => m.byteLength), [FULL_PACKET_BYTES, small.byteLength]);
    assert.deepEqual(decodePackets(fake.sent[0] ?? new Uint8Array()).map((p) => p.seq), [1]);
    const credit = received.filter((m) => m.t === 'credit');
    assert.equal(credit.length, 1);
    assert.equal(credit[0]?.t === 'credit' && credit[0].bytes, FULL_PACKET_BYTES + small.byteLength);
    assert.equal(credit[0]?.t === 'credit' && credit[0].spare?.[0], full.buffer, 'the full-size buffer itself comes back');
    assert.equal(credit[0]?.t === 'credit' && credit[0].spare?.length, 1);

    // over the high-water mark the packet waits; its buffer comes back only after it is sent
    received.length = 0;
    fake.setBuffered(defaultConfig.channelHighWaterBytes);
    const queued = encodePacket(PacketType.DATA, sid, 3, new Uint8Array(MAX_PAYLOAD_BYTES));
    dispatcher.fromShard(0, { t: 'pkts', peer: 0, bufs: [queued.buffer as ArrayBuffer], sids: [sid] });
    await turn();
    assert.equal(received.filter((m) => m.t === 'credit').length, 0);
    assert.equal(dispatcher.queuedBytes(), FULL_PACKET_BYTES);
    fake.setBuffered(0);
    fake.low();
    await turn();
    const later = received.find((m) => m.t === 'credit');
    assert.ok(later && later.t === 'credit');
    assert.equal(later.bytes, FULL_PACKET_BYTES);
    assert.equal(later.spare?.[0], queued.buffer);
    assert.equal(dispatcher.queuedBytes(), 0);
  } finally {
    dispatcher.close();
  }
});
