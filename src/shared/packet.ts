// The wire format of the data plane. A DataChannel message holds one or more packets back to back
// (small packets of many streams share a message: each message costs the transport far more than its
// bytes). The header is fixed binary, not msgpack: it is read for every packet on the hot path.
//
//  0      1      2             4                    8                   12                  16
//  +------+------+-------------+--------------------+-------------------+-------------------+
//  | type | flags| reserved(0) | stream id (u32 BE) | seq / credit (u32)| payload len (u32) | payload...
//  +------+------+-------------+--------------------+-------------------+-------------------+
//
// One flag exists, on DATA only: TWICE (1), "this packet may arrive twice". A small DATA packet of an
// interactive stream may be sent once more over another association (src/dataplane/peer-link.ts,
// `copy`): a lost message then costs a round trip instead of a retransmission timeout. Its receiver
// drops a repeat of a TWICE packet instead of resetting the stream (a repeat of any other packet is
// still a protocol violation), and no stream is ever started by one (a late copy of a stream that
// ended must not open it again).
//
// Ordered packets (CONNECT, DATA, FIN) carry a per-direction sequence number that counts packets,
// starting at 0 on each stream; the reassembler restores their order because the channel is unordered.
// WINDOW (credit in bytes), RESET, PING and RESUME are not sequenced: they act as soon as they arrive.
//
// Resume (a path lost and a new PeerConnection up, see workers/retention.ts): WINDOW's 4-byte
// payload is an acknowledgement, the receiver's next sequence number, so the sender can forget what
// came before it; RESUME, once per stream each way on the new path, says from which sequence number
// the receiver needs data again and how many bytes it may then send (its window, reconciled):
//
//   WINDOW  | 5 | 0 | 0 | stream id | credit (bytes) | 4 | next seq needed (u32 BE)
//   RESUME  | 7 | 0 | 0 | stream id | next seq needed | 4 | credit after resume (u32 BE, bytes)

export const HEADER_BYTES = 16;
/** Largest payload a peer may send in one packet; larger is a protocol violation (the DataChannel's
 *  default max message is 256 KiB and a TCP read is at most 64 KiB). */
export const MAX_PAYLOAD_BYTES = 64 * 1024;
/** Service names are short identifiers chosen by the host. */
export const MAX_SERVICE_NAME_BYTES = 64;
/** A RESET reason is a log line, not a payload. */
export const MAX_REASON_BYTES = 200;

