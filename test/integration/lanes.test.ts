// Bulk lanes (src/webrtc/channels.ts): each side states how many it wants and the smaller wins; a
// host refuses a client that offers more PeerConnections than it allows; streams spread over the
// lanes arrive byte-exact both ways.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startHostSide, startPair, startRawSession, releaseAtEnd } from '../support/pair.js';
import { rawAuthenticated, refusal } from '../support/raw-signaling.js';
import { openFlow, MiB } from '../support/traffic.js';
import { within } from '../support/timing.js';
import { addMac } from '../../src/signaling/auth.js';
import { encodeSignal } from '../../src/signaling/codec.js';
import { DEFAULT_BULK_LANES } from '../../src/webrtc/channels.js';

releaseAtEnd();

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
      const { raw, macs } = await rawAuthenticated(side.host.url, side.host.pin);
      side.add(raw, 'raw signaling connection');
      raw.ws.send(encodeSignal(addMac(macs, { t: 'params', window: { initial: 256 * 1024, max: MiB }, fb: false, mtu: 1280, pcs: 4 })));
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
});
