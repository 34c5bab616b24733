// A tunnel host and client in this process, the way every end-to-end test starts them: real TCP
// services, one real PeerConnection kept on 127.0.0.1, and one close() for all of it.
//
//   app ──TCP──▶ client ══ DataChannel on 127.0.0.1 ══▶ host ──TCP──▶ service
//          pair.port[name]                                    pair.services[name]

import { after } from 'node:test';
import { startHost, type HostHandle, type HostOptions } from '../../src/host.js';
import { startClient, type ClientHandle, type ClientOptions } from '../../src/client.js';
import { connectSession, type Session } from '../../src/signaling/client-handshake.js';
import { openSignaling } from '../../src/signaling/websocket.js';
import { releaseDataChannelLibrary } from '../../src/webrtc/peer.js';
import { TunnelError } from '../../src/errors.js';
import { createLogger } from '../../src/shared/log.js';
import { defaultConfig, windowOffer, type DataPlaneConfig } from '../../src/shared/limits.js';
import type { Forward } from '../../src/shared/thread-messages.js';
import { LOG_LEVEL, PIN, stopChildren } from './cli.js';
import { startEchoService, unusedPort, type Service } from './services.js';
import { byteSource, destroyAllSockets, echoExact } from './traffic.js';
import { teardown, type Teardown } from './teardown.js';

/**
 * Tries of a first session, as startClient makes (src/client.ts FIRST_SESSION_TRIES): libdatachannel
 * now and then fails a first DTLS handshake ("DTLS alert: unknown CA", seen ~1 start in 80 here with
 * both ends in one process). startClient tries again only when its own side sees the failure
 * (PEER_FAILED); when the host's side sees it first, the host drops the signaling connection and
 * startClient reports HOST_UNREACHABLE. The tests start their hosts themselves and know them to be
 * up, so that is the same flake and worth the same retry. Refusals (a wrong PIN...) are final.
 */
const FIRST_SESSION_TRIES = 3;

/** Runs `start` up to FIRST_SESSION_TRIES times while it fails with the flake described above. */
async function retryFirstSession<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      const flake = err instanceof TunnelError && (err.code === 'PEER_FAILED' || err.code === 'HOST_UNREACHABLE');
      if (!flake || attempt >= FIRST_SESSION_TRIES) throw err;
    }
  }
}

/** Host options for a test: 127.0.0.1 everywhere, the tests' PIN and log level; `services` by port. */
function testHostOptions(services: Record<string, number>, overrides: Partial<HostOptions> = {}): HostOptions {
  return {
    pin: PIN, listen: '127.0.0.1:0', workers: 1, iceBind: '127.0.0.1', logLevel: LOG_LEVEL,
    services: Object.fromEntries(Object.entries(services).map(([name, port]) => [name, { host: '127.0.0.1', port }])),
    ...overrides,
  };
}

/** Client options for a test: each name in `forwards` on a port that was free a moment ago; no
 *  reconnecting unless asked (a test that loses its host wants to see it, not a retry). */
export async function testClientOptions(url: string, forwards: string[] = ['echo'], overrides: Partial<ClientOptions> = {}): Promise<ClientOptions> {
  const ports: Forward[] = [];
  for (const service of forwards) ports.push({ host: '127.0.0.1', port: await unusedPort(), service });
  return {
    connect: url, pin: PIN, workers: 1, iceBind: '127.0.0.1', logLevel: LOG_LEVEL, reconnect: false, forwards: ports,
    ...overrides,
  };
}

/** A client of the host at `url` (which the test started: see FIRST_SESSION_TRIES) forwarding each
 *  name in `forwards` (see testClientOptions); the ports it forwards, by name. */
export async function startTestClient(url: string, forwards: string[] = ['echo'], overrides: Partial<ClientOptions> = {}): Promise<{ client: ClientHandle; port: Record<string, number> }> {
  const options = await testClientOptions(url, forwards, overrides);
  const client = await retryFirstSession(() => startClient(options));
  return { client, port: Object.fromEntries(options.forwards.map((f) => [f.service, f.port])) };
}

/** A fresh client of the host at `url` moves `bytes` through the echo byte-exact, then closes: the
 *  host still admits and serves a good client. */
