// The routing table: which shard owns each (peer, stream id). It is all the state the main thread
// keeps about streams, and all it needs to route. Host side, a new id is admitted here (up to
// maxStreamsPerPeer, on a shard picked by hashing the id, so DATA that overtakes its CONNECT lands on
// the shard that will own the stream); client side, a route is learnt from a stream's first packet,
// which the shard that owns it sends.

import { PacketType } from '../shared/packet.js';
import { hostShardFor, shardOfStreamId } from '../shared/stream-id.js';

/** What `inbound` answers besides a shard index. */
export const Route = {
  /** no stream, and none may be opened by this packet: drop it quietly */
  DROP: -1,
  /** a new stream past the peer's limit: refuse it (RESET) */
  REFUSE: -2,
} as const;

export function createRoutes(role: 'host' | 'client', shards: number, maxStreamsPerPeer: number) {
  const byPeer = new Map<number, Map<number, number>>();

  /** The shard for a packet of `type` from the peer, admitting a new host stream if it may open one
   *  (`twice`: DATA flagged TWICE, which never does: it may be the late copy of a stream that ended). */
  function inbound(peer: number, id: number, type: number, twice = false): number {
    const routes = byPeer.get(peer);
    if (!routes) return Route.DROP;
    const known = routes.get(id);
    if (known !== undefined) return known;
    // a RESUME of a stream the host lost with the old path goes to its shard, which answers it
    const opens = type === PacketType.CONNECT || type === PacketType.DATA || type === PacketType.FIN || type === PacketType.RESUME;
    if (role !== 'host' || !opens || twice) return Route.DROP; // late packet for a stream that is gone, or garbage
    if (routes.size >= maxStreamsPerPeer) return Route.REFUSE;
    const shard = hostShardFor(peer, id, shards);
    routes.set(id, shard);
    return shard;
  }

  /** Client: a shard sends a stream's first packet (its CONNECT); the id names the shard. */
  function outbound(peer: number, id: number, shard: number): void {
    const routes = byPeer.get(peer);
    if (role !== 'client' || !routes || routes.has(id)) return;
    const owner = shardOfStreamId(id);
    routes.set(id, owner < shards ? owner : shard);
  }

  /** Every route of a shard that died, removed; the caller resets those streams on the peer's side. */
  function takeShard(shard: number): { peer: number; id: number }[] {
    const lost: { peer: number; id: number }[] = [];
    for (const [peer, routes] of byPeer) {
      for (const [id, owner] of routes) {
        if (owner !== shard) continue;
        routes.delete(id);
        lost.push({ peer, id });
      }
    }
    return lost;
  }

  return {
    inbound, outbound, takeShard,
    addPeer: (peer: number) => { byPeer.set(peer, new Map()); },
    has: (peer: number) => byPeer.has(peer),
    removePeer: (peer: number) => { byPeer.delete(peer); },
    release(peer: number, ids: number[]): void {
      const routes = byPeer.get(peer);
      if (routes) for (const id of ids) routes.delete(id);
    },
    count: (peer: number) => byPeer.get(peer)?.size ?? 0,
  };
}
