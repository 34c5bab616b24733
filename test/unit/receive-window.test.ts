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
  const { w, advance } = window({ rtt: 100 });
  const sizes: number[] = [];
  let credited = 0;
  for (let rtt = 0; rtt < 8; rtt++) {
    const chunk = w.size(); // the sender keeps the whole window busy every round trip
    assert.ok(w.received(chunk));
    advance(101);
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
    advance(51);
    w.consumed(16 * KiB);
  }
  assert.equal(w.size(), 256 * KiB);
});

test('growth takes only what the budget grants; a fixed window (initial = max) never grows', T, () => {
  const { w, advance, budgetLeft } = window({ budget: 100 * KiB, rtt: 100 });
  w.received(256 * KiB);
  advance(101);
  w.consumed(256 * KiB);
  assert.equal(w.size(), 356 * KiB);
  assert.equal(budgetLeft(), 0);
  const fixed = window({ initial: 1024 * KiB, max: 1024 * KiB });
  fixed.w.received(1024 * KiB);
  fixed.advance(101);
  fixed.w.consumed(1024 * KiB);
  assert.equal(fixed.w.size(), 1024 * KiB);
});

test('a window stops growing once a bigger one would only queue: it holds about 2 x rate x (RTT + 10 ms)', T, () => {
  const { w, advance } = window({ rtt: 1, max: 16 * 1024 * KiB });
  for (let spell = 0; spell < 40; spell++) {
    // per 60 ms the window goes round every 3 ms (an RTT plus processing), but the path carries at
    // most 50 KiB per ms however large the window is
    let bytes = Math.min(50 * KiB * 60, w.size() * (60 / 3));
    while (bytes > 0) {
      const piece = Math.min(bytes, w.size() / 4);
      assert.ok(w.received(piece));
      w.consumed(piece);
      bytes -= piece;
    }
    advance(60);
    w.consumed(0); // the spell is over: the window looks at its rate
  }
  const target = 2 * 50 * KiB * (1 + 10);
  assert.ok(w.size() >= target && w.size() <= target + 64 * KiB, `window ${w.size() / KiB} KiB, target ${target / KiB} KiB`);
});
