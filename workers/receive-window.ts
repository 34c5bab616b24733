// One stream's receive window: how much the peer may send it unacknowledged, and when to give credit
// back. It starts small and grows while the peer keeps it busy, so a bulk stream grows to what its
// path carries and an idle or slow one never holds more than the initial window.
//
//   received(n)  peer's DATA arrives     unacked += n; past the window: a flow violation
//   consumed(n)  our socket took n bytes  creditable += n; once >= window/4, credit goes back (WINDOW)
//
// Growth (auto-tuning). Over each spell (at least two round trips) the window measures how fast its
// socket took bytes, and aims at holding that rate for the path's round trip (the keepalive's
// minimum, without queueing) plus QUEUE_BUDGET_MS of queueing. While smaller it grows toward that, at
// most doubling, up to `max`, by what the shard's budget grants (the budget bounds the sum of grown
// windows: 10,000 streams never hold 10,000 large windows); the extra is sent as credit the peer
// never spent. A window-limited stream's rate rises with its window, so it grows until its round
// trip stretches past the path's plus the budget, that is, until a bigger window would only queue.
// That matters: what a stream has in flight waits in queues every stream shares (libdatachannel's
// send queue, the receiver's message queue), and beside a download whose window had grown to 16 MiB
// a ping waited 300 ms on loopback and seconds in the lab. A slow application takes bytes slowly and
// its window does not grow. With `initial === max` (`--window`) the window is fixed.

export interface ReceiveWindowOptions {
  /** the window a stream starts with (bytes): what the peer may send before any credit */
  initial: number;
  /** the most it may grow to (bytes): what we announced as our window */
  max: number;
  /** the path's round-trip time to the peer, without queueing (ms) */
  rttMs(): number;
  /** asks to grow by `bytes`; returns what the budget grants (0..bytes) */
  grow(bytes: number): number;
  now?: () => number;
}

/** A rate over a shorter spell is a burst, not a rate (ms): data arrives in bursts of up to a
 *  window, and SCTP delivers in bursts too; over 50 ms spells at RTT 40 ms the rate read up to twice
 *  the real one. A spell lasts at least this and two round trips. */
const EPOCH_MIN_MS = 100;
/** How much window a rate needs per round trip (plus budget). Twice, as Linux's receive-buffer
 *  auto-tuning: a window-limited stream has about 3/4 of its window in flight (credit comes back in
 *  quarters), so this doubles it per spell, while one that the path limits stops at about twice its
 *  rate's worth. 1.5 grew a window by ~1.2x per spell: one download at RTT 100 ms took 6-8 s to
 *  reach the path's 27 MB/s (15.3-19.6 MB/s over 15 s, its third second under a quarter of its
 *  median); with 2, 3 s (23.4 and 23.4 MB/s), pings beside it alike (p50 108-124 vs 115-117 ms), and
 *  at RTT 40 ms 1 and 8 streams within noise (lab, tunnel bench --lab --tunnel-only, 2 runs each). */
const WINDOW_PER_RATE_RTT = 2;
/** The queueing a window may add on top of the path's round trip (ms): latency for every other
 *  stream, against throughput for this one. Loopback, one download and a ping beside it (single
 *  runs): a fixed 256 KiB window gave 56 MB/s and a 4 ms ping; 1 MiB, 64 MB/s and 16 ms; 16 MiB,
 *  91 MB/s and 290 ms; this rule with a 5 ms budget 53-63 MB/s and 15-17 ms, with 10 ms 80-83 MB/s
 *  and 31 ms. In the lab (RTT 40 ms): a fixed 1 MiB window 17 MB/s and a 53 ms ping (p99 77); grown
 *  to 16 MiB 25-31 MB/s and 250 ms (p99 5.6 s); this rule 20-30 MB/s and about 100 ms (p99 0.4-0.6 s). */
const QUEUE_BUDGET_MS = 10;
/** A window grows in steps of one full packet (bytes). */
const GROW_STEP_BYTES = 64 * 1024;

export function createReceiveWindow(options: ReceiveWindowOptions) {
  const now = options.now ?? Date.now;
  let size = options.initial;
  let unacked = 0; // bytes received that we have not credited back yet
  let creditable = 0; // of those, bytes our socket has accepted
  let epochStart = now();
  let epochBytes = 0;

  /** Grows the window if the rate it carries needs more room; the bytes granted. */
  function maybeGrow(): number {
    const t = now();
    const elapsed = t - epochStart;
    const rtt = options.rttMs();
    if (elapsed < Math.max(EPOCH_MIN_MS, 2 * rtt)) return 0;
    const target = WINDOW_PER_RATE_RTT * (epochBytes / elapsed) * (rtt + QUEUE_BUDGET_MS);
    epochStart = t;
    epochBytes = 0;
    if (size >= target || size >= options.max) return 0;
    // toward the target, at most doubling per spell (the rate it measured was carried by this window)
    const next = Math.min(options.max, 2 * size, Math.ceil(target / GROW_STEP_BYTES) * GROW_STEP_BYTES);
    const granted = options.grow(next - size);
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
    /** A resume: the packets held out of order (`heldBytes` of payload) are dropped, since the peer
     *  sends again everything from our next sequence number; what the socket already took counts as
     *  credited (the WINDOWs of the outage were lost). Returns what the peer may now have in flight:
     *  the window less what we hold delivered but not yet written out. */
    resume(heldBytes: number): number {
      unacked -= heldBytes + creditable;
      creditable = 0;
      return Math.max(0, size - unacked);
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
