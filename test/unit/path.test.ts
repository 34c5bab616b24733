// The path report from a PeerConnection's selected pair (a fake: only the two methods it reads).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type ndc from 'node-datachannel';
import { selectedPath, describePath, shortPath, type SessionPath } from '../../src/webrtc/path.js';

const T = { timeout: 5_000 };

const cand = (type: string, address: string, port: number) => ({ type, address, port, transportType: 'UDP', candidate: '', mid: '0', priority: 0 });

function fakePc(local: ReturnType<typeof cand> | null, remote: ReturnType<typeof cand> | null, rtt = 41): ndc.PeerConnection {
  return {
    getSelectedCandidatePair: () => (local && remote ? { local, remote } : null),
    rtt: () => rtt,
  } as unknown as ndc.PeerConnection;
}

test('the kind of a pair is its less direct side', T, () => {
  const kinds: [string, string, string][] = [
    ['host', 'host', 'host'], ['host', 'srflx', 'srflx'], ['srflx', 'host', 'srflx'],
    ['host', 'prflx', 'prflx'], ['srflx', 'prflx', 'prflx'], ['relay', 'host', 'relay'], ['prflx', 'relay', 'relay'],
  ];
  for (const [l, r, want] of kinds) {
    const p = selectedPath(fakePc(cand(l, '10.1.0.2', 50000), cand(r, '10.2.0.2', 40000)));
    assert.equal(p?.kind, want, `${l}/${r}`);
    assert.equal(p?.relayed, want === 'relay');
  }
});

test('addresses, IPv6, the RTT, and no pair yet', T, () => {
  assert.deepEqual(selectedPath(fakePc(cand('host', '10.1.0.2', 50000), cand('srflx', '198.51.100.20', 40000))), {
    kind: 'srflx', relayed: false, local: '10.1.0.2:50000', remote: '198.51.100.20:40000', rttMs: 41,
  });
  const v6 = selectedPath(fakePc(cand('host', '2001:db8::1', 5), cand('host', '2001:db8::2', 6), -1));
  assert.equal(v6?.local, '[2001:db8::1]:5');
  assert.equal(v6?.rttMs, null, 'libdatachannel says -1 before it has an RTT');
  assert.equal(selectedPath(fakePc(null, null)), null);
  const closed = { getSelectedCandidatePair: () => { throw new Error('closed'); }, rtt: () => 0 } as unknown as ndc.PeerConnection;
  assert.equal(selectedPath(closed), null);
});

test('the lines both CLIs print, and the status line\'s short form', T, () => {
  const direct: SessionPath = { kind: 'host', relayed: false, local: '10.1.0.2:50000', remote: '10.2.0.2:40000', rttMs: 41.2 };
  assert.equal(describePath(direct), 'direct (host) 10.1.0.2:50000 -> 10.2.0.2:40000, rtt 41 ms');
  assert.equal(describePath({ ...direct, kind: 'relay', relayed: true, rttMs: null }), 'relayed (TURN) 10.1.0.2:50000 -> 10.2.0.2:40000, rtt ? ms');
  assert.equal(describePath({ ...direct, kind: 'websocket' }), 'websocket fallback (TCP) 10.1.0.2:50000 -> 10.2.0.2:40000, rtt 41 ms');
  assert.equal(describePath(null), 'unknown');
  assert.equal(shortPath(direct), 'direct/host');
  assert.equal(shortPath(direct, true), 'direct/host 41 ms');
  assert.equal(shortPath({ ...direct, kind: 'relay', relayed: true }), 'relay');
  assert.equal(shortPath(null), '-');
});
