// Resume in isolation: the send side's retention (workers/retention.ts), one stream's suspend and
// resume (workers/handler.ts) against a fake environment, and the host's book of resumable sessions
// (src/signaling/resumption.ts): a forged key, a replay and an unknown id are refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { runStream, type StreamEnv } from '../../workers/handler.js';
import { createRetention } from '../../workers/retention.js';
import { defaultConfig, type DataPlaneConfig } from '../../src/shared/limits.js';
import { PacketType, decodePackets, readU32, u32Payload, type Packet } from '../../src/shared/packet.js';
import { createResumeBook, resumeProof, newResumeId } from '../../src/signaling/resumption.js';
import { FakeSocket } from '../support/fake-socket.js';

const T = { timeout: 10_000 };
const ID = 0x0100_0007;
const WINDOW = 256 * 1024;
const config: DataPlaneConfig = { ...defaultConfig, windowBytes: WINDOW, initialWindowBytes: WINDOW };
const pkt = (type: Packet['type'], seq: number, payload: Uint8Array = new Uint8Array(0)): Packet => ({ type, streamId: ID, seq, payload });
const bytes = (n: number, fill = 0x61) => new Uint8Array(n).fill(fill);

/** A client stream over a fake socket; `sent` collects what it sends. */
function clientStream() {
  const sent: Packet[] = [];
  let done: string | null | undefined;
  const env: StreamEnv = {
    streamId: ID, config, sendWindow: { initial: WINDOW, max: WINDOW },
    rttMs: () => 50, grow: () => 0, release: () => {},
    send: (message) => { sent.push(...decodePackets(message)); },
    spare: () => undefined, mayPost: () => true, onAllowance: () => {},
    dial: () => 'no dial on a client', done: (reason) => { done = reason; }, count: () => {},
  };
  const socket = new FakeSocket();
  const stream = runStream(env, socket as unknown as net.Socket, 'echo');
  const of = (type: Packet['type']) => sent.filter((p) => p.type === type);
  return { stream, socket, sent, of, done: () => done };
}

test('retention: keeps what is unconfirmed, forgets on acknowledgement, refuses one from the future', T, () => {
  const r = createRetention();
  for (let seq = 0; seq < 5; seq++) r.keep(PacketType.DATA, seq, bytes(10));
  assert.equal(r.bytes(), 50);
  assert.equal(r.confirm(3, 5), true);
  assert.deepEqual(r.pending().map((k) => k.seq), [3, 4]);
  assert.equal(r.bytes(), 20);
  assert.equal(r.confirm(2, 5), true, 'an old acknowledgement changes nothing');
  assert.equal(r.oldest(), 3);
  assert.equal(r.confirm(9, 5), false, 'beyond what was sent');
  assert.equal(r.confirm(5, 5), true);
  assert.equal(r.bytes(), 0);
  assert.equal(r.oldest(), undefined);
});

test('handler: while the path is down the stream keeps and does not send; the peer\'s RESUME gets exactly the rest again', T, () => {
  const s = clientStream();
  s.socket.read(bytes(1000, 0x31)); // CONNECT (0) and DATA (1) go out
  assert.deepEqual(s.sent.map((p) => p.seq), [0, 1]);
  s.stream.packet(pkt(PacketType.WINDOW, 0, u32Payload(1))); // the host confirms the CONNECT
  s.stream.suspend();
  assert.equal(s.socket.paused, true, 'reads pause');
  s.socket.emit('end'); // the application ends during the outage: the FIN is kept, not sent
  const before = s.sent.length;
  s.stream.resume();
  const ours = s.sent.slice(before);
  assert.deepEqual(ours.map((p) => [p.type, p.seq, readU32(p.payload)]), [[PacketType.RESUME, 0, WINDOW]]);
  s.stream.packet(pkt(PacketType.RESUME, 1, u32Payload(WINDOW))); // the host has the CONNECT, not the DATA
  const again = s.sent.slice(before + 1);
  assert.deepEqual(again.map((p) => [p.type, p.seq, p.payload.byteLength]), [[PacketType.DATA, 1, 1000], [PacketType.FIN, 2, 0]]);
  assert.equal(s.done(), undefined);
});

