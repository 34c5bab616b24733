// A run's per-second throughput, and whether it collapsed: the figure issue 12 is about. After the
// first RAMP_SECONDS (slow start: TCP at RTT 100 ms, SCTP's initial window, a tunnel's first round
// trips), two checks:
//   collapse  a second under COLLAPSE_FRACTION of the run's median second (issue 12's target);
//   drop      a second under DROP_FRACTION of the run's best second. A collapse that lasts most of the
//             run drags the median down with it and passes the first check (usrsctp's collapse often
//             comes after 3 s and stays); this one still sees it. Load on a shared machine makes
//             seconds differ by 2-4x (plain TCP: 100 vs 416 MB/s), not by 10x.

import { median } from '../stats.js';

/** Seconds at the start left out of the checks (s). */
export const RAMP_SECONDS = 2;
/** A second below this share of the run's median second is a collapse. */
export const COLLAPSE_FRACTION = 0.25;
/** A second below this share of the run's best second is a drop. */
export const DROP_FRACTION = 0.1;

export interface SeriesCheck {
  /** the median second after the ramp (MB/s) */
  medianSecond: number;
  /** the slowest and the fastest second after the ramp (MB/s) */
  minSecond: number;
  maxSecond: number;
  /** seconds after the ramp under COLLAPSE_FRACTION × medianSecond */
  lowSeconds: number;
  /** seconds after the ramp under DROP_FRACTION × maxSecond */
  dropSeconds: number;
  collapse: boolean;
  drop: boolean;
}

export function checkSeries(perSecond: readonly number[], rampSeconds = RAMP_SECONDS): SeriesCheck {
  const steady = perSecond.slice(rampSeconds);
  const medianSecond = median(steady);
  const minSecond = steady.length ? Math.min(...steady) : Number.NaN;
  const maxSecond = steady.length ? Math.max(...steady) : Number.NaN;
  const lowSeconds = steady.filter((v) => v < COLLAPSE_FRACTION * medianSecond).length;
  const dropSeconds = steady.filter((v) => v < DROP_FRACTION * maxSecond).length;
  return { medianSecond, minSecond, maxSecond, lowSeconds, dropSeconds, collapse: lowSeconds > 0, drop: dropSeconds > 0 };
}

/** Whether second `i` of a series fails either check (for marking it). */
export function isLowSecond(check: SeriesCheck, i: number, v: number, rampSeconds = RAMP_SECONDS): boolean {
  return i >= rampSeconds && (v < COLLAPSE_FRACTION * check.medianSecond || v < DROP_FRACTION * check.maxSecond);
}

/** The mean of the seconds (MB/s): the bytes of the whole window over its length. */
export function meanOf(perSecond: readonly number[]): number {
  return perSecond.length ? perSecond.reduce((a, b) => a + b, 0) / perSecond.length : Number.NaN;
}
