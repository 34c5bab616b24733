// What `startHost` and `startClient` take alike, and their defaults.

import type { Logger, LogFormat } from './shared/log.js';
import type { DataPlaneConfig } from './shared/limits.js';
import { MAX_SHARDS } from './shared/stream-id.js';
import { tunnelError } from './errors.js';

export interface SideOptions {
  /** Worker threads, 0..256; 0 runs the one shard on the main thread. Default: available parallelism. */
  workers?: number | undefined;
  /** STUN/TURN URLs; none is fine on one machine or a LAN. */
  iceServers?: string[] | undefined;
  /** Bind ICE to this address and use only candidates on it (127.0.0.1 keeps traffic on loopback). */
  iceBind?: string | undefined;
  logLevel?: string | undefined;
  /** text (default) or json, for the records the shards write */
  logFormat?: LogFormat | undefined;
  log?: Logger | undefined;
  /** The shards measure their event loop's delay, for the metrics endpoint (default false). */
  measureLoop?: boolean | undefined;
  config?: Partial<DataPlaneConfig> | undefined;
}

export function defaultWorkers(): number {
  return Math.max(1, Math.min(MAX_SHARDS, (globalThis.navigator?.hardwareConcurrency as number | undefined) ?? 1));
}

/** The worker count to run: the default, or the one asked for if a stream id can name its shards. */
export function workerCount(workers: number | undefined): number {
  if (workers === undefined) return defaultWorkers();
  if (!Number.isInteger(workers) || workers < 0 || workers > MAX_SHARDS) {
    throw tunnelError('BAD_FLAG', `--workers must be an integer from 0 to ${MAX_SHARDS} (a stream id has 8 bits for its worker), got ${workers}`);
  }
  return workers;
}
