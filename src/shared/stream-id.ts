// Stream ids: the shard index in the top bits, a hash of the connection's 4-tuple in the rest.
// The main thread then routes a client stream by its id alone and never arbitrates; the shard
// probes past ids it still has in use. The host never allocates ids.
//
//   31        24 23                                   0
//   +----------+--------------------------------------+
//   |  shard   |  FNV-1a of the 4-tuple (probed on)   |
//   +----------+--------------------------------------+

export const ID_SHARD_SHIFT = 24;
export const ID_HASH_MASK = 0x00ff_ffff;
/** Shards one side may run: the index must fit the 8 top bits of an id, or a client's ids from shard
 *  256 would wrap onto shard 0's. */
export const MAX_SHARDS = 256;

/** FNV-1a, 32 bits: cheap, and spread enough for a table key (ids are not secrets). */
export function fnv1a(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function streamIdFor(shard: number, remoteAddr: string, remotePort: number, localAddr: string, localPort: number): number {
  if (!Number.isInteger(shard) || shard < 0 || shard >= MAX_SHARDS) throw new RangeError(`shard index ${shard} does not fit a stream id (0..${MAX_SHARDS - 1})`);
  const h = fnv1a(`${remoteAddr}|${remotePort}|${localAddr}|${localPort}`);
  return ((shard << ID_SHARD_SHIFT) | (h & ID_HASH_MASK)) >>> 0;
}

/** The next id to probe after `id`, keeping its shard bits. */
export function nextStreamId(id: number): number {
  return ((id & ~ID_HASH_MASK) | ((id + 1) & ID_HASH_MASK)) >>> 0;
}

/** The client's shard that owns an id. */
export function shardOfStreamId(id: number): number {
  return id >>> ID_SHARD_SHIFT;
}

/** The host's shard for a new (peer, id): a hash, so DATA that overtakes its CONNECT lands on the
 *  shard that will own the stream. */
export function hostShardFor(peer: number, id: number, shards: number): number {
  const h = Math.imul((id ^ Math.imul(peer + 1, 0x9e3779b1)) >>> 0, 0x85ebca6b) >>> 0;
  return ((h ^ (h >>> 15)) >>> 0) % shards;
}
