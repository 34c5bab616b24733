// The baseline: a raw node-datachannel DataChannel between two processes (bench/raw-peer.ts), with
// the tunnel's message size and backpressure. What it moves and how fast is the transport's capacity
// on this machine; every tunnel figure is printed as a ratio to it.

import { forkScript, stop, type Child } from './children.js';
import { call } from './ipc.js';
import type { LatencyResult, LatencySummary, RawSignal } from './jobs.js';

export interface RawPair {
  offer: Child;
  answer: Child;
  close(): Promise<void>;
}

export interface RawBulk { ok: boolean; bytes: number; ms: number; mbps: number; cpuMs: number; cpuMsPerMB: number }

/** Time to set up the pair (ms). */
const OPEN_TIMEOUT_MS = 20000;
/** Margin on top of a job's own bound before the harness gives up on the child (ms). */
const CALL_MARGIN_MS = 5000;

const isSignal = (m: unknown): m is RawSignal => typeof m === 'object' && m !== null && (m as { t?: unknown }).t === 'signal';

export async function startRawPair(): Promise<RawPair> {
  const offer = forkScript('raw-offer', 'raw-peer.js', ['offer']);
  const answer = forkScript('raw-answer', 'raw-peer.js', ['answer']);
  const close = async () => {
    await Promise.allSettled([call(offer.proc, { t: 'close' }, 2000), call(answer.proc, { t: 'close' }, 2000)]);
    await Promise.all([stop(offer, 1000), stop(answer, 1000)]);
  };
  offer.proc.on('message', (m: unknown) => { if (isSignal(m) && answer.proc.connected) answer.proc.send(m); });
  answer.proc.on('message', (m: unknown) => { if (isSignal(m) && offer.proc.connected) offer.proc.send(m); });
  try {
    await Promise.all([
      call(answer.proc, { t: 'open', timeoutMs: OPEN_TIMEOUT_MS }, OPEN_TIMEOUT_MS + CALL_MARGIN_MS),
      call(offer.proc, { t: 'open', timeoutMs: OPEN_TIMEOUT_MS }, OPEN_TIMEOUT_MS + CALL_MARGIN_MS),
    ]);
  } catch (err) {
    await close();
    throw new Error(`raw DataChannel baseline did not open: ${(err as Error).message}\n  ${[...offer.log, ...answer.log].slice(-8).join('\n  ')}`);
  }
  return { offer, answer, close };
}

async function cpuUs(child: Child): Promise<number> {
  return (await call<{ us: number }>(child.proc, { t: 'cpu' }, 5000)).us;
}

/** `bytes` one way; throughput from the harness's clock, CPU of both processes (all threads). */
export async function rawBulk(pair: RawPair, from: 'offer' | 'answer', bytes: number, timeoutMs: number): Promise<RawBulk> {
  const sender = from === 'offer' ? pair.offer : pair.answer;
  const receiver = from === 'offer' ? pair.answer : pair.offer;
  const cpu0 = (await cpuUs(sender)) + (await cpuUs(receiver));
  const start = performance.now();
  let ok = true;
  try {
    const arrived = call(receiver.proc, { t: 'expect', bytes, timeoutMs }, timeoutMs + CALL_MARGIN_MS);
    await call(sender.proc, { t: 'send', bytes, timeoutMs }, timeoutMs + CALL_MARGIN_MS);
    await arrived;
  } catch {
    ok = false;
  }
  const ms = performance.now() - start;
  const cpuMs = ((await cpuUs(sender)) + (await cpuUs(receiver)) - cpu0) / 1000;
  const mb = bytes / 1e6;
  return { ok, bytes, ms, mbps: ok ? mb / (ms / 1000) : Number.NaN, cpuMs, cpuMsPerMB: ok ? cpuMs / mb : Number.NaN };
}

/** 1 KiB (or `size`) messages, one at a time, offerer -> answerer -> offerer. */
export async function rawLatency(pair: RawPair, size: number, count: number, warmup: number, timeoutMs: number): Promise<LatencySummary & { ok: boolean }> {
  const r = await call<LatencyResult>(pair.offer.proc, { t: 'ping', size, count, warmup, timeoutMs }, timeoutMs + CALL_MARGIN_MS);
  return { ...r.latency, ok: r.ok };
}
