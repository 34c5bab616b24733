// `tunnel client`: a signaling session with the host (its PeerConnection and unordered DataChannel)
// and the data plane whose shards listen on the forwarded ports. Start-up failures reject (host
// unreachable, wrong PIN, port in use); after start-up the client keeps its listeners and
// reconnects with backoff when the host goes away.

import { defaultConfig, verifyConfig, windowOffer } from './shared/limits.js';
import { createLogger } from './shared/log.js';
import type { Forward } from './shared/thread-messages.js';
import { workerCount, type SideOptions } from './options.js';
import { tunnelError, type TunnelError } from './errors.js';
import { startDataPlane, type DataPlaneStats } from './dataplane/data-plane.js';
import { openSignaling } from './signaling/websocket.js';
import { connectSession, type Session, type ClientHandshakeOptions } from './signaling/client-handshake.js';
import { firstSession, reconnect } from './signaling/reconnect.js';

export interface ClientOptions extends SideOptions {
  /** ws:// or wss:// URL of the host's signaling server */
  connect: string;
  pin: string;
  forwards: Forward[];
  /** Trust this CA (PEM) for a wss:// host with its own certificate. */
  ca?: string | Buffer | undefined;
  /** Reconnect after the host goes away (default true); the first connection must succeed. */
  reconnect?: boolean | undefined;
  /** Called when the client gives up for good after start-up (e.g. the PIN is now refused). */
  onFatal?: ((err: TunnelError) => void) | undefined;
}

export interface ClientHandle {
  /** The services the host exposes (from its welcome). */
  services: string[];
  connected(): boolean;
  /** Resolves on the next (re)connection. */
  whenConnected(): Promise<void>;
  stats(): Promise<DataPlaneStats>;
  close(): Promise<void>;
}

export async function startClient(options: ClientOptions): Promise<ClientHandle> {
  const log = options.log ?? createLogger('client', options.logLevel);
  const config = verifyConfig({ ...defaultConfig, ...options.config });
  const workers = workerCount(options.workers);
  if (options.forwards.length === 0) throw tunnelError('BAD_FLAG', 'at least one --forward is needed');
  const handshake: ClientHandshakeOptions = {
    pin: options.pin, window: windowOffer(config), log, hostName: options.connect,
    ice: { iceServers: options.iceServers ?? [], iceBind: options.iceBind },
  };
  const connect = async () => connectSession(await openSignaling(options.connect, options.ca), handshake);

  // the listeners first: a port in use fails start-up before the host is contacted
  let session: Session | null = null;
  const plane = await startDataPlane({
    role: 'client', workers, config, forwards: options.forwards, log, logLevel: options.logLevel ?? 'info',
    onPeerDead: (_peer, reason) => session?.end(`host gone: ${reason}`),
  });
  try {
    session = await firstSession(connect, log);
  } catch (err) {
    await plane.close();
    throw err;
  }
  const services = session.services;
  for (const f of options.forwards) {
    if (!services.includes(f.service)) log.warn(`forward ${f.host}:${f.port} names service '${f.service}', which the host does not expose; its connections will be refused`, { exposed: services.join(',') });
  }
  let closing = false;
  let connected = false;
  let connectedWaiters: (() => void)[] = [];
  for (const f of options.forwards) log.info(`forwarding ${f.host}:${f.port} -> ${f.service}`);

  function attach(s: Session): void {
    session = s;
    plane.addPeer(0, s.channels, s.sendWindow);
    connected = true;
    for (const w of connectedWaiters) w();
    connectedWaiters = [];
    void s.ended.then((reason) => {
      connected = false;
      plane.removePeer(0, reason);
      if (closing) return;
      log.warn('lost the host; closing its streams', { reason });
      if (options.reconnect === false) return;
      reconnect(connect, log, () => closing).then((next) => {
        if (!next) return;
        log.info('reconnected to the host');
        attach(next);
      }, (err: TunnelError) => {
        log.error(`giving up: ${err.message}`);
        options.onFatal?.(err);
      });
    });
  }

  attach(session);
  return {
    services,
    connected: () => connected,
    whenConnected: () => (connected ? Promise.resolve() : new Promise((resolve) => connectedWaiters.push(resolve))),
    stats: () => plane.stats(),
    async close() {
      if (closing) return;
      closing = true;
      await plane.close(); // the shards send their RESETs before the session goes
      session?.end('client shutting down');
    },
  };
}
