// Every message that crosses between the main thread and a shard. Packets travel as ArrayBuffers
// moved with transfer lists; with `--workers 0` the same objects are passed by direct call.
//
// Words: a *worker* is a thread of the pool; a *shard* is the set of streams one worker owns, known by
// its index (with `--workers 0` the one shard runs on the main thread). A stream is known by its
// *stream id* (stream-id.ts) within its *peer* (the host numbers its clients; the client's host is 0).

import type { MessagePort } from 'node:worker_threads';
import type { DataPlaneConfig, WindowOffer } from './limits.js';
import type { LogFormat } from './log.js';

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
  /** text (default) or json log records */
  logFormat?: LogFormat;
  /** measure the event loop's delay for the stats (the metrics endpoint is on) */
  measureLoop?: boolean;
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
  /** The path to the peer broke: its streams stay and wait (reads paused) for 'peer-resume' or
   *  'peer-down' (the resume deadline). */
  | { t: 'peer-suspend'; peer: number; reason: string }
  /** The peer is back on a new path (the same session): each stream tells it where it stands. */
  | { t: 'peer-resume'; peer: number; sendWindow: WindowOffer }
  | { t: 'stats' }
  /** A reload: the services a host's shard may dial from now on (open streams keep their sockets). */
  | { t: 'services'; services: Record<string, Service> }
  /** A reload: the forwards a client's shard listens on from now on. It stops listening on the ones
   *  gone (their open streams go on), starts on the new ones (answering 'listening' for each), and a
   *  kept one whose service changed sends its next connections to the new service. */
  | { t: 'forwards'; forwards: Forward[] }
  | { t: 'log-level'; level: string }
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
  /** by service name; '' holds host streams that named no exposed service (or never sent CONNECT) */
  services: Record<string, ServiceStats>;
  /** the event loop's delay since the previous stats request (zero unless measureLoop) */
  loopDelay: { p99Ms: number; maxMs: number };
  /** when this shard started (ms since the epoch): a restarted shard counts from zero again */
  startedAt: number;
}

/** One service's streams in one shard; counters only grow, except `open`. */
export interface ServiceStats {
  open: number;
  opened: number;
  /** closed cleanly (both FINs) */
  closed: number;
  /** reset, by reason code */
  reset: Record<string, number>;
  /** of those, refused dials by code: UNKNOWN_SERVICE, DIAL_FAILED, TOO_MANY_STREAMS (client: the host's answer) */
  refused: Record<string, number>;
  /** bytes from the peer written to TCP, and read from TCP sent to the peer */
  bytesIn: number;
  bytesOut: number;
}

/** How a shard talks to the main thread: a MessagePort, or direct calls with `--workers 0`. */
export interface ShardLink {
  post(msg: FromShard, transfer?: ArrayBuffer[]): void;
  onMessage(handler: (msg: ToShard) => void): void;
  close(): void;
}
