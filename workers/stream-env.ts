// What a shard gives each of its streams (./handler.ts): the stream's view of its peer, its budget and
// the main thread.

import type net from 'node:net';
import type { DataPlaneConfig } from '../src/shared/limits.js';

/** What the shard gives a stream. */
export interface StreamEnv {
  streamId: number;
  config: DataPlaneConfig;
  /** The peer's receive window for this stream: what it may have in flight at first, and the most
   *  the peer may ever grant (bytes). */
  sendWindow: { initial: number; max: number };
  /** The current round-trip time to the peer (ms). */
  rttMs(): number;
  /** Asks to grow this stream's receive window by `bytes`; returns what the budget grants. */
  grow(bytes: number): number;
  /** The stream is over: the window it grew beyond its initial size goes back to the budget. */
  release(bytes: number): void;
  /** Queue one encoded message of this stream for the DataChannel. */
  send(message: Uint8Array): void;
  /** A recycled buffer for a packet of `bytes` (header included), if the shard has one. */
  spare(bytes: number): ArrayBuffer | undefined;
  /** True while the shard may still post to the main thread (its hop allowance is not spent), or,
   *  given the size of what the stream just read, while that was a small read. */
  mayPost(lastRead?: number): boolean;
  /** Call `resume` once the shard may post again. */
  onAllowance(resume: () => void): void;
  /** Host only: open a TCP connection to an exposed service, or say why not. */
  dial(service: string): net.Socket | string;
  /** The stream is over; `reason` is null after a clean close, else the reset reason. */
  done(reason: string | null, sentReset: boolean): void;
  /** Counters the shard reports: bytes this stream holds (reassembler + socket write buffer), and bytes
   *  moved: written to our socket (in), read from it (out). */
  count(buffered: number, bytesIn: number, bytesOut: number): void;
}
