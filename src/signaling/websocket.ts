// Signaling over a WebSocket (`ws`): the host's server (ws:// or wss://), the client's connection,
// and the adapter that makes either a SignalConn. Every failure to start is one TunnelError.
// A WebSocket is also a Carrier: the data plane can fall back to it when ICE finds no path.

import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { randomBytes } from 'node:crypto';
import { WebSocketServer, WebSocket } from 'ws';
import { tunnelError, listenError, type TunnelError } from '../errors.js';
import type { Logger } from '../shared/log.js';
import { hostPort } from '../webrtc/path.js';
import { MAX_WEBSOCKET_MESSAGE_BYTES, HANDSHAKE_TIMEOUT_MS } from './codec.js';
import type { Carrier, SignalConn } from './conn.js';

function carrierOf(ws: WebSocket, socket: () => net.Socket | undefined): Carrier {
  const address = (a: string | undefined, p: number | undefined) => (a ? hostPort(a, p ?? 0) : '?');
  return {
    get local() { const s = socket(); return address(s?.localAddress, s?.localPort); },
    get remote() { const s = socket(); return address(s?.remoteAddress, s?.remotePort); },
    bufferedAmount: () => ws.bufferedAmount,
    ping: (timeoutMs) => new Promise((resolve) => {
      if (ws.readyState !== ws.OPEN) return resolve(null);
      const id = randomBytes(8);
      const start = performance.now();
      const done = (rtt: number | null) => { clearTimeout(timer); ws.off('pong', onPong); resolve(rtt); };
      const onPong = (data: Buffer) => { if (data.equals(id)) done(performance.now() - start); };
      const timer = setTimeout(() => done(null), timeoutMs);
      ws.on('pong', onPong);
      ws.ping(id);
    }),
  };
}

export function fromWebSocket(ws: WebSocket, remote: string, socket?: net.Socket): SignalConn {
  let onMessage: (data: Uint8Array | null) => void = () => {};
  let error: string | undefined;
  let tcp = socket;
  ws.once('upgrade', (res) => { tcp ??= res.socket; }); // the client's socket, once connected
  ws.on('message', (data, isBinary) => onMessage(isBinary && Buffer.isBuffer(data) ? data : null));
  ws.on('error', (err: NodeJS.ErrnoException) => { error ??= err.code ?? err.message; });
  return {
    remote,
    relayed: false,
    carrier: carrierOf(ws, () => tcp),
    send: (data) => { if (ws.readyState === ws.OPEN) ws.send(data); },
    onMessage: (handler) => { onMessage = handler; },
    onClose: (handler) => { ws.once('close', () => handler(error)); },
    close: (code) => ws.close(1008, code),
    terminate: () => ws.terminate(),
  };
}

export interface SignalingServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The host's signaling server; `onConnection` gets every WebSocket that opens. */
export async function listenSignaling(options: {
  host: string; port: number;
  tls?: { cert: string | Buffer; key: string | Buffer } | undefined;
  log: Logger;
  onConnection(conn: SignalConn): void;
}): Promise<SignalingServer> {
  const { host, port, tls, log } = options;
  let server: http.Server | https.Server;
  try {
    server = tls ? https.createServer({ cert: tls.cert, key: tls.key }) : http.createServer();
  } catch (err) {
    throw tunnelError('BAD_FLAG', `cannot use the TLS certificate and key: ${(err as Error).message}`);
  }
  server.on('request', (_req, res) => { res.writeHead(426).end('this is a tunnel signaling endpoint: use tunnel client\n'); });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(host, port, err)));
    server.listen(port, host);
  });
  server.on('error', (err) => log.error('signaling server error', { error: err.message }));
  const wss = new WebSocketServer({ server, maxPayload: MAX_WEBSOCKET_MESSAGE_BYTES });
  wss.on('error', (err) => log.error('signaling server error', { error: err.message }));
  wss.on('connection', (ws, req) => {
    ws.on('error', (err) => log.debug('signaling socket error', { address: req.socket.remoteAddress, error: err.message }));
    options.onConnection(fromWebSocket(ws, req.socket.remoteAddress ?? 'unknown', req.socket));
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return {
    url: `${tls ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    port: bound,
    async close() {
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The client's connection to a host's signaling URL, open; rejects with HOST_UNREACHABLE. */
export async function openSignaling(url: string, ca?: string | Buffer): Promise<SignalConn> {
  const ws = new WebSocket(url, { maxPayload: MAX_WEBSOCKET_MESSAGE_BYTES, handshakeTimeout: HANDSHAKE_TIMEOUT_MS, ...(ca ? { ca } : {}) });
  const conn = fromWebSocket(ws, url);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', (err: NodeJS.ErrnoException) => reject(unreachable(url, err)));
      ws.once('unexpected-response', (_req, res) => reject(tunnelError('HOST_UNREACHABLE', `${url} is not a tunnel host (HTTP ${res.statusCode})`)));
    });
  } catch (err) {
    ws.terminate();
    throw err;
  }
  return conn;
}

function unreachable(url: string, err: NodeJS.ErrnoException): TunnelError {
  const code = err.code ?? err.message;
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
    return tunnelError('HOST_UNREACHABLE', `the host at ${url} presented a certificate this client does not trust (${code}); pass its CA with --ca FILE`);
  }
  return tunnelError('HOST_UNREACHABLE', `cannot reach the host at ${url}: ${code}`);
}
