// One stream's handler (workers/handler.ts) against a fake environment and a fake socket: the FIN /
// RESET state machine, the window in both directions, reordering, and the hop allowance, each step
// driven by hand.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { runStream, type StreamEnv } from '../../workers/handler.js';
import { defaultConfig, type DataPlaneConfig } from '../../src/shared/limits.js';
import { PacketType, decodePackets, payloadText, type Packet } from '../../src/shared/packet.js';
import { FakeSocket } from '../support/fake-socket.js';

const T = { timeout: 10_000 };
const ID = 0x0100_0007;
const WINDOW = 256 * 1024;
const config: DataPlaneConfig = { ...defaultConfig, windowBytes: WINDOW, initialWindowBytes: WINDOW, pendingMs: 50, dialTimeoutMs: 50 };

const pkt = (type: Packet['type'], seq: number, payload: Uint8Array = new Uint8Array(0)): Packet => ({ type, streamId: ID, seq, payload });
const bytes = (n: number, fill = 0x61) => new Uint8Array(n).fill(fill);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function harness(overrides: Partial<StreamEnv> = {}) {
  const sent: Packet[] = [];
  const dialed: string[] = [];
  const waiters: (() => void)[] = [];
  const state = {
    mayPost: true,
    socket: null as FakeSocket | null,
    done: null as { reason: string | null; sentReset: boolean } | null,
  };
  const env: StreamEnv = {
    streamId: ID, config, sendWindow: { initial: WINDOW, max: WINDOW },
    rttMs: () => 50, grow: () => 0, release: () => {},
    send: (message) => { sent.push(...decodePackets(message)); },
    spare: () => undefined,
    mayPost: () => state.mayPost,
    onAllowance: (resume) => { waiters.push(resume); },
    dial: (name) => {
      dialed.push(name);
      if (name !== 'echo') return `service '${name}' is not exposed`;
      state.socket = new FakeSocket();
      state.socket.connecting = true;
      return state.socket as unknown as net.Socket;
    },
    done: (reason, sentReset) => { state.done = { reason, sentReset }; },
    count: () => {},
    ...overrides,
  };
  const of = (type: Packet['type']) => sent.filter((p) => p.type === type);
  /** The dialed socket, connected. */
  const connected = (): FakeSocket => {
    const s = state.socket;
    assert.ok(s, 'a socket was dialed');
    s.connecting = false;
    s.emit('connect');
    return s;
  };
  const done = () => state.done;
  return { env, sent, dialed, waiters, state, of, connected, done };
}

test('host: CONNECT dials the service; DATA out of order reaches the socket in order', T, () => {
  const h = harness();
  const stream = runStream(h.env, null, null);
  stream.packet(pkt(PacketType.DATA, 2, bytes(3, 0x32))); // overtook its predecessors: held
  stream.packet(pkt(PacketType.CONNECT, 0, Buffer.from('echo')));
  assert.deepEqual(h.dialed, ['echo']);
  const socket = h.connected();
  stream.packet(pkt(PacketType.DATA, 1, bytes(2, 0x31)));
  assert.equal(socket.bytes().toString(), '11222');
  assert.equal(socket.paused, false, 'reading starts once connected');
  assert.equal(h.done(), null);
});

test('host: an unknown service resets the stream with UNKNOWN_SERVICE and says so to the peer', T, () => {
  const h = harness();
  const stream = runStream(h.env, null, null);
  stream.packet(pkt(PacketType.CONNECT, 0, Buffer.from('nope')));
  const [reset] = h.of(PacketType.RESET);
  assert.ok(reset);
  assert.match(payloadText(reset.payload), /^UNKNOWN_SERVICE: service 'nope' is not exposed/);
  assert.deepEqual(h.done(), { reason: "UNKNOWN_SERVICE: service 'nope' is not exposed", sentReset: true });
});

test('host: no CONNECT within pendingMs resets the held stream', T, async () => {
  const h = harness();
  runStream(h.env, null, null).packet(pkt(PacketType.DATA, 1, bytes(10)));
  await sleep(config.pendingMs + 30);
  assert.match(h.done()?.reason ?? '', /^CONNECT_TIMEOUT/);
  assert.equal(h.of(PacketType.RESET).length, 1);
});

test('host: a service that does not answer the dial in time is DIAL_FAILED', T, async () => {
  const h = harness();
  runStream(h.env, null, null).packet(pkt(PacketType.CONNECT, 0, Buffer.from('echo')));
  await sleep(config.dialTimeoutMs + 30);
  assert.match(h.done()?.reason ?? '', /^DIAL_FAILED: no answer/);
  assert.equal(h.state.socket?.teardown, 'destroy', 'a connecting socket is destroyed, not reset');
});

