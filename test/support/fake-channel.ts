// A stand-in for node-datachannel's DataChannel with what the data plane uses: it records what is
// sent (copied, as sendMessageBinary copies; keepalive PINGs apart, in `pings`), lets the test set
// bufferedAmount, fire the low-water event, deliver messages, and make sends fail.

import type { Channel, PeerChannels } from '../../src/webrtc/channels.js';

export function fakeChannel() {
  const sent: Uint8Array[] = [];
  const pings: Uint8Array[] = [];
  let buffered = 0;
  let lowThreshold = 0;
  let failing = false;
  let onLow: () => void = () => {};
  let onMessage: (msg: string | Buffer | ArrayBuffer) => void = () => {};
  const channel = {
    sendMessageBinary: (m: Uint8Array) => {
      if (failing) throw new Error('DataChannel is closed');
      const copy = new Uint8Array(m);
      // a message that is one PING packet (type 6, 16-byte header, an 8-byte timestamp at most)
      if (copy[0] === 6 && copy.byteLength <= 24) pings.push(copy); else sent.push(copy);
      return true;
    },
    bufferedAmount: () => buffered,
    setBufferedAmountLowThreshold: (n: number) => { lowThreshold = n; },
    onBufferedAmountLow: (cb: () => void) => { onLow = cb; },
    onMessage: (cb: (msg: string | Buffer | ArrayBuffer) => void) => { onMessage = cb; },
    isOpen: () => true,
  } as unknown as Channel;
  return {
    channel,
    sent,
    pings,
    setBuffered: (n: number) => { buffered = n; },
    lowThreshold: () => lowThreshold,
    low: () => onLow(),
    deliver: (msg: string | Buffer) => onMessage(msg),
    fail: () => { failing = true; },
  };
}

/** A session's channels over fakes: one fake for everything (`lanes` 0), or a small one and `lanes`
 *  bulk ones. */
export function fakeChannels(lanes = 0) {
  const small = fakeChannel();
  const bulk = lanes === 0 ? [small] : Array.from({ length: lanes }, () => fakeChannel());
  const channels: PeerChannels = { small: small.channel, bulk: bulk.map((b) => b.channel) };
  return { channels, small, bulk };
}
