// Puts one direction of one stream back in order. The DataChannel is unordered (so one stream never
// blocks another inside SCTP), therefore packet k+1 may arrive before packet k. Sequence numbers are
// u32 and compared in serial-number arithmetic (RFC 1982), so a stream may outlive 2^32 packets.
//
// The state is a plain record owned by the stream's handler; these functions are its transitions.

import { HEADER_BYTES, type Packet } from '../src/shared/packet.js';

export interface Reassembler {
  /** the sequence number delivered next */
  next: number;
  /** packets that arrived ahead of `next`, by sequence number */
  held: Map<number, Packet>;
  /** bytes held (payload + header each), for the limit and for the counters tests read */
  heldBytes: number;
  /** the most bytes ever held at once */
  peakHeldBytes: number;
}

export interface ReassemblerLimits {
  /** bytes that may wait out of order; past it the peer is flooding us */
  maxHeldBytes: number;
  /** how far ahead of `next` a sequence number may be, in packets */
  maxAheadPackets: number;
}

export type ReassemblyErrorCode = 'SEQ_DUPLICATE' | 'SEQ_OUT_OF_WINDOW' | 'REORDER_OVERFLOW';

export function createReassembler(): Reassembler {
  return { next: 0, held: new Map(), heldBytes: 0, peakHeldBytes: 0 };
}

/**
 * Accepts one sequenced packet and calls `deliver` for every packet that is now in order,
 * oldest first. Returns null, or an error code when the peer broke the protocol (the caller resets
 * the stream; nothing was delivered for the offending packet).
 */
export function reassemble(r: Reassembler, packet: Packet, limits: ReassemblerLimits, deliver: (p: Packet) => void): ReassemblyErrorCode | null {
  const ahead = (packet.seq - r.next) >>> 0;
  if (ahead >= 0x80000000) return 'SEQ_DUPLICATE'; // behind `next`: already delivered
  if (ahead === 0) {
    r.next = (r.next + 1) >>> 0;
    deliver(packet);
    while (r.held.size > 0) {
      const p = r.held.get(r.next);
      if (!p) break;
      r.held.delete(r.next);
      r.heldBytes -= p.payload.byteLength + HEADER_BYTES;
      r.next = (r.next + 1) >>> 0;
      deliver(p);
    }
    return null;
  }
  if (ahead > limits.maxAheadPackets) return 'SEQ_OUT_OF_WINDOW';
  if (r.held.has(packet.seq)) return 'SEQ_DUPLICATE';
  const cost = packet.payload.byteLength + HEADER_BYTES;
  if (r.heldBytes + cost > limits.maxHeldBytes) return 'REORDER_OVERFLOW';
  // a payload is a view into its whole DataChannel message: holding the view would keep the whole
  // message alive while counting only the payload, so a held packet keeps a copy of just its bytes
  r.held.set(packet.seq, { ...packet, payload: packet.payload.slice() });
  r.heldBytes += cost;
  if (r.heldBytes > r.peakHeldBytes) r.peakHeldBytes = r.heldBytes;
  return null;
}

/** Whether `seq` was delivered already or is held: a repeat (of a packet sent twice, see TWICE in
 *  ../src/shared/packet.ts). */
export function isRepeat(r: Reassembler, seq: number): boolean {
  return ((seq - r.next) >>> 0) >= 0x80000000 || r.held.has(seq);
}
