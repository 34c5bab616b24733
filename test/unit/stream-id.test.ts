// Stream ids carry their client shard in the top 8 bits: at most 256 shards, and the cap on
// --workers that follows from it, tested at its edge.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { streamIdFor, nextStreamId, shardOfStreamId, hostShardFor, MAX_SHARDS, ID_HASH_MASK } from '../../src/shared/stream-id.js';
import { defaultWorkers, workerCount } from '../../src/options.js';
import { startHost } from '../../src/host.js';
import { startClient } from '../../src/client.js';
import { TunnelError } from '../../src/errors.js';

const T = { timeout: 5_000 };

test('the shard index survives in the id up to the last shard; one past it is refused', T, () => {
  for (const shard of [0, 1, 127, MAX_SHARDS - 1]) {
    const id = streamIdFor(shard, '127.0.0.1', 50000, '127.0.0.1', 9000);
    assert.equal(shardOfStreamId(id), shard);
    assert.ok(id >= 0 && id <= 0xffffffff);
  }
  assert.throws(() => streamIdFor(MAX_SHARDS, '127.0.0.1', 50000, '127.0.0.1', 9000), RangeError);
  assert.throws(() => streamIdFor(-1, '127.0.0.1', 50000, '127.0.0.1', 9000), RangeError);
});

test('probing keeps the shard bits and wraps within the hash bits', T, () => {
  const last = ((MAX_SHARDS - 1) << 24 | ID_HASH_MASK) >>> 0;
  assert.equal(nextStreamId(last), ((MAX_SHARDS - 1) << 24) >>> 0);
  assert.equal(shardOfStreamId(nextStreamId(last)), MAX_SHARDS - 1);
  assert.equal(nextStreamId(0x05_000010), 0x05_000011);
});

test('the host spreads new ids over every shard it has, and only those', T, () => {
  const seen = new Set<number>();
  for (let id = 0; id < 2000; id++) seen.add(hostShardFor(1, id, 3));
  assert.deepEqual([...seen].sort(), [0, 1, 2]);
});

test('--workers: 0 to 256 are accepted; 257, negatives and fractions are BAD_FLAG with the reason', T, async () => {
  assert.equal(workerCount(0), 0);
  assert.equal(workerCount(MAX_SHARDS), MAX_SHARDS);
  assert.equal(workerCount(undefined), defaultWorkers()); // 0 on up to 2 cores (test/unit/defaults.test.ts)
  for (const bad of [MAX_SHARDS + 1, -1, 1.5]) {
    assert.throws(() => workerCount(bad), (err: unknown) => err instanceof TunnelError && err.code === 'BAD_FLAG' && /from 0 to 256/.test(err.message));
  }
  // both sides refuse before starting anything
  await assert.rejects(startHost({ workers: MAX_SHARDS + 1, listen: '127.0.0.1:0', services: { a: { host: '127.0.0.1', port: 1 } } }), { code: 'BAD_FLAG' });
  await assert.rejects(startClient({ workers: MAX_SHARDS + 1, connect: 'ws://127.0.0.1:1', pin: '1', forwards: [{ host: '127.0.0.1', port: 1, service: 'a' }] }), { code: 'BAD_FLAG' });
});
