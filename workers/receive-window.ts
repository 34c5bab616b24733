// One stream's receive window: how much the peer may send it unacknowledged, and when to give credit
// back. It starts small and doubles while the peer keeps it busy, so a bulk stream grows to its path's
// bandwidth-delay product and an idle or slow one never holds more than the initial window.
//
//   received(n)  peer's DATA arrives     unacked += n; past the window: a flow violation
//   consumed(n)  our socket took n bytes  creditable += n; once >= window/4, credit goes back (WINDOW)
//
// Growth (auto-tuning). Per round trip, if the socket took at least half a window, the sender was
// held back by the window, not by the path or the application: the window doubles, up to `max`, by
// as much as the shard's budget grants (the budget bounds the sum of grown windows, so 10,000 streams
// never hold 10,000 large windows). The extra is sent as credit the peer never spent. A stream whose
// application reads slowly returns credit slowly, consumes little per round trip, and does not grow.
// Without a budget or with `initial === max` (`--window`), the window is fixed.

export interface ReceiveWindowOptions {
  /** the window a stream starts with (bytes): what the peer may send before any credit */
  initial: number;
  /** the most it may grow to (bytes): what we announced as our window */
  max: number;
  /** the current round-trip time to the peer (ms) */
  rttMs(): number;
  /** asks to grow by `bytes`; returns what the budget grants (0..bytes) */
  grow(bytes: number): number;
  now?: () => number;
}

export function createReceiveWindow(options: ReceiveWindowOptions) {
  const now = options.now ?? Date.now;
  let size = options.initial;
  let unacked = 0; // bytes received that we have not credited back yet
  let creditable = 0; // of those, bytes our socket has accepted
  let epochStart = now();
  let epochBytes = 0;

  /** Doubles the window if the last round trip used at least half of it; the bytes granted. */
  function maybeGrow(): number {
    const t = now();
    if (t - epochStart < Math.max(1, options.rttMs())) return 0;
    const busy = epochBytes >= size / 2;
    epochStart = t;
    epochBytes = 0;
    if (!busy || size >= options.max) return 0;
    const granted = options.grow(Math.min(size, options.max - size));
    size += granted;
    return granted;
  }

  return {
    /** The peer sent `bytes`; false if that exceeds the window (the peer broke flow control). */
    received(bytes: number): boolean {
      unacked += bytes;
      return unacked <= size;
    },
    /** Our socket accepted `bytes`; the credit to send back now (0: not yet worth a packet). */
    consumed(bytes: number): number {
      creditable += bytes;
      epochBytes += bytes;
      const extra = maybeGrow();
      // less than a quarter window stays unreturned, so the sender always keeps 3/4 of its window
      if (creditable < size / 4 && extra === 0) return 0;
      const credit = creditable + extra;
      unacked -= creditable;
      creditable = 0;
      return credit;
    },
    /** The current window (bytes). */
    size: () => size,
    /** How much the window grew beyond its initial size: what the budget gets back when the stream ends. */
    grown: () => size - options.initial,
    /** Bytes received and not yet credited back. */
    unacked: () => unacked,
  };
}

export type ReceiveWindow = ReturnType<typeof createReceiveWindow>;
