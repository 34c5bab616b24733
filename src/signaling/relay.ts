// One registration at a PeerJS server (npm `peer`, `npx peer --port 9000`), the rendezvous relay.
// Its protocol: a WebSocket at <path>/peerjs?key=KEY&id=ID&token=TOKEN carrying JSON
// {type, src, dst, payload}. The server
//   - answers OPEN (registered), ID-TAKEN (another token holds the id) or ERROR (bad key, full);
//   - relays OFFER, ANSWER, CANDIDATE and LEAVE to `dst`, with `src` set to the sender's own id
//     (so a message's origin is whoever registered that id, nothing more);
//   - queues messages for an id that is not connected, and after ~5 s answers EXPIRE (src = that id);
//   - drops a client it has not had a HEARTBEAT from for 90 s.
//
// The relay is an untrusted mailbox: anyone with its key (one shared string, "peerjs" by default)
// may register any free id and write to any id. What crosses it is our signaling, which the PAKE
// protects end to end; this file only carries the bytes (base64 in `payload.d`) and bounds them.

import { WebSocket } from 'ws';
import { tunnelError, type TunnelError } from '../errors.js';
import { MAX_SIGNAL_BYTES } from './codec.js';
import type { RelayAddress } from './rendezvous-code.js';

export type RelayType = 'OFFER' | 'ANSWER' | 'CANDIDATE' | 'LEAVE' | 'EXPIRE';

export interface RelayMessage {
  type: RelayType;
  src: string;
  /** the signaling message it carries (OFFER / ANSWER / CANDIDATE), else null */
  data: Uint8Array | null;
}

export interface RelaySocket {
  send(type: 'OFFER' | 'ANSWER' | 'LEAVE', dst: string, data?: Uint8Array): void;
  onMessage(handler: (msg: RelayMessage) => void): void;
  /** Called once if the relay connection is lost (not after close()). */
  onLost(handler: (reason: string) => void): void;
  close(): void;
}

/** The server drops a client after 90 s without a heartbeat; PeerJS's own client beats every 5 s. */
const HEARTBEAT_MS = 5000;
/** A relay that has not answered a WebSocket ping for this long is gone (ms). */
const SILENT_MS = 3 * HEARTBEAT_MS;
/** Registration must be answered in this long (ms). */
const OPEN_TIMEOUT_MS = 10000;
/** Largest relay message (bytes): a base64 signaling message and its JSON envelope. */
const MAX_RELAY_BYTES = Math.ceil(MAX_SIGNAL_BYTES / 3) * 4 + 1024;
const RELAYED = new Set<string>(['OFFER', 'ANSWER', 'CANDIDATE', 'LEAVE', 'EXPIRE']);

/** A relay frame as JSON text -> a RelayMessage, or null for anything we do not take. */
export function parseRelayFrame(text: string): RelayMessage | { type: 'OPEN' | 'ID-TAKEN' | 'ERROR'; msg: string } | null {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof m !== 'object' || m === null) return null;
  const { type, src, payload } = m as { type?: unknown; src?: unknown; payload?: unknown };
  if (type === 'OPEN' || type === 'ID-TAKEN' || type === 'ERROR') {
    const msg = (payload as { msg?: unknown } | undefined)?.msg;
    return { type, msg: typeof msg === 'string' ? msg.slice(0, 200) : '' };
  }
  if (typeof type !== 'string' || !RELAYED.has(type) || typeof src !== 'string' || src.length === 0 || src.length > 100) return null;
  let data: Uint8Array | null = null;
  const d = (payload as { d?: unknown } | undefined)?.d;
  if (typeof d === 'string') {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(d)) return null;
    data = Buffer.from(d, 'base64');
    if (data.byteLength === 0 || data.byteLength > MAX_SIGNAL_BYTES) return null;
  }
  return { type: type as RelayType, src, data };
}

/** Registers `id` at the relay; rejects with RELAY_UNREACHABLE or RELAY_ID_TAKEN. */
export function openRelay(relay: RelayAddress, id: string, token: string): Promise<RelaySocket> {
  const query = new URLSearchParams({ key: relay.key, id, token });
  const ws = new WebSocket(`${relay.socket}?${query}`, { maxPayload: MAX_RELAY_BYTES, handshakeTimeout: OPEN_TIMEOUT_MS });
  let onMessage: (msg: RelayMessage) => void = () => {};
  let onLost: (reason: string) => void = () => {};
  let closed = false;
  let lastPong = Date.now();
  let heartbeat: NodeJS.Timeout | undefined;

  const socket: RelaySocket = {
    send(type, dst, data) {
      if (ws.readyState !== ws.OPEN) return; // the relay is down: the handshake's timeouts cover it
      ws.send(JSON.stringify({ type, dst, payload: data ? { d: Buffer.from(data).toString('base64') } : {} }));
    },
    onMessage: (handler) => { onMessage = handler; },
    onLost: (handler) => { onLost = handler; },
    close() {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      ws.close();
    },
  };

  return new Promise<RelaySocket>((resolve, reject) => {
    let opened = false;
    const fail = (err: TunnelError) => {
      clearTimeout(timer);
      if (opened) return;
      closed = true;
      ws.terminate();
      reject(err);
    };
    const timer = setTimeout(() => fail(tunnelError('RELAY_UNREACHABLE', `the rendezvous relay at ${relay.name} did not answer in ${OPEN_TIMEOUT_MS / 1000} s`)), OPEN_TIMEOUT_MS);
    ws.on('error', (err: NodeJS.ErrnoException) => fail(tunnelError('RELAY_UNREACHABLE', `cannot reach the rendezvous relay at ${relay.name}: ${err.code ?? err.message}`)));
    ws.on('unexpected-response', (_req, res) => fail(tunnelError('RELAY_UNREACHABLE', `${relay.name} is not a PeerJS relay (HTTP ${res.statusCode} at ${relay.socket}): check the URL and its path`)));
    ws.on('pong', () => { lastPong = Date.now(); });
    ws.on('close', () => {
      clearInterval(heartbeat);
      if (!opened) fail(tunnelError('RELAY_UNREACHABLE', `the rendezvous relay at ${relay.name} closed the connection before registering us`));
      else if (!closed) { closed = true; onLost('the relay closed the connection'); }
    });
    ws.on('message', (raw, isBinary) => {
      if (isBinary) return;
      const text = raw.toString();
      if (text.length > MAX_RELAY_BYTES) return;
      const frame = parseRelayFrame(text);
      if (!frame) return;
      if (frame.type === 'OPEN') {
        opened = true;
        clearTimeout(timer);
        heartbeat = setInterval(() => {
          if (Date.now() - lastPong > SILENT_MS) {
            closed = true;
            clearInterval(heartbeat);
            ws.terminate();
            onLost(`the relay did not answer for ${SILENT_MS / 1000} s`);
            return;
          }
          ws.send('{"type":"HEARTBEAT"}');
          ws.ping();
        }, HEARTBEAT_MS);
        heartbeat.unref();
        resolve(socket);
      } else if (frame.type === 'ID-TAKEN') {
        fail(tunnelError('RELAY_ID_TAKEN', `the id '${id}' is already registered at the relay ${relay.name} by someone else`));
      } else if (frame.type === 'ERROR') {
        fail(tunnelError('RELAY_UNREACHABLE', `the rendezvous relay at ${relay.name} refused us: ${frame.msg || 'no reason given'}${/key/i.test(frame.msg) ? ' (check ?key= in the relay URL)' : ''}`));
      } else if (opened && 'src' in frame) {
        onMessage(frame);
      }
    });
  });
}
