// Stamps for the benchmark's latency breakdown (bench/breakdown.ts). With TUNNEL_TRACE=DIR in the
// environment of `tunnel host` or `tunnel client`, the main thread records when it reads a TCP chunk,
// calls and returns from sendMessageBinary, receives a DataChannel message and writes to TCP, on
// process.hrtime (CLOCK_MONOTONIC: the same clock in every process), and writes them to
// DIR/trace.<pid>.json at exit. Only the main thread records, so with `--workers 0` that is every
// event. Without the variable each hook is one null check.

import { isMainThread } from 'node:worker_threads';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const TraceEvent = { READ: 1, SEND: 2, SENT: 3, MESSAGE: 4, WRITE: 5 } as const;
export type TraceEvent = (typeof TraceEvent)[keyof typeof TraceEvent];

/** Events kept at most (16 bytes each); recording stops there. */
const MAX_EVENTS = 200_000;

export interface TraceFile { pid: number; events: [TraceEvent, string][] }

function createTrace(dir: string) {
  const codes = new Uint8Array(MAX_EVENTS);
  const times = new BigInt64Array(MAX_EVENTS);
  let n = 0;
  process.on('exit', () => {
    const events: TraceFile['events'] = [];
    for (let i = 0; i < n; i++) events.push([codes[i] as TraceEvent, String(times[i])]);
    writeFileSync(join(dir, `trace.${process.pid}.json`), JSON.stringify({ pid: process.pid, events } satisfies TraceFile));
  });
  return {
    stamp(event: TraceEvent): void {
      if (n >= MAX_EVENTS) return;
      codes[n] = event;
      times[n++] = process.hrtime.bigint();
    },
  };
}

const dir = process.env.TUNNEL_TRACE;
export const trace = dir && isMainThread ? createTrace(dir) : null;
