// `tunnel client`: signaling to the host, one PeerConnection with one unordered DataChannel, the
// dispatcher, and the shards that listen on the forwarded ports. Start-up failures reject (host
// unreachable, wrong PIN, port in use); after start-up the client keeps its listeners and
// reconnects with backoff when the host goes away.

import net from 'node:net';
import { WebSocket } from 'ws';
import type ndc from 'node-datachannel';
import { defaultConfig, verifyConfig, type SideOptions } from './config.js';
import { createDispatcher } from './dispatcher.js';
import { startPool } from './pool.js';
import { createPeer, addCandidate, type IceOptions } from './peer.js';
import { encodeSignal, decodePlain, PROTOCOL_VERSION, MAX_SIGNAL_BYTES, HANDSHAKE_TIMEOUT_MS, type Plain } from './signaling.js';
import { clientAnswer, seal, open, equalConfirm, type Sealer } from './auth.js';
import { TunnelError, tunnelError, type ErrorCode } from './errors.js';
import { createLogger, type Logger } from './log.js';
import type { Forward, ShardStats } from './messages.js';
import { defaultWorkers } from './host.js';

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
  stats(): Promise<{ shards: ShardStats[]; dispatcher: ReturnType<typeof createDispatcher>['counters'] }>;
  close(): Promise<void>;
}

export interface Session {
  ws: WebSocket;
  pc: ndc.PeerConnection;
  channel: ndc.DataChannel;
  services: string[];
  /** the host's receive window: our streams' credit towards it */
  sendWindow: number;
  /** resolves with the reason once the session is over */
  ended: Promise<string>;
  end(reason: string): void;
}

/** How long the PeerConnection may take to open its DataChannel (ms). */
const PEER_OPEN_TIMEOUT_MS = 15000;
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30000;

const HOST_CODES: Record<string, ErrorCode> = {
  WRONG_PIN: 'WRONG_PIN', LOCKED_OUT: 'LOCKED_OUT', VERSION_MISMATCH: 'VERSION_MISMATCH',
  SIGNALING_AUTH: 'SIGNALING_AUTH', SIGNALING_TIMEOUT: 'SIGNALING_TIMEOUT',
};

/** One signaling + WebRTC session. Rejects with a TunnelError if it cannot be set up. Exported for
 *  tests that play a peer (a hostile one, too) on a real DataChannel. */
