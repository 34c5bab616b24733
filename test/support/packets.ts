// Packets for unit tests: several encoded side by side as one message, as the dispatcher joins them.

import { encodePacket, joinPackets, type PacketType } from '../../src/shared/packet.js';
import { createReassembler, type Reassembler } from '../../workers/reassembler.js';

export interface PacketSpec { type: PacketType; streamId: number; seq: number; payload?: Uint8Array }

export function encodeBatch(packets: readonly PacketSpec[]): Uint8Array {
  return joinPackets(packets.map((p) => encodePacket(p.type, p.streamId, p.seq, p.payload)));
}

/** A reassembler whose next expected sequence number is `next` (to test the wrap-around). */
export function reassemblerAt(next: number): Reassembler {
  const r = createReassembler();
  r.next = next >>> 0;
  return r;
}
