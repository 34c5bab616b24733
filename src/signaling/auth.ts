// The PIN step of signaling: CPace (./pake.ts) keyed by the PIN, then key confirmation, then a MAC
// on every later message (authenticated, not encrypted: what it carries is not secret, only whose it
// is). The PIN never crosses the wire, nor anything an eavesdropper could test PIN guesses against
// offline; a wrong guess costs an attacker one online attempt.
//
// Everything about authentication lives in this file and pake.ts; codec.ts only carries bytes.

import { randomBytes } from 'node:crypto';
import { cpaceStart, cpaceFinish, deriveKeys, mac, equalBytes, PakeError, type CpaceStart } from './pake.js';
import { encodeSignal, decodeInner, SignalError, PROTOCOL_VERSION, type Inner, type Plain } from './codec.js';

const enc = new TextEncoder();
/** CPace channel identifier: binds the run to this protocol. */
const CI = enc.encode('datachannel-tunnel/1');
const AD = { a: enc.encode('client'), b: enc.encode('host') };
const DIRECTION = { toHost: 1, toClient: 2 } as const;

/** One side's MAC state for a session: the key, and a counter per direction against replay; and
 *  the keys that seal the data plane if it falls back to the signaling connection (./seal.ts). */
export interface MacState {
  key: Uint8Array;
  sendDirection: number;
  sent: number;
  received: number;
  seal: { send: Uint8Array; receive: Uint8Array };
  /** this session's resumption key (./resumption.ts) */
  resumeKey: Uint8Array;
  /** CPace's session id of this run: fresh per attempt, so a resume proof over it cannot be replayed */
  session: Uint8Array;
}

/** Host: the first message to a new client; keep the returned state for hostCheck. `session` is
 *  CPace's session id (the draft's "sid"): fresh random bytes for each attempt. */
export function hostStart(pin: string): { hello: Plain; session: Uint8Array; own: CpaceStart } {
  const session = new Uint8Array(randomBytes(16));
  const own = cpaceStart(enc.encode(pin), CI, session);
  return { hello: { t: 'hello', v: PROTOCOL_VERSION, session, yb: own.message }, session, own };
}

/**
 * Host: checks the client's proof. Returns the MAC state and the host's confirmation, or null for a
 * wrong PIN (an invalid point counts as a wrong PIN: it is a failed guess either way).
 */
export function hostCheck(session: Uint8Array, own: CpaceStart, auth: { ya: Uint8Array; confirm: Uint8Array }): { macs: MacState; confirm: Uint8Array } | null {
  let isk: Uint8Array;
  try {
    isk = cpaceFinish('responder', own, auth.ya, AD, session);
  } catch (err) {
    if (err instanceof PakeError) return null;
    throw err;
  }
  const keys = deriveKeys(isk);
  if (!equalBytes(keys.confirmInitiator, auth.confirm)) return null;
  const seal = { send: keys.sealResponder, receive: keys.sealInitiator };
  return { macs: { key: keys.macKey, sendDirection: DIRECTION.toClient, sent: 0, received: 0, seal, resumeKey: keys.resumeKey, session }, confirm: keys.confirmResponder };
}

/** Client: answers the host's hello. `expect` is what the host's welcome must carry. */
export function clientAnswer(pin: string, hello: { session: Uint8Array; yb: Uint8Array }): { auth: Plain; macs: MacState; expect: Uint8Array } {
  const own = cpaceStart(enc.encode(pin), CI, hello.session);
  let isk: Uint8Array;
  try {
    isk = cpaceFinish('initiator', own, hello.yb, AD, hello.session);
  } catch {
    throw new SignalError('the host sent an invalid PAKE share');
  }
  const keys = deriveKeys(isk);
  return {
    auth: { t: 'auth', ya: own.message, confirm: keys.confirmInitiator },
    macs: { key: keys.macKey, sendDirection: DIRECTION.toHost, sent: 0, received: 0, seal: { send: keys.sealInitiator, receive: keys.sealResponder }, resumeKey: keys.resumeKey, session: hello.session },
    expect: keys.confirmResponder,
  };
}

function tag(key: Uint8Array, direction: number, n: number, body: Uint8Array): Uint8Array {
  const head = new Uint8Array(9);
  const view = new DataView(head.buffer);
  view.setUint8(0, direction);
  view.setBigUint64(1, BigInt(n));
  const data = new Uint8Array(9 + body.byteLength);
  data.set(head);
  data.set(body, 9);
  return mac(key, data);
}

/** Wraps a message with its counter and MAC. */
export function addMac(s: MacState, inner: Inner): Plain {
  const body = encodeSignal(inner);
  const n = s.sent++;
  return { t: 'mac', n, body, mac: tag(s.key, s.sendDirection, n, body) };
}

/** Unwraps a message: the MAC must verify and the counter must be the next one (no replay). */
export function checkMac(s: MacState, msg: { n: number; body: Uint8Array; mac: Uint8Array }): Inner {
  const direction = s.sendDirection === DIRECTION.toHost ? DIRECTION.toClient : DIRECTION.toHost;
  if (msg.n !== s.received || !equalBytes(tag(s.key, direction, msg.n, msg.body), msg.mac)) {
    throw new AuthError('a signaling message failed authentication (tampered, replayed or out of order)');
  }
  s.received++;
  return decodeInner(msg.body);
}

export class AuthError extends Error {
  readonly code = 'SIGNALING_AUTH';
}

/** Compares the host's key confirmation with the one expected (constant time). */
export const equalConfirm = equalBytes;
