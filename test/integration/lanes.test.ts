// Bulk lanes (src/webrtc/channels.ts): each side states how many it wants and the smaller wins; a
// host refuses a client that offers more PeerConnections than it allows; streams spread over the
// lanes arrive byte-exact both ways; lanes that cannot open (here: a side's --ice-port-range used up)
// are left out and the session goes on with the others (protocol 8's `lanes`).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startHostSide, startPair, startRawSession, startTestClient, captureLog, releaseAtEnd, type HostSide } from '../support/pair.js';
import { rawAuthenticated, refusal } from '../support/raw-signaling.js';
import { openFlow, MiB } from '../support/traffic.js';
import { within } from '../support/timing.js';
import { addMac, checkMac } from '../../src/signaling/auth.js';
import { encodeSignal, FALLBACK_ICE_TIMEOUT_MS } from '../../src/signaling/codec.js';
import { DEFAULT_BULK_LANES } from '../../src/webrtc/channels.js';

releaseAtEnd();

/** A raw client past the PIN check that has said it offers `pcs` PeerConnections. */
async function offering(side: HostSide, pcs: number) {
  const { raw, macs } = await rawAuthenticated(side.host.url, side.host.pin);
  side.add(raw, 'raw signaling connection');
  raw.ws.send(encodeSignal(addMac(macs, { t: 'params', window: { initial: 256 * 1024, max: MiB }, fb: false, mtu: 1280, pcs })));
  return { raw, macs };
}

