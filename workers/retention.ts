// The send side's memory for resume: every sequenced packet (CONNECT, DATA, FIN) of one direction of
// one stream that the peer has not yet confirmed, so that a stream can go on over a new
// PeerConnection after the old one broke, from exactly where the peer's reassembler stopped.
//
//   send seq n ──▶ keep(n) ─────────────────────────────────────────────┐
//   peer's WINDOW {credit, ack a} ──▶ confirm(a): forget every seq < a   │ held: seq a .. sendSeq-1
//   path lost, new path up, peer's RESUME {next r, credit c}:            │
//        confirm(r), resend r .. sendSeq-1 (they cost credit), send credit = c - resent bytes
//
// Memory. A receiver credits bytes only after writing them to its socket, and it acknowledges (in the
// same WINDOW) every sequence number delivered before that, so what is kept here is never more than
// what the peer has not credited back: the stream's send window, plus the rest of the last TCP read.
// A DATA payload is kept as the view into the TCP read it came from (no copy on the hot path): the
// read's buffer stays alive until its last packet is confirmed.

import { PacketType } from '../src/shared/packet.js';

export interface Kept {
  type: PacketType;
  seq: number;
  payload: Uint8Array | undefined;
}

export function createRetention() {
  const kept: (Kept | undefined)[] = [];
  let head = 0; // kept[head] is the oldest unconfirmed packet (spliced away in batches)
  let bytes = 0; // payload bytes kept

  function compact(): void {
    if (head > 64 && head * 2 > kept.length) {
      kept.splice(0, head);
      head = 0;
    }
  }

  return {
    keep(type: PacketType, seq: number, payload?: Uint8Array): void {
      kept.push({ type, seq, payload });
      bytes += payload ? payload.byteLength : 0;
    },
    /** The peer has every packet before `next`; false if `next` is beyond what was ever sent
     *  (sequence numbers compared as u32 serial numbers). */
    confirm(next: number, sendSeq: number): boolean {
      if (((sendSeq - next) >>> 0) >= 0x80000000) return false;
      while (head < kept.length) {
        const k = kept[head];
        if (!k || ((next - k.seq) >>> 0) === 0 || ((next - k.seq) >>> 0) >= 0x80000000) break;
        bytes -= k.payload ? k.payload.byteLength : 0;
        kept[head] = undefined;
        head++;
      }
      compact();
      return true;
    },
    /** The oldest packet kept (undefined when every packet was confirmed). */
    oldest: (): number | undefined => kept[head]?.seq,
    /** Every packet still unconfirmed, oldest first. */
    pending: (): Kept[] => kept.slice(head).filter((k): k is Kept => k !== undefined),
    /** Payload bytes kept. */
    bytes: () => bytes,
  };
}

export type Retention = ReturnType<typeof createRetention>;
