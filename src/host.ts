// `tunnel host`: the signaling server, one PeerConnection per admitted client, the dispatcher, and the
// shards that dial the exposed services. Only a failure at start-up rejects; after that, trouble with
// one client or one stream is logged and contained.

import { randomInt } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { WebSocketServer, type WebSocket } from 'ws';
import type ndc from 'node-datachannel';
import { defaultConfig, verifyConfig, type SideOptions } from './config.js';
import { createDispatcher } from './dispatcher.js';
import { startPool } from './pool.js';
import { createPeer, addCandidate, type IceOptions } from './peer.js';
import { encodeSignal, decodePlain, SignalError, PROTOCOL_VERSION, MAX_SIGNAL_BYTES, HANDSHAKE_TIMEOUT_MS, type Plain } from './signaling.js';
import { hostStart, hostCheck, seal, open, AuthError, type Sealer } from './auth.js';
import { createGuard, type GuardOptions } from './guard.js';
import { tunnelError } from './errors.js';
import { createLogger } from './log.js';
import type { Service, ShardStats } from './messages.js';
import { parseHostPort } from './address.js';

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

export interface HostHandle {
  url: string;
  port: number;
  pin: string;
  /** Clients currently connected (with a DataChannel). */
  peers(): number;
  stats(): Promise<{ shards: ShardStats[]; dispatcher: ReturnType<typeof createDispatcher>['counters']; peers: number }>;
  close(): Promise<void>;
}

interface ClientSession {
  ws: WebSocket;
  pc: ndc.PeerConnection | null;
  channel: ndc.DataChannel | null;
  address: string;
  /** the client's receive window: our streams' credit towards it */
  sendWindow: number;
}

/** 8 digits: ~26.6 bits, against the guess budget of the guard (see README). */
export function randomPin(): string {
  return String(randomInt(0, 100_000_000)).padStart(8, '0');
}

