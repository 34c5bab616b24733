// Signaling through a rendezvous relay (a PeerJS server, ./relay.ts), so that neither side needs an
// open port: the host registers once and keeps its registration; each client registers under a
// fresh random id and writes to the host's. Every client id the host hears from becomes one
// SignalConn, so the handshakes run exactly as over a direct WebSocket.
//
//   client (tunnel-client-…)                relay                     host (tunnel-<id>)
//     OFFER {d: base64(signaling msg)}  ──────────▶  (src = client id) ──────▶  SignalConn for that id
//                                       ◀──────────  ANSWER {d: …}      ◀──────
//     LEAVE                             ──────────▶                     ──────▶  that conversation ends
//                                       ◀──────────  EXPIRE (src = host id): nobody is registered
//                                                    under it (an unknown code, or the host is gone)
//
// The relay carries signaling only: no data plane, so no WebSocket fallback. The host re-registers
// with backoff whenever the relay connection drops (a relay restart); sessions whose channel is
// open do not need the relay and go on.

import { randomBytes } from 'node:crypto';
import { tunnelError, type TunnelError } from '../errors.js';
import type { Logger } from '../shared/log.js';
import type { SignalConn } from './conn.js';
import { openRelay, type RelayMessage, type RelaySocket } from './relay.js';
import { clientRelayId, hostRelayId, parseRelayUrl, randomId, type RelayAddress } from './rendezvous-code.js';

const REREGISTER_MIN_MS = 500;
const REREGISTER_MAX_MS = 30000;
/** Conversations in progress at once through the relay; past it new client ids are ignored (the
 *  host's own client limit refuses them politely before that). */
const MAX_CONVERSATIONS = 1024;
/** A client id whose conversation ended is ignored for this long (ms): its late messages must not
 *  start a new one. */
const ENDED_MEMORY_MS = 60000;

interface Endpoint {
  conn: SignalConn;
  deliver(data: Uint8Array): void;
  /** the other side ended it (LEAVE, EXPIRE), or we lost the relay (client side) */
  finish(error: string | TunnelError | undefined): void;
}

/** A SignalConn to `peerId` through whichever relay socket is current. */
function endpoint(remote: string, sendTo: (type: 'OFFER' | 'ANSWER' | 'LEAVE', data?: Uint8Array) => void, type: 'OFFER' | 'ANSWER', onDone: () => void): Endpoint {
  let onMessage: ((data: Uint8Array | null) => void) | null = null;
  let onClose: ((error: string | TunnelError | undefined) => void) | null = null;
  const held: Uint8Array[] = [];
  let over = false;
  let closeError: string | TunnelError | undefined;
  const finish = (error: string | TunnelError | undefined) => {
    if (over) return;
    over = true;
    closeError = error;
    onDone();
    onClose?.(error);
  };
  const leave = () => { if (!over) { sendTo('LEAVE'); finish(undefined); } };
  return {
    conn: {
      remote,
      relayed: true,
      send: (data) => { if (!over) sendTo(type, data); },
      onMessage: (handler) => {
        onMessage = handler;
        for (const data of held.splice(0)) handler(data);
      },
      onClose: (handler) => {
        onClose = handler;
        if (over) handler(closeError);
      },
      close: leave,
      terminate: leave,
    },
    deliver(data) {
      if (over) return;
      if (onMessage) onMessage(data); else held.push(data);
    },
    finish,
  };
}

export interface RendezvousHost {
  /** the id clients find this host by (the code's first part) */
  id: string;
  relay: string;
  close(): void;
}

