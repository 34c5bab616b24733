// A shard (workers/shard.ts) over an in-memory ShardLink, with the test playing the main thread: it
// routes packets in, reads what the shard posts, returns hop allowance. Services and listeners are
// real loopback sockets (no DataChannel, no worker thread).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { runShard } from '../../workers/shard.js';
import { defaultConfig, windowOffer, type DataPlaneConfig } from '../../src/shared/limits.js';
import { PacketFlag, PacketType, decodePackets, encodePacket, joinPackets, payloadText, writeHeader, HEADER_BYTES, type Packet } from '../../src/shared/packet.js';
import { shardOfStreamId } from '../../src/shared/stream-id.js';
import type { FromShard, ShardInit, ShardLink, ShardStats, ToShard } from '../../src/shared/thread-messages.js';
import { startEcho, freePort } from '../../src/cli/loopback.js';
import { eventually } from '../support/timing.js';

const T = { timeout: 15_000 };
const PEER = 3;
const config: DataPlaneConfig = { ...defaultConfig, windowBytes: 256 * 1024, initialWindowBytes: 256 * 1024 };

/** A shard and the main thread's end of its link. */
function shard(init: Partial<ShardInit> & Pick<ShardInit, 'role'>) {
  const posted: FromShard[] = [];
  let deliver: (msg: ToShard) => void = () => {};
  let closed = false;
  const link: ShardLink = {
    post: (msg) => { posted.push(msg); },
    onMessage: (handler) => { deliver = handler; },
    close: () => { closed = true; },
  };
  const done = runShard({ index: 1, shards: 2, services: {}, forwards: [], config, logLevel: 'error', ...init }, link);
  const send = (msg: ToShard) => deliver(msg);
  const packets = (peer = PEER): Packet[] => posted.flatMap((m) => (m.t === 'turn' ? m.pkts.filter((b) => b.peer === peer).flatMap((b) => b.bufs.flatMap((buf) => decodePackets(new Uint8Array(buf)))) : []));
  const released = (): number[] => posted.flatMap((m) => (m.t === 'turn' ? m.closed.flatMap((c) => c.ids) : []));
  const postedBytes = () => posted.reduce((n, m) => n + (m.t === 'turn' ? m.pkts.reduce((k, b) => k + b.bufs.reduce((j, buf) => j + buf.byteLength, 0), 0) : 0), 0);
  const turn = (...pkts: Uint8Array[]) => send({ t: 'turn', pkts: [{ peer: PEER, bufs: [joinPackets(pkts).buffer as ArrayBuffer] }], allowance: 0 });
  const stats = async (): Promise<ShardStats> => {
    send({ t: 'stats' });
    const reply = posted.findLast((m) => m.t === 'stats');
    assert.ok(reply?.t === 'stats');
    return reply.stats;
  };
  const stop = async () => { send({ t: 'shutdown' }); await done; assert.ok(closed, 'the shard closes its link'); };
  return { posted, send, packets, released, postedBytes, turn, stats, stop };
}

test('host: CONNECT + DATA + FIN in one message: the service gets the bytes, its answer and FIN come back, the id is released', T, async () => {
  const echo = await startEcho();
  const s = shard({ role: 'host', services: { echo: { host: '127.0.0.1', port: echo.port } } });
  try {
    s.send({ t: 'peer-up', peer: PEER, sendWindow: windowOffer(config) });
    s.turn(
      encodePacket(PacketType.CONNECT, 42, 0, Buffer.from('echo')),
      encodePacket(PacketType.DATA, 42, 1, Buffer.from('hello')),
      encodePacket(PacketType.FIN, 42, 2),
    );
    assert.ok(await eventually(() => s.released().includes(42), 5000), 'both directions closed');
    const back = s.packets().filter((p) => p.streamId === 42);
    assert.equal(back.filter((p) => p.type === PacketType.DATA).map((p) => payloadText(p.payload)).join(''), 'hello');
    assert.equal(back.at(-1)?.type, PacketType.FIN);
    const st = await s.stats();
    assert.deepEqual({ streams: st.streams, opened: st.opened, closed: st.closed }, { streams: 0, opened: 1, closed: 1 });
  } finally {
    await s.stop();
    echo.close();
  }
});

test('host: a bad packet resets its own stream; the good packets around it in the same message still count', T, async () => {
  const echo = await startEcho();
  const s = shard({ role: 'host', services: { echo: { host: '127.0.0.1', port: echo.port } } });
  try {
    s.send({ t: 'peer-up', peer: PEER, sendWindow: windowOffer(config) });
    const bad = new Uint8Array(HEADER_BYTES + 4);
    writeHeader(bad, 0, PacketType.DATA, 8, 1, 4);
    bad[1] = 0xff; // reserved bits set
    s.turn(encodePacket(PacketType.CONNECT, 7, 0, Buffer.from('echo')), encodePacket(PacketType.CONNECT, 8, 0, Buffer.from('echo')), bad, encodePacket(PacketType.DATA, 7, 1, Buffer.from('ok')), encodePacket(PacketType.FIN, 7, 2));
    assert.ok(await eventually(() => s.released().includes(7) && s.released().includes(8), 5000));
    const resets = s.packets().filter((p) => p.type === PacketType.RESET);
    assert.deepEqual(resets.map((p) => p.streamId), [8]);
    assert.match(payloadText(resets[0]?.payload ?? new Uint8Array(0)), /^BAD_PACKET: PACKET_BAD_FIELD/);
    assert.equal(s.packets().filter((p) => p.streamId === 7 && p.type === PacketType.DATA).map((p) => payloadText(p.payload)).join(''), 'ok');
  } finally {
    await s.stop();
    echo.close();
  }
});

