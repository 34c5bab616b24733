// TURN carrying real bytes, on one machine: coturn on 127.0.0.3, the host's ICE on 127.0.0.1 and the
// client's on 127.0.0.2, both with --ice-relay-only and the fallback off. The only pair that can
// work is relay to relay (./support/turn-server.ts says why), so the path is asserted twice: from
// what the tunnel reports, and from coturn's own byte counters. Skipped where coturn is not installed.
// The NAT cases (cone + STUN direct, symmetric + TURN relayed) need the network lab.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHost, type HostHandle } from '../../src/host.js';
import { startClient, type ClientHandle } from '../../src/client.js';
import { releaseDataChannelLibrary } from '../../src/webrtc/peer.js';
import { startEchoService, unusedPort, type Service } from '../support/services.js';
import { eventually } from '../support/timing.js';
import { destroyAllSockets, echoRoundTrip } from '../support/traffic.js';
import { haveTurnServer, startTurnServer, TURN_ADDRESS, type TurnServer } from '../support/turn-server.js';

const MiB = 1024 * 1024;
const PIN = '31415926';

describe('TURN on loopback (coturn)', { timeout: 90_000, skip: haveTurnServer() ? false : 'coturn (turnserver) is not installed' }, () => {
  let turn: TurnServer;
  let echo: Service;
  let host: HostHandle;
  let client: ClientHandle | undefined;

  before(async () => {
    turn = await startTurnServer();
    echo = await startEchoService();
    host = await startHost({
      pin: PIN, listen: '127.0.0.1:0', workers: 1, iceBind: '127.0.0.1', logLevel: 'error',
      iceServers: [turn.url], iceRelayOnly: true, fallback: false,
      services: { echo: { host: '127.0.0.1', port: echo.port } },
    });
  });

  after(async () => {
    destroyAllSockets();
    await client?.close();
    await host?.close();
    await echo?.close();
    await turn?.stop();
    releaseDataChannelLibrary();
  });

  test('relay-only on both sides: the path is relayed through coturn; 16 MiB each way byte-exact; coturn counted them', { timeout: 60_000 }, async (t) => {
    const port = await unusedPort();
    const started = Date.now();
    client = await startClient({
      connect: host.url, pin: PIN, workers: 1, iceBind: '127.0.0.2', logLevel: 'error', reconnect: false,
      iceServers: [turn.url], iceRelayOnly: true, fallback: false,
      forwards: [{ host: '127.0.0.1', port, service: 'echo' }],
    });
    const connectMs = Date.now() - started;
    const path = client.path();
    assert.equal(path?.kind, 'relay');
    assert.equal(path?.relayed, true);
    assert.ok(path?.local.startsWith(`${TURN_ADDRESS}:`) && path.remote.startsWith(`${TURN_ADDRESS}:`), `both ends are allocations on coturn: ${path?.local} -> ${path?.remote}`);
    assert.ok(await eventually(() => host.paths()[0]?.path?.kind === 'relay', 5000), 'the host reports the relay too');

    const before = turn.relayedBytes();
    const t0 = Date.now();
    const r = await echoRoundTrip(port, 16 * MiB, 50);
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(r.received, 16 * MiB);
    assert.equal(r.receivedHash, r.sentHash);
    // coturn logs its counters per interval; the last one may not be written yet, hence 7/8
    assert.ok(await eventually(() => turn.relayedBytes() - before >= 28 * MiB, 10_000), `coturn relayed ${turn.relayedBytes() - before} bytes for 32 MiB`);
    t.diagnostic(`TURN: connected in ${(connectMs / 1000).toFixed(1)} s; 16 MiB each way in ${seconds.toFixed(2)} s = ${(32 * MiB / 1e6 / seconds).toFixed(1)} MB/s; coturn relayed ${((turn.relayedBytes() - before) / MiB).toFixed(1)} MiB`);
  });
});
