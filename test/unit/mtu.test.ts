// The MTU a side states (src/webrtc/mtu.ts): 1280 where the path may cross the internet, the
// interface's (capped by what libjuice can read) where ICE is bound to one address with no server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultMtu, isMtu, DEFAULT_MTU, MAX_MTU, MIN_MTU } from '../../src/webrtc/mtu.js';
import { iceOptions } from '../../src/options.js';
import { TunnelError } from '../../src/errors.js';

const T = { timeout: 5_000 };

test('loopback without ICE servers: the largest MTU libjuice reads (4140); otherwise the safe default', T, () => {
  assert.equal(MAX_MTU, 4140);
  assert.equal(defaultMtu('127.0.0.1', 0), MAX_MTU, 'the loopback interface has a 64 KiB MTU, capped');
  assert.equal(defaultMtu('127.0.0.1', 1), DEFAULT_MTU, 'a STUN/TURN server may take the path elsewhere');
  assert.equal(defaultMtu(undefined, 0), DEFAULT_MTU, 'no bind: ICE may use any interface');
  assert.equal(defaultMtu('192.0.2.123', 0), DEFAULT_MTU, 'an address of no interface here');
});

test('an --mtu outside 576..4140 is a BAD_FLAG naming the limit; inside, it is taken', T, () => {
  assert.ok(isMtu(MIN_MTU) && isMtu(MAX_MTU) && !isMtu(MIN_MTU - 1) && !isMtu(MAX_MTU + 1) && !isMtu(1280.5));
  assert.equal(iceOptions({ mtu: 1500 }, () => {}).mtu, 1500);
  assert.equal(iceOptions({ iceBind: '127.0.0.1' }, () => {}).mtu, MAX_MTU);
  for (const bad of [8192, 100]) {
    assert.throws(() => iceOptions({ mtu: bad }, () => {}), (err: unknown) => err instanceof TunnelError && err.code === 'BAD_FLAG' && /576 to 4140/.test(err.message));
  }
});
