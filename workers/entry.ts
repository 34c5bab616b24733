// The piscina task each worker thread runs for as long as the tunnel lives: one shard.
// Nothing under workers/ imports node-datachannel or any main-thread module, not even indirectly (a
// second thread that loads node-datachannel aborts the process): only src/shared/. A test walks the
// imports and holds this.

import type { MessagePort } from 'node:worker_threads';
import type { ShardInit, ShardLink, FromShard, ToShard } from '../src/shared/thread-messages.js';
import { runShard } from './shard.js';
import { boundGarbage } from '../src/shared/garbage.js';

function portLink(port: MessagePort): ShardLink {
  return {
    post: (msg: FromShard, transfer?: ArrayBuffer[]) => port.postMessage(msg, transfer ?? []),
    onMessage: (handler) => port.on('message', (msg: ToShard) => handler(msg)),
    close: () => port.close(),
  };
}

export default async function shardTask(init: ShardInit): Promise<{ index: number }> {
  if (!init.port) throw new Error('shard task needs a port');
  const stopBound = boundGarbage(); // the shard's TCP reads are its garbage (a no-op without --expose-gc)
  try {
    await runShard(init, portLink(init.port));
  } finally {
    stopBound();
  }
  return { index: init.index };
}
