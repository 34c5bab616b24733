// Hostile signaling input: raw WebSocket frames that no real client sends — random bytes, text,
// oversized frames, valid msgpack of the wrong shapes, another protocol version, messages out of
// order before and after the PAKE, silence, and more connections than the host takes. The host must
// refuse each with the right error and keep serving good clients. (A hostile peer past signaling,
// on the DataChannel: hostile-peer.test.ts.)

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { pack } from 'msgpackr';
import type { HostHandle } from '../../src/host.js';
import { addMac, type MacState } from '../../src/signaling/auth.js';
import { encodeSignal, PROTOCOL_VERSION, MAX_PEER_CONNECTIONS, MAX_WEBSOCKET_MESSAGE_BYTES } from '../../src/signaling/codec.js';
import { PIN, FIXTURES, spawnNode } from '../support/cli.js';
import { checkFreshClient, releaseAtEnd, startHostSide, startTestClient, type HostSide } from '../support/pair.js';
import { rawAuthenticated, rawConnect, refusal, type Raw } from '../support/raw-signaling.js';
import { echoExact } from '../support/traffic.js';
import { sleep, within } from '../support/timing.js';
import { prng } from '../support/prng.js';

releaseAtEnd();

describe('hostile signaling input', { timeout: 60_000 }, () => {
  let side: HostSide;
  let host: HostHandle;
  const connect = async () => side.add(await rawConnect(host.url), 'raw signaling connection');

  before(async () => {
    // a generous guard: connections that say hello and then misbehave count as failed guesses
    side = await startHostSide({ host: { guard: { maxFailuresPerAddress: 10_000, maxFailuresGlobal: 10_000 } } });
    host = side.host;
  }, { timeout: 30_000 });
  after(() => side?.close(), { timeout: 30_000 });

  it('random binary frames are refused with SIGNALING_PROTOCOL', { timeout: 30_000 }, async () => {
    const random = prng(0x5eed);
    for (let batch = 0; batch < 10; batch++) {
      const conns = await Promise.all(Array.from({ length: 20 }, () => connect()));
      for (const r of conns) {
        const frame = randomBytes(1 + Math.floor(random() * 300));
        if (batch % 2 === 0) frame[0] = 0x80 | (frame[0]! & 0x0f); // a msgpack map header, to get past the first byte
        r.ws.send(frame);
      }
      for (const r of conns) {
        const { error } = await refusal(r);
        assert.equal(error?.code, 'SIGNALING_PROTOCOL', JSON.stringify(error));
      }
    }
  });

  it('a text frame is refused', { timeout: 10_000 }, async () => {
    const r = await connect();
    r.ws.send(JSON.stringify({ t: 'hello', v: PROTOCOL_VERSION }));
    const { error } = await refusal(r);
    assert.equal(error?.code, 'SIGNALING_PROTOCOL');
    assert.match(error?.message ?? '', /binary/);
  });

  it('a frame over 64 KiB closes the connection', { timeout: 10_000 }, async () => {
    // a signaling message over 64 KiB is refused by the codec (the WebSocket itself admits sealed
    // fallback messages up to MAX_WEBSOCKET_MESSAGE_BYTES), and a frame past that by the WebSocket
    const r = await connect();
    r.ws.send(pack({ t: 'hello', v: PROTOCOL_VERSION, pad: Buffer.alloc(64 * 1024 + 16) }));
    const refused = await refusal(r);
    assert.equal(refused.code, 1008, 'closed as a policy violation');
    assert.match(refused.error?.message ?? '', /exceeds 65536/);
    const r2 = await connect();
    r2.ws.send(Buffer.alloc(MAX_WEBSOCKET_MESSAGE_BYTES + 1));
    const { code } = await refusal(r2);
    assert.equal(code, 1009, 'closed as "message too big"');
  });

  it('valid msgpack of the wrong shapes is refused', { timeout: 20_000 }, async () => {
    const bytes = (n: number) => Buffer.alloc(n, 7);
    const shapes: unknown[] = [
      1, -1, 'hello', null, true, 1.5, [], ['hello', 1], {}, { t: 1 }, { t: null }, { t: ['hello'] }, { t: 'nope' },
      { t: 'hello' }, { t: 'hello', v: '1' }, { t: 'hello', v: null }, { t: 'hello', v: 1, session: 'x' }, { t: 'hello', v: 1, yb: bytes(31) },
      { t: 'auth' }, { t: 'auth', ya: bytes(31), confirm: bytes(32) }, { t: 'auth', ya: 'x'.repeat(32), confirm: bytes(32) },
      { t: 'mac' }, { t: 'mac', n: 0, body: bytes(0), mac: bytes(32) }, { t: 'mac', n: -1, body: bytes(4), mac: bytes(32) },
      { t: 'mac', n: 1e300, body: bytes(4), mac: bytes(32) }, { t: 'mac', n: 0, body: bytes(4), mac: bytes(31) },
      { t: 'error' }, { t: 'error', code: 'x'.repeat(100), message: 'm' }, { t: 'error', code: 'X', message: 'm' },
      { t: 'welcome', services: ['echo'], confirm: bytes(32) }, { t: 'sdp', sdp: 'v=0', type: 'offer' }, { t: 'cand', cand: 'c', mid: '0' },
      { t: 'x'.repeat(60_000) }, { t: 'auth', ya: bytes(32), confirm: bytes(32), deep: [[[[[[[[[[1]]]]]]]]]] },
      { __proto__: { t: 'hello', v: 1 } }, { t: 'constructor' }, { t: '__proto__', v: 1 }, { t: 'toString', v: 1 },
    ];
    const frames: Buffer[] = shapes.map((s) => pack(s));
    frames.push(Buffer.alloc(60_000, 0x91)); // arrays nested 60,000 deep
    frames.push(Buffer.from('dd7fffffff', 'hex')); // an array that claims 2^31 items
    frames.push(Buffer.from('db7fffffff', 'hex')); // a string that claims 2 GiB
    frames.push(Buffer.from('c7ff42', 'hex')); // an extension cut short
    frames.push(Buffer.from('d4720082a174a568656c6c6fa17601', 'hex')); // a msgpackr record, truncated
    for (let i = 0; i < frames.length; i += 10) {
      const conns = await Promise.all(frames.slice(i, i + 10).map(async (f) => { const r = await connect(); r.ws.send(f); return r; }));
      for (const [j, r] of conns.entries()) {
        const { error } = await refusal(r);
        assert.ok(error, `frame ${i + j} (${frames[i + j]!.subarray(0, 16).toString('hex')}) was refused with an error message`);
        assert.equal(error.code, 'SIGNALING_PROTOCOL', `frame ${i + j}: ${JSON.stringify(error)}`);
      }
    }
  });

  it('a hello of another protocol version gets an error naming both versions', { timeout: 10_000 }, async () => {
    const r = await connect();
    r.ws.send(encodeSignal({ t: 'hello', v: 99 }));
    const { error } = await refusal(r);
    assert.equal(error?.code, 'VERSION_MISMATCH');
    assert.match(error?.message ?? '', new RegExp(`\\b${PROTOCOL_VERSION}\\b`));
    assert.match(error?.message ?? '', /\b99\b/);
  });

  it('out-of-order messages are refused, before and after the PAKE', { timeout: 20_000 }, async () => {
    const auth = { t: 'auth', ya: randomBytes(32), confirm: randomBytes(32) };
    const macd = { t: 'mac', n: 0, body: pack({ t: 'sdp', sdp: 'v=0', type: 'offer' }), mac: randomBytes(32) };
    // auth or a MAC'd message before hello
    for (const first of [auth, macd]) {
      const r = await connect();
      r.ws.send(pack(first));
      const { error } = await refusal(r);
      assert.equal(error?.code, 'SIGNALING_PROTOCOL', JSON.stringify(error));
      assert.match(error?.message ?? '', /expected hello/);
    }
    // hello twice; a MAC'd message instead of auth
    for (const second of [{ t: 'hello', v: PROTOCOL_VERSION }, macd]) {
      const r = await connect();
      r.ws.send(encodeSignal({ t: 'hello', v: PROTOCOL_VERSION }));
      assert.equal((await r.next()).t, 'hello');
      r.ws.send(pack(second));
      const { error } = await refusal(r);
      assert.equal(error?.code, 'SIGNALING_PROTOCOL', JSON.stringify(error));
    }
    // an auth with an invalid point (all zeros) is a failed guess, not a crash
    {
      const r = await connect();
      r.ws.send(encodeSignal({ t: 'hello', v: PROTOCOL_VERSION }));
      await r.next();
      r.ws.send(encodeSignal({ t: 'auth', ya: new Uint8Array(32), confirm: new Uint8Array(32) }));
      const { error } = await refusal(r);
      assert.equal(error?.code, 'WRONG_PIN', JSON.stringify(error));
    }
    // after the PAKE (knowing the PIN): a plain message, an SDP answer, a MAC'd welcome, an offer
    // for a PeerConnection past the most a session may have, an offer before the client's params
    // said how many it offers (and not SDP either), a counter that skips
    const afterPake: ((s: MacState) => Buffer)[] = [
      () => encodeSignal({ t: 'hello', v: PROTOCOL_VERSION }),
      (s) => encodeSignal(addMac(s, { t: 'sdp', sdp: 'v=0', type: 'answer', pc: 0 })),
      (s) => encodeSignal(addMac(s, { t: 'welcome', services: [], window: { initial: 256 * 1024, max: 1048576 }, confirm: new Uint8Array(32), fb: false, mtu: 1280, lanes: 4, rid: new Uint8Array(16), relay: false })),
      (s) => encodeSignal(addMac(s, { t: 'sdp', sdp: 'v=0', type: 'offer', pc: MAX_PEER_CONNECTIONS } as never)),
      (s) => encodeSignal(addMac(s, { t: 'sdp', sdp: 'this is not SDP\r\na=fingerprint:sha-256 zz\r\n', type: 'offer', pc: 0 })),
      (s) => { s.sent = 5; return encodeSignal(addMac(s, { t: 'cand', cand: 'candidate:1 1 UDP 1 127.0.0.1 9 typ host', mid: '0', pc: 0 })); },
      (s) => encodeSignal(addMac(s, { t: 'cand', cand: 'candidate:1 1 UDP 1 127.0.0.1 99999999 typ host', mid: '0', pc: 0 })), // before any offer: ignored
    ];
    for (const [i, make] of afterPake.entries()) {
      const { raw, macs } = await rawAuthenticated(host.url, PIN);
      side.add(raw, 'raw signaling connection');
      raw.ws.send(make(macs));
      if (i === afterPake.length - 1) {
        // a candidate before the offer is ignored, not fatal; an offer that is not SDP then is refused
        await sleep(200);
        assert.equal(raw.ws.readyState, WebSocket.OPEN, 'a stray candidate does not end the session');
        raw.ws.send(encodeSignal(addMac(macs, { t: 'sdp', sdp: 'v=0\r\n', type: 'offer', pc: 0 })));
      }
      const { error } = await refusal(raw);
      assert.ok(error && ['SIGNALING_PROTOCOL', 'SIGNALING_AUTH'].includes(error.code), `case ${i}: ${JSON.stringify(error)}`);
    }
  });

  it('a connection that never speaks does not hold up others; afterwards a good client moves bytes', { timeout: 30_000 }, async () => {
    const silent = await connect();
    const { client, port } = await startTestClient(host.url);
    side.add(client, 'client');
    await echoExact(port.echo, randomBytes(1024 * 1024));
    assert.equal(silent.ws.readyState, WebSocket.OPEN, 'the silent connection is still waiting (its timeout is 10 s)');
    assert.equal(host.peers(), 1);
    // the host's signaling still answers a fresh raw hello
    const r = await connect();
    r.ws.send(encodeSignal({ t: 'hello', v: PROTOCOL_VERSION }));
    assert.equal((await r.next()).t, 'hello');
    r.ws.terminate();
  });

  it('past maxClients signaling connections, new ones are refused with BUSY', { timeout: 20_000 }, async () => {
    const small = await startHostSide({ host: { maxClients: 3 } });
    try {
      const mine: Raw[] = [];
      for (let i = 0; i < 3; i++) mine.push(small.add(await rawConnect(small.host.url), 'raw signaling connection'));
      const extra = small.add(await rawConnect(small.host.url), 'raw signaling connection');
      const { error } = await refusal(extra);
      assert.equal(error?.code, 'BUSY');
      for (const r of mine) r.close();
      await sleep(200);
      await checkFreshClient(small.host.url);
    } finally {
      await small.close();
    }
  });
});

describe('signaling limits leave nothing behind', { timeout: 30_000 }, () => {
  it('a connection refused as BUSY keeps no timer alive: the process ends promptly after host.close()', { timeout: 25_000 }, async () => {
    // test/support/fixtures/busy-exit.ts: maxClients 1, a second connection is refused, all is closed
    const fixture = spawnNode(path.join(FIXTURES, 'busy-exit.js'), []);
    try {
      await fixture.line(/^closed$/m, 20_000);
      const closedAt = Date.now();
      const { code } = await within(fixture.exited, 20_000, 'the fixture to exit');
      const lingered = Date.now() - closedAt;
      assert.equal(code, 0, `${fixture.stdout()}${fixture.stderr()}`);
      assert.match(fixture.stdout(), /second connection closed \(BUSY\)/);
      assert.ok(lingered < 3000, `the process lingered ${lingered} ms after host.close() (the handshake timer of the BUSY connection)`);
    } finally {
      await fixture.stop();
    }
  });
});