export async function connectSession(options: ClientOptions, ice: IceOptions, log: Logger): Promise<Session> {
  const ws = new WebSocket(options.connect, { maxPayload: MAX_SIGNAL_BYTES, handshakeTimeout: HANDSHAKE_TIMEOUT_MS, ...(options.ca ? { ca: options.ca } : {}) });
  const inbox: Plain[] = [];
  let wake: (() => void) | null = null;
  let failure: TunnelError | null = null;
  let pc: ndc.PeerConnection | null = null;
  let channel: ndc.DataChannel | null = null;
  let endSession: (reason: string) => void = () => {};
  const ended = new Promise<string>((resolve) => {
    endSession = (reason) => {
      try { channel?.close(); } catch { /* closed */ }
      try { pc?.close(); } catch { /* closed */ }
      ws.terminate();
      resolve(reason);
    };
  });
  const fail = (err: TunnelError) => { failure ??= err; wake?.(); };

  ws.on('message', (data, isBinary) => {
    try {
      if (!isBinary || !Buffer.isBuffer(data)) throw new Error('text message');
      inbox.push(decodePlain(data));
    } catch (err) {
      fail(tunnelError('SIGNALING_PROTOCOL', `the host sent a bad signaling message: ${(err as Error).message}`));
    }
    wake?.();
  });
  ws.on('error', (err: NodeJS.ErrnoException) => fail(unreachable(options.connect, err)));
  ws.on('close', () => { fail(tunnelError('HOST_UNREACHABLE', `the host at ${options.connect} closed the connection`)); endSession('signaling closed'); });

  const next = async (deadline: number): Promise<Plain> => {
    for (;;) {
      const msg = inbox.shift();
      if (msg) {
        if (msg.t === 'error') throw tunnelError(HOST_CODES[msg.code] ?? 'SIGNALING_PROTOCOL', hostErrorText(msg.code, msg.message));
        return msg;
      }
      if (failure) throw failure;
      const left = deadline - Date.now();
      if (left <= 0) throw tunnelError('SIGNALING_TIMEOUT', `the host at ${options.connect} did not answer in time`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        wake = () => { clearTimeout(t); wake = null; resolve(); };
      });
    }
  };
  const send = (msg: Plain) => { if (ws.readyState === ws.OPEN) ws.send(encodeSignal(msg)); };

  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', (err: NodeJS.ErrnoException) => reject(unreachable(options.connect, err)));
      ws.once('unexpected-response', (_req, res) => reject(tunnelError('HOST_UNREACHABLE', `${options.connect} is not a tunnel host (HTTP ${res.statusCode})`)));
    });
    const deadline = Date.now() + HANDSHAKE_TIMEOUT_MS;
    send({ t: 'hello', v: PROTOCOL_VERSION });
    const hello = await next(deadline);
    if (hello.t !== 'hello') throw tunnelError('SIGNALING_PROTOCOL', 'the host did not say hello');
    if (hello.v !== PROTOCOL_VERSION) throw tunnelError('VERSION_MISMATCH', `protocol version mismatch: client speaks ${PROTOCOL_VERSION}, host speaks ${hello.v}`);
    if (!hello.sid || !hello.yb) throw tunnelError('SIGNALING_PROTOCOL', 'the host hello lacks its PAKE share');
    const answer = clientAnswer(options.pin, { sid: hello.sid, yb: hello.yb });
    const sealer: Sealer = answer.sealer;
    send(answer.auth);
    const welcomeMsg = await next(deadline);
    if (welcomeMsg.t !== 'sealed') throw tunnelError('SIGNALING_PROTOCOL', 'expected the host welcome');
    const welcome = open(sealer, welcomeMsg);
    if (welcome.t !== 'welcome' || !equalConfirm(welcome.confirm, answer.expect)) {
      throw tunnelError('SIGNALING_AUTH', 'the host could not prove it knows the PIN');
    }

    send(seal(sealer, { t: 'params', window: options.config?.windowBytes ?? defaultConfig.windowBytes }));
    pc = createPeer('client', ice, {
      sdp: (sdp, type) => send(seal(sealer, { t: 'sdp', sdp, type })),
      candidate: (cand, mid) => send(seal(sealer, { t: 'cand', cand, mid })),
    });
    const peer = pc;
    const dc = peer.createDataChannel('tunnel', { unordered: true }); // reliable, unordered
    channel = dc;
    const opened = new Promise<void>((resolve) => dc.onOpen(resolve));
    peer.onStateChange((state) => {
      if (state === 'failed' || state === 'closed') {
        fail(tunnelError('PEER_FAILED', `the WebRTC connection ${state}`));
        endSession(`connection ${state}`);
      }
    });
    dc.onClosed(() => endSession('data channel closed'));
    const openDeadline = Date.now() + PEER_OPEN_TIMEOUT_MS;
    let isOpen = false;
    void opened.then(() => { isOpen = true; wake?.(); });
    while (!isOpen) {
      if (Date.now() >= openDeadline) throw tunnelError('PEER_FAILED', `no WebRTC connection to the host within ${PEER_OPEN_TIMEOUT_MS / 1000} s (ICE failed: check --ice-server / --ice-bind)`);
      if (inbox.length === 0 && !failure) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.max(1, Math.min(200, openDeadline - Date.now())));
          wake = () => { clearTimeout(t); wake = null; resolve(); };
        });
        continue;
      }
      const msg = await next(openDeadline);
      if (msg.t !== 'sealed') throw tunnelError('SIGNALING_PROTOCOL', 'expected a sealed message');
      const inner = open(sealer, msg);
      if (inner.t === 'sdp' && inner.type === 'answer') peer.setRemoteDescription(inner.sdp, 'answer');
      else if (inner.t === 'cand') addCandidate(peer, inner.cand, inner.mid, ice);
      else throw tunnelError('SIGNALING_PROTOCOL', `unexpected '${inner.t}' from the host`);
    }
    // after the channel is up, late candidates and anything else are still authenticated and applied
    ws.removeAllListeners('message');
    ws.on('message', (data) => {
      try {
        const msg = decodePlain(data as Buffer);
        if (msg.t !== 'sealed') throw new Error(`unexpected '${msg.t}'`);
        const inner = open(sealer, msg);
        if (inner.t === 'cand') addCandidate(peer, inner.cand, inner.mid, ice);
      } catch (err) {
        log.warn('signaling error; dropping the session', { error: (err as Error).message });
        endSession('signaling error');
      }
    });
    return { ws, pc: peer, channel: dc, services: welcome.services, sendWindow: welcome.window, ended, end: endSession };
  } catch (err) {
    endSession('setup failed');
    if (err instanceof TunnelError) throw err;
    throw tunnelError('SIGNALING_AUTH', (err as Error).message);
  }
}

