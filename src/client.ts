// `tunnel client`: a signaling session with the host — over its WebSocket, or through a rendezvous
// relay by the host's code — giving a PeerConnection and its DataChannels (or the WebSocket
// fallback), and the data plane whose shards listen on the forwarded ports. Start-up failures reject
// (port in use, host unreachable, wrong PIN, unknown code, no network path); after start-up the
// client keeps its listeners and reconnects with backoff when the host goes away.

import { defaultConfig, verifyConfig, windowOffer } from './shared/limits.js';
import { createLogger } from './shared/log.js';
import type { Forward } from './shared/thread-messages.js';
import { workerCount, iceOptions, bulkLanes, type SideOptions } from './options.js';
import { tunnelError, type TunnelError } from './errors.js';
import { startDataPlane, type DataPlaneStats } from './dataplane/data-plane.js';
import { changeForwards } from './dataplane/reconfigure.js';
import { clientSignaling } from './signaling/carriers.js';
import { connectSession, type Session, type ClientHandshakeOptions } from './signaling/client-handshake.js';
import { firstSession, reconnect } from './signaling/reconnect.js';
import type { ResumeTicket } from './signaling/resumption.js';
import { createOutages, type OutageCounters } from './dataplane/outages.js';
import type { SessionPath } from './webrtc/path.js';

export interface ClientOptions extends SideOptions {
  /** ws:// or wss:// URL of the host's signaling server (or `rendezvous` instead) */
  connect?: string | undefined;
  /** Find the host through a rendezvous relay by the code it printed (ID-PIN, or ID with `pin`). */
  rendezvous?: { url: string; code: string } | undefined;
  /** The host's PIN; with a rendezvous code that holds it, not needed. */
  pin?: string | undefined;
  forwards: Forward[];
  /** Trust this CA (PEM) for a wss:// host with its own certificate. */
  ca?: string | Buffer | undefined;
  /** Reconnect after the host goes away (default true); the first connection must succeed. */
  reconnect?: boolean | undefined;
  /** Called when the client gives up for good after start-up (e.g. the PIN is now refused). */
  onFatal?: ((err: TunnelError) => void) | undefined;
  /** Called after each reconnection with the path the new session takes. */
  onReconnect?: ((path: SessionPath | null) => void) | undefined;
}

export interface ClientStats extends DataPlaneStats {
  /** 1 while connected to the host, else 0 */
  peers: number;
  /** the path to the host, while connected */
  paths: (SessionPath | null)[];
  /** resumes after a lost path, and the outages' length */
  outages: OutageCounters;
}

export interface ClientHandle {
  /** The services the host exposes (from its welcome). */
  services: string[];
  connected(): boolean;
  /** The path to the host broke and streams wait for it to come back (resume). */
  reconnecting(): boolean;
  /** Drops the current PeerConnection as a broken path would (say, after a network change): the
   *  client builds a new one, and with resume on the streams go on over it. */
  dropPath(reason: string): void;
  /** The path the session takes now (live RTT); null while disconnected. */
  path(): SessionPath | null;
  /** Resolves on the next (re)connection. */
  whenConnected(): Promise<void>;
  stats(): Promise<ClientStats>;
  /** The forwards listened on now. */
  forwards(): Forward[];
  /** A reload: listen on these from now on (see dataplane/reconfigure.ts); rejects, changing
   *  nothing, if a new forward's port is taken. */
  setForwards(forwards: Forward[]): Promise<void>;
  setLogLevel(level: string): void;
  close(): Promise<void>;
}

