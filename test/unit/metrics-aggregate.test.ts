// The metrics' totals stay monotonic: a shard restarted after a crash counts from zero again, and what
// it counted before must still count; a shard that did not answer in time is taken at its last answer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAggregator } from '../../src/metrics/aggregate.js';
import type { ServiceStats, ShardStats } from '../../src/shared/thread-messages.js';

const T = { timeout: 5_000 };

function svc(over: Partial<ServiceStats>): ServiceStats {
  return { open: 0, opened: 0, closed: 0, reset: {}, refused: {}, bytesIn: 0, bytesOut: 0, ...over };
}

function shard(index: number, startedAt: number, services: Record<string, ServiceStats>, lateDropped = 0): ShardStats {
  return {
    index, streams: 0, opened: 0, closed: 0, resets: {}, lateDropped, peakStreamBufferedBytes: 0, bytesIn: 0, bytesOut: 0,
    services, loopDelay: { p99Ms: 0, maxMs: 0 }, startedAt,
  };
}

test('sums services over shards', T, () => {
  const a = createAggregator();
  const t = a.update([
    shard(0, 1, { web: svc({ open: 2, opened: 5, closed: 3, bytesIn: 100, reset: { DIAL_FAILED: 1 }, refused: { DIAL_FAILED: 1 } }) }),
    shard(1, 1, { web: svc({ open: 1, opened: 1, bytesOut: 7 }), '': svc({ opened: 1, reset: { UNKNOWN_SERVICE: 1 } }) }, 2),
  ]);
  assert.deepEqual(t.services.get('web'), svc({ open: 3, opened: 6, closed: 3, bytesIn: 100, bytesOut: 7, reset: { DIAL_FAILED: 1 }, refused: { DIAL_FAILED: 1 } }));
  assert.equal(t.services.get('')?.reset.UNKNOWN_SERVICE, 1);
  assert.equal(t.lateDropped, 2);
});

test('a restarted shard: its old counters stay counted, its old open streams do not', T, () => {
  const a = createAggregator();
  a.update([shard(0, 1, { web: svc({ open: 4, opened: 10, closed: 6, bytesIn: 1000 }) }, 3)]);
  const t = a.update([shard(0, 2, { web: svc({ open: 1, opened: 1, bytesIn: 10 }) }, 1)]);
  assert.deepEqual(t.services.get('web'), svc({ open: 1, opened: 11, closed: 6, bytesIn: 1010 }));
  assert.equal(t.lateDropped, 4);
  // and again later, without a restart: nothing counted twice
  const u = a.update([shard(0, 2, { web: svc({ open: 0, opened: 2, closed: 1, bytesIn: 20 }) }, 1)]);
  assert.deepEqual(u.services.get('web'), svc({ opened: 12, closed: 7, bytesIn: 1020 }));
});

test('a shard that did not answer keeps its last figures', T, () => {
  const a = createAggregator();
  a.update([shard(0, 1, { web: svc({ open: 1, opened: 3 }) }), shard(1, 1, { web: svc({ opened: 2 }) })]);
  const t = a.update([null, shard(1, 1, { web: svc({ opened: 5 }) })]);
  assert.equal(t.services.get('web')?.opened, 8);
  assert.equal(t.services.get('web')?.open, 1);
  assert.equal(t.shards.length, 2);
});
