// Every message that crosses between the main thread and a shard. Packets travel as ArrayBuffers
// moved with transfer lists; with `--workers 0` the same objects are passed by direct call.
//
// Words: a *worker* is a thread of the pool; a *shard* is the set of streams one worker owns, known by
// its index (with `--workers 0` the one shard runs on the main thread). A stream is known by its
// *stream id* (stream-id.ts) within its *peer* (the host numbers its clients; the client's host is 0).

import type { MessagePort } from 'node:worker_threads';
import type { DataPlaneConfig, WindowOffer } from './limits.js';

export interface Service { host: string; port: number }
export interface Forward { host: string; port: number; service: string }

/** The long-lived task each worker runs (piscina task data). */
export interface ShardInit {
  index: number;
  /** how many shards this side runs (each gets an equal part of the window budget) */
  shards: number;
  role: 'host' | 'client';
  services: Record<string, Service>;
  forwards: Forward[];
  config: DataPlaneConfig;
  logLevel: string;
  port?: MessagePort;
}

/** Packets of one peer's streams, one encoded packet per buffer (`ids[i]` is the stream of `bufs[i]`). */
export interface PacketBatch { peer: number; bufs: ArrayBuffer[]; ids: number[] }

export type ToShard =
  /** One event-loop turn's worth, in one message (each postMessage costs a wake-up of the other
   *  thread): DataChannel messages per peer, hop allowance returned (bytes), and full-size packet
   *  buffers already sent, for reuse. */
  | { t: 'turn'; pkts: { peer: number; bufs: ArrayBuffer[] }[]; allowance: number; spare?: ArrayBuffer[] }
  /** `sendWindow`: the peer's receive window for each of our streams towards it */
  | { t: 'peer-up'; peer: number; sendWindow: WindowOffer }
  /** the round-trip time to the peer (ms), as the keepalive measures it: windows grow per round trip */
  | { t: 'peer-rtt'; peer: number; rttMs: number }
  | { t: 'peer-down'; peer: number; reason: string }
  | { t: 'stats' }
  | { t: 'shutdown' };

export type FromShard =
  /** One flush: packets for the DataChannel, and the streams whose both directions are closed (or
   *  that were reset): their routes are dropped. */
  | { t: 'turn'; pkts: PacketBatch[]; closed: { peer: number; ids: number[] }[] }
  | { t: 'listening'; forward: Forward; error?: string }
  | { t: 'stats'; stats: ShardStats };

export interface ShardStats {
  index: number;
  streams: number;
  opened: number;
  closed: number;
  resets: Record<string, number>;
  /** packets dropped quietly: late control packets for streams already closed */
  lateDropped: number;
  /** the most bytes one stream held at once: its reassembler plus its TCP socket's write buffer */
  peakStreamBufferedBytes: number;
  bytesIn: number;
  bytesOut: number;
}

/** How a shard talks to the main thread: a MessagePort, or direct calls with `--workers 0`. */
export interface ShardLink {
  post(msg: FromShard, transfer?: ArrayBuffer[]): void;
  onMessage(handler: (msg: ToShard) => void): void;
  close(): void;
}
