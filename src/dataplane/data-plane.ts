// One side's data plane, the same for host and client: the shards (./pool.ts) and the dispatcher
// between them and the peers' DataChannels. The host and the client are each one of these plus
// their signaling.

import type { Worker } from 'node:worker_threads';
import type { Logger } from '../shared/log.js';
import type { DataPlaneConfig, WindowOffer } from '../shared/limits.js';
import type { Forward, Service, ShardStats } from '../shared/thread-messages.js';
import net from 'node:net';
import { tunnelError, listenError } from '../errors.js';
import { startPool } from './pool.js';
import { createDispatcher, type DispatcherCounters } from './dispatcher.js';
import type { PeerChannels } from '../webrtc/channels.js';

export interface DataPlaneOptions {
  role: 'host' | 'client';
  workers: number;
  config: DataPlaneConfig;
  /** host: what its shards may dial */
  services?: Record<string, Service>;
  /** client: where its shards listen */
  forwards?: Forward[];
  log: Logger;
  logLevel: string;
  /** A peer stopped answering keepalives, or its channel failed. */
  onPeerDead(peer: number, reason: string): void;
}

export interface DataPlaneStats {
  /** by shard index; null for a shard that did not answer in time (it may be restarting) */
  shards: (ShardStats | null)[];
  dispatcher: DispatcherCounters;
}

/** How long a shard may take to answer a stats request (ms): a crashed one must not freeze a caller. */
const STATS_TIMEOUT_MS = 1000;

/** Starts the shards; a client's resolves once every shard listens on every forward. */
export async function startDataPlane(options: DataPlaneOptions): Promise<DataPlane> {
  const { role, workers, log } = options;
  const forwards = options.forwards ?? [];
  for (const forward of forwards) await checkPortFree(forward);
  const statsWaiters = new Map<number, ((s: ShardStats) => void)[]>();
  const listening = new Map<string, number>();
  let listened: (err?: Error) => void = () => {};
  const allListening = new Promise<void>((resolve, reject) => { listened = (err) => (err ? reject(err) : resolve()); });
  if (forwards.length === 0) listened();

  const pool = startPool({
    workers,
    init: { role, services: options.services ?? {}, forwards, config: options.config, logLevel: options.logLevel },
    log,
    onMessage: (index, msg) => {
      if (msg.t === 'stats') {
        const waiters = statsWaiters.get(index) ?? [];
        statsWaiters.delete(index);
        for (const resolve of waiters) resolve(msg.stats);
      } else if (msg.t === 'listening') {
        const name = `${msg.forward.host}:${msg.forward.port}`;
        if (msg.error) return listened(tunnelError('LISTEN_FAILED', `cannot listen on ${name}: ${msg.error}`));
        listening.set(name, (listening.get(name) ?? 0) + 1);
        if ([...listening.values()].filter((n) => n >= Math.max(1, workers)).length === forwards.length) listened();
      } else {
        dispatcher.fromShard(index, msg);
      }
    },
    onLost: (index) => dispatcher?.shardLost(index),
    onStarted: (index) => dispatcher?.shardStarted(index),
  });
  const dispatcher = createDispatcher({ role, config: options.config, shards: pool.posts, log, onPeerDead: options.onPeerDead });

  try {
    await allListening;
  } catch (err) {
    dispatcher.close();
    await pool.close();
    throw err;
  }

  function shardStats(index: number, timeoutMs: number): Promise<ShardStats | null> {
    return new Promise((resolve) => {
      let waiters = statsWaiters.get(index);
      const asked = waiters !== undefined; // a request is in flight: its answer serves this one too
      if (!waiters) statsWaiters.set(index, (waiters = []));
      const list = waiters;
      const timer = setTimeout(() => {
        // no answer (a crashed shard): forget the request, so the next one asks again
        if (statsWaiters.get(index) === list) statsWaiters.delete(index);
        resolve(null);
      }, timeoutMs);
      list.push((s) => { clearTimeout(timer); resolve(s); });
      if (!asked) pool.posts[index]?.({ t: 'stats' });
    });
  }

  return {
    addPeer: (peer: number, channels: PeerChannels, sendWindow: WindowOffer) => dispatcher.addPeer(peer, channels, sendWindow),
    removePeer: (peer: number, reason: string) => dispatcher.removePeer(peer, reason),
    async stats(timeoutMs = STATS_TIMEOUT_MS): Promise<DataPlaneStats> {
      const shards = await Promise.all(pool.posts.map((_, index) => shardStats(index, timeoutMs)));
      return { shards, dispatcher: { ...dispatcher.counters } };
    },
    routes: (peer: number) => dispatcher.routes(peer),
    queuedBytes: () => dispatcher.queuedBytes(),
    threads: () => pool.threads(),
    /** The shards reset their streams (the peers are told), then the dispatcher stops. */
    async close(): Promise<void> {
      await pool.close();
      dispatcher.close();
    },
  };
}

export interface DataPlane {
  addPeer(peer: number, channels: PeerChannels, sendWindow: WindowOffer): void;
  removePeer(peer: number, reason: string): void;
  stats(timeoutMs?: number): Promise<DataPlaneStats>;
  routes(peer: number): number;
  queuedBytes(): number;
  threads(): readonly Worker[];
  close(): Promise<void>;
}

/** A plain (non-reusePort) listen from the main thread: the shards listen with reusePort, which would
 *  silently share a port that another process holds, so "in use" is detected here first. */
function checkPortFree(forward: Forward): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(forward.host, forward.port, err)));
    server.listen({ host: forward.host, port: forward.port, exclusive: true }, () => server.close(() => resolve()));
  });
}
