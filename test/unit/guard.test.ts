import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGuard, defaultGuard, type GuardOptions } from '../../src/signaling/guard.js';

const T = { timeout: 5_000 };
const OPTS: GuardOptions = { maxFailuresPerAddress: 3, maxFailuresGlobal: 1000, windowMs: 60_000, lockoutMs: 1000, maxLockoutMs: 5000 };

/** A guard on a clock the test moves by hand. */
function clocked(options: Partial<GuardOptions> = OPTS) {
  const clock = { t: 1_000_000 };
  const guard = createGuard(options, () => clock.t);
  return { guard, clock };
}

function fail(guard: ReturnType<typeof createGuard>, address: string, times: number): void {
  for (let i = 0; i < times; i++) guard.failed(address);
}

test('defaults are filled in for the options not given', T, () => {
  const g = createGuard({ lockoutMs: 5 });
  assert.deepEqual(g.options, { ...defaultGuard, lockoutMs: 5 });
  assert.equal(createGuard().locked('a'), 0);
});

test('an address is locked after maxFailuresPerAddress failures, others are not', T, () => {
  const { guard } = clocked();
  fail(guard, 'a', 2);
  assert.equal(guard.locked('a'), 0);
  guard.failed('a');
  assert.equal(guard.locked('a'), 1000);
  assert.equal(guard.locked('b'), 0);
});

test('the lock counts down and expires', T, () => {
  const { guard, clock } = clocked();
  fail(guard, 'a', 3);
  clock.t += 400;
  assert.equal(guard.locked('a'), 600);
  clock.t += 599;
  assert.equal(guard.locked('a'), 1);
  clock.t += 1;
  assert.equal(guard.locked('a'), 0);
});

test('each repeat lockout doubles, up to maxLockoutMs', T, () => {
  const { guard, clock } = clocked();
  for (const expected of [1000, 2000, 4000, 5000, 5000]) {
    fail(guard, 'a', 3);
    assert.equal(guard.locked('a'), expected);
    clock.t += expected;
    assert.equal(guard.locked('a'), 0);
  }
});

test('failures older than the window are forgotten', T, () => {
  const { guard, clock } = clocked();
  fail(guard, 'a', 2);
  clock.t += 60_000;
  guard.failed('a');
  assert.equal(guard.locked('a'), 0);
  fail(guard, 'a', 1);
  assert.equal(guard.locked('a'), 0);
  guard.failed('a');
  assert.equal(guard.locked('a'), 1000);
});

test('a success clears the address: the failure count and the doubling', T, () => {
  const { guard, clock } = clocked();
  fail(guard, 'a', 3);
  clock.t += 1000;
  fail(guard, 'a', 2);
  guard.succeeded('a');
  guard.failed('a');
  assert.equal(guard.locked('a'), 0);
  fail(guard, 'a', 2);
  assert.equal(guard.locked('a'), 1000); // first lockout again, not 2000
});

test('the global budget locks every address until its oldest failure leaves the window', T, () => {
  const { guard, clock } = clocked({ ...OPTS, maxFailuresGlobal: 5 });
  for (let i = 0; i < 4; i++) guard.failed(`10.0.0.${i}`);
  assert.equal(guard.locked('never-seen'), 0);
  guard.failed('10.0.0.4');
  for (const address of ['10.0.0.0', '10.0.0.4', 'never-seen']) assert.equal(guard.locked(address), OPTS.windowMs);
  clock.t += OPTS.windowMs;
  assert.equal(guard.locked('never-seen'), 0);
  assert.equal(guard.locked('10.0.0.0'), 0);
});

test('global failures older than the window are forgotten', T, () => {
  const { guard, clock } = clocked({ ...OPTS, maxFailuresGlobal: 3 });
  guard.failed('x');
  guard.failed('y');
  clock.t += 60_000;
  guard.failed('z');
  assert.equal(guard.locked('w'), 0);
});

test('the longer of the address lock and the global lock applies', T, () => {
  const { guard, clock } = clocked({ ...OPTS, maxFailuresGlobal: 6 });
  fail(guard, 'a', 3); // a: 1000
  clock.t += 1000;
  fail(guard, 'a', 3); // a: 2000; the 6th failure overall locks everyone until the first leaves the window
  assert.equal(guard.locked('b'), OPTS.windowMs - 1000);
  assert.equal(guard.locked('a'), Math.max(2000, OPTS.windowMs - 1000));
});

test('attempts in flight count against the budget', T, () => {
  const { guard } = clocked();
  const attempts = Array.from({ length: OPTS.maxFailuresPerAddress }, () => guard.begin('a'));
  assert.ok(attempts.every((x) => x.wait === 0));
  assert.ok(guard.begin('a').wait > 0, 'one more parallel attempt than the budget is refused');
  for (const x of attempts) x.end(true);
  assert.equal(guard.begin('a').wait, 0);
});

// README promises "20 wrong PINs from all addresses together per 10 minutes ... at most
// 20 × 6 × 24 = 2,880 guesses a day", even for a guesser with a fresh address per guess.
test('defaults keep to the README budget: <= 20 guesses per 10 min, <= 2,880 a day', T, () => {
  const clock = { t: 0 };
  const guard = createGuard(undefined, () => clock.t);
  const DAY_MS = 24 * 3600_000;
  let guesses = 0;
  let firstTenMinutes = 0;
  for (let n = 0; clock.t < DAY_MS; n++) {
    const address = `2001:db8::${n.toString(16)}`; // a fresh address per guess (a botnet, an IPv6 /64)
    const wait = guard.locked(address);
    if (wait > 0) {
      clock.t += wait;
      continue;
    }
    guard.failed(address);
    guesses++;
    if (clock.t < 10 * 60_000) firstTenMinutes++;
    clock.t += 100; // one online attempt takes a little while
  }
  assert.ok(firstTenMinutes <= 20, `${firstTenMinutes} guesses in the first 10 minutes`);
  assert.ok(guesses <= 2880, `${guesses} guesses in a day`);
});
