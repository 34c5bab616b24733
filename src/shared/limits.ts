// Every limit of the data plane, with its unit and why it has the value it has. One record is passed
// from the CLI (or a test) through the main thread to every shard, so all sides agree.
//
// Two kinds of credit, two names: a stream's *window* (bytes the peer may send it unacknowledged,
// returned in WINDOW packets) and a shard's *hop allowance* (bytes it may post to the main thread
// before the main thread has handed them to the DataChannel and returned them).

export interface DataPlaneConfig {
  /** Per-stream receive window, the most it may grow to (bytes): announced to the peer, which may
   *  never have more than this unacknowledged on one stream. */
  windowBytes: number;
  /** Per-stream receive window at the start (bytes); it doubles per round trip while the sender keeps
   *  it busy. Equal to windowBytes: a fixed window (`--window`). */
  initialWindowBytes: number;
  /** What the grown windows of one peer's streams may add up to beyond their initial windows (bytes):
   *  the memory one peer can make this side hold on top of initialWindowBytes per stream. */
  windowBudgetBytes: number;
  /** Streams one peer may hold open at once; a flood of CONNECTs past it is reset. */
  maxStreamsPerPeer: number;
  /** A host-side stream that saw DATA but no CONNECT is reset after this long (ms). */
  pendingMs: number;
  /** Dial timeout for the host's connection to a service (ms). */
  dialTimeoutMs: number;
  /** Bytes a shard may post to the main thread before the main thread returns them (hop allowance). */
  hopAllowanceBytes: number;
  /** Above this many bytes buffered in the DataChannel the main thread queues, and stops returning
   *  hop allowance: the shards stop reading their sockets. */
  channelHighWaterBytes: number;
  /** Resume below this (onBufferedAmountLow fires here). */
  channelLowWaterBytes: number;
  /** Each bulk lane's high-water mark, lower than the small channel's (its low mark is 0): full-size
   *  DATA waits in the dispatcher rather than in libdatachannel's FIFO. */
  bulkHighWaterBytes: number;
  /** Keepalive interval on the DataChannel (ms). */
  keepaliveMs: number;
  /** A peer silent for this long is gone: its streams are reset (ms). */
  peerTimeoutMs: number;
  /** A client connection accepted while no peer is up waits this long, then is closed (ms). */
  outageWaitMs: number;
  /** How long a lost peer's streams wait for it to come back on a new path before they are reset
   *  (ms; `--resume-timeout`); 0 turns resume off: a lost peer's streams are reset at once. */
  resumeTimeoutMs: number;
}

export const defaultConfig: DataPlaneConfig = {
  // Loopback, one bulk stream (tunnel bench --scenarios bulk --streams 1 --window N, medians of 3, 2
  // cores): a fixed 256 KiB window gave 52-55 MB/s, 1 MiB 52-68, 4 MiB 60-70 (raw DataChannel 73-88).
  // A real path needs its bandwidth-delay product: 16 MiB is 160 MB/s at RTT 100 ms, beyond what one
  // association carries here (4 MiB SCTP buffers). Streams start at 256 KiB and grow only while busy.
  windowBytes: 16 * 1024 * 1024,
  initialWindowBytes: 256 * 1024,
  // 64 MiB: a few streams at their full window, or many at a few MiB; each byte of it is held only
  // while the application on this side does not read.
  windowBudgetBytes: 64 * 1024 * 1024,
  maxStreamsPerPeer: 20000,
  pendingMs: 5000,
  dialTimeoutMs: 10000,
  // Enough for several 64 KiB packets per shard in flight, small next to the window sum.
  hopAllowanceBytes: 2 * 1024 * 1024,
  // libdatachannel's queue (what bufferedAmount counts) is one FIFO per association, in front of
  // usrsctp's own 4 MiB send buffer, which keeps the path busy. 256 KiB-1 MiB all held the lab's
  // rates (RTT 40 ms).
  channelHighWaterBytes: 1024 * 1024,
  channelLowWaterBytes: 256 * 1024,
  // The bulk channel's own mark. Chosen when both channels shared one association and so one
  // libdatachannel FIFO (lab, RTT 40 ms, 1 % loss: a ping beside a download waited a median 1.1 s with
  // 64 KiB here against 5.2 s under the 1 MiB mark). Since the bulk channel has its own association
  // that reason is gone; 1 MiB / 256 KiB instead gave nothing back (lab, RTT 40 ms, one run each:
  // 1 stream 16.9 vs 30.3 MB/s — a loss event in that run — 8 streams 34.4 vs 33.9), and a short
  // queue there is less memory held below the dispatcher.
  bulkHighWaterBytes: 64 * 1024,
  keepaliveMs: 1000,
  peerTimeoutMs: 5000,
  outageWaitMs: 10000,
  // a laptop moving between networks, a NAT that forgot its mapping, an uplink's blip: a minute
  // covers them, and is about how long an application waits on a silent TCP connection anyway
  resumeTimeoutMs: 60000,
};

/** A side's per-stream receive window as announced to the other side: where each stream starts and
 *  the most it may grow to (bytes). */
export interface WindowOffer { initial: number; max: number }

export function windowOffer(config: DataPlaneConfig): WindowOffer {
  return { initial: config.initialWindowBytes, max: config.windowBytes };
}

export function verifyConfig(config: DataPlaneConfig): DataPlaneConfig {
  const positive = (name: keyof DataPlaneConfig, min: number) => {
    const value = config[name];
    if (!Number.isInteger(value) || value < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  };
  positive('windowBytes', 64 * 1024); // at least one full packet, or a stream could never move
  positive('initialWindowBytes', 64 * 1024);
  positive('windowBudgetBytes', 0);
  // a window smaller than the usual start is simply fixed
  if (config.initialWindowBytes > config.windowBytes) config.initialWindowBytes = config.windowBytes;
  positive('maxStreamsPerPeer', 1);
  positive('pendingMs', 1);
  positive('dialTimeoutMs', 1);
  positive('hopAllowanceBytes', 128 * 1024);
  positive('channelHighWaterBytes', 64 * 1024);
  positive('channelLowWaterBytes', 0);
  positive('bulkHighWaterBytes', 1);
  positive('keepaliveMs', 10);
  positive('peerTimeoutMs', 20);
  positive('outageWaitMs', 0);
  positive('resumeTimeoutMs', 0);
  if (config.channelLowWaterBytes >= config.channelHighWaterBytes) throw new RangeError('channelLowWaterBytes must be below channelHighWaterBytes');
  if (config.peerTimeoutMs <= config.keepaliveMs) throw new RangeError('peerTimeoutMs must exceed keepaliveMs');
  return config;
}
