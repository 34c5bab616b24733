// Defaults chosen by measurement (issue 13): the worker count per machine, and the bound on each
// thread's garbage outside V8's heap.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { defaultWorkers, SINGLE_THREAD_MAX_CORES } from '../../src/options.js';
import { MAX_SHARDS } from '../../src/shared/stream-id.js';
import { boundGarbage, OLD_GARBAGE_FACTOR } from '../../src/shared/garbage.js';

test('no worker threads on up to 2 cores, one per core above', () => {
  assert.equal(SINGLE_THREAD_MAX_CORES, 2);
  assert.equal(defaultWorkers(1), 0);
  assert.equal(defaultWorkers(2), 0);
  assert.equal(defaultWorkers(3), 3);
  assert.equal(defaultWorkers(16), 16);
  assert.equal(defaultWorkers(10_000), MAX_SHARDS);
  assert.ok(Number.isInteger(defaultWorkers()));
});

test('the garbage bound collects young ArrayBuffers once past its limit', { timeout: 10_000 }, async () => {
  v8.setFlagsFromString('--external-memory-accounted-in-global-limit');
  v8.setFlagsFromString('--expose-gc');
  const stop = boundGarbage(8 * 1024 * 1024);
  try {
    let keep: Buffer[] = [];
    for (let i = 0; i < 1000; i++) { // 64 MiB, 16 buffers alive at a time
      keep.push(Buffer.alloc(64 * 1024));
      if (keep.length > 16) keep = keep.slice(1);
    }
    keep = [];
    const deadline = Date.now() + 5000;
    while (v8.getHeapStatistics().external_memory > 8 * 1024 * 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    assert.ok(v8.getHeapStatistics().external_memory <= 8 * 1024 * 1024, `external memory ${v8.getHeapStatistics().external_memory} bytes`);
  } finally {
    stop();
  }
});

test('the garbage bound also frees buffers that outlived young collections', { timeout: 10_000 }, async () => {
  v8.setFlagsFromString('--external-memory-accounted-in-global-limit');
  v8.setFlagsFromString('--expose-gc');
  // --expose-gc set at run time reaches new contexts only (as in garbage.ts)
  const gc = vm.runInNewContext('gc') as (o: { type: 'minor' | 'major'; execution: 'sync' }) => void;
  const bound = 8 * 1024 * 1024;
  let kept: Buffer[] = [];
  for (let i = 0; i < 1024; i++) kept.push(Buffer.alloc(64 * 1024)); // 64 MiB, alive across...
  gc({ type: 'minor', execution: 'sync' });
  gc({ type: 'minor', execution: 'sync' }); // ...two young collections: now in the old generation
  kept = [];
  assert.equal(kept.length, 0);
  const stop = boundGarbage(bound);
  try {
    const deadline = Date.now() + 5000;
    while (v8.getHeapStatistics().external_memory > OLD_GARBAGE_FACTOR * bound && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    assert.ok(v8.getHeapStatistics().external_memory <= OLD_GARBAGE_FACTOR * bound, `external memory ${v8.getHeapStatistics().external_memory} bytes`);
  } finally {
    stop();
  }
});
