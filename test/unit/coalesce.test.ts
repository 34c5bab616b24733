// Joining a turn's small packets (src/dataplane/coalesce.ts): order kept, size bound kept, and every
// shard's bytes accounted for exactly.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coalesce, type Outgoing } from '../../src/dataplane/coalesce.js';
import { encodePacket, decodePackets, PacketType } from '../../src/shared/packet.js';
import { prng } from '../support/prng.js';

const T = { timeout: 5_000 };

const piece = (shard: number, id: number, bytes: number): Outgoing => ({ message: encodePacket(PacketType.DATA, id, 0, new Uint8Array(bytes)), shard });

test('one piece stays as it is; nothing gives nothing', T, () => {
  const one = piece(1, 5, 10);
  assert.deepEqual(coalesce([one], 2, 1000), [one]);
  assert.deepEqual(coalesce([], 2, 1000), []);
});

test('random pieces: order kept, no message over the bound unless a piece is, each shard credited exactly its bytes', T, () => {
  const random = prng(77);
  for (let round = 0; round < 200; round++) {
    const shards = 1 + Math.floor(random() * 4);
    const max = 200 + Math.floor(random() * 2000);
    const pieces = Array.from({ length: 1 + Math.floor(random() * 40) }, (_, i) => piece(Math.floor(random() * (shards + 1)) - 1, i, Math.floor(random() * 300)));
    const out = coalesce(pieces, shards, max);
    assert.deepEqual(out.flatMap((o) => decodePackets(o.message)).map((p) => p.streamId), pieces.map((_, i) => i), 'every packet once, in order');
    for (const o of out) {
      const alone = o.mix === undefined;
      assert.ok(alone || o.message.byteLength <= max, `a joined message of ${o.message.byteLength} B over ${max}`);
    }
    const want = new Array<number>(shards).fill(0);
    for (const p of pieces) if (p.shard >= 0) want[p.shard] = (want[p.shard] ?? 0) + p.message.byteLength;
    const got = new Array<number>(shards).fill(0);
    for (const o of out) {
      if (o.mix) o.mix.forEach((n, i) => { got[i] = (got[i] ?? 0) + n; });
      else if (o.shard >= 0) got[o.shard] = (got[o.shard] ?? 0) + o.message.byteLength;
    }
    assert.deepEqual(got, want);
  }
});
