// When ICE finds no path: the WebSocket fallback, and the clear failure without it. ICE is made to
// fail on one machine by binding the two sides to different loopback addresses (host 127.0.0.1,
// client 127.0.0.2): each keeps only candidates on its own address, so no pair exists (libjuice then
// stays "checking" forever; the tunnel's own timeout decides). Signaling still works, so the
// fallback can carry the tunnel over the client's WebSocket to the host.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHost, type HostHandle } from '../../src/host.js';
import { startClient, type ClientHandle, type ClientOptions } from '../../src/client.js';
import { TunnelError } from '../../src/errors.js';
import { createLogger } from '../../src/shared/log.js';
import { releaseDataChannelLibrary } from '../../src/webrtc/peer.js';
import { FALLBACK_ICE_TIMEOUT_MS, ICE_TIMEOUT_MS } from '../../src/signaling/codec.js';
import { startEchoService, unusedPort, type Service } from '../support/services.js';
import { eventually } from '../support/timing.js';
import { byteSource, destroyAllSockets, echoRoundTrip } from '../support/traffic.js';
import { startMitm } from '../support/ws-mitm.js';

const MiB = 1024 * 1024;
const PIN = '80808080';

describe('no ICE path (host ICE on 127.0.0.1, client on 127.0.0.2)', { timeout: 120_000 }, () => {
  let echo: Service;
  let host: HostHandle;
  const hostLog: string[] = [];
  const clients: ClientHandle[] = [];

  const clientOptions = async (connect: string, more: Partial<ClientOptions> = {}): Promise<ClientOptions> => ({
    connect, pin: PIN, workers: 1, iceBind: '127.0.0.2', logLevel: 'error', reconnect: false,
    forwards: [{ host: '127.0.0.1', port: await unusedPort(), service: 'echo' }], ...more,
  });
  const start = async (options: ClientOptions) => {
    const client = await startClient(options);
    clients.push(client);
    return client;
  };

  before(async () => {
    echo = await startEchoService();
    host = await startHost({
      pin: PIN, listen: '127.0.0.1:0', workers: 1, iceBind: '127.0.0.1',
      services: { echo: { host: '127.0.0.1', port: echo.port } },
      log: createLogger('host', 'info', (line) => hostLog.push(line)),
    });
  });

  after(async () => {
    destroyAllSockets();
    for (const c of clients) await c.close();
    await host?.close();
    await echo?.close();
    releaseDataChannelLibrary();
  });

  test('the fallback takes over after the shorter ICE timeout; 16 MiB byte-exact; both sides report it', { timeout: 60_000 }, async (t) => {
    const options = await clientOptions(host.url);
    const started = Date.now();
    const client = await start(options);
    const connectMs = Date.now() - started;
    assert.ok(connectMs >= FALLBACK_ICE_TIMEOUT_MS - 500 && connectMs < FALLBACK_ICE_TIMEOUT_MS + 5000, `connected after ${connectMs} ms`);

    const path = client.path();
    assert.equal(path?.kind, 'websocket');
    assert.equal(path?.relayed, false);
    assert.equal(path?.remote, `127.0.0.1:${host.port}`, 'the client reports the host\'s signaling address');
    assert.ok(path?.rttMs !== null && path.rttMs >= 0, 'an RTT was measured');
    assert.ok(await eventually(() => host.paths().length === 1, 5000), 'the host reports the client');
    const hostPath = host.paths()[0]?.path;
    assert.equal(hostPath?.kind, 'websocket');
    assert.equal(hostPath?.local, `127.0.0.1:${host.port}`);
    assert.equal(hostPath?.remote, path?.local, 'each side names the same connection');
    assert.ok(hostLog.some((l) => /WebSocket fallback/.test(l)), 'the host logs the fallback');

    const t0 = Date.now();
    const r = await echoRoundTrip(options.forwards[0]?.port ?? 0, 16 * MiB, 11);
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(r.received, 16 * MiB);
    assert.equal(r.receivedHash, r.sentHash);
    t.diagnostic(`fallback: connected in ${(connectMs / 1000).toFixed(1)} s, 16 MiB each way in ${seconds.toFixed(2)} s = ${(32 * MiB / 1e6 / seconds).toFixed(1)} MB/s`);
    await client.close();
    clients.pop();
  });

  test('the fallback is sealed: no plaintext on the wire, and a flipped bit ends the session', { timeout: 60_000 }, async () => {
    const mitm = await startMitm(host.url);
    try {
      const options = await clientOptions(mitm.url);
      const client = await start(options);
      assert.equal(client.path()?.kind, 'websocket');
      const switched = mitm.frames.length; // everything after this is data-plane traffic
      const port = options.forwards[0]?.port ?? 0;
      const r = await echoRoundTrip(port, 2 * MiB, 12);
      assert.equal(r.receivedHash, r.sentHash);
      // the seeded bytes: a run of 64 of them must appear in no frame, either way
      const needle = byteSource(12)(64 * 1024).subarray(4096, 4160);
      const traffic = mitm.frames.slice(switched);
      assert.ok(traffic.reduce((n, f) => n + f.data.byteLength, 0) > 4 * MiB, 'the data went through the man in the middle');
      for (const f of traffic) assert.equal(f.data.includes(needle), false, `a ${f.dir} frame carries plaintext`);

      let flipped = 0;
      mitm.tamper = (frame) => {
        if (frame.dir !== 'c2h' || flipped > 0) return [frame.data];
        flipped++;
        const evil = Buffer.from(frame.data);
        evil[evil.length >> 1] = (evil[evil.length >> 1] ?? 0) ^ 0x01;
        return [evil];
      };
      void echoRoundTrip(port, 256 * 1024, 13).catch(() => {});
      assert.ok(await eventually(() => !client.connected(), 10_000), 'the session ended');
      assert.equal(flipped, 1);
      assert.ok(await eventually(() => hostLog.some((l) => /fallback channel failed.*authentication/.test(l)), 5000), 'the host refused the altered message');
    } finally {
      destroyAllSockets();
      await mitm.close();
    }
  });

  test('without the fallback the client fails in ~15 s with ICE_FAILED and the remedy; the host logs it and serves others', { timeout: 60_000 }, async () => {
    const started = Date.now();
    const err = await startClient(await clientOptions(host.url, { fallback: false })).then(
      (c) => { clients.push(c); assert.fail('the client connected'); },
      (e: unknown) => e,
    );
    const ms = Date.now() - started;
    assert.ok(err instanceof TunnelError, String(err));
    assert.equal(err.code, 'ICE_FAILED');
    assert.match(err.message, /^no network path to the host: .*add a TURN server with --ice-server turn:USER:PASS@HOST:3478, or drop --no-fallback/);
    assert.doesNotMatch(err.message, /\n/);
    assert.ok(ms >= ICE_TIMEOUT_MS - 500 && ms < 30_000, `failed after ${ms} ms`);
    assert.ok(await eventually(() => hostLog.some((l) => /client could not connect: no network path/.test(l)), 5000), 'the host logged the cause');

    const goodOptions = await clientOptions(host.url, { iceBind: '127.0.0.1' });
    const good = await start(goodOptions);
    // on one machine the pair is host-host, or host-prflx when a check beat the candidate's signaling
    assert.match(good.path()?.kind ?? '', /^(host|prflx)$/);
    assert.equal(good.path()?.relayed, false);
    const r = await echoRoundTrip(goodOptions.forwards[0]?.port ?? 0, MiB, 14);
    assert.equal(r.receivedHash, r.sentHash);
  });
});
