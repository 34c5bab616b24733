// Starts the shards: N worker threads from piscina, each running one long-lived shard task over its
// own MessagePort, or with `workers: 0` one shard on the main thread called directly (the
// single-threaded baseline: same handler code, no MessageChannel in between). This is the one arrow
// from src/ into workers/.
//
// piscina replaces a crashed thread but not the task, so a task that fails is started again here
// (listeners included); the caller resets the streams the dead shard owned.

import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { FromShard, ShardInit, ToShard } from '../shared/thread-messages.js';
import type { Logger } from '../shared/log.js';
import { runShard } from '../../workers/shard.js';

/** How the main thread reaches a shard: a MessagePort, or a direct call with `--workers 0`. */
export type ShardPost = (msg: ToShard, transfer?: ArrayBuffer[]) => void;

export interface PoolOptions {
  workers: number;
  init: Omit<ShardInit, 'index' | 'shards' | 'port'>;
  log: Logger;
  onMessage(index: number, msg: FromShard): void;
  /** A shard's thread died; it is being restarted. */
  onLost(index: number, error: Error): void;
  /** A (re)started shard is ready for messages. */
  onStarted(index: number): void;
}

export interface Pool {
  /** One post function per shard; stable across restarts. */
  posts: ShardPost[];
  /** The worker threads (empty with `workers: 0`): a test terminates one to check recovery. */
  threads(): readonly Worker[];
  close(): Promise<void>;
}

/** A crash loop is not retried forever: past this many restarts a shard stays down (and says so). */
const MAX_RESTARTS = 20;

export function startPool(options: PoolOptions): Pool {
  const { workers, init, log } = options;
  if (workers === 0) return directPool(options);

  const pool = new Piscina({
    filename: new URL('../../workers/entry.js', import.meta.url).href,
    minThreads: workers,
    maxThreads: workers,
    idleTimeout: Infinity, // never reap a shard
    concurrentTasksPerWorker: 1, // one shard task per thread
    atomics: 'disabled', // the task owns sockets and timers: no Atomics.wait between tasks
  });
  const ports: (MessagePort | null)[] = new Array(workers).fill(null);
  const tasks: Promise<unknown>[] = [];
  let closing = false;
  let restarts = 0;

  function start(index: number): void {
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (msg: FromShard) => options.onMessage(index, msg));
    ports[index] = port1;
    const data: ShardInit = { ...init, index, shards: workers, port: port2 };
    tasks[index] = pool.run(data, { transferList: [port2] }).catch((err: Error) => {
      port1.close();
      ports[index] = null;
      if (closing) return;
      options.onLost(index, err);
      if (++restarts > MAX_RESTARTS) {
        log.error('worker keeps crashing; not restarting it', { worker: index, error: err.message });
        return;
      }
      log.error('worker crashed; restarting it', { worker: index, error: err.message });
      start(index);
    });
    queueMicrotask(() => options.onStarted(index)); // after the caller has wired its dispatcher
  }
  for (let i = 0; i < workers; i++) start(i);

  const posts: ShardPost[] = ports.map((_, index) => (msg: ToShard, transfer?: ArrayBuffer[]) => {
    ports[index]?.postMessage(msg, transfer ?? []);
  });

  return {
    posts,
    threads: () => pool.threads,
    async close() {
      closing = true;
      for (const port of ports) port?.postMessage({ t: 'shutdown' } satisfies ToShard);
      await Promise.race([Promise.allSettled(tasks), new Promise((r) => setTimeout(r, 1500))]);
      await pool.destroy();
    },
  };
}

function directPool(options: PoolOptions): Pool {
  let toShard: ((msg: ToShard) => void) | null = null;
  const done = runShard({ ...options.init, index: 0, shards: 1 }, {
    post: (msg) => options.onMessage(0, msg),
    onMessage: (handler) => { toShard = handler; },
    close: () => { toShard = null; },
  });
  const posts: ShardPost[] = [(msg) => toShard?.(msg)];
  queueMicrotask(() => options.onStarted(0));
  return {
    posts,
    threads: () => [],
    async close() {
      toShard?.({ t: 'shutdown' });
      await done;
    },
  };
}
