// A shard reconfigured while it runs (a reload): the host's services and the client's forwards
// change, and the streams already open never notice. Also the per-service counters the metrics read.
// The test plays the main thread over an in-memory ShardLink, with real loopback sockets.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { runShard } from '../../workers/shard.js';
import { defaultConfig, windowOffer } from '../../src/shared/limits.js';
import { PacketType, decodePackets, encodePacket, joinPackets, payloadText, type Packet } from '../../src/shared/packet.js';
import type { FromShard, ShardInit, ShardLink, ShardStats, ToShard } from '../../src/shared/thread-messages.js';
import { startEcho, freePort } from '../../src/cli/loopback.js';
import { eventually } from '../support/timing.js';

const T = { timeout: 15_000 };
const PEER = 4;
const config = { ...defaultConfig, windowBytes: 256 * 1024 };

function shard(init: Partial<ShardInit> & Pick<ShardInit, 'role'>) {
  const posted: FromShard[] = [];
  let deliver: (msg: ToShard) => void = () => {};
  const link: ShardLink = { post: (msg) => { posted.push(msg); }, onMessage: (h) => { deliver = h; }, close: () => {} };
  const done = runShard({ index: 0, shards: 1, services: {}, forwards: [], config, logLevel: 'error', ...init }, link);
  const packets = (peer: number): Packet[] => posted.flatMap((m) => (m.t === 'turn' ? m.pkts.filter((b) => b.peer === peer).flatMap((b) => b.bufs.flatMap((buf) => decodePackets(new Uint8Array(buf)))) : []));
  return {
    posted, packets,
    send: (msg: ToShard) => deliver(msg),
    turn: (peer: number, ...pkts: Uint8Array[]) => deliver({ t: 'turn', pkts: [{ peer, bufs: [joinPackets(pkts).buffer as ArrayBuffer] }], allowance: 0 }),
    stats: (): ShardStats => {
      deliver({ t: 'stats' });
      const reply = posted.findLast((m) => m.t === 'stats');
      assert.ok(reply?.t === 'stats');
      return reply.stats;
    },
    stop: async () => { deliver({ t: 'shutdown' }); await done; },
  };
}

const text = (ps: Packet[]) => ps.filter((p) => p.type === PacketType.DATA).map((p) => payloadText(p.payload)).join('');

test('host: a reload removes one service and adds another; the stream open on the removed one goes on', T, async () => {
  const echo = await startEcho();
  const s = shard({ role: 'host', services: { old: { host: '127.0.0.1', port: echo.port } } });
  try {
    s.send({ t: 'peer-up', peer: PEER, sendWindow: windowOffer(config) });
    s.turn(PEER, encodePacket(PacketType.CONNECT, 1, 0, Buffer.from('old')), encodePacket(PacketType.DATA, 1, 1, Buffer.from('before ')));
    assert.ok(await eventually(() => text(s.packets(PEER).filter((p) => p.streamId === 1)) === 'before ', 5000));
    s.send({ t: 'services', services: { new: { host: '127.0.0.1', port: echo.port } } });
    // the open stream on 'old' still carries bytes, both ways
    s.turn(PEER, encodePacket(PacketType.DATA, 1, 2, Buffer.from('after')), encodePacket(PacketType.FIN, 1, 3));
    assert.ok(await eventually(() => s.packets(PEER).some((p) => p.streamId === 1 && p.type === PacketType.FIN), 5000));
    assert.equal(text(s.packets(PEER).filter((p) => p.streamId === 1)), 'before after');
    // a new stream to 'old' is refused; one to 'new' is carried
    s.turn(PEER, encodePacket(PacketType.CONNECT, 2, 0, Buffer.from('old')), encodePacket(PacketType.CONNECT, 3, 0, Buffer.from('new')), encodePacket(PacketType.DATA, 3, 1, Buffer.from('hi')), encodePacket(PacketType.FIN, 3, 2));
    assert.ok(await eventually(() => s.packets(PEER).some((p) => p.streamId === 3 && p.type === PacketType.FIN), 5000));
    const reset = s.packets(PEER).find((p) => p.streamId === 2 && p.type === PacketType.RESET);
    assert.match(payloadText(reset?.payload ?? new Uint8Array(0)), /^UNKNOWN_SERVICE: service 'old' is not exposed/);
    assert.equal(text(s.packets(PEER).filter((p) => p.streamId === 3)), 'hi');
    const st = s.stats();
    assert.deepEqual(st.services.old, { open: 0, opened: 1, closed: 1, reset: {}, refused: {}, bytesIn: 12, bytesOut: 12 });
    assert.deepEqual(st.services.new, { open: 0, opened: 1, closed: 1, reset: {}, refused: {}, bytesIn: 2, bytesOut: 2 });
    assert.deepEqual(st.services[''], { open: 0, opened: 1, closed: 0, reset: { UNKNOWN_SERVICE: 1 }, refused: { UNKNOWN_SERVICE: 1 }, bytesIn: 0, bytesOut: 0 }, 'the refused name is not a label of its own');
  } finally {
    await s.stop();
    echo.close();
  }
});

