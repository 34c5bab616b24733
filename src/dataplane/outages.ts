// A side's outages: a peer whose path broke keeps its streams (suspended, reads paused) until it is
// back on a new PeerConnection of the same session, or until the resume deadline (`--resume-timeout`)
// resets them. Both sides keep one of these; the client also rebuilds the path (../client.ts).
//
//   path lost ──▶ lost(): suspendPeer, deadline timer ──▶ resumed(): resumePeer, "resumed N streams after S s"
//                                                    └──▶ deadline: removePeer (streams reset, as without resume)

import type { Logger } from '../shared/log.js';
import type { WindowOffer } from '../shared/limits.js';
import type { PeerChannels } from '../webrtc/channels.js';
import type { DataPlane } from './data-plane.js';

export interface OutageCounters {
  /** outages that ended in a resume */
  resumes: number;
  /** outages that outlasted the deadline (their streams were reset) */
  expired: number;
  /** seconds spent in outages that ended (resumed or expired) */
  outageSeconds: number;
}

export function createOutages(plane: DataPlane, log: Logger, timeoutMs: number, onExpired?: (peer: number) => void) {
  const active = new Map<number, { since: number; timer: NodeJS.Timeout }>();
  const counters: OutageCounters = { resumes: 0, expired: 0, outageSeconds: 0 };

  function end(peer: number): number {
    const o = active.get(peer);
    if (!o) return -1;
    clearTimeout(o.timer);
    active.delete(peer);
    const ms = Date.now() - o.since;
    counters.outageSeconds += ms / 1000;
    return ms;
  }

  return {
    counters,
    /** The peer's path broke: its streams wait for it (or are reset now if resume is off). */
    lost(peer: number, reason: string): void {
      if (timeoutMs <= 0 || active.has(peer)) {
        if (timeoutMs <= 0) plane.removePeer(peer, reason);
        return;
      }
      const streams = plane.routes(peer);
      const timer = setTimeout(() => {
        end(peer);
        counters.expired++;
        log.warn('the peer did not come back before the resume deadline; resetting its streams', { peer, deadlineS: timeoutMs / 1000, streams: plane.routes(peer) });
        plane.removePeer(peer, `no resume within ${timeoutMs / 1000} s`);
        onExpired?.(peer);
      }, timeoutMs);
      timer.unref();
      active.set(peer, { since: Date.now(), timer });
      plane.suspendPeer(peer, reason);
      log.warn('path to the peer lost; its streams wait for it', { peer, reason, streams, deadlineS: timeoutMs / 1000 });
    },
    /** The peer is back on new channels; false if it was not waited for (deadline passed). */
    resumed(peer: number, channels: PeerChannels, sendWindow: WindowOffer): boolean {
      const ms = end(peer);
      if (ms < 0) return false;
      counters.resumes++;
      plane.resumePeer(peer, channels, sendWindow);
      log.info('peer back: streams resumed', { peer, outageS: +(ms / 1000).toFixed(2), streams: plane.routes(peer) });
      return true;
    },
    /** The peer will not come back (a new session instead, or shutting down): reset its streams now. */
    abandon(peer: number, reason: string): void {
      if (end(peer) < 0) return;
      log.warn('the outage ends without resume; resetting its streams', { peer, reason, streams: plane.routes(peer) });
      plane.removePeer(peer, reason);
    },
    waiting: (peer: number) => active.has(peer),
    /** How long the peer has been gone (ms), or null. */
    sinceMs: (peer: number) => { const o = active.get(peer); return o ? Date.now() - o.since : null; },
    close(): void {
      for (const o of active.values()) clearTimeout(o.timer);
      active.clear();
    },
  };
}

export type Outages = ReturnType<typeof createOutages>;