/** Registers the host; rejects with RELAY_UNREACHABLE or RELAY_ID_TAKEN if it cannot at start-up. */
export async function registerHost(options: {
  url: string;
  /** a chosen id (normalized), else a random one */
  id?: string | undefined;
  log: Logger;
  onConnection(conn: SignalConn): void;
}): Promise<RendezvousHost> {
  const { log } = options;
  const relay = parseRelayUrl(options.url);
  const id = options.id ?? randomId();
  const token = randomBytes(16).toString('hex'); // lets this process reclaim its id after a blip
  const conversations = new Map<string, Endpoint>();
  const ended = new Map<string, number>();
  let socket: RelaySocket | null = await openRelay(relay, hostRelayId(id), token);
  let closing = false;

  function route(msg: RelayMessage): void {
    let ep = conversations.get(msg.src);
    if (msg.type === 'LEAVE' || msg.type === 'EXPIRE') {
      ep?.finish(msg.type === 'LEAVE' ? 'the client left' : 'the client is gone from the relay');
      return;
    }
    if (!msg.data) return;
    if (!ep) {
      const now = Date.now();
      for (const [src, at] of ended) if (now - at > ENDED_MEMORY_MS) ended.delete(src); else break;
      if (ended.has(msg.src) || conversations.size >= MAX_CONVERSATIONS) return;
      const src = msg.src;
      ep = endpoint(`relay:${src}`, (type, data) => socket?.send(type, src, data), 'ANSWER', () => {
        conversations.delete(src);
        ended.delete(src);
        ended.set(src, Date.now());
      });
      conversations.set(src, ep);
      options.onConnection(ep.conn);
    }
    ep.deliver(msg.data);
  }

  async function reregister(reason: string): Promise<void> {
    socket = null;
    log.warn('lost the rendezvous relay; registering again', { relay: relay.name, reason });
    for (let delay = REREGISTER_MIN_MS; !closing; delay = Math.min(delay * 2, REREGISTER_MAX_MS)) {
      await new Promise((r) => setTimeout(r, delay).unref());
      if (closing) return;
      try {
        const s = await openRelay(relay, hostRelayId(id), token);
        if (closing) return s.close();
        attach(s);
        log.info('registered again at the rendezvous relay', { relay: relay.name, id });
        return;
      } catch (err) {
        const e = err as TunnelError;
        const next = Math.min(delay * 2, REREGISTER_MAX_MS);
        if (e.code === 'RELAY_ID_TAKEN') log.error(`${e.message}: clients cannot find this host until it is free again; retrying`, { inMs: next });
        else log.info('registering again failed; retrying', { error: e.message, inMs: next });
      }
    }
  }

  function attach(s: RelaySocket): void {
    socket = s;
    s.onMessage(route);
    s.onLost((reason) => void reregister(reason));
  }

  attach(socket);
  return {
    id,
    relay: relay.name,
    close() {
      closing = true;
      for (const ep of [...conversations.values()]) ep.conn.terminate();
      socket?.close();
      socket = null;
    },
  };
}

/** A client's conversation with the host registered under `id`. Rejects with RELAY_UNREACHABLE. */
export async function openRendezvous(url: string | RelayAddress, id: string): Promise<SignalConn> {
  const relay = typeof url === 'string' ? parseRelayUrl(url) : url;
  const host = hostRelayId(id);
  const socket = await openRelay(relay, clientRelayId(), randomBytes(16).toString('hex'));
  let heard = false;
  const ep = endpoint(`code ${id}`, (type, data) => socket.send(type, host, data), 'OFFER', () => socket.close());
  socket.onMessage((msg) => {
    if (msg.src !== host) return; // only the host we asked for may talk to us
    if (msg.type === 'EXPIRE') {
      ep.finish(heard
        ? tunnelError('HOST_UNREACHABLE', `the host with code ${id} is no longer registered at the relay ${relay.name}`)
        : tunnelError('UNKNOWN_CODE', `no host is registered under the code ${id} at the relay ${relay.name}: check the code, and that the host runs with this --rendezvous URL`));
    } else if (msg.type === 'LEAVE') {
      ep.finish(tunnelError('HOST_UNREACHABLE', 'the host ended the conversation'));
    } else if (msg.data) {
      heard = true;
      ep.deliver(msg.data);
    }
  });
  socket.onLost((reason) => ep.finish(tunnelError('RELAY_UNREACHABLE', `lost the rendezvous relay at ${relay.name}: ${reason}`)));
  return ep.conn;
}

