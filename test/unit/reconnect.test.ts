// The client's reconnect schedule (src/signaling/reconnect.ts) over fake attempts: one at a time with
// a doubling delay when no stream waits; overlapping attempts, at most a few in flight, while streams
// wait to resume; the first to connect is the session and a later success is ended.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { reconnect, type ReconnectTiming } from '../../src/signaling/reconnect.js';
import type { Session } from '../../src/signaling/client-handshake.js';
import { createLogger } from '../../src/shared/log.js';
import { tunnelError } from '../../src/errors.js';

const T = { timeout: 10_000 };
const log = createLogger('reconnect-test', 'error', () => {});
const timing: ReconnectTiming = { minMs: 10, maxMs: 80, resumeMaxMs: 20, overlapMs: 40, maxAttempts: 3 };

/** A fake session that remembers why it ended. */
function fakeSession(name: string): Session & { name: string; endedWith: string | null } {
  const s = {
    name, endedWith: null as string | null,
    end(reason: string) { s.endedWith ??= reason; },
  };
  return s as unknown as Session & { name: string; endedWith: string | null };
}

/** Attempts that each settle after `ms(n)` with `outcome(n)` (n from 0), counting how many overlap. */
function attempts(ms: (n: number) => number, outcome: (n: number) => 'ok' | 'fail' | 'final') {
  const state = { started: [] as number[], inFlight: 0, maxInFlight: 0, sessions: [] as ReturnType<typeof fakeSession>[] };
  const t0 = Date.now();
  const connect = async (): Promise<Session> => {
    const n = state.started.length;
    state.started.push(Date.now() - t0);
    state.maxInFlight = Math.max(state.maxInFlight, ++state.inFlight);
    await sleep(ms(n));
    state.inFlight--;
    const o = outcome(n);
    if (o === 'final') throw tunnelError('WRONG_PIN', 'wrong PIN');
    if (o === 'fail') throw tunnelError('ICE_FAILED', `attempt ${n} found no path`);
    const s = fakeSession(`attempt ${n}`);
    state.sessions.push(s);
    return s;
  };
  return { state, connect };
}

test('no stream waiting: one attempt at a time, the delay doubling up to its cap', T, async () => {
  const { state, connect } = attempts(() => 5, (n) => (n < 4 ? 'fail' : 'ok'));
  const s = await reconnect(connect, log, () => false, () => false, timing);
  assert.equal((s as unknown as { name: string }).name, 'attempt 4');
  assert.equal(state.maxInFlight, 1);
  // delays 10, 20, 40, 80, 80 (+5 ms per attempt): each start later than the last by at least the delay
  const gaps = state.started.slice(1).map((t, i) => t - (state.started[i] ?? 0));
  for (const [i, want] of [20, 40, 80, 80].entries()) assert.ok((gaps[i] ?? 0) >= want, `gap ${i}: ${gaps[i]} ms, want >= ${want}`);
});

test('resuming: a new attempt every overlap while none connects; the first success wins, a later one is ended', T, async () => {
  // attempt 0 hangs 300 ms then connects (too late); attempt 1 connects after 30 ms
  const { state, connect } = attempts((n) => (n === 0 ? 300 : 30), () => 'ok');
  const s = await reconnect(connect, log, () => false, () => true, timing);
  assert.equal((s as unknown as { name: string }).name, 'attempt 1');
  assert.equal(state.started.length, 2, 'no attempt after the session is up');
  assert.ok((state.started[1] ?? 0) >= 35, `the second began after the overlap (${state.started[1]} ms)`);
  await sleep(320);
  assert.equal(state.sessions[1]?.name, 'attempt 0');
  assert.equal(state.sessions[1]?.endedWith, 'another attempt connected first');
  assert.equal(state.sessions[0]?.endedWith, null, 'the winner is left alone');
});

test('resuming: never more than maxAttempts in flight; a failure makes room after the short delay', T, async () => {
  // every attempt hangs 150 ms and fails, until attempt 5 connects
  const { state, connect } = attempts(() => 150, (n) => (n < 5 ? 'fail' : 'ok'));
  const s = await reconnect(connect, log, () => false, () => true, timing);
  assert.equal((s as unknown as { name: string }).name, 'attempt 5');
  assert.equal(state.maxInFlight, 3);
});

test('a final refusal (wrong PIN) ends it at once, even with attempts in flight', T, async () => {
  const { connect } = attempts((n) => (n === 0 ? 500 : 5), (n) => (n === 0 ? 'ok' : 'final'));
  await assert.rejects(reconnect(connect, log, () => false, () => true, timing), /wrong PIN/);
});

test('stopped: resolves null, and a session that connects after the stop is ended', T, async () => {
  let stop = false;
  const { state, connect } = attempts(() => 60, () => 'ok');
  const pending = reconnect(connect, log, () => stop, () => false, timing);
  await sleep(30); // the first attempt is in flight
  stop = true;
  assert.equal(await pending, null);
  assert.equal(state.sessions[0]?.endedWith, 'closing');
});
