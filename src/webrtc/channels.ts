// The DataChannels of a session, and how they are opened.
//
// "small" carries every message under the coalescing size (CONNECT, WINDOW, FIN, RESET, PING,
// interactive DATA); full-size DATA goes on a "bulk" lane. All are unordered (each stream has its own
// sequence numbers, so no channel holds up another stream), so a stream's packets may cross over
// between channels freely.
//
// Each channel has a PeerConnection, so an SCTP association, of its own. In one association an
// interactive message shares the bulk data's congestion window and loss recovery: after a
// retransmission timeout usrsctp resends every outstanding bulk chunk, from a window of one MTU,
// before anything new, so under 1 % loss at RTT 40 ms a 1 KiB ping beside a download waited seconds
// (lab: p99 3.5-5.4 s against 0.24 s alone). Its own association has its own window and its own
// losses only. Bulk has several lanes for the same reason TCP downloads open several connections:
// usrsctp's congestion control is loss-based (NewReno), so on a lossy path one association carries
// about MSS / (RTT x sqrt(loss)) (0.35 MB/s at RTT 40 ms and 1 % loss), whatever its buffers; each
// lane is one more such share (lab: 8 downloads 0.44 MB/s on one lane, 1.5 on four). A stream keeps
// one lane for life (../dataplane/peer-link.ts), so its losses stall only that lane's streams. The
// cost per lane: one more ICE/DTLS handshake (all run at once), UDP port and TURN allocation, and
// about a MiB of memory (bench/README.md).
//
// All are created with maxRetransmits 65535. That is reliable in practice (the association aborts
// long before a chunk could be resent 65,535 times), and it keeps usrsctp off the SACK fast path that
// it takes only while no partially reliable data is in flight: on that path the retransmission timer
// is never restarted when new data is acknowledged (usrsctp since a7360a1e, sctp_indata.c), so under
// a steady flight it fires once per RTO and cuts the congestion window to one MTU although nothing
// was lost. That was the collapse on real paths: at RTT 40 ms a bare channel fell from ~20 MB/s to
// under 1 MB/s after 3-12 s in 6 of 7 runs (53-283 spurious timeouts per 20 s run); with this, 0
// timeouts in 39 of 44 runs (bench/lab/rawdc.ts --max-retransmits 65535 shows it).

import type ndc from 'node-datachannel';

/** The part of node-datachannel's DataChannel the data plane uses (a fake in unit tests, a WebSocket
 *  adapter for the fallback). */
export type Channel = Pick<ndc.DataChannel, 'sendMessageBinary' | 'bufferedAmount' | 'setBufferedAmountLowThreshold' | 'onBufferedAmountLow' | 'onMessage' | 'isOpen'>;

/** A session's channels: `small`, and one or more bulk lanes (each may be `small` itself: the
 *  fallback, the bench's one-association modes). */
export interface PeerChannels { small: Channel; bulk: readonly Channel[] }

/** See the header: reliable in practice, and no spurious-timeout collapse. */
export const MAX_RETRANSMITS = 65535;

/** Most bulk lanes a session may have (so a session has at most MAX_BULK_LANES + 1 PeerConnections). */
export const MAX_BULK_LANES = 8;
/** Bulk lanes when nothing says otherwise (see the header for why more than one). Eight, the most:
 *  in the lab 8 downloads at RTT 40 ms moved 80-84 MB/s on 8 lanes against 62-69 on 4, and under
 *  1 % loss 3.0-3.2 against 1.7 (plain TCP with cubic 3.6); one download, pings and RTT 100 ms as
 *  before. On loopback 64 streams 208-217 against 191-205 MB/s; idle RSS +1.4 MiB. The cost is
 *  ports: a session takes 9 UDP ports (and TURN allocations when relayed) instead of 5. */
export const DEFAULT_BULK_LANES = 8;

const LABELS = { small: 'small', bulk: 'bulk', ordered: 'ordered' } as const;

/** Bench only: one ordered channel for everything (`TUNNEL_BENCH_ORDERED=1` on the client), to show
 *  what the unordered channels and the small/bulk split buy. */
const benchOrdered = process.env.TUNNEL_BENCH_ORDERED === '1';
/** Bench only: both channels in one association (`TUNNEL_BENCH_ONE_ASSOCIATION=1` on the client), to
 *  show what the bulk channel's own association buys. */
const benchOneAssociation = process.env.TUNNEL_BENCH_ONE_ASSOCIATION === '1';