export async function startClient(options: ClientOptions): Promise<ClientHandle> {
  const log = options.log ?? createLogger('client', options.logLevel);
  const config = verifyConfig({ ...defaultConfig, ...options.config });
  const workers = workerCount(options.workers);
  const lanes = bulkLanes(options.lanes);
  if (options.forwards.length === 0) throw tunnelError('BAD_FLAG', 'at least one --forward is needed');
  const signaling = clientSignaling(options);
  const ice = iceOptions(options, (message) => log.warn(message));
  const handshake: ClientHandshakeOptions = { pin: signaling.pin, hostName: signaling.hostName, window: windowOffer(config), log, ice, fallback: options.fallback, bulkLanes: lanes };
  let ticket: ResumeTicket | undefined; // the session to resume after an outage
  const connect = async () => connectSession(await signaling.open(), { ...handshake, resume: outages.waiting(0) ? ticket : undefined });

  // the listeners first: a port in use fails start-up before the host is contacted
  let session: Session | null = null;
  const plane = await startDataPlane({
    role: 'client', workers, config, forwards: options.forwards, log, logLevel: options.logLevel ?? 'info', logFormat: options.logFormat, measureLoop: options.measureLoop,
    onPeerDead: (_peer, reason) => session?.end(`host gone: ${reason}`),
  });
  const outages = createOutages(plane, log, options.reconnect === false ? 0 : config.resumeTimeoutMs);
  try {
    session = await firstSession(connect, log);
  } catch (err) {
    await plane.close();
    throw err;
  }
  let services = session.services;
  let forwards = options.forwards;
  for (const f of options.forwards) {
    if (!services.includes(f.service)) log.warn(`forward ${f.host}:${f.port} names service '${f.service}', which the host does not expose; its connections will be refused`, { exposed: services.join(',') });
  }
  let closing = false;
  let connected = false;
  let connectedWaiters: (() => void)[] = [];

  function attach(s: Session): void {
    session = s;
    services = s.services;
    // a resumed session keeps its first ticket: the host keeps that one (host.ts, onChannels)
    if (!(s.resumed === true && outages.resumed(0, s.channels, s.sendWindow))) {
      ticket = s.ticket;
      outages.abandon(0, s.resumed === false ? 'the host did not resume the session (it restarted, or its resume deadline passed)' : 'a new session');
      plane.addPeer(0, s.channels, s.sendWindow);
    }
    connected = true;
    for (const w of connectedWaiters) w();
    connectedWaiters = [];
    void s.ended.then((reason) => {
      connected = false;
      if (closing) return plane.removePeer(0, reason);
      log.warn('lost the host; reconnecting', { reason });
      outages.lost(0, reason); // the streams wait for the host, or are reset now without resume
      if (options.reconnect === false) return;
      reconnect(connect, log, () => closing, () => outages.waiting(0)).then((next) => {
        if (!next) return;
        log.info('reconnected to the host', { path: next.path() });
        attach(next);
        options.onReconnect?.(next.path());
      }, (err: TunnelError) => {
        log.error(`giving up: ${err.message}`);
        outages.abandon(0, err.message);
        options.onFatal?.(err);
      });
    });
  }

  attach(session);
  return {
    get services() { return services; },
    connected: () => connected,
    reconnecting: () => outages.waiting(0),
    dropPath: (reason) => { if (connected) session?.end(reason); },
    path: () => (connected ? session?.path() ?? null : null),
    whenConnected: () => (connected ? Promise.resolve() : new Promise((resolve) => connectedWaiters.push(resolve))),
    stats: async () => ({ ...(await plane.stats()), peers: connected ? 1 : 0, paths: connected ? [session?.path() ?? null] : [], outages: { ...outages.counters } }),
    forwards: () => forwards,
    async setForwards(next) {
      if (closing) return;
      await changeForwards(plane, forwards, next, log);
      forwards = next;
      for (const f of next) {
        if (!services.includes(f.service)) log.warn(`forward ${f.host}:${f.port} names service '${f.service}', which the host did not expose when this client connected; unless it does now, its connections will be refused`, { exposed: services.join(',') });
      }
    },
    setLogLevel(level) {
      log.setLevel?.(level);
      plane.setLogLevel(level);
    },
    async close() {
      if (closing) return;
      closing = true;
      outages.close();
      await plane.close(); // the shards send their RESETs before the session goes
      session?.end('client shutting down');
    },
  };
}