test('receive window: credit returns in WINDOW packets of at least a quarter window, only for bytes the socket took', T, () => {
  const h = harness();
  const stream = runStream(h.env, null, null);
  stream.packet(pkt(PacketType.CONNECT, 0, Buffer.from('echo')));
  const socket = h.connected();
  socket.highWater = 100 * 1024;
  const chunk = 32 * 1024;
  stream.packet(pkt(PacketType.DATA, 1, bytes(chunk)));
  assert.equal(h.of(PacketType.WINDOW).length, 0, 'a quarter window is not reached yet');
  stream.packet(pkt(PacketType.DATA, 2, bytes(chunk)));
  assert.deepEqual(h.of(PacketType.WINDOW).map((p) => p.seq), [2 * chunk]);
  for (let seq = 3; seq <= 6; seq++) stream.packet(pkt(PacketType.DATA, seq, bytes(chunk)));
  // the socket is over its high-water mark from the 4th packet on: no credit until 'drain'
  assert.deepEqual(h.of(PacketType.WINDOW).map((p) => p.seq), [2 * chunk]);
  socket.flushed();
  assert.deepEqual(h.of(PacketType.WINDOW).map((p) => p.seq), [2 * chunk, 4 * chunk]);
});

test('receive window: a peer sending past it is reset with FLOW_VIOLATION', T, () => {
  const h = harness();
  const stream = runStream(h.env, null, null);
  stream.packet(pkt(PacketType.CONNECT, 0, Buffer.from('echo')));
  const socket = h.connected();
  socket.highWater = 0; // nothing is ever credited back
  for (let seq = 1; seq <= 4; seq++) stream.packet(pkt(PacketType.DATA, seq, bytes(WINDOW / 4)));
  assert.equal(h.done(), null, 'a whole window is allowed');
  stream.packet(pkt(PacketType.DATA, 5, bytes(1)));
  assert.match(h.done()?.reason ?? '', /^FLOW_VIOLATION/);
  assert.equal(socket.teardown, 'reset', 'the service sees an RST');
});

test('a repeated sequence number is SEQ_DUPLICATE', T, () => {
  const h = harness();
  const stream = runStream(h.env, null, null);
  stream.packet(pkt(PacketType.CONNECT, 0, Buffer.from('echo')));
  h.connected();
  stream.packet(pkt(PacketType.DATA, 1, bytes(1)));
  stream.packet(pkt(PacketType.DATA, 1, bytes(1)));
  assert.match(h.done()?.reason ?? '', /^SEQ_DUPLICATE/);
});

test('TWICE: a repeat of a flagged DATA is dropped, delivered once and not counted against the window', T, () => {
  const h = harness();
  const stream = runStream(h.env, null, null);
  stream.packet(pkt(PacketType.CONNECT, 0, Buffer.from('echo')));
  const socket = h.connected();
  socket.highWater = 0; // nothing is credited back: a repeat counted against the window would show
  const twice = (seq: number, n: number, fill: number): Packet => ({ ...pkt(PacketType.DATA, seq, bytes(n, fill)), twice: true });
  stream.packet(twice(2, WINDOW / 2, 0x32)); // held out of order
  stream.packet(twice(2, WINDOW / 2, 0x32)); // its copy while held
  stream.packet(twice(1, WINDOW / 2, 0x31));
  stream.packet(twice(1, WINDOW / 2, 0x31)); // its copy after delivery
  stream.packet(twice(2, WINDOW / 2, 0x32));
  assert.equal(h.done(), null, 'copies are neither violations nor window use');
  assert.equal(socket.bytes().length, WINDOW);
  assert.equal(socket.bytes()[0], 0x31);
  assert.equal(socket.bytes()[WINDOW - 1], 0x32);
  // an unflagged repeat is still the peer's error (empty, so that the full window is not what trips)
  stream.packet(pkt(PacketType.DATA, 2));
  assert.match(h.done()?.reason ?? '', /^SEQ_DUPLICATE/);
});

test('TWICE: small DATA is flagged once the peer has the stream, never past 4 KiB or after a full packet', T, () => {
  const flags = (sent: Packet[]) => sent.filter((p) => p.type === PacketType.DATA).map((p) => [p.payload.byteLength, p.twice]);
  // client: nothing before the host has answered (a copy must never be what opens the stream)
  const c = harness();
  const socket = new FakeSocket();
  const stream = runStream(c.env, socket as unknown as net.Socket, 'echo');
  socket.read(bytes(100));
  stream.packet({ type: PacketType.WINDOW, streamId: ID, seq: 0, payload: new Uint8Array(0) }); // the host speaks
  socket.read(bytes(100));
  socket.read(bytes(4097));
  socket.read(bytes(4096));
  assert.deepEqual(flags(c.sent), [[100, false], [100, true], [4097, false], [4096, true]]);
  // host: the client opened the stream, so from the first byte; a full packet ends it for good
  const h = harness({ sendWindow: { initial: WINDOW, max: WINDOW } });
  const host = runStream(h.env, null, null);
  host.packet(pkt(PacketType.CONNECT, 0, Buffer.from('echo')));
  const s = h.connected();
  s.read(bytes(10));
  s.read(bytes(64 * 1024));
  s.read(bytes(10));
  assert.deepEqual(flags(h.sent), [[10, true], [64 * 1024, false], [10, false]]);
});