test('handler: packets held out of order are dropped on resume (they come again) and stop counting against the window', T, () => {
  const s = clientStream();
  s.socket.read(bytes(10));
  s.stream.packet(pkt(PacketType.DATA, 0, bytes(100, 0x41)));
  s.stream.packet(pkt(PacketType.DATA, 2, bytes(5000, 0x43))); // held: seq 1 was lost with the path
  s.stream.suspend();
  s.stream.resume();
  const resume = s.of(PacketType.RESUME)[0];
  assert.equal(resume?.seq, 1, 'from seq 1 again');
  // the 100 delivered bytes were written to the socket (credited now); the held 5000 are forgotten
  assert.equal(readU32(resume?.payload ?? new Uint8Array(0)), WINDOW);
  s.stream.packet(pkt(PacketType.RESUME, 2, u32Payload(WINDOW)));
  s.stream.packet(pkt(PacketType.DATA, 1, bytes(7, 0x42)));
  s.stream.packet(pkt(PacketType.DATA, 2, bytes(5000, 0x43))); // not a duplicate any more
  assert.equal(Buffer.concat(s.socket.written).toString('latin1'), 'A'.repeat(100) + 'B'.repeat(7) + 'C'.repeat(5000));
  assert.equal(s.done(), undefined);
});

test('handler: credit after resume is the peer\'s grant less what is sent again, plus WINDOWs that overtook its RESUME', T, () => {
  const s = clientStream();
  s.socket.read(bytes(WINDOW + 500)); // CONNECT, four full packets; the last 500 bytes wait for credit
  const data = s.of(PacketType.DATA);
  assert.equal(data.reduce((n, p) => n + p.payload.byteLength, 0), WINDOW);
  s.stream.suspend();
  s.stream.resume();
  s.stream.packet(pkt(PacketType.WINDOW, 1000, u32Payload(0))); // overtook the host's RESUME
  const before = s.sent.length;
  // the host got CONNECT and three packets (credited them all) and lost the fourth
  s.stream.packet(pkt(PacketType.RESUME, 4, u32Payload(WINDOW)));
  const after = s.sent.slice(before);
  assert.deepEqual(after.map((p) => [p.seq, p.payload.byteLength]), [[4, 65536], [5, 500]]);
  assert.equal(s.done(), undefined);
});

test('handler: a RESUME that asks for what was confirmed already, or comes unasked, resets the stream', T, () => {
  const a = clientStream();
  a.socket.read(bytes(10));
  a.stream.packet(pkt(PacketType.RESUME, 0, u32Payload(WINDOW)));
  assert.match(String(a.done()), /unexpected RESUME/);
  const b = clientStream();
  b.socket.read(bytes(10));
  b.stream.packet(pkt(PacketType.WINDOW, 0, u32Payload(2)));
  b.stream.suspend();
  b.stream.resume();
  b.stream.packet(pkt(PacketType.RESUME, 0, u32Payload(WINDOW)));
  assert.match(String(b.done()), /RESUME from seq 0/);
});

test('resumption: the right key over this handshake resumes; a forged key, a replay and an unknown id do not', T, () => {
  const book = createResumeBook();
  const ticket = { rid: newResumeId(), key: new Uint8Array(32).fill(3) };
  book.issue(7, ticket);
  const handshake = new Uint8Array(16).fill(1);
  assert.equal(book.claim(ticket.rid, resumeProof(ticket, handshake), handshake), 7);
  const recorded = resumeProof(ticket, handshake);
  assert.equal(book.claim(ticket.rid, recorded, new Uint8Array(16).fill(2)), null, 'a recorded proof in another handshake');
  assert.equal(book.claim(ticket.rid, resumeProof({ rid: ticket.rid, key: new Uint8Array(32) }, handshake), handshake), null, 'a wrong key');
  assert.equal(book.claim(newResumeId(), recorded, handshake), null, 'an unknown id');
  const later = new Uint8Array(16).fill(5);
  assert.equal(book.claim(ticket.rid, resumeProof(ticket, later), later), 7, 'the ticket stays valid for the next resume');
  const next = { rid: newResumeId(), key: new Uint8Array(32).fill(4) };
  book.issue(7, next);
  assert.equal(book.claim(ticket.rid, recorded, handshake), null, 'the ticket a new session of that peer replaced');
  book.forget(7);
  assert.equal(book.claim(next.rid, resumeProof(next, handshake), handshake), null, 'after the deadline');
});
