// Signaling over a WebSocket (`ws`): the host's server (ws:// or wss://), the client's connection,
// and the adapter that makes either a SignalConn. Every failure to start is one TunnelError.

import http from 'node:http';
import https from 'node:https';
import { WebSocketServer, WebSocket } from 'ws';
import { tunnelError, listenError, type TunnelError } from '../errors.js';
import type { Logger } from '../shared/log.js';
import { MAX_SIGNAL_BYTES, HANDSHAKE_TIMEOUT_MS } from './codec.js';
import type { SignalConn } from './conn.js';

export function fromWebSocket(ws: WebSocket, remote: string): SignalConn {
  let onMessage: (data: Uint8Array | null) => void = () => {};
  let error: string | undefined;
  ws.on('message', (data, isBinary) => onMessage(isBinary && Buffer.isBuffer(data) ? data : null));
  ws.on('error', (err: NodeJS.ErrnoException) => { error ??= err.code ?? err.message; });
  return {
    remote,
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
  const wss = new WebSocketServer({ server, maxPayload: MAX_SIGNAL_BYTES });
  wss.on('error', (err) => log.error('signaling server error', { error: err.message }));
  wss.on('connection', (ws, req) => {
    ws.on('error', (err) => log.debug('signaling socket error', { address: req.socket.remoteAddress, error: err.message }));
    options.onConnection(fromWebSocket(ws, req.socket.remoteAddress ?? 'unknown'));
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
  const ws = new WebSocket(url, { maxPayload: MAX_SIGNAL_BYTES, handshakeTimeout: HANDSHAKE_TIMEOUT_MS, ...(ca ? { ca } : {}) });
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
