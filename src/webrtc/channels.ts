// The DataChannels of a session, and how they are opened.
//
// Two channels: "small" carries every message under the coalescing size (CONNECT, WINDOW, FIN,
// RESET, PING, interactive DATA) and "bulk" the full-size DATA. Both are unordered (each stream has
// its own sequence numbers, so neither channel holds up another stream), so a stream's packets may
// cross over between the two channels freely.
//
// Each channel has a PeerConnection, so an SCTP association, of its own. In one association an
// interactive message shares the bulk data's congestion window and loss recovery: after a
// retransmission timeout usrsctp resends every outstanding bulk chunk, from a window of one MTU,
// before anything new, so under 1 % loss at RTT 40 ms a 1 KiB ping beside a download waited seconds
// (lab: p99 3.5-5.4 s against 0.24 s alone). Its own association has its own window and its own
// losses only. The cost: a second ICE/DTLS handshake (in parallel with the first), a second UDP port
// and TURN allocation, and a few MiB of memory per session (bench/README.md).
//
// Both are created with maxRetransmits 65535. That is reliable in practice (the association aborts
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

/** A session's channels; `small` and `bulk` may be one and the same channel. */
export interface PeerChannels { small: Channel; bulk: Channel }

/** See the header: reliable in practice, and no spurious-timeout collapse. */
export const MAX_RETRANSMITS = 65535;

const LABELS = { small: 'small', bulk: 'bulk', ordered: 'ordered' } as const;

/** Bench only: one ordered channel for everything (`TUNNEL_BENCH_ORDERED=1` on the client), to show
 *  what the unordered channels and the small/bulk split buy. */
const benchOrdered = process.env.TUNNEL_BENCH_ORDERED === '1';
/** Bench only: both channels in one association (`TUNNEL_BENCH_ONE_ASSOCIATION=1` on the client), to
 *  show what the bulk channel's own association buys. */
const benchOneAssociation = process.env.TUNNEL_BENCH_ONE_ASSOCIATION === '1';

/** How many PeerConnections the client opens for a session: the host answers what it is offered. */
export const PEER_CONNECTIONS = benchOrdered || benchOneAssociation ? 1 : 2;

type Opened = { channels: PeerChannels; keep: ndc.DataChannel[] };

/** Client side: creates the channels, the small one on the first PeerConnection and the bulk one on
 *  the last; resolves once all are open. */
export function openChannels(pcs: readonly ndc.PeerConnection[]): { opened: Promise<Opened>; all: ndc.DataChannel[] } {
  const first = pcs[0];
  const last = pcs[pcs.length - 1];
  if (!first || !last) throw new Error('no PeerConnection to open channels on');
  const make = (pc: ndc.PeerConnection, label: string, ordered: boolean) => pc.createDataChannel(label, { unordered: !ordered, maxRetransmits: MAX_RETRANSMITS });
  const all = benchOrdered ? [make(first, LABELS.ordered, true)] : [make(first, LABELS.small, false), make(last, LABELS.bulk, false)];
  const opened = Promise.all(all.map((dc) => new Promise<void>((resolve) => { if (dc.isOpen()) resolve(); else dc.onOpen(() => resolve()); })))
    .then(() => ({ channels: asPeerChannels(all), keep: all }));
  return { opened, all };
}

/** Host side: collects the channels the client opens on any of the session's PeerConnections (each
 *  one is given to the returned function as it is made); calls `ready` once it has a whole set. A
 *  channel with another label, or one too many, is closed. */
export function acceptChannels(ready: (opened: Opened) => void): (pc: ndc.PeerConnection) => void {
  const got: ndc.DataChannel[] = [];
  let done = false;
  return (pc) => pc.onDataChannel((dc) => {
    const label = dc.getLabel();
    const known = label === LABELS.small || label === LABELS.bulk || label === LABELS.ordered;
    if (done || !known || got.some((g) => g.getLabel() === label)) {
      dc.close();
      return;
    }
    got.push(dc);
    const whole = got.some((g) => g.getLabel() === LABELS.ordered) || (got.length === 2);
    if (!whole) return;
    done = true;
    ready({ channels: asPeerChannels(got), keep: got });
  });
}

function asPeerChannels(all: ndc.DataChannel[]): PeerChannels {
  const by = (label: string) => all.find((dc) => dc.getLabel() === label);
  const ordered = by(LABELS.ordered);
  const small = ordered ?? by(LABELS.small);
  const bulk = ordered ?? by(LABELS.bulk);
  if (!small || !bulk) throw new Error('incomplete set of channels');
  return { small, bulk };
}