test('close: FIN each way, each after its data; done(null) once both are through', T, () => {
  const h = harness();
  const stream = runStream(h.env, null, null);
  stream.packet(pkt(PacketType.CONNECT, 0, Buffer.from('echo')));
  const socket = h.connected();
  // the peer's FIN (seq 2) overtakes its last DATA (seq 1): the socket ends only after the data
  stream.packet(pkt(PacketType.FIN, 2));
  assert.equal(socket.ended, false);
  stream.packet(pkt(PacketType.DATA, 1, bytes(5)));
  assert.equal(socket.ended, true);
  assert.equal(socket.bytes().byteLength, 5);
  assert.equal(h.done(), null, 'our direction is still open');
  // our side: the service answers and ends
  socket.read(bytes(7, 0x62));
  socket.emit('end');
  const data = h.of(PacketType.DATA);
  const fin = h.of(PacketType.FIN);
  assert.equal(data.length, 1);
  assert.equal(data[0]?.seq, 0, 'the host numbers its own direction from 0');
  assert.equal(fin[0]?.seq, 1, 'FIN carries the sequence number after the last DATA');
  assert.deepEqual(h.done(), { reason: null, sentReset: false });
  assert.equal(socket.teardown, null, 'a clean close is not a reset');
});

test('a RESET from the peer tears the socket down with an RST at once', T, () => {
  const h = harness();
  const stream = runStream(h.env, null, null);
  stream.packet(pkt(PacketType.CONNECT, 0, Buffer.from('echo')));
  const socket = h.connected();
  stream.packet({ type: PacketType.RESET, streamId: ID, seq: 0, payload: Buffer.from('SOCKET_ERROR: ECONNRESET') });
  assert.equal(socket.teardown, 'reset');
  assert.deepEqual(h.done(), { reason: 'PEER_RESET: SOCKET_ERROR: ECONNRESET', sentReset: false });
  assert.equal(h.of(PacketType.RESET).length, 0, 'a RESET is not answered');
});

test('client: CONNECT waits a moment for the first bytes and leaves just before them', T, async () => {
  const h = harness();
  const socket = new FakeSocket();
  runStream(h.env, socket as unknown as net.Socket, 'echo');
  assert.equal(h.sent.length, 0, 'nothing yet: CONNECT waits for the application to speak');
  socket.read(Buffer.from('GET /'));
  assert.deepEqual(h.sent.map((p) => [p.type, p.seq]), [[PacketType.CONNECT, 0], [PacketType.DATA, 1]]);
  assert.equal(payloadText(h.sent[0]?.payload ?? new Uint8Array(0)), 'echo');

  const quiet = harness();
  runStream(quiet.env, new FakeSocket() as unknown as net.Socket, 'db'); // a server-speaks-first protocol
  await sleep(20);
  assert.deepEqual(quiet.sent.map((p) => p.type), [PacketType.CONNECT]);
});

test('send window: reading stops when the peer has a window in flight, and resumes with its credit', T, () => {
  const h = harness();
  const socket = new FakeSocket();
  const stream = runStream(h.env, socket as unknown as net.Socket, 'echo');
  socket.read(bytes(WINDOW - 1000));
  socket.read(bytes(3000)); // 2000 bytes over: they wait, and reading stops
  const sentBytes = () => h.of(PacketType.DATA).reduce((n, p) => n + p.payload.byteLength, 0);
  assert.equal(sentBytes(), WINDOW);
  assert.equal(socket.paused, true);
  stream.packet({ type: PacketType.WINDOW, streamId: ID, seq: 64 * 1024, payload: new Uint8Array(0) });
  assert.equal(sentBytes(), WINDOW + 2000, 'the held tail goes first');
  assert.equal(socket.paused, false);
});

test('send window: credit beyond the window is a FLOW_VIOLATION', T, () => {
  const h = harness();
  const stream = runStream(h.env, new FakeSocket() as unknown as net.Socket, 'echo');
  stream.packet({ type: PacketType.WINDOW, streamId: ID, seq: 1, payload: new Uint8Array(0) });
  assert.match(h.done()?.reason ?? '', /^FLOW_VIOLATION: credit/);
});

test('hop allowance: with none left the stream stops reading, and resumes when the shard may post', T, () => {
  const h = harness();
  const socket = new FakeSocket();
  runStream(h.env, socket as unknown as net.Socket, 'echo');
  h.state.mayPost = false;
  socket.read(bytes(100));
  assert.equal(socket.paused, true);
  assert.equal(h.waiters.length, 1);
  h.state.mayPost = true;
  h.waiters.shift()?.();
  assert.equal(socket.paused, false);
});

test('abort: tells the peer only when asked; the socket sees an RST', T, () => {
  const quiet = harness();
  const a = new FakeSocket();
  runStream(quiet.env, a as unknown as net.Socket, 'echo').abort('PEER_GONE: test', false);
  assert.equal(quiet.of(PacketType.RESET).length, 0);
  assert.equal(a.teardown, 'reset');
  const loud = harness();
  runStream(loud.env, new FakeSocket() as unknown as net.Socket, 'echo').abort('SHUTDOWN', true);
  assert.equal(loud.of(PacketType.RESET).length, 1);
  assert.deepEqual(loud.done(), { reason: 'SHUTDOWN: aborted', sentReset: true });
});
