// A shard's counters per service, and its event loop's delay: what the metrics endpoint reports per
// service and per shard. Each stream holds a reference to its service's record, so the hot path is
// plain increments on an object it already has (no lookup by name per packet); the main thread reads
// copies on a stats request.
//
// Which service: client side a stream's forward names it from the start; host side it is known once
// CONNECT is delivered and names an exposed service. Until then (DATA that overtook its CONNECT) the
// stream's bytes wait in the stream's own tally and join its service when it is known; a stream that
// never names an exposed service ends in the '' record.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { ServiceStats } from '../src/shared/thread-messages.js';

/** The record of streams that named no exposed service (or sent no CONNECT). */
export const NO_SERVICE = '';

/** Reset codes that mean the stream's service could not be reached (the dial was refused). */
const REFUSED = /^(?:PEER_RESET: )?(UNKNOWN_SERVICE|DIAL_FAILED|TOO_MANY_STREAMS)\b/;

/** Resolution of the event-loop delay histogram (ms): each sample wakes the thread, so this sets the
 *  cost of measuring an idle shard (20 ms: ~2.5 ms CPU/s per shard measured here; 100 ms: a fifth of it).
 *  A stall still shows in full (the timer fires that much late); only short ones are sampled less. */
const LOOP_RESOLUTION_MS = 100;

export function createServiceCounters() {
  const records = new Map<string, ServiceStats>();

  function record(service: string): ServiceStats {
    let r = records.get(service);
    if (!r) records.set(service, (r = { open: 0, opened: 0, closed: 0, reset: {}, refused: {}, bytesIn: 0, bytesOut: 0 }));
    return r;
  }

  /** A stream began on `r`. */
  function opened(r: ServiceStats): void {
    r.opened++;
    r.open++;
  }

  /** A stream of `r` ended: `reason` null for a clean close, else its reset reason. */
  function ended(r: ServiceStats, code: string | null, reason: string | null): void {
    r.open--;
    if (code === null || reason === null) {
      r.closed++;
      return;
    }
    r.reset[code] = (r.reset[code] ?? 0) + 1;
    const refused = REFUSED.exec(reason)?.[1];
    if (refused) r.refused[refused] = (r.refused[refused] ?? 0) + 1;
  }

  /** Copies for a stats reply (the records keep counting). */
  function snapshot(): Record<string, ServiceStats> {
    const out: Record<string, ServiceStats> = {};
    for (const [name, r] of records) out[name] = { ...r, reset: { ...r.reset }, refused: { ...r.refused } };
    return out;
  }

  return { record, opened, ended, snapshot };
}

export type ServiceCounters = ReturnType<typeof createServiceCounters>;

/** The event loop's delay since the previous read (p99 and max, ms); zeros when not measuring. */
export function loopDelayMonitor(measure: boolean): { read(): { p99Ms: number; maxMs: number }; stop(): void } {
  let histogram: ReturnType<typeof monitorEventLoopDelay> | null = null;
  if (measure) {
    histogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    histogram.enable();
  }
  return {
    read() {
      if (!histogram || histogram.count === 0) return { p99Ms: 0, maxMs: 0 };
      // the histogram's samples include the resolution's own wait: what is left over is the lag
      const lag = (ns: number) => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS);
      const figures = { p99Ms: lag(histogram.percentile(99)), maxMs: lag(histogram.max) };
      histogram.reset();
      return figures;
    },
    stop() { histogram?.disable(); },
  };
}
