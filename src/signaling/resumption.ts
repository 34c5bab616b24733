// Resuming a session on a new PeerConnection (the old path broke), bound to the session's PAKE key.
//
//   session 1: CPace ──▶ ISK₁ ──▶ resumeKey₁ = HKDF(ISK₁, "resumption")     (both sides, never sent)
//              host ──▶ mac₁(welcome {…, rid₁})                            rid₁: 16 random bytes
//   path lost; the client still knows the PIN:
//   session 2: CPace again ──▶ ISK₂ (sid₂ fresh from the host's hello)
//              client ──▶ mac₂(params {…, resume {rid₁, proof}})   proof = HMAC(resumeKey₁, label‖sid₂‖rid₁)
//              host: rid₁ known, proof verifies ──▶ mac₂(resumed {ok}) and the data plane's peer of
//              session 1 continues on session 2's channels; rid₁ stays the ticket (session 2's
//              welcome rid₂ is not used), so the next outage resumes with it again
//
// So a resume needs the PIN (a new PAKE) and the old session's key: someone who learnt the stream
// ids, or a rid, cannot forge the proof, and a recorded resume fails (its proof covers an old sid₂;
// each hello brings a new one). A client with the PIN but not the old session starts a new one and
// never sees the old streams. After a host restart no rid is known: `resumed {ok: false}`.

import { randomBytes } from 'node:crypto';
import { mac, equalBytes } from './pake.js';

const LABEL = new TextEncoder().encode('datachannel-tunnel resume');

/** What a client keeps of its session to resume it later. */
export interface ResumeTicket { rid: Uint8Array; key: Uint8Array }

export function newResumeId(): Uint8Array {
  return new Uint8Array(randomBytes(16));
}

/** The proof that the client of the session `ticket` is the one in the handshake `session`. */
export function resumeProof(ticket: ResumeTicket, session: Uint8Array): Uint8Array {
  const data = new Uint8Array(LABEL.byteLength + session.byteLength + ticket.rid.byteLength);
  data.set(LABEL);
  data.set(session, LABEL.byteLength);
  data.set(ticket.rid, LABEL.byteLength + session.byteLength);
  return mac(ticket.key, data);
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** The host's book of sessions a client may resume: by rid, the data plane's peer and the key. */
export function createResumeBook() {
  const byRid = new Map<string, { peer: number; key: Uint8Array }>();

  return {
    /** A new session's ticket (once its channels are open). */
    issue(peer: number, ticket: ResumeTicket): void {
      for (const [rid, entry] of byRid) if (entry.peer === peer) byRid.delete(rid);
      byRid.set(hex(ticket.rid), { peer, key: ticket.key });
    },
    /** The peer a resume request names, if its proof over `session` verifies. The ticket stays
     *  valid for the session's life: the client's resume attempts overlap and the one the host
     *  takes may not be the one the client picked (./reconnect.ts), so a ticket that moved with each
     *  resume could strand the client. A replay cannot use it: its proof covers another handshake. */
    claim(rid: Uint8Array, proof: Uint8Array, session: Uint8Array): number | null {
      const entry = byRid.get(hex(rid));
      if (!entry || !equalBytes(resumeProof({ rid, key: entry.key }, session), proof)) return null;
      return entry.peer;
    },
    /** The peer is gone for good (its resume deadline passed). */
    forget(peer: number): void {
      for (const [rid, entry] of byRid) if (entry.peer === peer) byRid.delete(rid);
    },
  };
}

export type ResumeBook = ReturnType<typeof createResumeBook>;
