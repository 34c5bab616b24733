// A worker thread that dies is replaced and its shard task started again (listeners included). Real
// threads; the dispatcher's side (resetting the lost shard's streams) is in unit/dispatcher.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startPool } from '../../src/dataplane/pool.js';
import { defaultConfig } from '../../src/shared/limits.js';
import { createLogger } from '../../src/shared/log.js';
import { unusedPort } from '../support/services.js';
import type { FromShard } from '../../src/shared/thread-messages.js';

const T = { timeout: 30_000 };
const log = createLogger('test', 'error');

test('a crashed worker is restarted, listens again, and its streams are reset', T, async () => {
  const port = await unusedPort();
  const started: number[] = [];
  const lost: number[] = [];
  const messages: FromShard[] = [];
  const pool = startPool({
    workers: 2,
    init: { role: 'client', services: {}, forwards: [{ host: '127.0.0.1', port, service: 'web' }], config: defaultConfig, logLevel: 'error' },
    log,
    onMessage: (_index, msg) => messages.push(msg),
    onLost: (index) => lost.push(index),
    onStarted: (index) => started.push(index),
  });
  try {
    const listening = () => messages.filter((m) => m.t === 'listening' && !m.error).length;
    const until = async (what: () => boolean) => { for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 25)); assert.ok(what()); };
    await until(() => listening() === 2);

    const [thread] = pool.threads();
    assert.ok(thread);
    await thread.terminate();
    await until(() => lost.length === 1 && listening() === 3);
    assert.equal(started.filter((i) => i === lost[0]).length, 2, 'the lost shard was started again');

    // the port still accepts connections after the restart
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => { socket.destroy(); resolve(); });
      socket.on('error', reject);
    });
  } finally {
    await pool.close();
  }
});
