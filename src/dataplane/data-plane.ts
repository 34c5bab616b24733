// One side's data plane, the same for host and client: the shards (./pool.ts) and the dispatcher
// between them and the peers' DataChannels. The host and the client are each one of these plus
// their signaling.

import type { Worker } from 'node:worker_threads';
import type { Logger, LogFormat } from '../shared/log.js';
import type { DataPlaneConfig, WindowOffer } from '../shared/limits.js';
import type { Forward, Service, ShardInit, ShardStats } from '../shared/thread-messages.js';
import { tunnelError } from '../errors.js';
import { startPool } from './pool.js';
import { createDispatcher, type DispatcherCounters } from './dispatcher.js';
import type { PeerChannels } from '../webrtc/channels.js';
import { checkPortFree } from './reconfigure.js';

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
  logFormat?: LogFormat | undefined;
  /** The shards measure their event loop's delay (for the metrics endpoint). */
  measureLoop?: boolean | undefined;
  /** A peer stopped answering keepalives, or its channel failed. */
  onPeerDead(peer: number, reason: string): void;
}

export interface DataPlaneStats {
  /** by shard index; null for a shard that did not answer in time (it may be restarting) */
  shards: (ShardStats | null)[];
  dispatcher: DispatcherCounters;
  /** bytes waiting in the peers' DataChannels (libdatachannel's bufferedAmount, summed) */
  bufferedBytes: number;
  /** bytes waiting in the dispatcher's queues for the DataChannels to drain */
  queuedBytes: number;
  /** worker threads restarted after a crash, since start */
  workerRestarts: number;
}

const addressOf = (f: Forward) => `${f.host}:${f.port}`;

/** How long a shard may take to answer a stats request (ms): a crashed one must not freeze a caller. */
const STATS_TIMEOUT_MS = 1000;

/** Starts the shards; a client's resolves once every shard listens on every forward. */
export async function startDataPlane(options: DataPlaneOptions): Promise<DataPlane> {
  const { role, workers, log } = options;
  const statsWaiters = new Map<number, ((s: ShardStats) => void)[]>();
  /** forwards being started: how many shards listen on each so far, and who waits for all of them */
  const listenWaiters = new Map<string, { shards: number; done: (err?: Error) => void }>();
  let restarts = 0;
  // What a (re)started shard starts with; a reload changes its services or forwards in place, so a
  // shard restarted after a crash starts with the current ones.
  const init: Omit<ShardInit, 'index' | 'shards' | 'port'> = {
    role, services: options.services ?? {}, forwards: options.forwards ?? [], config: options.config,
    logLevel: options.logLevel, logFormat: options.logFormat, measureLoop: options.measureLoop === true,
  };

  function whenListening(forwards: Forward[]): Promise<void> {
    return Promise.all(forwards.map((f) => new Promise<void>((resolve, reject) => {
      listenWaiters.set(addressOf(f), { shards: 0, done: (err) => (err ? reject(err) : resolve()) });
    }))).then(() => {});
  }

  function onListening(forward: Forward, error: string | undefined): void {
    const name = addressOf(forward);
    const waiter = listenWaiters.get(name);
    if (error) {
      if (!waiter) log.error('a worker cannot listen on a forward', { address: name, error });
      listenWaiters.delete(name);
      waiter?.done(tunnelError('LISTEN_FAILED', `cannot listen on ${name}: ${error}`));
      return;
    }
    if (waiter && ++waiter.shards >= Math.max(1, workers)) {
      listenWaiters.delete(name);
      waiter.done();
    }
  }

  // the shards listen with reusePort, which would silently share a port another process holds:
  // a plain listen from here first tells "in use"
  for (const forward of init.forwards) await checkPortFree(forward);
  const allListening = whenListening(init.forwards);
  const pool = startPool({
    workers,
    init,
    log,
    onMessage: (index, msg) => {
      if (msg.t === 'stats') {
        const waiters = statsWaiters.get(index) ?? [];
        statsWaiters.delete(index);
        for (const resolve of waiters) resolve(msg.stats);
      } else if (msg.t === 'listening') {
        onListening(msg.forward, msg.error);
      } else {
        dispatcher.fromShard(index, msg);
      }
    },
    onLost: (index) => { restarts++; dispatcher?.shardLost(index); },
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
    suspendPeer: (peer: number, reason: string) => dispatcher.suspendPeer(peer, reason),
    resumePeer: (peer: number, channels: PeerChannels, sendWindow: WindowOffer) => dispatcher.resumePeer(peer, channels, sendWindow),
    async stats(timeoutMs = STATS_TIMEOUT_MS): Promise<DataPlaneStats> {
      const shards = await Promise.all(pool.posts.map((_, index) => shardStats(index, timeoutMs)));
      return { shards, dispatcher: { ...dispatcher.counters }, bufferedBytes: dispatcher.bufferedBytes(), queuedBytes: dispatcher.queuedBytes(), workerRestarts: restarts };
    },
    setServices(services: Record<string, Service>): void {
      init.services = services;
      for (const post of pool.posts) post({ t: 'services', services });
    },
    /** Resolves once every shard listens on each forward that is new; rejects if one cannot. */
    setForwards(forwards: Forward[]): Promise<void> {
      const known = new Set(init.forwards.map(addressOf));
      const listening = whenListening(forwards.filter((f) => !known.has(addressOf(f))));
      init.forwards = forwards;
      for (const post of pool.posts) post({ t: 'forwards', forwards });
      return listening;
    },
    setLogLevel(level: string): void {
      init.logLevel = level;
      for (const post of pool.posts) post({ t: 'log-level', level });
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
  /** The path to the peer broke: its streams wait (see workers/handler.ts, resume). */
  suspendPeer(peer: number, reason: string): void;
  /** The peer is back on new channels: its streams go on. */
  resumePeer(peer: number, channels: PeerChannels, sendWindow: WindowOffer): void;
  stats(timeoutMs?: number): Promise<DataPlaneStats>;
  setServices(services: Record<string, Service>): void;
  setForwards(forwards: Forward[]): Promise<void>;
  setLogLevel(level: string): void;
  routes(peer: number): number;
  queuedBytes(): number;
  threads(): readonly Worker[];
  close(): Promise<void>;
}
