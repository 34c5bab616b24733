// A rendezvous relay that speaks the PeerJS server's protocol (OPEN, relaying by id with `src` set)
// and lets a test alter what it relays: the relay is untrusted, and the tunnel must notice.

import type net from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface RelayedMessage { type: string; src: string; dst: string; payload?: { d?: string } }

export interface HostileRelay {
  url: string;
  /** Returns the messages to deliver instead of `msg` (an empty list drops it). */
  tamper: ((msg: RelayedMessage) => RelayedMessage[]) | null;
  close(): Promise<void>;
}

export async function startHostileRelay(): Promise<HostileRelay> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/peerjs' });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const clients = new Map<string, WebSocket>();
  const relay: HostileRelay = {
    url: `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}`,
    tamper: null,
    async close() {
      for (const ws of clients.values()) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
  wss.on('connection', (ws, req) => {
    const id = new URL(req.url ?? '', 'http://x').searchParams.get('id') ?? '';
    if (!id || clients.has(id)) {
      ws.send(JSON.stringify({ type: 'ID-TAKEN', payload: { msg: 'ID is taken' } }));
      ws.close();
      return;
    }
    clients.set(id, ws);
    ws.send(JSON.stringify({ type: 'OPEN' }));
    ws.on('close', () => { if (clients.get(id) === ws) clients.delete(id); });
    ws.on('message', (raw) => {
      const msg = JSON.parse(raw.toString()) as RelayedMessage;
      if (msg.type === 'HEARTBEAT') return;
      msg.src = id;
      for (const out of relay.tamper ? relay.tamper(msg) : [msg]) clients.get(out.dst)?.send(JSON.stringify(out));
    });
  });
  return relay;
}
