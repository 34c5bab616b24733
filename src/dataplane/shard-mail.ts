// What the main thread sends each shard, once per event-loop turn: the DataChannel messages routed
// to it, the hop allowance it is owed, and the full-size packet buffers it may reuse. Each
// postMessage wakes the shard's thread (~25 µs of CPU here), so one turn is one message at most.
//
// Hop allowance: a shard may post hopAllowanceBytes to the main thread before it must wait; the
// bytes are owed back once they are on the DataChannel (or dropped). Owed bytes travel with the next
// packets, or alone once they reach an eighth of the allowance; a shard that has spent everything
// is owed all of it, so it never waits for a message that will not come.

import { FULL_PACKET_BYTES } from '../shared/packet.js';
import type { Outgoing } from './coalesce.js';
import type { ShardPost } from './pool.js';

/** Owed allowance travels alone only from this fraction of the whole (see above). */
const ALLOWANCE_ALONE_FRACTION = 8;

/** Full-size packet buffers handed back to a shard per turn, at most: sendMessageBinary copies, so a
 *  sent buffer can carry the shard's next packet instead of becoming garbage (64 KiB ArrayBuffers
 *  made the main thread's garbage collector the largest cost of a bulk transfer). */
const SPARE_PER_TURN = 64;

export function createShardMail(posts: ShardPost[], allowanceBytes: number) {
  const owed = new Array<number>(posts.length).fill(0);
  const spare = posts.map((): ArrayBuffer[] => []);
  const inbox = posts.map(() => new Map<number, ArrayBuffer[]>());

  /** A DataChannel message (or the part of one) for a shard. */
  function deliver(shard: number, peer: number, buf: ArrayBuffer): void {
    const box = inbox[shard];
    if (!box) return;
    let list = box.get(peer);
    if (!list) box.set(peer, (list = []));
    list.push(buf);
  }

  /** A message's bytes are on the DataChannel, or dropped: its shards are owed them; a full-size
   *  buffer of one shard goes back to it for reuse. */
  function handedOver(item: Outgoing): void {
    const { message, shard, mix } = item;
    if (mix) {
      for (let i = 0; i < mix.length; i++) owed[i] = (owed[i] ?? 0) + (mix[i] ?? 0);
      return;
    }
    if (shard < 0) return;
    owed[shard] = (owed[shard] ?? 0) + message.byteLength;
    const buffers = spare[shard];
    if (buffers && buffers.length < SPARE_PER_TURN && message.byteLength === FULL_PACKET_BYTES && message.buffer.byteLength === FULL_PACKET_BYTES) buffers.push(message.buffer as ArrayBuffer);
  }

  /** Bytes a shard posted that go nowhere (its peer is gone). */
  function dropped(shard: number, bytes: number): void {
    owed[shard] = (owed[shard] ?? 0) + bytes;
  }

  /** End of the turn: one post per shard that has packets, or enough allowance owed to matter. */
  function flush(): void {
    for (let i = 0; i < posts.length; i++) {
      const post = posts[i];
      const box = inbox[i];
      const bytes = owed[i] ?? 0;
      if (!post || !box || (box.size === 0 && bytes < allowanceBytes / ALLOWANCE_ALONE_FRACTION)) continue;
      const pkts: { peer: number; bufs: ArrayBuffer[] }[] = [];
      const transfer: ArrayBuffer[] = [];
      for (const [peer, bufs] of box) {
        pkts.push({ peer, bufs });
        transfer.push(...bufs);
      }
      box.clear();
      owed[i] = 0;
      const buffers = spare[i] ?? [];
      if (buffers.length > 0) {
        spare[i] = [];
        transfer.push(...buffers);
        post({ t: 'turn', pkts, allowance: bytes, spare: buffers }, transfer);
      } else {
        post({ t: 'turn', pkts, allowance: bytes }, transfer);
      }
    }
  }

  return {
    deliver, handedOver, dropped, flush,
    /** The peer is gone: what waited for its shards is dropped. */
    removePeer(peer: number): void {
      for (const box of inbox) box.delete(peer);
    },
    /** A shard's thread died: it starts again with a whole allowance and nothing waiting. */
    lost(shard: number): void {
      owed[shard] = 0;
      spare[shard] = [];
      inbox[shard]?.clear();
    },
  };
}
