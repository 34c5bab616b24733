// Which path a session's packets take, as both sides print it and the library returns it:
//
//   direct   host   the two sides reached each other's own addresses (a LAN, or no NAT)
//            srflx  through a NAT mapping that STUN found (a cone NAT)
//            prflx  through a mapping found during the checks themselves (often a symmetric NAT)
//   relayed  relay  through a TURN server
//   fallback websocket  no ICE path: the packets ride the signaling WebSocket (a TCP connection)
//
// A pair has two candidates; its kind is the less direct of the two (relay > prflx > srflx > host),
// since that is what the packets went through.

import type ndc from 'node-datachannel';

export type IceKind = 'host' | 'srflx' | 'prflx' | 'relay';

export interface IcePath {
  kind: IceKind;
  relayed: boolean;
  /** this side's address:port on the path (for a relayed local candidate, the TURN allocation) */
  local: string;
  remote: string;
  /** SCTP's smoothed round-trip time; null until it has one */
  rttMs: number | null;
}

/** The session-level path: an ICE pair, or the WebSocket fallback. */
export interface SessionPath extends Omit<IcePath, 'kind'> {
  kind: IceKind | 'websocket';
}

const RANK: Record<IceKind, number> = { host: 0, srflx: 1, prflx: 2, relay: 3 };

const isKind = (type: string): type is IceKind => Object.hasOwn(RANK, type);

export const hostPort = (address: string, port: number) => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);

/** The PeerConnection's selected candidate pair, or null while it has none. */
export function selectedPath(pc: ndc.PeerConnection): { kind: 'host' | 'srflx' | 'prflx' | 'relay'; relayed: boolean; local: string; remote: string; rttMs: number | null } | null {
  let pair: ReturnType<ndc.PeerConnection['getSelectedCandidatePair']>;
  let rtt: number;
  try {
    pair = pc.getSelectedCandidatePair();
    rtt = pc.rtt();
  } catch {
    return null; // a closed PeerConnection
  }
  if (!pair || typeof pair !== 'object') return null;
  const local = isKind(pair.local.type) ? pair.local.type : 'host';
  const remote = isKind(pair.remote.type) ? pair.remote.type : 'host';
  const kind = RANK[local] >= RANK[remote] ? local : remote;
  return {
    kind,
    relayed: kind === 'relay',
    local: hostPort(pair.local.address, pair.local.port),
    remote: hostPort(pair.remote.address, pair.remote.port),
    rttMs: Number.isFinite(rtt) && rtt >= 0 ? rtt : null,
  };
}

/** "direct (host) 10.1.0.2:50000 -> 10.2.0.2:40000, rtt 41 ms", as both CLIs print it. */
export function describePath(path: SessionPath | null): string {
  if (!path) return 'unknown';
  const how = path.kind === 'websocket' ? 'websocket fallback (TCP)' : path.relayed ? 'relayed (TURN)' : `direct (${path.kind})`;
  return `${how} ${path.local} -> ${path.remote}, rtt ${path.rttMs === null ? '?' : `${Math.round(path.rttMs)}`} ms`;
}

/** "direct/host", "relay", "websocket" (with `rtt`, "direct/host 3 ms"): the status line's form. */
export function shortPath(path: SessionPath | null, rtt = false): string {
  if (!path) return '-';
  const kind = path.kind === 'websocket' ? 'websocket' : path.relayed ? 'relay' : `direct/${path.kind}`;
  return rtt && path.rttMs !== null ? `${kind} ${Math.round(path.rttMs)} ms` : kind;
}
