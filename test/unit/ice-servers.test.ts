// The ICE flags against what libjuice really does: a table of URLs, what node-datachannel gets for
// each (decoded credentials), and the sentence for each one refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIceServer, parseIceServers, parsePortRange, redact } from '../../src/webrtc/ice-servers.js';
import { iceOptions } from '../../src/options.js';
import { TunnelError } from '../../src/errors.js';

const T = { timeout: 5_000 };

function refused(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (err: unknown) => {
    assert.ok(err instanceof TunnelError);
    assert.equal(err.code, 'BAD_FLAG');
    assert.match(err.message, pattern);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
}

test('STUN and TURN URLs become the servers node-datachannel takes', T, () => {
  const cases: [string, object][] = [
    ['stun:stun.example.org', { hostname: 'stun.example.org', port: 3478 }],
    ['stun:198.51.100.1:3479', { hostname: '198.51.100.1', port: 3479 }],
    ['stun://stun.example.org:19302', { hostname: 'stun.example.org', port: 19302 }],
    ['stun:[2001:db8::1]:3478', { hostname: '2001:db8::1', port: 3478 }],
    ['turn:u:p@198.51.100.1:3478', { hostname: '198.51.100.1', port: 3478, username: 'u', password: 'p', relayType: 'TurnUdp' }],
    ['turn:u:p@turn.example.org', { hostname: 'turn.example.org', port: 3478, username: 'u', password: 'p', relayType: 'TurnUdp' }],
    ['turn://alice:secret@turn.example.org:443', { hostname: 'turn.example.org', port: 443, username: 'alice', password: 'secret', relayType: 'TurnUdp' }],
    ['turn:u:p@turn.example.org?transport=udp', { hostname: 'turn.example.org', port: 3478, username: 'u', password: 'p', relayType: 'TurnUdp' }],
    // percent-encoded credentials arrive decoded; a raw ':' after the first one belongs to the password
    ['turn:al%40ice:p%3Ass%25w%40rd@turn.example.org:3478', { hostname: 'turn.example.org', port: 3478, username: 'al@ice', password: 'p:ss%w@rd', relayType: 'TurnUdp' }],
    ['turn:u:a:b@turn.example.org', { hostname: 'turn.example.org', port: 3478, username: 'u', password: 'a:b', relayType: 'TurnUdp' }],
    ['turn:1700000000%3Aalice:c2VjcmV0+/=@[2001:db8::2]:5000', { hostname: '2001:db8::2', port: 5000, username: '1700000000:alice', password: 'c2VjcmV0+/=', relayType: 'TurnUdp' }],
  ];
  for (const [url, want] of cases) assert.deepEqual(parseIceServer(url), want, url);
});

test('what libjuice would drop or cannot use is refused with the reason', T, () => {
  refused(() => parseIceServer('turns:u:p@turn.example.org:5349'), /turns: is TURN over TLS: libjuice .* drops TURN over TCP and TLS/);
  refused(() => parseIceServer('turn:u:p@turn.example.org?transport=tcp'), /\?transport=tcp: libjuice .* use turn:USER:PASS@HOST:PORT \(TURN over UDP\)/);
  refused(() => parseIceServer('turn:u:p@turn.example.org?transport=tls'), /\?transport=tls/);
  refused(() => parseIceServer('stuns:stun.example.org'), /STUN over TLS/);
  refused(() => parseIceServer('turn:turn.example.org'), /a TURN server needs credentials/);
  refused(() => parseIceServer('turn:user@turn.example.org'), /expected USER:PASS@/);
  refused(() => parseIceServer('stun:u:p@stun.example.org'), /a STUN server takes no USER:PASS/);
  refused(() => parseIceServer('turn:u:p%zz@turn.example.org'), /the password is not valid percent-encoding/);
  refused(() => parseIceServer('turn:u:p@turn.example.org:70000'), /port 70000 is out of range/);
  refused(() => parseIceServer('turn:u:p@turn.example.org?transport=sctp'), /unknown transport/);
  refused(() => parseIceServer('http://turn.example.org'), /expected stun:HOST\[:PORT\] or turn:USER:PASS@HOST\[:PORT\]/);
  refused(() => parseIceServer('stun:'), /expected/);
});

test('a refused URL never shows its password', T, () => {
  assert.equal(redact('turn:alice:s3cret@turn.example.org'), 'turn:alice:***@turn.example.org');
  assert.equal(redact('turns://alice:s3cret@turn.example.org'), 'turns://alice:***@turn.example.org');
  assert.equal(redact('stun:stun.example.org'), 'stun:stun.example.org');
  assert.throws(() => parseIceServer('turns:alice:s3cret@turn.example.org'), (err: Error) => !err.message.includes('s3cret'));
});

test('at most two TURN servers; several STUN servers are accepted with a warning', T, () => {
  const warnings: string[] = [];
  assert.equal(parseIceServers(['turn:u:p@a.example', 'turn:u:p@b.example', 'stun:c.example'], (w) => warnings.push(w)).length, 3);
  assert.equal(warnings.length, 0);
  refused(() => parseIceServers(['turn:u:p@a.example', 'turn:u:p@b.example', 'turn:u:p@c.example']), /3 TURN servers given, but libjuice uses at most 2/);
  parseIceServers(['stun:a.example', 'stun:b.example'], (w) => warnings.push(w));
  assert.match(warnings[0] ?? '', /libjuice uses one of them, picked at random/);
});

test('--ice-relay-only needs a TURN server; --ice-port-range is MIN-MAX', T, () => {
  refused(() => iceOptions({ iceRelayOnly: true, iceServers: ['stun:a.example'] }, () => {}), /--ice-relay-only needs a TURN server/);
  assert.equal(iceOptions({ iceRelayOnly: true, iceServers: ['turn:u:p@a.example'] }, () => {}).relayOnly, true);
  assert.deepEqual(parsePortRange('50000-50100'), { min: 50000, max: 50100 });
  assert.deepEqual(parsePortRange('40000-40000'), { min: 40000, max: 40000 });
  for (const bad of ['50100-50000', '0-10', '1-65536', '5000', 'a-b', '1-2-3']) refused(() => parsePortRange(bad), /--ice-port-range: expected MIN-MAX/);
  refused(() => iceOptions({ icePortRange: { min: 9, max: 8 } }, () => {}), /--ice-port-range must be MIN-MAX/);
});