/** How many PeerConnections the client opens for a session with `lanes` bulk lanes: the small
 *  channel's, then one per lane. The host answers what it is offered. */
export function peerConnectionCount(lanes: number = DEFAULT_BULK_LANES): number {
  return benchOrdered || benchOneAssociation ? 1 : 1 + Math.max(1, Math.min(MAX_BULK_LANES, lanes));
}

export type Opened = { channels: PeerChannels; keep: ndc.DataChannel[] };

/** Every DataChannel made or accepted, until its close has reached JS, with who wants to hear of it.
 *  node-datachannel removes a channel from the set that ndc.cleanup() walks only after the channel's
 *  onClosed callback has run; a wrapper garbage-collected before that stays in the set, freed, and
 *  cleanup() then crashes or hangs for good (seen with five PeerConnections per session: the main
 *  thread waiting on a freed mutex in napi_release_threadsafe_function, under
 *  DataChannelWrapper::CloseAll, at the end of a test file). Holding each channel here until then
 *  keeps it alive; once closed it is dropped, so this holds only open channels — and, for good, the
 *  rare channel whose close never reaches JS (2 channels in 1 of 6 runs of lanes.test.ts; why, not
 *  established): node-datachannel (0.33, data-channel-wrapper.cpp) takes a channel out of its set
 *  only in the finalizer of that onClosed call, so such a channel stays in the set whatever we do.
 *  Holding it costs its JS wrapper; letting it go would be the crash above. */
const closeWatch = new Map<ndc.DataChannel, (() => void)[]>();

/** Calls `fn` once `dc` has closed; holds `dc` (see closeWatch) until then. */
export function watchClosed(dc: ndc.DataChannel, fn: () => void = () => {}): void {
  const listeners = closeWatch.get(dc);
  if (listeners) {
    listeners.push(fn);
    return;
  }
  const closed = () => {
    const all = closeWatch.get(dc) ?? [];
    closeWatch.delete(dc);
    for (const listener of all) listener();
  };
  closeWatch.set(dc, [fn]);
  try {
    dc.onClosed(closed);
  } catch {
    // destroyed already (its PeerConnection closed while the channel was on its way to us); a throw
    // here, inside node-datachannel's onDataChannel callback, would abort the process
    queueMicrotask(closed);
  }
}

/** Channels still held, open or closing (for tests). */
export const watchedChannels = (): number => closeWatch.size;

/** Client side: creates the channels, the small one on the first PeerConnection and a bulk one on
 *  each of the others (or on the first, if it is alone); `opened` resolves once all are open.
 *  `byPc[i]` is PeerConnection i's channel (with one PeerConnection, its small one), or undefined where
 *  libdatachannel could not create it (no free port in --ice-port-range: it gathers as the first
 *  channel is made); `onOpen(i)` hears each one open. Only the small channel's failure throws. */
export function openChannels(pcs: readonly ndc.PeerConnection[], onOpen: (index: number) => void = () => {}): { opened: Promise<Opened>; all: ndc.DataChannel[]; byPc: (ndc.DataChannel | undefined)[] } {
  const first = pcs[0];
  if (!first) throw new Error('no PeerConnection to open channels on');
  const make = (pc: ndc.PeerConnection, label: string, ordered: boolean) => pc.createDataChannel(label, { unordered: !ordered, maxRetransmits: MAX_RETRANSMITS });
  const lane = (pc: ndc.PeerConnection) => {
    try {
      return make(pc, LABELS.bulk, false);
    } catch {
      return undefined; // a lane short: the handshake goes on with the others (client-handshake.ts)
    }
  };
  const byPc = benchOrdered ? [make(first, LABELS.ordered, true)]
    : pcs.length === 1 ? [make(first, LABELS.small, false)]
      : [make(first, LABELS.small, false), ...pcs.slice(1).map(lane)];
  const all = byPc.filter((dc): dc is ndc.DataChannel => dc !== undefined);
  if (!benchOrdered && pcs.length === 1) all.push(make(first, LABELS.bulk, false));
  for (const dc of all) watchClosed(dc);
  const whenOpen = (dc: ndc.DataChannel, index: number) => new Promise<void>((resolve) => {
    const opened = () => { onOpen(index); resolve(); };
    if (dc.isOpen()) opened(); else dc.onOpen(opened);
  });
  const each = all.map((dc) => whenOpen(dc, Math.max(0, byPc.indexOf(dc))));
  // with a lane that could not be made there is no whole set to wait for: the handshake decides
  const whole = all.length === byPc.length || pcs.length === 1;
  const opened = whole ? Promise.all(each).then(() => ({ channels: asPeerChannels(all), keep: all })) : new Promise<Opened>(() => {});
  return { opened, all, byPc };
}