test('host: DATA that overtook its CONNECT is counted for the service once CONNECT names it', T, async () => {
  const echo = await startEcho();
  const s = shard({ role: 'host', services: { web: { host: '127.0.0.1', port: echo.port } } });
  try {
    s.send({ t: 'peer-up', peer: PEER, sendWindow: windowOffer(config) });
    s.turn(PEER, encodePacket(PacketType.DATA, 5, 1, Buffer.from('12345')));
    s.turn(PEER, encodePacket(PacketType.CONNECT, 5, 0, Buffer.from('web')), encodePacket(PacketType.FIN, 5, 2));
    assert.ok(await eventually(() => s.packets(PEER).some((p) => p.streamId === 5 && p.type === PacketType.FIN), 5000));
    assert.equal(s.stats().services.web?.bytesIn, 5);
  } finally {
    await s.stop();
    echo.close();
  }
});

/** Connects to `port`; resolves once connected (or with the error, e.g. ECONNREFUSED). */
function dial(port: number): Promise<{ socket: net.Socket; error?: string }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => resolve({ socket }));
    socket.once('error', (err: NodeJS.ErrnoException) => resolve({ socket, error: err.code }));
  });
}

test('client: a reload stops one forward (its open connection goes on), starts another, and re-points a third', T, async () => {
  const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
  const s = shard({ role: 'client', forwards: [{ host: '127.0.0.1', port: p1, service: 'a' }, { host: '127.0.0.1', port: p3, service: 'c' }] });
  const sockets: net.Socket[] = [];
  try {
    s.send({ t: 'peer-up', peer: 0, sendWindow: windowOffer(config) });
    assert.ok(await eventually(() => s.posted.filter((m) => m.t === 'listening').length === 2, 2000));
    const open = await dial(p1);
    sockets.push(open.socket);
    open.socket.write('one');
    assert.ok(await eventually(() => text(s.packets(0)) === 'one', 2000));
    const streamId = s.packets(0)[0]?.streamId;

    s.send({ t: 'forwards', forwards: [{ host: '127.0.0.1', port: p2, service: 'b' }, { host: '127.0.0.1', port: p3, service: 'c2' }] });
    assert.ok(await eventually(() => s.posted.some((m) => m.t === 'listening' && m.forward.port === p2 && !m.error), 2000), 'listening on the new forward');
    assert.equal(s.posted.filter((m) => m.t === 'listening' && m.forward.port === p3).length, 1, 'the re-pointed forward was not listened on again');
    // the connection accepted on the removed forward still carries bytes
    open.socket.write(' two');
    assert.ok(await eventually(() => text(s.packets(0).filter((p) => p.streamId === streamId)) === 'one two', 2000));
    // new connections: refused on the removed forward, carried on the new one, re-pointed on the third
    const refused = await dial(p1);
    sockets.push(refused.socket);
    assert.equal(refused.error, 'ECONNREFUSED');
    for (const port of [p2, p3]) {
      const c = await dial(port);
      sockets.push(c.socket);
      c.socket.write('x');
    }
    assert.ok(await eventually(() => s.packets(0).filter((p) => p.type === PacketType.CONNECT).length === 3, 2000));
    assert.deepEqual(s.packets(0).filter((p) => p.type === PacketType.CONNECT).map((p) => payloadText(p.payload)), ['a', 'b', 'c2']);
    const st = s.stats();
    assert.equal(st.services.a?.open, 1);
    assert.equal(st.services.a?.bytesOut, 7);
    assert.equal(st.services.b?.opened, 1);
    assert.equal(st.services.c2?.opened, 1);
  } finally {
    for (const socket of sockets) socket.destroy();
    await s.stop();
  }
});
