// The latency breakdown's analysis (bench/breakdown.ts): synthetic stamps in, segments out. A ping
// whose window holds an extra event (a keepalive, a credit update) is left out, not guessed at.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyze } from '../../bench/breakdown.js';
import { TraceEvent } from '../../src/shared/trace.js';

const { READ, SEND, SENT, MESSAGE, WRITE } = TraceEvent;
const us = (n: number) => BigInt(n * 1000);

test('segments of a ping follow the stamps; a ping with a stray event is left out', { timeout: 5000 }, () => {
  const pings: [bigint, bigint][] = [];
  const client: [TraceEvent, bigint][] = [];
  const host: [TraceEvent, bigint][] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = 10_000 * (i + 1);
    // load write at t0; client read +40, send call +20, returns +60; host message +100, write +15;
    // echo back +110; host send +20, returns +60; client message +100, write +15; load read +70
    client.push([READ, us(t0 + 40)], [SEND, us(t0 + 60)], [SENT, us(t0 + 120)]);
    host.push([MESSAGE, us(t0 + 220)], [WRITE, us(t0 + 235)], [READ, us(t0 + 345)], [SEND, us(t0 + 365)], [SENT, us(t0 + 425)]);
    client.push([MESSAGE, us(t0 + 525)], [WRITE, us(t0 + 540)]);
    pings.push([us(t0), us(t0 + 610)]);
  }
  host.push([SEND, us(20_300)], [SENT, us(20_310)]); // a keepalive inside the second ping
  const b = analyze(pings, client.reverse(), host); // order of the input does not matter
  assert.equal(b.pings, 3);
  assert.equal(b.matched, 2);
  assert.deepEqual(b.segments.map((s) => s.p50), [40, 20, 60, 100, 15, 110, 20, 60, 100, 15, 70, 610]);
  assert.deepEqual(b.segments.filter((s) => s.kind === 'tunnel').map((s) => s.label), [
    'client read -> sendMessageBinary', 'host message -> TCP write', 'host read -> sendMessageBinary', 'client message -> TCP write',
  ]);
});
