// The ICE flags on one machine, with real PeerConnections: a TURN URL (with a percent-encoded
// password) is accepted even where no TURN server answers, the session then goes direct; and
// --ice-port-range keeps each side's ICE port inside its range.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHost } from '../../src/host.js';
import { startClient } from '../../src/client.js';
import { releaseDataChannelLibrary } from '../../src/webrtc/peer.js';
import { startEchoService, unusedPort } from '../support/services.js';
import { eventually } from '../support/timing.js';
import { destroyAllSockets, echoRoundTrip } from '../support/traffic.js';
import { startMitm } from '../support/ws-mitm.js';
import { decodeInner, decodePlain } from '../../src/signaling/codec.js';

after(() => releaseDataChannelLibrary());

const port = (address: string | undefined) => Number(address?.split(':').pop());

test('a turn: URL is accepted; --ice-port-range holds each side\'s ICE port; the path is direct', { timeout: 60_000 }, async () => {
  const echo = await startEchoService();
  const nowhere = await unusedPort(); // nothing answers TURN there: the relay candidate never comes
  const iceServers = [`turn:tunnel:p%40ss%3Aword@127.0.0.1:${nowhere}`];
  const host = await startHost({
    pin: '55554444', listen: '127.0.0.1:0', workers: 1, iceBind: '127.0.0.1', logLevel: 'error',
    iceServers, icePortRange: { min: 47100, max: 47109 },
    services: { echo: { host: '127.0.0.1', port: echo.port } },
  });
  const forward = await unusedPort();
  const client = await startClient({
    connect: host.url, pin: '55554444', workers: 1, iceBind: '127.0.0.1', logLevel: 'error', reconnect: false,
    iceServers, icePortRange: { min: 47110, max: 47119 },
    forwards: [{ host: '127.0.0.1', port: forward, service: 'echo' }],
  });
  try {
    const path = client.path();
    assert.equal(path?.relayed, false);
    const clientPort = port(path?.local);
    assert.ok(clientPort >= 47110 && clientPort <= 47119, `client ICE port ${clientPort}`);
    assert.ok(await eventually(() => host.paths().length === 1, 5000));
    const hostPort = port(host.paths()[0]?.path?.local);
    assert.ok(hostPort >= 47100 && hostPort <= 47109, `host ICE port ${hostPort}`);
    const r = await echoRoundTrip(forward, 1024 * 1024, 70);
    assert.equal(r.receivedHash, r.sentHash);
  } finally {
    destroyAllSockets();
    await client.close();
    await host.close();
    await echo.close();
  }
});

// src/signaling/client-handshake.ts: on one network a PeerConnection's candidates wait for its answer,
// so the host's checks cannot reach the client before the client's own have connected; with a
// STUN/TURN server (a NAT may sit between) they go at once, since the host's checks open its NAT.
// With a TURN server the client also offers to be the DTLS client (src/webrtc/sdp.ts), and the
// session opens that way too.
for (const [servers, hostTurn] of [[false, false], [true, false], [true, true]] as const) {
  const title = !servers ? 'on one network the client sends no candidate of a PeerConnection before its answer, and the host is the DTLS client'
    : `with a TURN server the client sends candidates at once, and ${hostTurn ? 'with the host\'s own TURN server the host stays the DTLS client' : 'is the DTLS client'}`;
  test(title, { timeout: 60_000 }, async () => {
    const echo = await startEchoService();
    const iceServers = servers ? [`turn:tunnel:pass@127.0.0.1:${await unusedPort()}`] : [];
    const host = await startHost({ pin: '55554444', listen: '127.0.0.1:0', workers: 0, iceBind: '127.0.0.1', logLevel: 'error', iceServers: hostTurn ? iceServers : [], services: { echo: { host: '127.0.0.1', port: echo.port } } });
    const mitm = await startMitm(host.url);
    const forward = await unusedPort();
    const client = await startClient({ connect: mitm.url, pin: '55554444', workers: 0, iceBind: '127.0.0.1', logLevel: 'error', reconnect: false, lanes: 2, iceServers, forwards: [{ host: '127.0.0.1', port: forward, service: 'echo' }] });
    try {
      const r = await echoRoundTrip(forward, 64 * 1024, 70);
      assert.equal(r.receivedHash, r.sentHash);
      const answered = new Set<number>();
      const early = new Set<number>();
      const candidates = new Set<number>();
      const setups = new Set<string>();
      for (const frame of mitm.frames) {
        const plain = (() => { try { return decodePlain(frame.data); } catch { return null; } })();
        if (plain?.t !== 'mac') continue; // the PAKE before, the data plane after (none here)
        const inner = decodeInner(plain.body);
        if (frame.dir === 'h2c' && inner.t === 'sdp') answered.add(inner.pc);
        if (frame.dir === 'c2h' && inner.t === 'sdp') for (const m of inner.sdp.matchAll(/^a=setup:(\w+)/gm)) setups.add(m[1] ?? '');
        if (frame.dir === 'c2h' && inner.t === 'cand') {
          candidates.add(inner.pc);
          if (!answered.has(inner.pc)) early.add(inner.pc);
        }
      }
      assert.deepEqual([...answered].sort(), [0, 1, 2], 'three PeerConnections (small + 2 lanes) were answered');
      assert.deepEqual([...candidates].sort(), [0, 1, 2], 'each sent candidates');
      // src/webrtc/sdp.ts: a client that may be relayed is the DTLS client (libdatachannel 0.24.5's
      // deadlock of a relayed DTLS server); otherwise libdatachannel's default, the host
      assert.deepEqual([...setups], [servers && !hostTurn ? 'active' : 'actpass'], 'the DTLS role the client offers');
      if (servers) assert.ok(early.size > 0, 'candidates went out before the answers came');
      else assert.deepEqual([...early], [], 'no candidate went out before its PeerConnection\'s answer');
    } finally {
      destroyAllSockets();
      await client.close();
      await mitm.close();
      await host.close();
      await echo.close();
    }
  });
}