export const PacketType = {
  CONNECT: 1,
  DATA: 2,
  FIN: 3,
  RESET: 4,
  WINDOW: 5,
  PING: 6,
  RESUME: 7,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

/** The header's flags byte (see the top of the file). */
export const PacketFlag = {
  /** DATA only: a copy may also be on its way; a repeat is dropped, and it never starts a stream */
  TWICE: 1,
} as const;

export interface Packet {
  type: PacketType;
  /** the stream's id (see stream-id.ts) */
  streamId: number;
  /** sequence number (CONNECT, DATA, FIN), credit bytes (WINDOW), 0 otherwise */
  seq: number;
  /** a view into the received message: no copy */
  payload: Uint8Array;
  /** DATA flagged TWICE: a repeat of it is dropped, not a violation */
  twice?: boolean;
}

export type PacketErrorCode = 'PACKET_TRUNCATED' | 'PACKET_BAD_TYPE' | 'PACKET_OVERSIZED' | 'PACKET_BAD_FIELD';

export class PacketError extends Error {
  readonly code: PacketErrorCode;
  constructor(code: PacketErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

function payloadLimit(type: number): number {
  switch (type) {
    case PacketType.DATA: return MAX_PAYLOAD_BYTES;
    case PacketType.CONNECT: return MAX_SERVICE_NAME_BYTES;
    case PacketType.RESET: return MAX_REASON_BYTES;
    case PacketType.PING: return 8;
    case PacketType.WINDOW:
    case PacketType.RESUME: return 4;
    default: return 0;
  }
}

/** Writes one header at `offset` of `target`. */
export function writeHeader(target: Uint8Array, offset: number, type: PacketType, streamId: number, seq: number, length: number, flags = 0): void {
  const view = new DataView(target.buffer, target.byteOffset + offset, HEADER_BYTES);
  view.setUint8(0, type);
  view.setUint8(1, flags);
  view.setUint16(2, 0);
  view.setUint32(4, streamId >>> 0);
  view.setUint32(8, seq >>> 0);
  view.setUint32(12, length >>> 0);
}

/** A DATA packet with a full payload (bytes): the size of every packet of a bulk transfer, and of
 *  the buffers the dispatcher hands back to a shard for reuse. */
export const FULL_PACKET_BYTES = HEADER_BYTES + MAX_PAYLOAD_BYTES;

/** Encodes one packet into an exact-size ArrayBuffer (transferable without a copy): `into` when it
 *  is given and of that size (a recycled buffer), else a fresh one. */
export function encodePacket(type: PacketType, streamId: number, seq: number, payload?: Uint8Array, into?: ArrayBuffer, flags = 0): Uint8Array {
  const length = payload ? payload.byteLength : 0;
  const out = new Uint8Array(into && into.byteLength === HEADER_BYTES + length ? into : new ArrayBuffer(HEADER_BYTES + length));
  writeHeader(out, 0, type, streamId, seq, length, flags);
  if (payload) out.set(payload, HEADER_BYTES);
  return out;
}

/** Encoded packets side by side in one fresh, exact-size buffer: one DataChannel message. */
export function joinPackets(pieces: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of pieces) total += p.byteLength;
  const out = new Uint8Array(new ArrayBuffer(total));
  let offset = 0;
  for (const p of pieces) {
    out.set(p, offset);
    offset += p.byteLength;
  }
  return out;
}

/** The stream id of the packet at `offset`, read without decoding it; -1 if its header is cut short. */
export function peekStreamId(message: Uint8Array, offset = 0): number {
  if (message.byteLength - offset < HEADER_BYTES) return -1;
  return new DataView(message.buffer, message.byteOffset + offset, HEADER_BYTES).getUint32(4);
}

/** The sequence number (or credit) field of the packet at `offset`; -1 if its header is cut short. */
export function peekSeq(message: Uint8Array, offset = 0): number {
  if (message.byteLength - offset < HEADER_BYTES) return -1;
  return new DataView(message.buffer, message.byteOffset + offset, HEADER_BYTES).getUint32(8);
}

/** Whether the packet at `offset` is DATA flagged TWICE (read without decoding it). */
export function peekTwice(message: Uint8Array, offset = 0): boolean {
  return message.byteLength - offset >= HEADER_BYTES && message[offset] === PacketType.DATA && message[offset + 1] === PacketFlag.TWICE;
}

/** The byte length of the packet at `offset` (header + payload), or -1 if the header is cut short. */
export function peekPacketBytes(message: Uint8Array, offset: number): number {
  if (message.byteLength - offset < HEADER_BYTES) return -1;
  return HEADER_BYTES + new DataView(message.buffer, message.byteOffset + offset, HEADER_BYTES).getUint32(12);
}

/**
 * Decodes every packet of a message. Throws PacketError on anything malformed: a message is
 * accepted whole or not at all, so a bad one cannot leave a stream half-updated.
 * Payloads are views into `message`.
 */
export function decodePackets(message: Uint8Array): Packet[] {
  const packets: Packet[] = [];
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  let offset = 0;
  if (message.byteLength === 0) throw new PacketError('PACKET_TRUNCATED', 'empty message');
  while (offset < message.byteLength) {
    if (message.byteLength - offset < HEADER_BYTES) {
      throw new PacketError('PACKET_TRUNCATED', `header cut short at byte ${offset}`);
    }
    const type = view.getUint8(offset);
    if (type < PacketType.CONNECT || type > PacketType.RESUME) {
      throw new PacketError('PACKET_BAD_TYPE', `unknown packet type ${type}`);
    }
    const flags = view.getUint8(offset + 1);
    if ((flags !== 0 && !(flags === PacketFlag.TWICE && type === PacketType.DATA)) || view.getUint16(offset + 2) !== 0) {
      throw new PacketError('PACKET_BAD_FIELD', flags !== 0 ? `flags ${flags} on a packet of type ${type}` : 'reserved header bits set');
    }
    const streamId = view.getUint32(offset + 4);
    const seq = view.getUint32(offset + 8);
    const length = view.getUint32(offset + 12);
    if (length > payloadLimit(type)) {
      throw new PacketError('PACKET_OVERSIZED', `type ${type} payload of ${length} bytes exceeds ${payloadLimit(type)}`);
    }
    const start = offset + HEADER_BYTES;
    if (start + length > message.byteLength) {
      throw new PacketError('PACKET_TRUNCATED', `payload of ${length} bytes cut short`);
    }
    if (type === PacketType.CONNECT && length === 0) {
      throw new PacketError('PACKET_BAD_FIELD', 'CONNECT without a service name');
    }
    packets.push({ type: type as PacketType, streamId, seq, payload: message.subarray(start, start + length), twice: flags !== 0 });
    offset = start + length;
  }
  return packets;
}

export function isSequenced(type: PacketType): boolean {
  return type === PacketType.CONNECT || type === PacketType.DATA || type === PacketType.FIN;
}

/** A u32 payload (WINDOW's acknowledgement, RESUME's credit). */
export function u32Payload(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value >>> 0);
  return out;
}

/** The u32 a WINDOW or RESUME packet carries; undefined if it carries none. */
export function readU32(payload: Uint8Array): number | undefined {
  if (payload.byteLength < 4) return undefined;
  return new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
}

const decoder = new TextDecoder('utf-8', { fatal: false });
export function payloadText(payload: Uint8Array): string {
  return decoder.decode(payload);
}