/** The channels of the PeerConnections `kept` (the small channel's first): a session that goes on
 *  with the lanes that opened in time (none: the small channel carries everything). */
export function keptChannels(byPc: readonly (ndc.DataChannel | undefined)[], kept: readonly number[]): Opened {
  const keep = kept.map((i) => byPc[i]).filter((dc): dc is ndc.DataChannel => dc !== undefined);
  return { channels: asPeerChannels(keep), keep };
}

/** Host side: collects the channels the client opens on the session's `count()` PeerConnections (each
 *  one is given to `watch` with its index as it is made); calls `ready` once it has a whole set: the
 *  ordered channel, or the small one and a bulk one per PeerConnection after the first (one on the
 *  first if it is alone). A channel with another label, a second one of a label on one
 *  PeerConnection, or one too many, is closed. `partial(kept)` takes the set of just those
 *  PeerConnections instead, if each has its channel here (the client went on without the others). */
export function acceptChannels(count: () => number, ready: (opened: Opened) => void): {
  watch(pc: ndc.PeerConnection, index: number): void;
  partial(kept: readonly number[]): Opened | null;
} {
  // labels as they came: a channel of `got` may be closed by now, and asking a closed channel its
  // label throws, which inside node-datachannel's callback aborts the process
  const got: { dc: ndc.DataChannel; label: string; index: number }[] = [];
  let done = false;
  const watch = (pc: ndc.PeerConnection, index: number) => {
    const labels = new Set<string>();
    pc.onDataChannel((dc) => {
      // nothing may throw out of here: inside node-datachannel's callback a JS exception aborts the
      // process, and a session that ends while its last channel arrives leaves the others destroyed
      try {
        accept(dc);
      } catch {
        try { dc.close(); } catch { /* destroyed */ }
      }
    });
    const accept = (dc: ndc.DataChannel) => {
      watchClosed(dc);
      let label: string;
      try {
        label = dc.getLabel();
      } catch {
        return; // closed already: its PeerConnection closed while the channel was on its way here
      }
      if (done) {
        dc.close();
        return;
      }
      const known = label === LABELS.small || label === LABELS.bulk || label === LABELS.ordered;
      const bulks = got.filter((g) => g.label === LABELS.bulk).length;
      const tooMany = (label === LABELS.small && got.some((g) => g.label === LABELS.small))
        || (label === LABELS.bulk && bulks >= Math.max(1, count() - 1));
      if (!known || labels.has(label) || tooMany) {
        dc.close();
        return;
      }
      labels.add(label);
      got.push({ dc, label, index });
      const whole = got.some((g) => g.label === LABELS.ordered)
        || (got.some((g) => g.label === LABELS.small) && got.length - 1 === Math.max(1, count() - 1));
      if (!whole) return;
      done = true;
      const keep = got.map((g) => g.dc);
      ready({ channels: asPeerChannels(keep), keep });
    };
  };
  const partial = (kept: readonly number[]): Opened | null => {
    if (done || count() < 2) return null;
    const small = got.find((g) => g.index === 0 && g.label === LABELS.small);
    const lanes = kept.slice(1).map((i) => got.find((g) => g.index === i && g.label === LABELS.bulk));
    if (kept[0] !== 0 || !small || lanes.some((g) => g === undefined)) return null;
    const keep = [small, ...lanes].map((g) => (g as { dc: ndc.DataChannel }).dc);
    try {
      if (!keep.every((dc) => dc.isOpen())) return null;
    } catch {
      return null; // closed meanwhile
    }
    done = true;
    return { channels: asPeerChannels(keep), keep };
  };
  return { watch, partial };
}

function asPeerChannels(all: ndc.DataChannel[]): PeerChannels {
  const ordered = all.find((dc) => dc.getLabel() === LABELS.ordered);
  if (ordered) return { small: ordered, bulk: [ordered] };
  const small = all.find((dc) => dc.getLabel() === LABELS.small);
  const bulk = all.filter((dc) => dc.getLabel() === LABELS.bulk);
  if (!small) throw new Error('incomplete set of channels');
  // no lane opened in time (keptChannels): the small channel carries the bulk data as well
  return { small, bulk: bulk.length > 0 ? bulk : [small] };
}
