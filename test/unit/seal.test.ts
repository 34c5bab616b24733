// The WebSocket fallback's sealing: AES-256-GCM with a counter nonce per direction. Golden vectors,
// then every way a man in the middle could meddle: a flipped bit anywhere, a replay, a reorder, a
// drop, a cut, the other direction's message.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createOpener, createSealer, SealError, TAG_BYTES } from '../../src/signaling/seal.js';
import { deriveKeys } from '../../src/signaling/pake.js';

const T = { timeout: 10_000 };
const key = (fill: number) => new Uint8Array(32).fill(fill);

test('golden: the first message of a direction is AES-256-GCM with a zero nonce (GCM spec test cases 13, 14)', T, () => {
  const seal = createSealer(key(0));
  assert.equal(seal(new Uint8Array(0)).toString('hex'), '530f8afbc74536b9a963b4f1c4cb738b');
  const seal2 = createSealer(key(0));
  assert.equal(seal2(new Uint8Array(16)).toString('hex'), 'cea7403d4d606b6e074ec5d3baf39d18' + 'd0d1c8a799996bf0265b98b5d48ab919');
  // the second message uses nonce 1: a different keystream and tag for the same plaintext
  assert.notEqual(seal2(new Uint8Array(16)).toString('hex').slice(0, 32), 'cea7403d4d606b6e074ec5d3baf39d18');
});

test('round trip, in order, of messages of every size; the ciphertext is as long as the message plus the tag', T, () => {
  const seal = createSealer(key(1));
  const open = createOpener(key(1));
  for (const n of [1, 15, 16, 17, 1000, 64 * 1024 + 16, 256 * 1024]) {
    const m = randomBytes(n);
    const sealed = seal(m);
    assert.equal(sealed.byteLength, n + TAG_BYTES);
    assert.equal(sealed.includes(m.subarray(0, Math.min(n, 32))) && n >= 16, false, 'no plaintext in the sealed bytes');
    assert.deepEqual(open(sealed), m);
  }
});

function expectBroken(open: (m: Uint8Array) => Buffer, sealed: Uint8Array, what: string): void {
  assert.throws(() => open(sealed), SealError, what);
}

test('a flipped bit anywhere (ciphertext or tag) fails, and the stream stays failed', T, () => {
  const m = randomBytes(100);
  for (let i = 0; i < 100 + TAG_BYTES; i += 7) {
    const seal = createSealer(key(2));
    const open = createOpener(key(2));
    const sealed = seal(m);
    sealed[i] = (sealed[i] ?? 0) ^ 0x80;
    expectBroken(open, sealed, `bit flipped at ${i}`);
    sealed[i] = (sealed[i] ?? 0) ^ 0x80; // even the genuine message is refused now
    expectBroken(open, sealed, 'after a failure');
  }
});

test('replay, reorder, drop, cut and the other direction\'s messages all fail', T, () => {
  const fresh = () => ({ seal: createSealer(key(3)), open: createOpener(key(3)) });
  {
    const { seal, open } = fresh();
    const a = seal(Buffer.from('first'));
    open(a);
    expectBroken(open, a, 'replayed');
  }
  {
    const { seal, open } = fresh();
    seal(Buffer.from('first'));
    expectBroken(open, seal(Buffer.from('second')), 'the first was dropped (or the second overtook it)');
  }
  {
    const { seal, open } = fresh();
    const sealed = seal(randomBytes(64));
    expectBroken(open, sealed.subarray(0, sealed.byteLength - 1), 'cut by a byte');
    expectBroken(createOpener(key(3)), sealed.subarray(0, TAG_BYTES - 1), 'shorter than a tag');
  }
  // the two directions' keys as a session derives them: a message reflected back is refused
  const keys = deriveKeys(new Uint8Array(64).fill(9));
  assert.notDeepEqual(keys.sealInitiator, keys.sealResponder);
  const toHost = createSealer(keys.sealInitiator);
  expectBroken(createOpener(keys.sealResponder), toHost(Buffer.from('reflected')), 'reflected to its sender');
  assert.deepEqual(createOpener(keys.sealInitiator)(createSealer(keys.sealInitiator)(Buffer.from('ok'))), Buffer.from('ok'));
});

test('a key must be 32 bytes', T, () => {
  assert.throws(() => createSealer(new Uint8Array(16)), RangeError);
  assert.throws(() => createOpener(new Uint8Array(33)), RangeError);
});
