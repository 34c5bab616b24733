// `tunnel client`: a signaling session with the host (its PeerConnection and unordered DataChannel)
// and the data plane whose shards listen on the forwarded ports. Start-up failures reject (host
// unreachable, wrong PIN, port in use); after start-up the client keeps its listeners and
// reconnects with backoff when the host goes away.

import { defaultConfig, verifyConfig } from './shared/limits.js';
import { createLogger, type Logger } from './shared/log.js';
import type { Forward } from './shared/thread-messages.js';
import { workerCount, type SideOptions } from './options.js';
import { TunnelError, tunnelError } from './errors.js';
import { startDataPlane, type DataPlaneStats } from './dataplane/data-plane.js';
import { changeForwards, checkPortFree } from './dataplane/reconfigure.js';
import { selectedPath, type SelectedPath } from './webrtc/path.js';
import { openSignaling } from './signaling/websocket.js';
import { connectSession, type Session, type ClientHandshakeOptions } from './signaling/client-handshake.js';

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

export interface ClientStats extends DataPlaneStats {
  /** 1 while connected to the host, else 0 */
  peers: number;
  /** the path to the host, while connected */
  paths: (SelectedPath | null)[];
}

export interface ClientHandle {
  /** The services the host exposes (from its welcome). */
  services: string[];
  connected(): boolean;
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

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30000;
/** Start-up tries the PeerConnection a few times: libdatachannel occasionally fails a first DTLS
 *  handshake (seen ~1 in 20 when host and client share a process); a PIN or version refusal is final. */
const FIRST_SESSION_TRIES = 3;
/** Refusals that reconnecting cannot cure; retrying would only spend the host's PIN guess budget. */
const FINAL_CODES = new Set(['WRONG_PIN', 'VERSION_MISMATCH', 'SIGNALING_AUTH']);

export async function startClient(options: ClientOptions): Promise<ClientHandle> {
  const log = options.log ?? createLogger('client', options.logLevel);
  const config = verifyConfig({ ...defaultConfig, ...options.config });
  const workers = workerCount(options.workers);
  if (options.forwards.length === 0) throw tunnelError('BAD_FLAG', 'at least one --forward is needed');
  for (const forward of options.forwards) await checkPortFree(forward);
  const handshake: ClientHandshakeOptions = {
    pin: options.pin, window: config.windowBytes, log, hostName: options.connect,
    ice: { iceServers: options.iceServers ?? [], iceBind: options.iceBind },
  };
  const connect = async () => connectSession(await openSignaling(options.connect, options.ca), handshake);

  let session = await firstSession(connect, log);
  let services = session.services;
  for (const f of options.forwards) {
    if (!services.includes(f.service)) log.warn(`forward ${f.host}:${f.port} names service '${f.service}', which the host does not expose; its connections will be refused`, { exposed: services.join(',') });
  }
  let closing = false;
  let connected = false;
  let connectedWaiters: (() => void)[] = [];

  let plane: Awaited<ReturnType<typeof startDataPlane>>;
  try {
    plane = await startDataPlane({
      role: 'client', workers, config, forwards: options.forwards, log, logLevel: options.logLevel ?? 'info', logFormat: options.logFormat, measureLoop: options.measureLoop,
      onPeerDead: (_peer, reason) => session.end(`host gone: ${reason}`),
    });
  } catch (err) {
    session.end('start-up failed');
    throw err;
  }
  for (const f of options.forwards) log.info(`forwarding ${f.host}:${f.port} -> ${f.service}`);
  let forwards = options.forwards;

  function attach(s: Session): void {
    session = s;
    services = s.services;
    plane.addPeer(0, s.channel, s.sendWindow);
    connected = true;
    for (const w of connectedWaiters) w();
    connectedWaiters = [];
    void s.ended.then((reason) => {
      connected = false;
      plane.removePeer(0, reason);
      if (closing) return;
      log.warn('lost the host; closing its streams', { reason });
      if (options.reconnect !== false) void reconnect();
    });
  }

  async function reconnect(): Promise<void> {
    for (let delay = RECONNECT_MIN_MS; !closing; delay = Math.min(delay * 2, RECONNECT_MAX_MS)) {
      await new Promise((r) => setTimeout(r, delay));
      if (closing) return;
      try {
        const s = await connect();
        if (closing) return s.end('closing');
        log.info('reconnected to the host');
        return attach(s);
      } catch (err) {
        const e = err as TunnelError;
        if (FINAL_CODES.has(e.code)) {
          log.error(`giving up: ${e.message}`);
          return options.onFatal?.(e);
        }
        log.info('reconnect failed; retrying', { error: e.message, inMs: Math.min(delay * 2, RECONNECT_MAX_MS) });
      }
    }
  }

  attach(session);
  return {
    get services() { return services; },
    connected: () => connected,
    whenConnected: () => (connected ? Promise.resolve() : new Promise((resolve) => connectedWaiters.push(resolve))),
    stats: async () => ({ ...(await plane.stats()), peers: connected ? 1 : 0, paths: connected ? [selectedPath(session.pc)] : [] }),
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
      await plane.close(); // the shards send their RESETs before the session goes
      session.end('client shutting down');
    },
  };
}

async function firstSession(connect: () => Promise<Session>, log: Logger): Promise<Session> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect();
    } catch (err) {
      if (!(err instanceof TunnelError) || err.code !== 'PEER_FAILED' || attempt >= FIRST_SESSION_TRIES) throw err;
      log.warn('WebRTC connection failed; trying again', { attempt });
    }
  }
}
