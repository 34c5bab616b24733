// One signaling conversation between a client and the host, whatever carries it: a WebSocket
// (./websocket.ts) or a rendezvous relay (./rendezvous.ts). The handshakes (./host-handshake.ts,
// ./client-handshake.ts) speak only this, so another carrier needs only an adapter.

import type { TunnelError } from '../errors.js';

/** A conversation's connection that can also carry the data plane: a direct WebSocket, not a relay
 *  (the WebSocket fallback, ./fallback-channel.ts). */
export interface Carrier {
  /** this end's address:port, and the other end's */
  readonly local: string;
  readonly remote: string;
  /** Bytes handed to send() but not yet written to the socket. */
  bufferedAmount(): number;
  /** One round trip (a WebSocket ping), in ms; null if no answer came in `timeoutMs`. */
  ping(timeoutMs: number): Promise<number | null>;
}

export interface SignalConn {
  /** The other end's address, for logs and for the PIN guard. */
  readonly remote: string;
  /** True when a relay carries the conversation: once the DataChannel is open the session does not
   *  need it, so losing it ends nothing (a direct WebSocket's end means the other process is gone). */
  readonly relayed: boolean;
  /** Present when the connection can carry the data plane too (the WebSocket fallback). */
  readonly carrier?: Carrier | undefined;
  /** Sends one whole binary message (dropped once the conversation is over). */
  send(data: Uint8Array): void;
  /** Replaces the message handler. `data` is null for a message that was not binary. */
  onMessage(handler: (data: Uint8Array | null) => void): void;
  /** Called once when the conversation is over; `error` says why when it failed (a TunnelError when
   *  the carrier knows the exact cause, e.g. an unknown rendezvous code). */
  onClose(handler: (error: string | TunnelError | undefined) => void): void;
  /** Ends the conversation after what was sent has gone out, with a short reason code. */
  close(code: string): void;
  /** Ends it now. */
  terminate(): void;
}