test('host: packets of a peer that is not up open nothing; late packets are dropped and released', T, async () => {
  const s = shard({ role: 'host' });
  try {
    s.turn(encodePacket(PacketType.DATA, 9, 1, Buffer.from('x')), encodePacket(PacketType.WINDOW, 10, 1000));
    assert.equal((await s.stats()).lateDropped, 2);
    assert.ok(await eventually(() => s.released().includes(9) && s.released().includes(10), 1000));
  } finally {
    await s.stop();
  }
});

test('host: a DATA flagged TWICE for a stream it does not have opens nothing (a late copy); an unflagged one opens a pending stream', T, async () => {
  const s = shard({ role: 'host' });
  try {
    s.send({ t: 'peer-up', peer: PEER, sendWindow: windowOffer(config) });
    s.turn(encodePacket(PacketType.DATA, 11, 3, Buffer.from('late'), undefined, PacketFlag.TWICE));
    const after = await s.stats();
    assert.equal(after.lateDropped, 1);
    assert.equal(after.streams, 0);
    s.turn(encodePacket(PacketType.DATA, 12, 1, Buffer.from('early')));
    assert.equal((await s.stats()).streams, 1, 'DATA that overtook its CONNECT still waits for it');
  } finally {
    await s.stop();
  }
});

test('hop allowance: the shard stops posting once it is spent and goes on when it comes back', T, async () => {
  const source = net.createServer((socket) => {
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    const pump = () => { while (socket.write(chunk)); };
    socket.on('drain', pump);
    socket.on('error', () => {});
    pump();
  });
  await new Promise<void>((r) => source.listen(0, '127.0.0.1', r));
  const port = (source.address() as net.AddressInfo).port;
  const allowance = 256 * 1024;
  const s = shard({ role: 'host', services: { src: { host: '127.0.0.1', port } }, config: { ...config, hopAllowanceBytes: allowance, windowBytes: 16 * 1024 * 1024 } });
  try {
    s.send({ t: 'peer-up', peer: PEER, sendWindow: { initial: 16 * 1024 * 1024, max: 16 * 1024 * 1024 } });
    s.turn(encodePacket(PacketType.CONNECT, 5, 0, Buffer.from('src')));
    assert.ok(await eventually(() => s.postedBytes() >= allowance, 5000), 'it spends its allowance');
    await new Promise((r) => setTimeout(r, 200));
    const spent = s.postedBytes();
    assert.ok(spent < allowance + 2 * 65 * 1024, `it stops near the allowance (posted ${spent})`);
    s.send({ t: 'turn', pkts: [], allowance: spent });
    assert.ok(await eventually(() => s.postedBytes() >= 2 * allowance, 5000), 'it posts again once the allowance is back');
  } finally {
    await s.stop();
    await new Promise((r) => source.close(r));
  }
});

test('peer-down: that peer\'s streams end without a RESET to it, and their ids are released', T, async () => {
  const echo = await startEcho();
  const s = shard({ role: 'host', services: { echo: { host: '127.0.0.1', port: echo.port } } });
  try {
    s.send({ t: 'peer-up', peer: PEER, sendWindow: windowOffer(config) });
    s.turn(encodePacket(PacketType.CONNECT, 11, 0, Buffer.from('echo')));
    assert.equal((await s.stats()).streams, 1);
    s.send({ t: 'peer-down', peer: PEER, reason: 'test' });
    assert.equal((await s.stats()).streams, 0);
    assert.ok(await eventually(() => s.released().includes(11), 1000));
    assert.equal(s.packets().filter((p) => p.type === PacketType.RESET).length, 0);
    assert.equal((await s.stats()).resets.PEER_GONE, 1);
  } finally {
    await s.stop();
    echo.close();
  }
});

test('client: it listens on the forward, holds a connection until the host is up, then CONNECTs with its own shard index in the id', T, async () => {
  const port = await freePort();
  const s = shard({ role: 'client', forwards: [{ host: '127.0.0.1', port, service: 'web' }] });
  let app: net.Socket | undefined;
  try {
    assert.ok(await eventually(() => s.posted.some((m) => m.t === 'listening'), 2000));
    app = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((r) => app?.once('connect', () => r()));
    app.write('GET /');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(s.packets(0).length, 0, 'no host: the connection waits');
    s.send({ t: 'peer-up', peer: 0, sendWindow: windowOffer(config) });
    assert.ok(await eventually(() => s.packets(0).length >= 2, 2000));
    const [connect, data] = s.packets(0);
    assert.equal(connect?.type, PacketType.CONNECT);
    assert.equal(payloadText(connect?.payload ?? new Uint8Array(0)), 'web');
    assert.equal(shardOfStreamId(connect?.streamId ?? -1), 1);
    assert.equal(payloadText(data?.payload ?? new Uint8Array(0)), 'GET /');
  } finally {
    app?.destroy();
    await s.stop();
  }
});
