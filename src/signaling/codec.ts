// Signaling messages between client and host (over a WebSocket or a rendezvous relay): msgpack-encoded, size-limited,
// versioned, and checked field by field before anything acts on them.
//
//   client                                      host
//     hello {v}                      ───────▶
//                                    ◀───────   hello {v, session, yb}        (CPace, see auth.ts)
//     auth {ya, confirm}             ───────▶   checks the PIN proof
//                                    ◀───────   mac(welcome {services, window, mtu, lanes, relay, confirm, rid})
//     mac(params {window, mtu, pcs}) ───────▶   (each side's per-stream receive window, initial and
//                                                most: the other's send window; each side's MTU:
//                                                the smaller is the association's; how many
//                                                PeerConnections the client will offer: one, or
//                                                one plus the smaller side's bulk lanes)
//     with `resume {rid, proof}` in params (a client back after its path broke, see ./resumption.ts):
//                                    ◀───────   mac(resumed {ok})             (before the SDP answer)
//     mac(sdp offer), mac(cand)…        ◀──▶    mac(sdp answer), mac(cand)…
//       each SDP and candidate names its PeerConnection (`pc`: 0 for the small channel's, 1 and up
//       for the bulk lanes'; see ../webrtc/channels.ts); the client offers `pcs`, the host answers each
//   if, when ICE's time is up (or every PeerConnection has opened its channel or failed), the small
//   channel is open but not every bulk lane:
//     mac(lanes {pcs})               ───────▶   takes just those, closes the others' PeerConnections,
//                                    ◀───────   mac(lanes-reply {ok})   unless its own set is whole
//   otherwise, only if both said fb (the WebSocket fallback) and no DataChannel opened in time:
//     mac(fallback)                  ───────▶   closes its PeerConnection, unless its channel is open
//                                    ◀───────   mac(fallback-reply {ok})
//     then, if ok, every message both ways is a data-plane message sealed by ./seal.ts
//
// Every message after the PAKE carries a MAC under the key only the PIN holders share, over the
// direction and a counter, so the SDP (with its DTLS fingerprint) and each candidate is authentic.

import { pack, unpack } from 'msgpackr';
import type { WindowOffer } from '../shared/limits.js';
import { isMtu } from '../webrtc/mtu.js';
import { MAX_BULK_LANES } from '../webrtc/channels.js';

/** Bumped on any incompatible change of signaling or the data plane's packets. 3: the hello's `sid`
 *  became `session` and `sealed` became `mac`; the window is offered as {initial, max}; two
 *  DataChannels (small, bulk) with maxRetransmits; PING carries a timestamp; `fb` in welcome and
 *  params, the fallback messages, the sealed data-plane messages after them. 4: resume: `rid` in
 *  welcome, `resume` in params, `resumed`; WINDOW carries an acknowledgement; the RESUME packet.
 *  5: the bulk channel on a PeerConnection of its own: `pc` in sdp and cand. 6: bulk lanes, each on a
 *  PeerConnection of its own: `lanes` in welcome, `pcs` in params. 7: DATA's TWICE flag (a copy of
 *  a small interactive packet may arrive over another lane; a protocol-6 peer would reject it).
 *  8: `lanes` and `lanes-reply`: a session goes on with the bulk lanes that opened in time; `relay`
 *  in welcome (the host may be relayed: it has a TURN server), for the DTLS roles (../webrtc/sdp.ts). */
export const PROTOCOL_VERSION = 8;
/** PeerConnections one session may have (the small channel's and one per bulk lane). */
export const MAX_PEER_CONNECTIONS = 1 + MAX_BULK_LANES;
/** Largest signaling message (bytes): an SDP is a few KiB. */
export const MAX_SIGNAL_BYTES = 64 * 1024;
/** Largest data-plane message the WebSocket fallback carries (bytes): a DataChannel's default
 *  maximum message size, far above the largest packet batch the dispatcher sends. */
export const MAX_FALLBACK_MESSAGE_BYTES = 256 * 1024;
/** The WebSocket's own limit: a sealed fallback message (plus its 16-byte tag) must fit; signaling
 *  messages are still held to MAX_SIGNAL_BYTES when they are decoded. */
