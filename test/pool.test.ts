// A worker thread that dies is replaced and its shard task started again (listeners included), and
// the dispatcher resets every stream that shard owned. Real threads, a fake DataChannel.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startPool } from '../src/pool.js';
import { createDispatcher, type Channel } from '../src/dispatcher.js';
import { defaultConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { encodePacket, decodePackets, PacketType, payloadText } from '../src/packet.js';
import { freePort } from '../src/testing.js';
import type { FromShard } from '../src/messages.js';

const T = { timeout: 30_000 };
const log = createLogger('test', 'error');

test('a crashed worker is restarted, listens again, and its streams are reset', T, async () => {
  const port = await freePort();
  const started: number[] = [];
  const lost: number[] = [];
  const messages: FromShard[] = [];
  const pool = startPool({
    workers: 2,
    init: { role: 'client', services: {}, forwards: [{ host: '127.0.0.1', port, service: 'web' }], config: defaultConfig, logLevel: 'error' },
    log,
    onMessage: (_index, msg) => messages.push(msg),
    onLost: (index) => lost.push(index),
    onStarted: (index) => started.push(index),
  });
  try {
    const listening = () => messages.filter((m) => m.t === 'listening' && !m.error).length;
    const until = async (what: () => boolean) => { for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 25)); assert.ok(what()); };
    await until(() => listening() === 2);

    const [thread] = pool.threads();
    assert.ok(thread);
    await thread.terminate();
    await until(() => lost.length === 1 && listening() === 3);
    assert.equal(started.filter((i) => i === lost[0]).length, 2, 'the lost shard was started again');

    // the port still accepts connections after the restart
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => { socket.destroy(); resolve(); });
      socket.on('error', reject);
    });
  } finally {
    await pool.close();
  }
});

test('the dispatcher resets on the peer every stream of a lost shard, and only those', T, () => {
  const sent: Uint8Array[] = [];
  const channel = {
    sendMessageBinary: (m: Uint8Array) => { sent.push(new Uint8Array(m)); return true; },
    bufferedAmount: () => 0,
    setBufferedAmountLowThreshold: () => {},
    onBufferedAmountLow: () => {},
    onMessage: () => {},
    isOpen: () => true,
  } as unknown as Channel;
  const dispatcher = createDispatcher({ role: 'client', config: defaultConfig, shards: [() => {}, () => {}], log, onPeerDead: () => {} });
  try {
    dispatcher.addPeer(0, channel, defaultConfig.windowBytes);
    // client streams: worker index in the top byte of the id
    const ids = [0x00_000001, 0x00_000002, 0x01_000003];
    for (const sid of ids) {
      const shard = sid >>> 24;
      const buf = encodePacket(PacketType.CONNECT, sid, 0, Buffer.from('web')).buffer as ArrayBuffer;
      dispatcher.fromShard(shard, { t: 'turn', pkts: [{ peer: 0, bufs: [buf], sids: [sid] }], closed: [] });
    }
    sent.length = 0;
    dispatcher.shardLost(0);
    const resets = sent.flatMap((m) => decodePackets(m)).filter((p) => p.type === PacketType.RESET);
    assert.deepEqual(resets.map((p) => p.sid).sort(), [0x00_000001, 0x00_000002]);
    assert.match(payloadText(resets[0]?.payload ?? new Uint8Array()), /WORKER_CRASHED/);
    assert.equal(dispatcher.routes(0), 1);
  } finally {
    dispatcher.close();
  }
});
