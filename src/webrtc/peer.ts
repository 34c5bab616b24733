// Creating a PeerConnection the way both sides need it. This is the only file that imports
// node-datachannel's runtime: it may be loaded by one thread only (a second thread that loads it
// aborts the process), and nothing under workers/ reaches this file (a test walks the imports).

import ndc, { type IceServer } from 'node-datachannel';
import { SCTP_SETTINGS } from './sctp-settings.js';

// TUNNEL_NDC_LOG=Debug (or Info, Warning, ...) shows libdatachannel's own log, for ICE trouble.
const ndcLogLevel = process.env.TUNNEL_NDC_LOG;
if (ndcLogLevel) ndc.initLogger(ndcLogLevel as ndc.LogLevel, (level, message) => process.stderr.write(`libdatachannel ${level} ${message}\n`));

export interface IceOptions {
  /** STUN/TURN servers (./ice-servers.ts parses the URLs); none is fine on one machine or a LAN. */
  iceServers: IceServer[];
  /** Bind ICE to this address and offer/accept only candidates on it, and relayed ones (e.g.
   *  127.0.0.1 for tests; a relayed candidate is on the TURN server, reached through it). */
  iceBind?: string | undefined;
  /** Signal relayed candidates only (iceTransportPolicy 'relay'): the path goes through TURN. */
  relayOnly?: boolean | undefined;
  /** UDP ports ICE may bind, for a firewall that opens only these. */
  portRange?: { min: number; max: number } | undefined;
  /** This side's MTU (./mtu.ts); a PeerConnection takes the smaller of the two sides'. */
  mtu: number;
}

/** "candidate:1 1 UDP 2122317823 192.168.1.2 52018 typ host" -> "192.168.1.2" */
export function candidateAddress(candidate: string): string | undefined {
  return candidate.replace(/^a=/, '').split(' ')[4];
}

export function candidateAllowed(candidate: string, ice: IceOptions): boolean {
  return !ice.iceBind || candidateAddress(candidate) === ice.iceBind || / typ relay( |$)/.test(candidate);
}

let sctpSet = false;

/** Applies the SCTP settings once, before this process's first PeerConnection (they are read when an
 *  association is created). */
function applySctpSettings(): void {
  if (sctpSet) return;
  sctpSet = true;
  ndc.setSctpSettings(SCTP_SETTINGS);
}

/** `mtu`: what both sides agreed on (the smaller of the two). */
export function createPeer(name: string, ice: IceOptions, mtu: number, signal: {
  sdp(sdp: string, type: string): void;
  candidate(candidate: string, mid: string): void;
}): ndc.PeerConnection {
  applySctpSettings();
  const pc = new ndc.PeerConnection(name, {
    iceServers: ice.iceServers,
    ...(ice.iceBind ? { bindAddress: ice.iceBind } : {}),
    ...(ice.relayOnly ? { iceTransportPolicy: 'relay' as const } : {}),
    ...(ice.portRange ? { portRangeBegin: ice.portRange.min, portRangeEnd: ice.portRange.max } : {}),
    mtu,
  });
  pc.onLocalDescription((sdp, type) => signal.sdp(sdp, type));
  pc.onLocalCandidate((candidate, mid) => {
    if (candidateAllowed(candidate, ice)) signal.candidate(candidate, mid);
  });
  return pc;
}

/** Applies a remote candidate unless --ice-bind rules it out; a bad one is ignored, not fatal. */
export function addCandidate(pc: ndc.PeerConnection, candidate: string, mid: string, ice: IceOptions): void {
  if (!candidateAllowed(candidate, ice)) return;
  try {
    pc.addRemoteCandidate(candidate, mid);
  } catch {
    // a malformed candidate from the peer: ICE goes on with the others
  }
}

/** DataChannels that never opened, kept for the life of the process. Measured here: once such a
 *  channel's wrapper is garbage-collected (or left unclosed), a later cleanup() crashes the process
 *  (SIGSEGV / SIGABRT), while an opened channel may be dropped. One entry per failed attempt. */
const neverOpened: ndc.DataChannel[] = [];

/** Closes a session's PeerConnections, whose channels may never have opened, without the crash above. */
export function closePeers(pcs: readonly ndc.PeerConnection[], channels: readonly ndc.DataChannel[], opened: boolean): void {
  for (const channel of channels) {
    if (!opened) neverOpened.push(channel);
    try { channel.close(); } catch { /* already closed */ }
  }
  for (const pc of pcs) {
    try { pc.close(); } catch { /* already closed */ }
  }
}

export function releaseDataChannelLibrary(): void {
  ndc.cleanup();
}
