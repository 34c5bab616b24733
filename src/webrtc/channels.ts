// The DataChannels of a session, and how they are opened.
//
// Two channels, two SCTP streams of one association: "small" carries every message under the
// coalescing size (CONNECT, WINDOW, FIN, RESET, PING, interactive DATA) and "bulk" the full-size DATA.
// usrsctp serves the streams round-robin, so a small message waits for at most the bulk message
// being cut into chunks, not for everything queued behind it in the association: an interactive
// stream beside a bulk one stays interactive. Both are unordered (each stream has its own sequence
// numbers, so neither channel holds up another stream), so a stream's packets may cross over
// between the two channels freely.
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

type Opened = { channels: PeerChannels; keep: ndc.DataChannel[] };

/** Client side: creates the channels; resolves once all are open. */
export function openChannels(pc: ndc.PeerConnection): { opened: Promise<Opened>; all: ndc.DataChannel[] } {
  const make = (label: string, ordered: boolean) => pc.createDataChannel(label, { unordered: !ordered, maxRetransmits: MAX_RETRANSMITS });
  const all = benchOrdered ? [make(LABELS.ordered, true)] : [make(LABELS.small, false), make(LABELS.bulk, false)];
  const opened = Promise.all(all.map((dc) => new Promise<void>((resolve) => { if (dc.isOpen()) resolve(); else dc.onOpen(() => resolve()); })))
    .then(() => ({ channels: asPeerChannels(all), keep: all }));
  return { opened, all };
}

/** Host side: collects the channels the client opens; calls `ready` once it has a whole set. A
 *  channel with another label, or one too many, is closed. */
export function acceptChannels(pc: ndc.PeerConnection, ready: (opened: Opened) => void): void {
  const got: ndc.DataChannel[] = [];
  let done = false;
  pc.onDataChannel((dc) => {
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
