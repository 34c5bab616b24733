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
