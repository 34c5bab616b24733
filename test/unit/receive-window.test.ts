// A stream's receive window (workers/receive-window.ts): credit in quarter windows, growth per spell
// while the sender keeps it busy, the budget's say, and a fixed window.

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

/** One spell of a window-limited sender at RTT 10 ms: the whole window goes round ten times in 101 ms,
 *  so the rate it carries needs about three windows and the window doubles. Returns the credit sent. */
function busySpell(w: ReturnType<typeof window>): { credit: number; received: number } {
  let credit = 0;
  let received = 0;
  for (let round = 0; round < 10; round++) {
    if (round === 9) w.advance(101);
    const chunk = w.w.size();
    assert.ok(w.w.received(chunk));
    received += chunk;
    credit += w.w.consumed(chunk);
  }
  return { credit, received };
}

test('a window-limited stream doubles its window per spell up to the maximum, the extra sent as credit', T, () => {
  const busy = window({ rtt: 10 });
  const sizes: number[] = [];
  let credited = 0;
  let received = 0;
  for (let spell = 0; spell < 8; spell++) {
    const r = busySpell(busy);
    credited += r.credit;
    received += r.received;
    sizes.push(busy.w.size());
  }
  assert.deepEqual(sizes.map((s) => s / KiB), [512, 1024, 2048, 4096, 4096, 4096, 4096, 4096]);
  assert.equal(busy.w.grown(), (4096 - 256) * KiB);
  assert.equal(credited, received + (4096 - 256) * KiB, 'every byte and every growth credited');
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
  const limited = window({ budget: 100 * KiB, rtt: 10 });
  busySpell(limited);
  assert.equal(limited.w.size(), 356 * KiB);
  assert.equal(limited.budgetLeft(), 0);
  const fixed = window({ initial: 1024 * KiB, max: 1024 * KiB });
  fixed.w.received(1024 * KiB);
  fixed.advance(101);
  fixed.w.consumed(1024 * KiB);
  assert.equal(fixed.w.size(), 1024 * KiB);
});

test('a window stops growing once a bigger one would only queue: it holds about 2 x rate x (RTT + 10 ms)', T, () => {
  const { w, advance } = window({ rtt: 1, max: 16 * 1024 * KiB });
  for (let spell = 0; spell < 40; spell++) {
    // per 60 ms (a spell is at least 100 ms: two of these) the window goes round every 3 ms (an RTT plus processing), but the path carries at
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
