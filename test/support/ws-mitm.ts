// A WebSocket man-in-the-middle for the tests: it sits between a client and a host's signaling
// server, records every frame both ways and may alter, drop or repeat any of them.

import type net from 'node:net';
import { WebSocketServer, WebSocket, type RawData } from 'ws';

export interface Frame { dir: 'c2h' | 'h2c'; data: Buffer; binary: boolean; conn: number }
/** Returns the frames to forward instead of `frame` (an empty list drops it). */
export type Tamper = (frame: Frame) => Buffer[];

export interface Mitm {
  url: string;
  frames: Frame[];
  tamper: Tamper | null;
  close(): Promise<void>;
}

const toBuffer = (data: RawData): Buffer => (Buffer.isBuffer(data) ? Buffer.from(data) : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data));

export async function startMitm(target: string, host = '127.0.0.1'): Promise<Mitm> {
  const wss = new WebSocketServer({ host, port: 0, maxPayload: 1024 * 1024 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const sockets = new Set<WebSocket>();
  let conns = 0;
  const mitm: Mitm = {
    url: `ws://${host}:${(wss.address() as net.AddressInfo).port}`,
    frames: [],
    tamper: null,
    async close() {
      for (const s of sockets) s.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
  wss.on('connection', (down) => {
    const conn = ++conns;
    const up = new WebSocket(target, { maxPayload: 1024 * 1024 });
    sockets.add(down);
    sockets.add(up);
    const pending: { data: Buffer; binary: boolean }[] = [];
    const forward = (to: WebSocket, dir: Frame['dir'], data: RawData, binary: boolean) => {
      const frame: Frame = { dir, data: toBuffer(data), binary, conn };
      mitm.frames.push(frame);
      for (const d of mitm.tamper ? mitm.tamper(frame) : [frame.data]) {
        if (to === up && up.readyState === WebSocket.CONNECTING) pending.push({ data: d, binary });
        else if (to.readyState === WebSocket.OPEN) to.send(d, { binary });
      }
    };
    up.on('open', () => { for (const p of pending.splice(0)) up.send(p.data, { binary: p.binary }); });
    down.on('message', (data, binary) => forward(up, 'c2h', data, binary));
    up.on('message', (data, binary) => forward(down, 'h2c', data, binary));
    // a close is passed on as a close (the other side sees why), a failure as a failure
    const closeBoth = () => {
      if (down.readyState === WebSocket.OPEN) down.close(); else if (down.readyState === WebSocket.CONNECTING) down.terminate();
      if (up.readyState === WebSocket.OPEN) up.close(); else if (up.readyState === WebSocket.CONNECTING) up.terminate();
    };
    down.on('close', closeBoth);
    up.on('close', closeBoth);
    down.on('error', () => down.terminate());
    up.on('error', () => { up.terminate(); down.terminate(); });
  });
  return mitm;
}
