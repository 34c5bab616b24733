// How the client gets a session with the host and gets it back: the first one is tried a few times
// (start-up), later ones with backoff until one succeeds or the host refuses us for good.

import { TunnelError } from '../errors.js';
import type { Logger } from '../shared/log.js';
import type { Session } from './client-handshake.js';

/** Start-up tries the PeerConnection a few times: libdatachannel occasionally fails a first DTLS
 *  handshake (seen ~1 in 20 when host and client share a process); a PIN or version refusal is final. */
const FIRST_SESSION_TRIES = 3;
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30000;
/** While streams wait to resume, the next try comes at most this long after a failed one (ms). An
 *  attempt under way when the path returns still waits out its ICE timeout (its checks failed during
 *  the cut and are not repeated): a 15 s UDP cut in the lab resumed 6.6-6.9 s after the path's return. */
export const RESUME_RETRY_MAX_MS = 1000;
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

/** Tries until a session is up (resolves with it), `stopped()` says to give up (resolves null), or
 *  the host refuses us for good (rejects with that TunnelError). */
export async function reconnect(connect: () => Promise<Session>, log: Logger, stopped: () => boolean, maxDelayMs: () => number = () => RECONNECT_MAX_MS): Promise<Session | null> {
  for (let delay = Math.min(RECONNECT_MIN_MS, maxDelayMs()); !stopped(); delay = Math.min(delay * 2, maxDelayMs())) {
    await new Promise((r) => setTimeout(r, delay));
    if (stopped()) return null;
    try {
      const session = await connect();
      if (!stopped()) return session;
      session.end('closing');
      return null;
    } catch (err) {
      if (err instanceof TunnelError && FINAL_CODES.has(err.code)) throw err;
      log.info('reconnect failed; retrying', { error: (err as Error).message, inMs: Math.min(delay * 2, maxDelayMs()) });
    }
  }
  return null;
}
