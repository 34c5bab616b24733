// `tunnel host`: signaling (its own WebSocket server, a registration at a rendezvous relay, or
// both), one session per admitted client (its PeerConnection and DataChannels, or the WebSocket
// fallback), and the data plane whose shards dial the exposed services. Only a failure at start-up
// rejects; after that, trouble with one client or one stream is logged and contained.

import { randomInt } from 'node:crypto';
import { defaultConfig, verifyConfig, windowOffer } from './shared/limits.js';
import { createLogger } from './shared/log.js';
import type { Service } from './shared/thread-messages.js';
import { workerCount, iceOptions, bulkLanes, type SideOptions } from './options.js';
import { tunnelError } from './errors.js';
import { startDataPlane, type DataPlaneStats } from './dataplane/data-plane.js';
import { startHostSignaling } from './signaling/carriers.js';
import { makeCode } from './signaling/rendezvous-code.js';
import { acceptClient, type HostSession } from './signaling/host-handshake.js';
import { createGuard, type GuardOptions, type GuardCounts } from './signaling/guard.js';
import { changeServices } from './dataplane/reconfigure.js';
import type { SignalConn } from './signaling/conn.js';
import { createResumeBook, type ResumeTicket } from './signaling/resumption.js';
import { createOutages, type OutageCounters } from './dataplane/outages.js';
import type { SessionPath } from './webrtc/path.js';

export interface HostOptions extends SideOptions {
  /** Without one a random 8-digit PIN is generated (and returned). */
  pin?: string | undefined;
  /** Signaling address, default 127.0.0.1:8765 (none with `rendezvous` alone); port 0 picks a free one. */
  listen?: string | undefined;
  services: Record<string, Service>;
  guard?: Partial<GuardOptions> | undefined;
  /** Serve wss:// with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer } | undefined;
  /** Signaling connections at once (handshaking or connected); more are refused. Default 64. */
  maxClients?: number | undefined;
  /** Register at this rendezvous relay (a PeerJS server, ws[s]://HOST:PORT[/PATH][?key=KEY]) so
   *  that clients find the host by its code: no open port. With `listen` too, the host does both. */
  rendezvous?: string | undefined;
  /** The id to register under (default random): a fixed one keeps the code across restarts. */
  rendezvousId?: string | undefined;
  /** Told each time a client's channel opens, with the path it takes. */
  onPeer?: ((peer: PeerInfo) => void) | undefined;
}

export interface PeerInfo {
  peer: number;
  address: string;
  path: SessionPath | null;
}

export interface HostStats extends DataPlaneStats {
  /** clients connected (with a channel open) */
  peers: number;
  /** the path each connected client's session takes */
  paths: (SessionPath | null)[];
  /** the PIN guard's counts since start */
  pin: GuardCounts;
  /** clients resumed after a lost path, and the outages' length */
  outages: OutageCounters;
}

export interface HostHandle {
  /** The direct signaling URL and port; '' and 0 when the host only registered at a relay. */
  url: string;
  port: number;
  /** With `rendezvous`: what a client passes as --code (the id and the PIN). */
  code: string | undefined;
  pin: string;
  /** Clients currently connected (with a channel open). */
  peers(): number;
  /** Each connected client and its path now (live RTT). */
  paths(): PeerInfo[];
  /** True while the host accepts clients (false once closing). */
  listening(): boolean;
  stats(): Promise<HostStats>;
  /** The services exposed now. */
  services(): Record<string, Service>;
  /** A reload: expose these from now on (see dataplane/reconfigure.ts). */
  setServices(services: Record<string, Service>): void;
  setLogLevel(level: string): void;
  close(): Promise<void>;
}

/** 8 digits: ~26.6 bits, against the guess budget of the guard (see README). */
export function randomPin(): string {
  return String(randomInt(0, 100_000_000)).padStart(8, '0');
}

