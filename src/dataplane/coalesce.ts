// A turn's small packets (CONNECT and first DATA, FIN, WINDOW, short replies; every shard's, many
// streams') leave as few DataChannel messages as possible: each message costs the transport tens of
// microseconds whatever its size. A joined message records how many of its bytes are each shard's,
// so that each shard gets exactly its own hop allowance back once it is sent.

import { joinPackets } from '../shared/packet.js';

/** A DataChannel message and whose bytes it carries: one shard's (`shard`, or -1 for the main
 *  thread's own, such as a RESET it makes), or several shards' (`mix`: bytes per shard). */
export interface Outgoing { message: Uint8Array; shard: number; mix?: number[] }

/** Joins `pieces` in order into messages of at most `maxBytes` (a piece larger alone stays alone). */
export function coalesce(pieces: readonly Outgoing[], shards: number, maxBytes: number): Outgoing[] {
  const out: Outgoing[] = [];
  let group: Outgoing[] = [];
  let bytes = 0;
  const close = () => {
    const one = group[0];
    if (group.length === 1 && one) out.push(one);
    else if (group.length > 1) {
      const mix = new Array<number>(shards).fill(0);
      for (const p of group) if (p.shard >= 0) mix[p.shard] = (mix[p.shard] ?? 0) + p.message.byteLength;
      out.push({ message: joinPackets(group.map((p) => p.message)), shard: -1, mix });
    }
    group = [];
    bytes = 0;
  };
  for (const piece of pieces) {
    if (group.length > 0 && bytes + piece.message.byteLength > maxBytes) close();
    group.push(piece);
    bytes += piece.message.byteLength;
  }
  close();
  return out;
}
