// `tunnel client`: a signaling session with the host — over its WebSocket, or through a rendezvous
// relay by the host's code — giving a PeerConnection and unordered DataChannel (or the WebSocket
// fallback), and the data plane whose shards listen on the forwarded ports. Start-up failures reject
// (host unreachable, wrong PIN, unknown code, no network path, port in use); after start-up the
// client keeps its listeners and reconnects with backoff when the host goes away.

import net from 'node:net';
import { defaultConfig, verifyConfig } from './shared/limits.js';
import { createLogger, type Logger } from './shared/log.js';
import type { Forward } from './shared/thread-messages.js';
import { workerCount, iceOptions, type SideOptions } from './options.js';
import { TunnelError, tunnelError, listenError } from './errors.js';
import { startDataPlane, type DataPlaneStats } from './dataplane/data-plane.js';
import { clientSignaling } from './signaling/carriers.js';
import { connectSession, type Session, type ClientHandshakeOptions } from './signaling/client-handshake.js';
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

export interface ClientHandle {
  /** The services the host exposes (from its welcome). */
  services: string[];
  connected(): boolean;
  /** The path the session takes now (live RTT); null while disconnected. */
  path(): SessionPath | null;
  /** Resolves on the next (re)connection. */
  whenConnected(): Promise<void>;
  stats(): Promise<DataPlaneStats>;
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
  const signaling = clientSignaling(options);
  const ice = iceOptions(options, (message) => log.warn(message));
  for (const forward of options.forwards) await checkPortFree(forward);
  const handshake: ClientHandshakeOptions = { pin: signaling.pin, hostName: signaling.hostName, window: config.windowBytes, log, ice, fallback: options.fallback };
  const connect = async () => connectSession(await signaling.open(), handshake);

  let session = await firstSession(connect, log);
  const services = session.services;
  for (const f of options.forwards) {
    if (!services.includes(f.service)) log.warn(`forward ${f.host}:${f.port} names service '${f.service}', which the host does not expose; its connections will be refused`, { exposed: services.join(',') });
  }
  let closing = false;
  let connected = false;
  let connectedWaiters: (() => void)[] = [];

  let plane: Awaited<ReturnType<typeof startDataPlane>>;
  try {
    plane = await startDataPlane({
      role: 'client', workers, config, forwards: options.forwards, log, logLevel: options.logLevel ?? 'info',
      onPeerDead: (_peer, reason) => session.end(`host gone: ${reason}`),
    });
  } catch (err) {
    session.end('start-up failed');
    throw err;
  }
  for (const f of options.forwards) log.info(`forwarding ${f.host}:${f.port} -> ${f.service}`);

  function attach(s: Session): void {
    session = s;
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
        log.info('reconnected to the host', { path: s.path() });
        attach(s);
        return options.onReconnect?.(s.path());
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
    services,
    connected: () => connected,
    path: () => (connected ? session.path() : null),
    whenConnected: () => (connected ? Promise.resolve() : new Promise((resolve) => connectedWaiters.push(resolve))),
    stats: () => plane.stats(),
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

/** A plain (non-reusePort) listen from the main thread: reusePort would silently share a port that
 *  another process holds, so "in use" is detected here first. */
function checkPortFree(forward: Forward): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(forward.host, forward.port, err)));
    server.listen({ host: forward.host, port: forward.port, exclusive: true }, () => server.close(() => resolve()));
  });
}
