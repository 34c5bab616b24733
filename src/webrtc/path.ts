// The path ICE selected for a PeerConnection: which kind of candidate carries it (host, srflx, prflx
// or relay), whether a TURN relay is on it, the two ends, and the round-trip time libdatachannel
// measured. Null while no pair is selected (or once the connection is closed).

import type ndc from 'node-datachannel';

export interface SelectedPath {
  /** the local candidate's type */
  kind: 'host' | 'srflx' | 'prflx' | 'relay';
  /** a TURN relay is on the path (either end's candidate is a relay) */
  relayed: boolean;
  /** "address:port" of each end */
  local: string;
  remote: string;
  rttMs: number | null;
}

const KINDS = new Set(['host', 'srflx', 'prflx', 'relay']);

const endpoint = (c: { address: string; port: number }) => (c.address.includes(':') ? `[${c.address}]:${c.port}` : `${c.address}:${c.port}`);

export function selectedPath(pc: ndc.PeerConnection): SelectedPath | null {
  let pair: ReturnType<ndc.PeerConnection['getSelectedCandidatePair']>;
  let rtt: number | undefined;
  try {
    pair = pc.getSelectedCandidatePair();
    rtt = pc.rtt();
  } catch {
    return null; // closed
  }
  if (!pair) return null;
  const kind = KINDS.has(pair.local.type) ? (pair.local.type as SelectedPath['kind']) : 'host';
  return {
    kind,
    relayed: pair.local.type === 'relay' || pair.remote.type === 'relay',
    local: endpoint(pair.local),
    remote: endpoint(pair.remote),
    rttMs: typeof rtt === 'number' && Number.isFinite(rtt) && rtt >= 0 ? rtt : null,
  };
}