/** Start-up tries the PeerConnection a few times: libdatachannel occasionally fails a first DTLS
 *  handshake (seen ~1 in 20 when host and client share a process); a PIN or version refusal is final. */
const FIRST_SESSION_TRIES = 3;

async function firstSession(options: ClientOptions, ice: IceOptions, log: Logger): Promise<Session> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connectSession(options, ice, log);
    } catch (err) {
      if (!(err instanceof TunnelError) || err.code !== 'PEER_FAILED' || attempt >= FIRST_SESSION_TRIES) throw err;
      log.warn('WebRTC connection failed; trying again', { attempt });
    }
  }
}

function unreachable(url: string, err: NodeJS.ErrnoException): TunnelError {
  const code = err.code ?? err.message;
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
    return tunnelError('HOST_UNREACHABLE', `the host at ${url} presented a certificate this client does not trust (${code}); pass its CA with --ca FILE`);
  }
  return tunnelError('HOST_UNREACHABLE', `cannot reach the host at ${url}: ${code}`);
}

function hostErrorText(code: string, message: string): string {
  if (code === 'WRONG_PIN') return 'wrong PIN: the host refused it';
  if (code === 'LOCKED_OUT') return `the host refused: ${message}`;
  return `the host refused: ${message}`;
}

/** A plain (non-reusePort) listen from the main thread: reusePort would silently share a port that
 *  another process holds, so "in use" is detected here first. */
async function checkPortFree(forward: Forward): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE'
        ? tunnelError('PORT_IN_USE', `cannot listen on ${forward.host}:${forward.port}: the port is in use`)
        : tunnelError('LISTEN_FAILED', `cannot listen on ${forward.host}:${forward.port}: ${err.message}`));
    });
    server.listen({ host: forward.host, port: forward.port, exclusive: true }, () => server.close(() => resolve()));
  });
}

