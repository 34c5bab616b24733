import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGuard, defaultGuard, type GuardOptions } from '../src/guard.js';

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

test('the global budget locks every address, then expires', T, () => {
  const { guard, clock } = clocked({ ...OPTS, maxFailuresGlobal: 5 });
  for (let i = 0; i < 4; i++) guard.failed(`10.0.0.${i}`);
  assert.equal(guard.locked('never-seen'), 0);
  guard.failed('10.0.0.4');
  for (const address of ['10.0.0.0', '10.0.0.4', 'never-seen']) assert.equal(guard.locked(address), 1000);
  clock.t += 1000;
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
  fail(guard, 'a', 3); // a: 2000, and the 6th failure overall locks everyone for 1000
  assert.equal(guard.locked('a'), 2000);
  assert.equal(guard.locked('b'), 1000);
});
