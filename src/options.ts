// What `startHost` and `startClient` take alike, and their defaults.

import type { Logger, LogFormat } from './shared/log.js';
import type { DataPlaneConfig } from './shared/limits.js';
import { MAX_SHARDS } from './shared/stream-id.js';
import { tunnelError } from './errors.js';
import { parseIceServers } from './webrtc/ice-servers.js';
import type { IceOptions } from './webrtc/peer.js';
import { defaultMtu, isMtu, MIN_MTU, MAX_MTU } from './webrtc/mtu.js';
import { DEFAULT_BULK_LANES, MAX_BULK_LANES } from './webrtc/channels.js';

export interface SideOptions {
  /** Worker threads, 0..256; 0 runs the one shard on the main thread. Default: 0 on up to 2 cores, else
   *  the available parallelism (defaultWorkers). */
  workers?: number | undefined;
  /** STUN/TURN URLs (stun:HOST[:PORT], turn:USER:PASS@HOST[:PORT]); none is fine on one machine or
   *  a LAN. TURN over TCP/TLS and more than two TURN servers are refused (libjuice ignores them). */
  iceServers?: string[] | undefined;
  /** Bind ICE to this address and use only candidates on it, and relayed ones (127.0.0.1 keeps
   *  traffic on loopback). */
  iceBind?: string | undefined;
  /** Offer only relayed candidates: the path goes through a TURN server (needs one). */
  iceRelayOnly?: boolean | undefined;
  /** The UDP ports ICE may use (one per connection), for a firewall that opens only these. */
  icePortRange?: { min: number; max: number } | undefined;
  /** This side's MTU for the DataChannels' association, stated in signaling (the smaller side's
   *  wins): default 1280, or the interface's (up to 4140) when ICE is bound to a loopback or LAN
   *  address and no STUN/TURN server is given (webrtc/mtu.ts). */
  mtu?: number | undefined;
  /** Carry the tunnel over the signaling WebSocket when ICE finds no path (default true; direct
   *  signaling only: a rendezvous relay carries no data). */
  fallback?: boolean | undefined;
  /** Bulk lanes, each a PeerConnection that carries full-size DATA (a stream keeps one), 1 to
   *  MAX_BULK_LANES, default DEFAULT_BULK_LANES; each side states its own, the smaller wins
   *  (webrtc/channels.ts). */
  lanes?: number | undefined;
  logLevel?: string | undefined;
  /** text (default) or json, for the records the shards write */
  logFormat?: LogFormat | undefined;
  log?: Logger | undefined;
  /** The shards measure their event loop's delay, for the metrics endpoint (default false). */
  measureLoop?: boolean | undefined;
  config?: Partial<DataPlaneConfig> | undefined;
}

/** At or below this many cores the default is no worker threads (everything on the main thread). */
export const SINGLE_THREAD_MAX_CORES = 2;

/**
 * The default worker count for a machine with `cores` cores. On 2 cores (tunnel bench, --workers 0
 * vs 2 in the same runs, loopback) the main thread, libdatachannel's threads and the applications
 * already fill both cores, and a shard only adds a postMessage hop each way: --workers 2 lost in
 * one-stream bulk (upload 32 vs 35 MB/s, download 31 vs 41), 64-stream upload (30 vs 38), 1 KiB
 * round trip p50 (1,473 vs 798 µs), churn (379 vs 696 conn/s) and idle memory (119 vs 90 MiB per
 * side). Above 2 cores the shards have cores of their own: one per core, as before (not measured
 * here; bench/README.md says how to measure it).
 */
export function defaultWorkers(cores = (globalThis.navigator?.hardwareConcurrency as number | undefined) ?? 1): number {
  if (cores <= SINGLE_THREAD_MAX_CORES) return 0;
  return Math.min(MAX_SHARDS, cores);
}

/** The worker count to run: the default, or the one asked for if a stream id can name its shards. */
export function workerCount(workers: number | undefined): number {
  if (workers === undefined) return defaultWorkers();
  if (!Number.isInteger(workers) || workers < 0 || workers > MAX_SHARDS) {
    throw tunnelError('BAD_FLAG', `--workers must be an integer from 0 to ${MAX_SHARDS} (a stream id has 8 bits for its worker), got ${workers}`);
  }
  return workers;
}

/** The ICE settings both sides pass to their PeerConnections, checked (BAD_FLAG when they cannot work). */
export function iceOptions(options: SideOptions, warn: (message: string) => void): IceOptions {
  const iceServers = parseIceServers(options.iceServers ?? [], warn);
  if (options.iceRelayOnly && !iceServers.some((s) => s.relayType !== undefined)) {
    throw tunnelError('BAD_FLAG', '--ice-relay-only needs a TURN server: add --ice-server turn:USER:PASS@HOST:3478');
  }
  const range = options.icePortRange;
  if (range && !(Number.isInteger(range.min) && Number.isInteger(range.max) && range.min >= 1 && range.min <= range.max && range.max <= 65535)) {
    throw tunnelError('BAD_FLAG', `--ice-port-range must be MIN-MAX with 1 <= MIN <= MAX <= 65535, got ${range.min}-${range.max}`);
  }
  const mtu = options.mtu ?? defaultMtu(options.iceBind, iceServers.length);
  if (!isMtu(mtu)) throw tunnelError('BAD_FLAG', `--mtu must be an integer from ${MIN_MTU} to ${MAX_MTU} (libjuice reads datagrams of at most 4096 bytes), got ${mtu}`);
  return { iceServers, iceBind: options.iceBind, relayOnly: options.iceRelayOnly, portRange: range, mtu };
}

/** The bulk lanes a side asks for: `lanes`, or the default; BAD_FLAG outside 1..MAX_BULK_LANES. */
export function bulkLanes(lanes: number | undefined): number {
  const n = lanes ?? DEFAULT_BULK_LANES;
  if (!Number.isInteger(n) || n < 1 || n > MAX_BULK_LANES) throw tunnelError('BAD_FLAG', `--lanes must be an integer from 1 to ${MAX_BULK_LANES}, got ${n}`);
  return n;
}