export const MAX_WEBSOCKET_MESSAGE_BYTES = MAX_FALLBACK_MESSAGE_BYTES + 64;
/** A client that has not finished the handshake in this long is dropped (ms). */
export const HANDSHAKE_TIMEOUT_MS = 10000;
/** How long ICE may take to open the DataChannel without a fallback (ms). libjuice does not give
 *  up by itself while it has no pair to check (measured: still "checking" after 40 s), so this is
 *  the failure. 15 s: a relayed path over a 300 ms RTT opens in 2-3 s; the rest is for lost packets. */
export const ICE_TIMEOUT_MS = 15000;
/** The same with the WebSocket fallback agreed (ms): waiting longer only delays a working tunnel,
 *  and 8 s is still about three times what a TURN path at 300 ms RTT takes to open. */
export const FALLBACK_ICE_TIMEOUT_MS = 8000;

export type Plain =
  | { t: 'hello'; v: number; session?: Uint8Array; yb?: Uint8Array }
  | { t: 'auth'; ya: Uint8Array; confirm: Uint8Array }
  | { t: 'mac'; n: number; body: Uint8Array; mac: Uint8Array }
  | { t: 'error'; code: string; message: string };

export type Inner =
  | { t: 'welcome'; services: string[]; window: WindowOffer; confirm: Uint8Array; fb: boolean; mtu: number; lanes: number; rid: Uint8Array; relay: boolean }
  | { t: 'params'; window: WindowOffer; fb: boolean; mtu: number; pcs: number; resume?: ResumeRequest }
  | { t: 'resumed'; ok: boolean }
  | { t: 'fallback' }
  | { t: 'fallback-reply'; ok: boolean }
  | { t: 'lanes'; pcs: number[] }
  | { t: 'lanes-reply'; ok: boolean }
  | { t: 'sdp'; sdp: string; type: string; pc: number }
  | { t: 'cand'; cand: string; mid: string; pc: number };

/** A client's claim to an earlier session: its resumption id, and a proof under that session's
 *  resumption key over this handshake (./resumption.ts). */
export interface ResumeRequest { rid: Uint8Array; proof: Uint8Array }

export class SignalError extends Error {
  readonly code = 'SIGNALING_PROTOCOL';
}

const isBytes = (v: unknown, min: number, max: number): v is Uint8Array => v instanceof Uint8Array && v.byteLength >= min && v.byteLength <= max;
const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;
/** A receive window the other side may announce: at least one packet, at most 1 GiB, and where it
 *  starts no larger than what it may grow to. */
const isWindowSize = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 64 * 1024 && (v as number) <= 1024 ** 3;
const isWindow = (v: unknown): v is WindowOffer => isRecord(v) && isWindowSize(v.initial) && isWindowSize(v.max) && v.initial <= v.max;
const isPc = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) < MAX_PEER_CONNECTIONS;
const isPcCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_PEER_CONNECTIONS;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

export function encodeSignal(msg: Plain | Inner): Buffer {
  return pack(msg);
}

function decode(data: Uint8Array): Record<string, unknown> {
  if (data.byteLength > MAX_SIGNAL_BYTES) throw new SignalError(`signaling message of ${data.byteLength} bytes exceeds ${MAX_SIGNAL_BYTES}`);
  let value: unknown;
  try {
    value = unpack(data);
  } catch {
    throw new SignalError('signaling message does not decode');
  }
  if (!isRecord(value) || typeof value.t !== 'string') throw new SignalError('signaling message is not a typed record');
  return value;
}