export async function startHost(options: HostOptions): Promise<HostHandle> {
  const log = options.log ?? createLogger('host', options.logLevel);
  const config = verifyConfig({ ...defaultConfig, ...options.config });
  const workers = workerCount(options.workers);
  const lanes = bulkLanes(options.lanes);
  const pin = options.pin ?? randomPin();
  if (pin.length === 0) throw tunnelError('BAD_FLAG', 'the PIN must not be empty');
  const ice = iceOptions(options, (message) => log.warn(message));
  const guard = createGuard(options.guard);
  const maxClients = options.maxClients ?? 64;
  /** by signaling connection; `peer` is the data plane's (a resumed client keeps its first one) */
  const sessions = new Map<number, { session: HostSession; address: string; peer: number; up: boolean }>();
  let services = options.services;
  let nextPeer = 1;
  let closing = false;

  const plane = await startDataPlane({
    role: 'host', workers, config, services, log, logLevel: options.logLevel ?? 'info', logFormat: options.logFormat, measureLoop: options.measureLoop,
    onPeerDead: (peer, reason) => { for (const s of sessions.values()) if (s.peer === peer && s.up) s.session.end(`peer gone: ${reason}`); },
  });
  const resumable = config.resumeTimeoutMs > 0;
  const book = createResumeBook();
  const outages = createOutages(plane, log, config.resumeTimeoutMs, (peer) => book.forget(peer));
  const onConnection = (conn: SignalConn) => {
    const id = nextPeer++;
    let ticket: ResumeTicket | null = null;
    let resumeOf: number | null = null;
    const session = acceptClient(conn, {
      peer: id, pin, guard, ice, log, lanes,
      services: Object.keys(services),
      window: windowOffer(config),
      fallback: options.fallback !== false,
      busy: closing ? 'the host is shutting down' : sessions.size >= maxClients ? 'the host has too many clients' : undefined,
      onTicket: (t) => { ticket = t; },
      onResume: (request, handshake) => {
        const peer = resumable ? book.claim(request.rid, request.proof, handshake) : null;
        if (peer === null) return false;
        // the old path may not have timed out here yet: it ends now, and its streams wait for this one
        for (const s of sessions.values()) if (s.peer === peer && s.up) s.session.end('the client resumes on a new connection');
        resumeOf = peer;
        return true;
      },
      onChannels: (channels, sendWindow, path) => {
        const record = sessions.get(id);
        if (!record) return null;
        if (resumeOf !== null) {
          // the client's attempts overlap while it resumes (signaling/reconnect.ts): the first one
          // open here takes the session; a later one ends, and the client resumes again if it had
          // picked that one. The ticket stays the session's first, so that resume still verifies.
          if (!outages.resumed(resumeOf, channels, sendWindow)) return 'the session was resumed on another connection, or its resume deadline passed';
          record.peer = resumeOf;
        } else {
          plane.addPeer(id, channels, sendWindow);
          if (resumable && ticket) book.issue(id, ticket);
        }
        record.up = true;
        options.onPeer?.({ peer: record.peer, address: conn.remote, path: path() });
        return null;
      },
      onEnd: (reason) => {
        const record = sessions.get(id);
        sessions.delete(id);
        if (!record?.up || closing) return; // closing: the data plane is closed already
        outages.lost(record.peer, reason);
      },
    });
    sessions.set(id, { session, address: conn.remote, peer: id, up: false });
  };
  let signaling: Awaited<ReturnType<typeof startHostSignaling>>;
  try {
    signaling = await startHostSignaling({ ...options, log, onConnection });
  } catch (err) {
    await plane.close();
    throw err;
  }

  return {
    url: signaling.url, port: signaling.port, pin,
    code: signaling.relayId === undefined ? undefined : makeCode(signaling.relayId, pin),
    peers: () => [...sessions.values()].filter((s) => s.session.connected()).length,
    paths: () => [...sessions.values()].filter((s) => s.session.connected()).map((s) => ({ peer: s.peer, address: s.address, path: s.session.path() })),
    listening: () => !closing,
    stats: async () => {
      const connected = [...sessions.values()].filter((s) => s.session.connected());
      return { ...(await plane.stats()), peers: connected.length, paths: connected.map((s) => s.session.path()), pin: guard.counts(), outages: { ...outages.counters } };
    },
    services: () => services,
    setServices(next) {
      if (closing) return;
      changeServices(plane, services, next, log);
      services = next;
    },
    setLogLevel(level) {
      log.setLevel?.(level);
      plane.setLogLevel(level);
    },
    async close() {
      if (closing) return;
      closing = true;
      outages.close();
      // the shards reset every stream while the paths are up, so the clients learn at once that this
      // session is over (they would otherwise hold their streams for a resume that cannot come)
      await plane.close();
      for (const { session } of [...sessions.values()]) session.end('host shutting down');
      await signaling.close();
    },
  };
}
