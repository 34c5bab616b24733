// How the client gets a session with the host and gets it back: the first one is tried a few times
// (start-up), later ones with backoff until one succeeds or the host refuses us for good.
//
// While streams wait to resume, attempts overlap: libjuice retransmits an ICE check 0.5, 1.5, 3.5,
// 7.5, 15.5 s after the first (src/agent.h: MAX_STUN_CHECK_RETRANSMISSION_COUNT 6, exponential
// backoff), and an attempt that began during a cut sends nothing between those times once the path
// is back. One attempt at a time therefore waited out its 15 s ICE timeout (a 15 s UDP cut in the lab
// resumed 6.6-6.9 s after the path's return). A fresh attempt every RESUME_OVERLAP_MS keeps one whose
// next check is at most ~2 s away; the first to connect is the session and the others are ended.
//
//   resuming:  A ──────────────── ICE timeout ✗
//                 B ───────────────── ✗          (at most RESUME_MAX_ATTEMPTS in flight)
//                    C ───── connected ✓ ──▶ the session; A and B end as they settle
//
// Which attempt the host resumed on may differ when two connect at once (it takes the first whose
// channels open there and ends the others, host.ts); the client then loses its pick, and resumes
// again with the same ticket (./resumption.ts): the streams wait one more attempt, nothing is lost.

import { TunnelError } from '../errors.js';
import type { Logger } from '../shared/log.js';
import type { Session } from './client-handshake.js';

/** Start-up tries the PeerConnection a few times: libdatachannel occasionally fails a first DTLS
 *  handshake (seen ~1 in 20 when host and client share a process); a PIN or version refusal is final. */
const FIRST_SESSION_TRIES = 3;
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30000;
/** While streams wait to resume, the next try comes at most this long after a failed one (ms). */
export const RESUME_RETRY_MAX_MS = 1000;
/** While streams wait to resume, a new attempt starts this long after the last one if none has
 *  connected (ms): its checks at 0, 0.5, 1.5 s after its start meet a path that came back. */
export const RESUME_OVERLAP_MS = 3000;
/** Attempts in flight at once while resuming: 15 s of ICE timeout over 3 s apart. */
export const RESUME_MAX_ATTEMPTS = 5;
/** Refusals that reconnecting cannot cure; retrying would only spend the host's PIN guess budget. */
const FINAL_CODES = new Set(['WRONG_PIN', 'VERSION_MISMATCH', 'SIGNALING_AUTH']);

export async function firstSession(connect: () => Promise<Session>, log: Logger): Promise<Session> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect();
    } catch (err) {
      if (!(err instanceof TunnelError) || err.code !== 'PEER_FAILED' || attempt >= FIRST_SESSION_TRIES) throw err;
      log.warn('WebRTC connection failed; trying again', { attempt });
    }
  }
}

export interface ReconnectTiming { minMs: number; maxMs: number; resumeMaxMs: number; overlapMs: number; maxAttempts: number }
const TIMING: ReconnectTiming = { minMs: RECONNECT_MIN_MS, maxMs: RECONNECT_MAX_MS, resumeMaxMs: RESUME_RETRY_MAX_MS, overlapMs: RESUME_OVERLAP_MS, maxAttempts: RESUME_MAX_ATTEMPTS };

/** Tries until a session is up (resolves with it), `stopped()` says to give up (resolves null), or
 *  the host refuses us for good (rejects with that TunnelError). While `resuming()`, attempts
 *  overlap (above); otherwise one at a time with a doubling delay. */
export function reconnect(connect: () => Promise<Session>, log: Logger, stopped: () => boolean, resuming: () => boolean = () => false, timing: ReconnectTiming = TIMING): Promise<Session | null> {
  return new Promise((resolve, reject) => {
    let done = false;
    let inFlight = 0;
    let delay = timing.minMs;
    let timer: NodeJS.Timeout | null = null;
    const settle = (value: Session | null | TunnelError) => {
      done = true;
      if (timer) clearTimeout(timer);
      timer = null;
      if (value instanceof TunnelError) reject(value); else resolve(value);
    };
    const schedule = (ms: number) => {
      if (timer || done) return;
      timer = setTimeout(() => { timer = null; launch(); }, ms);
    };
    const launch = () => {
      if (done) return;
      if (stopped()) return settle(null);
      inFlight++;
      if (resuming() && inFlight < timing.maxAttempts) schedule(timing.overlapMs);
      connect().then((session) => {
        inFlight--;
        if (done || stopped()) {
          session.end(done ? 'another attempt connected first' : 'closing');
          if (!done) settle(null);
          return;
        }
        settle(session);
      }, (err: unknown) => {
        inFlight--;
        if (done) return;
        if (err instanceof TunnelError && FINAL_CODES.has(err.code)) return settle(err);
        delay = Math.min(delay * 2, resuming() ? timing.resumeMaxMs : timing.maxMs);
        log.info('reconnect failed; retrying', { error: (err as Error).message, inMs: delay });
        // a fast failure (the host unreachable) is retried after the backoff, not the overlap
        if (timer) clearTimeout(timer);
        timer = null;
        schedule(delay);
      });
    };
    schedule(Math.min(delay, resuming() ? timing.resumeMaxMs : timing.maxMs));
  });
}
