// The routing table (src/dataplane/routes.ts): host admission and its limit, client routes learnt
// from a stream's first packet, and what a lost shard takes with it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRoutes, Route } from '../../src/dataplane/routes.js';
import { PacketType } from '../../src/shared/packet.js';
import { hostShardFor } from '../../src/shared/stream-id.js';

const T = { timeout: 5_000 };

test('host: a packet that may open a stream is admitted on the shard its id hashes to; others are dropped', T, () => {
  const routes = createRoutes('host', 4, 10);
  routes.addPeer(1);
  for (const type of [PacketType.CONNECT, PacketType.DATA, PacketType.FIN]) {
    const id = 100 + type;
    assert.equal(routes.inbound(1, id, type), hostShardFor(1, id, 4));
  }
  assert.equal(routes.inbound(1, 200, PacketType.WINDOW), Route.DROP, 'a WINDOW for an unknown stream is late');
  assert.equal(routes.inbound(1, 201, PacketType.RESET), Route.DROP);
  assert.equal(routes.inbound(2, 100, PacketType.CONNECT), Route.DROP, 'an unknown peer');
  assert.equal(routes.count(1), 3);
  // a DATA flagged TWICE never opens one (a late copy of a stream that ended), but routes to a known one
  assert.equal(routes.inbound(1, 300, PacketType.DATA, true), Route.DROP);
  assert.equal(routes.inbound(1, 100 + PacketType.DATA, PacketType.DATA, true), hostShardFor(1, 100 + PacketType.DATA, 4));
  assert.equal(routes.count(1), 3);
});

test('host: past maxStreamsPerPeer a new stream is refused; known ones still route; release makes room', T, () => {
  const routes = createRoutes('host', 2, 2);
  routes.addPeer(1);
  const a = routes.inbound(1, 1, PacketType.CONNECT);
  routes.inbound(1, 2, PacketType.CONNECT);
  assert.equal(routes.inbound(1, 3, PacketType.CONNECT), Route.REFUSE);
  assert.equal(routes.inbound(1, 1, PacketType.DATA), a);
  routes.release(1, [2]);
  assert.ok(routes.inbound(1, 3, PacketType.CONNECT) >= 0);
});

test('client: nothing is admitted from the peer; a route is learnt from the shard that sends first, as its id says', T, () => {
  const routes = createRoutes('client', 2, 10);
  routes.addPeer(0);
  assert.equal(routes.inbound(0, 0x01_000005, PacketType.DATA), Route.DROP);
  routes.outbound(0, 0x01_000005, 1);
  assert.equal(routes.inbound(0, 0x01_000005, PacketType.DATA), 1);
  routes.outbound(0, 0x07_000001, 0); // an id naming a shard that does not exist: the sender owns it
  assert.equal(routes.inbound(0, 0x07_000001, PacketType.WINDOW), 0);
});

test('takeShard removes and returns every route of one shard, of every peer', T, () => {
  const routes = createRoutes('client', 2, 10);
  routes.addPeer(0);
  routes.outbound(0, 0x00_000001, 0);
  routes.outbound(0, 0x01_000002, 1);
  routes.outbound(0, 0x00_000003, 0);
  assert.deepEqual(routes.takeShard(0).map((r) => r.id).sort(), [1, 3]);
  assert.equal(routes.count(0), 1);
  routes.removePeer(0);
  assert.equal(routes.count(0), 0);
});