describe('bulk lanes', { timeout: 120_000 }, () => {
  test('each side states its lanes and the smaller wins; every lane is a channel of its own', { timeout: 60_000 }, async () => {
    const side = await startHostSide({ host: { lanes: 2 } });
    try {
      for (const [asked, got] of [[undefined, 2], [1, 1], [8, 2]] as const) {
        // no fallback: a PeerConnection that fails after ICE (libdatachannel's first-session flake)
        // would otherwise end on the WebSocket, one channel for all, instead of being tried again
        const session = await startRawSession(side.host.url, { pin: side.host.pin, fallback: false, ...(asked ? { bulkLanes: asked } : {}) });
        try {
          assert.equal(session.channels.bulk.length, got, `client asks ${asked ?? 'the default'}`);
          assert.equal(new Set([session.channels.small, ...session.channels.bulk]).size, got + 1);
        } finally {
          session.end('test over');
        }
      }
    } finally {
      await side.close();
    }
  });

  test('a client that offers more PeerConnections than the host allows is refused, and says why', { timeout: 30_000 }, async () => {
    const side = await startHostSide({ host: { lanes: 2 } });
    try {
      const { raw } = await offering(side, 4);
      const { error } = await refusal(raw);
      assert.equal(error?.code, 'SIGNALING_PROTOCOL');
      assert.match(error?.message ?? '', /offers 4 PeerConnections; this host allows 3/);
    } finally {
      await side.close();
    }
  });

  test(`${2 * DEFAULT_BULK_LANES} streams over ${DEFAULT_BULK_LANES} lanes: 4 MiB each way on each, byte-exact`, { timeout: 60_000 }, async () => {
    const pair = await startPair({ workers: 0 });
    try {
      const flows = Array.from({ length: 2 * DEFAULT_BULK_LANES }, (_, i) => openFlow(pair.port.echo ?? 0, 300 + i, { bytes: 4 * MiB }));
      const results = await within(Promise.all(flows.map((f) => f.finish())), 45_000, 'the flows to finish');
      for (const r of results) {
        assert.equal(r.received, 4 * MiB);
        assert.equal(r.receivedHash, r.sentHash);
      }
    } finally {
      await pair.close();
    }
  });

  test('`lanes`: one that names no open channel is answered no; one past the PeerConnections offered is refused, and says why', { timeout: 30_000 }, async () => {
    const side = await startHostSide({ host: { lanes: 2 } });
    try {
      const { raw, macs } = await offering(side, 3);
      raw.ws.send(encodeSignal(addMac(macs, { t: 'lanes', pcs: [0, 1] })));
      const reply = await raw.next() as { t: 'mac'; n: number; body: Uint8Array; mac: Uint8Array };
      assert.deepEqual(checkMac(macs, reply), { t: 'lanes-reply', ok: false }, 'no channel has reached the host: it cannot go on with them');
      raw.ws.send(encodeSignal(addMac(macs, { t: 'lanes', pcs: [0, 3] })));
      const { error } = await refusal(raw);
      assert.equal(error?.code, 'SIGNALING_PROTOCOL');
      assert.match(error?.message ?? '', /lanes names a PeerConnection past the 3 offered/);
    } finally {
      await side.close();
    }
  });

  /** Streams spread over the lanes, byte-exact. */
  const flowsThrough = async (port: number, count: number) => {
    const flows = Array.from({ length: count }, (_, i) => openFlow(port, 700 + i, { bytes: MiB }));
    for (const r of await within(Promise.all(flows.map((f) => f.finish())), 30_000, 'the flows to finish')) {
      assert.equal(r.received, MiB);
      assert.equal(r.receivedHash, r.sentHash);
    }
  };

  test('the client\'s port range holds 3 of its 9 PeerConnections: it goes on at once with 2 lanes, and says so; both sides agree', { timeout: 60_000 }, async () => {
    const hostLog = captureLog('host');
    const clientLog = captureLog('client');
    const side = await startHostSide({ host: { log: hostLog.log } });
    try {
      const started = Date.now();
      // ports in the ephemeral range: one taken by chance leaves a lane fewer, which the test allows
      const { client, port } = await startTestClient(side.host.url, ['echo'], { pin: side.host.pin, log: clientLog.log, icePortRange: { min: 47400, max: 47402 } });
      side.add(client, 'client');
      const openedMs = Date.now() - started;
      const said = clientLog.lines.map((l) => l.match(/ICE opened (\d) of (\d) bulk lanes in \d+ s; going on with/)).find((m) => m);
      assert.ok(said, `the client says it goes on with fewer lanes: ${clientLog.lines.join(' | ')}`);
      assert.equal(Number(said[2]), DEFAULT_BULK_LANES);
      assert.ok(Number(said[1]) >= 1 && Number(said[1]) <= 2, said[0]);
      assert.ok(openedMs < FALLBACK_ICE_TIMEOUT_MS, `it did not wait for the ICE time: ${openedMs} ms`);
      assert.ok(hostLog.lines.some((l) => new RegExp(`client connected with ${said[1]} of ${DEFAULT_BULK_LANES} bulk lanes`).test(l)), `the host agrees: ${hostLog.lines.join(' | ')}`);
      assert.equal(client.path()?.kind !== 'websocket', true, 'not the fallback');
      await flowsThrough(port.echo ?? 0, 6);
    } finally {
      await side.close();
    }
  });

  test('the host\'s port range holds 3 of the session\'s PeerConnections: it answers those, and when the ICE time is up the client goes on with them', { timeout: 60_000 }, async () => {
    const hostLog = captureLog('host');
    const side = await startHostSide({ host: { log: hostLog.log, icePortRange: { min: 47410, max: 47412 } } });
    try {
      const started = Date.now();
      const { client, port } = await startTestClient(side.host.url, ['echo'], { pin: side.host.pin });
      side.add(client, 'client');
      const openedMs = Date.now() - started;
      assert.ok(hostLog.lines.some((l) => /cannot answer the client's bulk lane \d; it will go on without it/.test(l)), `the host says which lanes it cannot answer: ${hostLog.lines.join(' | ')}`);
      assert.ok(hostLog.lines.some((l) => new RegExp(`client connected with [12] of ${DEFAULT_BULK_LANES} bulk lanes`).test(l)), hostLog.lines.join(' | '));
      assert.ok(openedMs >= FALLBACK_ICE_TIMEOUT_MS - 500, `the client waited for its ICE time: ${openedMs} ms`);
      assert.equal(client.path()?.kind !== 'websocket', true, 'not the fallback');
      await flowsThrough(port.echo ?? 0, 4);
    } finally {
      await side.close();
    }
  });
});
