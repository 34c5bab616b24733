// A stream's receive window (workers/receive-window.ts): credit in quarter windows, growth per round
// trip while the sender keeps it busy, the budget's say, and a fixed window.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReceiveWindow } from '../../workers/receive-window.js';

const T = { timeout: 5_000 };
const KiB = 1024;

function window(options: { initial?: number; max?: number; budget?: number; rtt?: number } = {}) {
  let t = 0;
  let budget = options.budget ?? Infinity;
  const w = createReceiveWindow({
    initial: options.initial ?? 256 * KiB,
    max: options.max ?? 4096 * KiB,
    rttMs: () => options.rtt ?? 40,
    grow: (bytes) => { const g = Math.min(bytes, budget); budget -= g; return g; },
    now: () => t,
  });
  return { w, advance: (ms: number) => { t += ms; }, budgetLeft: () => budget };
}

test('credit goes back in steps of at least a quarter window, and a peer past the window is caught', T, () => {
  const { w } = window({ max: 256 * KiB });
  assert.ok(w.received(256 * KiB));
  assert.equal(w.received(1), false, 'one byte past the window');
  const { w: v } = window({ max: 256 * KiB });
  v.received(100 * KiB);
  assert.equal(v.consumed(60 * KiB), 0);
  assert.equal(v.consumed(10 * KiB), 70 * KiB);
  assert.equal(v.unacked(), 30 * KiB);
});

test('a busy stream doubles its window per round trip up to the maximum, the extra sent as credit', T, () => {
  const { w, advance } = window();
  const sizes: number[] = [];
  let credited = 0;
  for (let rtt = 0; rtt < 8; rtt++) {
    const chunk = w.size(); // the sender keeps the whole window busy every round trip
    assert.ok(w.received(chunk));
    advance(41);
    credited += w.consumed(chunk);
    sizes.push(w.size());
  }
  assert.deepEqual(sizes.map((s) => s / KiB), [512, 1024, 2048, 4096, 4096, 4096, 4096, 4096]);
  assert.equal(w.grown(), (4096 - 256) * KiB);
  assert.equal(credited, sizes.reduce((n, _s, i) => n + (i === 0 ? 256 * KiB : sizes[i - 1] ?? 0), 0) + (4096 - 256) * KiB, 'every byte and every growth credited');
});

test('a stream that uses little of its window per round trip does not grow', T, () => {
  const { w, advance } = window();
  for (let i = 0; i < 20; i++) {
    w.received(16 * KiB);
    advance(41);
    w.consumed(16 * KiB);
  }
  assert.equal(w.size(), 256 * KiB);
});

test('growth takes only what the budget grants; a fixed window (initial = max) never grows', T, () => {
  const { w, advance, budgetLeft } = window({ budget: 100 * KiB });
  w.received(256 * KiB);
  advance(41);
  w.consumed(256 * KiB);
  assert.equal(w.size(), 356 * KiB);
  assert.equal(budgetLeft(), 0);
  const fixed = window({ initial: 1024 * KiB, max: 1024 * KiB });
  fixed.w.received(1024 * KiB);
  fixed.advance(41);
  fixed.w.consumed(1024 * KiB);
  assert.equal(fixed.w.size(), 1024 * KiB);
});