export async function startClient(options: ClientOptions): Promise<ClientHandle> {
  const log = options.log ?? createLogger('client', options.logLevel);
  const config = verifyConfig({ ...defaultConfig, ...options.config });
  const ice: IceOptions = { iceServers: options.iceServers ?? [], iceBind: options.iceBind };
  const workers = options.workers ?? defaultWorkers();
  if (options.forwards.length === 0) throw tunnelError('BAD_FLAG', 'at least one --forward is needed');
  for (const forward of options.forwards) await checkPortFree(forward);

  let session = await firstSession(options, ice, log);
  const services = session.services;
  for (const forward of options.forwards) {
    if (!services.includes(forward.service)) {
      log.warn(`forward ${forward.host}:${forward.port} names service '${forward.service}', which the host does not expose; its connections will be refused`, { exposed: services.join(',') });
    }
  }

  let closing = false;
  let connected = false;
  let connectedWaiters: (() => void)[] = [];
  const statsWaiters: ((s: ShardStats) => void)[] = [];
  const listening = new Map<string, number>();
  let listenDone: (err?: Error) => void = () => {};
  const allListening = new Promise<void>((resolve, reject) => { listenDone = (err) => (err ? reject(err) : resolve()); });
  const shardCount = Math.max(1, workers);

  const pool = startPool({
    workers,
    init: { role: 'client', services: {}, forwards: options.forwards, config, logLevel: options.logLevel ?? 'info' },
    log,
    onMessage: (index, msg) => {
      if (msg.t === 'stats') statsWaiters.shift()?.(msg.stats);
      else if (msg.t === 'listening') {
        const name = `${msg.forward.host}:${msg.forward.port}`;
        if (msg.error) {
          listenDone(tunnelError('LISTEN_FAILED', `cannot listen on ${name}: ${msg.error}`));
          return;
        }
        const n = (listening.get(name) ?? 0) + 1;
        listening.set(name, n);
        if ([...listening.values()].filter((v) => v >= shardCount).length === options.forwards.length) listenDone();
      } else dispatcher.fromShard(index, msg);
    },
    onLost: (index) => dispatcher?.shardLost(index),
    onStarted: (index) => dispatcher?.shardStarted(index),
  });
  const dispatcher = createDispatcher({
    role: 'client', config, shards: pool.posts, log,
    onPeerDead: (_peer, reason) => session.end(`host gone: ${reason}`),
  });

  try {
    await allListening;
  } catch (err) {
    session.end('start-up failed');
    dispatcher.close();
    await pool.close();
    throw err;
  }
  for (const forward of options.forwards) log.info(`forwarding ${forward.host}:${forward.port} -> ${forward.service}`);

  const attach = (s: Session) => {
    session = s;
    dispatcher.addPeer(0, s.channel, s.sendWindow);
    connected = true;
    for (const w of connectedWaiters) w();
    connectedWaiters = [];
    void s.ended.then((reason) => {
      connected = false;
      dispatcher.removePeer(0, reason);
      if (closing) return;
      log.warn('lost the host; closing its streams', { reason });
      if (options.reconnect === false) return;
      void reconnect();
    });
  };

  async function reconnect(): Promise<void> {
    let delay = RECONNECT_MIN_MS;
    while (!closing) {
      await new Promise((r) => setTimeout(r, delay));
      if (closing) return;
      try {
        const s = await connectSession(options, ice, log);
        if (closing) { s.end('closing'); return; }
        log.info('reconnected to the host');
        attach(s);
        return;
      } catch (err) {
        const e = err as TunnelError;
        if (e.code === 'WRONG_PIN' || e.code === 'VERSION_MISMATCH' || e.code === 'SIGNALING_AUTH') {
          // do not spend the host's guess budget on a PIN it now refuses
          log.error(`giving up: ${e.message}`);
          options.onFatal?.(e);
          return;
        }
        log.info('reconnect failed; retrying', { error: e.message, inMs: Math.min(delay * 2, RECONNECT_MAX_MS) });
        delay = Math.min(delay * 2, RECONNECT_MAX_MS);
      }
    }
  }

  attach(session);

  return {
    services,
    connected: () => connected,
    whenConnected: () => (connected ? Promise.resolve() : new Promise((resolve) => connectedWaiters.push(resolve))),
    async stats() {
      const shards = await Promise.all(pool.posts.map((post) => new Promise<ShardStats>((resolve) => {
        statsWaiters.push(resolve);
        post({ t: 'stats' });
      })));
      return { shards, dispatcher: { ...dispatcher.counters } };
    },
    async close() {
      if (closing) return;
      closing = true;
      await pool.close(); // shards send their RESETs first
      session.end('client shutting down');
      dispatcher.close();
    },
  };
}
