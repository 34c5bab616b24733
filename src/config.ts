import type { Logger } from './log.js';

// Every limit of the data plane, with its unit and why it has the value it has. One record is passed
// from the CLI (or a test) through the main thread to every worker, so all sides agree.

/** What `startHost` and `startClient` take alike. */
export interface SideOptions {
  /** Worker threads; 0 runs the shard on the main thread. Default: available parallelism. */
  workers?: number | undefined;
  /** STUN/TURN URLs; none is fine on one machine or a LAN. */
  iceServers?: string[] | undefined;
  /** Bind ICE to this address and use only candidates on it (127.0.0.1 keeps traffic on loopback). */
  iceBind?: string | undefined;
  logLevel?: string | undefined;
  log?: Logger | undefined;
  config?: Partial<DataPlaneConfig> | undefined;
}

export interface DataPlaneConfig {
  /** Per-stream, per-direction credit window in bytes: the most a sender may have unacknowledged. */
  windowBytes: number;
  /** Streams one peer may hold open at once; a flood of CONNECTs past it is reset. */
  maxStreamsPerPeer: number;
  /** A host-side stream that saw DATA but no CONNECT is reset after this long (ms). */
  pendingMs: number;
  /** Dial timeout for the host's connection to a service (ms). */
  dialTimeoutMs: number;
  /** Bytes a worker may post to the main thread before the main thread returns credit. */
  workerCreditBytes: number;
  /** Above this many bytes buffered in the DataChannel the main thread stops returning worker credit. */
  channelHighWaterBytes: number;
  /** Resume below this (onBufferedAmountLow fires here). */
  channelLowWaterBytes: number;
  /** Keepalive interval on the DataChannel (ms). */
  keepaliveMs: number;
  /** A peer silent for this long is gone: its streams are reset (ms). */
  peerTimeoutMs: number;
  /** A client connection accepted while no peer is up waits this long, then is closed (ms). */
  outageWaitMs: number;
}

export const defaultConfig: DataPlaneConfig = {
  // 1 MiB: one bulk stream through the tunnel (tunnel bench --scenarios bulk --streams 1 --window N,
  // medians of 3, 2 cores): 256 KiB gave 52-55 MB/s, 1 MiB 52-68 MB/s, 4 MiB 60-70 MB/s, against a raw
  // DataChannel of 73-88 MB/s. 256 KiB caps a stream; 4 MiB buys little more for 4x the memory a slow
  // stream may hold.
  windowBytes: 1024 * 1024,
  maxStreamsPerPeer: 20000,
  pendingMs: 5000,
  dialTimeoutMs: 10000,
  // Enough for several 64 KiB packets per worker in flight, small next to the window sum.
  workerCreditBytes: 2 * 1024 * 1024,
  channelHighWaterBytes: 4 * 1024 * 1024,
  channelLowWaterBytes: 1024 * 1024,
  keepaliveMs: 1000,
  peerTimeoutMs: 5000,
  outageWaitMs: 10000,
};

export function verifyConfig(config: DataPlaneConfig): DataPlaneConfig {
  const positive = (name: keyof DataPlaneConfig, min: number) => {
    const value = config[name];
    if (!Number.isInteger(value) || value < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  };
  positive('windowBytes', 64 * 1024); // at least one full packet, or a stream could never move
  positive('maxStreamsPerPeer', 1);
  positive('pendingMs', 1);
  positive('dialTimeoutMs', 1);
  positive('workerCreditBytes', 128 * 1024);
  positive('channelHighWaterBytes', 64 * 1024);
  positive('channelLowWaterBytes', 0);
  positive('keepaliveMs', 10);
  positive('peerTimeoutMs', 20);
  positive('outageWaitMs', 0);
  if (config.channelLowWaterBytes >= config.channelHighWaterBytes) throw new RangeError('channelLowWaterBytes must be below channelHighWaterBytes');
  if (config.peerTimeoutMs <= config.keepaliveMs) throw new RangeError('peerTimeoutMs must exceed keepaliveMs');
  return config;
}
