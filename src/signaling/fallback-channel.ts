// The data plane's Channel (../webrtc/channels.ts) over the signaling WebSocket, for when ICE
// found no path: the dispatcher drives it exactly as it drives a DataChannel, so streams, flow
// control and the reassembler are the same; only the transport under them is TCP.
//
//   sendMessageBinary(m) ──seal (./seal.ts)──▶ WebSocket     never refuses; bufferedAmount() is the
//                                                           WebSocket's unwritten bytes, and the
//                                                           dispatcher stops above its high-water mark
//   WebSocket ──open──▶ onMessage(m)                        a message that does not verify ends it
//   onBufferedAmountLow                                     polled: a WebSocket has no such event
//
// Messages that arrive before the data plane attaches its handler wait here (the client starts
// its data plane only after its first session is up).

import type { Channel } from '../webrtc/channels.js';
import type { Carrier, SignalConn } from './conn.js';
import { MAX_FALLBACK_MESSAGE_BYTES } from './codec.js';
import { createOpener, createSealer } from './seal.js';


export interface FallbackChannel extends Channel {
  close(): void;
  /** The WebSocket's round-trip time, last measured (ms), or null before the first answer. */
  rttMs(): number | null;
}

/** How often a WebSocket above the low-water mark is checked (ms), like the dispatcher's own poll. */
const DRAIN_POLL_MS = 10;
/** How often the round-trip time is measured (ms), for the status line and the path report. */
const RTT_EVERY_MS = 5000;
/** How long one RTT probe may wait for its answer (ms). */
const RTT_TIMEOUT_MS = 3000;
/** Messages held before the data plane attaches (bytes): far more than a keepalive and a few
 *  window updates; past it the peer is sending data nobody asked for. */
const EARLY_BYTES = 4 * 1024 * 1024;

export function createFallbackChannel(
  conn: SignalConn,
  carrier: Carrier,
  keys: { send: Uint8Array; receive: Uint8Array },
  onError: (reason: string) => void,
  firstRttMs: number | null = null,
): FallbackChannel {
  const seal = createSealer(keys.send);
  const open = createOpener(keys.receive);
  let handler: ((msg: Buffer) => void) | null = null;
  let early: Buffer[] = [];
  let earlyBytes = 0;
  let lowWater = 0;
  let onLow: () => void = () => {};
  let drainTimer: NodeJS.Timeout | null = null;
  let closed = false;
  let rtt = firstRttMs;

  const fail = (reason: string) => {
    if (closed) return;
    close();
    onError(reason);
  };

  conn.onMessage((data) => {
    if (closed) return;
    if (!data) return fail('the peer sent a text message on the fallback');
    let msg: Buffer;
    try {
      msg = open(data);
    } catch (err) {
      return fail((err as Error).message);
    }
    if (handler) return handler(msg);
    early.push(msg);
    earlyBytes += msg.byteLength;
    if (earlyBytes > EARLY_BYTES) fail(`the peer sent ${earlyBytes} bytes before the data plane started`);
  });

  const probe = setInterval(() => {
    void carrier.ping(RTT_TIMEOUT_MS).then((ms) => { if (ms !== null) rtt = ms; });
  }, RTT_EVERY_MS);
  probe.unref();

  function pollDrain(): void {
    if (closed || carrier.bufferedAmount() > lowWater) return;
    if (drainTimer) clearInterval(drainTimer);
    drainTimer = null;
    onLow();
  }

  function close(): void {
    if (closed) return;
    closed = true;
    clearInterval(probe);
    if (drainTimer) clearInterval(drainTimer);
    drainTimer = null;
    early = [];
  }

  return {
    sendMessageBinary(message: Uint8Array): boolean {
      if (closed) throw new Error('the fallback channel is closed');
      if (message.byteLength > MAX_FALLBACK_MESSAGE_BYTES) throw new RangeError(`message of ${message.byteLength} bytes exceeds ${MAX_FALLBACK_MESSAGE_BYTES}`);
      conn.send(seal(message));
      if (!drainTimer && carrier.bufferedAmount() > lowWater) {
        drainTimer = setInterval(pollDrain, DRAIN_POLL_MS);
        drainTimer.unref();
      }
      return true;
    },
    bufferedAmount: () => carrier.bufferedAmount(),
    setBufferedAmountLowThreshold(bytes: number) { lowWater = bytes; },
    onBufferedAmountLow(cb: () => void) { onLow = cb; },
    onMessage(cb: (msg: string | Buffer | ArrayBuffer) => void) {
      // what waited is delivered on a later tick, as a DataChannel delivers its messages: the caller
      // may still be wiring itself up when it attaches the handler (what arrives meanwhile queues)
      setImmediate(() => {
        if (closed) return;
        handler = cb;
        const held = early;
        early = [];
        earlyBytes = 0;
        for (const msg of held) cb(msg);
      });
    },
    isOpen: () => !closed,
    close,
    rttMs: () => rtt,
  };
}
