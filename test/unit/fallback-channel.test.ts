// The fallback channel over a fake signaling connection and carrier: what the dispatcher relies on
// (sealed messages out, opened messages in, early messages held, bufferedAmount and the low-water
// callback), and that anything that does not verify ends it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFallbackChannel } from '../../src/signaling/fallback-channel.js';
import { createOpener, createSealer } from '../../src/signaling/seal.js';
import type { Carrier, SignalConn } from '../../src/signaling/conn.js';
import { MAX_FALLBACK_MESSAGE_BYTES } from '../../src/signaling/codec.js';

const T = { timeout: 5_000 };
const A = new Uint8Array(32).fill(1);
const B = new Uint8Array(32).fill(2);

function fakes() {
  const sent: Uint8Array[] = [];
  let deliver: (data: Uint8Array | null) => void = () => {};
  const carrier = { buffered: 0 };
  const conn: SignalConn = {
    remote: 'test', relayed: false,
    send: (data) => { sent.push(data); },
    onMessage: (h) => { deliver = h; },
    onClose: () => {},
    close: () => {},
    terminate: () => {},
  };
  const c: Carrier = { local: '127.0.0.1:1', remote: '127.0.0.1:2', bufferedAmount: () => carrier.buffered, ping: async () => 3 };
  return { sent, deliver: (d: Uint8Array | null) => deliver(d), carrier, conn, c };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('messages go out sealed under the send key and come in opened under the receive key', T, async () => {
  const f = fakes();
  const errors: string[] = [];
  const ch = createFallbackChannel(f.conn, f.c, { send: A, receive: B }, (r) => errors.push(r), 7);
  const got: Buffer[] = [];
  ch.onMessage((m) => got.push(m as Buffer));
  await tick();
  assert.equal(ch.sendMessageBinary(Buffer.from('hello')), true);
  const open = createOpener(A);
  assert.deepEqual(open(f.sent[0] ?? new Uint8Array(0)), Buffer.from('hello'));
  const peer = createSealer(B);
  f.deliver(peer(Buffer.from('one')));
  f.deliver(peer(Buffer.from('two')));
  assert.deepEqual(got.map(String), ['one', 'two']);
  assert.equal(ch.rttMs(), 7);
  assert.equal(ch.isOpen(), true);
  assert.deepEqual(errors, []);
  ch.close();
  assert.equal(ch.isOpen(), false);
  assert.throws(() => ch.sendMessageBinary(Buffer.from('late')));
});

test('messages before the data plane attaches are held, then delivered in order on a later tick', T, async () => {
  const f = fakes();
  const ch = createFallbackChannel(f.conn, f.c, { send: A, receive: B }, () => {});
  const peer = createSealer(B);
  f.deliver(peer(Buffer.from('early 1')));
  f.deliver(peer(Buffer.from('early 2')));
  const got: string[] = [];
  ch.onMessage((m) => got.push(String(m)));
  assert.deepEqual(got, [], 'not while the caller is still attaching');
  f.deliver(peer(Buffer.from('later')));
  await tick();
  f.deliver(peer(Buffer.from('last')));
  assert.deepEqual(got, ['early 1', 'early 2', 'later', 'last']);
  ch.close();
});

test('a message that does not verify, or a text message, ends the channel with the reason', T, () => {
  for (const bad of [Buffer.from('not sealed at all, long enough'), null]) {
    const f = fakes();
    const errors: string[] = [];
    const ch = createFallbackChannel(f.conn, f.c, { send: A, receive: B }, (r) => errors.push(r));
    ch.onMessage(() => assert.fail('nothing is delivered'));
    f.deliver(bad);
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? '', bad ? /failed authentication/ : /text message/);
    assert.equal(ch.isOpen(), false);
    f.deliver(createSealer(B)(Buffer.from('genuine, but too late')));
    assert.equal(errors.length, 1);
  }
});

test('bufferedAmount is the WebSocket\'s; the low-water callback fires once it drains; oversized messages throw', T, async () => {
  const f = fakes();
  const ch = createFallbackChannel(f.conn, f.c, { send: A, receive: B }, () => {});
  ch.setBufferedAmountLowThreshold(1000);
  let lows = 0;
  ch.onBufferedAmountLow(() => { lows++; });
  f.carrier.buffered = 5000;
  assert.equal(ch.bufferedAmount(), 5000);
  ch.sendMessageBinary(Buffer.alloc(10));
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(lows, 0, 'still above the mark');
  f.carrier.buffered = 500;
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(lows, 1, 'fired once on draining');
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(lows, 1, 'and only once');
  assert.throws(() => ch.sendMessageBinary(Buffer.alloc(MAX_FALLBACK_MESSAGE_BYTES + 1)), RangeError);
  ch.close();
});
