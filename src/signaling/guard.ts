// Limits online PIN guessing: a few failures per source address and a global budget per window,
// then a lockout that doubles with each repeat. The PAKE makes every guess an online guess; this
// makes online guesses scarce. See README ("Security model") for the budget this gives.

export interface GuardOptions {
  /** failed PINs one address may make per window before it is locked out */
  maxFailuresPerAddress: number;
  /** failed PINs from all addresses together per window before everyone is locked out */
  maxFailuresGlobal: number;
  /** the window over which failures are counted (ms) */
  windowMs: number;
  /** first lockout (ms); each further lockout of the same address doubles it, up to maxLockoutMs */
  lockoutMs: number;
  maxLockoutMs: number;
}

export const defaultGuard: GuardOptions = {
  maxFailuresPerAddress: 5,
  maxFailuresGlobal: 20,
  windowMs: 10 * 60_000,
  lockoutMs: 60_000,
  maxLockoutMs: 60 * 60_000,
};

/** Addresses remembered at once; the oldest is forgotten past it (bounded memory under a scan). */
const MAX_TRACKED_ADDRESSES = 10_000;

interface Record_ { failures: number[]; lockedUntil: number; lockouts: number }

/** What the guard has done since start (the metrics endpoint reports them). */
export interface GuardCounts {
  /** wrong PINs, and attempts that ended without a verdict */
  failures: number;
  /** lockouts begun: of one address, or of everyone (the global budget) */
  lockouts: number;
  /** attempts turned away because of a lockout or the budget in flight */
  refused: number;
}

export function createGuard(options?: Partial<GuardOptions>, now: () => number = Date.now) {
  const o: GuardOptions = { ...defaultGuard, ...options };
  const byAddress = new Map<string, Record_>();
  let global: number[] = [];
  let globalLockedUntil = 0;
  const counts: GuardCounts = { failures: 0, lockouts: 0, refused: 0 };

  const recent = (list: number[], t: number) => list.filter((at) => t - at < o.windowMs);

  const inFlight = new Map<string, number>();
  let inFlightTotal = 0;

  /** ms until this address may try again; 0 if it may now. */
  function locked(address: string): number {
    const t = now();
    const r = byAddress.get(address);
    return Math.max(0, globalLockedUntil - t, (r?.lockedUntil ?? 0) - t);
  }

  /**
   * Starts one PIN attempt, or says how long to wait. Attempts in flight count against the budget
   * as if they failed, so opening many connections at once cannot outrun the lockout.
   */
  function begin(address: string): { wait: number; end: (ok: boolean) => void } {
    const t = now();
    const wait = locked(address);
    const mine = inFlight.get(address) ?? 0;
    const failures = recent(byAddress.get(address)?.failures ?? [], t).length;
    const busy = mine + failures >= o.maxFailuresPerAddress || inFlightTotal + recent(global, t).length >= o.maxFailuresGlobal;
    if (wait > 0 || busy) {
      counts.refused++;
      return { wait: Math.max(wait, 1000), end: () => {} };
    }
    inFlight.set(address, mine + 1);
    inFlightTotal++;
    let ended = false;
    return {
      wait: 0,
      end: (ok) => {
        if (ended) return;
        ended = true;
        inFlightTotal--;
        const n = (inFlight.get(address) ?? 1) - 1;
        if (n > 0) inFlight.set(address, n); else inFlight.delete(address);
        if (ok) succeeded(address); else failed(address);
      },
    };
  }

  function failed(address: string): void {
    const t = now();
    let r = byAddress.get(address);
    if (!r) {
      if (byAddress.size >= MAX_TRACKED_ADDRESSES) {
        const oldest = byAddress.keys().next().value;
        if (oldest !== undefined) byAddress.delete(oldest);
      }
      byAddress.set(address, (r = { failures: [], lockedUntil: 0, lockouts: 0 }));
    }
    counts.failures++;
    r.failures = recent(r.failures, t);
    r.failures.push(t);
    if (r.failures.length >= o.maxFailuresPerAddress) {
      counts.lockouts++;
      r.lockedUntil = t + Math.min(o.maxLockoutMs, o.lockoutMs * 2 ** r.lockouts);
      r.lockouts++;
      r.failures = [];
    }
    global = recent(global, t);
    global.push(t);
    // everyone waits until the oldest failure leaves the window: never more than the budget per window
    if (global.length >= o.maxFailuresGlobal) {
      if (globalLockedUntil <= t) counts.lockouts++;
      globalLockedUntil = Math.max(globalLockedUntil, (global[0] ?? t) + o.windowMs);
    }
  }

  function succeeded(address: string): void {
    byAddress.delete(address);
  }

  return { locked, begin, failed, succeeded, options: o, counts: (): GuardCounts => ({ ...counts }) };
}

export type Guard = ReturnType<typeof createGuard>;
