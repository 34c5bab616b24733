// The client's offer as sent (src/webrtc/sdp.ts): when it may be relayed and the host may not, it
// takes the DTLS client role, and nothing else in the SDP changes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientIsDtlsClient, mayBeRelayed, offerAsDtlsClient } from '../../src/webrtc/sdp.js';
import { parseIceServers } from '../../src/webrtc/ice-servers.js';

const T = { timeout: 5_000 };

test('the offer says a=setup:active instead of actpass, on every media section; nothing else changes', T, () => {
  const offer = ['v=0', 'o=rtc 1 0 IN IP4 127.0.0.1', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'a=setup:actpass', 'a=mid:0',
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'a=setup:actpass', 'a=mid:1', 'a=x-setup:actpass-not-this', ''].join('\r\n');
  const sent = offerAsDtlsClient(offer);
  assert.equal(sent, offer.replaceAll('a=setup:actpass\r\n', 'a=setup:active\r\n'));
  assert.equal(sent.match(/a=setup:active/g)?.length, 2);
  assert.match(sent, /a=x-setup:actpass-not-this/);
  assert.equal(offerAsDtlsClient(sent), sent, 'an offer that already says active stays so');
  assert.equal(offerAsDtlsClient(offer.replaceAll('\r\n', '\n')), sent.replaceAll('\r\n', '\n'), 'bare newlines too');
});

test('the client is the DTLS client when it may be relayed and the host may not', T, () => {
  assert.equal(mayBeRelayed([]), false);
  assert.equal(mayBeRelayed(parseIceServers(['stun:stun.example.net:3478'])), false);
  assert.equal(mayBeRelayed(parseIceServers(['stun:stun.example.net', 'turn:u:p@turn.example.net'])), true);
  assert.equal(mayBeRelayed([], true), true);
  assert.equal(clientIsDtlsClient(true, false), true);
  assert.equal(clientIsDtlsClient(false, false), false);
  assert.equal(clientIsDtlsClient(false, true), false);
  assert.equal(clientIsDtlsClient(true, true), false, 'both: the host is kept out of harm\'s way');
});
