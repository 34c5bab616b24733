// The rendezvous code and the relay's frames: pure functions, no relay.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeCode, normalizeId, parseCode, parseRelayUrl, randomId, hostRelayId, clientRelayId, ID_CHARS } from '../../src/signaling/rendezvous-code.js';
import { parseRelayFrame } from '../../src/signaling/relay.js';
import { MAX_SIGNAL_BYTES } from '../../src/signaling/codec.js';
import { TunnelError } from '../../src/errors.js';

const T = { timeout: 5_000 };

test('a code is the id and the PIN, read back in any case, with o as 0 and i, l as 1', T, () => {
  assert.equal(makeCode('k7m2x9qa', '48213905'), 'k7m2x9qa-48213905');
  assert.deepEqual(parseCode('k7m2x9qa-48213905'), { id: 'k7m2x9qa', pin: '48213905' });
  assert.deepEqual(parseCode('  K7M2X9QA-48213905 '), { id: 'k7m2x9qa', pin: '48213905' });
  assert.deepEqual(parseCode('OIL23456-1'), { id: '01123456', pin: '1' });
  assert.deepEqual(parseCode('k7m2x9qa-pin-with-dashes'), { id: 'k7m2x9qa', pin: 'pin-with-dashes' });
  assert.deepEqual(parseCode('k7m2x9qa'), { id: 'k7m2x9qa', pin: undefined }, 'the PIN may come from elsewhere');
  for (const bad of ['', '-1234', 'k7m2x9qa-', 'uuuuuuuu-1', 'k7m!x9qa-1', 'abc-1', 'a'.repeat(33)]) {
    assert.throws(() => parseCode(bad), (err: unknown) => err instanceof TunnelError && err.code === 'BAD_FLAG', bad);
  }
});

test('random ids: 8 characters of the unambiguous alphabet, all different', T, () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const id = randomId();
    assert.match(id, /^[0-9a-hjkmnp-tv-z]{8}$/);
    assert.equal(normalizeId(id), id);
    seen.add(id);
  }
  assert.equal(seen.size, 2000);
  assert.equal(ID_CHARS, 8);
  assert.equal(hostRelayId('k7m2x9qa'), 'tunnel-k7m2x9qa');
  assert.match(clientRelayId(), /^tunnel-client-[0-9a-hjkmnp-tv-z]{16}$/);
});

test('the relay URL: ws, wss, http(s) as ws(s), a path, a key', T, () => {
  assert.deepEqual(parseRelayUrl('ws://relay.example:9000'), { name: 'ws://relay.example:9000', socket: 'ws://relay.example:9000/peerjs', key: 'peerjs' });
  assert.deepEqual(parseRelayUrl('https://relay.example/myapp/?key=s3'), { name: 'wss://relay.example/myapp', socket: 'wss://relay.example/myapp/peerjs', key: 's3' });
  assert.deepEqual(parseRelayUrl('http://127.0.0.1:9000/'), { name: 'ws://127.0.0.1:9000', socket: 'ws://127.0.0.1:9000/peerjs', key: 'peerjs' });
  for (const bad of ['relay.example:9000', 'ftp://relay.example', 'not a url']) {
    assert.throws(() => parseRelayUrl(bad), (err: unknown) => err instanceof TunnelError && err.code === 'BAD_FLAG', bad);
  }
});

test('relay frames: the ones we take, bounded; everything else ignored', T, () => {
  const d = Buffer.from([1, 2, 3]).toString('base64');
  assert.deepEqual(parseRelayFrame('{"type":"OPEN"}'), { type: 'OPEN', msg: '' });
  assert.deepEqual(parseRelayFrame('{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}'), { type: 'ID-TAKEN', msg: 'ID is taken' });
  assert.deepEqual(parseRelayFrame('{"type":"ERROR","payload":{"msg":"Invalid key provided"}}'), { type: 'ERROR', msg: 'Invalid key provided' });
  assert.deepEqual(parseRelayFrame(JSON.stringify({ type: 'OFFER', src: 'tunnel-client-x', dst: 'h', payload: { d } })), { type: 'OFFER', src: 'tunnel-client-x', data: Buffer.from([1, 2, 3]) });
  assert.deepEqual(parseRelayFrame('{"type":"EXPIRE","src":"tunnel-abc","dst":"me"}'), { type: 'EXPIRE', src: 'tunnel-abc', data: null });
  assert.deepEqual(parseRelayFrame('{"type":"LEAVE","src":"x","payload":{}}'), { type: 'LEAVE', src: 'x', data: null });
  const ignored = [
    'not json', '[]', 'null', '1', '{"type":"HEARTBEAT"}', '{"type":"OFFER","payload":{"d":"AQID"}}', // no src
    JSON.stringify({ type: 'OFFER', src: 'x'.repeat(101), payload: { d } }),
    JSON.stringify({ type: 'OFFER', src: 'x', payload: { d: '!!not base64!!' } }),
    JSON.stringify({ type: 'OFFER', src: 'x', payload: { d: '' } }),
    JSON.stringify({ type: 'OFFER', src: 'x', payload: { d: Buffer.alloc(MAX_SIGNAL_BYTES + 1).toString('base64') } }),
    JSON.stringify({ type: 'TOSTRING', src: 'x' }), JSON.stringify({ type: '__proto__', src: 'x' }),
  ];
  for (const text of ignored) assert.equal(parseRelayFrame(text), null, text.slice(0, 60));
  assert.equal((parseRelayFrame(JSON.stringify({ type: 'OFFER', src: 'x', payload: { d: Buffer.alloc(MAX_SIGNAL_BYTES).toString('base64') } })) as { data: Uint8Array }).data.byteLength, MAX_SIGNAL_BYTES);
});