/** Decodes and validates an outer message (before any MAC is checked). Throws SignalError. */
export function decodePlain(data: Uint8Array): Plain {
  const m = decode(data);
  switch (m.t) {
    case 'hello':
      if (typeof m.v !== 'number') break;
      if (m.session !== undefined && !isBytes(m.session, 16, 16)) break;
      if (m.yb !== undefined && !isBytes(m.yb, 32, 32)) break;
      return { t: 'hello', v: m.v, ...(m.session ? { session: m.session } : {}), ...(m.yb ? { yb: m.yb } : {}) } as Plain;
    case 'auth':
      if (!isBytes(m.ya, 32, 32) || !isBytes(m.confirm, 32, 32)) break;
      return { t: 'auth', ya: m.ya, confirm: m.confirm };
    case 'mac':
      if (!Number.isSafeInteger(m.n) || !isBytes(m.body, 1, MAX_SIGNAL_BYTES) || !isBytes(m.mac, 32, 32)) break;
      return { t: 'mac', n: m.n as number, body: m.body, mac: m.mac };
    case 'error':
      if (!isText(m.code, 64) || !isText(m.message, 500)) break;
      return { t: 'error', code: m.code, message: m.message };
  }
  throw new SignalError(`malformed '${String(m.t).slice(0, 20)}' message`);
}

/** Decodes and validates the body of a MAC'd message (after its MAC was checked). */
export function decodeInner(data: Uint8Array): Inner {
  const m = decode(data);
  switch (m.t) {
    case 'welcome':
      if (!Array.isArray(m.services) || m.services.length > 1000 || !m.services.every((s) => isText(s, 64))) break;
      if (!isBytes(m.confirm, 32, 32)) break;
      if (!isWindow(m.window) || typeof m.fb !== 'boolean' || !isMtu(m.mtu) || !isPcCount(m.lanes) || m.lanes > MAX_BULK_LANES || !isBytes(m.rid, 16, 16)) break;
      if (typeof m.relay !== 'boolean') break;
      return { t: 'welcome', services: m.services as string[], window: { initial: m.window.initial, max: m.window.max }, confirm: m.confirm, fb: m.fb, mtu: m.mtu, lanes: m.lanes, rid: m.rid, relay: m.relay };
    case 'params': {
      if (!isWindow(m.window) || typeof m.fb !== 'boolean' || !isMtu(m.mtu) || !isPcCount(m.pcs)) break;
      const r = m.resume;
      if (r !== undefined && !(isRecord(r) && isBytes(r.rid, 16, 16) && isBytes(r.proof, 32, 32))) break;
      const resume = r === undefined ? {} : { resume: { rid: r.rid as Uint8Array, proof: r.proof as Uint8Array } };
      return { t: 'params', window: { initial: m.window.initial, max: m.window.max }, fb: m.fb, mtu: m.mtu, pcs: m.pcs as number, ...resume };
    }
    case 'resumed':
      if (typeof m.ok !== 'boolean') break;
      return { t: 'resumed', ok: m.ok };
    case 'fallback':
      return { t: 'fallback' };
    case 'fallback-reply':
      if (typeof m.ok !== 'boolean') break;
      return { t: 'fallback-reply', ok: m.ok };
    case 'lanes': {
      // the small channel's PeerConnection first (alone, it carries the bulk data too), then lanes
      // in order, each once
      const pcs = m.pcs;
      if (!Array.isArray(pcs) || pcs.length < 1 || pcs.length > MAX_PEER_CONNECTIONS || pcs[0] !== 0) break;
      if (!pcs.every((pc, i) => isPc(pc) && (i === 0 || pc > (pcs[i - 1] as number)))) break;
      return { t: 'lanes', pcs: pcs as number[] };
    }
    case 'lanes-reply':
      if (typeof m.ok !== 'boolean') break;
      return { t: 'lanes-reply', ok: m.ok };
    case 'sdp':
      if (!isText(m.sdp, MAX_SIGNAL_BYTES) || !(m.type === 'offer' || m.type === 'answer') || !isPc(m.pc)) break;
      return { t: 'sdp', sdp: m.sdp, type: m.type, pc: m.pc };
    case 'cand':
      if (!isText(m.cand, 1000) || !isText(m.mid, 100) || !isPc(m.pc)) break;
      return { t: 'cand', cand: m.cand, mid: m.mid, pc: m.pc };
  }
  throw new SignalError(`malformed mac'd '${String(m.t).slice(0, 20)}' message`);
}
