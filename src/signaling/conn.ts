// One signaling conversation between a client and the host, whatever carries it: today a WebSocket
// (./websocket.ts). The handshakes (./host-handshake.ts, ./client-handshake.ts) speak only this, so
// another carrier needs only an adapter.

export interface SignalConn {
  /** The other end's address, for logs and for the PIN guard. */
  readonly remote: string;
  /** Sends one whole binary message (dropped once the conversation is over). */
  send(data: Uint8Array): void;
  /** Replaces the message handler. `data` is null for a message that was not binary. */
  onMessage(handler: (data: Uint8Array | null) => void): void;
  /** Called once when the conversation is over; `error` says why when it failed. */
  onClose(handler: (error: string | undefined) => void): void;
  /** Ends the conversation after what was sent has gone out, with a short reason code. */
  close(code: string): void;
  /** Ends it now. */
  terminate(): void;
}
