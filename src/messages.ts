// Every message that crosses between the main thread and a worker. Packets travel as ArrayBuffers
// moved with transfer lists; with `--workers 0` the same objects are passed by direct call.

import type { MessagePort } from 'node:worker_threads';
import type { DataPlaneConfig } from './config.js';

export interface Service { host: string; port: number }
export interface Forward { host: string; port: number; service: string }

/** The long-lived task each worker runs (piscina task data). */
export interface ShardInit {
  index: number;
  role: 'host' | 'client';
  services: Record<string, Service>;
  forwards: Forward[];
  config: DataPlaneConfig;
  logLevel: string;
  port?: MessagePort;
}

export type ToShard =
  /** One event-loop turn's worth, in one message (each postMessage costs a wake-up of the other
   *  thread): packets from the DataChannel per peer, the bytes the shard may post again, and
   *  full-size packet buffers already sent, for reuse. */
  | { t: 'turn'; pkts: { peer: number; bufs: ArrayBuffer[] }[]; credit: number; spare?: ArrayBuffer[] }
  /** `sendWindow`: the peer's receive window, the initial credit of every stream towards it */
  | { t: 'peer-up'; peer: number; sendWindow: number }
  | { t: 'peer-down'; peer: number; reason: string }
  | { t: 'stats' }
  | { t: 'shutdown' };

export type FromShard =
  /** One flush: packets for the DataChannel per peer (each buffer one packet of stream `sids[i]`), and
   *  the streams whose both directions are closed (or that were reset): drop their routes. */
  | { t: 'turn'; pkts: PacketBatch[]; closed: { peer: number; sids: number[] }[] }
  | { t: 'listening'; forward: Forward; error?: string }
  | { t: 'stats'; stats: ShardStats };

export interface PacketBatch { peer: number; bufs: ArrayBuffer[]; sids: number[] }

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
