// `tunnel host`: the signaling server, one session per admitted client (its PeerConnection and
// DataChannel), and the data plane whose shards dial the exposed services. Only a failure at
// start-up rejects; after that, trouble with one client or one stream is logged and contained.

import { randomInt } from 'node:crypto';
import { defaultConfig, verifyConfig } from './shared/limits.js';
import { createLogger } from './shared/log.js';
import type { Service } from './shared/thread-messages.js';
import { workerCount, type SideOptions } from './options.js';
import { tunnelError } from './errors.js';
import { parseHostPort } from './address.js';
import { startDataPlane, type DataPlaneStats } from './dataplane/data-plane.js';
import { listenSignaling } from './signaling/websocket.js';
import { acceptClient, type HostSession } from './signaling/host-handshake.js';
import { createGuard, type GuardOptions, type GuardCounts } from './signaling/guard.js';
import { changeServices } from './dataplane/reconfigure.js';
import type { SelectedPath } from './webrtc/path.js';

export interface HostOptions extends SideOptions {
  /** Without one a random 8-digit PIN is generated (and returned). */
  pin?: string | undefined;
  /** Signaling address, default 127.0.0.1:8765; port 0 picks a free one. */
  listen?: string | undefined;
  services: Record<string, Service>;
  guard?: Partial<GuardOptions> | undefined;
  /** Serve wss:// with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer } | undefined;
  /** Signaling connections at once (handshaking or connected); more are refused. Default 64. */
  maxClients?: number | undefined;
}

export interface HostStats extends DataPlaneStats {
  /** clients connected (with a DataChannel) */
  peers: number;
  /** the path ICE selected for each connected client */
  paths: (SelectedPath | null)[];
  /** the PIN guard's counts since start */
  pin: GuardCounts;
}

export interface HostHandle {
  url: string;
  port: number;
  pin: string;
  /** Clients currently connected (with a DataChannel). */
  peers(): number;
  /** True while the signaling server accepts clients (false once closing). */
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
  const pin = options.pin ?? randomPin();
  if (pin.length === 0) throw tunnelError('BAD_FLAG', 'the PIN must not be empty');
  const listen = parseHostPort(options.listen ?? '127.0.0.1:8765', '--listen');
  const ice = { iceServers: options.iceServers ?? [], iceBind: options.iceBind };
  const guard = createGuard(options.guard);
  const maxClients = options.maxClients ?? 64;
  const sessions = new Map<number, HostSession>();
  let services = options.services;
  let nextPeer = 1;
  let closing = false;

  const plane = await startDataPlane({
    role: 'host', workers, config, services, log, logLevel: options.logLevel ?? 'info', logFormat: options.logFormat, measureLoop: options.measureLoop,
    onPeerDead: (peer, reason) => sessions.get(peer)?.end(`peer gone: ${reason}`),
  });
  let server: Awaited<ReturnType<typeof listenSignaling>>;
  try {
    server = await listenSignaling({
      ...listen, tls: options.tls, log,
      onConnection(conn) {
        const peer = nextPeer++;
        sessions.set(peer, acceptClient(conn, {
          peer, pin, guard, ice, log,
          services: Object.keys(services),
          window: config.windowBytes,
          busy: closing ? 'the host is shutting down' : sessions.size >= maxClients ? 'the host has too many clients' : undefined,
          onChannel: (channel, sendWindow) => plane.addPeer(peer, channel, sendWindow),
          onEnd: (reason) => {
            sessions.delete(peer);
            plane.removePeer(peer, reason);
          },
        }));
      },
    });
  } catch (err) {
    await plane.close();
    throw err;
  }

  return {
    url: server.url, port: server.port, pin,
    peers: () => [...sessions.values()].filter((s) => s.connected()).length,
    listening: () => !closing,
    stats: async () => {
      const connected = [...sessions.values()].filter((s) => s.connected());
      return { ...(await plane.stats()), peers: connected.length, paths: connected.map((s) => s.path()), pin: guard.counts() };
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
      for (const session of [...sessions.values()]) session.end('host shutting down');
      await server.close();
      await plane.close();
    },
  };
}