export async function checkFreshClient(url: string, bytes = 64 * 1024): Promise<void> {
  const { client, port } = await startTestClient(url);
  try {
    await echoExact(port.echo, byteSource(bytes)(bytes));
  } finally {
    await client.close();
  }
}

export interface HostSideOptions {
  /** What the host exposes, by name; owned from then on (close() closes them). Default: `echo`. */
  services?: Record<string, Service>;
  /** Worker threads (default 1; 0 runs the shard on the main thread); of both sides in a pair. */
  workers?: number;
  /** Data-plane settings; of both sides in a pair, where a side's own `config` is laid over it. */
  config?: Partial<DataPlaneConfig>;
  /** Anything else for the host: guard, maxClients, tls, log, a different PIN... */
  host?: Partial<HostOptions>;
}

/** The host and its services; add() what else the test starts against them (a client, a relay...)
 *  and close() closes it all: the application's sockets first, then every part, newest first. */
export interface HostSide extends Teardown {
  host: HostHandle;
  services: Record<string, Service>;
}

/** Starts the services and a host that exposes them (the right half of the diagram above). */
export async function startHostSide(options: HostSideOptions = {}): Promise<HostSide> {
  const services = options.services ?? { echo: await startEchoService() };
  const parts = teardown();
  for (const [name, service] of Object.entries(services)) parts.add(service, `service ${name}`);
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= (async () => {
    destroyAllSockets();
    await parts.close();
  })());
  try {
    const ports = Object.fromEntries(Object.entries(services).map(([name, s]) => [name, s.port]));
    const host = parts.add(await startHost(testHostOptions(ports, {
      workers: options.workers ?? 1, ...options.host, config: { ...options.config, ...options.host?.config },
    })), 'host');
    return { host, services, close, add: parts.add };
  } catch (err) {
    await close().catch(() => {}); // a failed start must not leave workers keeping the process alive
    throw err;
  }
}

export interface PairOptions extends HostSideOptions {
  /** Services the client forwards, each on its own port; default: every service. A name the host
   *  does not expose is allowed: its connections are refused. */
  forwards?: string[];
  /** Anything else for the client. */
  client?: Partial<ClientOptions>;
}

export interface Pair extends HostSide {
  client: ClientHandle;
  /** The forwarded port on the client of each name in `forwards`. */
  port: Record<string, number>;
}

/** Starts the services, their host and a client connected to it (see the diagram above). */
export async function startPair(options: PairOptions = {}): Promise<Pair> {
  const side = await startHostSide(options);
  try {
    const { client, port } = await startTestClient(side.host.url, options.forwards ?? Object.keys(side.services), {
      pin: side.host.pin, workers: options.workers ?? 1, ...options.client, config: { ...options.config, ...options.client?.config },
    });
    return { ...side, client: side.add(client, 'client'), port };
  } catch (err) {
    await side.close().catch(() => {});
    throw err;
  }
}

/**
 * A bare signaling session and DataChannel to the host at `url`, without a data plane: a peer the
 * test drives packet by packet. Tries again after the first-session flake, like startTestClient.
 */
export function startRawSession(url: string, options: { pin?: string; windowBytes?: number; bulkLanes?: number; fallback?: boolean } = {}): Promise<Session> {
  return retryFirstSession(async () => connectSession(await openSignaling(url), {
    pin: options.pin ?? PIN, window: options.windowBytes ? { initial: options.windowBytes, max: options.windowBytes } : windowOffer(defaultConfig), hostName: url,
    ice: { iceServers: [], iceBind: '127.0.0.1', mtu: 1280 }, log: createLogger('raw-peer', LOG_LEVEL), bulkLanes: options.bulkLanes, fallback: options.fallback,
  }));
}

/**
 * The file's last clean-up, whatever its tests left: sockets, child processes, and the
 * node-datachannel library (without releasing it the test process never exits). Call once at the
 * top level of a test file that starts a tunnel in this process.
 */
export function releaseAtEnd(): void {
  after(async () => {
    destroyAllSockets();
    await stopChildren();
    releaseDataChannelLibrary();
  }, { timeout: 30_000 });
}

/** A logger at level info whose lines the test reads (what the host or client said, and why). */
export function captureLog(role: string): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger(role, 'info', (line) => lines.push(line)) };
}