export async function startHost(options: HostOptions): Promise<HostHandle> {
  const log = options.log ?? createLogger('host', options.logLevel);
  const config = verifyConfig({ ...defaultConfig, ...options.config });
  const pin = options.pin ?? randomPin();
  if (pin.length === 0) throw tunnelError('BAD_FLAG', 'the PIN must not be empty');
  const { host: listenHost, port: listenPort } = parseHostPort(options.listen ?? '127.0.0.1:8765', '--listen');
  const ice: IceOptions = { iceServers: options.iceServers ?? [], iceBind: options.iceBind };
  const guard = createGuard(options.guard);
  const sessions = new Map<number, ClientSession>();
  let nextPeer = 1;
  let closing = false;

  // plain HTTP for ws://, or HTTPS for wss:// with --tls-cert/--tls-key
  let server: http.Server | https.Server;
  try {
    server = options.tls ? https.createServer({ cert: options.tls.cert, key: options.tls.key }) : http.createServer();
  } catch (err) {
    throw tunnelError('BAD_FLAG', `cannot use the TLS certificate and key: ${(err as Error).message}`);
  }
  server.on('request', (_req, res) => { res.writeHead(426).end('this is a tunnel signaling endpoint: use tunnel client\n'); });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE'
        ? tunnelError('PORT_IN_USE', `cannot listen on ${listenHost}:${listenPort}: the port is in use`)
        : tunnelError('LISTEN_FAILED', `cannot listen on ${listenHost}:${listenPort}: ${err.message}`));
    });
    server.listen(listenPort, listenHost);
  });
  server.on('error', (err) => log.error('signaling server error', { error: err.message }));
  const wss = new WebSocketServer({ server, maxPayload: MAX_SIGNAL_BYTES });
  wss.on('error', (err) => log.error('signaling server error', { error: err.message }));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : listenPort;

  const statsWaiters: ((s: ShardStats) => void)[] = [];
  const pool = startPool({
    workers: options.workers ?? defaultWorkers(),
    init: { role: 'host', services: options.services, forwards: [], config, logLevel: options.logLevel ?? 'info' },
    log,
    onMessage: (index, msg) => {
      if (msg.t === 'stats') statsWaiters.shift()?.(msg.stats);
      else dispatcher.fromShard(index, msg);
    },
    onLost: (index) => dispatcher?.shardLost(index),
    onStarted: (index) => dispatcher?.shardStarted(index),
  });
  const dispatcher = createDispatcher({
    role: 'host', config, shards: pool.posts, log,
    onPeerDead: (peer, reason) => endSession(peer, `peer gone: ${reason}`),
  });

  function endSession(peer: number, reason: string): void {
    const session = sessions.get(peer);
    if (!session) return;
    sessions.delete(peer);
    if (session.channel) log.info('client left', { peer, reason });
    dispatcher.removePeer(peer, reason);
    try { session.channel?.close(); } catch { /* already closed */ }
    try { session.pc?.close(); } catch { /* already closed */ }
    session.ws.terminate();
  }

  wss.on('connection', (ws, req) => {
    const peer = nextPeer++;
    const remote = req.socket.remoteAddress ?? 'unknown';
    const session: ClientSession = { ws, pc: null, channel: null, address: remote, sendWindow: config.windowBytes };
    sessions.set(peer, session);
    const send = (msg: Plain) => { if (ws.readyState === ws.OPEN) ws.send(encodeSignal(msg)); };
    const refuse = (code: string, message: string) => {
      send({ t: 'error', code, message });
      ws.close(1008, code);
      setTimeout(() => endSession(peer, code), 1000).unref();
    };
    if (closing || sessions.size > (options.maxClients ?? 64)) {
      refuse('BUSY', closing ? 'the host is shutting down' : 'the host has too many clients');
      return;
    }
    const timer = setTimeout(() => refuse('SIGNALING_TIMEOUT', `handshake not completed in ${HANDSHAKE_TIMEOUT_MS} ms`), HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    let step: 'hello' | 'auth' | 'session' = 'hello';
    let pake: ReturnType<typeof hostStart> | null = null;
    let sealer: Sealer | null = null;
    // an attempt that ends without a verdict (silence, disconnect, garbage) counts as a failed guess
    let endAttempt: (ok: boolean) => void = () => {};

    ws.on('message', (data, isBinary) => {
      try {
        if (!isBinary || !Buffer.isBuffer(data)) throw new SignalError('signaling messages are binary');
        const msg = decodePlain(data);
        if (msg.t === 'error') throw new SignalError(`client error: ${msg.message}`);
        if (step === 'hello') {
          if (msg.t !== 'hello') throw new SignalError('expected hello');
          if (msg.v !== PROTOCOL_VERSION) {
            refuse('VERSION_MISMATCH', `protocol version mismatch: host speaks ${PROTOCOL_VERSION}, client speaks ${msg.v}`);
            return;
          }
          const attempt = guard.begin(remote);
          if (attempt.wait > 0) {
            log.warn('client refused: locked out', { peer, address: remote, retryInS: Math.ceil(attempt.wait / 1000) });
            refuse('LOCKED_OUT', `too many wrong PINs: locked out, retry in ${Math.ceil(attempt.wait / 1000)} s`);
            return;
          }
          endAttempt = attempt.end;
          pake = hostStart(pin);
          send(pake.hello);
          step = 'auth';
        } else if (step === 'auth') {
          if (msg.t !== 'auth' || !pake) throw new SignalError('expected auth');
          const result = hostCheck(pake.sid, pake.own, msg);
          if (!result) {
            endAttempt(false);
            log.warn('client refused: wrong PIN', { peer, address: remote });
            refuse('WRONG_PIN', 'wrong PIN');
            return;
          }
          endAttempt(true);
          clearTimeout(timer);
          sealer = result.sealer;
          send(seal(sealer, { t: 'welcome', services: Object.keys(options.services), window: config.windowBytes, confirm: result.confirm }));
          step = 'session';
          log.info('client authenticated', { peer, address: remote });
        } else {
          if (msg.t !== 'sealed' || !sealer) throw new SignalError('expected a sealed message');
          const inner = open(sealer, msg);
          const s = sealer;
          if (inner.t === 'params') {
            session.sendWindow = inner.window;
          } else if (inner.t === 'sdp') {
            if (inner.type !== 'offer' || session.pc) throw new SignalError('unexpected SDP');
            const pc = createPeer(`host-${peer}`, ice, {
              sdp: (sdp, type) => send(seal(s, { t: 'sdp', sdp, type })),
              candidate: (cand, mid) => send(seal(s, { t: 'cand', cand, mid })),
            });
            session.pc = pc;
            pc.onDataChannel((channel) => {
              if (session.channel || !sessions.has(peer)) { channel.close(); return; }
              session.channel = channel; // keep it referenced: an unreferenced channel is collected and closes
              channel.onClosed(() => endSession(peer, 'data channel closed'));
              dispatcher.addPeer(peer, channel, session.sendWindow);
              log.info('client connected', { peer, address: remote });
            });
            pc.onStateChange((state) => {
              if (state === 'failed' || state === 'closed') endSession(peer, `connection ${state}`);
            });
            pc.setRemoteDescription(inner.sdp, 'offer');
          } else if (inner.t === 'cand') {
            if (session.pc) addCandidate(session.pc, inner.cand, inner.mid, ice);
          } else {
            throw new SignalError(`unexpected '${inner.t}'`);
          }
        }
      } catch (err) {
        const code = err instanceof AuthError ? 'SIGNALING_AUTH' : 'SIGNALING_PROTOCOL';
        log.warn('signaling error', { peer, address: remote, code, error: (err as Error).message });
        refuse(code, (err as Error).message);
      }
    });
    ws.on('close', () => {
      clearTimeout(timer);
      endAttempt(false);
      endSession(peer, 'signaling closed');
    });
    ws.on('error', (err) => log.debug('signaling socket error', { peer, error: err.message }));
  });

  const url = `${options.tls ? 'wss' : 'ws'}://${listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${port}`;
  return {
    url, port, pin,
    peers: () => [...sessions.values()].filter((s) => s.channel).length,
    async stats() {
      const shards = await Promise.all(pool.posts.map((post) => new Promise<ShardStats>((resolve) => {
        statsWaiters.push(resolve);
        post({ t: 'stats' });
      })));
      return { shards, dispatcher: { ...dispatcher.counters }, peers: sessions.size };
    },
    async close() {
      if (closing) return;
      closing = true;
      for (const peer of [...sessions.keys()]) endSession(peer, 'host shutting down');
      dispatcher.close();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.close();
    },
  };
}

export function defaultWorkers(): number {
  return Math.max(1, (globalThis.navigator?.hardwareConcurrency as number | undefined) ?? 1);
}
