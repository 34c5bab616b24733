// The tunnel's own counters as the tests read them: summed over the shards of one side.

import type { ShardStats } from '../../src/shared/thread-messages.js';

interface HasStats { stats(): Promise<{ shards: (ShardStats | null)[] }> }

/** Every shard's stats; a shard that did not answer fails the test (it would be a stuck worker). */
export function answered(stats: { shards: (ShardStats | null)[] }): ShardStats[] {
  const missing = stats.shards.findIndex((s) => s === null);
  if (missing >= 0) throw new Error(`shard ${missing} did not answer a stats request`);
  return stats.shards as ShardStats[];
}

/** Streams the shards of one side still hold. */
export async function liveStreams(side: HasStats): Promise<number> {
  return answered(await side.stats()).reduce((n, s) => n + s.streams, 0);
}

/** Resets by reason code, summed over the shards. */
export function resetCounts(stats: { shards: (ShardStats | null)[] }): Record<string, number> {
  const all: Record<string, number> = {};
  for (const s of answered(stats)) for (const [code, n] of Object.entries(s.resets)) all[code] = (all[code] ?? 0) + n;
  return all;
}

/** The largest per-stream buffer any shard of one side held (bytes). */
export function peakStreamBuffer(stats: { shards: (ShardStats | null)[] }): number {
  return Math.max(0, ...answered(stats).map((s) => s.peakStreamBufferedBytes));
}
