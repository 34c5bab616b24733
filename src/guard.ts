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

export function createGuard(options?: Partial<GuardOptions>, now: () => number = Date.now) {
  const o: GuardOptions = { ...defaultGuard, ...options };
  const byAddress = new Map<string, Record_>();
  let global: number[] = [];
  let globalLockedUntil = 0;

  const recent = (list: number[], t: number) => list.filter((at) => t - at < o.windowMs);

  /** ms until this address may try again; 0 if it may now. */
  function locked(address: string): number {
    const t = now();
    const r = byAddress.get(address);
    return Math.max(0, globalLockedUntil - t, (r?.lockedUntil ?? 0) - t);
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
    r.failures = recent(r.failures, t);
    r.failures.push(t);
    if (r.failures.length >= o.maxFailuresPerAddress) {
      r.lockedUntil = t + Math.min(o.maxLockoutMs, o.lockoutMs * 2 ** r.lockouts);
      r.lockouts++;
      r.failures = [];
    }
    global = recent(global, t);
    global.push(t);
    if (global.length >= o.maxFailuresGlobal) {
      globalLockedUntil = t + o.lockoutMs;
      global = [];
    }
  }

  function succeeded(address: string): void {
    byAddress.delete(address);
  }

  return { locked, failed, succeeded, options: o };
}
