import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HEADER_BYTES,
  MAX_PAYLOAD_BYTES,
  MAX_REASON_BYTES,
  MAX_SERVICE_NAME_BYTES,
  PacketError,
  PacketFlag,
  PacketType,
  decodePackets,
  encodePacket,
  isSequenced,
  payloadText,
  peekPacketBytes,
  peekSeq,
  peekStreamId,
  peekTwice,
  type PacketErrorCode,
} from '../../src/shared/packet.js';
import { encodeBatch } from '../support/packets.js';

const T = { timeout: 10_000 };
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const filled = (n: number, byte = 0xab): Uint8Array => new Uint8Array(n).fill(byte);

/** A header with every field settable, reserved bytes included: for the malformed cases. */
function rawHeader(type: number, streamId: number, seq: number, length: number, flags = 0, reserved = 0): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES);
  const v = new DataView(out.buffer);
  v.setUint8(0, type);
  v.setUint8(1, flags);
  v.setUint16(2, reserved);
  v.setUint32(4, streamId >>> 0);
  v.setUint32(8, seq >>> 0);
  v.setUint32(12, length >>> 0);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

function throwsCode(input: Uint8Array, code: PacketErrorCode): void {
  assert.throws(() => decodePackets(input), (err: unknown) => {
    assert.ok(err instanceof PacketError, `expected PacketError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

// Every type, at the edges of each field: streamId and seq 0 and 2^32-1, payloads empty and at the limit.
const roundTrip: { name: string; type: PacketType; streamId: number; seq: number; payload: Uint8Array }[] = [
  { name: 'CONNECT short name', type: PacketType.CONNECT, streamId: 1, seq: 0, payload: utf8('web') },
  { name: 'CONNECT longest name', type: PacketType.CONNECT, streamId: 0xffffffff, seq: 0, payload: filled(MAX_SERVICE_NAME_BYTES, 0x61) },
  { name: 'DATA one byte', type: PacketType.DATA, streamId: 0, seq: 1, payload: filled(1) },
  { name: 'DATA empty', type: PacketType.DATA, streamId: 7, seq: 0xffffffff, payload: new Uint8Array(0) },
  { name: 'DATA largest', type: PacketType.DATA, streamId: 0x80000000, seq: 123456, payload: filled(MAX_PAYLOAD_BYTES, 0x5a) },
  { name: 'FIN', type: PacketType.FIN, streamId: 0x01020304, seq: 42, payload: new Uint8Array(0) },
  { name: 'RESET no reason', type: PacketType.RESET, streamId: 9, seq: 0, payload: new Uint8Array(0) },
  { name: 'RESET longest reason', type: PacketType.RESET, streamId: 9, seq: 0, payload: filled(MAX_REASON_BYTES, 0x52) },
  { name: 'WINDOW credit', type: PacketType.WINDOW, streamId: 3, seq: 256 * 1024, payload: new Uint8Array(0) },
  { name: 'WINDOW max credit', type: PacketType.WINDOW, streamId: 3, seq: 0xffffffff, payload: new Uint8Array(0) },
  { name: 'WINDOW with its acknowledgement', type: PacketType.WINDOW, streamId: 3, seq: 65536, payload: filled(4, 0x02) },
  { name: 'RESUME', type: PacketType.RESUME, streamId: 3, seq: 7, payload: filled(4, 0x03) },
  { name: 'PING empty', type: PacketType.PING, streamId: 0, seq: 0, payload: new Uint8Array(0) },
  { name: 'PING 8 bytes', type: PacketType.PING, streamId: 0, seq: 0, payload: filled(8, 0x01) },
];

for (const c of roundTrip) {
  test(`round trip: ${c.name}`, T, () => {
    const encoded = encodePacket(c.type, c.streamId, c.seq, c.payload);
    // exact-size, own ArrayBuffer: transferable without a copy
    assert.equal(encoded.byteOffset, 0);
    assert.equal(encoded.buffer.byteLength, HEADER_BYTES + c.payload.byteLength);
    const decoded = decodePackets(encoded);
    assert.equal(decoded.length, 1);
    const [p] = decoded;
    assert.ok(p);
    assert.equal(p.type, c.type);
    assert.equal(p.streamId, c.streamId);
    assert.equal(p.seq, c.seq);
    assert.deepEqual(Uint8Array.from(p.payload), c.payload);
    assert.equal(peekStreamId(encoded), c.streamId);
    assert.equal(peekSeq(encoded), c.seq);
    assert.equal(peekPacketBytes(encoded, 0), encoded.byteLength);
  });
}

test('encodePacket without a payload equals an empty one', T, () => {
  assert.deepEqual(encodePacket(PacketType.FIN, 5, 6), encodePacket(PacketType.FIN, 5, 6, new Uint8Array(0)));
});

test('streamId and seq are taken as u32 (negative numbers wrap)', T, () => {
  const [p] = decodePackets(encodePacket(PacketType.DATA, -1, -2, filled(1)));
  assert.equal(p?.streamId, 0xffffffff);
  assert.equal(p?.seq, 0xfffffffe);
});

// Golden bytes, written out by hand from the layout at the top of packet.ts:
// type(1) flags(1) reserved(2) streamId(u32 BE) seq/credit(u32 BE) length(u32 BE) payload.
const golden: { name: string; type: PacketType; streamId: number; seq: number; payload?: Uint8Array; bytes: string }[] = [
  { name: 'CONNECT "web"', type: PacketType.CONNECT, streamId: 0x01020304, seq: 0, payload: utf8('web'),
    bytes: '01 00 0000 01020304 00000000 00000003 776562' },
  { name: 'DATA aa bb', type: PacketType.DATA, streamId: 0xdeadbeef, seq: 7, payload: hex('aabb'),
    bytes: '02 00 0000 deadbeef 00000007 00000002 aabb' },
  { name: 'FIN', type: PacketType.FIN, streamId: 0xdeadbeef, seq: 8,
    bytes: '03 00 0000 deadbeef 00000008 00000000' },
  { name: 'RESET "DIAL_FAILED"', type: PacketType.RESET, streamId: 5, seq: 0, payload: utf8('DIAL_FAILED'),
    bytes: '04 00 0000 00000005 00000000 0000000b 4449414c5f4641494c4544' },
  { name: 'WINDOW 256 KiB', type: PacketType.WINDOW, streamId: 0xffffffff, seq: 0x40000,
    bytes: '05 00 0000 ffffffff 00040000 00000000' },
];

for (const g of golden) {
  test(`golden bytes: ${g.name}`, T, () => {
    assert.equal(toHex(encodePacket(g.type, g.streamId, g.seq, g.payload)), g.bytes.replace(/\s+/g, ''));
    const [p, ...rest] = decodePackets(hex(g.bytes));
    assert.equal(rest.length, 0);
    assert.deepEqual({ type: p?.type, streamId: p?.streamId, seq: p?.seq }, { type: g.type, streamId: g.streamId, seq: g.seq });
    assert.deepEqual(Uint8Array.from(p?.payload ?? []), g.payload ?? new Uint8Array(0));
  });
}

test('golden CONNECT payload reads back as the service name', T, () => {
  const [p] = decodePackets(hex('01 00 0000 01020304 00000000 00000003 776562'));
  assert.equal(payloadText(p?.payload ?? new Uint8Array(0)), 'web');
});

test('joined packets of one stream decode back in order', T, () => {
  const streamId = 0x0a0b0c0d;
  const input = [
    { type: PacketType.CONNECT, streamId, seq: 0, payload: utf8('db') },
    { type: PacketType.DATA, streamId, seq: 1, payload: filled(1000, 1) },
    { type: PacketType.DATA, streamId, seq: 2, payload: new Uint8Array(0) },
    { type: PacketType.WINDOW, streamId, seq: 65536 },
    { type: PacketType.DATA, streamId, seq: 3, payload: filled(MAX_PAYLOAD_BYTES, 3) },
    { type: PacketType.FIN, streamId, seq: 4 },
  ];
  const batch = encodeBatch(input);
  assert.equal(batch.byteOffset, 0);
  assert.equal(batch.buffer.byteLength, batch.byteLength);
  assert.equal(batch.byteLength, input.length * HEADER_BYTES + 2 + 1000 + MAX_PAYLOAD_BYTES);
  const out = decodePackets(batch);
  assert.equal(out.length, input.length);
  out.forEach((p, i) => {
    const want = input[i];
    assert.ok(want);
    assert.equal(p.type, want.type);
    assert.equal(p.streamId, streamId);
    assert.equal(p.seq, want.seq);
    assert.deepEqual(Uint8Array.from(p.payload), want.payload ?? new Uint8Array(0));
  });
  // a batch is the concatenation of the single packets
  assert.deepEqual(batch, concat(...input.map((p) => encodePacket(p.type, p.streamId, p.seq, p.payload))));
});

test('joining nothing is an empty message, which does not decode', T, () => {
  const empty = encodeBatch([]);
  assert.equal(empty.byteLength, 0);
  throwsCode(empty, 'PACKET_TRUNCATED');
});

test('malformed: truncated header', T, () => {
  const full = encodePacket(PacketType.FIN, 1, 2);
  for (let n = 0; n < HEADER_BYTES; n++) throwsCode(full.subarray(0, n), 'PACKET_TRUNCATED');
  // a second header cut short inside a batch
  throwsCode(concat(full, full.subarray(0, 5)), 'PACKET_TRUNCATED');
});

test('malformed: truncated payload', T, () => {
  const full = encodePacket(PacketType.DATA, 1, 2, filled(10));
  for (let n = HEADER_BYTES; n < full.byteLength; n++) throwsCode(full.subarray(0, n), 'PACKET_TRUNCATED');
  throwsCode(concat(encodePacket(PacketType.DATA, 1, 1, filled(3)), full.subarray(0, 20)), 'PACKET_TRUNCATED');
});

test('malformed: unknown type', T, () => {
  for (const type of [0, 8, 9, 0x7f, 0x80, 0xff]) throwsCode(rawHeader(type, 1, 0, 0), 'PACKET_BAD_TYPE');
});

test('malformed: reserved bits set', T, () => {
  throwsCode(rawHeader(PacketType.FIN, 1, 0, 0, 0x01), 'PACKET_BAD_FIELD');
  throwsCode(rawHeader(PacketType.FIN, 1, 0, 0, 0x80), 'PACKET_BAD_FIELD');
  throwsCode(rawHeader(PacketType.FIN, 1, 0, 0, 0, 0x0100), 'PACKET_BAD_FIELD');
  throwsCode(rawHeader(PacketType.FIN, 1, 0, 0, 0, 0x0001), 'PACKET_BAD_FIELD');
  // in the second packet of a batch too
  throwsCode(concat(rawHeader(PacketType.FIN, 1, 0, 0), rawHeader(PacketType.FIN, 1, 1, 0, 4)), 'PACKET_BAD_FIELD');
});

test('TWICE: a flag of DATA only, golden bytes, read by peekTwice', T, () => {
  const twice = encodePacket(PacketType.DATA, 0xdeadbeef, 7, hex('aabb'), undefined, PacketFlag.TWICE);
  assert.equal(toHex(twice), '02010000deadbeef0000000700000002aabb');
  const [p] = decodePackets(twice);
  assert.equal(p?.twice, true);
  assert.equal(decodePackets(encodePacket(PacketType.DATA, 1, 0, hex('aa')))[0]?.twice, false);
  assert.equal(peekTwice(twice), true);
  assert.equal(peekTwice(concat(encodePacket(PacketType.FIN, 1, 0), twice), HEADER_BYTES), true);
  assert.equal(peekTwice(encodePacket(PacketType.DATA, 1, 0, hex('aa'))), false);
  // on any other type, or any other bit, it is a malformed packet
  for (const type of [PacketType.CONNECT, PacketType.FIN, PacketType.WINDOW, PacketType.RESET, PacketType.PING, PacketType.RESUME]) {
    throwsCode(rawHeader(type, 1, 0, 0, PacketFlag.TWICE), 'PACKET_BAD_FIELD');
  }
  throwsCode(rawHeader(PacketType.DATA, 1, 0, 0, 0x02), 'PACKET_BAD_FIELD');
  throwsCode(rawHeader(PacketType.DATA, 1, 0, 0, 0x03), 'PACKET_BAD_FIELD');
});

test('malformed: oversized payload per type (the limit itself is fine)', T, () => {
  const limits: [PacketType, number][] = [
    [PacketType.CONNECT, MAX_SERVICE_NAME_BYTES],
    [PacketType.DATA, MAX_PAYLOAD_BYTES],
    [PacketType.FIN, 0],
    [PacketType.RESET, MAX_REASON_BYTES],
    [PacketType.WINDOW, 4],
    [PacketType.RESUME, 4],
    [PacketType.PING, 8],
  ];
  for (const [type, limit] of limits) {
    if (limit > 0) assert.equal(decodePackets(encodePacket(type, 1, 0, filled(limit))).length, 1);
    throwsCode(encodePacket(type, 1, 0, filled(limit + 1)), 'PACKET_OVERSIZED');
    // a header that claims 4 GiB is refused by its length alone, before any payload is read
    throwsCode(rawHeader(type, 1, 0, 0xffffffff), 'PACKET_OVERSIZED');
  }
});

test('malformed: CONNECT with an empty service name', T, () => {
  throwsCode(encodePacket(PacketType.CONNECT, 1, 0), 'PACKET_BAD_FIELD');
  throwsCode(concat(encodePacket(PacketType.DATA, 1, 1, filled(2)), encodePacket(PacketType.CONNECT, 1, 0)), 'PACKET_BAD_FIELD');
});

test('a batch may mix packets of several streams', T, () => {
  const a = encodePacket(PacketType.DATA, 1, 0, filled(4));
  const b = encodePacket(PacketType.DATA, 2, 0, filled(4));
  assert.deepEqual(decodePackets(concat(a, b, a)).map((p) => p.streamId), [1, 2, 1]);
});

test('peekStreamId / peekSeq / peekPacketBytes: -1 on input shorter than a header', T, () => {
  const full = encodePacket(PacketType.DATA, 0x11223344, 0x55667788, filled(4));
  for (let n = 0; n < HEADER_BYTES; n++) {
    assert.equal(peekStreamId(full.subarray(0, n)), -1);
    assert.equal(peekSeq(full.subarray(0, n)), -1);
    assert.equal(peekPacketBytes(full.subarray(0, n), 0), -1);
  }
  assert.equal(peekStreamId(full.subarray(0, HEADER_BYTES)), 0x11223344);
  assert.equal(peekSeq(full.subarray(0, HEADER_BYTES)), 0x55667788);
  assert.equal(peekPacketBytes(full.subarray(0, HEADER_BYTES), 0), HEADER_BYTES + 4);
});

test('peeks at an offset read the packet there', T, () => {
  const two = encodeBatch([
    { type: PacketType.DATA, streamId: 1, seq: 7, payload: filled(3) },
    { type: PacketType.WINDOW, streamId: 2, seq: 65536 },
  ]);
  const second = HEADER_BYTES + 3;
  assert.equal(peekStreamId(two, second), 2);
  assert.equal(peekSeq(two, second), 65536);
  assert.equal(peekPacketBytes(two, second), HEADER_BYTES);
  assert.equal(peekStreamId(two, second + 1), -1);
});

test('peek and decode honour a view that does not start at byte 0', T, () => {
  const packet = encodePacket(PacketType.RESET, 0xcafef00d, 0, utf8('x'));
  const big = new Uint8Array(100).fill(0xee);
  big.set(packet, 37);
  const view = big.subarray(37, 37 + packet.byteLength);
  assert.equal(peekStreamId(view), 0xcafef00d);
  assert.equal(view[0], PacketType.RESET);
  const [p] = decodePackets(view);
  assert.equal(p?.streamId, 0xcafef00d);
  assert.equal(payloadText(p?.payload ?? new Uint8Array(0)), 'x');
});

test('decoded payloads are views into the message, not copies', T, () => {
  const message = encodeBatch([
    { type: PacketType.DATA, streamId: 4, seq: 0, payload: filled(10, 1) },
    { type: PacketType.DATA, streamId: 4, seq: 1, payload: filled(20, 2) },
  ]);
  const [p0, p1] = decodePackets(message);
  assert.ok(p0 && p1);
  assert.equal(p0.payload.buffer, message.buffer);
  assert.equal(p1.payload.buffer, message.buffer);
  assert.equal(p0.payload.byteOffset, message.byteOffset + HEADER_BYTES);
  assert.equal(p1.payload.byteOffset, message.byteOffset + 2 * HEADER_BYTES + 10);
  message[HEADER_BYTES] = 0x99; // writing the message shows through the payload
  assert.equal(p0.payload[0], 0x99);
});

test('isSequenced: CONNECT, DATA and FIN only', T, () => {
  const seqd = Object.values(PacketType).filter((t) => isSequenced(t));
  assert.deepEqual(seqd.sort(), [PacketType.CONNECT, PacketType.DATA, PacketType.FIN].sort());
});
