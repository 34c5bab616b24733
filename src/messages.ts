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
  /** packets from the DataChannel, one message's worth each (one stream per buffer) */
  | { t: 'pkts'; peer: number; bufs: ArrayBuffer[] }
  /** bytes the shard may post again, and full-size packet buffers already sent, for reuse */
  | { t: 'credit'; bytes: number; spare?: ArrayBuffer[] }
  /** `sendWindow`: the peer's receive window, the initial credit of every stream towards it */
  | { t: 'peer-up'; peer: number; sendWindow: number }
  | { t: 'peer-down'; peer: number; reason: string }
  | { t: 'stats' }
  | { t: 'shutdown' };

export type FromShard =
  /** packets for the DataChannel: each buffer is one DataChannel message of one stream */
  | { t: 'pkts'; peer: number; bufs: ArrayBuffer[]; sids: number[] }
  /** both directions of a stream are closed (or it was reset): drop its route */
  | { t: 'closed'; peer: number; sids: number[] }
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
